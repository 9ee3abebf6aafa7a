//! Where a v5 metadata block keeps its self-describing header fields (LSN, uuid and crc),
//! found by the block's magic number, as log recovery needs them to stamp a replayed buffer
//! (`xlog_recover_get_buf_lsn`, and the write verifiers that set `*_lsn` and `*_crc`). The
//! offsets come from the structures of `fs/xfs/libxfs/xfs_format.h` and `xfs_da_format.h`:
//! those this crate reads elsewhere, and here the block headers only recovery reads.

use super::ag::{AGF_MAGIC, AGFL_MAGIC, AGI_MAGIC, DiskAgf, DiskAgi};
use super::bmap::{BMA3_MAGIC, DiskLblock, DiskLblockV5};
use super::dir::{XDB3, XDD3};
use super::sb::{DiskSb, XFS_SB_MAGIC};
use super::symlink::{DiskSymlinkHdr, XSLM};
use core::mem::{offset_of, size_of};
use zerocopy::byteorder::{BE, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, KnownLayout};

/// `XFS_ABTB_CRC_MAGIC` ("AB3B"): free space by block.
pub const ABTB_CRC_MAGIC: u32 = 0x4142_3342;
/// `XFS_ABTC_CRC_MAGIC` ("AB3C"): free space by size.
pub const ABTC_CRC_MAGIC: u32 = 0x4142_3343;
/// `XFS_RMAP_CRC_MAGIC` ("RMB3").
pub const RMAP_CRC_MAGIC: u32 = 0x524d_4233;
/// `XFS_REFC_CRC_MAGIC` ("R3FC").
pub const REFC_CRC_MAGIC: u32 = 0x5233_4643;
/// `XFS_IBT_CRC_MAGIC` ("IAB3").
pub const IBT_CRC_MAGIC: u32 = 0x4941_4233;
/// `XFS_FIBT_CRC_MAGIC` ("FIB3").
pub const FIBT_CRC_MAGIC: u32 = 0x4649_4233;
/// `XFS_DIR3_FREE_MAGIC` ("XDF3").
pub const DIR3_FREE_MAGIC: u32 = 0x5844_4633;
/// `XFS_DA3_NODE_MAGIC`.
pub const DA3_NODE_MAGIC: u16 = 0x3ebe;
/// `XFS_ATTR3_LEAF_MAGIC`.
pub const ATTR3_LEAF_MAGIC: u16 = 0x3bee;
/// `XFS_DIR3_LEAF1_MAGIC`.
pub const DIR3_LEAF1_MAGIC: u16 = 0x3df1;
/// `XFS_DIR3_LEAFN_MAGIC`.
pub const DIR3_LEAFN_MAGIC: u16 = 0x3dff;

/// `struct xfs_btree_block` in its short form (`xfs_btree_block_shdr`) with the v5 fields:
/// the AG btrees (free space, inodes, rmap, refcount).
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
pub struct DiskSblockV5 {
    /// `bb_magic`.
    pub magic: U32<BE>,
    /// `bb_level`.
    pub level: U16<BE>,
    /// `bb_numrecs`.
    pub numrecs: U16<BE>,
    /// `bb_leftsib` (agbno).
    pub leftsib: U32<BE>,
    /// `bb_rightsib` (agbno).
    pub rightsib: U32<BE>,
    /// `bb_blkno` (512-byte units).
    pub blkno: U64<BE>,
    /// `bb_lsn`.
    pub lsn: U64<BE>,
    /// `bb_uuid`.
    pub uuid: [u8; 16],
    /// `bb_owner` (AG number).
    pub owner: U32<BE>,
    /// `bb_crc` (little-endian).
    pub crc: [u8; 4],
}
const _: () = assert!(size_of::<DiskSblockV5>() == 56);
const _: () = assert!(offset_of!(DiskSblockV5, blkno) == 16);
const _: () = assert!(offset_of!(DiskSblockV5, lsn) == 24);
const _: () = assert!(offset_of!(DiskSblockV5, uuid) == 32);
const _: () = assert!(offset_of!(DiskSblockV5, owner) == 48);
const _: () = assert!(offset_of!(DiskSblockV5, crc) == 52);

