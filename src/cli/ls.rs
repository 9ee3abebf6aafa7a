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
    /// Directory to list.
    #[arg(default_value = "/")]
    pub path: String,
    /// List subdirectories too.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Long format: type, mode, links, owner, size.
    #[arg(short = 'l', long)]
    pub long: bool,
}

/// Run `ls`.
pub fn run(a: &Args, g: &Global) -> crate::Result<i32> {
    let o = open(&a.image, &g.open_options())?;
    let fsys = &*o.fs;
    let mut errors = Vec::new();
    let entries: Vec<(String, u64, FileType)> = if a.recursive {
        fs::walk(fsys, &a.path, &mut errors)?.into_iter().map(|e| (e.path, e.ino, e.file_type)).collect()
    } else {
        let ino = fs::lookup(fsys, &a.path)?;
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
                "target": target,
            }));
        } else if let (true, Some(s)) = (a.long, &st) {
            out += &format!(
                "{}{:04o} {:>3} {:>5} {:>5} {:>12} {:>8} {}{}\n",
                ft.letter(),
                s.mode & 0o7777,
                s.nlink,
                s.uid,
                s.gid,
                s.size,
                ino,
                name,
                target.map(|t| format!(" -> {t}")).unwrap_or_default()
            );
        } else {
            out += &format!("{:>8} {} {}\n", ino, ft.letter(), name);
        }
    }
    let mut findings = o.findings();
    for (p, e) in &errors {
        findings.push(crate::Finding::new(
            crate::error::Severity::Error,
            "directory",
            None,
            None,
            format!("{p}: {e}"),
        ));
    }
    if g.json {
        output::print_json(&serde_json::json!({ "path": a.path, "entries": rows, "findings": findings }))?;
    } else {
        output::write_stdout(out.as_bytes())?;
        output::print_findings(&findings);
    }
    Ok(output::exit_code(&findings))
}
