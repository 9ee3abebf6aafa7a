//! Fork mappings: the 128-bit extent record and the bmbt (root in the inode, long-format blocks
//! with v5 headers and crc below it).

use super::Xfs;
use super::crc;
use super::inode::{FMT_BTREE, FMT_EXTENTS, Fork, Inode};
use crate::error::{Error, Result};
use core::mem::offset_of;
use std::collections::HashSet;
use zerocopy::byteorder::{BE, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, KnownLayout};

/// "BMAP" (v4 bmbt block).
pub const BMAP_MAGIC: u32 = 0x424d_4150;
/// "BMA3" (v5 bmbt block).
pub const BMA3_MAGIC: u32 = 0x424d_4133;
/// Offset of the crc in a v5 long-format block.
pub const LBLOCK_CRC_OFF: usize = 64;
/// Deepest bmbt this reader follows (the kernel's limit for 64-bit counts is below this).
pub const MAX_BMBT_LEVELS: u16 = 12;

/// One extent record (`xfs_bmbt_rec`), decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BmbtRec {
    /// First logical block.
    pub startoff: u64,
    /// First block as a packed fsbno (agno << agblklog | agbno), or a realtime block.
    pub startblock: u64,
    /// Number of blocks.
    pub blockcount: u64,
    /// Unwritten (preallocated) extent.
    pub unwritten: bool,
}

/// The raw 16-byte record.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
pub struct DiskBmbtRec {
    /// High word: flag, startoff, high bits of startblock.
    pub l0: U64<BE>,
    /// Low word: low bits of startblock, blockcount.
    pub l1: U64<BE>,
}
const _: () = assert!(size_of::<DiskBmbtRec>() == 16);

impl DiskBmbtRec {
    /// Decode the bit fields.
    pub fn decode(&self) -> BmbtRec {
        let l0 = self.l0.get();
        let l1 = self.l1.get();
        BmbtRec {
            unwritten: l0 >> 63 != 0,
            startoff: (l0 & ((1u64 << 63) - 1)) >> 9,
            startblock: ((l0 & 0x1ff) << 43) | (l1 >> 21),
            blockcount: l1 & ((1u64 << 21) - 1),
        }
    }
}

/// The bmbt root in the inode (`xfs_bmdr_block`).
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
pub struct DiskBmdr {
    /// Level of the root (≥ 1).
    pub level: U16<BE>,
    /// Records in the root.
    pub numrecs: U16<BE>,
}
const _: () = assert!(size_of::<DiskBmdr>() == 4);

/// Long-format btree block header, v4 part.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
pub struct DiskLblock {
    /// "BMAP"/"BMA3".
    pub magic: U32<BE>,
    /// Level (0 = leaf).
    pub level: U16<BE>,
    /// Records.
    pub numrecs: U16<BE>,
    /// Left sibling fsbno.
    pub leftsib: U64<BE>,
    /// Right sibling fsbno.
    pub rightsib: U64<BE>,
}
const _: () = assert!(size_of::<DiskLblock>() == 24);

/// v5 additions to the long-format header.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
pub struct DiskLblockV5 {
    /// Disk address (512-byte units) of this block.
    pub blkno: U64<BE>,
    /// LSN of the last write.
    pub lsn: U64<BE>,
    /// File-system (meta) uuid.
    pub uuid: [u8; 16],
    /// Owning inode.
    pub owner: U64<BE>,
    /// crc32c (little-endian).
    pub crc: [u8; 4],
    /// Padding.
    pub pad: U32<BE>,
}
const _: () = assert!(size_of::<DiskLblockV5>() == 48);
// The v5 fields sit after the 24-byte v4 header: bb_lsn at 32, bb_crc at 64.
const _: () = assert!(size_of::<DiskLblock>() + offset_of!(DiskLblockV5, lsn) == 32);
const _: () = assert!(size_of::<DiskLblock>() + offset_of!(DiskLblockV5, crc) == LBLOCK_CRC_OFF);

/// A bmbt block that was visited while mapping a fork (for tests and `map --json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BmbtBlock {
    /// Linear block number.
    pub block: u64,
    /// Level.
    pub level: u16,
}

fn be64(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    Some(u64::from_be_bytes(s.try_into().ok()?))
}

