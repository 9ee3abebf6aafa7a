//! Block group descriptors (32-byte and 64-byte forms), their placement (classic GDT after the
//! superblock, or meta_bg) and checksums.

use super::csum;
use super::superblock::{INCOMPAT_META_BG, RO_COMPAT_GDT_CSUM, Superblock};
use crate::error::{Error, Findings, Result};
use crate::image::BlockSource;
use zerocopy::byteorder::{LE, U16, U32};
use zerocopy::{FromBytes, Immutable, KnownLayout};

/// `struct ext4_group_desc` in its 64-byte form (the 32-byte form is its first half).
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone, Default)]
#[repr(C)]
pub struct RawGroupDesc {
    /// Block bitmap, low 32 bits.
    pub bg_block_bitmap_lo: U32<LE>,
    /// Inode bitmap, low 32 bits.
    pub bg_inode_bitmap_lo: U32<LE>,
    /// Inode table, low 32 bits.
    pub bg_inode_table_lo: U32<LE>,
    /// Free blocks, low 16 bits.
    pub bg_free_blocks_count_lo: U16<LE>,
    /// Free inodes, low 16 bits.
    pub bg_free_inodes_count_lo: U16<LE>,
    /// Directories, low 16 bits.
    pub bg_used_dirs_count_lo: U16<LE>,
    /// INODE_UNINIT 1, BLOCK_UNINIT 2, ITABLE_ZEROED 4.
    pub bg_flags: U16<LE>,
    /// Snapshot exclude bitmap, low.
    pub bg_exclude_bitmap_lo: U32<LE>,
    /// Block bitmap checksum, low.
    pub bg_block_bitmap_csum_lo: U16<LE>,
    /// Inode bitmap checksum, low.
    pub bg_inode_bitmap_csum_lo: U16<LE>,
    /// Unused inodes, low.
    pub bg_itable_unused_lo: U16<LE>,
    /// Descriptor checksum.
    pub bg_checksum: U16<LE>,
    /// Block bitmap, high.
    pub bg_block_bitmap_hi: U32<LE>,
    /// Inode bitmap, high.
    pub bg_inode_bitmap_hi: U32<LE>,
    /// Inode table, high.
    pub bg_inode_table_hi: U32<LE>,
    /// Free blocks, high.
    pub bg_free_blocks_count_hi: U16<LE>,
    /// Free inodes, high.
    pub bg_free_inodes_count_hi: U16<LE>,
    /// Directories, high.
    pub bg_used_dirs_count_hi: U16<LE>,
    /// Unused inodes, high.
    pub bg_itable_unused_hi: U16<LE>,
    /// Exclude bitmap, high.
    pub bg_exclude_bitmap_hi: U32<LE>,
    /// Block bitmap checksum, high.
    pub bg_block_bitmap_csum_hi: U16<LE>,
    /// Inode bitmap checksum, high.
    pub bg_inode_bitmap_csum_hi: U16<LE>,
    /// Padding.
    pub bg_reserved: U32<LE>,
}
const _: () = assert!(size_of::<RawGroupDesc>() == 64);

/// Byte offset of `bg_checksum` in a descriptor.
const BG_CHECKSUM_AT: usize = 0x1E;

/// A decoded group descriptor.
#[derive(Debug, Clone, Default)]
pub struct GroupDesc {
    /// Block bitmap block.
    pub block_bitmap: u64,
    /// Inode bitmap block.
    pub inode_bitmap: u64,
    /// First block of the inode table.
    pub inode_table: u64,
    /// Free blocks.
    pub free_blocks: u32,
    /// Free inodes.
    pub free_inodes: u32,
    /// Directories.
    pub used_dirs: u32,
    /// Unused inodes at the end of the table.
    pub itable_unused: u32,
    /// Flags.
    pub flags: u16,
    /// Stored checksum.
    pub checksum: u16,
    /// Stored block bitmap checksum (high half only with 64-byte descriptors).
    pub block_bitmap_csum: u32,
    /// Stored inode bitmap checksum (high half only with 64-byte descriptors).
    pub inode_bitmap_csum: u32,
}

impl GroupDesc {
    /// Decode a raw descriptor (`wide`: the 64-byte form, whose high halves count).
    pub fn from_raw(r: &RawGroupDesc, wide: bool) -> Self {
        let hi32 = |v: &U32<LE>| if wide { u64::from(v.get()) << 32 } else { 0 };
        let hi16 = |v: &U16<LE>| if wide { u32::from(v.get()) << 16 } else { 0 };
        Self {
            block_bitmap: u64::from(r.bg_block_bitmap_lo.get()) | hi32(&r.bg_block_bitmap_hi),
            inode_bitmap: u64::from(r.bg_inode_bitmap_lo.get()) | hi32(&r.bg_inode_bitmap_hi),
            inode_table: u64::from(r.bg_inode_table_lo.get()) | hi32(&r.bg_inode_table_hi),
            free_blocks: u32::from(r.bg_free_blocks_count_lo.get()) | hi16(&r.bg_free_blocks_count_hi),
            free_inodes: u32::from(r.bg_free_inodes_count_lo.get()) | hi16(&r.bg_free_inodes_count_hi),
            used_dirs: u32::from(r.bg_used_dirs_count_lo.get()) | hi16(&r.bg_used_dirs_count_hi),
            itable_unused: u32::from(r.bg_itable_unused_lo.get()) | hi16(&r.bg_itable_unused_hi),
            flags: r.bg_flags.get(),
            checksum: r.bg_checksum.get(),
            block_bitmap_csum: u32::from(r.bg_block_bitmap_csum_lo.get()) | hi16(&r.bg_block_bitmap_csum_hi),
            inode_bitmap_csum: u32::from(r.bg_inode_bitmap_csum_lo.get()) | hi16(&r.bg_inode_bitmap_csum_hi),
        }
    }
}

