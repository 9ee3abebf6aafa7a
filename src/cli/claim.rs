//! `daxray claim IMAGE PATH OFFSET LEN`: the claims line (the input of `daxray check`) for the
//! bytes the view holds at that place of the file.

use super::{Global, output};
use crate::check::Claim;
use crate::open::open;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// Arguments of `claim`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image file or block device.
    pub image: PathBuf,
    /// Path inside the file system.
    pub path: String,
    /// Byte offset in the file.
    #[arg(value_name = "OFFSET")]
    pub start: u64,
    /// Number of bytes (at least 1; the range must end within the file's size).
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    pub len: u64,
}

/// Bytes read per step while hashing.
const CHUNK: u64 = 1 << 20;

/// Run `claim`.
pub fn run(a: &Args, g: &Global) -> crate::Result<i32> {
    let o = open(&a.image, &g.open_options())?;
    let ino = crate::fs::lookup(&*o.fs, &a.path)?;
    let (ft, size) = o.fs.type_and_size(ino)?;
    if ft != crate::fs::FileType::File {
        return Err(crate::Error::Usage(format!("{}: not a regular file ({ft:?})", a.path)));
    }
    let end = a.start.checked_add(a.len).filter(|e| *e <= size).ok_or_else(|| {
        crate::Error::Usage(format!(
            "{}: bytes {}..{} are not all within its size of {size} bytes",
            a.path,
            a.start,
            a.start.saturating_add(a.len)
        ))
    })?;
    let mut h = Sha256::new();
    let mut at = a.start;
    while at < end {
        let n = (end - at).min(CHUNK) as usize;
        let buf = o.fs.read(ino, at, n)?;
        if buf.len() != n {
            return Err(crate::Error::corrupt(
                "file data",
                ino,
                at,
                format!("{}: read {} of {n} bytes at offset {at}", a.path, buf.len()),
            ));
        }
        h.update(&buf);
        at += n as u64;
    }
    let claim = Claim {
        path: a.path.clone(),
        ino: Some(ino),
        offset: a.start,
        len: a.len,
        sha256: hex::encode(h.finalize()),
        seq: None,
    };
    let line = serde_json::to_string(&claim).map_err(|e| crate::Error::External(format!("JSON: {e}")))?;
    output::write_stdout(format!("{line}\n").as_bytes())?;
    let findings = o.findings();
    output::print_findings(&findings);
    Ok(output::exit_code(&findings))
}
