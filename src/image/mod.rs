//! The image layer: files and devices read-only (mapped or with positioned reads), the fsdax
//! namespace window, overlays, and whether an image is in use. Which file system the window
//! holds is the composer's question (`open`), not this layer's.

mod extent;
mod fileview;
mod inuse;
mod mmap;
mod overlay;
pub mod pmem;
mod pread;
mod source;

pub use extent::{Extent, read_by_extents};
pub use fileview::FileView;
pub use inuse::{in_use, mounted_read_write, refuse_in_use};
pub use mmap::MmapSource;
pub use overlay::Overlay;
pub use pread::PreadSource;
pub use source::{BlockSource, MemSource, Window, check_range};

use crate::error::{Error, Result};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

/// How an image's bytes are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Access {
    /// Through a read-only mapping ([`MmapSource`]).
    #[default]
    Map,
    /// With `pread(2)` ([`PreadSource`]): for commands that read a few scattered blocks of a
    /// large image once.
    Pread,
}

/// Where the file system's bytes sit in the image and how they were found.
#[derive(Debug, Clone, Serialize)]
pub struct Location {
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
}

/// An opened image: the whole file and the window that holds the file system.
pub struct Image {
    /// The whole file or device.
    pub file: Arc<dyn BlockSource>,
    /// The file system's bytes (a window at `location.fs_offset`).
    pub fs_bytes: Arc<dyn BlockSource>,
    /// Where it sits.
    pub location: Location,
}

/// Open `path` read-only through a mapping and find where the file system sits: at `offset` if
/// given, else inside an fsdax namespace if there is one, else at byte 0.
pub fn open(path: &Path, offset: Option<u64>) -> Result<Image> {
    open_with(path, offset, Access::Map)
}

/// [`open`], the bytes read as `access` says.
pub fn open_with(path: &Path, offset: Option<u64>, access: Access) -> Result<Image> {
    let file: Arc<dyn BlockSource> = match access {
        Access::Map => Arc::new(MmapSource::open(path)?),
        Access::Pread => Arc::new(PreadSource::open(path)?),
    };
    let image_bytes = file.len();
    let (fs_offset, found_by, pmem) = match offset {
        Some(o) => (o, "--offset", None),
        None => match pmem::detect_in(&*file)? {
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
    let fs_bytes: Arc<dyn BlockSource> = Arc::new(Window::new(file.clone(), fs_offset)?);
    Ok(Image {
        location: Location { path: path.display().to_string(), image_bytes, fs_offset, found_by, pmem },
        file,
        fs_bytes,
    })
}
