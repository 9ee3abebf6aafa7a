//! Linear directory entries (`ext4_dir_entry_2`), the checksum tail of directory leaf blocks,
//! and inline-data directories.
//!
//! Parsing idiom: an entry is a variable record (`rec_len`, `name_len`, then the name), read with
//! `nom`'s complete-input number parsers so that a short or overlong record ends the walk with
//! an error at its offset instead of a read past the block (the checks of `ext4_check_dir_entry`
//! follow).

use super::csum;
use crate::error::Findings;
use crate::fs::{DirEntry, FileType};
use nom::IResult;
use nom::number::complete::{le_u8, le_u16, le_u32};

/// `file_type` of the checksum tail pseudo-entry.
const TAIL_FT: u8 = 0xDE;
/// Size of the checksum tail.
pub const TAIL_SIZE: usize = 12;

/// A directory entry header as stored.
#[derive(Debug, Clone, Copy)]
pub struct RawDirent {
    /// Inode (0: unused).
    pub inode: u32,
    /// Record length, decoded.
    pub rec_len: usize,
    /// Name length.
    pub name_len: usize,
    /// File type byte (0 when the filetype feature is off).
    pub file_type: u8,
}

/// Parse one entry header. `filetype` says whether the 8th byte is a type (else it is the high
/// byte of the name length).
fn header(input: &[u8], filetype: bool, block_size: usize) -> IResult<&[u8], RawDirent> {
    let (input, inode) = le_u32(input)?;
    let (input, rec) = le_u16(input)?;
    let (input, nl) = le_u8(input)?;
    let (input, ft) = le_u8(input)?;
    let (name_len, file_type) =
        if filetype { (usize::from(nl), ft) } else { (usize::from(nl) | usize::from(ft) << 8, 0) };
    Ok((input, RawDirent { inode, rec_len: decode_rec_len(rec, block_size), name_len, file_type }))
}

/// Decode `rec_len` (64 KiB blocks store 65536 as 0 or 65535 and use the low two bits as bits
/// 16-17).
pub fn decode_rec_len(rec: u16, block_size: usize) -> usize {
    if block_size < 65536 {
        return usize::from(rec);
    }
    if rec == 0xFFFF || rec == 0 {
        return block_size;
    }
    usize::from(rec & 0xFFFC) | (usize::from(rec & 3) << 16)
}

/// Map a dirent `file_type` byte.
pub fn file_type(ft: u8) -> Option<FileType> {
    FileType::from_dirent(ft)
}

/// Where a block of entries lives, for findings.
#[derive(Debug, Clone, Copy)]
pub struct Place {
    /// Directory inode.
    pub ino: u64,
    /// fs block (or the inode's block for inline directories).
    pub block: u64,
    /// Byte offset of `bytes[0]` from the start of the file system.
    pub offset: u64,
}

/// Parse the entries of one region (a leaf block, or an inline area), appending live ones
/// (without "." and "..") to `out`. A malformed entry ends the region with a finding.
pub fn parse_entries(
    bytes: &[u8],
    filetype: bool,
    block_size: usize,
    at: Place,
    findings: &Findings,
    out: &mut Vec<DirEntry>,
) {
    let mut pos = 0usize;
    while pos + 8 <= bytes.len() {
        let Ok((_, d)) = header(&bytes[pos..], filetype, block_size) else { break };
        let min = (8 + d.name_len + 3) & !3;
        if d.rec_len < 8
            || d.rec_len % 4 != 0
            || pos + d.rec_len > bytes.len()
            || (d.inode != 0 && d.rec_len < min)
        {
            findings.error(
                "ext4 directory entry",
                Some(at.block),
                Some(at.offset + pos as u64),
                format!(
                    "directory inode {}: bad entry at byte {pos} of the block (rec_len {}, name_len {}); rest of block skipped",
                    at.ino, d.rec_len, d.name_len
                ),
            );
            return;
        }
        if d.inode != 0 && d.name_len > 0 {
            let name = &bytes[pos + 8..pos + 8 + d.name_len];
            if name != b"." && name != b".." {
                out.push(DirEntry {
                    name: name.to_vec(),
                    ino: u64::from(d.inode),
                    file_type: file_type(d.file_type),
                });
            }
        }
        pos += d.rec_len;
    }
}

/// What the checksum tail of a leaf block says (metadata_csum).
enum LeafTail {
    /// The block ends in no checksum tail pseudo-entry.
    Missing,
    /// The tail's checksum is not the block's.
    Mismatch { stored: u32, want: u32 },
    /// The checksum matches.
    Good,
}

/// Read and check the checksum tail of a leaf block (`ext4_dirblock_csum_verify`); None for a
/// block shorter than a tail.
fn leaf_tail(block: &[u8], seed: u32) -> Option<LeafTail> {
    let n = block.len();
    let tail = n.checked_sub(TAIL_SIZE).and_then(|s| block.get(s..))?;
    let inode = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    let rec = u16::from_le_bytes([tail[4], tail[5]]);
    if inode != 0 || rec != TAIL_SIZE as u16 || tail[6] != 0 || tail[7] != TAIL_FT {
        return Some(LeafTail::Missing);
    }
    let stored = u32::from_le_bytes([tail[8], tail[9], tail[10], tail[11]]);
    let want = csum::crc32c_raw(seed, &block[..n - TAIL_SIZE]);
    Some(if stored == want { LeafTail::Good } else { LeafTail::Mismatch { stored, want } })
}

/// Whether a leaf block has a checksum tail that matches (`ext4_dirblock_csum_verify`).
pub fn leaf_tail_ok(block: &[u8], seed: u32) -> bool {
    matches!(leaf_tail(block, seed), Some(LeafTail::Good))
}

