//! `daxray ls IMAGE [PATH] [-R]`.

use super::{Global, output};
use crate::fs::{self, FileType};
use crate::open::open;
use std::path::PathBuf;

/// Arguments of `ls`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image file or block device.
    pub image: PathBuf,
    /// Directory to list (a file lists itself; a symbolic link to a directory is followed,
    /// except with -l).
    #[arg(default_value = "/")]
    pub path: String,
    /// List subdirectories too.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Long format: type, mode, links, owner, group, size (major, minor for a device),
    /// modification time (UTC), inode, name (-> target for a symbolic link).
    #[arg(short = 'l', long)]
    pub long: bool,
    /// Also list the removed entries whose bytes are still in the directory's blocks (ext4;
    /// as debugfs `ls -d`), each as `<INODE> (REC_LEN) NAME` with its block and offset. The inode
    /// they name may have been freed or reused since. Not with -R, nor for a file.
    #[arg(long, conflicts_with = "recursive")]
    pub deleted: bool,
}

/// Run `ls`.
pub fn run(a: &Args, g: &Global) -> crate::Result<i32> {
    let o = open(&a.image, &g.open_options())?;
    let fsys = &*o.fs;
    let mut errors = Vec::new();
    // As ls(1): a symbolic link given as PATH is followed, except with -l; PATH naming anything
    // but a directory lists that one entry, under the name given.
    let ino = fs::resolve(fsys, &a.path, !a.long)?;
    let ft = fsys.file_type(ino)?;
    let entries: Vec<(String, u64, FileType)> = if ft != FileType::Dir {
        vec![(a.path.clone(), ino, ft)]
    } else if a.recursive {
        // A trailing slash makes the walk's own lookup follow a final symbolic link too.
        let start = if a.long { a.path.clone() } else { format!("{}/", a.path.trim_end_matches('/')) };
        fs::walk(fsys, &start, &mut errors)?.into_iter().map(|e| (e.path, e.ino, e.file_type)).collect()
    } else {
        let mut v = Vec::new();
        for e in fsys.read_dir(ino)? {
            let ft = match e.file_type {
                Some(t) if t != FileType::Unknown => t,
                _ => fsys.stat(e.ino).map(|s| s.file_type).unwrap_or(FileType::Unknown),
            };
            v.push((String::from_utf8_lossy(&e.name).into_owned(), e.ino, ft));
        }
        v
    };
    let mut out = String::new();
    let mut rows = Vec::new();
    for (name, ino, ft) in &entries {
        let st = if a.long || g.json { fsys.stat(*ino).ok() } else { None };
        // A symbolic link's target, as `ls -l` shows it after `->`.
        let target = (*ft == FileType::Symlink && (a.long || g.json))
            .then(|| fsys.read_link(*ino).ok())
            .flatten()
            .map(|t| String::from_utf8_lossy(&t).into_owned());
        if g.json {
            rows.push(serde_json::json!({
                "name": name, "ino": ino, "type": ft,
                "mode": st.as_ref().map(|s| format!("{:o}", s.mode & 0o7777)),
                "size": st.as_ref().map(|s| s.size),
                "nlink": st.as_ref().map(|s| s.nlink),
                "mtime": st.as_ref().map(|s| s.mtime),
                "device": st.as_ref().and_then(|s| s.device),
                "target": target,
            }));
        } else if let (true, Some(s)) = (a.long, &st) {
            // As ls -l: a device's major and minor numbers in place of its size.
            let size = match s.device {
                Some(d) => format!("{}, {}", d.major, d.minor),
                None => s.size.to_string(),
            };
            out += &format!(
                "{}{:04o} {:>3} {:>5} {:>5} {:>12} {} {:>8} {}{}\n",
                ft.letter(),
                s.mode & 0o7777,
                s.nlink,
                s.uid,
                s.gid,
                size,
                output::utc_seconds(s.mtime.sec),
                ino,
                name,
                target.map(|t| format!(" -> {t}")).unwrap_or_default()
            );
        } else {
            out += &format!("{:>8} {} {}\n", ino, ft.letter(), name);
        }
    }
    let mut findings = o.findings();
    findings.extend(super::ls::walk_findings(&errors));
    let removed = if a.deleted {
        if ft != FileType::Dir {
            return Err(crate::Error::Usage(format!("{}: --deleted lists a directory, not a file", a.path)));
        }
        fsys.removed_entries(ino)?
    } else {
        Vec::new()
    };
    for r in &removed {
        out += &format!(
            "<{}> ({}) {}   removed; block {} offset {}\n",
            r.ino,
            r.rec_len,
            String::from_utf8_lossy(&r.name),
            r.block,
            r.offset
        );
    }
    if g.json {
        let mut v = serde_json::json!({ "path": a.path, "entries": rows, "findings": findings });
        if a.deleted {
            v["removed"] = serde_json::json!(removed);
        }
        output::print_json(&v)?;
    } else {
        output::write_stdout(out.as_bytes())?;
        output::print_findings(&findings);
    }
    Ok(output::exit_code(&findings))
}

/// Error findings for the paths a tree walk could not read (`path: why`).
pub(super) fn walk_findings<E: std::fmt::Display>(errors: &[(String, E)]) -> Vec<crate::Finding> {
    errors
        .iter()
        .map(|(p, e)| {
            crate::Finding::new(crate::error::Severity::Error, "directory", None, None, format!("{p}: {e}"))
        })
        .collect()
}
