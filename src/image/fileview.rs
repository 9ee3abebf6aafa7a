//! A file's bytes as a [`BlockSource`]: the ext4 journal inode, or any mapped file.

use super::extent::{Extent, read_by_extents};
use super::source::{BlockSource, check_range};
use crate::error::Result;
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
    fn read_into(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range("file view", offset, buf.len(), self.size)?;
        let bs = u64::from(self.block_size);
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let lblk = pos / bs;
            let within = pos % bs;
            // OK to cast: a part of one block, at most `bs` (a u32).
            let first = ((bs - within) as usize).min(buf.len() - done);
            let Some(p) = self.physical_block(lblk) else {
                // Not a plain mapped block (a hole, unwritten, overlapping extents): exactly
                // what `read_at` gives for it.
                let out = &mut buf[done..done + first];
                out.copy_from_slice(&self.read_at(pos, first)?);
                done += first;
                continue;
            };
            // Extend over the following blocks that lie right after it on the base.
            let mut n = first;
            let mut next = lblk + 1;
            while done + n < buf.len() && self.physical_block(next) == p.checked_add(next - lblk) {
                // OK to cast: at most one block.
                n += (bs as usize).min(buf.len() - done - n);
                next += 1;
            }
            let at = p.checked_mul(bs).and_then(|b| b.checked_add(within)).ok_or(
                crate::error::Error::OutOfRange {
                    what: "file view",
                    offset: pos,
                    end: u64::MAX,
                    len: self.base.len(),
                },
            )?;
            self.base.read_into(at, &mut buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }
    fn describe(&self) -> String {
        format!("{} in {}", self.name, self.base.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::MemSource;
    use std::sync::Arc;

    /// read_into gives what read_at gives, block for block, over holes, unwritten extents,
    /// physically contiguous and discontiguous extents, and overlapping ones (hostile maps).
    #[test]
    fn read_into_equals_read_at() {
        let bs = 1024u32;
        let base: Arc<dyn BlockSource> =
            Arc::new(MemSource::new((0..64 * 1024u32).map(|i| (i * 7 + i / 1024) as u8).collect(), "base"));
        let ext = |logical, physical, length, unwritten| Extent { logical, physical, length, unwritten };
        let extents = vec![
            ext(0, 10, 3, false),
            ext(3, 13, 2, false),  // contiguous with the first
            ext(6, 40, 2, false),  // after a hole at 5
            ext(8, 50, 2, true),   // unwritten
            ext(9, 20, 3, false),  // overlaps the unwritten one
            ext(14, 63, 1, false), // the last base block
        ];
        let size = 15 * u64::from(bs) - 100;
        let fv = FileView::new(base, bs, size, extents, "file");
        for start in (0..size).step_by(211) {
            for len in [1usize, 100, 1024, 1500, 3000, 9000] {
                if start + len as u64 > size {
                    continue;
                }
                let want = fv.read_at(start, len).unwrap().into_owned();
                let mut buf = vec![0x5A; len];
                fv.read_into(start, &mut buf).unwrap();
                assert_eq!(buf, want, "{start}+{len}");
            }
        }
        assert!(fv.read_into(size - 1, &mut [0u8; 2]).is_err());
    }
}
