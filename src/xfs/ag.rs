//! AG headers: AGF (free space), AGI (inodes), AGFL (free list), each one sector at the start of
//! every allocation group (sectors 1, 2 and 3).

use super::crc;
use super::sb::Superblock;
use crate::error::{Findings, Result};
use crate::image::BlockSource;
use core::mem::offset_of;
use serde::Serialize;
use zerocopy::byteorder::{BE, U32, U64};
use zerocopy::{FromBytes, Immutable, KnownLayout};

/// "XAGF".
pub const AGF_MAGIC: u32 = 0x5841_4746;
/// "XAGI".
pub const AGI_MAGIC: u32 = 0x5841_4749;
/// "XAFL".
pub const AGFL_MAGIC: u32 = 0x5841_464c;
/// Offset of `agf_crc`.
pub const AGF_CRC_OFF: usize = 216;
/// Offset of `agi_crc`.
pub const AGI_CRC_OFF: usize = 312;
/// Offset of `agfl_crc`.
pub const AGFL_CRC_OFF: usize = 32;

/// The on-disk AGF.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone)]
#[repr(C)]
pub struct DiskAgf {
    /// "XAGF".
    pub magicnum: U32<BE>,
    /// Version (1).
    pub versionnum: U32<BE>,
    /// AG number.
    pub seqno: U32<BE>,
    /// Blocks in this AG.
    pub length: U32<BE>,
    /// Roots of the bno, cnt and rmap btrees.
    pub roots: [U32<BE>; 3],
    /// Levels of the bno, cnt and rmap btrees.
    pub levels: [U32<BE>; 3],
    /// First AGFL slot in use.
    pub flfirst: U32<BE>,
    /// Last AGFL slot in use.
    pub fllast: U32<BE>,
    /// AGFL slots in use.
    pub flcount: U32<BE>,
    /// Free blocks.
    pub freeblks: U32<BE>,
    /// Longest free extent.
    pub longest: U32<BE>,
    /// Blocks held by the free-space btrees.
    pub btreeblks: U32<BE>,
    /// uuid (v5).
    pub uuid: [u8; 16],
    /// rmapbt blocks.
    pub rmap_blocks: U32<BE>,
    /// refcountbt blocks.
    pub refcount_blocks: U32<BE>,
    /// refcountbt root.
    pub refcount_root: U32<BE>,
    /// refcountbt level.
    pub refcount_level: U32<BE>,
    /// Spare.
    pub spare64: [U64<BE>; 14],
    /// LSN of the last write.
    pub lsn: U64<BE>,
    /// crc32c (little-endian).
    pub crc: [u8; 4],
    /// Padding.
    pub spare2: U32<BE>,
}
const _: () = assert!(size_of::<DiskAgf>() == 224);
const _: () = assert!(offset_of!(DiskAgf, uuid) == 64);
const _: () = assert!(offset_of!(DiskAgf, lsn) == 208);
const _: () = assert!(offset_of!(DiskAgf, crc) == AGF_CRC_OFF);

/// The on-disk AGI.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone)]
#[repr(C)]
pub struct DiskAgi {
    /// "XAGI".
    pub magicnum: U32<BE>,
    /// Version (1).
    pub versionnum: U32<BE>,
    /// AG number.
    pub seqno: U32<BE>,
    /// Blocks in this AG.
    pub length: U32<BE>,
    /// Allocated inodes.
    pub count: U32<BE>,
    /// inobt root.
    pub root: U32<BE>,
    /// inobt levels.
    pub level: U32<BE>,
    /// Free inodes.
    pub freecount: U32<BE>,
    /// Last allocated inode chunk.
    pub newino: U32<BE>,
    /// Unused.
    pub dirino: U32<BE>,
    /// Unlinked-but-open inode hash buckets.
    pub unlinked: [U32<BE>; 64],
    /// uuid (v5).
    pub uuid: [u8; 16],
    /// crc32c (little-endian).
    pub crc: [u8; 4],
    /// Padding.
    pub pad32: U32<BE>,
    /// LSN of the last write.
    pub lsn: U64<BE>,
    /// finobt root.
    pub free_root: U32<BE>,
    /// finobt levels.
    pub free_level: U32<BE>,
    /// inobt blocks.
    pub iblocks: U32<BE>,
    /// finobt blocks.
    pub fblocks: U32<BE>,
}
const _: () = assert!(size_of::<DiskAgi>() == 344);
const _: () = assert!(offset_of!(DiskAgi, unlinked) == 40);
const _: () = assert!(offset_of!(DiskAgi, uuid) == 296);
const _: () = assert!(offset_of!(DiskAgi, crc) == AGI_CRC_OFF);
const _: () = assert!(offset_of!(DiskAgi, lsn) == 320);

