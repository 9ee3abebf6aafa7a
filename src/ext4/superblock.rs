//! The ext4 superblock (1024 bytes at byte 1024) and its feature flags.

use crate::error::{Error, Result};
use crate::image::BlockSource;
use zerocopy::byteorder::{LE, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, KnownLayout};

/// Byte offset of the primary superblock.
pub const SB_OFFSET: u64 = 1024;
/// Size of the superblock.
pub const SB_SIZE: usize = 1024;
/// `s_magic`.
pub const EXT4_MAGIC: u16 = 0xEF53;

/// The on-disk superblock, little-endian (`struct ext4_super_block`).
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone)]
#[repr(C)]
pub struct RawSuperblock {
    /// Total inodes.
    pub s_inodes_count: U32<LE>,
    /// Total blocks, low 32 bits.
    pub s_blocks_count_lo: U32<LE>,
    /// Reserved blocks, low 32 bits.
    pub s_r_blocks_count_lo: U32<LE>,
    /// Free blocks, low 32 bits.
    pub s_free_blocks_count_lo: U32<LE>,
    /// Free inodes.
    pub s_free_inodes_count: U32<LE>,
    /// First data block (1 for 1 KiB blocks, else 0).
    pub s_first_data_block: U32<LE>,
    /// Block size is 2^(10 + this).
    pub s_log_block_size: U32<LE>,
    /// Cluster size is 2^(10 + this) (bigalloc).
    pub s_log_cluster_size: U32<LE>,
    /// Blocks per group.
    pub s_blocks_per_group: U32<LE>,
    /// Clusters per group.
    pub s_clusters_per_group: U32<LE>,
    /// Inodes per group.
    pub s_inodes_per_group: U32<LE>,
    /// Last mount time.
    pub s_mtime: U32<LE>,
    /// Last write time.
    pub s_wtime: U32<LE>,
    /// Mounts since the last check.
    pub s_mnt_count: U16<LE>,
    /// Mounts allowed before a check.
    pub s_max_mnt_count: U16<LE>,
    /// 0xEF53.
    pub s_magic: U16<LE>,
    /// 1 clean, 2 errors, 4 orphans being recovered.
    pub s_state: U16<LE>,
    /// Behaviour on errors.
    pub s_errors: U16<LE>,
    /// Minor revision.
    pub s_minor_rev_level: U16<LE>,
    /// Last check time.
    pub s_lastcheck: U32<LE>,
    /// Check interval.
    pub s_checkinterval: U32<LE>,
    /// Creator OS.
    pub s_creator_os: U32<LE>,
    /// Revision (0 original, 1 dynamic).
    pub s_rev_level: U32<LE>,
    /// Default uid for reserved blocks.
    pub s_def_resuid: U16<LE>,
    /// Default gid for reserved blocks.
    pub s_def_resgid: U16<LE>,
    /// First non-reserved inode.
    pub s_first_ino: U32<LE>,
    /// Inode size.
    pub s_inode_size: U16<LE>,
    /// Group of this superblock copy.
    pub s_block_group_nr: U16<LE>,
    /// Compatible features.
    pub s_feature_compat: U32<LE>,
    /// Incompatible features.
    pub s_feature_incompat: U32<LE>,
    /// Read-only compatible features.
    pub s_feature_ro_compat: U32<LE>,
    /// Volume UUID.
    pub s_uuid: [u8; 16],
    /// Volume label.
    pub s_volume_name: [u8; 16],
    /// Last mount point.
    pub s_last_mounted: [u8; 64],
    /// Compression bitmap.
    pub s_algorithm_usage_bitmap: U32<LE>,
    /// Blocks to preallocate for files.
    pub s_prealloc_blocks: u8,
    /// Blocks to preallocate for directories.
    pub s_prealloc_dir_blocks: u8,
    /// Reserved GDT blocks for growth.
    pub s_reserved_gdt_blocks: U16<LE>,
    /// UUID of the journal superblock.
    pub s_journal_uuid: [u8; 16],
    /// Journal inode.
    pub s_journal_inum: U32<LE>,
    /// Journal device number (external journal).
    pub s_journal_dev: U32<LE>,
    /// Head of the orphan list.
    pub s_last_orphan: U32<LE>,
    /// htree hash seed.
    pub s_hash_seed: [U32<LE>; 4],
    /// Default hash version.
    pub s_def_hash_version: u8,
    /// Journal backup type.
    pub s_jnl_backup_type: u8,
    /// Group descriptor size (64bit).
    pub s_desc_size: U16<LE>,
    /// Default mount options.
    pub s_default_mount_opts: U32<LE>,
    /// First meta block group.
    pub s_first_meta_bg: U32<LE>,
    /// Creation time.
    pub s_mkfs_time: U32<LE>,
    /// Backup of the journal inode's i_block and size.
    pub s_jnl_blocks: [U32<LE>; 17],
    /// Total blocks, high 32 bits.
    pub s_blocks_count_hi: U32<LE>,
    /// Reserved blocks, high 32 bits.
    pub s_r_blocks_count_hi: U32<LE>,
    /// Free blocks, high 32 bits.
    pub s_free_blocks_count_hi: U32<LE>,
    /// Minimum extra inode size.
    pub s_min_extra_isize: U16<LE>,
    /// Wanted extra inode size.
    pub s_want_extra_isize: U16<LE>,
    /// Misc flags.
    pub s_flags: U32<LE>,
    /// RAID stride.
    pub s_raid_stride: U16<LE>,
    /// MMP interval.
    pub s_mmp_interval: U16<LE>,
    /// MMP block.
    pub s_mmp_block: U64<LE>,
    /// RAID stripe width.
    pub s_raid_stripe_width: U32<LE>,
    /// Groups per flex group is 2^this.
    pub s_log_groups_per_flex: u8,
    /// Checksum type (1 = crc32c).
    pub s_checksum_type: u8,
    /// Encryption level.
    pub s_encryption_level: u8,
    /// Padding.
    pub s_reserved_pad: u8,
    /// KiB written over the lifetime.
    pub s_kbytes_written: U64<LE>,
    /// Snapshot inode.
    pub s_snapshot_inum: U32<LE>,
    /// Snapshot id.
    pub s_snapshot_id: U32<LE>,
    /// Snapshot reserved blocks.
    pub s_snapshot_r_blocks_count: U64<LE>,
    /// Snapshot list head.
    pub s_snapshot_list: U32<LE>,
    /// Number of errors seen.
    pub s_error_count: U32<LE>,
    /// First error time.
    pub s_first_error_time: U32<LE>,
    /// First error inode.
    pub s_first_error_ino: U32<LE>,
    /// First error block.
    pub s_first_error_block: U64<LE>,
    /// First error function.
    pub s_first_error_func: [u8; 32],
    /// First error line.
    pub s_first_error_line: U32<LE>,
    /// Last error time.
    pub s_last_error_time: U32<LE>,
    /// Last error inode.
    pub s_last_error_ino: U32<LE>,
    /// Last error line.
    pub s_last_error_line: U32<LE>,
    /// Last error block.
    pub s_last_error_block: U64<LE>,
    /// Last error function.
    pub s_last_error_func: [u8; 32],
    /// Mount options.
    pub s_mount_opts: [u8; 64],
    /// User quota inode.
    pub s_usr_quota_inum: U32<LE>,
    /// Group quota inode.
    pub s_grp_quota_inum: U32<LE>,
    /// Overhead clusters.
    pub s_overhead_clusters: U32<LE>,
    /// Groups with backups (sparse_super2).
    pub s_backup_bgs: [U32<LE>; 2],
    /// Encryption algorithms.
    pub s_encrypt_algos: [u8; 4],
    /// Encryption salt.
    pub s_encrypt_pw_salt: [u8; 16],
    /// lost+found inode.
    pub s_lpf_ino: U32<LE>,
    /// Project quota inode.
    pub s_prj_quota_inum: U32<LE>,
    /// crc32c(uuid) when csum_seed is set.
    pub s_checksum_seed: U32<LE>,
    /// High 8 bits of s_wtime.
    pub s_wtime_hi: u8,
    /// High 8 bits of s_mtime.
    pub s_mtime_hi: u8,
    /// High 8 bits of s_mkfs_time.
    pub s_mkfs_time_hi: u8,
    /// High 8 bits of s_lastcheck.
    pub s_lastcheck_hi: u8,
    /// High 8 bits of s_first_error_time.
    pub s_first_error_time_hi: u8,
    /// High 8 bits of s_last_error_time.
    pub s_last_error_time_hi: u8,
    /// First error code.
    pub s_first_error_errcode: u8,
    /// Last error code.
    pub s_last_error_errcode: u8,
    /// Filename charset encoding.
    pub s_encoding: U16<LE>,
    /// Encoding flags.
    pub s_encoding_flags: U16<LE>,
    /// Orphan file inode.
    pub s_orphan_file_inum: U32<LE>,
    /// Padding.
    pub s_reserved: [U32<LE>; 94],
    /// crc32c of the superblock.
    pub s_checksum: U32<LE>,
}
const _: () = assert!(size_of::<RawSuperblock>() == SB_SIZE);