/// The fs block that holds the descriptor of group `g`, and the byte offset inside it.
pub fn desc_location(sb: &Superblock, g: u64) -> Option<(u64, u64)> {
    let bs = u64::from(sb.block_size);
    let ds = u64::from(sb.desc_size);
    let per_block = bs / ds;
    let nr = g / per_block;
    let within = (g % per_block) * ds;
    let sb_block = if bs == 1024 { 1 } else { 0 };
    if !sb.has_incompat(INCOMPAT_META_BG) || nr < u64::from(sb.raw.s_first_meta_bg.get()) {
        return Some((sb_block + 1 + nr, within));
    }
    let first = nr.checked_mul(per_block)?;
    let base = first.checked_mul(u64::from(sb.blocks_per_group))?.checked_add(sb.first_data_block)?;
    let blk = base.checked_add(u64::from(sb.group_has_super(first)))?;
    Some((blk, within))
}

/// Read every group descriptor; damaged or unreachable ones are reported in `findings` and
/// replaced by an all-zero descriptor (inodes in that group then fail to read with an error).
pub fn read_all(src: &dyn BlockSource, sb: &Superblock, findings: &Findings) -> Result<Vec<GroupDesc>> {
    let ds = sb.desc_size as usize;
    let cap = src.len() / 32;
    if sb.groups_count > cap {
        return Err(Error::corrupt(
            "ext4 superblock",
            0,
            1024,
            format!(
                "{} block groups cannot have descriptors in an image of {} bytes",
                sb.groups_count,
                src.len()
            ),
        ));
    }
    let bs = u64::from(sb.block_size);
    let mut out = Vec::with_capacity(sb.groups_count as usize);
    let metadata_csum = sb.metadata_csum();
    let gdt_csum = sb.has_ro_compat(RO_COMPAT_GDT_CSUM);
    for g in 0..sb.groups_count {
        let Some((blk, within)) = desc_location(sb, g) else {
            findings.error("ext4 group descriptor", None, None, format!("group {g}: location overflows"));
            out.push(GroupDesc::default());
            continue;
        };
        let off = blk.saturating_mul(bs).saturating_add(within);
        let bytes = match src.read_at(off, ds) {
            Ok(b) => b,
            Err(e) => {
                findings.error("ext4 group descriptor", Some(blk), Some(off), format!("group {g}: {e}"));
                out.push(GroupDesc::default());
                continue;
            }
        };
        let mut padded = [0u8; 64];
        let n = ds.min(64);
        padded[..n].copy_from_slice(&bytes[..n]);
        // OK to unwrap because `padded` is exactly 64 bytes, the size of RawGroupDesc.
        let raw = RawGroupDesc::read_from_bytes(&padded).unwrap();
        let gd = GroupDesc::from_raw(&raw, ds >= 64);
        if metadata_csum || gdt_csum {
            let want = expected_checksum(sb, g, &bytes, metadata_csum);
            if want != gd.checksum {
                findings.error(
                    "ext4 group descriptor",
                    Some(blk),
                    Some(off),
                    format!("group {g}: checksum {:#06x} does not match computed {want:#06x}", gd.checksum),
                );
            }
        }
        out.push(gd);
    }
    Ok(out)
}

/// The checksum group `g`'s descriptor bytes `desc` should carry (metadata_csum: low 16 bits of crc32c; gdt_csum: crc16).
pub fn expected_checksum(sb: &Superblock, g: u64, desc: &[u8], metadata_csum: bool) -> u16 {
    let group = (g as u32).to_le_bytes();
    let head = desc.get(..BG_CHECKSUM_AT).unwrap_or(desc);
    let tail = desc.get(BG_CHECKSUM_AT + 2..).unwrap_or(&[]);
    if metadata_csum {
        let mut c = csum::crc32c_raw(sb.csum_seed, &group);
        c = csum::crc32c_raw(c, head);
        c = csum::crc32c_raw(c, &[0, 0]);
        c = csum::crc32c_raw(c, tail);
        (c & 0xFFFF) as u16
    } else {
        let mut c = csum::crc16(0xFFFF, &sb.raw.s_uuid);
        c = csum::crc16(c, &group);
        c = csum::crc16(c, head);
        if desc.len() >= 64 && sb.has_incompat(super::superblock::INCOMPAT_64BIT) {
            c = csum::crc16(c, tail);
        }
        c
    }
}

