//! The jbd2 journal superblock (v1 and v2), big-endian, in journal block 0.

use super::csum;
use crate::error::{Error, Result};
use serde::Serialize;
use zerocopy::byteorder::{BE, U32};
use zerocopy::{FromBytes, Immutable, KnownLayout};

/// The jbd2 magic number that starts every journal metadata block.
pub const JBD2_MAGIC: u32 = 0xC03B_3998;

/// Block type: descriptor block.
pub const BT_DESCRIPTOR: u32 = 1;
/// Block type: commit block.
pub const BT_COMMIT: u32 = 2;
/// Block type: superblock v1.
pub const BT_SB_V1: u32 = 3;
/// Block type: superblock v2.
pub const BT_SB_V2: u32 = 4;
/// Block type: revoke block.
pub const BT_REVOKE: u32 = 5;

/// Compat feature: legacy transaction checksums (crc32 over the blocks, in the commit block).
pub const COMPAT_CHECKSUM: u32 = 0x1;
/// Incompat feature: revoke records.
pub const INCOMPAT_REVOKE: u32 = 0x1;
/// Incompat feature: 64-bit block numbers.
pub const INCOMPAT_64BIT: u32 = 0x2;
/// Incompat feature: asynchronous commit.
pub const INCOMPAT_ASYNC_COMMIT: u32 = 0x4;
/// Incompat feature: checksum v2.
pub const INCOMPAT_CSUM_V2: u32 = 0x8;
/// Incompat feature: checksum v3.
pub const INCOMPAT_CSUM_V3: u32 = 0x10;
/// Incompat feature: fast commits.
pub const INCOMPAT_FAST_COMMIT: u32 = 0x20;
/// Incompat features this reader (and the kernel) knows.
pub const INCOMPAT_KNOWN: u32 = INCOMPAT_REVOKE
    | INCOMPAT_64BIT
    | INCOMPAT_ASYNC_COMMIT
    | INCOMPAT_CSUM_V2
    | INCOMPAT_CSUM_V3
    | INCOMPAT_FAST_COMMIT;

/// `s_checksum_type` value for crc32c.
pub const CSUM_TYPE_CRC32C: u8 = 4;
/// Fast-commit blocks when `s_num_fc_blks` is 0.
pub const DEFAULT_FC_BLOCKS: u32 = 256;

/// The common 12-byte header of every journal metadata block.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
pub struct RawHeader {
    /// [`JBD2_MAGIC`].
    pub h_magic: U32<BE>,
    /// Block type.
    pub h_blocktype: U32<BE>,
    /// Transaction sequence.
    pub h_sequence: U32<BE>,
}
const _: () = assert!(size_of::<RawHeader>() == 12);

/// `journal_superblock_t` as stored (1024 bytes).
#[derive(FromBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct RawSuperblock {
    /// Header (block type 3 or 4).
    pub s_header: RawHeader,
    /// Journal block size.
    pub s_blocksize: U32<BE>,
    /// Total blocks in the journal (including the fast-commit area).
    pub s_maxlen: U32<BE>,
    /// First block of log information.
    pub s_first: U32<BE>,
    /// First commit ID expected in the log.
    pub s_sequence: U32<BE>,
    /// Block of the start of the log; 0 means clean.
    pub s_start: U32<BE>,
    /// Error value set by jbd2_journal_abort.
    pub s_errno: U32<BE>,
    /// Compatible features.
    pub s_feature_compat: U32<BE>,
    /// Incompatible features.
    pub s_feature_incompat: U32<BE>,
    /// Read-only compatible features.
    pub s_feature_ro_compat: U32<BE>,
    /// UUID of the journal.
    pub s_uuid: [u8; 16],
    /// Number of file systems sharing the log.
    pub s_nr_users: U32<BE>,
    /// Blocknr of a dynamic superblock copy.
    pub s_dynsuper: U32<BE>,
    /// Limit of journal blocks per transaction.
    pub s_max_transaction: U32<BE>,
    /// Limit of data blocks per transaction.
    pub s_max_trans_data: U32<BE>,
    /// Checksum type (4 = crc32c).
    pub s_checksum_type: u8,
    /// Padding.
    pub s_padding2: [u8; 3],
    /// Fast-commit blocks (0 = default 256).
    pub s_num_fc_blks: U32<BE>,
    /// Head block of the journal when clean.
    pub s_head: U32<BE>,
    /// Padding.
    pub s_padding: [U32<BE>; 40],
    /// crc32c of the superblock.
    pub s_checksum: U32<BE>,
    /// UUIDs of the file systems sharing the log.
    pub s_users: [u8; 768],
}
const _: () = assert!(size_of::<RawSuperblock>() == 1024);

