//! The orphan cleanup of a read-write mount (`ext4_orphan_cleanup` in `fs/ext4/orphan.c`), run
//! after journal recovery and fast-commit replay: what it truncates and deletes.
//!
//! ext4 puts an inode on the orphan list while blocks past its size may be mapped (an extending
//! direct or DAX write, a truncate in progress) and while it is unlinked but open. After a crash
//! the mount finishes the job: an orphan with links is truncated to its size (`ext4_truncate`
//! frees every block from `ceil(i_size / block size)` on), one without links is deleted. The
//! list starts at `s_last_orphan` and goes on through each inode's `i_dtime`; with the
//! `orphan_file` feature, the orphan file's blocks hold more inode numbers (their magic is
//! checked, their checksums are not).

use super::Ext4;
use super::superblock::Superblock;
use crate::fs::{Extent, FileType};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// `EXT4_ERROR_FS` in `s_state`.
const STATE_ERROR_FS: u16 = 0x0002;
/// `EXT4_FEATURE_COMPAT_ORPHAN_FILE`.
const COMPAT_ORPHAN_FILE: u32 = 0x1000;
/// `EXT4_ORPHAN_BLOCK_MAGIC`, at the end of each orphan file block.
const ORPHAN_BLOCK_MAGIC: u32 = 0x0b10_ca04;
/// `struct ext4_orphan_block_tail`: `ob_magic`, `ob_checksum`.
const ORPHAN_BLOCK_TAIL: usize = 8;

/// What the mount's orphan cleanup does.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OrphanCleanup {
    /// Inodes truncated to their size: inode number -> first logical block freed.
    pub truncated: BTreeMap<u64, u64>,
    /// Inodes deleted (no links left).
    pub deleted: Vec<u64>,
    /// Why the cleanup was skipped or stopped early, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

impl OrphanCleanup {
    /// True when the cleanup changes nothing.
    pub fn is_empty(&self) -> bool {
        self.truncated.is_empty() && self.deleted.is_empty()
    }

    /// The extents of inode `ino` after the cleanup: the parts past a truncation point dropped.
    pub fn trim(&self, ino: u64, extents: Vec<Extent>) -> Vec<Extent> {
        let Some(&first) = self.truncated.get(&ino) else { return extents };
        extents
            .into_iter()
            .filter(|e| e.logical < first)
            .map(|mut e| {
                e.length = e.length.min(first - e.logical);
                e
            })
            .collect()
    }
}

/// The orphan cleanup the kernel's mount would run on `fs` (`ext4_orphan_cleanup`).
pub fn plan(fs: &Ext4) -> OrphanCleanup {
    let sb = fs.superblock();
    let mut out = OrphanCleanup::default();
    let first = u64::from(sb.raw.s_last_orphan.get());
    let orphan_file = sb.has_compat(COMPAT_ORPHAN_FILE);
    if first == 0 && !orphan_file {
        return out;
    }
    if sb.raw.s_state.get() & STATE_ERROR_FS != 0 {
        // ext4_orphan_cleanup: "Errors on filesystem, clearing orphan list."
        if first != 0 {
            out.stopped =
                Some("the file system records errors: the kernel clears the orphan list unprocessed".into());
        }
        return out;
    }
    let max = u64::from(sb.raw.s_inodes_count.get());
    let mut seen = BTreeSet::new();
    let mut ino = first;
    while ino != 0 {
        if !seen.insert(ino) {
            out.stopped = Some(format!("the orphan list comes back to inode {ino}"));
            break;
        }
        match orphan_get(fs, sb, ino, max) {
            Ok(next) => {
                process(fs, ino, &mut out);
                ino = next;
            }
            Err(why) => {
                // ext4_orphan_get fails: ext4_orphan_cleanup clears the rest of the list.
                out.stopped = Some(why);
                break;
            }
        }
    }
    if orphan_file {
        orphan_file_entries(fs, sb, max, &mut out);
    }
    out
}

