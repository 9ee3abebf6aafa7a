//! One log record: its header fields ([`Record`]), its data with the first word of each
//! sector restored from the cycle data of its (extended) headers ([`RecData`], as
//! `xlog_unpack_data` restores them), and the op regions cut from it ([`Region`]), read in
//! place in the log or held in memory.

use super::format::*;
use crate::image::BlockSource;
use std::borrow::Cow;

/// Offset, in a record's header blocks, of the saved first word of data sector `i`.
pub(super) fn cycle_word_offset(i: usize) -> usize {
    let (hdr_i, word_i) = (i / CYCLE_WORDS, i % CYCLE_WORDS);
    if hdr_i == 0 {
        std::mem::offset_of!(RecHeader, cycle_data) + 4 * word_i
    } else {
        hdr_i * BBSIZE + std::mem::offset_of!(ExtHeader, cycle_data) + 4 * word_i
    }
}

/// The saved first word of data sector `i` of the record whose header block is at byte `hdr`
/// of `src` (header blocks contiguous).
pub fn saved_word(src: &dyn BlockSource, hdr: u64, i: usize) -> Option<[u8; 4]> {
    let b = src.read_at(hdr.checked_add(cycle_word_offset(i) as u64)?, 4).ok()?;
    <[u8; 4]>::try_from(&b[..]).ok()
}

/// A record's data: the bytes as written, whose sectors start with the cycle number, and the
/// words those replaced. Read through [`RecData::get`], which restores them.
pub struct RecData<'s> {
    /// The bytes as written (`len` bytes).
    raw: Cow<'s, [u8]>,
    /// The first word of each 512-byte sector before stamping.
    words: Vec<[u8; 4]>,
    /// Byte offsets in the source of the data and of the header block, when both are in place
    /// (the record does not wrap at the end of the log).
    at: Option<(u64, u64)>,
}

impl<'s> RecData<'s> {
    /// The data `raw` as written, the `words` its sectors' stamps replaced, and where the data
    /// and the header block are in the source when both are in place.
    pub(super) fn new(raw: Cow<'s, [u8]>, words: Vec<[u8; 4]>, at: Option<(u64, u64)>) -> Self {
        RecData { raw, words, at }
    }

    /// Data that was never stamped (tests, hand-made records): each sector keeps its words.
    pub fn plain(data: Vec<u8>) -> RecData<'static> {
        let words =
            data.chunks(BBSIZE).map(|c| std::array::from_fn(|k| c.get(k).copied().unwrap_or(0))).collect();
        RecData { raw: Cow::Owned(data), words, at: None }
    }

    /// Bytes of data.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Load one byte of every cache line, all independent, so that the op headers that
    /// [`super::trans::Reassembler::feed`] then follows one after the other (each one's length
    /// gives the next one's place) are in the cache instead of each waiting on memory.
    pub fn touch(&self) {
        let x = self.raw.iter().step_by(64).fold(0u8, |a, b| a ^ b);
        std::hint::black_box(x);
    }

    /// True when there is no data.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// `n` bytes at `pos`, their stamped words restored: borrowed when no sector starts inside.
    pub fn get(&self, pos: usize, n: usize) -> Option<Cow<'_, [u8]>> {
        let s = self.raw.get(pos..pos.checked_add(n)?)?;
        Some(restore(s, pos, |i| self.words.get(i).copied()))
    }

    /// The region of `n` bytes at `pos`: a reference into the log when the record is in place,
    /// else a copy with its words restored.
    pub fn region(&self, pos: usize, n: usize) -> Option<Region> {
        self.raw.get(pos..pos.checked_add(n)?)?;
        Some(match (self.at, &self.raw) {
            (Some((data, hdr)), Cow::Borrowed(_)) => {
                let mut first = [0u8; INLINE];
                let h = self.get(pos, n.min(INLINE))?;
                first[..h.len()].copy_from_slice(&h);
                // The header blocks end where the data starts.
                let hblks = ((data - hdr) / BBSIZE as u64) as u8;
                Region::Log { at: data + pos as u64, len: n as u32, off: pos as u32, hblks, first }
            }
            _ => Region::Owned(self.get(pos, n)?.into_owned()),
        })
    }
}

/// `s` (the record data at byte `pos`) with the first word of each sector starting inside it
/// replaced by `word(sector)`; borrowed when none does.
fn restore<'b>(s: &'b [u8], pos: usize, word: impl Fn(usize) -> Option<[u8; 4]>) -> Cow<'b, [u8]> {
    let first = pos.div_ceil(BBSIZE);
    let end = pos + s.len();
    if first * BBSIZE >= end {
        return Cow::Borrowed(s);
    }
    let mut v = s.to_vec();
    let mut k = first;
    while k * BBSIZE < end {
        let w = word(k).unwrap_or([0; 4]);
        let at = k * BBSIZE - pos;
        let n = 4.min(v.len() - at);
        v[at..at + n].copy_from_slice(&w[..n]);
        k += 1;
    }
    Cow::Owned(v)
}

