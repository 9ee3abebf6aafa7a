//! The composer's first stage: the image opened (the image layer finds the window), the file
//! system in the window named by its magic, and the mount-table probe's finding.

use super::OpenOptions;
use crate::error::{Error, Result};
use crate::fs::FsKind;
use crate::image::{self, Access, BlockSource, Location};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Byte offset of the ext4 superblock and of its magic inside it.
const EXT4_SB_OFFSET: u64 = 1024;
const EXT4_MAGIC_AT: u64 = EXT4_SB_OFFSET + 56;
const EXT4_MAGIC: u16 = 0xEF53;
const XFS_MAGIC: &[u8; 4] = b"XFSB";

/// Where the file system sits, how it was found and which it is.
#[derive(Debug, Clone, Serialize)]
pub struct Placement {
    /// Where the window sits in the image.
    #[serde(flatten)]
    pub location: Location,
    /// The file system found at the offset.
    pub fs: FsKind,
}

/// An opened image with its file system named.
pub struct Image {
    /// The whole file or device.
    pub file: Arc<dyn BlockSource>,
    /// The file system's bytes (a window at `placement.location.fs_offset`).
    pub fs_bytes: Arc<dyn BlockSource>,
    /// Where it sits and which file system it is.
    pub placement: Placement,
    /// Where the image is mounted read-write, when the in-use probe ran and found it: the
    /// kernel may change it while it is read.
    pub mounted_read_write: Option<String>,
    path: PathBuf,
}

impl Image {
    /// The same image and window, its bytes read as `access` says (nothing found again).
    pub fn with_access(self, access: Access) -> Result<Image> {
        let again = image::open_with(&self.path, Some(self.placement.location.fs_offset), access)?;
        Ok(Image { file: again.file, fs_bytes: again.fs_bytes, ..self })
    }
}

/// Which file system, if any, starts at byte 0 of `src`: the XFS superblock magic at byte 0
/// (`XFS_SB_MAGIC`), else the ext4 one at byte 1080 (`EXT4_SUPER_MAGIC`).
pub fn detect_fs(src: &dyn BlockSource) -> Option<FsKind> {
    if let Ok(m) = src.read_at(0, 4)
        && &m[..] == XFS_MAGIC
    {
        return Some(FsKind::Xfs);
    }
    if let Ok(m) = src.read_at(EXT4_MAGIC_AT, 2)
        && u16::from_le_bytes([m[0], m[1]]) == EXT4_MAGIC
    {
        return Some(FsKind::Ext4);
    }
    None
}

/// Open `path` read-only as `opts` says (offset, access), name the file system in its window,
/// and with [`super::InUse::Warn`] look whether it is mounted read-write.
pub fn open_image(path: &Path, opts: &OpenOptions) -> Result<Image> {
    // An --offset at or past the end of the image is a bad argument, not a damaged image.
    let past_end = |offset: u64, len: u64| {
        Error::Usage(format!("--offset {offset} is at or past the end of {} ({len} bytes)", path.display()))
    };
    let img = match image::open_with(path, opts.offset, opts.access) {
        Err(Error::OutOfRange { what: "image window", offset, len, .. }) => {
            return Err(past_end(offset, len));
        }
        r => r?,
    };
    if let Some(o) = opts.offset.filter(|o| *o >= img.location.image_bytes) {
        return Err(past_end(o, img.location.image_bytes));
    }
    let Some(fs) = detect_fs(&*img.fs_bytes) else {
        let window = &img.fs_bytes;
        let mut what = format!(
            "{}: no ext4 magic (0xEF53 at byte {}) and no XFS magic (\"XFSB\" at byte 0) at offset {}",
            path.display(),
            EXT4_MAGIC_AT,
            img.location.fs_offset
        );
        if let Ok(head) = window.read_at(0, 16.min(window.len() as usize)) {
            what.push_str(&format!("; first bytes there: {}", hex::encode(&head)));
        }
        if img.location.pmem.is_none() && opts.offset.is_none() {
            what.push_str("; no NVDIMM_PFN_INFO at byte 4096 either");
        }
        return Err(Error::Unrecognised(what));
    };
    let mounted_read_write = match opts.in_use {
        super::InUse::Warn => image::mounted_read_write(path),
        super::InUse::Ignore => None,
    };
    Ok(Image {
        file: img.file,
        fs_bytes: img.fs_bytes,
        placement: Placement { location: img.location, fs },
        mounted_read_write,
        path: path.to_path_buf(),
    })
}
