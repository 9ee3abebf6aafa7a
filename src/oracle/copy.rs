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
        let mut pos = data;
        while pos < hole {
            let n = ((hole - pos) as usize).min(CHUNK);
            let got = s.read_at(&mut buf[..n], pos).map_err(|e| Error::io(src, e))?;
            if got == 0 {
                // The file shrank under us: what remains reads as the hole it now is.
                break;
            }
            d.write_all_at(&buf[..got], pos).map_err(|e| Error::io(dst, e))?;
            pos += got as u64;
        }
        off = hole;
    }
    Ok(())
}
