//! Shared pieces of the daxray fuzz targets. Two families of inputs:
//!
//! - **Patched** (`image_bytes` aside, the `*_metadata`/`*_recovery` targets): small byte patches
//!   over a committed kernel-made fixture, so that the fuzzer mutates real metadata instead of
//!   random bytes that never pass a magic check. See [`Patched`].
//! - **Sparse** (`sparse_*` targets): the input *is* an image, in sparse form: a header and its
//!   non-zero 512-byte sectors only, so that seeds can be whole real images (XFS needs 300 MiB,
//!   mostly zeros) and libFuzzer can splice structures between them. See [`SparseSource`].
//!
//! ```text
//! "DXSP" | u64 LE image length | { u32 LE sector number | 512 bytes }*
//! ```
//!
//! A sparse-family input that does not start with `DXSP` is a flat image (its bytes from offset
//! 0). `tools/mkseed.py` writes the sparse form of an image.

use daxray::FileSystem;
use daxray::error::Result;
use daxray::image::BlockSource;
use daxray::image::check_range;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

/// Most patches taken from one input.
const MAX_PATCHES: usize = 32;
/// Longest single patch.
const MAX_PATCH_LEN: usize = 256;

/// A base image with small byte patches on top. Reads that touch no patch borrow the base.
pub struct Patched {
    base: Arc<Vec<u8>>,
    patches: Vec<(u64, Vec<u8>)>,
    len: u64,
}

impl Patched {
    /// Decode patches from fuzz input: repeated `[offset: u32 LE][len: u8][len bytes]`, offsets
    /// taken modulo the base length (or, with `region`, modulo the region's length and added to
    /// its start). A short trailing piece truncates the image to `base.len() - n*4096` when its
    /// first byte is 0xff (truncation is a corruption too).
    pub fn new(base: Arc<Vec<u8>>, data: &[u8], region: Option<(u64, u64)>) -> Self {
        let mut patches = Vec::new();
        let mut len = base.len() as u64;
        let mut rest = data;
        while patches.len() < MAX_PATCHES && rest.len() >= 5 {
            let off = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as u64;
            let n = (rest[4] as usize).min(MAX_PATCH_LEN).min(rest.len() - 5);
            let bytes = rest[5..5 + n].to_vec();
            rest = &rest[5 + n..];
            let (start, span) = region.unwrap_or((0, len));
            if span == 0 {
                break;
            }
            patches.push((start + off % span, bytes));
        }
        if rest.len() >= 2 && rest[0] == 0xff {
            len = len.saturating_sub(rest[1] as u64 * 4096);
        }
        Patched { base, patches, len }
    }
}

impl BlockSource for Patched {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        check_range("patched fuzz image", offset, len, self.len)?;
        let start = offset as usize;
        let end = start + len;
        let overlaps = |(o, b): &&(u64, Vec<u8>)| (*o as usize) < end && (*o as usize + b.len()) > start;
        if !self.patches.iter().any(|p| overlaps(&p)) {
            return Ok(Cow::Borrowed(&self.base[start..end]));
        }
        let mut v = self.base[start..end].to_vec();
        for (o, b) in self.patches.iter().filter(|p| overlaps(p)) {
            for (i, byte) in b.iter().enumerate() {
                let at = *o as usize + i;
                if at >= start && at < end {
                    v[at - start] = *byte;
                }
            }
        }
        Ok(Cow::Owned(v))
    }
    fn describe(&self) -> String {
        "patched fuzz image".into()
    }
}

/// gunzip a committed fixture.
pub fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(gz).read_to_end(&mut out).expect("committed fixture is valid gzip");
    out
}

/// Walk the tree and stat, map and read (a bounded amount of) every file found: any panic,
/// hang or unbounded allocation in the model shows up here.
pub fn exercise(fs: &dyn FileSystem) {
    let _ = fs.findings();
    let mut errors = Vec::new();
    let Ok(nodes) = daxray::fs::walk(fs, "/", &mut errors) else { return };
    for n in nodes.iter().take(256) {
        if let Ok(st) = fs.stat(n.ino) {
            let _ = fs.map(n.ino);
            let _ = fs.read(n.ino, 0, (st.size.min(1 << 16)) as usize);
            let _ = fs.read_link(n.ino);
        }
    }
}

/// Sector size of the sparse encoding.
pub const SECTOR: usize = 512;
/// Largest image length a fuzz input may declare (1 GiB): bigger lengths are clamped.
pub const MAX_LEN: u64 = 1 << 30;

/// A read-only image made of explicit sectors over zeros.
pub struct SparseSource {
    len: u64,
    sectors: BTreeMap<u64, [u8; SECTOR]>,
}

impl SparseSource {
    /// Decode a fuzz input (see the crate docs).
    pub fn decode(data: &[u8]) -> Self {
        let mut sectors = BTreeMap::new();
        let Some(rest) = data.strip_prefix(b"DXSP") else {
            for (i, c) in data.chunks(SECTOR).enumerate() {
                let mut s = [0u8; SECTOR];
                s[..c.len()].copy_from_slice(c);
                sectors.insert(i as u64, s);
            }
            return Self { len: data.len() as u64, sectors };
        };
        let (len, mut rest) = match rest.split_first_chunk::<8>() {
            Some((l, r)) => (u64::from_le_bytes(*l).min(MAX_LEN), r),
            None => (0, &[][..]),
        };
        while let Some((n, r)) = rest.split_first_chunk::<4>() {
            let n = u64::from(u32::from_le_bytes(*n));
            let take = r.len().min(SECTOR);
            let mut s = [0u8; SECTOR];
            s[..take].copy_from_slice(&r[..take]);
            if (n + 1) * SECTOR as u64 <= len {
                sectors.insert(n, s);
            }
            rest = &r[take..];
        }
        Self { len, sectors }
    }

    /// As a shared block source.
    pub fn arc(self) -> Arc<dyn BlockSource> {
        Arc::new(self)
    }
}

impl BlockSource for SparseSource {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, len: usize) -> daxray::Result<Cow<'_, [u8]>> {
        daxray::image::check_range("fuzz sparse image", offset, len, self.len)?;
        let mut out = vec![0u8; len];
        let end = offset + len as u64;
        let first = offset / SECTOR as u64;
        let last = end.div_ceil(SECTOR as u64);
        for (&n, s) in self.sectors.range(first..last) {
            let s_start = n * SECTOR as u64;
            let from = s_start.max(offset);
            let to = (s_start + SECTOR as u64).min(end);
            out[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&s[(from - s_start) as usize..(to - s_start) as usize]);
        }
        Ok(Cow::Owned(out))
    }
    fn describe(&self) -> String {
        "fuzz input".into()
    }
}
