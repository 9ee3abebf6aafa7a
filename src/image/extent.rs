//! A file's extents and the reader of its bytes through them (holes and unwritten ranges read as
//! zeros), shared by [`super::FileView`] and the file-system models.

use super::source::BlockSource;
use crate::error::{Error, Result};
use serde::Serialize;

/// One mapped range of a file, in file-system blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Extent {
    /// First logical block in the file.
    pub logical: u64,
    /// First physical block, linear from the start of the file system
    /// (for XFS: agno × agblocks + agbno).
    pub physical: u64,
    /// Number of blocks.
    pub length: u64,
    /// Allocated but not written (reads as zeros).
    pub unwritten: bool,
}

/// Read file bytes through an extent list (sorted by logical block, non-overlapping).
pub fn read_by_extents(
    src: &dyn BlockSource,
    block_size: u32,
    size: u64,
    extents: &[Extent],
    offset: u64,
    len: usize,
) -> Result<Vec<u8>> {
    if offset >= size {
        return Ok(Vec::new());
    }
    let len = (len as u64).min(size - offset) as usize;
    let bs = u64::from(block_size);
    let mut out = vec![0u8; len];
    let end = offset + len as u64;
    for e in extents {
        if e.unwritten {
            continue;
        }
        let e_start = e.logical.saturating_mul(bs);
        let e_end = e.logical.saturating_add(e.length).saturating_mul(bs);
        let s = e_start.max(offset);
        let t = e_end.min(end);
        if s >= t {
            continue;
        }
        let phys = e
            .physical
            .checked_mul(bs)
            .and_then(|p| p.checked_add(s - e_start))
            .ok_or_else(|| Error::corrupt("extent", e.physical, 0, "physical block overflows"))?;
        // Straight into place: a pread for sources over a file, no copy of a copy.
        src.read_into(phys, &mut out[(s - offset) as usize..(t - offset) as usize])?;
    }
    Ok(out)
}