/// Check the checksum tail of a leaf block (metadata_csum). `seed` is the directory inode's
/// checksum seed.
pub fn verify_leaf_tail(block: &[u8], seed: u32, at: Place, findings: &Findings) {
    let n = block.len();
    match leaf_tail(block, seed) {
        None | Some(LeafTail::Good) => {}
        Some(LeafTail::Missing) => findings.error(
            "ext4 directory block",
            Some(at.block),
            Some(at.offset + (n - TAIL_SIZE) as u64),
            format!("directory inode {}: leaf block has no checksum tail", at.ino),
        ),
        Some(LeafTail::Mismatch { stored, want }) => findings.error(
            "ext4 directory block",
            Some(at.block),
            Some(at.offset + (n - 4) as u64),
            format!(
                "directory inode {}: leaf checksum {stored:#010x} does not match computed {want:#010x}",
                at.ino
            ),
        ),
    }
}

/// Is this block an htree interior node (a fake empty entry spanning the whole block)?
pub fn is_dx_node(block: &[u8]) -> bool {
    let Some(h) = block.get(..8) else { return false };
    let inode = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let rec = decode_rec_len(u16::from_le_bytes([h[4], h[5]]), block.len());
    inode == 0 && rec == block.len()
}

/// An entry that no longer belongs to its directory but whose bytes are still in a block: found
/// in the slack after a live entry whose `rec_len` covers more than its own name, as
/// `ext2fs_process_dir_block` finds it with `DIRENT_FLAG_INCLUDE_REMOVED` (debugfs `ls -d`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedEntry {
    /// Byte offset in the block.
    pub offset: usize,
    /// The inode it named (the inode may have been freed or reused since).
    pub inode: u32,
    /// Its record length as stored.
    pub rec_len: usize,
    /// Its name.
    pub name: Vec<u8>,
}

/// Whether a chain of entries starting at `offset` ends exactly at `end`, each with a plausible
/// record length (`ext2fs_validate_entry`).
fn chain_ends_at(block: &[u8], filetype: bool, mut offset: usize, end: usize) -> bool {
    const MIN: usize = 12;
    while offset < end && offset + MIN <= block.len() {
        let Ok((_, d)) = header(&block[offset..], filetype, block.len()) else { return false };
        offset += d.rec_len;
        if d.rec_len < 8 || d.rec_len % 4 != 0 || d.name_len + 8 > d.rec_len {
            return false;
        }
    }
    offset == end
}

/// The removed entries of one directory block, in block order, found as libext2fs's directory
/// iterator finds them with `DIRENT_FLAG_INCLUDE_REMOVED`: after each entry whose `rec_len` is
/// not its name's size, the slack is searched in steps of 4 bytes for a position whose chain of
/// entries ends where the live entry's record ends; entries found that way are removed ones. A
/// malformed live entry ends the block (the listing reports it).
pub fn removed_entries(block: &[u8], filetype: bool) -> Vec<RemovedEntry> {
    let mut out = Vec::new();
    let (mut offset, mut next_live) = (0usize, 0usize);
    while offset + 8 < block.len() {
        let Ok((_, d)) = header(&block[offset..], filetype, block.len()) else { break };
        if offset + d.rec_len > block.len()
            || d.rec_len < 8
            || d.rec_len % 4 != 0
            || d.name_len + 8 > d.rec_len
        {
            break;
        }
        // The metadata_csum tail (inode 0, rec_len 12, name_len 0, type 0xde, at the block's end)
        // is never listed (`ext2fs_process_dir_block` skips it unless asked for checksums).
        let tail = d.inode == 0
            && d.rec_len == 12
            && offset + 12 == block.len()
            && d.name_len == 0
            && d.file_type == 0xDE;
        if offset < next_live && !tail {
            let name = block[offset + 8..offset + 8 + d.name_len].to_vec();
            out.push(RemovedEntry { offset, inode: d.inode, rec_len: d.rec_len, name });
        }
        if next_live == offset {
            next_live += d.rec_len;
        }
        let size = (d.name_len + 11) & !3;
        if d.rec_len != size {
            let end = offset + d.rec_len;
            offset += size;
            while offset < end && !chain_ends_at(block, filetype, offset, end) {
                offset += 4;
            }
            continue;
        }
        offset += d.rec_len;
    }
    out
}

#[cfg(test)]
mod removed_tests {
    use super::*;

    fn entry(b: &mut [u8], at: usize, ino: u32, rec: u16, name: &[u8]) {
        b[at..at + 4].copy_from_slice(&ino.to_le_bytes());
        b[at + 4..at + 6].copy_from_slice(&rec.to_le_bytes());
        b[at + 6] = name.len() as u8;
        b[at + 7] = 1;
        b[at + 8..at + 8 + name.len()].copy_from_slice(name);
    }

    #[test]
    fn finds_an_entry_hidden_in_the_slack_and_nothing_in_garbage() {
        // "a" (12 bytes) whose rec_len was grown over the removed "bb" (12 bytes), then "c".
        let mut b = vec![0u8; 1024];
        entry(&mut b, 0, 11, 24, b"a");
        entry(&mut b, 12, 12, 12, b"bb");
        entry(&mut b, 24, 13, 1000, b"c");
        let r = removed_entries(&b, true);
        assert_eq!(r, vec![RemovedEntry { offset: 12, inode: 12, rec_len: 12, name: b"bb".to_vec() }]);
        let junk: Vec<u8> = (0..1024u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let _ = removed_entries(&junk, true);
        assert!(removed_entries(&[0u8; 5], true).is_empty());
    }
}
