//! What the kernel shows of a mounted file system, as a manifest, and the comparison with ours.

use crate::error::{Error, Result};
use crate::fs::{Extent, merge_extents};
use crate::manifest::{ManifestEntry, ManifestExtent};
use crate::sys;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// `FIEMAP_EXTENT_LAST`.
const FE_LAST: u32 = 0x1;
/// `FIEMAP_EXTENT_UNKNOWN`: location not known yet.
const FE_UNKNOWN: u32 = 0x2;
/// `FIEMAP_EXTENT_DELALLOC`: delayed allocation.
const FE_DELALLOC: u32 = 0x4;
/// `FIEMAP_EXTENT_DATA_INLINE`: data lives in the inode (ext4 inline data).
const FE_DATA_INLINE: u32 = 0x200;
/// `FIEMAP_EXTENT_UNWRITTEN`: allocated, reads as zeros.
const FE_UNWRITTEN: u32 = 0x800;

/// Deepest directory nesting walked.
const MAX_DEPTH: usize = 4096;
/// Most FIEMAP calls per file (256 extents each).
const MAX_FIEMAP_CALLS: usize = 1 << 16;

/// Walk the mounted tree under `root` and describe every regular file the way
/// `daxray manifest` does: path from the root (`"/a/b"`), inode number, size, the file-system block
/// size, extents from `FS_IOC_FIEMAP` (after syncing the file's data; in file-system blocks,
/// physical from the start of the file system, adjacent ones merged like
/// [`merge_extents`]; inline data shows as no extents), and with `hash` the sha256 of the
/// contents. Symbolic links are not followed. Sorted by path.
pub fn kernel_manifest(root: &Path, hash: bool) -> Result<Vec<ManifestEntry>> {
    let (entries, errors) = kernel_manifest_with_errors(root, hash)?;
    match errors.first() {
        None => Ok(entries),
        Some((p, e)) => Err(Error::External(format!("{}{p}: {e}", root.display()))),
    }
}

/// Paths the kernel refused to read, with its error.
pub type PathFailures = Vec<(String, String)>;

/// [`kernel_manifest`], with the files and folders the kernel refuses to read (an I/O error from
/// `open`, `FIEMAP`, `read` or `readdir`, such as EUCLEAN for a corrupt inode) listed beside the
/// entries, path and error, instead of ending the walk.
pub fn kernel_manifest_with_errors(root: &Path, hash: bool) -> Result<(Vec<ManifestEntry>, PathFailures)> {
    let rootf = std::fs::File::open(root).map_err(|e| Error::io(root, e))?;
    let bs = sys::fs_block_size(&rootf).map_err(|e| Error::io(root, e))?;
    if bs == 0 || bs > u32::MAX as u64 {
        return Err(Error::External(format!("{}: file system block size {bs}", root.display())));
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    walk(root, "", 0, bs, hash, &mut out, &mut errors)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    errors.sort();
    Ok((out, errors))
}

/// The error of an I/O call on `p` as the kernel gave it (errno and text), for the error list.
fn io_text(e: &Error) -> Option<String> {
    match e {
        Error::Io { source, .. } => Some(source.to_string()),
        _ => None,
    }
}

fn walk(
    dir: &Path,
    prefix: &str,
    depth: usize,
    bs: u64,
    hash: bool,
    out: &mut Vec<ManifestEntry>,
    errors: &mut PathFailures,
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::External(format!(
            "{}: directories nested deeper than {MAX_DEPTH}",
            dir.display()
        )));
    }
    let shown = if prefix.is_empty() { "/".to_string() } else { prefix.to_string() };
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            errors.push((shown, e.to_string()));
            return Ok(());
        }
    };
    for ent in rd {
        let ent = match ent {
            Ok(x) => x,
            Err(e) => {
                errors.push((shown.clone(), e.to_string()));
                break;
            }
        };
        let p = ent.path();
        let name = ent.file_name().to_string_lossy().into_owned();
        let rel = format!("{prefix}/{name}");
        let md = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) => {
                errors.push((rel, e.to_string()));
                continue;
            }
        };
        let ft = md.file_type();
        if ft.is_dir() {
            walk(&p, &rel, depth + 1, bs, hash, out, errors)?;
        } else if ft.is_file() {
            match file_entry(&p, rel.clone(), &md, bs, hash) {
                Ok(e) => out.push(e),
                Err(e) => match io_text(&e) {
                    Some(t) => errors.push((rel, t)),
                    None => return Err(e),
                },
            }
        }
    }
    Ok(())
}

