//! The group descriptors field by field (`daxray groups`): each descriptor's fields named as in
//! `struct ext4_group_desc` (low and high halves joined), where it lives, the blocks its group
//! covers and whether its checksum holds, the facts `dumpe2fs` prints per group.

use super::group::{GroupDesc, RawGroupDesc, desc_location, expected_checksum};
use super::superblock::{RO_COMPAT_GDT_CSUM, Superblock};
use crate::error::{Error, Result};
use crate::image::BlockSource;
use serde::Serialize;
use zerocopy::FromBytes;

/// `bg_flags` bit names, as dumpe2fs prints them.
pub const BG_FLAG_NAMES: &[(u32, &str)] = &[(1, "INODE_UNINIT"), (2, "BLOCK_UNINIT"), (4, "ITABLE_ZEROED")];

/// One group descriptor, decoded, with its place and checks.
#[derive(Debug, Clone, Serialize)]
pub struct GroupView {
    /// Group number.
    pub group: u64,
    /// First block of the group.
    pub first_block: u64,
    /// Last block of the group.
    pub last_block: u64,
    /// Block holding the descriptor.
    pub desc_block: u64,
    /// Byte offset of the descriptor from the start of the file system.
    pub desc_offset: u64,
    /// `bg_block_bitmap`.
    pub block_bitmap: u64,
    /// `bg_inode_bitmap`.
    pub inode_bitmap: u64,
    /// `bg_inode_table` (first block).
    pub inode_table: u64,
    /// Last block of the inode table.
    pub inode_table_last: u64,
    /// `bg_free_blocks_count`.
    pub free_blocks_count: u32,
    /// `bg_free_inodes_count`.
    pub free_inodes_count: u32,
    /// `bg_used_dirs_count`.
    pub used_dirs_count: u32,
    /// `bg_flags`.
    pub flags: u16,
    /// Names of the set `bg_flags` bits.
    pub flag_names: Vec<String>,
    /// `bg_exclude_bitmap`.
    pub exclude_bitmap: u64,
    /// `bg_block_bitmap_csum` (16 bits with 32-byte descriptors).
    pub block_bitmap_csum: u32,
    /// `bg_inode_bitmap_csum` (16 bits with 32-byte descriptors).
    pub inode_bitmap_csum: u32,
    /// `bg_itable_unused`.
    pub itable_unused: u32,
    /// `bg_checksum`.
    pub checksum: u16,
    /// Whether `bg_checksum` matches (None without metadata_csum or gdt_csum).
    pub checksum_ok: Option<bool>,
}

/// Every group descriptor of the file system in `src` (superblock `sb`).
pub fn group_views(src: &dyn BlockSource, sb: &Superblock) -> Result<Vec<GroupView>> {
    let bs = u64::from(sb.block_size);
    let ds = sb.desc_size as usize;
    let csum = sb.metadata_csum() || sb.has_ro_compat(RO_COMPAT_GDT_CSUM);
    let itable_blocks = (u64::from(sb.inodes_per_group) * u64::from(sb.inode_size)).div_ceil(bs);
    let mut out = Vec::new();
    for g in 0..sb.groups_count {
        let (blk, within) = desc_location(sb, g).ok_or_else(|| {
            Error::corrupt("ext4 group descriptor", 0, 0, format!("group {g}: location overflows"))
        })?;
        let off = blk.checked_mul(bs).and_then(|o| o.checked_add(within)).ok_or_else(|| {
            Error::corrupt("ext4 group descriptor", blk, 0, format!("group {g}: offset overflows"))
        })?;
        let bytes = src.read_at(off, ds)?;
        let mut padded = [0u8; 64];
        let n = ds.min(64);
        padded[..n].copy_from_slice(&bytes[..n]);
        // OK to unwrap because `padded` is exactly 64 bytes, the size of RawGroupDesc.
        let raw = RawGroupDesc::read_from_bytes(&padded).unwrap();
        let wide = ds >= 64;
        let d = GroupDesc::from_raw(&raw, wide);
        let hi = |v: u32| if wide { u64::from(v) << 32 } else { 0 };
        let first = sb.first_data_block.saturating_add(g.saturating_mul(u64::from(sb.blocks_per_group)));
        let last = first.saturating_add(u64::from(sb.blocks_per_group) - 1).min(sb.blocks_count - 1);
        out.push(GroupView {
            group: g,
            first_block: first,
            last_block: last,
            desc_block: blk,
            desc_offset: off,
            block_bitmap: d.block_bitmap,
            inode_bitmap: d.inode_bitmap,
            inode_table: d.inode_table,
            inode_table_last: d.inode_table.saturating_add(itable_blocks.saturating_sub(1)),
            free_blocks_count: d.free_blocks,
            free_inodes_count: d.free_inodes,
            used_dirs_count: d.used_dirs,
            flags: d.flags,
            flag_names: super::superblock::feature_names(u32::from(d.flags), BG_FLAG_NAMES),
            exclude_bitmap: u64::from(raw.bg_exclude_bitmap_lo.get()) | hi(raw.bg_exclude_bitmap_hi.get()),
            block_bitmap_csum: d.block_bitmap_csum,
            inode_bitmap_csum: d.inode_bitmap_csum,
            itable_unused: d.itable_unused,
            checksum: d.checksum,
            checksum_ok: csum.then(|| expected_checksum(sb, g, &bytes, sb.metadata_csum()) == d.checksum),
        });
    }
    Ok(out)
}
