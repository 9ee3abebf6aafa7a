//! The AG headers field by field, named as `xfs_db`'s `agf`, `agi` and `agfl` print them
//! (`xfs_db -r -c 'agf N' -c print`): the structure view of `daxray ag`.

use super::Xfs;
use super::ag::{AGF_CRC_OFF, AGFL_CRC_OFF, AGFL_MAGIC, AGI_CRC_OFF, DiskAgf, DiskAgi};
use super::blockhdr::DiskAgfl;
use super::crc;
use super::sb::fmt_uuid;
use crate::error::{Error, Result};
use zerocopy::FromBytes;
use zerocopy::byteorder::{BE, U32};

/// One AG header as `(field, value)` pairs in xfs_db's order and notation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HeaderView {
    /// "agf", "agi" or "agfl".
    pub header: &'static str,
    /// AG number.
    pub agno: u32,
    /// Disk address (512-byte sector) of the header.
    pub daddr: u64,
    /// The fields: name and value, as xfs_db prints them.
    pub fields: Vec<(String, String)>,
}

/// A number as xfs_db prints an AG block or inode pointer: `null` for all ones.
fn ptr(v: u32) -> String {
    if v == u32::MAX { "null".into() } else { v.to_string() }
}

/// A number in C's `%#x` (no prefix for zero), as xfs_db prints LSNs.
fn alt_hex(v: u64) -> String {
    if v == 0 { "0".into() } else { format!("{v:#x}") }
}

/// The crc field: `0x... (correct)` or `(bad)`.
fn crc_field(sector: &[u8], off: usize) -> String {
    match crc::verify(sector, off) {
        // xfs_db shows the crc's four bytes as one big-endian word.
        Some((ok, _, _)) => {
            let raw: [u8; 4] = sector[off..off + 4].try_into().unwrap_or_default();
            format!("{:#x} ({})", u32::from_be_bytes(raw), if ok { "correct" } else { "bad" })
        }
        None => "(short sector)".into(),
    }
}

impl Xfs {
    /// The sector of header `index` (1 AGF, 2 AGI, 3 AGFL) of AG `agno`: its bytes' offset.
    fn ag_sector(&self, agno: u32, index: u64) -> Result<u64> {
        if agno >= self.sb.agcount() {
            return Err(Error::Usage(format!("AG {agno}: the file system has AGs 0..{}", self.sb.agcount())));
        }
        let bs = u64::from(self.sb.blocksize());
        Ok(u64::from(agno) * u64::from(self.sb.agblocks()) * bs + index * u64::from(self.sb.sectsize()))
    }

