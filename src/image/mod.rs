//! The image layer: files and devices mapped read-only, the fsdax namespace window, overlays.

mod fileview;
mod mmap;
mod overlay;
pub mod pmem;
mod pread;
mod source;

pub use fileview::FileView;
pub use mmap::MmapSource;
pub use overlay::Overlay;
pub use pread::PreadSource;
pub use source::{BlockSource, MemSource, Window, check_range};

use crate::error::{Error, Result};
use crate::fs::FsKind;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

/// Byte offset of the ext4 superblock and of its magic inside it.
const EXT4_SB_OFFSET: u64 = 1024;
const EXT4_MAGIC_AT: u64 = EXT4_SB_OFFSET + 56;
const EXT4_MAGIC: u16 = 0xEF53;
const XFS_MAGIC: &[u8; 4] = b"XFSB";

/// Where the file system sits and how it was found.
#[derive(Debug, Clone, Serialize)]
pub struct Placement {
    /// The path opened.
    pub path: String,
    /// Size of the whole file or device.
    pub image_bytes: u64,
    /// Byte offset of the file system inside it.
    pub fs_offset: u64,
    /// How the offset was found: "bare", "fsdax namespace" or "--offset".
    pub found_by: &'static str,
    /// The namespace header, when there is one.
    pub pmem: Option<pmem::PmemInfo>,
    /// The file system found at the offset.
    pub fs: FsKind,
}

/// An opened image: the mapped file and the window that holds the file system.
pub struct Image {
    /// The whole file or device, mapped.
    pub file: Arc<MmapSource>,
    /// The file system's bytes (a window at `placement.fs_offset`).
    pub fs_bytes: Arc<dyn BlockSource>,
    /// Where it sits.
    pub placement: Placement,
}

/// Which file system, if any, starts at byte 0 of `src`.
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

/// Open `path` read-only, find the file system (at `offset` if given, else inside an fsdax
/// namespace if there is one, else at byte 0) and say what is there.
pub fn open(path: &Path, offset: Option<u64>) -> Result<Image> {
    let file = Arc::new(MmapSource::open(path)?);
    let image_bytes = file.len();
    let (fs_offset, found_by, pmem) = match offset {
        Some(o) => (o, "--offset", None),
        None => match pmem::detect(file.bytes())? {
            Some(info) if info.kind == "devdax" => {
                return Err(Error::Unrecognised(format!(
                    "{}: a device-dax namespace (NVDIMM_DAX_INFO at byte 4096); it holds no file system",
                    path.display()
                )));
            }
            Some(info) => (info.dataoff, "fsdax namespace", Some(info)),
            None => (0, "bare", None),
        },
    };
    let window: Arc<dyn BlockSource> = Arc::new(Window::new(file.clone(), fs_offset)?);
    let Some(fs) = detect_fs(&*window) else {
        let mut what = format!(
            "{}: no ext4 magic (0xEF53 at byte {}) and no XFS magic (\"XFSB\" at byte 0) at offset {}",
            path.display(),
            EXT4_MAGIC_AT,
            fs_offset
        );
        if let Ok(head) = window.read_at(0, 16.min(window.len() as usize)) {
            what.push_str(&format!("; first bytes there: {}", hex::encode(&head)));
        }
        if pmem.is_none() && offset.is_none() {
            what.push_str("; no NVDIMM_PFN_INFO at byte 4096 either");
        }
        return Err(Error::Unrecognised(what));
    };
    Ok(Image {
        placement: Placement { path: path.display().to_string(), image_bytes, fs_offset, found_by, pmem, fs },
        file,
        fs_bytes: window,
    })
}

/// [`open`], but the file system's bytes are read with `pread(2)` ([`PreadSource`]) rather than
/// through the mapping: for commands that read a few scattered blocks of a large image once.
pub fn open_pread(path: &Path, offset: Option<u64>) -> Result<Image> {
    let mut img = open(path, offset)?;
    let src = Arc::new(PreadSource::open(path, img.placement.image_bytes)?);
    img.fs_bytes = Arc::new(Window::new(src, img.placement.fs_offset)?);
    Ok(img)
}
