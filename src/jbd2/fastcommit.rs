//! The ext4 fast-commit area at the end of the journal: tag-length-value records, little-endian.
//!
//! daxray parses and lists every tag and decides, as the kernel's `ext4_fc_replay_scan` does,
//! which tags form a valid fast commit for the expected transaction (HEAD with the expected tid,
//! running crc32c closed by a TAIL with that tid and a matching crc). It does not replay them.

use super::csum;
use byteorder::{ByteOrder, LE};
use serde::Serialize;

/// Tag: add a range of blocks to an inode.
pub const TAG_ADD_RANGE: u16 = 1;
/// Tag: remove a range of blocks from an inode.
pub const TAG_DEL_RANGE: u16 = 2;
/// Tag: create a directory entry for a new inode.
pub const TAG_CREAT: u16 = 3;
/// Tag: link.
pub const TAG_LINK: u16 = 4;
/// Tag: unlink.
pub const TAG_UNLINK: u16 = 5;
/// Tag: an inode's raw contents.
pub const TAG_INODE: u16 = 6;
/// Tag: padding to the end of a block.
pub const TAG_PAD: u16 = 7;
/// Tag: end of a fast commit, with tid and crc.
pub const TAG_TAIL: u16 = 8;
/// Tag: start of the fast-commit area, with features and tid.
pub const TAG_HEAD: u16 = 9;

/// Bytes of a tag's header (tag + length).
const TL_BYTES: usize = 4;

/// The name of a tag type.
pub fn tag_name(tag: u16) -> &'static str {
    match tag {
        TAG_ADD_RANGE => "ADD_RANGE",
        TAG_DEL_RANGE => "DEL_RANGE",
        TAG_CREAT => "CREAT",
        TAG_LINK => "LINK",
        TAG_UNLINK => "UNLINK",
        TAG_INODE => "INODE",
        TAG_PAD => "PAD",
        TAG_TAIL => "TAIL",
        TAG_HEAD => "HEAD",
        _ => "UNKNOWN",
    }
}

/// One fast-commit tag.
#[derive(Debug, Clone, Serialize)]
pub struct FcTag {
    /// Journal block holding it.
    pub journal_block: u64,
    /// Byte offset in that block.
    pub offset: usize,
    /// Tag name.
    pub tag: &'static str,
    /// Value length.
    pub len: u16,
    /// Inode concerned (ADD_RANGE, DEL_RANGE, INODE, dentry tags: the child).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ino: Option<u32>,
    /// Parent directory (dentry tags).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<u32>,
    /// Name (dentry tags), lossy UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Logical block (ranges).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lblk: Option<u32>,
    /// Physical block (ADD_RANGE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pblk: Option<u64>,
    /// Length in blocks (ranges).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocks: Option<u32>,
    /// Unwritten extent (ADD_RANGE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unwritten: Option<bool>,
    /// Transaction id (HEAD, TAIL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<u32>,
    /// Features (HEAD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<u32>,
    /// TAIL: whether its crc matches the running crc.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crc_ok: Option<bool>,
    /// Whether the kernel would replay this tag (part of a valid fast commit for the expected tid).
    pub valid: bool,
}

/// The fast-commit area, parsed.
#[derive(Debug, Clone, Serialize, Default)]
pub struct FastCommitArea {
    /// First journal block of the area.
    pub first_block: u64,
    /// Blocks in the area.
    pub blocks: u64,
    /// The tid a valid fast commit must carry (the transaction after the last replayed one).
    pub expected_tid: u32,
    /// Tags found, in order.
    pub tags: Vec<FcTag>,
    /// Tags the kernel would replay.
    pub valid_tags: usize,
}

