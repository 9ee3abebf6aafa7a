//! Copy a file preserving its holes.

use crate::error::{Error, Result};
use crate::sys;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Bytes copied per read/write.
const CHUNK: usize = 1 << 20;

/// Copy `src` to `dst` (created or truncated), copying only the data ranges that
/// `lseek(SEEK_DATA/SEEK_HOLE)` reports, so holes stay holes. `src` is opened read-only and never
/// written; it may be the backing file of a mounted loop device (a crash copy).
pub fn copy_sparse(src: &Path, dst: &Path) -> Result<()> {
    copy_ranges(src, dst, false)
}

/// Block size of the zero test in [`copy_compact`].
const ZERO_BLOCK: usize = 4096;

/// Like [`copy_sparse`], but every all-zero 4 KiB block inside a data range also becomes a hole.
/// The copy reads back byte for byte like `src`, but a freshly made file system whose journal or
/// log was written with zeros takes a few MiB instead of tens.
pub fn copy_compact(src: &Path, dst: &Path) -> Result<()> {
    copy_ranges(src, dst, true)
}

fn copy_ranges(src: &Path, dst: &Path, skip_zero_blocks: bool) -> Result<()> {
    let s = std::fs::File::open(src).map_err(|e| Error::io(src, e))?;
    let len = s.metadata().map_err(|e| Error::io(src, e))?.len();
    let d = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(dst)
        .map_err(|e| Error::io(dst, e))?;
    d.set_len(len).map_err(|e| Error::io(dst, e))?;
    let write = |at: u64, b: &[u8]| d.write_all_at(b, at).map_err(|e| Error::io(dst, e));
    if skip_zero_blocks {
        for_each_nonzero_block(src, &s, 0, write)
    } else {
        for_each_data_chunk(src, &s, 0, write)
    }
}

/// Call `f(offset, bytes)` for the data ranges of `file` (`lseek(SEEK_DATA/SEEK_HOLE)`) from
/// byte `from` on, at most [`CHUNK`] bytes a call. `path` names the file in errors.
fn for_each_data_chunk(
    path: &Path,
    file: &std::fs::File,
    from: u64,
    mut f: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<()> {
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut buf = vec![0u8; CHUNK];
    let mut off = from;
    while off < len {
        let Some(data) = sys::seek_data(file, off).map_err(|e| Error::io(path, e))? else { break };
        if data >= len {
            break;
        }
        let hole = sys::seek_hole(file, data).map_err(|e| Error::io(path, e))?.unwrap_or(len).min(len);
        if hole <= data {
            // Cannot happen per lseek's contract; never loop for ever on it.
            return Err(Error::External(format!("{}: SEEK_HOLE {hole} <= SEEK_DATA {data}", path.display())));
        }
        // Whole blocks: start at the block holding `data` (not before `from`).
        let mut pos = (data - data % ZERO_BLOCK as u64).max(from);
        while pos < hole {
            let n = ((hole - pos) as usize).min(CHUNK);
            let got = file.read_at(&mut buf[..n], pos).map_err(|e| Error::io(path, e))?;
            if got == 0 {
                // The file shrank under us: what remains reads as the hole it now is.
                break;
            }
            f(pos, &buf[..got])?;
            pos += got as u64;
        }
        off = hole.max(pos);
    }
    Ok(())
}

/// Call `f(offset, block)` for every 4 KiB block of `file` from byte `from` (a multiple of 4 KiB)
/// on that holds data and is not all zeros, in order. `path` names the file in errors.
pub fn for_each_nonzero_block(
    path: &Path,
    file: &std::fs::File,
    from: u64,
    mut f: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<()> {
    for_each_data_chunk(path, file, from, |pos, chunk| {
        for (i, blk) in chunk.chunks(ZERO_BLOCK).enumerate() {
            if blk.iter().any(|&x| x != 0) {
                f(pos + (i * ZERO_BLOCK) as u64, blk)?;
            }
        }
        Ok(())
    })
}
