//! Whether a journal write was in flight when the media was copied: the evidence, read from the
//! journal past the point where the kernel's recovery stops.
//!
//! The kernel's scan (`do_one_pass`, `PASS_SCAN`) replays up to the last transaction whose
//! commit block it accepts and sets `head_block` after it; a settled journal holds, there, a
//! block of an older pass around the journal (an earlier sequence) or zeros. A block there that
//! carries the next sequence is the start of a transaction that was being written.

use super::block;
use super::fc::FastCommitArea;
use super::journal::Journal;
use super::recover::Outcome;
use super::superblock::JBD2_MAGIC;

/// What shows a write in flight at the head of the journal, if anything: a commit block that
/// fails its checksum (`j_failed_commit`), a block of the next transaction at `head_block`, or a
/// fast commit of the current transaction whose TAIL fails its crc.
pub fn write_in_flight<A: FastCommitArea>(j: &Journal, out: &Outcome, fc: Option<&A>) -> Option<String> {
    if let Some(t) = out.failed_commit {
        return Some(format!("the commit block of transaction {t} fails its checksum"));
    }
    if let Some(h) = j.read(out.head_block).as_deref().and_then(block::header)
        && h.magic == JBD2_MAGIC
        && h.sequence == out.end_transaction
    {
        return Some(format!(
            "journal block {} holds a block (type {}) of transaction {}, which has no valid commit",
            out.head_block, h.blocktype, h.sequence
        ));
    }
    let fc = fc?;
    if let Some((e, _)) = fc.scan_error() {
        return Some(format!("the fast-commit scan fails: {e}"));
    }
    fc.torn_end().map(|b| {
        format!(
            "a fast commit of transaction {} ends in journal block {b} with a TAIL whose crc fails",
            fc.expected_tid()
        )
    })
}
