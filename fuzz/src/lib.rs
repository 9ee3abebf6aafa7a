//! Shared pieces of the daxray fuzz targets.
//!
//! Images worth fuzzing are megabytes (ext4) to hundreds of megabytes (XFS needs 300 MiB), mostly
//! zeros. A fuzz input is therefore a *sparse image*: a small header and the non-zero 512-byte
//! sectors only, so that libFuzzer mutates metadata, not zeros, and each run is cheap.
//!
//! ```text
//! "DXSP" | u64 LE image length | { u32 LE sector number | 512 bytes }*
//! ```
//!
//! An input that does not start with `DXSP` is taken as a flat image (its bytes from offset 0),
//! so raw small images work as seeds too. `tools/mkseed.py` writes the sparse form of an image.

use daxray::image::BlockSource;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

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

/// Walk the model and touch every file the way `daxray manifest --hash` does, bounded: at most
/// `max_files` files and 1 MiB read per file, so that one input cannot take seconds.
pub fn exercise(fs: &dyn daxray::FileSystem, max_files: usize) {
    let _ = fs.info();
    let mut errors = Vec::new();
    let Ok(nodes) = daxray::fs::walk(fs, "/", &mut errors) else { return };
    for n in nodes.iter().take(max_files) {
        let Ok(st) = fs.stat(n.ino) else { continue };
        let _ = fs.map(n.ino);
        match n.file_type {
            daxray::fs::FileType::Symlink => {
                let _ = fs.read_link(n.ino);
            }
            daxray::fs::FileType::File => {
                let _ = fs.read(n.ino, 0, (st.size.min(1 << 20)) as usize);
            }
            _ => {}
        }
    }
    let _ = fs.findings();
}
