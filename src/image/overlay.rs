//! A copy-on-read overlay: replacement bytes for some granules of a base source.
//!
//! Journal and log recovery produce the blocks that the kernel would write at mount; they go into
//! an [`Overlay`] in memory, and the file-system model reads through it. The base is never written.

use super::source::{BlockSource, check_range};
use crate::error::{Error, Result};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A base source plus replacement granules (fs blocks for jbd2, 512-byte sectors for the XFS log).
pub struct Overlay {
    base: Arc<dyn BlockSource>,
    granule: u32,
    blocks: BTreeMap<u64, Box<[u8]>>,
    name: String,
}

impl Overlay {
    /// An empty overlay over `base` with replacement units of `granule` bytes.
    pub fn new(base: Arc<dyn BlockSource>, granule: u32, name: impl Into<String>) -> Result<Self> {
        if granule == 0 || !granule.is_power_of_two() {
            return Err(Error::Usage(format!("overlay granule {granule} is not a power of two")));
        }
        Ok(Self { base, granule, blocks: BTreeMap::new(), name: name.into() })
    }

    /// The replacement unit in bytes.
    pub fn granule(&self) -> u32 {
        self.granule
    }

    /// Number of replaced granules.
    pub fn replaced(&self) -> usize {
        self.blocks.len()
    }

    /// The replaced granule indexes, in order.
    pub fn replaced_indexes(&self) -> impl Iterator<Item = u64> + '_ {
        self.blocks.keys().copied()
    }

    /// The current bytes of granule `index` (overlay first, then base).
    pub fn granule_bytes(&self, index: u64) -> Result<Cow<'_, [u8]>> {
        if let Some(b) = self.blocks.get(&index) {
            return Ok(Cow::Borrowed(b));
        }
        let off = index.checked_mul(u64::from(self.granule)).ok_or(Error::OutOfRange {
            what: "overlay granule",
            offset: u64::MAX,
            end: u64::MAX,
            len: self.base.len(),
        })?;
        self.base.read_at(off, self.granule as usize)
    }

    /// Replace granule `index` with `data` (exactly one granule long).
    pub fn put(&mut self, index: u64, data: Box<[u8]>) -> Result<()> {
        if data.len() != self.granule as usize {
            return Err(Error::Usage(format!(
                "overlay put: {} bytes for a {}-byte granule",
                data.len(),
                self.granule
            )));
        }
        let off = index.checked_mul(u64::from(self.granule));
        match off {
            Some(o) if o.checked_add(u64::from(self.granule)).is_some_and(|e| e <= self.base.len()) => {}
            _ => {
                return Err(Error::OutOfRange {
                    what: "overlay granule",
                    offset: off.unwrap_or(u64::MAX),
                    end: u64::MAX,
                    len: self.base.len(),
                });
            }
        }
        self.blocks.insert(index, data);
        Ok(())
    }

    /// Write `data` at byte `offset`, read-modify-write of the granules it touches.
    pub fn write_bytes(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        check_range("overlay write", offset, data.len(), self.base.len())?;
        let g = u64::from(self.granule);
        let mut pos = 0usize;
        while pos < data.len() {
            let abs = offset + pos as u64;
            let idx = abs / g;
            let within = (abs % g) as usize;
            let n = (self.granule as usize - within).min(data.len() - pos);
            let mut buf = self.granule_bytes(idx)?.into_owned().into_boxed_slice();
            buf[within..within + n].copy_from_slice(&data[pos..pos + n]);
            self.blocks.insert(idx, buf);
            pos += n;
        }
        Ok(())
    }
}

impl BlockSource for Overlay {
    fn len(&self) -> u64 {
        self.base.len()
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        check_range("overlay", offset, len, self.len())?;
        if len == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        let g = u64::from(self.granule);
        let first = offset / g;
        let last = (offset + len as u64 - 1) / g;
        if self.blocks.range(first..=last).next().is_none() {
            return self.base.read_at(offset, len);
        }
        if first == last
            && let Some(b) = self.blocks.get(&first)
        {
            let s = (offset % g) as usize;
            return Ok(Cow::Borrowed(&b[s..s + len]));
        }
        let mut out = Vec::with_capacity(len);
        let mut pos = offset;
        let end = offset + len as u64;
        while pos < end {
            let idx = pos / g;
            let within = pos % g;
            let n = (g - within).min(end - pos);
            match self.blocks.get(&idx) {
                Some(b) => out.extend_from_slice(&b[within as usize..(within + n) as usize]),
                None => out.extend_from_slice(&self.base.read_at(pos, n as usize)?),
            }
            pos += n;
        }
        Ok(Cow::Owned(out))
    }

    fn describe(&self) -> String {
        format!("{} over {}", self.name, self.base.describe())
    }
}
