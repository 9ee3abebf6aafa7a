//! The claims file: JSON Lines, one [`Claim`] a line.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// Largest claims file read (bytes); claims files are small, this only bounds bad input.
const MAX_CLAIMS_FILE: u64 = 256 << 20;

/// "File `path` held `len` bytes hashing to `sha256` at `offset`."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// Absolute path inside the file system (`file` in the replay agent's events).
    #[serde(alias = "file")]
    pub path: String,
    /// The inode number the writer saw, when known (evidence only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ino: Option<u64>,
    /// Byte offset in the file.
    pub offset: u64,
    /// Number of bytes.
    pub len: u64,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    /// Sequence number of the store in a replay run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

impl Claim {
    /// Check the fields that parsing alone does not: a 64-hex-digit hash, a non-empty range
    /// that does not overflow.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("sha256 {:?} is not 64 hex digits", self.sha256));
        }
        if self.len == 0 {
            return Err("len is 0".into());
        }
        if self.offset.checked_add(self.len).is_none() {
            return Err("offset + len overflows".into());
        }
        if self.path.is_empty() {
            return Err("path is empty".into());
        }
        Ok(())
    }
}

/// One line of a claims file: None for a blank line or a comment, else the claim or what is
/// wrong with it.
fn parse_line(line: &str) -> Option<std::result::Result<Claim, String>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    Some(serde_json::from_str::<Claim>(line).map_err(|e| format!("not a claim: {e}")).and_then(|mut c| {
        c.sha256.make_ascii_lowercase();
        c.validate().map(|()| c)
    }))
}

/// Parse claims from JSON Lines text. `name` is used in error messages; the first bad line is
/// an error.
pub fn parse_claims(text: &str, name: &str) -> Result<Vec<Claim>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match parse_line(line) {
            None => {}
            Some(Ok(c)) => out.push(c),
            Some(Err(e)) => return Err(Error::Usage(format!("{name}: line {}: {e}", i + 1))),
        }
    }
    Ok(out)
}

/// The claims of a claims file, with the lines that are not claims.
#[derive(Debug, Clone, Default)]
pub struct ClaimsFile {
    /// The claims, in file order.
    pub claims: Vec<Claim>,
    /// Each bad line: its number (from 1) and what is wrong with it.
    pub bad: Vec<(usize, String)>,
}

/// Parse claims from JSON Lines text, keeping the good lines when some are bad.
pub fn parse_claims_lenient(text: &str) -> ClaimsFile {
    let mut out = ClaimsFile::default();
    for (i, line) in text.lines().enumerate() {
        match parse_line(line) {
            None => {}
            Some(Ok(c)) => out.claims.push(c),
            Some(Err(e)) => out.bad.push((i + 1, e)),
        }
    }
    out
}

/// The text of a claims file, bounded in size.
fn read_text(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.len() > MAX_CLAIMS_FILE {
        return Err(Error::Usage(format!(
            "{}: {} bytes is too large for a claims file (limit {MAX_CLAIMS_FILE})",
            path.display(),
            meta.len()
        )));
    }
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

/// Read a claims file (JSON Lines); the first bad line is an error.
pub fn read_claims(path: &Path) -> Result<Vec<Claim>> {
    parse_claims(&read_text(path)?, &path.display().to_string())
}

/// Read a claims file (JSON Lines), keeping the good lines when some are bad.
pub fn read_claims_lenient(path: &Path) -> Result<ClaimsFile> {
    Ok(parse_claims_lenient(&read_text(path)?))
}

/// Write claims as JSON Lines.
pub fn write_claims(path: &Path, claims: &[Claim]) -> Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| Error::io(path, e))?);
    for c in claims {
        let line = serde_json::to_string(c).map_err(|e| Error::External(format!("JSON: {e}")))?;
        writeln!(f, "{line}").map_err(|e| Error::io(path, e))?;
    }
    f.flush().map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_path_and_store_shapes() {
        let text = format!(
            "# comment\n{{\"path\":\"/a\",\"offset\":0,\"len\":4,\"sha256\":\"{H}\"}}\n\n\
             {{\"seq\":3,\"file\":\"/b\",\"ino\":12,\"offset\":4096,\"len\":8,\"sha256\":\"{}\"}}\n",
            H.to_uppercase()
        );
        let c = parse_claims(&text, "t").expect("valid claims");
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].path, "/a");
        assert_eq!(c[1].path, "/b");
        assert_eq!(c[1].ino, Some(12));
        assert_eq!(c[1].seq, Some(3));
        assert_eq!(c[1].sha256, H);
    }

    #[test]
    fn rejects_bad_claims() {
        for bad in [
            "{\"path\":\"/a\",\"offset\":0,\"len\":4}".to_string(),
            format!("{{\"path\":\"/a\",\"offset\":0,\"len\":0,\"sha256\":\"{H}\"}}"),
            "{\"path\":\"/a\",\"offset\":0,\"len\":1,\"sha256\":\"xyz\"}".to_string(),
            format!("{{\"path\":\"/a\",\"offset\":18446744073709551615,\"len\":2,\"sha256\":\"{H}\"}}"),
            "not json".to_string(),
        ] {
            let e = parse_claims(&bad, "t").expect_err(&bad);
            assert!(e.to_string().contains("line 1"), "{e}");
        }
    }

    #[test]
    fn lenient_parsing_keeps_the_good_lines() {
        let text = format!(
            "{{\"path\":\"/a\",\"offset\":0,\"len\":4,\"sha256\":\"{H}\"}}\nnot json\n\n# c\n{{\"path\":\"/b\",\"offset\":0,\"len\":0,\"sha256\":\"{H}\"}}\n{{\"path\":\"/c\",\"offset\":1,\"len\":1,\"sha256\":\"{H}\"}}\n"
        );
        let f = parse_claims_lenient(&text);
        assert_eq!(f.claims.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), ["/a", "/c"]);
        assert_eq!(f.bad.iter().map(|b| b.0).collect::<Vec<_>>(), [2, 5]);
        assert!(f.bad[1].1.contains("len is 0"), "{:?}", f.bad);
    }

    #[test]
    fn round_trips_through_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.jsonl");
        let claims =
            vec![Claim { path: "/x".into(), ino: Some(5), offset: 1, len: 2, sha256: H.into(), seq: None }];
        write_claims(&p, &claims).expect("write");
        assert_eq!(read_claims(&p).expect("read"), claims);
    }
}
