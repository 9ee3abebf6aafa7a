//! The manifest: one record per regular file (path, inode, size, extents, sha256), the common
//! currency of the differential tests (daxray against the kernel) and of `daxray manifest`.

use crate::error::{Error, Result};
use crate::fs::{self, Extent, FileSystem, FileType};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One regular file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Absolute path.
    pub path: String,
    /// Inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// File-system block size.
    pub block_size: u32,
    /// Extents in file-system blocks, adjacent ones merged.
    pub extents: Vec<ManifestExtent>,
    /// sha256 of the contents (with --hash).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sha256: Option<String>,
}

/// An extent as the manifest prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestExtent {
    /// First logical block.
    pub logical: u64,
    /// First physical block from the start of the file system.
    pub physical: u64,
    /// Blocks.
    pub length: u64,
    /// Allocated, not written.
    pub unwritten: bool,
}

impl From<Extent> for ManifestExtent {
    fn from(e: Extent) -> Self {
        Self { logical: e.logical, physical: e.physical, length: e.length, unwritten: e.unwritten }
    }
}

/// Bytes hashed per read.
const HASH_CHUNK: usize = 1 << 20;

/// Files larger than this and than twice the file system are not hashed: a corrupt size field
/// (2^60 bytes, mostly hole) would otherwise keep the hash running for hours.
const MAX_HASH_BYTES: u64 = 2 << 30;

/// sha256 of a file's contents, read through the model.
pub fn hash_file(fsys: &dyn FileSystem, ino: u64, size: u64) -> Result<String> {
    let limit = MAX_HASH_BYTES.max(fsys.source().len().saturating_mul(2));
    if size > limit {
        return Err(Error::Unsupported(format!(
            "inode {ino}: size {size} bytes is over {limit} (2 GiB and twice the file system); not hashed"
        )));
    }
    let mut h = Sha256::new();
    let mut off = 0u64;
    while off < size {
        let buf = fsys.read(ino, off, HASH_CHUNK)?;
        if buf.is_empty() {
            return Err(Error::corrupt("file data", ino, off, "file ends before its size"));
        }
        h.update(&buf);
        off += buf.len() as u64;
    }
    Ok(hex::encode(h.finalize()))
}

/// The manifest entry of one inode.
pub fn entry(fsys: &dyn FileSystem, path: &str, ino: u64, hash: bool) -> Result<ManifestEntry> {
    let st = fsys.stat(ino)?;
    let extents = fs::merge_extents(&fsys.map(ino)?).into_iter().map(ManifestExtent::from).collect();
    let sha256 = if hash { Some(hash_file(fsys, ino, st.size)?) } else { None };
    Ok(ManifestEntry {
        path: path.to_string(),
        ino,
        size: st.size,
        block_size: fsys.block_size(),
        extents,
        sha256,
    })
}

/// Every regular file under `/`, in walk order. Per-file errors are returned beside the entries
/// (path and error) so that one bad inode does not hide the rest.
/// Per-path errors that did not stop a walk.
pub type PathErrors = Vec<(String, Error)>;

/// Every regular file under `/` (see [`build`]).
pub fn build(fsys: &dyn FileSystem, hash: bool) -> Result<(Vec<ManifestEntry>, PathErrors)> {
    let mut errors = Vec::new();
    let nodes = fs::walk(fsys, "/", &mut errors)?;
    let mut out = Vec::new();
    for n in nodes {
        if n.file_type != FileType::File {
            continue;
        }
        match entry(fsys, &n.path, n.ino, hash) {
            Ok(e) => out.push(e),
            Err(e) => errors.push((n.path, e)),
        }
    }
    Ok((out, errors))
}
