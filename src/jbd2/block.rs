//! Journal log blocks: descriptor tags, commit blocks, revoke blocks, block tails.
//!
//! Parsing idiom: fixed headers (block header, commit block, tails) are zerocopy structs; the
//! variable records (descriptor tags whose size and fields depend on the csum and 64bit
//! features, revoke lists of 4- or 8-byte entries) are read with `nom`'s complete-input
//! combinators, which bound every read by the bytes left and end the walk at the first short
//! record, as the tag loop of the kernel's `do_one_pass` stops where a tag would pass the block.

use super::csum;
use super::superblock::{INCOMPAT_CSUM_V3, JournalSuperblock, RawHeader};
use nom::IResult;
use nom::Parser;
use nom::bytes::complete::take;
use nom::number::complete::{be_u16, be_u32, be_u64};
use serde::Serialize;
use zerocopy::byteorder::{BE, U32, U64};
use zerocopy::{FromBytes, Immutable, KnownLayout};

/// Tag flag: the block's first four bytes were the jbd2 magic and were zeroed in the log.
pub const FLAG_ESCAPE: u16 = 1;
/// Tag flag: same UUID as the previous tag (no UUID follows).
pub const FLAG_SAME_UUID: u16 = 2;
/// Tag flag: block deleted by this transaction (unused).
pub const FLAG_DELETED: u16 = 4;
/// Tag flag: last tag in this descriptor block.
pub const FLAG_LAST_TAG: u16 = 8;

/// The jbd2 magic as it is stored (big-endian): what an escaped block's first bytes were.
pub const JBD2_MAGIC_BYTES: [u8; 4] = super::superblock::JBD2_MAGIC.to_be_bytes();

/// Size of the descriptor/revoke block tail (csum v2/v3).
pub const TAIL_BYTES: usize = 4;

/// Legacy commit checksum type: crc32.
pub const CHKSUM_CRC32: u8 = 1;
/// Legacy commit checksum type: md5.
pub const CHKSUM_MD5: u8 = 2;
/// Legacy commit checksum type: sha1.
pub const CHKSUM_SHA1: u8 = 3;
/// Legacy crc32 checksum size.
pub const CHKSUM_CRC32_SIZE: u8 = 4;

/// The block header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Magic.
    pub magic: u32,
    /// Block type.
    pub blocktype: u32,
    /// Sequence.
    pub sequence: u32,
}

/// The header of a journal block (None when the block is shorter than a header).
pub fn header(block: &[u8]) -> Option<Header> {
    let (h, _) = RawHeader::ref_from_prefix(block).ok()?;
    Some(Header { magic: h.h_magic.get(), blocktype: h.h_blocktype.get(), sequence: h.h_sequence.get() })
}

/// One descriptor tag.
#[derive(Debug, Clone, Serialize)]
pub struct Tag {
    /// File-system block the logged block belongs at.
    pub fs_block: u64,
    /// Tag flags.
    pub flags: u16,
    /// Stored checksum (16 bits for csum v2, 32 for v3, 0 otherwise).
    pub checksum: u32,
    /// The UUID following the tag, when not SAME_UUID (hex).
    pub uuid: Option<String>,
}

/// One tag at the front of `i` (`tag_bytes` long, csum v3 / 64-bit layouts as given).
fn parse_tag(i: &[u8], v3: bool, is64: bool, tag_bytes: usize) -> IResult<&[u8], (u64, u16, u32)> {
    let (_, tag) = take(tag_bytes).parse(i)?;
    let (rest, lo) = be_u32(tag)?;
    let (rest, csum16, flags) = if v3 {
        let (rest, f) = be_u32(rest)?;
        (rest, 0u16, f as u16)
    } else {
        let (rest, c) = be_u16(rest)?;
        let (rest, f) = be_u16(rest)?;
        (rest, c, f)
    };
    let (rest, hi) = if is64 || v3 { be_u32(rest)? } else { (rest, 0) };
    let csum = if v3 { be_u32(rest)?.1 } else { u32::from(csum16) };
    let block = if is64 { u64::from(lo) | (u64::from(hi) << 32) } else { u64::from(lo) };
    Ok((&i[tag_bytes..], (block, flags, csum)))
}

/// One descriptor tag, borrowed from its block: what [`tags`] yields.
#[derive(Debug, Clone, Copy)]
pub struct TagRef<'a> {
    /// File-system block the logged block belongs at.
    pub fs_block: u64,
    /// Tag flags.
    pub flags: u16,
    /// Stored checksum (16 bits for csum v2, 32 for v3, 0 otherwise).
    pub checksum: u32,
    /// The UUID following the tag, when not SAME_UUID.
    pub uuid: Option<&'a [u8]>,
}

impl TagRef<'_> {
    /// The tag with its UUID in hex.
    pub fn to_tag(&self) -> Tag {
        Tag {
            fs_block: self.fs_block,
            flags: self.flags,
            checksum: self.checksum,
            uuid: self.uuid.map(hex::encode),
        }
    }
}

