//! A file's bytes as a [`BlockSource`]: the ext4 journal inode, or any mapped file.

use super::source::{BlockSource, check_range};
use crate::error::Result;
use crate::fs::{Extent, read_by_extents};
use std::borrow::Cow;

/// The logical bytes of a file described by extents over a base source. Holes read as zeros.
pub struct FileView<S> {
    base: S,
    block_size: u32,
    size: u64,
    extents: Vec<Extent>,
    name: String,
}

impl<S: BlockSource> FileView<S> {
    /// A view of `size` bytes; `extents` sorted by logical block.
    pub fn new(
        base: S,
        block_size: u32,
        size: u64,
        mut extents: Vec<Extent>,
        name: impl Into<String>,
    ) -> Self {
        extents.sort_by_key(|e| e.logical);
        Self { base, block_size, size, extents, name: name.into() }
    }

    /// The extents behind the view.
    pub fn extents(&self) -> &[Extent] {
        &self.extents
    }

    /// Where logical block `lblk` lives on the base, if mapped and written.
    pub fn physical_block(&self, lblk: u64) -> Option<u64> {
        let i = self.extents.partition_point(|e| e.logical.saturating_add(e.length) <= lblk);
        let e = self.extents.get(i)?;
        (e.logical <= lblk && !e.unwritten).then(|| e.physical + (lblk - e.logical))
    }
}

impl<S: BlockSource> BlockSource for FileView<S> {
    fn len(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        check_range("file view", offset, len, self.size)?;
        let bs = u64::from(self.block_size);
        // Fast path: the whole range inside one block of one extent: borrow from the base.
        if len > 0
            && offset / bs == (offset + len as u64 - 1) / bs
            && let Some(p) = self.physical_block(offset / bs)
        {
            return self.base.read_at(p * bs + offset % bs, len);
        }
        Ok(Cow::Owned(read_by_extents(&self.base, self.block_size, self.size, &self.extents, offset, len)?))
    }
    fn describe(&self) -> String {
        format!("{} in {}", self.name, self.base.describe())
    }
}
