//! `daxray getfattr IMAGE PATH`: a file's extended attributes in the output format of
//! `getfattr -d -m - --absolute-names PATH`.

use super::{Global, output};
use crate::fs::{self, FileSystem, FileType};
use crate::open::open;
use std::path::PathBuf;

/// Arguments of `getfattr`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image file or block device.
    pub image: PathBuf,
    /// Path inside the file system.
    pub path: String,
    /// Encode values as getfattr's `-e`: text, hex or base64 (default: text when at most one
    /// byte in eight is not printable, else base64, as getfattr chooses).
    #[arg(short = 'e', long, value_parser = ["text", "hex", "base64"])]
    pub encoding: Option<String>,
    /// Do not follow a symbolic link at PATH (getfattr's -h).
    #[arg(short = 'h', long)]
    pub no_dereference: bool,
}

/// `s` with the bytes getfattr's `quote()` escapes (not printable, a backslash, or one of
/// `also`) written as `\ooo`.
fn quote(s: &[u8], also: &[u8]) -> String {
    let mut out = String::new();
    for &c in s {
        if !(0x20..0x7f).contains(&c) || c == b'\\' || also.contains(&c) {
            out += &format!("\\{c:03o}");
        } else {
            out.push(char::from(c));
        }
    }
    out
}

/// A value as getfattr's `encode()` writes it.
pub fn encode(v: &[u8], encoding: Option<&str>) -> String {
    let enc = encoding.unwrap_or_else(|| {
        // getfattr's well_enough_printable: a trailing NUL does not count.
        let body = v.strip_suffix(&[0]).unwrap_or(v);
        let nonprint = body.iter().filter(|c| !(0x20..0x7f).contains(*c)).count();
        if body.len() >= nonprint * 8 { "text" } else { "base64" }
    });
    match enc {
        "hex" => format!("0x{}", hex::encode(v)),
        "base64" => format!("0s{}", base64(v)),
        _ => {
            let mut out = String::from("\"");
            for (k, &c) in v.iter().enumerate() {
                match c {
                    0 if k + 1 == v.len() => break,
                    0 | b'\n' | b'\r' => out += &format!("\\{c:03o}"),
                    b'\\' | b'"' => {
                        out.push('\\');
                        out.push(char::from(c));
                    }
                    // getfattr writes other bytes as they are; keep them byte for byte.
                    _ => out.push(char::from(c)),
                }
            }
            out.push('"');
            out
        }
    }
}

/// Standard base64 with `=` padding.
fn base64(v: &[u8]) -> String {
    const DIGITS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(v.len().div_ceil(3) * 4);
    for c in v.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(char::from(DIGITS[((n >> (18 - 6 * k)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Resolve `path`, following a symbolic link at its end (up to [`fs::MAX_SYMLINKS`]).
fn resolve_following(fsys: &dyn FileSystem, path: &str) -> crate::Result<u64> {
    let mut p = path.to_string();
    for _ in 0..fs::MAX_SYMLINKS {
        let ino = fs::lookup(fsys, &p)?;
        if fsys.file_type(ino)? != FileType::Symlink {
            return Ok(ino);
        }
        let target = String::from_utf8_lossy(&fsys.read_link(ino)?).into_owned();
        p = if target.starts_with('/') {
            target
        } else {
            let parent = p.trim_end_matches('/').rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            format!("{parent}/{target}")
        };
    }
    Err(crate::Error::NotFound(format!("{path}: too many symbolic links")))
}

/// Run `getfattr`.
pub fn run(a: &Args, g: &Global) -> crate::Result<i32> {
    let o = open(&a.image, &g.open_options())?;
    let ino =
        if a.no_dereference { fs::lookup(&*o.fs, &a.path)? } else { resolve_following(&*o.fs, &a.path)? };
    let mut attrs = o.fs.xattrs(ino)?;
    // getfattr sorts the names (strcmp).
    attrs.sort_by(|x, y| x.name.cmp(&y.name));
    let findings = o.findings();
    if g.json {
        output::print_json(&serde_json::json!({
            "path": a.path, "ino": ino, "xattrs": attrs, "findings": findings,
        }))?;
    } else {
        let mut out: Vec<u8> = vec![];
        if !attrs.is_empty() {
            out.extend(format!("# file: {}\n", quote(a.path.as_bytes(), b"\n\r")).bytes());
            for x in &attrs {
                out.extend(quote(&x.name, b"=\n\r").bytes());
                out.push(b'=');
                let enc = encode(&x.value, a.encoding.as_deref());
                // Text values are written byte for byte (chars above 0x7f stand for bytes).
                out.extend(enc.chars().map(|c| c as u32 as u8));
                out.push(b'\n');
            }
            out.push(b'\n');
        }
        output::write_stdout(&out)?;
        output::print_findings(&findings);
    }
    Ok(output::exit_code(&findings))
}
