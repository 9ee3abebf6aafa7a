//! `daxray map IMAGE PATH|--ino N`.

use super::{Global, output, stat::FileArg};

/// Arguments of `map`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image and the file in it.
    #[command(flatten)]
    pub file: FileArg,
    /// Merge adjacent extents (as `fiemap` shows them).
    #[arg(long)]
    pub merge: bool,
}

/// Run `map`.
pub fn run(a: &Args, g: &Global) -> crate::Result<i32> {
    let (o, ino) = a.file.open(g)?;
    let mut ext = o.fs.map(ino)?;
    if a.merge {
        ext = crate::fs::merge_extents(&ext);
    }
    let findings = o.findings();
    if g.json {
        output::print_json(&serde_json::json!({
            "ino": ino, "block_size": o.fs.block_size(), "extents": ext, "findings": findings,
        }))?;
    } else {
        let mut s = format!("{:>12} {:>14} {:>10}  flags\n", "logical", "physical", "length");
        for e in &ext {
            s += &format!(
                "{:>12} {:>14} {:>10}  {}\n",
                e.logical,
                e.physical,
                e.length,
                if e.unwritten { "unwritten" } else { "" }
            );
        }
        output::write_stdout(s.as_bytes())?;
        output::print_findings(&findings);
    }
    Ok(output::exit_code(&findings))
}
