//! A copy-on-read overlay: replacement bytes for some granules of a base source.
//!
//! Journal and log recovery produce the blocks that the kernel would write at mount; they go into
//! an [`Overlay`] in memory, and the file-system model reads through it. The base is never written.

use super::source::{BlockSource, check_range};
use crate::error::{Error, Result};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A replacement granule: owned bytes, or a reference to one granule of another source (a
/// journal block in the mapped image: zero-copy, the last writer wins per granule).
enum Entry {
    /// Bytes assembled in memory (escaped journal blocks, XFS read-modify-write).
    Owned(Box<[u8]>),
    /// `granule` bytes of `src` at byte `offset`, checked to exist when put.
    Ref(Arc<dyn BlockSource>, u64),
}

impl Entry {
    /// `len` bytes of this granule at byte `within` (`within + len <= granule`).
    fn slice(&self, within: usize, len: usize) -> Result<Cow<'_, [u8]>> {
        match self {
            Entry::Owned(b) => {
                b.get(within..within.saturating_add(len)).map(Cow::Borrowed).ok_or(Error::OutOfRange {
                    what: "overlay granule",
                    offset: within as u64,
                    end: (within + len) as u64,
                    len: b.len() as u64,
                })
            }
            Entry::Ref(src, off) => src.read_at(off.saturating_add(within as u64), len),
        }
    }
}

/// A base source plus replacement granules (fs blocks for jbd2, 512-byte sectors for the XFS log).
pub struct Overlay {
    base: Arc<dyn BlockSource>,
    granule: u32,
    blocks: BTreeMap<u64, Entry>,
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
            return b.slice(0, self.granule as usize);
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
        self.check_index(index)?;
        self.blocks.insert(index, Entry::Owned(data));
        Ok(())
    }

    /// Replace granule `index` by the granule of `src` at byte `offset`, without copying: reads
    /// of the granule borrow from `src` (a journal block in the mapped image).
    pub fn put_ref(&mut self, index: u64, src: Arc<dyn BlockSource>, offset: u64) -> Result<()> {
        check_range("overlay reference", offset, self.granule as usize, src.len())?;
        self.check_index(index)?;
        self.blocks.insert(index, Entry::Ref(src, offset));
        Ok(())
    }

    fn check_index(&self, index: u64) -> Result<()> {
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
        Ok(())
    }

    /// The bytes of granule `index`, to change in place: copied from the base (or from the
    /// source a reference points to) the first time.
    pub fn granule_mut(&mut self, index: u64) -> Result<&mut [u8]> {
        let owned = match self.blocks.get(&index) {
            Some(Entry::Owned(_)) => None,
            Some(e @ Entry::Ref(..)) => Some(e.slice(0, self.granule as usize)?.into_owned()),
            None => {
                self.check_index(index)?;
                let off = index * u64::from(self.granule);
                Some(self.base.read_at(off, self.granule as usize)?.into_owned())
            }
        };
        if let Some(v) = owned {
            self.blocks.insert(index, Entry::Owned(v.into_boxed_slice()));
        }
        match self.blocks.get_mut(&index) {
            Some(Entry::Owned(b)) => Ok(b),
            // Cannot happen: the entry was made owned above.
            _ => Err(Error::Usage(format!("overlay granule {index} is not in memory"))),
        }
    }

    /// Write `data` at byte `offset`, read-modify-write of the granules it touches (a granule
    /// already in memory is changed in place).
    pub fn write_bytes(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        check_range("overlay write", offset, data.len(), self.base.len())?;
        let g = u64::from(self.granule);
        let mut pos = 0usize;
        while pos < data.len() {
            let abs = offset + pos as u64;
            let idx = abs / g;
            let within = (abs % g) as usize;
            let n = (self.granule as usize - within).min(data.len() - pos);
            if n == self.granule as usize {
                // A whole granule: no need to read what it replaces.
                match self.blocks.get_mut(&idx) {
                    Some(Entry::Owned(b)) => b.copy_from_slice(&data[pos..pos + n]),
                    _ => {
                        self.blocks.insert(idx, Entry::Owned(data[pos..pos + n].into()));
                    }
                }
                pos += n;
                continue;
            }
            self.granule_mut(idx)?[within..within + n].copy_from_slice(&data[pos..pos + n]);
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
            return b.slice(s, len);
        }
        let mut out = Vec::with_capacity(len);
        let mut pos = offset;
        let end = offset + len as u64;
        while pos < end {
            let idx = pos / g;
            let within = pos % g;
            let n = (g - within).min(end - pos);
            match self.blocks.get(&idx) {
                Some(b) => out.extend_from_slice(&b.slice(within as usize, n as usize)?),
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