/// Parse the fast-commit blocks `blocks` (journal block number, bytes), in order.
pub fn parse(blocks: &[(u64, &[u8])], expected_tid: u32) -> FastCommitArea {
    let mut area = FastCommitArea {
        first_block: blocks.first().map(|b| b.0).unwrap_or(0),
        blocks: blocks.len() as u64,
        expected_tid,
        ..Default::default()
    };
    let mut crc = 0u32;
    let mut valid_upto = 0usize; // tags[..valid_upto] are replayable
    let mut stop = false;
    for (bi, &(jblk, data)) in blocks.iter().enumerate() {
        if stop {
            break;
        }
        // The kernel stops early when the first block does not start with a HEAD.
        if bi == 0 && data.len() >= 2 && LE::read_u16(data) != TAG_HEAD {
            break;
        }
        let mut cur = 0usize;
        let mut seen_any = false;
        while cur + TL_BYTES <= data.len() {
            let tag = LE::read_u16(&data[cur..]);
            let len = LE::read_u16(&data[cur + 2..]);
            if tag == 0 {
                // Zeroed space: no tag type 0 exists; the kernel stops here too.
                stop = true;
                break;
            }
            let val_start = cur + TL_BYTES;
            let val_end = val_start + usize::from(len);
            let val = data.get(val_start..val_end.min(data.len())).unwrap_or(&[]);
            let whole = data.get(cur..val_end.min(data.len())).unwrap_or(&[]);
            let mut t = FcTag {
                journal_block: jblk,
                offset: cur,
                tag: tag_name(tag),
                len,
                ino: None,
                parent: None,
                name: None,
                lblk: None,
                pblk: None,
                blocks: None,
                unwritten: None,
                tid: None,
                features: None,
                crc_ok: None,
                valid: false,
            };
            let u32_at = |o: usize| val.get(o..o + 4).map(LE::read_u32);
            match tag {
                TAG_ADD_RANGE => {
                    t.ino = u32_at(0);
                    if let Some(ex) = val.get(4..16) {
                        t.lblk = Some(LE::read_u32(ex));
                        let raw_len = LE::read_u16(&ex[4..]);
                        let hi = u64::from(LE::read_u16(&ex[6..]));
                        t.pblk = Some((hi << 32) | u64::from(LE::read_u32(&ex[8..])));
                        t.unwritten = Some(raw_len > 32768);
                        t.blocks = Some(u32::from(if raw_len > 32768 { raw_len - 32768 } else { raw_len }));
                    }
                    crc = csum::raw(crc, whole);
                }
                TAG_DEL_RANGE => {
                    t.ino = u32_at(0);
                    t.lblk = u32_at(4);
                    t.blocks = u32_at(8);
                    crc = csum::raw(crc, whole);
                }
                TAG_CREAT | TAG_LINK | TAG_UNLINK => {
                    t.parent = u32_at(0);
                    t.ino = u32_at(4);
                    t.name = val.get(8..).map(|n| String::from_utf8_lossy(n).into_owned());
                    crc = csum::raw(crc, whole);
                }
                TAG_INODE => {
                    t.ino = u32_at(0);
                    crc = csum::raw(crc, whole);
                }
                TAG_PAD => {
                    crc = csum::raw(crc, whole);
                }
                TAG_HEAD => {
                    t.features = u32_at(0);
                    t.tid = u32_at(4);
                    if t.tid != Some(expected_tid) {
                        stop = true;
                    }
                    crc = csum::raw(crc, whole);
                }
                TAG_TAIL => {
                    t.tid = u32_at(0);
                    let upto = (val_start + 4).min(data.len());
                    crc = csum::raw(crc, &data[cur..upto]);
                    let ok = u32_at(4) == Some(crc);
                    t.crc_ok = Some(ok);
                    if ok && t.tid == Some(expected_tid) {
                        valid_upto = area.tags.len() + 1;
                        crc = 0;
                    } else {
                        stop = true;
                    }
                }
                _ => stop = true,
            }
            seen_any = true;
            area.tags.push(t);
            if stop || area.tags.len() > 1_000_000 {
                break;
            }
            cur = val_end;
        }
        if !seen_any {
            break;
        }
    }
    for t in &mut area.tags[..valid_upto] {
        t.valid = true;
    }
    area.valid_tags = area.tags[..valid_upto].iter().filter(|t| t.tag != "PAD").count();
    area
}
