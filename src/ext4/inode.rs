//! Inodes: the 128-byte base, the extra fields after it, checksums and timestamps.

use super::csum;
use super::superblock::{RO_COMPAT_HUGE_FILE, Superblock};
use crate::fs::Timestamp;
use zerocopy::byteorder::{LE, U16, U32};
use zerocopy::{FromBytes, Immutable, KnownLayout};

/// `struct ext4_inode` up to `i_projid` (160 bytes); shorter inodes are read zero-padded and
/// the extra fields are only trusted where `i_extra_isize` covers them.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone)]
#[repr(C)]
pub struct RawInode {
    /// Mode and type.
    pub i_mode: U16<LE>,
    /// Owner, low 16 bits.
    pub i_uid: U16<LE>,
    /// Size, low 32 bits.
    pub i_size_lo: U32<LE>,
    /// Access time.
    pub i_atime: U32<LE>,
    /// Change time.
    pub i_ctime: U32<LE>,
    /// Modification time.
    pub i_mtime: U32<LE>,
    /// Deletion time.
    pub i_dtime: U32<LE>,
    /// Group, low 16 bits.
    pub i_gid: U16<LE>,
    /// Links.
    pub i_links_count: U16<LE>,
    /// Blocks, low 32 bits.
    pub i_blocks_lo: U32<LE>,
    /// Flags.
    pub i_flags: U32<LE>,
    /// Version (Linux osd1).
    pub i_version: U32<LE>,
    /// Block map, extent tree root, inline data or fast symlink.
    pub i_block: [u8; 60],
    /// Generation.
    pub i_generation: U32<LE>,
    /// Extended attribute block, low 32 bits.
    pub i_file_acl_lo: U32<LE>,
    /// Size, high 32 bits.
    pub i_size_high: U32<LE>,
    /// Obsolete fragment address.
    pub i_obso_faddr: U32<LE>,
    /// Blocks, high 16 bits.
    pub l_i_blocks_high: U16<LE>,
    /// xattr block, high 16 bits.
    pub l_i_file_acl_high: U16<LE>,
    /// Owner, high 16 bits.
    pub l_i_uid_high: U16<LE>,
    /// Group, high 16 bits.
    pub l_i_gid_high: U16<LE>,
    /// Checksum, low 16 bits.
    pub l_i_checksum_lo: U16<LE>,
    /// Reserved.
    pub l_i_reserved: U16<LE>,
    /// Bytes of extra fields beyond 128.
    pub i_extra_isize: U16<LE>,
    /// Checksum, high 16 bits.
    pub i_checksum_hi: U16<LE>,
    /// Extra change time bits.
    pub i_ctime_extra: U32<LE>,
    /// Extra modification time bits.
    pub i_mtime_extra: U32<LE>,
    /// Extra access time bits.
    pub i_atime_extra: U32<LE>,
    /// Creation time.
    pub i_crtime: U32<LE>,
    /// Extra creation time bits.
    pub i_crtime_extra: U32<LE>,
    /// Version, high 32 bits.
    pub i_version_hi: U32<LE>,
    /// Project id.
    pub i_projid: U32<LE>,
}
const _: () = assert!(size_of::<RawInode>() == 160);

/// Offset of `l_i_checksum_lo`.
const CSUM_LO_AT: usize = 0x7C;
/// Offset of `i_checksum_hi`.
const CSUM_HI_AT: usize = 0x82;

/// Inode flag: uses an extent tree.
pub const EXTENTS_FL: u32 = 0x80000;
/// Inode flag: data inline in the inode.
pub const INLINE_DATA_FL: u32 = 0x1000_0000;
/// Inode flag: hashed-indexed directory.
pub const INDEX_FL: u32 = 0x1000;
/// Inode flag: i_blocks in fs blocks (huge_file).
pub const HUGE_FILE_FL: u32 = 0x40000;
/// Inode flag: large extended attribute value inode.
pub const EA_INODE_FL: u32 = 0x20_0000;

