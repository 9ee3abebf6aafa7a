//! The answer of an `icheck` scan: for each block asked about, the first inode found owning it.
//! ext4 and XFS feed it the blocks of their inodes in scan order.

use std::collections::BTreeMap;

/// Blocks asked about and, for each, the first inode that claimed it.
#[derive(Debug, Clone)]
pub struct BlockOwners {
    answer: BTreeMap<u64, Option<u64>>,
    open: usize,
}

impl BlockOwners {
    /// No block owned yet.
    pub fn new(blocks: &[u64]) -> Self {
        let answer: BTreeMap<u64, Option<u64>> = blocks.iter().map(|b| (*b, None)).collect();
        let open = answer.len();
        Self { answer, open }
    }

    /// True when every block asked about has an owner (the scan may stop).
    pub fn done(&self) -> bool {
        self.open == 0
    }

    /// Inode `ino` owns blocks `start..start + len`: the ones asked about that had no owner get it.
    pub fn claim(&mut self, ino: u64, start: u64, len: u64) {
        for (_, owner) in self.answer.range_mut(start..start.saturating_add(len)) {
            if owner.is_none() {
                *owner = Some(ino);
                self.open -= 1;
            }
        }
    }

    /// The owners of `blocks`, in their order (`None`: no inode owns it).
    pub fn answers(&self, blocks: &[u64]) -> Vec<Option<u64>> {
        blocks.iter().map(|b| self.answer.get(b).copied().flatten()).collect()
    }
}

/// Inode -> the paths naming it.
pub type PathsOf = BTreeMap<u64, Vec<String>>;
/// Paths whose directory could not be read, with why.
pub type WalkErrors = Vec<(String, crate::Error)>;

/// The paths naming each inode of `inos` (hard links give several), found by walking the tree
/// from the root as `debugfs ncheck` lists directory entries: every entry but "." and "..", so
/// the root itself has none. Paths come in walk order; errors met on the way (directories that
/// cannot be read) are returned beside them.
pub fn paths_of(fs: &dyn crate::fs::FileSystem, inos: &[u64]) -> crate::Result<(PathsOf, WalkErrors)> {
    let mut out: BTreeMap<u64, Vec<String>> = inos.iter().map(|i| (*i, Vec::new())).collect();
    let mut errors = Vec::new();
    for e in crate::fs::walk(fs, "/", &mut errors)? {
        if let Some(paths) = out.get_mut(&e.ino) {
            paths.push(e.path);
        }
    }
    Ok((out, errors))
}
