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
        let mut s = format!(
            "inode:  {}\ntype:   {:?}\nmode:   {:04o}\nlinks:  {}\nuid:    {}\ngid:    {}\nsize:   {}\nblocks: {} (512-byte)\nflags:  {:#x}\ngeneration: {}\n",
            st.ino,
            st.file_type,
            st.mode & 0o7777,
            st.nlink,
            st.uid,
            st.gid,
            st.size,
            st.blocks_512,
            st.flags,
            st.generation
        );
        if let Some(t) = &target {
            s += &format!("target: {t}\n");
        }
        for (name, t) in [
            ("atime", Some(st.atime)),
            ("mtime", Some(st.mtime)),
            ("ctime", Some(st.ctime)),
            ("crtime", st.crtime),
        ] {
            if let Some(t) = t {
                s += &format!("{name}:  {}.{:09}\n", t.sec, t.nsec);
            }
        }
        for (k, v) in &st.extra {
            s += &format!("{k}: {v}\n");
        }
        output::write_stdout(s.as_bytes())?;
        output::print_findings(&findings);
    }
    Ok(output::exit_code(&findings))
}