/// compat: has_journal.
pub const COMPAT_HAS_JOURNAL: u32 = 0x4;
/// compat: dir_index.
pub const COMPAT_DIR_INDEX: u32 = 0x20;
/// compat: sparse_super2.
pub const COMPAT_SPARSE_SUPER2: u32 = 0x200;
/// compat: fast_commit.
pub const COMPAT_FAST_COMMIT: u32 = 0x400;
/// ro_compat: sparse_super.
pub const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
/// ro_compat: huge_file.
pub const RO_COMPAT_HUGE_FILE: u32 = 0x8;
/// ro_compat: gdt_csum.
pub const RO_COMPAT_GDT_CSUM: u32 = 0x10;
/// ro_compat: bigalloc.
pub const RO_COMPAT_BIGALLOC: u32 = 0x200;
/// ro_compat: metadata_csum.
pub const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
/// incompat: filetype.
pub const INCOMPAT_FILETYPE: u32 = 0x2;
/// incompat: needs_recovery.
pub const INCOMPAT_RECOVER: u32 = 0x4;
/// incompat: journal_dev.
pub const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
/// incompat: meta_bg.
pub const INCOMPAT_META_BG: u32 = 0x10;
/// incompat: extents.
pub const INCOMPAT_EXTENTS: u32 = 0x40;
/// incompat: 64bit.
pub const INCOMPAT_64BIT: u32 = 0x80;
/// incompat: csum_seed.
pub const INCOMPAT_CSUM_SEED: u32 = 0x2000;
/// incompat: inline_data.
pub const INCOMPAT_INLINE_DATA: u32 = 0x8000;

