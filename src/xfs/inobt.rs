//! The inode btree (inobt) of each AG: which inodes are allocated. Records and block layout from
//! `fs/xfs/libxfs/xfs_format.h` (`xfs_inobt_rec`, `xfs_inobt_key`, the short-form btree block).

use super::Xfs;
use super::ag::DiskAgi;
use super::blockhdr::{DiskSblockV5, IBT_CRC_MAGIC};
use super::crc;
use crate::error::{Error, Result};
use core::mem::offset_of;
use std::collections::HashSet;
use zerocopy::byteorder::{BE, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, KnownLayout};

/// `XFS_IBT_MAGIC` ("IABT"): v4 inobt block.
pub const IBT_MAGIC: u32 = 0x4941_4254;
/// Inodes in one inobt record (`XFS_INODES_PER_CHUNK`).
pub const INODES_PER_CHUNK: u64 = 64;
/// Deepest inobt followed (the kernel's `XFS_BTREE_MAXLEVELS` is 9).
pub const MAX_LEVELS: u32 = 9;

/// `struct xfs_inobt_rec` in its sparse form; on file systems without sparse inodes the
/// holemask and count bytes are the high bytes of a 32-bit free count of at most 64, so zero.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
pub struct DiskInobtRec {
    /// First inode of the chunk (AG-relative).
    pub startino: U32<BE>,
    /// One bit per 4 inodes that are not there (sparse chunks).
    pub holemask: U16<BE>,
    /// Inodes in the chunk (sparse form).
    pub count: u8,
    /// Free inodes in the chunk.
    pub freecount: u8,
    /// One bit per inode that is free.
    pub free: U64<BE>,
}
const _: () = assert!(size_of::<DiskInobtRec>() == 16);
const _: () = assert!(offset_of!(DiskInobtRec, holemask) == 4);
const _: () = assert!(offset_of!(DiskInobtRec, freecount) == 7);
const _: () = assert!(offset_of!(DiskInobtRec, free) == 8);

/// The v4 short-form btree block header (`xfs_btree_block` up to `bb_rightsib`).
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
pub struct DiskSblock {
    /// "IABT"/"IAB3".
    pub magic: U32<BE>,
    /// Level (0 = leaf).
    pub level: U16<BE>,
    /// Records in the block.
    pub numrecs: U16<BE>,
    /// Left sibling (agbno).
    pub leftsib: U32<BE>,
    /// Right sibling (agbno).
    pub rightsib: U32<BE>,
}
const _: () = assert!(size_of::<DiskSblock>() == 16);
const _: () = assert!(offset_of!(DiskSblock, numrecs) == offset_of!(DiskSblockV5, numrecs));

impl DiskInobtRec {
    /// The chunk's allocated inodes, as offsets 0..64 from `startino`: not in a hole and not free.
    pub fn allocated(&self) -> impl Iterator<Item = u64> + '_ {
        let hole = self.holemask.get();
        let free = self.free.get();
        (0..INODES_PER_CHUNK).filter(move |i| hole & (1 << (i / 4)) == 0 && free & (1 << i) == 0)
    }
}

