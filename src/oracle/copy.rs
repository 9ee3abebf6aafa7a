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
    let mut buf = vec![0u8; CHUNK];
    let mut off = 0u64;
    while off < len {
        let Some(data) = sys::seek_data(&s, off).map_err(|e| Error::io(src, e))? else { break };
        if data >= len {
            break;
        }
        let hole = sys::seek_hole(&s, data).map_err(|e| Error::io(src, e))?.unwrap_or(len).min(len);
        if hole <= data {
            // Cannot happen per lseek's contract; never loop for ever on it.
            return Err(Error::External(format!("{}: SEEK_HOLE {hole} <= SEEK_DATA {data}", src.display())));
        }
        // With zero skipping, whole blocks: start at the block holding `data`.
        let mut pos = if skip_zero_blocks { data - data % ZERO_BLOCK as u64 } else { data };
        while pos < hole {
            let n = ((hole - pos) as usize).min(CHUNK);
            let got = s.read_at(&mut buf[..n], pos).map_err(|e| Error::io(src, e))?;
            if got == 0 {
                // The file shrank under us: what remains reads as the hole it now is.
                break;
            }
            if skip_zero_blocks {
                for (i, blk) in buf[..got].chunks(ZERO_BLOCK).enumerate() {
                    if blk.iter().any(|&x| x != 0) {
                        let at = pos + (i * ZERO_BLOCK) as u64;
                        d.write_all_at(blk, at).map_err(|e| Error::io(dst, e))?;
                    }
                }
            } else {
                d.write_all_at(&buf[..got], pos).map_err(|e| Error::io(dst, e))?;
            }
            pos += got as u64;
        }
        off = hole.max(pos);
    }
    Ok(())
}
