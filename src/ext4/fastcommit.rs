//! The ext4 fast-commit area at the end of the journal: tag-length-value records, little-endian.
//!
//! daxray parses and lists every tag and decides, as the kernel's `ext4_fc_replay_scan` does,
//! which tags form a valid fast commit for the expected transaction (HEAD with the expected tid,
//! value lengths the kernel accepts, running crc32c closed by a TAIL with that tid and a matching
//! crc). The replay itself, on the file-system model, is [`crate::ext4::fcreplay`].

use crate::jbd2::csum;
use crate::jbd2::fc;
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
    /// The tag type number.
    #[serde(skip)]
    pub kind: u16,
    /// The value bytes (what follows the 4-byte tag header), as stored.
    #[serde(skip)]
    pub value: Vec<u8>,
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
    /// Tags the kernel would replay (HEAD, PAD and TAIL not counted).
    pub valid_tags: usize,
    /// How the kernel's scan pass ends: "no fast commit" (the area does not start with a HEAD),
    /// "stop" (a valid fast commit was found, then the scan stopped), or the kernel error that
    /// makes the scan, and so the jbd2 recovery and the mount, fail.
    pub scan_end: String,
    /// The scan ends with an error: the kernel's recovery, and the mount, fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan_error: Option<String>,
}

/// `EXT4_FC_SUPPORTED_FEATURES`: no HEAD feature bits are known.
const SUPPORTED_FEATURES: u32 = 0;
/// `EXT4_NAME_LEN`.
const NAME_LEN: usize = 255;
/// `EXT4_GOOD_OLD_INODE_SIZE`.
const GOOD_OLD_INODE_SIZE: usize = 128;

/// The kernel's `ext4_fc_value_len_isvalid`: whether a value of `len` bytes is acceptable for `tag`.
fn value_len_ok(tag: u16, len: usize, inode_size: usize) -> bool {
    match tag {
        TAG_ADD_RANGE => len == 16,
        TAG_DEL_RANGE => len == 12,
        TAG_CREAT | TAG_LINK | TAG_UNLINK => len.checked_sub(8).is_some_and(|n| (1..=NAME_LEN).contains(&n)),
        TAG_INODE => len.checked_sub(4).is_some_and(|n| n >= GOOD_OLD_INODE_SIZE && n <= inode_size),
        TAG_PAD => true,
        TAG_TAIL => len >= 8,
        TAG_HEAD => len == 8,
        _ => false,
    }
}

