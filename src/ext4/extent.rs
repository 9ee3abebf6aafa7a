//! Extent trees: the header, index and leaf entries, the tail checksum, and a bounded walk.

use super::csum;
use crate::error::{Error, Findings, Result};
use crate::fs::Extent;
use crate::image::BlockSource;
use std::collections::HashSet;
use zerocopy::byteorder::{LE, U16, U32};
use zerocopy::{FromBytes, Immutable, KnownLayout};

/// `eh_magic`.
pub const EXTENT_MAGIC: u16 = 0xF30A;
/// Deepest tree the kernel builds is 5 levels.
pub const MAX_DEPTH: u16 = 5;
/// Lengths above this mark an unwritten extent.
pub const INIT_MAX_LEN: u16 = 32768;

/// `struct ext4_extent_header`.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone)]
#[repr(C)]
pub struct ExtentHeader {
    /// 0xF30A.
    pub eh_magic: U16<LE>,
    /// Valid entries.
    pub eh_entries: U16<LE>,
    /// Capacity.
    pub eh_max: U16<LE>,
    /// 0 for leaves.
    pub eh_depth: U16<LE>,
    /// Generation (unused).
    pub eh_generation: U32<LE>,
}
const _: () = assert!(size_of::<ExtentHeader>() == 12);

/// `struct ext4_extent_idx`.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone)]
#[repr(C)]
pub struct ExtentIdx {
    /// First logical block covered.
    pub ei_block: U32<LE>,
    /// Child block, low 32 bits.
    pub ei_leaf_lo: U32<LE>,
    /// Child block, high 16 bits.
    pub ei_leaf_hi: U16<LE>,
    /// Unused.
    pub ei_unused: U16<LE>,
}
const _: () = assert!(size_of::<ExtentIdx>() == 12);

/// `struct ext4_extent`.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone)]
#[repr(C)]
pub struct RawExtent {
    /// First logical block.
    pub ee_block: U32<LE>,
    /// Length (above 32768: unwritten, length - 32768).
    pub ee_len: U16<LE>,
    /// Physical block, high 16 bits.
    pub ee_start_hi: U16<LE>,
    /// Physical block, low 32 bits.
    pub ee_start_lo: U32<LE>,
}
const _: () = assert!(size_of::<RawExtent>() == 12);

/// Where a node lives, for error messages.
#[derive(Clone, Copy)]
struct NodeAt {
    block: u64,
    offset: u64,
    /// Depth the parent implies (None for the root).
    want_depth: Option<u16>,
    /// First logical block the parent's index entry names (None for the root).
    want_start: Option<u32>,
}

/// Walks one inode's extent tree.
pub struct Walker<'a> {
    /// The file system's bytes.
    pub src: &'a dyn BlockSource,
    /// Block size.
    pub block_size: u32,
    /// Blocks in the file system (pointers beyond are corrupt).
    pub blocks_count: u64,
    /// Verify tail checksums with this per-inode seed.
    pub csum_seed: Option<u32>,
    /// Where to report problems.
    pub findings: &'a Findings,
    /// The inode (for messages).
    pub ino: u64,
}