/// Names of compat feature bits, as e2fsprogs prints them.
pub const COMPAT_NAMES: &[(u32, &str)] = &[
    (0x1, "dir_prealloc"),
    (0x2, "imagic_inodes"),
    (0x4, "has_journal"),
    (0x8, "ext_attr"),
    (0x10, "resize_inode"),
    (0x20, "dir_index"),
    (0x40, "lazy_bg"),
    (0x80, "snapshot_bitmap"),
    (0x100, "exclude_bitmap"),
    (0x200, "sparse_super2"),
    (0x400, "fast_commit"),
    (0x800, "stable_inodes"),
    (0x1000, "orphan_file"),
];
/// Names of ro_compat feature bits.
pub const RO_COMPAT_NAMES: &[(u32, &str)] = &[
    (0x1, "sparse_super"),
    (0x2, "large_file"),
    (0x4, "btree_dir"),
    (0x8, "huge_file"),
    (0x10, "uninit_bg"),
    (0x20, "dir_nlink"),
    (0x40, "extra_isize"),
    (0x80, "snapshot"),
    (0x100, "quota"),
    (0x200, "bigalloc"),
    (0x400, "metadata_csum"),
    (0x800, "replica"),
    (0x1000, "read-only"),
    (0x2000, "project"),
    (0x4000, "shared_blocks"),
    (0x8000, "verity"),
    (0x10000, "orphan_present"),
];
/// Names of incompat feature bits.
pub const INCOMPAT_NAMES: &[(u32, &str)] = &[
    (0x1, "compression"),
    (0x2, "filetype"),
    (0x4, "needs_recovery"),
    (0x8, "journal_dev"),
    (0x10, "meta_bg"),
    (0x40, "extent"),
    (0x80, "64bit"),
    (0x100, "mmp"),
    (0x200, "flex_bg"),
    (0x400, "ea_inode"),
    (0x1000, "dirdata"),
    (0x2000, "metadata_csum_seed"),
    (0x4000, "large_dir"),
    (0x8000, "inline_data"),
    (0x10000, "encrypt"),
    (0x20000, "casefold"),
];