    /// The AGF, AGI and AGFL of AG `agno`, field by field.
    pub fn ag_headers(&self, agno: u32) -> Result<Vec<HeaderView>> {
        let v5 = self.sb.has_crc();
        let f = self.sb.features();
        let sect = self.sb.sectsize() as usize;
        let mut out = vec![];
        // AGF
        let off = self.ag_sector(agno, 1)?;
        let b = self.src.read_at(off, sect)?;
        let (a, _) = DiskAgf::ref_from_prefix(&b)
            .map_err(|_| Error::corrupt("xfs AGF", off / 512, off, "sector too small"))?;
        let mut v: Vec<(String, String)> = vec![
            ("magicnum".into(), format!("{:#x}", a.magicnum.get())),
            ("versionnum".into(), a.versionnum.get().to_string()),
            ("seqno".into(), a.seqno.get().to_string()),
            ("length".into(), a.length.get().to_string()),
            ("bnoroot".into(), a.roots[0].get().to_string()),
            ("cntroot".into(), a.roots[1].get().to_string()),
        ];
        // xfs_db leaves the value out for a btree the file system does not have.
        let opt = |on: bool, x: u32| if on { x.to_string() } else { String::new() };
        v.push(("rmaproot".into(), opt(f.rmapbt, a.roots[2].get())));
        v.push(("refcntroot".into(), opt(f.reflink, a.refcount_root.get())));
        v.push(("bnolevel".into(), a.levels[0].get().to_string()));
        v.push(("cntlevel".into(), a.levels[1].get().to_string()));
        v.push(("rmaplevel".into(), a.levels[2].get().to_string()));
        v.push(("refcntlevel".into(), a.refcount_level.get().to_string()));
        v.push(("rmapblocks".into(), a.rmap_blocks.get().to_string()));
        v.push(("refcntblocks".into(), a.refcount_blocks.get().to_string()));
        for (k, x) in [
            ("flfirst", a.flfirst.get()),
            ("fllast", a.fllast.get()),
            ("flcount", a.flcount.get()),
            ("freeblks", a.freeblks.get()),
            ("longest", a.longest.get()),
            ("btreeblks", a.btreeblks.get()),
        ] {
            v.push((k.into(), x.to_string()));
        }
        if v5 {
            v.push(("uuid".into(), fmt_uuid(&a.uuid)));
            v.push(("lsn".into(), alt_hex(a.lsn.get())));
            v.push(("crc".into(), crc_field(&b, AGF_CRC_OFF)));
        }
        out.push(HeaderView { header: "agf", agno, daddr: off / 512, fields: v });
        // AGI
        let off = self.ag_sector(agno, 2)?;
        let b = self.src.read_at(off, sect)?;
        let (a, _) = DiskAgi::ref_from_prefix(&b)
            .map_err(|_| Error::corrupt("xfs AGI", off / 512, off, "sector too small"))?;
        let mut v: Vec<(String, String)> = vec![
            ("magicnum".into(), format!("{:#x}", a.magicnum.get())),
            ("versionnum".into(), a.versionnum.get().to_string()),
            ("seqno".into(), a.seqno.get().to_string()),
            ("length".into(), a.length.get().to_string()),
            ("count".into(), a.count.get().to_string()),
            ("root".into(), a.root.get().to_string()),
            ("level".into(), a.level.get().to_string()),
            ("freecount".into(), a.freecount.get().to_string()),
            ("newino".into(), ptr(a.newino.get())),
            ("dirino".into(), ptr(a.dirino.get())),
        ];
        let unlinked: Vec<String> = a
            .unlinked
            .iter()
            .enumerate()
            .filter(|(_, u)| u.get() != u32::MAX)
            .map(|(i, u)| format!("{i}:{}", u.get()))
            .collect();
        v.push(("unlinked[0-63]".into(), unlinked.join(" ")));
        if v5 {
            v.push(("uuid".into(), fmt_uuid(&a.uuid)));
            v.push(("crc".into(), crc_field(&b, AGI_CRC_OFF)));
            v.push(("lsn".into(), alt_hex(a.lsn.get())));
            if f.finobt {
                v.push(("free_root".into(), a.free_root.get().to_string()));
                v.push(("free_level".into(), a.free_level.get().to_string()));
            }
            if f.inobtcount {
                v.push(("ino_blocks".into(), a.iblocks.get().to_string()));
                v.push(("fino_blocks".into(), a.fblocks.get().to_string()));
            }
        }
        out.push(HeaderView { header: "agi", agno, daddr: off / 512, fields: v });
        // AGFL
        let off = self.ag_sector(agno, 3)?;
        let b = self.src.read_at(off, sect)?;
        let mut v = vec![];
        let list = if v5 {
            let (h, rest) = DiskAgfl::ref_from_prefix(&b)
                .map_err(|_| Error::corrupt("xfs AGFL", off / 512, off, "sector too small"))?;
            v.push(("magicnum".into(), format!("{:#x}", h.magicnum.get())));
            v.push(("seqno".into(), h.seqno.get().to_string()));
            v.push(("uuid".into(), fmt_uuid(&h.uuid)));
            v.push(("lsn".into(), alt_hex(h.lsn.get())));
            v.push(("crc".into(), crc_field(&b, AGFL_CRC_OFF)));
            if h.magicnum.get() != AGFL_MAGIC {
                self.findings.error(
                    format!("xfs AGFL (AG {agno})"),
                    Some(off / 512),
                    Some(off),
                    format!("bad magic {:#010x}", h.magicnum.get()),
                );
            }
            rest
        } else {
            &b[..]
        };
        let n = list.len() / 4;
        let (bno, _) = <[U32<BE>]>::ref_from_prefix_with_elems(list, n)
            .map_err(|_| Error::corrupt("xfs AGFL", off / 512, off, "free list does not fit the sector"))?;
        let items: Vec<String> =
            bno.iter().enumerate().map(|(i, x)| format!("{i}:{}", ptr(x.get()))).collect();
        v.push((format!("bno[0-{}]", n.saturating_sub(1)), items.join(" ")));
        out.push(HeaderView { header: "agfl", agno, daddr: off / 512, fields: v });
        Ok(out)
    }
}
