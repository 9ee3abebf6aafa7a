//! Hashed (htree) directory index blocks: the root in block 0 and interior nodes. Their
//! entries are not directory entries; the reader lists names from the leaf blocks and only
//! checks the index blocks here.

use super::csum;
use super::dir::Place;
use crate::error::Findings;

/// Offset of `dx_countlimit` in the root block (after "." and ".." and `dx_root_info`).
const ROOT_COUNT_AT: usize = 32;
/// Offset of `dx_countlimit` in an interior node (after the fake dirent).
const NODE_COUNT_AT: usize = 8;

/// Check an index block: `count <= limit`, `limit` fits the block, and (metadata_csum) the
/// `dx_tail` checksum.
pub fn check_index(block: &[u8], root: bool, csum_seed: Option<u32>, at: Place, findings: &Findings) {
    let count_at = if root {
        // dx_root_info: reserved(4) hash_version(1) info_length(1) levels(1) flags(1) at 24.
        let info_len = block.get(29).copied().unwrap_or(0) as usize;
        if info_len != 8 {
            findings.error(
                "ext4 htree root",
                Some(at.block),
                Some(at.offset + 29),
                format!("directory inode {}: dx_root info_length {info_len} (want 8)", at.ino),
            );
            return;
        }
        ROOT_COUNT_AT
    } else {
        NODE_COUNT_AT
    };
    let structure = if root { "ext4 htree root" } else { "ext4 htree node" };
    let Some(cl) = block.get(count_at..count_at + 4) else { return };
    let limit = usize::from(u16::from_le_bytes([cl[0], cl[1]]));
    let count = usize::from(u16::from_le_bytes([cl[2], cl[3]]));
    let tail = if csum_seed.is_some() { 8 } else { 0 };
    let room = (block.len() - count_at - tail) / 8;
    if limit != room || count > limit || count == 0 {
        findings.error(
            structure,
            Some(at.block),
            Some(at.offset + count_at as u64),
            format!("directory inode {}: dx count {count} / limit {limit} (room for {room})", at.ino),
        );
        return;
    }
    if let Some(seed) = csum_seed {
        let size = count_at + count * 8;
        let t = count_at + limit * 8;
        let (Some(covered), Some(tl)) = (block.get(..size), block.get(t..t + 8)) else { return };
        let mut c = csum::crc32c_raw(seed, covered);
        c = csum::crc32c_raw(c, &tl[..4]);
        // The checksum field itself counts as zero.
        c = csum::crc32c_raw(c, &[0; 4]);
        let stored = u32::from_le_bytes([tl[4], tl[5], tl[6], tl[7]]);
        if stored != c {
            findings.error(
                structure,
                Some(at.block),
                Some(at.offset + t as u64 + 4),
                format!(
                    "directory inode {}: htree checksum {stored:#010x} does not match computed {c:#010x}",
                    at.ino
                ),
            );
        }
    }
}