/// How one block's scan ended.
enum BlockEnd {
    /// Go on with the next block.
    Continue,
    /// Stop scanning: what was valid so far is replayed.
    Stop,
    /// The kernel's scan fails with this error.
    Error(&'static str),
}

/// Parse the fast-commit blocks `blocks` (journal block number, bytes), in order, as the kernel's
/// scan pass does for transaction `expected_tid`; `inode_size` is the file system's inode size
/// (an INODE tag's raw inode may not be longer).
pub fn parse(blocks: &[(u64, &[u8])], expected_tid: u32, inode_size: u16) -> FastCommitArea {
    let mut area = FastCommitArea {
        first_block: blocks.first().map(|b| b.0).unwrap_or(0),
        blocks: blocks.len() as u64,
        expected_tid,
        ..Default::default()
    };
    let inode_size = usize::from(inode_size);
    let mut crc = 0u32;
    // tags[..valid_upto] are replayable (the kernel's fc_replay_num_tags).
    let mut valid_upto = 0usize;
    // The kernel's fc_replay_expected_off: 0 until a block starting with HEAD was seen.
    let mut expected_off = 0usize;
    let mut end = BlockEnd::Continue;
    for (off, &(jblk, data)) in blocks.iter().enumerate() {
        let first_tag = data.get(..2).map(LE::read_u16);
        if expected_off == 0 {
            // The kernel resets its state and gives up on this block unless it starts with HEAD.
            crc = 0;
            if first_tag != Some(TAG_HEAD) {
                continue;
            }
        }
        if off != expected_off {
            end = BlockEnd::Error("EFSCORRUPTED (a HEAD tag in a later fast-commit block than the first)");
            break;
        }
        expected_off += 1;
        end = scan_block(jblk, data, expected_tid, inode_size, &mut crc, &mut valid_upto, &mut area.tags);
        if !matches!(end, BlockEnd::Continue) || area.tags.len() > 1_000_000 {
            break;
        }
    }
    area.scan_end = match end {
        BlockEnd::Continue if expected_off == 0 => {
            "no fast commit (the area does not start with a HEAD tag)".into()
        }
        BlockEnd::Continue => "end of the fast-commit area".into(),
        BlockEnd::Stop => "stop".into(),
        BlockEnd::Error(e) => {
            area.scan_error = Some(e.to_string());
            format!("error {e}")
        }
    };
    if area.scan_error.is_some() {
        valid_upto = 0;
    }
    for t in &mut area.tags[..valid_upto] {
        t.valid = true;
    }
    area.valid_tags =
        area.tags[..valid_upto].iter().filter(|t| !matches!(t.kind, TAG_PAD | TAG_HEAD | TAG_TAIL)).count();
    area
}

/// Scan the tags of one fast-commit block (the body of the kernel's `ext4_fc_replay_scan`).
fn scan_block(
    jblk: u64,
    data: &[u8],
    expected_tid: u32,
    inode_size: usize,
    crc: &mut u32,
    valid_upto: &mut usize,
    tags: &mut Vec<FcTag>,
) -> BlockEnd {
    let mut cur = 0usize;
    let stop_or = |valid: usize, e: &'static str| if valid > 0 { BlockEnd::Stop } else { BlockEnd::Error(e) };
    while cur + TL_BYTES <= data.len() {
        let tag = LE::read_u16(&data[cur..]);
        let len = LE::read_u16(&data[cur + 2..]);
        let val_start = cur + TL_BYTES;
        let val_end = val_start + usize::from(len);
        if val_end > data.len() || !value_len_ok(tag, usize::from(len), inode_size) {
            return stop_or(*valid_upto, "ECANCELED (a tag with a bad type or value length)");
        }
        let val = &data[val_start..val_end];
        let whole = &data[cur..val_end];
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
            kind: tag,
            value: val.to_vec(),
        };
        let u32_at = |o: usize| val.get(o..o + 4).map(LE::read_u32);
        let mut end = BlockEnd::Continue;
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
                *crc = csum::raw(*crc, whole);
            }
            TAG_DEL_RANGE => {
                t.ino = u32_at(0);
                t.lblk = u32_at(4);
                t.blocks = u32_at(8);
                *crc = csum::raw(*crc, whole);
            }
            TAG_CREAT | TAG_LINK | TAG_UNLINK => {
                t.parent = u32_at(0);
                t.ino = u32_at(4);
                t.name = val.get(8..).map(|n| String::from_utf8_lossy(n).into_owned());
                *crc = csum::raw(*crc, whole);
            }
            TAG_INODE => {
                t.ino = u32_at(0);
                *crc = csum::raw(*crc, whole);
            }
            TAG_PAD => *crc = csum::raw(*crc, whole),
            TAG_HEAD => {
                t.features = u32_at(0);
                t.tid = u32_at(4);
                if t.features.unwrap_or(0) & !SUPPORTED_FEATURES != 0 {
                    end = BlockEnd::Error("EOPNOTSUPP (HEAD names unknown fast-commit features)");
                } else if t.tid != Some(expected_tid) {
                    end = BlockEnd::Stop;
                } else {
                    *crc = csum::raw(*crc, whole);
                }
            }
            TAG_TAIL => {
                t.tid = u32_at(0);
                *crc = csum::raw(*crc, &data[cur..val_start + 4]);
                let ok = u32_at(4) == Some(*crc);
                t.crc_ok = Some(ok);
                if ok && t.tid == Some(expected_tid) {
                    *valid_upto = tags.len() + 1;
                } else {
                    end =
                        stop_or(*valid_upto, "EFSBADCRC (a TAIL with a bad crc or tid before any valid one)");
                }
                *crc = 0;
            }
            // OK: value_len_ok rejected every other tag type above.
            _ => end = stop_or(*valid_upto, "ECANCELED (unknown tag)"),
        }
        // A HEAD with another tid or unknown features is not counted by the kernel either.
        tags.push(t);
        if !matches!(end, BlockEnd::Continue) {
            return end;
        }
        cur = val_end;
    }
    BlockEnd::Continue
}

/// ext4's fast-commit format for jbd2's recovery (ext4's `j_fc_replay_callback`): the scan
/// needs the file system's inode size (an INODE tag's raw inode may not be longer).
#[derive(Debug, Clone, Copy)]
pub struct FcFormat {
    /// `s_inode_size`.
    pub inode_size: u16,
}

impl fc::FastCommitFormat for FcFormat {
    type Area = FastCommitArea;
    fn scan(&self, blocks: &[(u64, &[u8])], expected_tid: u32) -> FastCommitArea {
        parse(blocks, expected_tid, self.inode_size)
    }
}

impl fc::FastCommitArea for FastCommitArea {
    fn first_block(&self) -> u64 {
        self.first_block
    }
    fn expected_tid(&self) -> u32 {
        self.expected_tid
    }
    fn tag_count(&self) -> usize {
        self.tags.len()
    }
    fn valid_tags(&self) -> usize {
        self.valid_tags
    }
    fn scan_end(&self) -> &str {
        &self.scan_end
    }
    fn scan_error(&self) -> Option<(&str, u64)> {
        let at = self.tags.last().map_or(self.first_block, |t| t.journal_block);
        self.scan_error.as_deref().map(|e| (e, at))
    }
    fn torn_end(&self) -> Option<u64> {
        self.tags
            .iter()
            .find(|t| t.tag == "TAIL" && t.tid == Some(self.expected_tid) && t.crc_ok == Some(false))
            .map(|t| t.journal_block)
    }
}
