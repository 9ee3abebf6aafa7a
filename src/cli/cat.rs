//! `daxray cat IMAGE PATH`.

use super::{Global, output, stat::resolve};
use crate::open::open;
use std::path::PathBuf;

/// Arguments of `cat`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image file or block device.
    pub image: PathBuf,
    /// Path inside the file system.
    #[arg(required_unless_present = "ino", conflicts_with = "ino")]
    pub path: Option<String>,
    /// Inode number instead of a path.
    #[arg(long)]
    pub ino: Option<u64>,
}

/// Bytes read per step when copying a file out.
const CHUNK: usize = 1 << 20;

/// Run `cat`.
pub fn run(a: &Args, g: &Global) -> crate::Result<i32> {
    let o = open(&a.image, &g.open_options())?;
    let ino = resolve(&*o.fs, a.path.as_deref(), a.ino)?;
    let st = o.fs.stat(ino)?;
    let mut off = 0u64;
    while off < st.size {
        let buf = o.fs.read(ino, off, CHUNK)?;
        if buf.is_empty() {
            break;
        }
        output::write_stdout(&buf)?;
        off += buf.len() as u64;
    }
    let findings = o.findings();
    output::print_findings(&findings);
    Ok(output::exit_code(&findings))
}
