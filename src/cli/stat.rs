//! `daxray stat IMAGE PATH|--ino N`.

use super::{Global, output};
use crate::fs::{self, FileSystem};
use crate::open::{Opened, open};
use std::path::PathBuf;

/// An image and one file in it, by PATH or `--ino N`: the arguments of `stat`, `map` and `cat`.
#[derive(Debug, clap::Args)]
pub struct FileArg {
    /// Image file or block device.
    pub image: PathBuf,
    /// Path inside the file system.
    #[arg(required_unless_present = "ino", conflicts_with = "ino")]
    pub path: Option<String>,
    /// Inode number instead of a path.
    #[arg(long)]
    pub ino: Option<u64>,
}

impl FileArg {
    /// Open the image (with the global options) and find the file's inode number.
    pub fn open(&self, g: &Global) -> crate::Result<(Opened, u64)> {
        let o = open(&self.image, &g.open_options())?;
        let ino = resolve(&*o.fs, self.path.as_deref(), self.ino)?;
        Ok((o, ino))
    }

    /// How errors name the file: its PATH, or "inode N".
    pub fn name(&self, ino: u64) -> String {
        self.path.clone().unwrap_or_else(|| format!("inode {ino}"))
    }
}

/// Arguments of `stat`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image and the file in it.
    #[command(flatten)]
    pub file: FileArg,
}

/// Resolve a PATH or --ino argument pair to an inode number.
pub fn resolve(fsys: &dyn FileSystem, path: Option<&str>, ino: Option<u64>) -> crate::Result<u64> {
    match (path, ino) {
        (_, Some(i)) => Ok(i),
        (Some(p), None) => fs::lookup(fsys, p),
        (None, None) => Err(crate::Error::Usage("give a PATH or --ino N".into())),
    }
}

/// Run `stat`.
pub fn run(a: &Args, g: &Global) -> crate::Result<i32> {
    let (o, ino) = a.file.open(g)?;
    let st = o.fs.stat(ino)?;
    let target = match st.file_type {
        fs::FileType::Symlink => Some(String::from_utf8_lossy(&o.fs.read_link(ino)?).into_owned()),
        _ => None,
    };
    let findings = o.findings();
    if g.json {
        let mut v = serde_json::to_value(&st).map_err(|e| crate::Error::External(e.to_string()))?;
        v["target"] = serde_json::json!(target);
        v["findings"] = serde_json::to_value(&findings).unwrap_or_default();
        output::print_json(&v)?;
    } else {
        let mut rows: Vec<(String, String)> = vec![
            ("inode".into(), st.ino.to_string()),
            ("type".into(), format!("{:?}", st.file_type)),
            ("mode".into(), format!("{:04o}", st.mode & 0o7777)),
            ("links".into(), st.nlink.to_string()),
            ("uid".into(), st.uid.to_string()),
            ("gid".into(), st.gid.to_string()),
            ("size".into(), st.size.to_string()),
            ("blocks".into(), format!("{} (512-byte)", st.blocks_512)),
            ("flags".into(), format!("{:#x}", st.flags)),
            ("generation".into(), st.generation.to_string()),
        ];
        if let Some(d) = st.device {
            rows.push(("device".into(), format!("{}, {}", d.major, d.minor)));
        }
        if let Some(t) = &target {
            rows.push(("target".into(), t.clone()));
        }
        for (name, t) in [
            ("atime", Some(st.atime)),
            ("mtime", Some(st.mtime)),
            ("ctime", Some(st.ctime)),
            ("crtime", st.crtime),
        ] {
            if let Some(t) = t {
                rows.push((name.into(), format!("{}.{:09} ({})", t.sec, t.nsec, output::utc(t.sec, t.nsec))));
            }
        }
        for (k, v) in &st.extra {
            rows.push((k.clone(), output::value_text(v)));
        }
        let s = output::aligned(&rows);
        output::write_stdout(s.as_bytes())?;
        output::print_findings(&findings);
    }
    Ok(output::exit_code(&findings))
}
