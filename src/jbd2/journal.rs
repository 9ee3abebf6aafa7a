//! An opened journal: its superblock and its blocks, addressed by journal block number.

use super::superblock::{
    CSUM_TYPE_CRC32C, INCOMPAT_CSUM_V2, INCOMPAT_CSUM_V3, INCOMPAT_KNOWN, JournalSuperblock,
};
use crate::error::Result;
use crate::image::BlockSource;
use std::borrow::Cow;
use std::sync::Arc;

/// The kernel's `JBD2_MIN_JOURNAL_BLOCKS`.
const MIN_JOURNAL_BLOCKS: u64 = 1024;

/// A journal: a source where journal block N is at byte N × block size.
#[derive(Clone)]
pub struct Journal {
    /// The journal's bytes.
    pub src: Arc<dyn BlockSource>,
    /// The superblock.
    pub sb: JournalSuperblock,
    /// Block size.
    pub bs: u32,
    /// Blocks the kernel may read (`j_total_len`: s_maxlen once validated).
    pub total_len: u64,
    /// First log block (`j_first`).
    pub first: u64,
    /// One past the last log block (`j_last`); the fast-commit area starts after it.
    pub last: u64,
    /// First fast-commit block (`j_fc_first`), when fast commits are on.
    pub fc_first: u64,
    /// `j_fc_last` (s_maxlen).
    pub fc_last: u64,
    /// Where the journal lives ("inode 8", "external device FILE").
    pub location: String,
    /// Reasons the kernel would refuse to load this journal (mount fails), if any.
    pub refusal: Vec<String>,
}

impl Journal {
    /// Open the journal in `src` (journal block 0 = superblock at byte 0). `fs_block_size` is
    /// the file system's block size; `blocks_available` how many journal blocks the container
    /// (inode or device) holds.
    pub fn open(
        src: Arc<dyn BlockSource>,
        fs_block_size: u32,
        blocks_available: u64,
        location: impl Into<String>,
    ) -> Result<Self> {
        let head = src.read_at(0, 1024)?;
        let sb = JournalSuperblock::parse(&head, 0)?;
        let mut refusal = vec![];
        let bs = sb.block_size;
        if bs != fs_block_size {
            refusal.push(format!("journal block size {bs} differs from the file system's {fs_block_size}"));
        }
        if !(1024..=65536).contains(&bs) || !bs.is_power_of_two() {
            refusal.push(format!("journal block size {bs} is not valid"));
        }
        let maxlen = u64::from(sb.maxlen);
        if maxlen > blocks_available {
            refusal.push(format!(
                "s_maxlen {maxlen} is larger than the journal ({blocks_available} blocks): journal file too short"
            ));
        }
        let first = u64::from(sb.first);
        if first == 0 || first >= maxlen {
            refusal.push(format!("s_first {first} is outside the journal (s_maxlen {maxlen})"));
        }
        if sb.has_incompat(INCOMPAT_CSUM_V2) && sb.has_incompat(INCOMPAT_CSUM_V3) {
            refusal.push("both checksum v2 and v3 are set".into());
        }
        if sb.csum_v2v3() && sb.checksum_type != CSUM_TYPE_CRC32C {
            refusal.push(format!("checksum type {} is not crc32c", sb.checksum_type));
        }
        if sb.checksum_ok == Some(false) {
            refusal.push(format!("journal superblock checksum {:#010x} does not match", sb.checksum));
        }
        let unknown = sb.feature_incompat & !INCOMPAT_KNOWN;
        if unknown != 0 {
            refusal.push(format!("unknown incompatible features {unknown:#x}"));
        }
        let mut last = maxlen;
        let mut fc_first = 0;
        if sb.fast_commit() {
            let n = u64::from(sb.fc_blocks());
            if last.saturating_sub(n) >= MIN_JOURNAL_BLOCKS {
                last = maxlen - n;
            }
            fc_first = last + 1;
        }
        // Never read past what the container really holds.
        let src_blocks = src.len() / u64::from(bs.max(1));
        let total_len = maxlen.min(blocks_available).min(src_blocks);
        Ok(Self {
            src,
            bs,
            total_len,
            first,
            last,
            fc_first,
            fc_last: maxlen,
            location: location.into(),
            refusal,
            sb,
        })
    }

    /// Journal block `n`, or None when it is outside the journal (the kernel's `jread` fails).
    pub fn read(&self, n: u64) -> Option<Cow<'_, [u8]>> {
        if n >= self.total_len {
            return None;
        }
        self.src.read_at(n.checked_mul(u64::from(self.bs))?, self.bs as usize).ok()
    }

    /// The kernel's `wrap()`: past the end of the log, go back to its start.
    pub fn wrap(&self, n: u64) -> u64 {
        if n >= self.last { n - self.lap() } else { n }
    }

    /// Blocks in one lap of the log.
    pub fn lap(&self) -> u64 {
        self.last.saturating_sub(self.first)
    }
}