/// Byte offset of `s_checksum` in the superblock.
const SB_CSUM_AT: usize = 0xFC;

/// The parsed journal superblock.
#[derive(Debug, Clone, Serialize)]
pub struct JournalSuperblock {
    /// 1 or 2.
    pub version: u32,
    /// Journal block size.
    pub block_size: u32,
    /// Total journal blocks (s_maxlen).
    pub maxlen: u32,
    /// First log block (s_first).
    pub first: u32,
    /// First expected sequence (s_sequence).
    pub sequence: u32,
    /// Start of the log (s_start); 0 when clean.
    pub start: u32,
    /// s_errno.
    pub errno: i32,
    /// Compatible features.
    pub feature_compat: u32,
    /// Incompatible features.
    pub feature_incompat: u32,
    /// Read-only compatible features.
    pub feature_ro_compat: u32,
    /// Journal UUID, hex.
    pub uuid: String,
    /// Raw UUID bytes.
    #[serde(skip)]
    pub uuid_bytes: [u8; 16],
    /// Users of the journal.
    pub nr_users: u32,
    /// s_max_transaction.
    pub max_transaction: u32,
    /// s_max_trans_data.
    pub max_trans_data: u32,
    /// Checksum type byte.
    pub checksum_type: u8,
    /// s_num_fc_blks as stored.
    pub num_fc_blks: u32,
    /// s_head.
    pub head: u32,
    /// s_checksum as stored.
    pub checksum: u32,
    /// Whether the superblock checksum matches (None without csum v2/v3).
    pub checksum_ok: Option<bool>,
    /// Feature names.
    pub features: Vec<&'static str>,
    /// The first user's UUID (external journals), hex.
    pub first_user: Option<String>,
    /// Raw first user UUID.
    #[serde(skip)]
    pub first_user_bytes: [u8; 16],
}