/// `struct xfs_dir3_blk_hdr`: the head of v5 directory data, block and free blocks.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
pub struct DiskDir3BlkHdr {
    /// `magic`.
    pub magic: U32<BE>,
    /// `crc` (little-endian).
    pub crc: [u8; 4],
    /// `blkno` (512-byte units).
    pub blkno: U64<BE>,
    /// `lsn`.
    pub lsn: U64<BE>,
    /// `uuid`.
    pub uuid: [u8; 16],
    /// `owner` (inode).
    pub owner: U64<BE>,
}
const _: () = assert!(size_of::<DiskDir3BlkHdr>() == 48);
const _: () = assert!(offset_of!(DiskDir3BlkHdr, crc) == 4);
const _: () = assert!(offset_of!(DiskDir3BlkHdr, lsn) == 16);
const _: () = assert!(offset_of!(DiskDir3BlkHdr, uuid) == 24);

/// `struct xfs_da3_blkinfo`: the head of v5 dabtree nodes and directory and attr leaves, whose
/// 16-bit magic follows the sibling pointers.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
pub struct DiskDa3Blkinfo {
    /// `hdr.forw`.
    pub forw: U32<BE>,
    /// `hdr.back`.
    pub back: U32<BE>,
    /// `hdr.magic`.
    pub magic: U16<BE>,
    /// `hdr.pad`.
    pub pad: U16<BE>,
    /// `crc` (little-endian).
    pub crc: [u8; 4],
    /// `blkno` (512-byte units).
    pub blkno: U64<BE>,
    /// `lsn`.
    pub lsn: U64<BE>,
    /// `uuid`.
    pub uuid: [u8; 16],
    /// `owner` (inode).
    pub owner: U64<BE>,
}
const _: () = assert!(size_of::<DiskDa3Blkinfo>() == 56);
const _: () = assert!(offset_of!(DiskDa3Blkinfo, magic) == 8);
const _: () = assert!(offset_of!(DiskDa3Blkinfo, crc) == 12);
const _: () = assert!(offset_of!(DiskDa3Blkinfo, lsn) == 24);
const _: () = assert!(offset_of!(DiskDa3Blkinfo, uuid) == 32);

/// `struct xfs_agfl`'s header (v5; the free list follows).
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
pub struct DiskAgfl {
    /// `agfl_magicnum`.
    pub magicnum: U32<BE>,
    /// `agfl_seqno`.
    pub seqno: U32<BE>,
    /// `agfl_uuid`.
    pub uuid: [u8; 16],
    /// `agfl_lsn`.
    pub lsn: U64<BE>,
    /// `agfl_crc` (little-endian).
    pub crc: [u8; 4],
}
const _: () = assert!(size_of::<DiskAgfl>() == 36);
const _: () = assert!(offset_of!(DiskAgfl, lsn) == 24);
const _: () = assert!(offset_of!(DiskAgfl, crc) == super::ag::AGFL_CRC_OFF);

/// Byte offsets of the header fields of a v5 metadata block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V5Header {
    /// The LSN of the last write (big-endian u64).
    pub lsn: usize,
    /// The (meta) uuid.
    pub uuid: usize,
    /// The crc32c (little-endian u32).
    pub crc: usize,
}

/// The header of one block type, from its structure.
macro_rules! v5 {
    ($t:ty, $lsn:ident, $uuid:ident, $crc:ident) => {
        V5Header { lsn: offset_of!($t, $lsn), uuid: offset_of!($t, $uuid), crc: offset_of!($t, $crc) }
    };
}