fn parse_recs(bytes: &[u8], n: usize) -> Vec<BmbtRec> {
    <[DiskBmbtRec]>::ref_from_prefix_with_elems(bytes, n)
        .map(|(r, _)| r.iter().map(|x| x.decode()).collect())
        .unwrap_or_default()
}

impl Xfs {
    /// The level of a btree-format fork's root in the inode (None when the fork is not a
    /// btree). Level 1: the root points at leaves; 2 or more: interior blocks on disk too.
    pub fn bmbt_root_level(&self, ino: &Inode, fork: Fork) -> Option<u16> {
        if ino.fork_format(fork)? != FMT_BTREE {
            return None;
        }
        DiskBmdr::ref_from_prefix(ino.fork_bytes(fork)).ok().map(|(r, _)| r.level.get())
    }

    /// The raw records of a fork (extents or btree format), sorted by startoff, with the bmbt
    /// blocks visited. Local/dev forks and absent attr forks give no records.
    pub fn fork_records(&self, ino: &Inode, fork: Fork) -> Result<(Vec<BmbtRec>, Vec<BmbtBlock>)> {
        let Some(fmt) = ino.fork_format(fork) else { return Ok((vec![], vec![])) };
        let bytes = ino.fork_bytes(fork);
        let next = ino.fork_nextents(fork);
        let mut blocks = vec![];
        let mut recs = match fmt {
            FMT_EXTENTS => {
                let cap = bytes.len() / 16;
                if next > cap as u64 {
                    return Err(Error::corrupt(
                        "xfs inode fork",
                        ino.ino,
                        ino.offset,
                        format!(
                            "inode {}: {next} extents do not fit in a {}-byte fork",
                            ino.ino,
                            bytes.len()
                        ),
                    ));
                }
                parse_recs(bytes, next as usize)
            }
            FMT_BTREE => {
                let mut out = vec![];
                self.walk_bmbt_root(ino, fork, bytes, next, &mut out, &mut blocks)?;
                out
            }
            _ => vec![],
        };
        if fmt == FMT_BTREE && recs.len() as u64 != next {
            self.findings.error(
                "xfs bmbt",
                Some(ino.ino),
                Some(ino.offset),
                format!("inode {}: {} extent records found, the inode says {next}", ino.ino, recs.len()),
            );
        }
        recs.sort_by_key(|r| r.startoff);
        // overlapping records: keep the first, report the rest
        let mut out: Vec<BmbtRec> = Vec::with_capacity(recs.len());
        for r in recs {
            if r.blockcount == 0 {
                self.findings.error(
                    "xfs bmbt",
                    Some(ino.ino),
                    Some(ino.offset),
                    format!("inode {}: zero-length extent at offset {}", ino.ino, r.startoff),
                );
                continue;
            }
            if let Some(l) = out.last()
                && l.startoff + l.blockcount > r.startoff
            {
                self.findings.error(
                    "xfs bmbt",
                    Some(ino.ino),
                    Some(ino.offset),
                    format!("inode {}: extents overlap at logical block {}", ino.ino, r.startoff),
                );
                continue;
            }
            out.push(r);
        }
        Ok((out, blocks))
    }