impl Walker<'_> {
    /// All leaf extents of the tree rooted in `root` (the inode's i_block, 60 bytes), sorted
    /// by logical block. A damaged child node is skipped with a finding; a damaged root is an
    /// error.
    pub fn walk(&self, root: &[u8], inode_block: u64, inode_offset: u64) -> Result<Vec<Extent>> {
        self.walk_with_nodes(root, inode_block, inode_offset).map(|(e, _)| e)
    }

    /// [`Walker::walk`], and the blocks of the tree's nodes below the root (index and leaf
    /// blocks), in the order they were read.
    pub fn walk_with_nodes(
        &self,
        root: &[u8],
        inode_block: u64,
        inode_offset: u64,
    ) -> Result<(Vec<Extent>, Vec<u64>)> {
        let mut out = Vec::new();
        let mut visited = HashSet::new();
        let mut nodes = Vec::new();
        let at =
            NodeAt { block: inode_block, offset: inode_offset + 0x28, want_depth: None, want_start: None };
        self.node(root, at, &mut out, &mut visited, &mut nodes)?;
        out.sort_by_key(|e| e.logical);
        // Overlapping extents would make reads ambiguous: report, keep the first.
        let mut clean: Vec<Extent> = Vec::with_capacity(out.len());
        for e in out {
            if let Some(last) = clean.last()
                && last.logical.saturating_add(last.length) > e.logical
            {
                self.findings.error(
                    "ext4 extent",
                    Some(e.physical),
                    None,
                    format!(
                        "inode {}: extent at logical {} overlaps the previous one; skipped",
                        self.ino, e.logical
                    ),
                );
                continue;
            }
            clean.push(e);
        }
        Ok((clean, nodes))
    }

    fn node(
        &self,
        bytes: &[u8],
        at: NodeAt,
        out: &mut Vec<Extent>,
        visited: &mut HashSet<u64>,
        nodes: &mut Vec<u64>,
    ) -> Result<()> {
        let is_root = at.want_depth.is_none();
        let bad = |detail: String| Error::corrupt("ext4 extent header", at.block, at.offset, detail);
        let (hdr, _) = ExtentHeader::ref_from_prefix(bytes).map_err(|_| bad("node too small".into()))?;
        if hdr.eh_magic.get() != EXTENT_MAGIC {
            return Err(bad(format!("inode {}: bad magic {:#06x}", self.ino, hdr.eh_magic.get())));
        }
        let depth = hdr.eh_depth.get();
        if depth > MAX_DEPTH {
            return Err(bad(format!("inode {}: depth {depth} exceeds {MAX_DEPTH}", self.ino)));
        }
        if let Some(w) = at.want_depth
            && w != depth
        {
            return Err(bad(format!("inode {}: depth {depth} where the parent implies {w}", self.ino)));
        }
        let cap = (bytes.len() - 12) / 12;
        let max = usize::from(hdr.eh_max.get());
        let entries = usize::from(hdr.eh_entries.get());
        if max > cap {
            return Err(bad(format!("inode {}: eh_max {max} exceeds room for {cap}", self.ino)));
        }
        if entries > max {
            return Err(bad(format!("inode {}: eh_entries {entries} exceeds eh_max {max}", self.ino)));
        }
        if !is_root && let Some(seed) = self.csum_seed {
            let tail_at = 12 + max * 12;
            if let (Some(covered), Some(tail)) = (bytes.get(..tail_at), bytes.get(tail_at..tail_at + 4)) {
                let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
                let want = csum::crc32c_raw(seed, covered);
                if stored != want {
                    self.findings.error(
                        "ext4 extent block",
                        Some(at.block),
                        Some(at.offset),
                        format!(
                            "inode {}: extent tail checksum {stored:#010x} does not match computed {want:#010x}",
                            self.ino
                        ),
                    );
                }
            }
        }
        let body = &bytes[12..];
        let mut prev: Option<u32> = None;
        for i in 0..entries {
            let Some(ent) = body.get(i * 12..i * 12 + 12) else { break };
            let ent_off = at.offset + 12 + (i as u64) * 12;
            let first = u32::from_le_bytes([ent[0], ent[1], ent[2], ent[3]]);
            if i == 0
                && let Some(w) = at.want_start
                && w != first
            {
                self.findings.error(
                    "ext4 extent index",
                    Some(at.block),
                    Some(ent_off),
                    format!(
                        "inode {}: node at level {depth} starts at logical {first}, but its parent index says {w}",
                        self.ino
                    ),
                );
            }
            if let Some(p) = prev
                && first <= p
            {
                self.findings.error(
                    "ext4 extent",
                    Some(at.block),
                    Some(ent_off),
                    format!(
                        "inode {}: entry {i} at logical {first} is out of order (previous {p}); skipped",
                        self.ino
                    ),
                );
                continue;
            }
            prev = Some(first);
            if depth == 0 {
                // OK to unwrap because `ent` is exactly 12 bytes, the size of RawExtent.
                let e = RawExtent::ref_from_bytes(ent).unwrap();
                let raw_len = e.ee_len.get();
                let (length, unwritten) =
                    if raw_len > INIT_MAX_LEN { (raw_len - INIT_MAX_LEN, true) } else { (raw_len, false) };
                let physical = u64::from(e.ee_start_lo.get()) | (u64::from(e.ee_start_hi.get()) << 32);
                let length = u64::from(length);
                if length == 0 {
                    self.findings.error(
                        "ext4 extent",
                        Some(at.block),
                        Some(ent_off),
                        format!("inode {}: zero-length extent at logical {}", self.ino, e.ee_block.get()),
                    );
                    continue;
                }
                if physical.checked_add(length).is_none_or(|end| end > self.blocks_count) {
                    self.findings.error(
                        "ext4 extent",
                        Some(at.block),
                        Some(ent_off),
                        format!(
                            "inode {}: extent {}+{} at logical {} lies outside the file system ({} blocks); skipped",
                            self.ino,
                            physical,
                            length,
                            e.ee_block.get(),
                            self.blocks_count
                        ),
                    );
                    continue;
                }
                out.push(Extent { logical: u64::from(e.ee_block.get()), physical, length, unwritten });
            } else {
                // OK to unwrap because `ent` is exactly 12 bytes, the size of ExtentIdx.
                let ix = ExtentIdx::ref_from_bytes(ent).unwrap();
                let child = u64::from(ix.ei_leaf_lo.get()) | (u64::from(ix.ei_leaf_hi.get()) << 32);
                let bs = u64::from(self.block_size);
                let child_at = NodeAt {
                    block: child,
                    offset: child.saturating_mul(bs),
                    want_depth: Some(depth - 1),
                    want_start: Some(ix.ei_block.get()),
                };
                if child >= self.blocks_count || !visited.insert(child) {
                    self.findings.error(
                        "ext4 extent index",
                        Some(at.block),
                        Some(ent_off),
                        format!(
                            "inode {}: index entry points to block {child} (out of range or seen); skipped",
                            self.ino
                        ),
                    );
                    continue;
                }
                let data = match self.src.read_at(child_at.offset, self.block_size as usize) {
                    Ok(d) => d,
                    Err(e) => {
                        self.findings.error(
                            "ext4 extent block",
                            Some(child),
                            Some(child_at.offset),
                            e.to_string(),
                        );
                        continue;
                    }
                };
                nodes.push(child);
                if let Err(e) = self.node(&data, child_at, out, visited, nodes) {
                    self.findings.error(
                        "ext4 extent block",
                        Some(child),
                        Some(child_at.offset),
                        e.to_string(),
                    );
                }
            }
        }
        Ok(())
    }
}
