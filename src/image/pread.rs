//! An image read with `pread(2)` instead of through a mapping: each read copies just the bytes
//! asked for, with no page fault, no fault-around mapping neighbouring pages and no unmapping at
//! exit. Faster than the mapping for walks that read a few scattered blocks of a large image
//! once (a journal listing reads only the descriptor, revoke and commit blocks); slower for
//! anything that reads most of the image or the same bytes many times.

use super::source::{BlockSource, check_range};
use crate::error::{Error, Result};
use std::borrow::Cow;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A file or block device read with positioned reads.
pub struct PreadSource {
    file: File,
    len: u64,
    path: PathBuf,
}

impl PreadSource {
    /// Open `path` read-only.
    pub fn open(path: &Path) -> Result<Self> {
        super::source::refuse_non_image(path)?;
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = super::mmap::file_len(&file, path)?;
        Ok(Self { file, len, path: path.to_path_buf() })
    }
}

impl BlockSource for PreadSource {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        check_range("image", offset, len, self.len)?;
        // Bounded: check_range proved the range lies inside the file.
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, offset).map_err(|e| Error::io(&self.path, e))?;
        Ok(Cow::Owned(buf))
    }
    fn read_into(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range("image", offset, buf.len(), self.len)?;
        self.file.read_exact_at(buf, offset).map_err(|e| Error::io(&self.path, e))
    }
    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}