impl JournalSuperblock {
    /// Parse the superblock from the first 1024 bytes of journal block 0. `offset` is for errors.
    pub fn parse(bytes: &[u8], offset: u64) -> Result<Self> {
        let (sb, _) = RawSuperblock::ref_from_prefix(bytes).map_err(|_| {
            Error::corrupt("jbd2 superblock", 0, offset, format!("only {} bytes", bytes.len()))
        })?;
        let magic = sb.s_header.h_magic.get();
        if magic != JBD2_MAGIC {
            return Err(Error::corrupt(
                "jbd2 superblock",
                0,
                offset,
                format!("bad magic {magic:#010x} (expected {JBD2_MAGIC:#010x})"),
            ));
        }
        let version = match sb.s_header.h_blocktype.get() {
            BT_SB_V1 => 1,
            BT_SB_V2 => 2,
            t => {
                return Err(Error::corrupt(
                    "jbd2 superblock",
                    0,
                    offset,
                    format!("block type {t} is not a journal superblock (3 or 4)"),
                ));
            }
        };
        // A v1 superblock has no feature fields: the kernel treats them as zero.
        let (compat, incompat, ro) = if version == 2 {
            (sb.s_feature_compat.get(), sb.s_feature_incompat.get(), sb.s_feature_ro_compat.get())
        } else {
            (0, 0, 0)
        };
        let has_csum = incompat & (INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3) != 0;
        let checksum_ok = has_csum.then(|| {
            let mut copy = bytes[..1024].to_vec();
            copy[SB_CSUM_AT..SB_CSUM_AT + 4].fill(0);
            csum::raw(!0, &copy) == sb.s_checksum.get()
        });
        let mut features = vec![];
        if compat & COMPAT_CHECKSUM != 0 {
            features.push("journal_checksum");
        }
        for (bit, name) in [
            (INCOMPAT_REVOKE, "journal_incompat_revoke"),
            (INCOMPAT_64BIT, "journal_64bit"),
            (INCOMPAT_ASYNC_COMMIT, "journal_async_commit"),
            (INCOMPAT_CSUM_V2, "journal_checksum_v2"),
            (INCOMPAT_CSUM_V3, "journal_checksum_v3"),
            (INCOMPAT_FAST_COMMIT, "journal_fast_commit"),
        ] {
            if incompat & bit != 0 {
                features.push(name);
            }
        }
        let mut first_user_bytes = [0u8; 16];
        first_user_bytes.copy_from_slice(&sb.s_users[..16]);
        let nr_users = sb.s_nr_users.get();
        Ok(Self {
            version,
            block_size: sb.s_blocksize.get(),
            maxlen: sb.s_maxlen.get(),
            first: sb.s_first.get(),
            sequence: sb.s_sequence.get(),
            start: sb.s_start.get(),
            errno: sb.s_errno.get() as i32,
            feature_compat: compat,
            feature_incompat: incompat,
            feature_ro_compat: ro,
            uuid: hex::encode(sb.s_uuid),
            uuid_bytes: sb.s_uuid,
            nr_users,
            max_transaction: sb.s_max_transaction.get(),
            max_trans_data: sb.s_max_trans_data.get(),
            checksum_type: sb.s_checksum_type,
            num_fc_blks: sb.s_num_fc_blks.get(),
            head: sb.s_head.get(),
            checksum: sb.s_checksum.get(),
            checksum_ok,
            features,
            first_user: (version == 2 && nr_users > 0).then(|| hex::encode(first_user_bytes)),
            first_user_bytes,
        })
    }

    /// Whether an incompat feature bit is set.
    pub fn has_incompat(&self, bit: u32) -> bool {
        self.feature_incompat & bit != 0
    }

    /// csum v2 or v3.
    pub fn csum_v2v3(&self) -> bool {
        self.has_incompat(INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3)
    }

    /// Legacy transaction checksums (compat feature).
    pub fn csum_v1(&self) -> bool {
        self.feature_compat & COMPAT_CHECKSUM != 0
    }

    /// 64-bit block numbers.
    pub fn is_64bit(&self) -> bool {
        self.has_incompat(INCOMPAT_64BIT)
    }

    /// Fast commits.
    pub fn fast_commit(&self) -> bool {
        self.has_incompat(INCOMPAT_FAST_COMMIT)
    }

    /// Bytes per descriptor tag (without the optional 16-byte UUID), as the kernel computes it.
    pub fn tag_bytes(&self) -> usize {
        if self.has_incompat(INCOMPAT_CSUM_V3) {
            return 16;
        }
        let mut sz = 12;
        if self.has_incompat(INCOMPAT_CSUM_V2) {
            sz += 2;
        }
        if self.is_64bit() { sz } else { sz - 4 }
    }

    /// Fast-commit blocks at the end of the journal (0 without fast commits).
    pub fn fc_blocks(&self) -> u32 {
        if !self.fast_commit() {
            return 0;
        }
        if self.num_fc_blks == 0 { DEFAULT_FC_BLOCKS } else { self.num_fc_blks }
    }

    /// The checksum seed: crc32c of the UUID (csum v2/v3).
    pub fn csum_seed(&self) -> u32 {
        csum::raw(!0, &self.uuid_bytes)
    }
}
