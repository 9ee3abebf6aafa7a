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
    // A file whose block map the kernel cannot read does not list after the mount either.
    fsys.read_check(ino)?;
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
    // Entry or error per regular file, in walk order; entries first without hashes.
    let mut made: Vec<std::result::Result<ManifestEntry, (String, Error)>> = Vec::new();
    for n in nodes {
        if n.file_type != FileType::File {
            continue;
        }
        made.push(entry(fsys, &n.path, n.ino, false).map_err(|e| (n.path, e)));
    }
    if hash {
        // Hashing is most of the work: spread the files over the cores, in walk order.
        let ok: Vec<&ManifestEntry> = made.iter().filter_map(|r| r.as_ref().ok()).collect();
        let mut hashes = hash_all(fsys, &ok).into_iter();
        for r in made.iter_mut() {
            if let Ok(e) = r {
                match hashes.next() {
                    Some(Ok(h)) => e.sha256 = Some(h),
                    Some(Err(err)) => *r = Err((e.path.clone(), err)),
                    None => {}
                }
            }
        }
    }
    let mut out = Vec::new();
    for r in made {
        match r {
            Ok(e) => out.push(e),
            Err(pe) => errors.push(pe),
        }
    }
    Ok((out, errors))
}

/// sha256 of every entry's file, computed on up to 4 threads, in the order of `entries`.
fn hash_all(fsys: &dyn FileSystem, entries: &[&ManifestEntry]) -> Vec<Result<String>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = crate::cores().clamp(1, 4);
    if threads < 2 || entries.len() < 2 {
        return entries.iter().map(|e| hash_file(fsys, e.ino, e.size)).collect();
    }
    let next = AtomicUsize::new(0);
    let parts: Vec<Vec<(usize, Result<String>)>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(e) = entries.get(i) else { break };
                        done.push((i, hash_file(fsys, e.ino, e.size)));
                    }
                    done
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_default()).collect()
    });
    let mut out: Vec<Option<Result<String>>> = (0..entries.len()).map(|_| None).collect();
    for (i, r) in parts.into_iter().flatten() {
        if let Some(slot) = out.get_mut(i) {
            *slot = Some(r);
        }
    }
    // A slot left empty means its worker panicked: hash that file here, which reports the error.
    out.into_iter().zip(entries).map(|(r, e)| r.unwrap_or_else(|| hash_file(fsys, e.ino, e.size))).collect()
}

/// A whole view: every regular file with its sha256, and the paths that could not be read
/// (path, error), both sorted by path.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Listed {
    /// The files read.
    pub entries: Vec<ManifestEntry>,
    /// The files and folders that could not be read, with the error.
    pub errors: Vec<(String, String)>,
}