impl Xfs {
    /// Every allocated inode of AG `agno` per its inobt, in inode order. A block that fails its
    /// checks is an error naming it; a bad crc is a finding.
    pub fn allocated_inodes(&self, agno: u32) -> Result<Vec<u64>> {
        let sb = &self.sb;
        let sect = u64::from(sb.sectsize());
        let bs = u64::from(sb.blocksize());
        let ag_block0 = u64::from(agno)
            .checked_mul(u64::from(sb.agblocks()))
            .ok_or_else(|| Error::corrupt("xfs AGI", 0, 0, format!("AG {agno}: start block overflows")))?;
        let agi_off = ag_block0.saturating_mul(bs).saturating_add(2 * sect);
        let b = self.src.read_at(agi_off, sect as usize)?;
        let (agi, _) = DiskAgi::ref_from_prefix(&b)
            .map_err(|_| Error::corrupt("xfs AGI", agi_off / 512, agi_off, "sector too small"))?;
        if agi.magicnum.get() != super::ag::AGI_MAGIC {
            return Err(Error::corrupt(
                "xfs AGI",
                agi_off / 512,
                agi_off,
                format!("AG {agno}: bad magic {:#010x}", agi.magicnum.get()),
            ));
        }
        let (root, levels) = (agi.root.get(), agi.level.get());
        if levels == 0 || levels > MAX_LEVELS {
            return Err(Error::corrupt(
                "xfs AGI",
                agi_off / 512,
                agi_off,
                format!("AG {agno}: inobt has {levels} levels (1..={MAX_LEVELS} expected)"),
            ));
        }
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        self.inobt_block(agno, root, levels - 1, &mut seen, &mut out)?;
        let shift = u32::from(sb.agblklog()) + u32::from(sb.inopblog());
        let base = u64::from(agno) << shift;
        let mut inos: Vec<u64> = out.into_iter().map(|agino| base | agino).collect();
        inos.sort_unstable();
        inos.dedup();
        Ok(inos)
    }

    fn inobt_block(
        &self,
        agno: u32,
        agbno: u32,
        level: u32,
        seen: &mut HashSet<u32>,
        out: &mut Vec<u64>,
    ) -> Result<()> {
        let sb = &self.sb;
        let bs = sb.blocksize() as usize;
        let lin = u64::from(agno) * u64::from(sb.agblocks()) + u64::from(agbno);
        let off = lin.saturating_mul(bs as u64);
        let bad =
            |d: String| Error::corrupt("xfs inobt block", lin, off, format!("AG {agno} agbno {agbno}: {d}"));
        if agbno >= sb.agblocks() {
            return Err(bad(format!("outside the AG ({} blocks)", sb.agblocks())));
        }
        if !seen.insert(agbno) {
            return Err(bad("block visited twice (loop in the inobt)".into()));
        }
        let b = self.src.read_at(off, bs)?;
        let (h, _) = DiskSblock::ref_from_prefix(&b).map_err(|_| bad("short block".into()))?;
        let v5 = sb.has_crc();
        let want = if v5 { IBT_CRC_MAGIC } else { IBT_MAGIC };
        if h.magic.get() != want {
            return Err(bad(format!("bad magic {:#010x}, expected {want:#010x}", h.magic.get())));
        }
        if u32::from(h.level.get()) != level {
            return Err(bad(format!("level {}, expected {level}", h.level.get())));
        }
        let hdr = if v5 { size_of::<DiskSblockV5>() } else { size_of::<DiskSblock>() };
        if v5 && let Some((false, s, c)) = crc::verify(&b, offset_of!(DiskSblockV5, crc)) {
            self.findings.error(
                "xfs inobt block",
                Some(lin),
                Some(off),
                format!("AG {agno} agbno {agbno}: crc {s:#010x}, computed {c:#010x}"),
            );
        }
        let numrecs = usize::from(h.numrecs.get());
        let body = b.get(hdr..).unwrap_or(&[]);
        if level == 0 {
            let (recs, _) = <[DiskInobtRec]>::ref_from_prefix_with_elems(body, numrecs)
                .map_err(|_| bad(format!("{numrecs} records do not fit in the block")))?;
            for r in recs {
                let start = u64::from(r.startino.get());
                out.extend(r.allocated().map(|i| start + i));
            }
            return Ok(());
        }
        let maxrecs = body.len() / 8;
        if numrecs == 0 || numrecs > maxrecs {
            return Err(bad(format!("{numrecs} pointers, room for {maxrecs}")));
        }
        let ptrs: Vec<u32> = <[U32<BE>]>::ref_from_prefix_with_elems(&body[maxrecs * 4..], numrecs)
            .map(|(p, _)| p.iter().map(|x| x.get()).collect())
            .map_err(|_| bad("pointers run past the block".into()))?;
        drop(b);
        for p in ptrs {
            self.inobt_block(agno, p, level - 1, seen, out)?;
        }
        Ok(())
    }
}
