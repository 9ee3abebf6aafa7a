//! The fast-commit area as jbd2 sees it: blocks past the journal's log (`j_fc_first` to
//! `j_fc_last`) whose contents belong to the file system.
//!
//! The kernel's recovery hands them to the file system through `j_fc_replay_callback` (ext4's
//! `ext4_fc_replay`): in the scan pass to learn whether a valid fast commit follows the last
//! replayed transaction, in the replay pass to apply it. jbd2 here does the same: it reads the
//! blocks and asks a [`FastCommitFormat`] what they hold; it never parses them itself.

use super::journal::Journal;

/// A file system's fast-commit format: how the kernel's scan pass reads the area.
pub trait FastCommitFormat {
    /// The area, as the scan pass leaves it.
    type Area: FastCommitArea;

    /// Scan `blocks` (journal block number, bytes; in order) for a fast commit of transaction
    /// `expected_tid`, as the file system's scan callback does (ext4: `ext4_fc_replay_scan`).
    fn scan(&self, blocks: &[(u64, &[u8])], expected_tid: u32) -> Self::Area;
}

/// What the scan found in the area, in the terms jbd2's recovery and listing need.
pub trait FastCommitArea: Clone + serde::Serialize {
    /// First journal block of the area.
    fn first_block(&self) -> u64;
    /// The transaction a valid fast commit must carry.
    fn expected_tid(&self) -> u32;
    /// Tags (records) found.
    fn tag_count(&self) -> usize;
    /// Tags the kernel would replay.
    fn valid_tags(&self) -> usize;
    /// How the scan ends, in words.
    fn scan_end(&self) -> &str;
    /// The error the scan fails with, and the journal block it stops at: the kernel's journal
    /// recovery, and the mount, then fail.
    fn scan_error(&self) -> Option<(&str, u64)>;
    /// A fast commit of the expected transaction whose end fails its checksum: a fast-commit
    /// write in flight. The journal block of that end.
    fn torn_end(&self) -> Option<u64>;
}

/// Whether the kernel replays the area after the jbd2 passes: the scan did not fail and it
/// holds valid tags (`fc_do_one_pass` only replays what the scan pass accepted).
pub fn replays<A: FastCommitArea>(area: &A) -> bool {
    area.scan_error().is_none() && area.valid_tags() > 0
}

/// Read the area of `j` and scan it with `format` for transaction `expected_tid`; None when the
/// journal has no fast-commit area.
pub fn scan<F: FastCommitFormat>(j: &Journal, expected_tid: u32, format: &F) -> Option<F::Area> {
    if !j.sb.fast_commit() || j.fc_first == 0 {
        return None;
    }
    let mut blocks = vec![];
    let mut n = j.fc_first;
    while n < j.fc_last && n < j.total_len {
        match j.read(n) {
            Some(b) => blocks.push((n, b)),
            None => break,
        }
        n += 1;
    }
    let refs: Vec<(u64, &[u8])> = blocks.iter().map(|(n, b)| (*n, &b[..])).collect();
    Some(format.scan(&refs, expected_tid))
}