/// Incompat features this reader implements (or may safely ignore for reading).
pub const INCOMPAT_SUPPORTED: u32 =
    0x2 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x2000 | 0x4000 | 0x8000 | 0x20000;

/// Names of the set bits of `flags` (unknown bits as `0x...`).
pub fn feature_names(flags: u32, table: &[(u32, &str)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut known = 0u32;
    for (bit, name) in table {
        known |= bit;
        if flags & bit != 0 {
            out.push((*name).to_string());
        }
    }
    for i in 0..32 {
        let bit = 1u32 << i;
        if flags & bit != 0 && known & bit == 0 {
            out.push(format!("FEATURE_{bit:#x}"));
        }
    }
    out
}

/// A validated superblock with derived geometry.
#[derive(Debug, Clone)]
pub struct Superblock {
    /// The raw on-disk fields.
    pub raw: RawSuperblock,
    /// The 1024 raw bytes (for checksums).
    pub bytes: Vec<u8>,
    /// Block size in bytes.
    pub block_size: u32,
    /// Total blocks.
    pub blocks_count: u64,
    /// Number of block groups.
    pub groups_count: u64,
    /// Group descriptor size (32 or `s_desc_size`).
    pub desc_size: u32,
    /// Inode size.
    pub inode_size: u32,
    /// Inodes per group.
    pub inodes_per_group: u32,
    /// Blocks per group.
    pub blocks_per_group: u32,
    /// First data block.
    pub first_data_block: u64,
    /// crc32c seed for metadata checksums.
    pub csum_seed: u32,
}

impl Superblock {
    /// Read and validate the superblock at byte 1024 of `src`.
    pub fn read(src: &dyn BlockSource) -> Result<Self> {
        let bytes = src.read_at(SB_OFFSET, SB_SIZE)?.into_owned();
        let raw = RawSuperblock::read_from_bytes(&bytes)
            .map_err(|_| Error::corrupt("ext4 superblock", 0, SB_OFFSET, "short superblock"))?;
        let bad = |detail: String| Error::corrupt("ext4 superblock", 0, SB_OFFSET, detail);
        if raw.s_magic.get() != EXT4_MAGIC {
            return Err(bad(format!("bad magic {:#06x} (want 0xef53)", raw.s_magic.get())));
        }
        let log = raw.s_log_block_size.get();
        if log > 6 {
            return Err(bad(format!("s_log_block_size {log} out of range (block size above 64 KiB)")));
        }
        let block_size = 1024u32 << log;
        let incompat = raw.s_feature_incompat.get();
        if incompat & INCOMPAT_JOURNAL_DEV != 0 {
            return Err(Error::Unsupported(
                "this is an external ext4 journal device (incompat feature journal_dev), not a file system"
                    .into(),
            ));
        }
        let unsupported = incompat & !INCOMPAT_SUPPORTED;
        if unsupported != 0 {
            return Err(Error::Unsupported(format!(
                "ext4 incompat feature(s) {}",
                feature_names(unsupported, INCOMPAT_NAMES).join(" ")
            )));
        }
        let is64 = incompat & INCOMPAT_64BIT != 0;
        let mut blocks_count = u64::from(raw.s_blocks_count_lo.get());
        if is64 {
            blocks_count |= u64::from(raw.s_blocks_count_hi.get()) << 32;
        }
        let desc_size = if is64 { u32::from(raw.s_desc_size.get()) } else { 32 };
        if is64 && (!(32..=1024).contains(&desc_size) || !desc_size.is_power_of_two()) {
            return Err(bad(format!("s_desc_size {desc_size} is not a power of two in 32..=1024")));
        }
        let inode_size = if raw.s_rev_level.get() == 0 { 128 } else { u32::from(raw.s_inode_size.get()) };
        if inode_size < 128 || inode_size > block_size || !inode_size.is_power_of_two() {
            return Err(bad(format!("s_inode_size {inode_size} invalid")));
        }
        // With bigalloc a group covers 8 × block size clusters of 2^n blocks each.
        let cluster_ratio = if raw.s_feature_ro_compat.get() & RO_COMPAT_BIGALLOC != 0 {
            let lc = raw.s_log_cluster_size.get();
            if lc < log || lc > log + 16 {
                return Err(bad(format!("s_log_cluster_size {lc} invalid for block size {block_size}")));
            }
            1u32 << (lc - log)
        } else {
            1
        };
        let bpg = raw.s_blocks_per_group.get();
        if bpg == 0 || bpg > block_size.saturating_mul(8).saturating_mul(cluster_ratio) {
            return Err(bad(format!("s_blocks_per_group {bpg} invalid")));
        }
        let ipg = raw.s_inodes_per_group.get();
        if ipg == 0 || ipg > block_size.saturating_mul(8) {
            return Err(bad(format!("s_inodes_per_group {ipg} invalid")));
        }
        let first_data_block = u64::from(raw.s_first_data_block.get());
        if first_data_block >= blocks_count {
            return Err(bad(format!("s_first_data_block {first_data_block} >= blocks count {blocks_count}")));
        }
        let groups_count = (blocks_count - first_data_block).div_ceil(u64::from(bpg));
        let csum_seed = if incompat & INCOMPAT_CSUM_SEED != 0 {
            raw.s_checksum_seed.get()
        } else {
            super::csum::crc32c_raw(!0, &raw.s_uuid)
        };
        Ok(Self {
            block_size,
            blocks_count,
            groups_count,
            desc_size,
            inode_size,
            inodes_per_group: ipg,
            blocks_per_group: bpg,
            first_data_block,
            csum_seed,
            raw,
            bytes,
        })
    }

    /// Compatible feature flags.
    pub fn compat(&self) -> u32 {
        self.raw.s_feature_compat.get()
    }
    /// Incompatible feature flags.
    pub fn incompat(&self) -> u32 {
        self.raw.s_feature_incompat.get()
    }
    /// Read-only compatible feature flags.
    pub fn ro_compat(&self) -> u32 {
        self.raw.s_feature_ro_compat.get()
    }
    /// True when the compat bit is set.
    pub fn has_compat(&self, bit: u32) -> bool {
        self.compat() & bit != 0
    }
    /// True when the incompat bit is set.
    pub fn has_incompat(&self, bit: u32) -> bool {
        self.incompat() & bit != 0
    }
    /// True when the ro_compat bit is set.
    pub fn has_ro_compat(&self, bit: u32) -> bool {
        self.ro_compat() & bit != 0
    }
    /// metadata_csum is on.
    pub fn metadata_csum(&self) -> bool {
        self.has_ro_compat(RO_COMPAT_METADATA_CSUM)
    }
    /// The volume UUID.
    pub fn uuid(&self) -> [u8; 16] {
        self.raw.s_uuid
    }
    /// The journal inode (0 when none).
    pub fn journal_inum(&self) -> u32 {
        self.raw.s_journal_inum.get()
    }
    /// The external journal device number (0 when none).
    pub fn journal_dev(&self) -> u32 {
        self.raw.s_journal_dev.get()
    }
    /// UUID of the external journal.
    pub fn journal_uuid(&self) -> [u8; 16] {
        self.raw.s_journal_uuid
    }
    /// has_journal is set.
    pub fn has_journal(&self) -> bool {
        self.has_compat(COMPAT_HAS_JOURNAL)
    }
    /// needs_recovery is set.
    pub fn needs_recovery(&self) -> bool {
        self.has_incompat(INCOMPAT_RECOVER)
    }
    /// The volume label.
    pub fn label(&self) -> String {
        cstr(&self.raw.s_volume_name)
    }
    /// The expected superblock checksum (crc32c of the first 1020 bytes).
    pub fn computed_checksum(&self) -> u32 {
        super::csum::crc32c_raw(!0, self.bytes.get(..1020).unwrap_or(&[]))
    }
    /// True when group `g` holds a superblock backup (and so a GDT copy).
    pub fn group_has_super(&self, g: u64) -> bool {
        if g == 0 {
            return true;
        }
        if self.has_compat(COMPAT_SPARSE_SUPER2) {
            return self.raw.s_backup_bgs.iter().any(|b| u64::from(b.get()) == g);
        }
        if g <= 1 || !self.has_ro_compat(RO_COMPAT_SPARSE_SUPER) {
            return true;
        }
        if g & 1 == 0 {
            return false;
        }
        is_power_of(g, 3) || is_power_of(g, 5) || is_power_of(g, 7)
    }
}

fn is_power_of(mut n: u64, b: u64) -> bool {
    while n.is_multiple_of(b) && n > 1 {
        n /= b;
    }
    n == 1
}

/// A NUL-terminated string field, lossily as UTF-8.
pub fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}
