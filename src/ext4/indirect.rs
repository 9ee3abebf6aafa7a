//! Legacy (ext2/ext3) block maps: 12 direct pointers, then single, double and triple
//! indirect blocks.

use crate::error::{Findings, Result};
use crate::fs::Extent;
use crate::image::BlockSource;
use std::collections::HashSet;

/// Walks one inode's block map.
pub struct Mapper<'a> {
    /// The file system's bytes.
    pub src: &'a dyn BlockSource,
    /// Block size.
    pub block_size: u32,
    /// Blocks in the file system.
    pub blocks_count: u64,
    /// Where to report problems.
    pub findings: &'a Findings,
    /// The inode (for messages).
    pub ino: u64,
    /// Logical blocks at or beyond this are not mapped (from the file size).
    pub limit: u64,
}

impl Mapper<'_> {
    /// The mapped blocks of i_block (60 bytes: 15 little-endian pointers), as extents of
    /// consecutive blocks, sorted by logical block.
    pub fn map(&self, i_block: &[u8]) -> Result<Vec<Extent>> {
        self.map_with_meta(i_block).map(|(e, _)| e)
    }

    /// [`Mapper::map`], and the indirect blocks read on the way (single, double and triple).
    pub fn map_with_meta(&self, i_block: &[u8]) -> Result<(Vec<Extent>, Vec<u64>)> {
        let ptr = |i: usize| {
            i_block.get(i * 4..i * 4 + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(0)
        };
        let mut out = Vec::new();
        let mut visited = HashSet::new();
        for i in 0..12 {
            self.push(&mut out, i as u64, u64::from(ptr(i)));
        }
        let per = u64::from(self.block_size / 4);
        let mut base = 12u64;
        let mut span = per;
        for level in 1..=3u32 {
            let p = u64::from(ptr(11 + level as usize));
            if p != 0 && base < self.limit {
                self.indirect(p, level, base, &mut out, &mut visited);
            }
            base = base.saturating_add(span);
            span = span.saturating_mul(per);
        }
        let mut meta: Vec<u64> = visited.into_iter().collect();
        meta.sort_unstable();
        Ok((out, meta))
    }

    fn push(&self, out: &mut Vec<Extent>, logical: u64, phys: u64) {
        if phys == 0 || logical >= self.limit {
            return;
        }
        if phys >= self.blocks_count {
            self.findings.error(
                "ext4 block map",
                Some(phys),
                None,
                format!(
                    "inode {}: logical block {logical} points outside the file system; skipped",
                    self.ino
                ),
            );
            return;
        }
        if let Some(last) = out.last_mut()
            && last.logical + last.length == logical
            && last.physical + last.length == phys
        {
            last.length += 1;
            return;
        }
        out.push(Extent { logical, physical: phys, length: 1, unwritten: false });
    }

    fn indirect(&self, blk: u64, level: u32, base: u64, out: &mut Vec<Extent>, visited: &mut HashSet<u64>) {
        let bs = u64::from(self.block_size);
        if blk >= self.blocks_count || !visited.insert(blk) {
            self.findings.error(
                "ext4 indirect block",
                Some(blk),
                None,
                format!(
                    "inode {}: level-{level} indirect block out of range or seen twice; skipped",
                    self.ino
                ),
            );
            return;
        }
        let data = match self.src.read_at(blk.saturating_mul(bs), self.block_size as usize) {
            Ok(d) => d,
            Err(e) => {
                self.findings.error(
                    "ext4 indirect block",
                    Some(blk),
                    Some(blk.saturating_mul(bs)),
                    e.to_string(),
                );
                return;
            }
        };
        let per = bs / 4;
        let span = per.saturating_pow(level - 1);
        for (i, c) in data.chunks_exact(4).enumerate() {
            let p = u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            let logical = base.saturating_add((i as u64).saturating_mul(span));
            if logical >= self.limit {
                break;
            }
            if p == 0 {
                continue;
            }
            if level == 1 {
                self.push(out, logical, p);
            } else {
                self.indirect(p, level - 1, logical, out, visited);
            }
        }
    }
}