/// What `info` shows of one AG.
#[derive(Debug, Clone, Serialize)]
pub struct AgSummary {
    /// AG number.
    pub agno: u32,
    /// Blocks in the AG.
    pub length: u32,
    /// Free blocks (AGF).
    pub freeblks: u32,
    /// AGFL entries in use.
    pub flcount: u32,
    /// Blocks of the free-space btrees (and rmapbt) beyond their roots (AGF).
    pub btreeblks: u32,
    /// Allocated inodes (AGI).
    pub icount: u32,
    /// Free inodes (AGI).
    pub ifree: u32,
    /// Inodes on the unlinked lists.
    pub unlinked_buckets_used: u32,
    /// Headers that were bad (magic, seqno, crc).
    pub problems: Vec<String>,
}

/// Read and check the AGF, AGI and AGFL of one AG. Problems become findings (structure, AG and
/// sector) and are listed in the summary; only an unreadable AG start is an error.
pub fn read_ag(src: &dyn BlockSource, sb: &Superblock, agno: u32, findings: &Findings) -> Result<AgSummary> {
    let sect = u64::from(sb.sectsize());
    let ag_start = u64::from(agno) * u64::from(sb.agblocks()) * u64::from(sb.blocksize());
    let mut s = AgSummary {
        agno,
        length: 0,
        freeblks: 0,
        flcount: 0,
        btreeblks: 0,
        icount: 0,
        ifree: 0,
        unlinked_buckets_used: 0,
        problems: vec![],
    };
    let mut problem = |structure: &str, off: u64, msg: String, s: &mut AgSummary| {
        findings.error(format!("xfs {structure} (AG {agno})"), Some(off / 512), Some(off), msg.clone());
        s.problems.push(format!("{structure}: {msg}"));
    };
    let uuid = sb.meta_uuid();
    // AGF
    let off = ag_start + sect;
    let b = src.read_at(off, sect as usize)?;
    match DiskAgf::ref_from_prefix(&b) {
        Ok((agf, _)) => {
            if agf.magicnum.get() != AGF_MAGIC {
                problem("AGF", off, format!("bad magic {:#010x}", agf.magicnum.get()), &mut s);
            } else {
                if agf.seqno.get() != agno {
                    problem("AGF", off, format!("seqno {} in AG {agno}", agf.seqno.get()), &mut s);
                }
                s.length = agf.length.get();
                s.freeblks = agf.freeblks.get();
                s.flcount = agf.flcount.get();
                s.btreeblks = agf.btreeblks.get();
                if sb.has_crc() {
                    check_crc("AGF", &b, AGF_CRC_OFF, off, &mut s, &mut problem);
                    if agf.uuid != uuid {
                        problem("AGF", off, "uuid differs from the superblock".into(), &mut s);
                    }
                }
            }
        }
        Err(_) => problem("AGF", off, "sector too small".into(), &mut s),
    }
    // AGI
    let off = ag_start + 2 * sect;
    let b = src.read_at(off, sect as usize)?;
    match DiskAgi::ref_from_prefix(&b) {
        Ok((agi, _)) => {
            if agi.magicnum.get() != AGI_MAGIC {
                problem("AGI", off, format!("bad magic {:#010x}", agi.magicnum.get()), &mut s);
            } else {
                if agi.seqno.get() != agno {
                    problem("AGI", off, format!("seqno {} in AG {agno}", agi.seqno.get()), &mut s);
                }
                s.icount = agi.count.get();
                s.ifree = agi.freecount.get();
                s.unlinked_buckets_used = agi.unlinked.iter().filter(|u| u.get() != u32::MAX).count() as u32;
                if sb.has_crc() {
                    check_crc("AGI", &b, AGI_CRC_OFF, off, &mut s, &mut problem);
                    if agi.uuid != uuid {
                        problem("AGI", off, "uuid differs from the superblock".into(), &mut s);
                    }
                }
            }
        }
        Err(_) => problem("AGI", off, "sector too small".into(), &mut s),
    }
    // AGFL (headers only on v5)
    if sb.has_crc() {
        let off = ag_start + 3 * sect;
        let b = src.read_at(off, sect as usize)?;
        let magic = b.get(..4).map(|m| u32::from_be_bytes([m[0], m[1], m[2], m[3]])).unwrap_or(0);
        if magic != AGFL_MAGIC {
            problem("AGFL", off, format!("bad magic {magic:#010x}"), &mut s);
        } else {
            check_crc("AGFL", &b, AGFL_CRC_OFF, off, &mut s, &mut problem);
        }
    }
    Ok(s)
}

fn check_crc(
    what: &str,
    b: &[u8],
    crc_off: usize,
    off: u64,
    s: &mut AgSummary,
    problem: &mut impl FnMut(&str, u64, String, &mut AgSummary),
) {
    match crc::verify(b, crc_off) {
        Some((true, _, _)) => {}
        Some((false, stored, calc)) => {
            problem(what, off, format!("crc {stored:#010x}, computed {calc:#010x}"), s)
        }
        None => problem(what, off, "sector too small for the crc".into(), s),
    }
}
