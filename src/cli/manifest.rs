//! `daxray manifest IMAGE [--hash]`: JSON Lines, one per regular file.

use super::{Global, output};
use crate::error::{Finding, Severity};
use crate::open::open_then;
use std::path::PathBuf;

/// Arguments of `manifest`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image file or block device.
    pub image: PathBuf,
    /// Add the sha256 of each file's contents.
    #[arg(long)]
    pub hash: bool,
}

/// Run `manifest`. Output is always JSON Lines (`--json` changes nothing).
pub fn run(a: &Args, g: &Global) -> crate::Result<i32> {
    // Files are walked (and hashed) while the journal's checksums are still being verified; if
    // one fails, everything runs again with the kernel's outcome (see `open_then`).
    let (o, built) = open_then(&a.image, &g.open_options(), |m| crate::manifest::build(&*m.fs, a.hash))?;
    let (entries, errors) = built?;
    let mut out = String::new();
    for e in &entries {
        out += &serde_json::to_string(e).map_err(|e| crate::Error::External(e.to_string()))?;
        out.push('\n');
    }
    output::write_stdout(out.as_bytes())?;
    let mut findings = o.findings();
    for (p, e) in errors {
        findings.push(Finding::new(Severity::Error, "file", None, None, format!("{p}: {e}")));
    }
    output::print_findings(&findings);
    Ok(output::exit_code(&findings))
}