/// Inode flag names, as `chattr`/debugfs name them.
pub const FLAG_NAMES: &[(u32, &str)] = &[
    (0x1, "secrm"),
    (0x2, "unrm"),
    (0x4, "compr"),
    (0x8, "sync"),
    (0x10, "immutable"),
    (0x20, "append"),
    (0x40, "nodump"),
    (0x80, "noatime"),
    (0x100, "dirty"),
    (0x200, "comprblk"),
    (0x400, "nocompr"),
    (0x800, "encrypt"),
    (0x1000, "index"),
    (0x2000, "imagic"),
    (0x4000, "journal_data"),
    (0x8000, "notail"),
    (0x10000, "dirsync"),
    (0x20000, "topdir"),
    (0x40000, "huge_file"),
    (0x80000, "extents"),
    (0x100000, "verity"),
    (0x200000, "ea_inode"),
    (0x2000000, "snapfile"),
    (0x8000000, "snapfile_shrunk"),
    (0x10000000, "inline_data"),
    (0x20000000, "projinherit"),
    (0x40000000, "casefold"),
];

/// A decoded inode.
#[derive(Debug, Clone)]
pub struct Inode {
    /// Inode number.
    pub ino: u64,
    /// The raw fields (zero-padded to 160 bytes).
    pub raw: RawInode,
    /// The on-disk bytes of the whole inode (`s_inode_size`).
    pub bytes: Vec<u8>,
    /// fs block holding the inode.
    pub block: u64,
    /// Byte offset of the inode from the start of the file system.
    pub offset: u64,
}

impl Inode {
    /// Decode `bytes` (one whole on-disk inode).
    pub fn parse(ino: u64, bytes: &[u8], block: u64, offset: u64) -> Self {
        let mut padded = [0u8; 160];
        let n = bytes.len().min(160);
        padded[..n].copy_from_slice(&bytes[..n]);
        // OK to unwrap because `padded` is exactly 160 bytes, the size of RawInode.
        let raw = RawInode::read_from_bytes(&padded).unwrap();
        Self { ino, raw, bytes: bytes.to_vec(), block, offset }
    }

    /// Bytes of extra fields that are really present (0 for 128-byte inodes).
    pub fn extra_isize(&self) -> usize {
        if self.bytes.len() <= 128 {
            return 0;
        }
        let e = usize::from(self.raw.i_extra_isize.get());
        e.min(self.bytes.len() - 128)
    }

    /// True when the extra field ending at byte `end` (from the inode start) is present.
    fn has_extra(&self, end: usize) -> bool {
        128 + self.extra_isize() >= end
    }

