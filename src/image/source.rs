//! The [`BlockSource`] abstraction: byte-addressed, read-only access to a device.
//!
//! Everything above the image layer reads through this trait, so the same file-system code runs
//! over a raw mmap, a window into an fsdax namespace, a recovered overlay, or a paused VM's media.

use crate::error::{Error, Result};
use std::borrow::Cow;
use std::sync::Arc;

/// Read-only, byte-addressed storage. Implementations must never write to the underlying media.
pub trait BlockSource: Send + Sync {
    /// Size in bytes.
    fn len(&self) -> u64;

    /// True when the source has no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `len` bytes at `offset`. Borrowed from the mapping where possible (zero-copy); owned when
    /// an overlay has to assemble the range. Fails with [`Error::OutOfRange`] past the end.
    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>>;

    /// Copy the `buf.len()` bytes at `offset` into `buf` (the same bytes [`BlockSource::read_at`]
    /// gives). Sources over a file read them with `pread`: for a one-pass scan of a large range
    /// (verifying every logged block's checksum) that is about twice as fast as faulting the
    /// pages into the mapping, and leaves nothing mapped. The default copies from `read_at`.
    fn read_into(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        buf.copy_from_slice(&self.read_at(offset, buf.len())?);
        Ok(())
    }

    /// A short description for reports ("image.img at 6291456", "jbd2 overlay over ...").
    fn describe(&self) -> String;
}

/// Refuse `path` unless it is a regular file or a block device (following symbolic links),
/// before it is opened: a directory cannot be mapped (`mmap` gives ENOMEM), and opening a FIFO
/// waits for a writer. The error names the path and what it is.
pub fn refuse_non_image(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let t = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.file_type();
    let what = if t.is_file() || t.is_block_device() {
        return Ok(());
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else {
        "not a regular file"
    };
    Err(Error::Usage(format!("{}: is {what}, not an image file or block device", path.display())))
}

/// Check that `offset..offset+len` lies within a source of `total` bytes.
pub fn check_range(what: &'static str, offset: u64, len: usize, total: u64) -> Result<()> {
    // The error is built only on failure: this check runs on every read.
    let Some(end) = offset.checked_add(len as u64) else {
        return Err(Error::OutOfRange { what, offset, end: u64::MAX, len: total });
    };
    if end > total {
        return Err(Error::OutOfRange { what, offset, end, len: total });
    }
    Ok(())
}

impl<T: BlockSource + ?Sized> BlockSource for Arc<T> {
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        (**self).read_at(offset, len)
    }
    fn read_into(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        (**self).read_into(offset, buf)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

impl<T: BlockSource + ?Sized> BlockSource for &T {
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        (**self).read_at(offset, len)
    }
    fn read_into(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        (**self).read_into(offset, buf)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// An in-memory source (a copy of bytes), for small devices such as a journal read from a pipe.
#[derive(Debug, Clone)]
pub struct MemSource {
    bytes: Vec<u8>,
    name: String,
}

impl MemSource {
    /// Wrap bytes.
    pub fn new(bytes: Vec<u8>, name: impl Into<String>) -> Self {
        Self { bytes, name: name.into() }
    }
}

impl BlockSource for MemSource {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        check_range("memory source", offset, len, self.len())?;
        // OK to cast: check_range proved offset + len <= bytes.len(), a usize.
        let start = offset as usize;
        Ok(Cow::Borrowed(&self.bytes[start..start + len]))
    }
    fn describe(&self) -> String {
        self.name.clone()
    }
}

/// A byte window `[start, start+len)` into another source: the file system inside an fsdax
/// namespace, or at a user-given `--offset`.
pub struct Window<S> {
    inner: S,
    start: u64,
    len: u64,
}

impl<S: BlockSource> Window<S> {
    /// A window from `start` to the end of `inner`.
    pub fn new(inner: S, start: u64) -> Result<Self> {
        let total = inner.len();
        if start > total {
            return Err(Error::OutOfRange { what: "image window", offset: start, end: start, len: total });
        }
        Ok(Self { len: total - start, inner, start })
    }

    /// Where the window starts in the underlying source.
    pub fn start(&self) -> u64 {
        self.start
    }
}

impl<S: BlockSource> BlockSource for Window<S> {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        check_range("image window", offset, len, self.len)?;
        // OK: offset + len <= self.len, and start + self.len == inner.len().
        self.inner.read_at(self.start + offset, len)
    }
    fn read_into(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range("image window", offset, buf.len(), self.len)?;
        self.inner.read_into(self.start + offset, buf)
    }
    fn describe(&self) -> String {
        format!("{} at byte {}", self.inner.describe(), self.start)
    }
}