/// `ext4_orphan_get`: the checks before an orphan is processed; returns its successor on the list
/// (`NEXT_ORPHAN`, its `i_dtime`).
fn orphan_get(fs: &Ext4, sb: &Superblock, ino: u64, max: u64) -> Result<u64, String> {
    let first_ino = u64::from(sb.raw.s_first_ino.get());
    if ino < first_ino || ino > max {
        return Err(format!("bad orphan inode {ino} (valid: {first_ino}..={max})"));
    }
    if !fs.inode_in_use(ino).map_err(|e| format!("orphan inode {ino}: {e}"))? {
        return Err(format!("bad orphan inode {ino}: its bit in the inode bitmap is clear"));
    }
    let i = fs.inode(ino).map_err(|e| format!("orphan inode {ino}: {e}"))?;
    let ft = FileType::from_mode(i.mode());
    // ext4_can_truncate: regular files, directories, symlinks that are not fast symlinks.
    let can_truncate = match ft {
        FileType::File | FileType::Dir => true,
        FileType::Symlink => !fs.is_fast_symlink(&i),
        _ => false,
    };
    if i.links() > 0 && !can_truncate {
        return Err(format!("bad orphan inode {ino}: it has links and cannot be truncated"));
    }
    let next = u64::from(i.raw.i_dtime.get());
    if next > max {
        return Err(format!("bad orphan inode {ino}: next orphan {next} is past the last inode"));
    }
    Ok(next)
}

/// `ext4_process_orphan`: truncate an orphan with links to its size, delete one without.
fn process(fs: &Ext4, ino: u64, out: &mut OrphanCleanup) {
    let Ok(i) = fs.inode(ino) else { return };
    if i.links() == 0 {
        out.deleted.push(ino);
        return;
    }
    let bs = u64::from(fs.superblock().block_size);
    // ext4_ext_truncate / ext4_ind_truncate: every block from ceil(i_size / block size) on.
    out.truncated.insert(ino, i.size().div_ceil(bs.max(1)));
}

/// The orphan file's entries (`ext4_init_orphan_info`, then the second loop of
/// `ext4_orphan_cleanup`): every non-zero inode number in each block, processed in order.
fn orphan_file_entries(fs: &Ext4, sb: &Superblock, max: u64, out: &mut OrphanCleanup) {
    use crate::fs::FileSystem;
    let ino = u64::from(sb.raw.s_orphan_file_inum.get());
    let bs = sb.block_size as usize;
    let Some(per_block) = bs.checked_sub(ORPHAN_BLOCK_TAIL).map(|n| n / 4) else { return };
    let size = match fs.stat(ino) {
        Ok(st) => st.size,
        Err(e) => {
            out.stopped = Some(format!("orphan file inode {ino}: {e}"));
            return;
        }
    };
    for b in 0..size / bs as u64 {
        let data = match fs.read(ino, b * bs as u64, bs) {
            Ok(d) if d.len() == bs => d,
            Ok(_) | Err(_) => {
                out.stopped = Some(format!("orphan file block {b} cannot be read"));
                return;
            }
        };
        let magic = u32::from_le_bytes([data[bs - 8], data[bs - 7], data[bs - 6], data[bs - 5]]);
        if magic != ORPHAN_BLOCK_MAGIC {
            out.stopped = Some(format!(
                "orphan file block {b}: bad magic {magic:#010x} (ext4_init_orphan_info fails: so does the kernel's mount)"
            ));
            return;
        }
        for e in data[..per_block * 4].chunks_exact(4) {
            let n = u64::from(u32::from_le_bytes([e[0], e[1], e[2], e[3]]));
            // A failing ext4_orphan_get skips this entry only.
            if n != 0 && orphan_get(fs, sb, n, max).is_ok() {
                process(fs, n, out);
            }
        }
    }
}