    fn walk_bmbt_root(
        &self,
        ino: &Inode,
        fork: Fork,
        bytes: &[u8],
        next: u64,
        out: &mut Vec<BmbtRec>,
        blocks: &mut Vec<BmbtBlock>,
    ) -> Result<()> {
        let bad = |d: String| Error::corrupt("xfs bmbt root (in inode)", ino.ino, ino.offset, d);
        let (root, _) = DiskBmdr::ref_from_prefix(bytes).map_err(|_| bad("fork too small".into()))?;
        let level = root.level.get();
        let numrecs = usize::from(root.numrecs.get());
        let maxrecs = bytes.len().saturating_sub(4) / 16;
        if level == 0 || level > MAX_BMBT_LEVELS {
            return Err(bad(format!("inode {}: {fork:?} fork bmbt root level {level}", ino.ino)));
        }
        if numrecs == 0 || numrecs > maxrecs {
            return Err(bad(format!("inode {}: root holds {numrecs} records, room for {maxrecs}", ino.ino)));
        }
        let ptr_off = 4 + maxrecs * 8;
        let limit = next.min(self.sb.dblocks()).saturating_add(1);
        let mut seen = HashSet::new();
        for i in 0..numrecs {
            let p = be64(bytes, ptr_off + i * 8).ok_or_else(|| bad("pointer outside the fork".into()))?;
            self.walk_bmbt_block(ino, p, level - 1, limit, out, blocks, &mut seen)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn walk_bmbt_block(
        &self,
        ino: &Inode,
        fsbno: u64,
        level: u16,
        limit: u64,
        out: &mut Vec<BmbtRec>,
        blocks: &mut Vec<BmbtBlock>,
        seen: &mut HashSet<u64>,
    ) -> Result<()> {
        let Some(lin) = self.sb.fsb_to_linear(fsbno) else {
            return Err(Error::corrupt(
                "xfs bmbt block",
                fsbno,
                0,
                format!(
                    "inode {}: bmbt pointer {fsbno:#x} (packed fsbno) is outside the file system",
                    ino.ino
                ),
            ));
        };
        let (agno, agbno) = self.sb.fsb_split(fsbno);
        let bs = self.sb.blocksize() as usize;
        let off = lin * bs as u64;
        let bad = |d: String| {
            Error::corrupt(
                "xfs bmbt block",
                lin,
                off,
                format!("inode {}, AG {agno} agbno {agbno}: {d}", ino.ino),
            )
        };
        if !seen.insert(lin) {
            return Err(bad("block visited twice (loop in the bmbt)".into()));
        }
        if out.len() as u64 > limit || seen.len() as u64 > limit.saturating_add(16) {
            return Err(bad(format!("more records than the inode's {limit} extents")));
        }
        let b = self.src.read_at(off, bs)?;
        let (h, _) = DiskLblock::ref_from_prefix(&b).map_err(|_| bad("short block".into()))?;
        let v5 = self.sb.has_crc();
        let want = if v5 { BMA3_MAGIC } else { BMAP_MAGIC };
        if h.magic.get() != want {
            return Err(bad(format!("bad magic {:#010x}, expected {want:#010x}", h.magic.get())));
        }
        if h.level.get() != level {
            return Err(bad(format!("level {}, expected {level}", h.level.get())));
        }
        let hdr = if v5 { 72 } else { 24 };
        if v5 {
            match crc::verify(&b, LBLOCK_CRC_OFF) {
                Some((true, _, _)) => {}
                Some((false, s, c)) => self.findings.error(
                    "xfs bmbt block",
                    Some(lin),
                    Some(off),
                    format!("inode {}, AG {agno} agbno {agbno}: crc {s:#010x}, computed {c:#010x}", ino.ino),
                ),
                None => return Err(bad("short block".into())),
            }
            if let Ok((v, _)) = DiskLblockV5::ref_from_prefix(&b[24..]) {
                let daddr = off / 512;
                if v.blkno.get() != daddr {
                    self.findings.error(
                        "xfs bmbt block",
                        Some(lin),
                        Some(off),
                        format!("inode {}: header says daddr {}, it is at {daddr}", ino.ino, v.blkno.get()),
                    );
                }
                if v.owner.get() != ino.ino {
                    self.findings.error(
                        "xfs bmbt block",
                        Some(lin),
                        Some(off),
                        format!("inode {}: block owned by inode {}", ino.ino, v.owner.get()),
                    );
                }
                if v.uuid != self.sb.meta_uuid() {
                    self.findings.error(
                        "xfs bmbt block",
                        Some(lin),
                        Some(off),
                        format!("inode {}: uuid mismatch", ino.ino),
                    );
                }
            }
        }
        let numrecs = usize::from(h.numrecs.get());
        let maxrecs = (bs - hdr) / 16;
        if numrecs > maxrecs {
            return Err(bad(format!("{numrecs} records, room for {maxrecs}")));
        }
        let body = b.get(hdr..).unwrap_or(&[]);
        if level == 0 {
            out.extend(parse_recs(body, numrecs));
            blocks.push(BmbtBlock { block: lin, level });
            return Ok(());
        }
        if numrecs == 0 {
            return Err(bad("empty interior block".into()));
        }
        blocks.push(BmbtBlock { block: lin, level });
        let ptr_off = maxrecs * 8;
        let ptrs: Vec<u64> = (0..numrecs).filter_map(|i| be64(body, ptr_off + i * 8)).collect();
        drop(b);
        for p in ptrs {
            self.walk_bmbt_block(ino, p, level - 1, limit, out, blocks, seen)?;
        }
        Ok(())
    }
}