/// The tags of a descriptor block, walked exactly as the kernel's `count_tags` does: from byte 12
/// while a whole tag fits before the tail, skipping a UUID after tags without SAME_UUID, stopping
/// after LAST_TAG. Borrowed, nothing allocated.
pub fn tags<'a>(block: &'a [u8], sb: &JournalSuperblock) -> Tags<'a> {
    Tags {
        block,
        pos: 12,
        limit: block.len().saturating_sub(if sb.csum_v2v3() { TAIL_BYTES } else { 0 }),
        tag_bytes: sb.tag_bytes(),
        v3: sb.has_incompat(INCOMPAT_CSUM_V3),
        is64: sb.is_64bit(),
        done: false,
    }
}

/// The iterator [`tags`] returns.
#[derive(Debug, Clone)]
pub struct Tags<'a> {
    block: &'a [u8],
    pos: usize,
    limit: usize,
    tag_bytes: usize,
    v3: bool,
    is64: bool,
    done: bool,
}

impl<'a> Iterator for Tags<'a> {
    type Item = TagRef<'a>;

    fn next(&mut self) -> Option<TagRef<'a>> {
        if self.done || self.pos + self.tag_bytes > self.limit {
            return None;
        }
        let parsed = self
            .block
            .get(self.pos..self.limit)
            .and_then(|s| parse_tag(s, self.v3, self.is64, self.tag_bytes).ok());
        let Some((_, (fs_block, flags, checksum))) = parsed else {
            self.done = true;
            return None;
        };
        self.pos += self.tag_bytes;
        let mut uuid = None;
        if flags & FLAG_SAME_UUID == 0 {
            uuid = self.block.get(self.pos..self.pos + 16);
            self.pos += 16;
        }
        self.done = flags & FLAG_LAST_TAG != 0;
        Some(TagRef { fs_block, flags, checksum, uuid })
    }
}

/// The tags of a descriptor block ([`tags`]), owned.
pub fn descriptor_tags(block: &[u8], sb: &JournalSuperblock) -> Vec<Tag> {
    tags(block, sb).map(|t| t.to_tag()).collect()
}

/// How many tags [`descriptor_tags`] finds (the kernel's `count_tags`), without parsing them:
/// the same walk reading only each tag's flags (bytes 4..8 of a csum v3 tag, 6..8 otherwise).
pub fn descriptor_tag_count(block: &[u8], sb: &JournalSuperblock) -> usize {
    use byteorder::{BigEndian, ByteOrder};
    let tag_bytes = sb.tag_bytes();
    let limit = block.len().saturating_sub(if sb.csum_v2v3() { TAIL_BYTES } else { 0 });
    let v3 = sb.has_incompat(INCOMPAT_CSUM_V3);
    let mut n = 0usize;
    let mut pos = 12usize;
    while pos + tag_bytes <= limit {
        let flags = if v3 {
            block.get(pos + 4..pos + 8).map(|b| BigEndian::read_u32(b) as u16)
        } else {
            block.get(pos + 6..pos + 8).map(BigEndian::read_u16)
        };
        let Some(flags) = flags else { break };
        n += 1;
        pos += tag_bytes;
        if flags & FLAG_SAME_UUID == 0 {
            pos += 16;
        }
        if flags & FLAG_LAST_TAG != 0 {
            break;
        }
    }
    n
}

/// Whether the tail checksum of a descriptor or revoke block matches (true without csum v2/v3).
pub fn tail_csum_ok(block: &[u8], sb: &JournalSuperblock) -> bool {
    if !sb.csum_v2v3() || block.len() < TAIL_BYTES {
        return true;
    }
    let n = block.len() - TAIL_BYTES;
    let stored = u32::from_be_bytes([block[n], block[n + 1], block[n + 2], block[n + 3]]);
    csum::raw_parts(sb.csum_seed(), &[&block[..n], &[0u8; 4]]) == stored
}

/// The checksum a tag stores for the logged block `data` of transaction `sequence` (csum v2/v3):
/// crc32c seeded with the journal's seed and the sequence; csum v2 keeps the low 16 bits.
pub fn tag_csum(data: &[u8], sequence: u32, sb: &JournalSuperblock) -> u32 {
    let c = csum::raw(csum::raw(sb.csum_seed(), &sequence.to_be_bytes()), data);
    if sb.has_incompat(INCOMPAT_CSUM_V3) { c } else { c & 0xFFFF }
}

/// Whether a logged block's data matches the tag checksum `stored` (true without csum v2/v3).
pub fn tag_csum_ok(data: &[u8], stored: u32, sequence: u32, sb: &JournalSuperblock) -> bool {
    !sb.csum_v2v3() || stored == tag_csum(data, sequence, sb)
}

