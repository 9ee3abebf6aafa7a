//! `daxray cat IMAGE PATH`.

use super::{Global, output, stat::FileArg};
use crate::fs::FileType;

/// Arguments of `cat`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image and the file in it.
    #[command(flatten)]
    pub file: FileArg,
}

/// Bytes read per step when copying a file out.
const CHUNK: usize = 1 << 20;

/// Run `cat`.
pub fn run(a: &Args, g: &Global) -> crate::Result<i32> {
    if g.json {
        return Err(crate::Error::Usage(
            "cat has no JSON form: it writes the file's bytes (findings go to standard error)".into(),
        ));
    }
    let (o, ino) = a.file.open(g)?;
    let st = o.fs.stat(ino)?;
    match st.file_type {
        FileType::Dir => {
            return Err(crate::Error::Usage(format!("{}: is a directory", a.file.name(ino))));
        }
        // A symbolic link's contents are its target (what readlink(2) gives), fast or slow.
        FileType::Symlink => output::write_stdout(&o.fs.read_link(ino)?)?,
        _ => {
            let mut off = 0u64;
            while off < st.size {
                let buf = o.fs.read(ino, off, CHUNK)?;
                if buf.is_empty() {
                    break;
                }
                output::write_stdout(&buf)?;
                off += buf.len() as u64;
            }
        }
    }
    let findings = o.findings();
    output::print_findings(&findings);
    Ok(output::exit_code(&findings))
}
