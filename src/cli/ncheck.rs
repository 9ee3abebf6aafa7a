//! `daxray ncheck IMAGE INO...`: the paths naming each inode, like `debugfs -c -R 'ncheck I'`.

use super::{Global, output};
use crate::open::open;
use std::path::PathBuf;

/// Arguments of `ncheck`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image file or block device.
    pub image: PathBuf,
    /// Inode numbers.
    #[arg(required = true, value_name = "INO")]
    pub inodes: Vec<u64>,
}

/// Run `ncheck`.
pub fn run(a: &Args, g: &Global) -> crate::Result<i32> {
    let o = open(&a.image, &g.open_options())?;
    let (paths, errors) = crate::owners::paths_of(&*o.fs, &a.inodes)?;
    let mut findings = o.findings();
    findings.extend(super::ls::walk_findings(&errors));
    let mut asked = a.inodes.clone();
    asked.dedup();
    if g.json {
        let rows: Vec<_> = asked
            .iter()
            .map(|i| serde_json::json!({ "ino": i, "paths": paths.get(i).cloned().unwrap_or_default() }))
            .collect();
        output::print_json(&serde_json::json!({ "inodes": rows, "findings": findings }))?;
    } else {
        let mut s = String::from("Inode\tPathname\n");
        for i in &asked {
            for p in paths.get(i).into_iter().flatten() {
                s += &format!("{i}\t{p}\n");
            }
        }
        output::write_stdout(s.as_bytes())?;
        output::print_findings(&findings);
    }
    Ok(output::exit_code(&findings))
}
