//! `daxray icheck IMAGE BLOCK...`: which inode owns each block, like `debugfs -c -R 'icheck B'`.

use super::{Global, output};
use crate::open::open;
use std::path::PathBuf;

/// Arguments of `icheck`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image file or block device.
    pub image: PathBuf,
    /// Block numbers (ext4: file-system blocks; XFS: linear blocks, agno * agblocks + agbno,
    /// as `map` prints them in its `physical` column).
    #[arg(required = true, value_name = "BLOCK")]
    pub blocks: Vec<u64>,
}

/// Run `icheck`.
pub fn run(a: &Args, g: &Global) -> crate::Result<i32> {
    let o = open(&a.image, &g.open_options())?;
    let owners = o.fs.icheck(&a.blocks)?;
    let findings = o.findings();
    if g.json {
        let rows: Vec<_> = a
            .blocks
            .iter()
            .zip(&owners)
            .map(|(b, ino)| serde_json::json!({ "block": b, "ino": ino }))
            .collect();
        output::print_json(&serde_json::json!({ "blocks": rows, "findings": findings }))?;
    } else {
        let mut s = String::from("Block\tInode number\n");
        for (b, ino) in a.blocks.iter().zip(&owners) {
            match ino {
                Some(i) => s += &format!("{b}\t{i}\n"),
                None => s += &format!("{b}\t<block not found>\n"),
            }
        }
        output::write_stdout(s.as_bytes())?;
        output::print_findings(&findings);
    }
    Ok(output::exit_code(&findings))
}
