//! Read-only mmap of an image file or block device (the `unsafe` map call lives in
//! [`crate::sys`]). The bytes are untrusted input that may change under us (a running VM's media
//! does): a concurrent change can produce a wrong answer, never undefined behaviour.

use super::source::{BlockSource, check_range};
use crate::error::{Error, Result};
use std::borrow::Cow;
use std::fs::File;
use std::path::{Path, PathBuf};

/// A read-only memory map of a whole file or block device.
pub struct MmapSource {
    map: Option<memmap2::Mmap>,
    /// The file behind the map, kept open for [`BlockSource::read_into`]'s `pread`.
    file: Option<File>,
    path: PathBuf,
}

impl MmapSource {
    /// Open `path` read-only and map it. A zero-length file gives an empty source.
    pub fn open(path: &Path) -> Result<Self> {
        super::source::refuse_non_image(path)?;
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file_len(&file, path)?;
        if len == 0 {
            return Ok(Self { map: None, file: None, path: path.to_path_buf() });
        }
        let len = usize::try_from(len)
            .map_err(|_| Error::Unsupported(format!("{}: too large to map", path.display())))?;
        let map = crate::sys::map_readonly(&file, len).map_err(|e| Error::io(path, e))?;
        Ok(Self { map: Some(map), file: Some(file), path: path.to_path_buf() })
    }

    /// The mapped bytes (empty for an empty file).
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// The path that was mapped.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The size of an open file or block device (a device's metadata says 0: seek to its end).
pub(super) fn file_len(file: &File, path: &Path) -> Result<u64> {
    use std::io::{Seek, SeekFrom};
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if meta.file_type().is_file() {
        return Ok(meta.len());
    }
    let mut f = file;
    f.seek(SeekFrom::End(0)).map_err(|e| Error::io(path, e))
}

impl BlockSource for MmapSource {
    fn len(&self) -> u64 {
        self.bytes().len() as u64
    }
    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        check_range("image", offset, len, self.len())?;
        // OK to cast: check_range proved offset + len <= bytes().len(), a usize.
        let start = offset as usize;
        Ok(Cow::Borrowed(&self.bytes()[start..start + len]))
    }
    fn read_into(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        use std::os::unix::fs::FileExt;
        check_range("image", offset, buf.len(), self.len())?;
        match &self.file {
            Some(f) => f.read_exact_at(buf, offset).map_err(|e| Error::io(&self.path, e)),
            None => Ok(()),
        }
    }
    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}
