//! `daxray map IMAGE PATH|--ino N`.
//!
//! On XFS each extent is also given in the units of the peers: the packed fsbno
//! (`agno << agblklog | agbno`, the bmbt's startblock, as `xfs_db bmap` prints it), its AG and
//! AG block, and the daddr (512-byte sector) of its first block.

use super::{Global, output, stat::FileArg};
use crate::fs::{Extent, FsKind};

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

/// Where a linear XFS block is in the peers' units.
struct XfsPlace {
    fsbno: u64,
    agno: u64,
    agbno: u64,
    daddr: u64,
}

/// The XFS geometry that turns linear blocks into fsbnos and daddrs.
struct XfsGeometry {
    agblocks: u64,
    agblklog: u8,
    sectors_per_block: u64,
}

impl XfsGeometry {
    fn read(src: &dyn crate::image::BlockSource) -> crate::Result<Self> {
        let bytes = src.read_at(0, src.len().min(32768) as usize)?;
        let sb = crate::xfs::Superblock::parse(&bytes, &crate::Findings::new())?;
        Ok(Self {
            agblocks: u64::from(sb.agblocks()),
            agblklog: sb.agblklog(),
            sectors_per_block: u64::from(sb.blocksize() / 512),
        })
    }

    fn place(&self, linear: u64) -> XfsPlace {
        let (agno, agbno) = (linear / self.agblocks, linear % self.agblocks);
        XfsPlace {
            fsbno: (agno << self.agblklog) | agbno,
            agno,
            agbno,
            daddr: linear.saturating_mul(self.sectors_per_block),
        }
    }
}

/// Run `map`.
pub fn run(a: &Args, g: &Global) -> crate::Result<i32> {
    let (o, ino) = a.file.open(g)?;
    let mut ext = o.fs.map(ino)?;
    if a.merge {
        ext = crate::fs::merge_extents(&ext);
    }
    let geo = if o.fs.kind() == FsKind::Xfs { Some(XfsGeometry::read(o.fs.source())?) } else { None };
    let findings = o.findings();
    if g.json {
        let rows: Vec<serde_json::Value> = ext
            .iter()
            .map(|e| {
                let mut v = serde_json::to_value(e).unwrap_or_default();
                if let (Some(geo), Some(m)) = (&geo, v.as_object_mut()) {
                    let p = geo.place(e.physical);
                    m.insert("fsbno".into(), p.fsbno.into());
                    m.insert("agno".into(), p.agno.into());
                    m.insert("agbno".into(), p.agbno.into());
                    m.insert("daddr".into(), p.daddr.into());
                }
                v
            })
            .collect();
        output::print_json(&serde_json::json!({
            "ino": ino, "block_size": o.fs.block_size(), "extents": rows, "findings": findings,
        }))?;
    } else {
        output::write_stdout(text(&ext, geo.as_ref()).as_bytes())?;
        output::print_findings(&findings);
    }
    Ok(output::exit_code(&findings))
}

/// The table: ext4 `logical physical length flags`; XFS with `fsbno`, `agno/agbno` and `daddr`
/// beside the linear block.
fn text(ext: &[Extent], geo: Option<&XfsGeometry>) -> String {
    let flags = |e: &Extent| if e.unwritten { "unwritten" } else { "" };
    let Some(geo) = geo else {
        let mut s = format!("{:>12} {:>14} {:>10}  flags\n", "logical", "physical", "length");
        for e in ext {
            s += &format!("{:>12} {:>14} {:>10}  {}\n", e.logical, e.physical, e.length, flags(e));
        }
        return s;
    };
    let mut s = format!(
        "{:>12} {:>14} {:>14} {:>14} {:>14} {:>10}  flags\n",
        "logical", "physical", "fsbno", "agno/agbno", "daddr", "length"
    );
    for e in ext {
        let p = geo.place(e.physical);
        s += &format!(
            "{:>12} {:>14} {:>14} {:>14} {:>14} {:>10}  {}\n",
            e.logical,
            e.physical,
            p.fsbno,
            format!("{}/{}", p.agno, p.agbno),
            p.daddr,
            e.length,
            flags(e)
        );
    }
    s
}
