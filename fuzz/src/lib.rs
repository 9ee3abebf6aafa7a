//! Shared pieces of the daxray fuzz targets: a patched view over a real base image (so that the
//! fuzzer mutates real metadata instead of random bytes that never pass a magic check), and a
//! bounded exercise of the file-system model.

use daxray::FileSystem;
use daxray::error::Result;
use daxray::image::BlockSource;
use daxray::image::check_range;
use std::borrow::Cow;
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