/// `commit_header` as stored.
#[derive(FromBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct RawCommit {
    /// Header.
    pub h: RawHeader,
    /// Legacy checksum type.
    pub h_chksum_type: u8,
    /// Legacy checksum size.
    pub h_chksum_size: u8,
    /// Padding.
    pub h_padding: [u8; 2],
    /// Checksums (word 0 used).
    pub h_chksum: [U32<BE>; 8],
    /// Commit time, seconds.
    pub h_commit_sec: U64<BE>,
    /// Commit time, nanoseconds.
    pub h_commit_nsec: U32<BE>,
}
const _: () = assert!(size_of::<RawCommit>() == 60);

/// A decoded commit block.
#[derive(Debug, Clone, Serialize)]
pub struct Commit {
    /// Legacy checksum type (1 crc32, 2 md5, 3 sha1, 0 none).
    pub chksum_type: u8,
    /// Legacy checksum size.
    pub chksum_size: u8,
    /// First checksum word.
    pub chksum0: u32,
    /// Commit seconds.
    pub commit_sec: u64,
    /// Commit nanoseconds.
    pub commit_nsec: u32,
}

/// Decode a commit block.
pub fn commit(block: &[u8]) -> Option<Commit> {
    let (c, _) = RawCommit::ref_from_prefix(block).ok()?;
    Some(Commit {
        chksum_type: c.h_chksum_type,
        chksum_size: c.h_chksum_size,
        chksum0: c.h_chksum[0].get(),
        commit_sec: c.h_commit_sec.get(),
        commit_nsec: c.h_commit_nsec.get(),
    })
}

/// Whether a commit block's csum v2/v3 checksum matches (true without csum v2/v3).
pub fn commit_csum_ok(block: &[u8], sb: &JournalSuperblock) -> bool {
    if !sb.csum_v2v3() || block.len() < 20 {
        return true;
    }
    let stored = u32::from_be_bytes([block[16], block[17], block[18], block[19]]);
    csum::raw_parts(sb.csum_seed(), &[&block[..16], &[0u8; 4], &block[20..]]) == stored
}

/// Whether a commit block's csum v2/v3 checksum matches its `commit_header` alone, as if every
/// byte after the header were zero (the kernel's `jbd2_commit_block_csum_verify_partial`: a
/// commit block torn after its first sector is still a commit). False without csum v2/v3 or
/// when the block is shorter than the header.
pub fn commit_csum_partial_ok(block: &[u8], sb: &JournalSuperblock) -> bool {
    const HEADER: usize = size_of::<RawCommit>();
    if !sb.csum_v2v3() || block.len() < HEADER {
        return false;
    }
    let stored = u32::from_be_bytes([block[16], block[17], block[18], block[19]]);
    let zeros = vec![0u8; block.len() - HEADER];
    csum::raw_parts(sb.csum_seed(), &[&block[..16], &[0u8; 4], &block[20..HEADER], &zeros]) == stored
}

/// `jbd2_journal_revoke_header_t` as stored.
#[derive(FromBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct RawRevokeHeader {
    /// Header.
    pub h: RawHeader,
    /// Bytes used in this block, header included.
    pub r_count: U32<BE>,
}
const _: () = assert!(size_of::<RawRevokeHeader>() == 16);

/// A decoded revoke block.
#[derive(Debug, Clone, Serialize)]
pub struct Revoke {
    /// r_count as stored.
    pub r_count: u32,
    /// Whether r_count is within the block (the kernel fails recovery with EINVAL otherwise).
    pub r_count_ok: bool,
    /// Revoked file-system blocks.
    pub blocks: Vec<u64>,
}

fn revoke_records(i: &[u8], is64: bool) -> IResult<&[u8], Vec<u64>> {
    if is64 { nom::multi::many0(be_u64).parse(i) } else { nom::multi::many0(be_u32.map(u64::from)).parse(i) }
}

/// Decode a revoke block as the kernel's `scan_revoke_records` does.
pub fn revoke(block: &[u8], sb: &JournalSuperblock) -> Option<Revoke> {
    let (h, _) = RawRevokeHeader::ref_from_prefix(block).ok()?;
    let r_count = h.r_count.get();
    let csum_size = if sb.csum_v2v3() { TAIL_BYTES } else { 0 };
    let r_count_ok = (r_count as usize) <= block.len() - csum_size;
    let mut blocks = vec![];
    if r_count_ok {
        let rec = if sb.is_64bit() { 8 } else { 4 };
        let max = r_count as usize;
        // Records from byte 16 while a whole record ends at or before r_count.
        let end = if max >= 16 { 16 + (max - 16) / rec * rec } else { 16 };
        if let Some(recs) = block.get(16..end)
            && let Ok((_, v)) = revoke_records(recs, sb.is_64bit())
        {
            blocks = v;
        }
    }
    Some(Revoke { r_count, r_count_ok, blocks })
}
