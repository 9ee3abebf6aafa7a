//! ext4, read-only. (Being built: this stub refuses to open.)

use crate::error::{Error, Finding, Result};
use crate::fs::{DirEntry, Extent, FileSystem, FsKind, Stat};
use crate::image::BlockSource;
use std::sync::Arc;

/// An opened ext4 file system.
pub struct Ext4 {
    src: Arc<dyn BlockSource>,
}

impl Ext4 {
    /// Open the file system at byte 0 of `src`.
    pub fn open(src: Arc<dyn BlockSource>) -> Result<Self> {
        let _ = &src;
        Err(Error::Unsupported("ext4 reader not built yet".into()))
    }
}

impl FileSystem for Ext4 {
    fn kind(&self) -> FsKind {
        FsKind::Ext4
    }
    fn block_size(&self) -> u32 {
        4096
    }
    fn root_ino(&self) -> u64 {
        0
    }
    fn source(&self) -> &dyn BlockSource {
        &*self.src
    }
    fn info(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    fn stat(&self, _ino: u64) -> Result<Stat> {
        Err(Error::Unsupported("stub".into()))
    }
    fn map(&self, _ino: u64) -> Result<Vec<Extent>> {
        Err(Error::Unsupported("stub".into()))
    }
    fn read_dir(&self, _ino: u64) -> Result<Vec<DirEntry>> {
        Err(Error::Unsupported("stub".into()))
    }
    fn read_link(&self, _ino: u64) -> Result<Vec<u8>> {
        Err(Error::Unsupported("stub".into()))
    }
    fn findings(&self) -> Vec<Finding> {
        vec![]
    }
}