/// Short-form btree blocks.
const SBLOCK: V5Header = v5!(DiskSblockV5, lsn, uuid, crc);
/// Long-form btree blocks (bmbt): the v5 fields follow the v4 header.
const LBLOCK: V5Header = V5Header {
    lsn: size_of::<DiskLblock>() + offset_of!(DiskLblockV5, lsn),
    uuid: size_of::<DiskLblock>() + offset_of!(DiskLblockV5, uuid),
    crc: size_of::<DiskLblock>() + offset_of!(DiskLblockV5, crc),
};
const _: () = assert!(LBLOCK.crc == super::bmap::LBLOCK_CRC_OFF);
/// Directory data, block and free blocks.
const DIR3: V5Header = v5!(DiskDir3BlkHdr, lsn, uuid, crc);
const _: () = assert!(DIR3.crc == super::dir::DIR3_CRC_OFF);
/// dabtree nodes, directory and attr leaves.
const DA3: V5Header = v5!(DiskDa3Blkinfo, lsn, uuid, crc);
/// The superblock; its uuid is `sb_meta_uuid` (with `META_UUID`, else see [`SB_UUID`]).
const SB: V5Header = v5!(DiskSb, lsn, meta_uuid, crc);
const _: () = assert!(SB.crc == super::sb::SB_CRC_OFF);

/// Offset of `sb_uuid`, the uuid a superblock without the `META_UUID` feature is checked against.
pub const SB_UUID: usize = offset_of!(DiskSb, uuid);
/// Offset of `sb_features_incompat`.
pub const SB_FEATURES_INCOMPAT: usize = offset_of!(DiskSb, features_incompat);
/// Offset of the 16-bit magic of the blocks that start with a [`DiskDa3Blkinfo`].
const DA3_MAGIC: usize = offset_of!(DiskDa3Blkinfo, magic);

/// The header of the v5 metadata block `buf` starts (the first sector is enough), by its
/// magic number; None for a block type without one (or a buffer too short to tell).
pub fn v5_header(buf: &[u8]) -> Option<V5Header> {
    let m32 = u32::from_be_bytes(buf.get(..4)?.try_into().ok()?);
    Some(match m32 {
        ABTB_CRC_MAGIC | ABTC_CRC_MAGIC | RMAP_CRC_MAGIC | REFC_CRC_MAGIC | IBT_CRC_MAGIC
        | FIBT_CRC_MAGIC => SBLOCK,
        BMA3_MAGIC => LBLOCK,
        AGF_MAGIC => v5!(DiskAgf, lsn, uuid, crc),
        AGFL_MAGIC => v5!(DiskAgfl, lsn, uuid, crc),
        AGI_MAGIC => v5!(DiskAgi, lsn, uuid, crc),
        XSLM => v5!(DiskSymlinkHdr, lsn, uuid, crc),
        XDB3 | XDD3 | DIR3_FREE_MAGIC => DIR3,
        XFS_SB_MAGIC => SB,
        _ => {
            let m16 = u16::from_be_bytes(buf.get(DA3_MAGIC..DA3_MAGIC + 2)?.try_into().ok()?);
            match m16 {
                DA3_NODE_MAGIC | ATTR3_LEAF_MAGIC | DIR3_LEAF1_MAGIC | DIR3_LEAFN_MAGIC => DA3,
                _ => return None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_sit_where_the_kernel_puts_them() {
        let at = |magic: &[u8], pos: usize| {
            let mut b = [0u8; 512];
            b[pos..pos + magic.len()].copy_from_slice(magic);
            v5_header(&b).map(|h| (h.lsn, h.uuid, h.crc))
        };
        assert_eq!(at(b"AB3B", 0), Some((24, 32, 52)));
        assert_eq!(at(b"BMA3", 0), Some((32, 40, 64)));
        assert_eq!(at(b"XAGF", 0), Some((208, 64, 216)));
        assert_eq!(at(b"XAFL", 0), Some((24, 8, 32)));
        assert_eq!(at(b"XAGI", 0), Some((320, 296, 312)));
        assert_eq!(at(b"XSLM", 0), Some((48, 16, 12)));
        assert_eq!(at(b"XDF3", 0), Some((16, 24, 4)));
        assert_eq!(at(b"XFSB", 0), Some((240, 248, 224)));
        assert_eq!(at(&[0x3d, 0xf1], 8), Some((24, 32, 12)));
        assert_eq!(at(b"XD2B", 0), None);
        assert_eq!(v5_header(&[0x3d; 9]), None);
        assert_eq!((SB_UUID, SB_FEATURES_INCOMPAT), (32, 216));
    }
}