fn file_entry(p: &Path, rel: String, md: &std::fs::Metadata, bs: u64, hash: bool) -> Result<ManifestEntry> {
    let f = std::fs::File::open(p).map_err(|e| Error::io(p, e))?;
    let mut raw = Vec::new();
    let mut start = 0u64;
    let mut calls = 0usize;
    'outer: loop {
        calls += 1;
        if calls > MAX_FIEMAP_CALLS {
            return Err(Error::External(format!(
                "{}: more than {MAX_FIEMAP_CALLS} FIEMAP calls",
                p.display()
            )));
        }
        let batch =
            sys::fiemap(&f, start, u64::MAX - start, sys::FIEMAP_FLAG_SYNC).map_err(|e| Error::io(p, e))?;
        if batch.is_empty() {
            break;
        }
        for fe in &batch {
            let end = fe.fe_logical.saturating_add(fe.fe_length);
            if fe.fe_flags & FE_DATA_INLINE == 0 {
                if fe.fe_flags & (FE_UNKNOWN | FE_DELALLOC) != 0 {
                    return Err(Error::External(format!(
                        "{}: FIEMAP extent at byte {} has no location yet (flags {:#x}) even after sync",
                        p.display(),
                        fe.fe_logical,
                        fe.fe_flags
                    )));
                }
                if fe.fe_logical % bs != 0 || fe.fe_physical % bs != 0 {
                    return Err(Error::External(format!(
                        "{}: FIEMAP extent logical {} physical {} not aligned to the block size {bs}",
                        p.display(),
                        fe.fe_logical,
                        fe.fe_physical
                    )));
                }
                raw.push(Extent {
                    logical: fe.fe_logical / bs,
                    physical: fe.fe_physical / bs,
                    length: fe.fe_length.div_ceil(bs),
                    unwritten: fe.fe_flags & FE_UNWRITTEN != 0,
                });
            }
            if fe.fe_flags & FE_LAST != 0 {
                break 'outer;
            }
            if end <= start {
                break 'outer;
            }
            start = end;
        }
    }
    let extents = merge_extents(&raw).into_iter().map(ManifestExtent::from).collect();
    let sha256 = if hash { Some(hash_path(&f, p)?) } else { None };
    Ok(ManifestEntry { path: rel, ino: md.ino(), size: md.len(), block_size: bs as u32, extents, sha256 })
}

fn hash_path(f: &std::fs::File, p: &Path) -> Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut r = f;
    loop {
        let n = r.read(&mut buf).map_err(|e| Error::io(p, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Compare two manifests by path: inode number, size, block size, merged extents, and sha256
/// when both sides have one. Returns the number of files compared when everything matches.
/// `Err` lists every difference, one per line with its path, and is also returned when either
/// side is empty (a comparison of nothing proves nothing).
pub fn compare_manifests(ours: &[ManifestEntry], kernel: &[ManifestEntry]) -> Result<usize, String> {
    if ours.is_empty() || kernel.is_empty() {
        return Err(format!(
            "nothing to compare: ours has {} files, the kernel's has {}",
            ours.len(),
            kernel.len()
        ));
    }
    let a: BTreeMap<&str, &ManifestEntry> = ours.iter().map(|e| (e.path.as_str(), e)).collect();
    let b: BTreeMap<&str, &ManifestEntry> = kernel.iter().map(|e| (e.path.as_str(), e)).collect();
    let mut diffs = Vec::new();
    if a.len() != ours.len() {
        diffs.push(format!("ours lists {} paths more than once", ours.len() - a.len()));
    }
    if b.len() != kernel.len() {
        diffs.push(format!("the kernel's lists {} paths more than once", kernel.len() - b.len()));
    }
    let mut compared = 0usize;
    for (path, o) in &a {
        let Some(k) = b.get(path) else {
            diffs.push(format!("{path}: only in ours (ino {})", o.ino));
            continue;
        };
        compared += 1;
        if o.ino != k.ino {
            diffs.push(format!("{path}: ino ours {} kernel {}", o.ino, k.ino));
        }
        if o.size != k.size {
            diffs.push(format!("{path}: size ours {} kernel {}", o.size, k.size));
        }
        if o.block_size != k.block_size {
            diffs.push(format!("{path}: block size ours {} kernel {}", o.block_size, k.block_size));
        }
        match (&o.sha256, &k.sha256) {
            (Some(x), Some(y)) if x != y => diffs.push(format!("{path}: sha256 ours {x} kernel {y}")),
            _ => {}
        }
        if o.extents != k.extents {
            diffs.push(format!(
                "{path}: extents differ\n    ours:   {}\n    kernel: {}",
                fmt_extents(&o.extents),
                fmt_extents(&k.extents)
            ));
        }
    }
    for (path, k) in &b {
        if !a.contains_key(path) {
            diffs.push(format!("{path}: only in the kernel's (ino {})", k.ino));
        }
    }
    if diffs.is_empty() {
        Ok(compared)
    } else {
        Err(format!("{} differences over {} files:\n{}", diffs.len(), a.len().max(b.len()), diffs.join("\n")))
    }
}

fn fmt_extents(ex: &[ManifestExtent]) -> String {
    if ex.is_empty() {
        return "(none)".into();
    }
    ex.iter()
        .map(|e| {
            format!("[{}+{}@{}{}]", e.logical, e.length, e.physical, if e.unwritten { " u" } else { "" })
        })
        .collect::<Vec<_>>()
        .join(" ")
}