/// Group flag: inode bitmap and table not initialised.
const BG_INODE_UNINIT: u16 = 1;
/// Group flag: block bitmap not initialised.
const BG_BLOCK_UNINIT: u16 = 2;

/// Verify the block and inode bitmap checksums of every initialised group (metadata_csum):
/// crc32c over `clusters_per_group / 8` (`inodes_per_group / 8`) bytes of the bitmap, stored
/// as 16 bits in 32-byte descriptors and 32 bits in 64-byte ones.
pub fn verify_bitmaps(src: &dyn BlockSource, sb: &Superblock, groups: &[GroupDesc], findings: &Findings) {
    if !sb.metadata_csum() {
        return;
    }
    let bs = u64::from(sb.block_size);
    let mask = if sb.desc_size >= 64 { u32::MAX } else { 0xFFFF };
    let cpg = (sb.raw.s_clusters_per_group.get() / 8) as usize;
    let ipg = (sb.inodes_per_group / 8) as usize;
    for (g, gd) in groups.iter().enumerate() {
        let checks = [
            ("ext4 block bitmap", gd.block_bitmap, cpg, gd.block_bitmap_csum, BG_BLOCK_UNINIT),
            ("ext4 inode bitmap", gd.inode_bitmap, ipg, gd.inode_bitmap_csum, BG_INODE_UNINIT),
        ];
        for (what, blk, len, stored, uninit) in checks {
            if gd.flags & uninit != 0 || blk == 0 || len == 0 || len as u64 > bs {
                continue;
            }
            let off = blk.saturating_mul(bs);
            let Ok(bytes) = src.read_at(off, len) else {
                findings.error(
                    what,
                    Some(blk),
                    Some(off),
                    format!("group {g}: bitmap block is outside the image"),
                );
                continue;
            };
            let want = csum::crc32c_raw(sb.csum_seed, &bytes) & mask;
            if want != stored & mask {
                findings.error(
                    what,
                    Some(blk),
                    Some(off),
                    format!(
                        "group {g}: checksum {:#010x} does not match computed {want:#010x}",
                        stored & mask
                    ),
                );
            }
        }
    }
}

/// Group flag: inode table zeroed (`EXT4_BG_INODE_ZEROED`).
const BG_INODE_ZEROED: u16 = 4;

/// The lazy inode-table init of a read-write mount (`ext4_init_inode_table`, run by the
/// `ext4lazyinit` thread on file systems with group descriptor checksums): in every group not
/// flagged `INODE_ZEROED`, it zeroes the inode table from the first block past the inodes that
/// `bg_itable_unused` counts as used. After a crash without a journal that count can be stale;
/// when the first block it would zero holds a live inode (links, a good checksum), say so: those
/// inodes read back as zeros ("iget: checksum invalid") once the thread has run.
pub fn lazy_init_risk(src: &dyn BlockSource, sb: &Superblock, groups: &[GroupDesc], findings: &Findings) {
    if !(sb.metadata_csum() || sb.has_ro_compat(super::superblock::RO_COMPAT_GDT_CSUM)) {
        return;
    }
    let bs = u64::from(sb.block_size);
    let isz = u64::from(sb.inode_size);
    let ipg = u64::from(sb.inodes_per_group);
    let ipb = bs.checked_div(isz).unwrap_or(0);
    if ipb == 0 {
        return;
    }
    for (g, gd) in groups.iter().enumerate() {
        if gd.flags & BG_INODE_ZEROED != 0 || gd.inode_table == 0 {
            continue;
        }
        let used = ipg.saturating_sub(u64::from(gd.itable_unused));
        let first_blk = used.div_ceil(ipb);
        if first_blk >= ipg.div_ceil(ipb) {
            continue;
        }
        let blk = gd.inode_table.saturating_add(first_blk);
        let Ok(bytes) = src.read_at(blk.saturating_mul(bs), bs as usize) else { continue };
        let first_ino = (g as u64) * ipg + first_blk * ipb + 1;
        let live: Vec<u64> = bytes
            .chunks_exact(isz as usize)
            .enumerate()
            .filter_map(|(k, b)| {
                let ino = first_ino + k as u64;
                let i = super::inode::Inode::parse(ino, b, blk, 0);
                let good = !sb.metadata_csum() || i.stored_checksum() == i.computed_checksum(sb);
                (i.links() > 0 && i.mode() != 0 && good).then_some(ino)
            })
            .collect();
        if !live.is_empty() {
            findings.error(
                "ext4 group descriptor",
                Some(blk),
                Some(blk.saturating_mul(bs)),
                format!(
                    "group {g}: a read-write mount's lazy inode-table init (ext4_init_inode_table) zeroes the inode table from block {blk} (inode {first_ino} on), which bg_itable_unused ({}) counts as unused, but live inodes are there ({}): they read back as zeros once it has run; run e2fsck before mounting read-write",
                    gd.itable_unused,
                    live.iter().take(8).map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }
}
