//! `daxray bd IMAGE BLOCK [--count N]`: a hexdump of blocks as the view holds them, in the layout
//! of `debugfs bd` (octal offsets, 16 bytes a line in groups of two, printable characters, a
//! `*` line for repeated lines).

use super::{Global, output};
use crate::fs::FsKind;
use crate::open::open;
use std::path::PathBuf;

/// Arguments of `bd`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image file or block device.
    pub image: PathBuf,
    /// First block: an ext4 file-system block; on XFS a linear block (agno * agblocks + agbno,
    /// the units of `map`'s `physical` column), or with --fsbno a packed fsbno as xfs_db's
    /// `fsb` takes it.
    pub block: u64,
    /// Number of blocks to dump.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub count: u64,
    /// XFS: BLOCK is a packed fsbno (agno << agblklog | agbno), as xfs_db's `fsb` and `bmap`
    /// print it.
    #[arg(long)]
    pub fsbno: bool,
}

/// The streaming state of a `debugfs bd`-style dump (e2fsprogs `do_byte_hexdump`): lines equal
/// to the one before are folded into one `*` line.
#[derive(Default)]
pub struct Hexdump {
    /// Bytes dumped so far (the next line's offset).
    at: u64,
    /// The last 16-byte line printed or folded, and whether lines are being folded now.
    last: Option<(Vec<u8>, bool)>,
}

impl Hexdump {
    /// Append the lines for `bytes` (continuing the offsets of earlier calls) to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut String) {
        for line in bytes.chunks(16) {
            let off = self.at;
            self.at += line.len() as u64;
            if let Some((prev, folding)) = &mut self.last
                && prev.as_slice() == line
            {
                if !*folding {
                    out.push_str("*\n");
                    *folding = true;
                }
                continue;
            }
            self.last = Some((line.to_vec(), false));
            out.push_str(&format!("{off:04o}  "));
            for j in 0..16 {
                match line.get(j) {
                    Some(b) => out.push_str(&format!("{b:02x}")),
                    None => out.push_str("  "),
                }
                if j % 2 == 1 {
                    out.push(' ');
                }
            }
            out.push(' ');
            out.extend(line.iter().map(|b| if (0x20..0x7f).contains(b) { char::from(*b) } else { '.' }));
            out.push('\n');
        }
    }
}

/// Run `bd`.
pub fn run(a: &Args, g: &Global) -> crate::Result<i32> {
    let o = open(&a.image, &g.open_options())?;
    let bs = u64::from(o.fs.block_size());
    let first = if a.fsbno { fsbno_to_linear(&o, a.block)? } else { a.block };
    let src = o.fs.source();
    let blocks = src.len() / bs;
    let end = first.checked_add(a.count).filter(|e| *e <= blocks).ok_or_else(|| {
        crate::Error::Usage(format!(
            "blocks {first}..{} are not all inside the file system's {blocks} blocks",
            first.saturating_add(a.count)
        ))
    })?;
    let mut dump = Hexdump::default();
    let mut text = String::new();
    let mut hex = String::new();
    for b in first..end {
        let bytes = src.read_at(b * bs, bs as usize)?;
        if g.json {
            hex.push_str(&hex::encode(&*bytes));
        } else {
            dump.feed(&bytes, &mut text);
            output::write_stdout(text.as_bytes())?;
            text.clear();
        }
    }
    let findings = o.findings();
    if g.json {
        output::print_json(&serde_json::json!({
            "block": first, "count": a.count, "block_size": bs, "offset": first * bs,
            "hex": hex, "findings": findings,
        }))?;
    } else {
        output::write_stdout(b"\n")?;
        output::print_findings(&findings);
    }
    Ok(output::exit_code(&findings))
}

/// A packed XFS fsbno as a linear block number.
fn fsbno_to_linear(o: &crate::open::Opened, fsbno: u64) -> crate::Result<u64> {
    if o.fs.kind() != FsKind::Xfs {
        return Err(crate::Error::Usage("--fsbno is for XFS (ext4 block numbers are linear)".into()));
    }
    let sb = crate::xfs::Superblock::parse(
        &o.fs.source().read_at(0, o.fs.source().len().min(32768) as usize)?,
        &crate::Findings::new(),
    )?;
    sb.fsb_to_linear(fsbno).ok_or_else(|| {
        let (agno, agbno) = sb.fsb_split(fsbno);
        crate::Error::Usage(format!("fsbno {fsbno} (AG {agno} agbno {agbno}) is outside the file system"))
    })
}