    /// Mode.
    pub fn mode(&self) -> u16 {
        self.raw.i_mode.get()
    }
    /// Flags.
    pub fn flags(&self) -> u32 {
        self.raw.i_flags.get()
    }
    /// True when `flag` is set.
    pub fn has_flag(&self, flag: u32) -> bool {
        self.flags() & flag != 0
    }
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        u64::from(self.raw.i_size_lo.get()) | (u64::from(self.raw.i_size_high.get()) << 32)
    }
    /// Owner.
    pub fn uid(&self) -> u32 {
        u32::from(self.raw.i_uid.get()) | (u32::from(self.raw.l_i_uid_high.get()) << 16)
    }
    /// Group.
    pub fn gid(&self) -> u32 {
        u32::from(self.raw.i_gid.get()) | (u32::from(self.raw.l_i_gid_high.get()) << 16)
    }
    /// Links.
    pub fn links(&self) -> u32 {
        u32::from(self.raw.i_links_count.get())
    }
    /// Generation.
    pub fn generation(&self) -> u32 {
        self.raw.i_generation.get()
    }
    /// Extended attribute block.
    pub fn file_acl(&self) -> u64 {
        u64::from(self.raw.i_file_acl_lo.get()) | (u64::from(self.raw.l_i_file_acl_high.get()) << 32)
    }
    /// Space used in 512-byte units (huge_file aware).
    pub fn blocks_512(&self, sb: &Superblock) -> u64 {
        let lo = u64::from(self.raw.i_blocks_lo.get());
        if !sb.has_ro_compat(RO_COMPAT_HUGE_FILE) {
            return lo;
        }
        let b = lo | (u64::from(self.raw.l_i_blocks_high.get()) << 32);
        if self.has_flag(HUGE_FILE_FL) { b.saturating_mul(u64::from(sb.block_size / 512)) } else { b }
    }
    /// A timestamp with its optional `_extra` word (epoch bits and nanoseconds).
    fn ts(&self, base: u32, extra: Option<u32>) -> Timestamp {
        let mut sec = i64::from(base as i32);
        let mut nsec = 0;
        if let Some(x) = extra {
            sec += i64::from(x & 3) << 32;
            nsec = x >> 2;
        }
        Timestamp { sec, nsec }
    }
    /// Access time.
    pub fn atime(&self) -> Timestamp {
        self.ts(self.raw.i_atime.get(), self.has_extra(0x90).then(|| self.raw.i_atime_extra.get()))
    }
    /// Modification time.
    pub fn mtime(&self) -> Timestamp {
        self.ts(self.raw.i_mtime.get(), self.has_extra(0x8C).then(|| self.raw.i_mtime_extra.get()))
    }
    /// Change time.
    pub fn ctime(&self) -> Timestamp {
        self.ts(self.raw.i_ctime.get(), self.has_extra(0x88).then(|| self.raw.i_ctime_extra.get()))
    }
    /// Creation time, when the inode is large enough to hold it.
    pub fn crtime(&self) -> Option<Timestamp> {
        if !self.has_extra(0x94) {
            return None;
        }
        Some(self.ts(self.raw.i_crtime.get(), self.has_extra(0x98).then(|| self.raw.i_crtime_extra.get())))
    }
    /// Project id, when present.
    pub fn projid(&self) -> Option<u32> {
        self.has_extra(0xA0).then(|| self.raw.i_projid.get())
    }
    /// The stored checksum (32 bits when `i_checksum_hi` is present, else 16).
    pub fn stored_checksum(&self) -> u32 {
        let lo = u32::from(self.raw.l_i_checksum_lo.get());
        if self.has_extra(CSUM_HI_AT + 2) { lo | (u32::from(self.raw.i_checksum_hi.get()) << 16) } else { lo }
    }
    /// The per-inode checksum seed (for extent blocks, directory blocks).
    pub fn csum_seed(&self, sb: &Superblock) -> u32 {
        csum::inode_seed(sb.csum_seed, self.ino as u32, self.generation())
    }
    /// The checksum the inode should carry under metadata_csum.
    pub fn computed_checksum(&self, sb: &Superblock) -> u32 {
        let mut b = self.bytes.clone();
        let has_hi = self.has_extra(CSUM_HI_AT + 2);
        if let Some(s) = b.get_mut(CSUM_LO_AT..CSUM_LO_AT + 2) {
            s.fill(0);
        }
        if has_hi && let Some(s) = b.get_mut(CSUM_HI_AT..CSUM_HI_AT + 2) {
            s.fill(0);
        }
        let c = csum::crc32c_raw(self.csum_seed(sb), &b);
        if has_hi { c } else { c & 0xFFFF }
    }
    /// Names of the set flags.
    pub fn flag_names(&self) -> Vec<String> {
        super::superblock::feature_names(self.flags(), FLAG_NAMES)
    }
    /// The in-inode extended attribute area (after the extra fields), if any.
    pub fn xattr_area(&self) -> &[u8] {
        let start = 128 + self.extra_isize();
        self.bytes.get(start..).unwrap_or(&[])
    }
}