/// An op region's bytes: in place in the log (its stamped words restored when read), or
/// assembled in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Region {
    /// `len` bytes at byte `at` of the log's source, `off` bytes into the data of the record
    /// whose header block is at byte `hdr`.
    Log {
        /// Source byte of the first byte.
        at: u64,
        /// Bytes.
        len: u32,
        /// Offset in the record's data.
        off: u32,
        /// Header blocks of the record (they end where its data starts).
        hblks: u8,
        /// The first [`INLINE`] bytes (fewer when shorter), restored: item types, flags and
        /// magic numbers without a trip to the log.
        first: [u8; INLINE],
    },
    /// Bytes in memory (split across records, or read around the end of the log).
    Owned(Vec<u8>),
}

impl Default for Region {
    fn default() -> Self {
        Region::Owned(Vec::new())
    }
}

/// Bytes of a region kept inline.
pub const INLINE: usize = 8;

impl Region {
    /// Source byte of the header block of the record holding a region in the log.
    fn hdr(at: u64, off: u32, hblks: u8) -> u64 {
        at.wrapping_sub(u64::from(off)).wrapping_sub(u64::from(hblks) * BBSIZE as u64)
    }

    /// The first [`INLINE`] bytes (all of them when shorter), from memory.
    pub fn first(&self) -> &[u8] {
        match self {
            Region::Log { len, first, .. } => &first[..(*len as usize).min(INLINE)],
            Region::Owned(v) => &v[..v.len().min(INLINE)],
        }
    }

    /// Bytes in the region.
    pub fn len(&self) -> usize {
        match self {
            Region::Log { len, .. } => *len as usize,
            Region::Owned(v) => v.len(),
        }
    }

    /// True when the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The region's bytes, read from `src` (the log's source) when in place. Empty when the
    /// source cannot give them (it was checked to when the region was made).
    pub fn bytes<'b>(&'b self, src: &'b dyn BlockSource) -> Cow<'b, [u8]> {
        self.head(src, usize::MAX)
    }

    /// Load the cache lines of the first `n` bytes of the region (a hint: the loads of many
    /// regions then overlap instead of each waiting on memory when the region is read).
    pub fn prefetch(&self, src: &dyn BlockSource, n: usize) {
        if let Region::Log { at, len, .. } = self
            && let Ok(b) = src.read_at(*at, n.min(*len as usize))
        {
            std::hint::black_box(b.iter().step_by(64).fold(b.last().copied().unwrap_or(0), |a, x| a ^ x));
        }
    }

    /// The first `n` bytes of the region (all of it when shorter).
    pub fn head<'b>(&'b self, src: &'b dyn BlockSource, n: usize) -> Cow<'b, [u8]> {
        match self {
            Region::Owned(v) => Cow::Borrowed(&v[..n.min(v.len())]),
            Region::Log { at, len, off, hblks, first } => {
                let n = n.min(*len as usize);
                if n <= first.len() {
                    return Cow::Borrowed(&first[..n]);
                }
                let hdr = &Self::hdr(*at, *off, *hblks);
                match src.read_at(*at, n) {
                    Ok(Cow::Borrowed(s)) => restore(s, *off as usize, |i| saved_word(src, *hdr, i)),
                    Ok(Cow::Owned(v)) => {
                        Cow::Owned(restore(&v, *off as usize, |i| saved_word(src, *hdr, i)).into_owned())
                    }
                    Err(_) => Cow::Borrowed(&[]),
                }
            }
        }
    }
}

impl Region {
    /// Copy the region's bytes `from..from + dst.len()` into `dst`, stamped words restored.
    /// False (and `dst` untouched) when the region is shorter or the source cannot give them.
    pub fn copy_to(&self, src: &dyn BlockSource, from: usize, dst: &mut [u8]) -> bool {
        let Some(end) = from.checked_add(dst.len()).filter(|e| *e <= self.len()) else { return false };
        match self {
            Region::Owned(v) => dst.copy_from_slice(&v[from..end]),
            Region::Log { at, off, hblks, .. } => {
                let hdr = &Self::hdr(*at, *off, *hblks);
                let Ok(raw) = src.read_at(at + from as u64, dst.len()) else { return false };
                dst.copy_from_slice(&raw);
                let pos = *off as usize + from;
                let mut k = pos.div_ceil(BBSIZE);
                while k * BBSIZE < pos + dst.len() {
                    let w = saved_word(src, *hdr, k).unwrap_or([0; 4]);
                    let at = k * BBSIZE - pos;
                    let n = 4.min(dst.len() - at);
                    dst[at..at + n].copy_from_slice(&w[..n]);
                    k += 1;
                }
            }
        }
        true
    }
}

/// One log record (its header, and whether its crc checks).
#[derive(Debug, Clone)]
pub struct Record {
    /// Log block of the header.
    pub blk: u64,
    /// Cycle.
    pub cycle: u32,
    /// h_version.
    pub version: u32,
    /// Data bytes.
    pub len: u32,
    /// LSN of the record.
    pub lsn: u64,
    /// Tail LSN when written.
    pub tail_lsn: u64,
    /// Previous record's block.
    pub prev_block: u32,
    /// Op headers in the record.
    pub num_logops: u32,
    /// iclog size.
    pub size: u32,
    /// h_fmt.
    pub fmt: u32,
    /// Header blocks (1 + extended headers).
    pub hblks: u64,
    /// crc stored.
    pub crc_stored: u32,
    /// crc computed.
    pub crc_calc: u32,
    /// crc matches (or is zero, as mkfs writes).
    pub crc_ok: bool,
    /// fs uuid in the header.
    pub uuid: [u8; 16],
}
