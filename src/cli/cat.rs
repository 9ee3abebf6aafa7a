//! `daxray cat IMAGE PATH`.

use super::{Global, output, stat::FileArg};

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
    let (o, ino) = a.file.open(g)?;
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
