//! The jbd2 journal: parsing, listing and in-memory recovery, of a journal already located
//! (a block source and its geometry: [`journal::Journal`]). jbd2 knows nothing of the file system
//! that owns it: the file system finds the journal, says whether it needs recovery, and reads
//! the fast-commit area ([`fc::FastCommitFormat`], the kernel's `j_fc_replay_callback`).
//!
//! - [`superblock`], [`block`]: the on-disk structures.
//! - [`journal`]: a located journal and its block reads.
//! - [`recover`]: the kernel's three recovery passes, into memory (`winners`: the last copy of
//!   each block, which replay writes); [`head`]: a write in flight
//!   at the head.
//! - [`list`], [`listing`]: the transactions listed for `daxray journal`, as data (`cli/jbd2_text.rs`
//!   renders them).

pub mod block;
mod copycheck;
pub use copycheck::PendingChecks;
pub mod csum;
pub mod fc;
pub mod head;
pub mod journal;
pub mod list;
pub mod listing;
pub mod recover;
pub mod superblock;
pub mod tid;
mod winners;

use crate::error::{Error, Finding, Result, Severity};
use crate::image::{BlockSource, Overlay};
use crate::report::RecoveryReport;
use fc::{FastCommitArea, FastCommitFormat};
use journal::Journal;
use serde_json::json;
use std::sync::Arc;

/// A finding about the journal.
pub fn finding(sev: Severity, structure: &str, block: Option<u64>, msg: String) -> Finding {
    Finding::new(sev, structure, block, None, msg)
}

/// What recovery did, for one opened journal.
pub struct Recovered<A> {
    /// What recovery did.
    pub report: RecoveryReport,
    /// The kernel-level outcome, when the passes ran.
    pub outcome: Option<recover::Outcome>,
    /// The fast-commit area as the scan pass saw it.
    pub fc: Option<A>,
    /// Why the kernel's mount fails after this recovery, if it does.
    pub refused: Option<String>,
}

/// Run the kernel's recovery of `j` (`jbd2_journal_recover`) as far as it goes: the
/// refusals of the journal itself, a clean journal, a file system not flagged as needing it
/// (`needs_recovery` false: the kernel wipes the journal), then the three passes and the
/// fast-commit scan with `format`.
pub fn run_recovery<F: FastCommitFormat>(
    j: &Journal,
    needs_recovery: bool,
    format: &F,
    data: recover::DataCheck,
) -> Recovered<F::Area> {
    let sb = &j.sb;
    let dirty = sb.start != 0;
    let mut findings = vec![];
    let state = if dirty { "needs recovery" } else { "clean" };
    let base = json!({
        "journal": j.location,
        "journal_state": state,
        "s_sequence": sb.sequence,
        "s_start": sb.start,
        "fs_needs_recovery_flag": needs_recovery,
    });
    let mk = |needed: bool, applied: bool, details: serde_json::Value, findings: Vec<Finding>| {
        RecoveryReport { kind: "jbd2", needed, applied, details, findings }
    };
    if !j.refusal.is_empty() {
        for r in &j.refusal {
            findings.push(finding(
                Severity::Error,
                "jbd2 superblock",
                Some(0),
                format!("the kernel refuses this journal: {r}"),
            ));
        }
        let mut d = base;
        d["refused"] = json!(j.refusal);
        d["note"] = json!("the kernel would not mount this file system; the view is the media as it is");
        return Recovered { report: mk(dirty, false, d, findings), outcome: None, fc: None, refused: None };
    }
    if !dirty {
        let mut d = base;
        d["note"] = json!("journal is clean (s_start = 0): nothing to replay");
        return Recovered { report: mk(false, false, d, findings), outcome: None, fc: None, refused: None };
    }
    if !needs_recovery {
        findings.push(finding(
            Severity::Info,
            "jbd2 superblock",
            Some(0),
            "the journal holds transactions but the file system is not flagged needs_recovery: the kernel discards them without replay".into(),
        ));
        let mut d = base;
        d["note"] = json!("not replayed: ext4 needs_recovery flag is clear, the kernel wipes the journal");
        return Recovered { report: mk(false, false, d, findings), outcome: None, fc: None, refused: None };
    }
    let out = recover::recover_with(j, data);
    for p in &out.problems {
        findings.push(finding(
            if p.notice { Severity::Info } else { Severity::Error },
            "jbd2 journal block",
            Some(p.journal_block),
            format!("{:?} pass, transaction {}: {}", p.pass, p.sequence, p.message),
        ));
    }
    if let Some((pass, e)) = out.error {
        findings.push(finding(
            Severity::Error,
            "jbd2 recovery",
            None,
            format!(
                "the kernel's recovery fails in the {pass:?} pass with {}: the mount fails; the view is the media as it is",
                e.name()
            ),
        ));
    }
    let fc = fc::scan(j, out.end_transaction, format);
    let refused = kernel_refusal(&out, fc.as_ref());
    let mut d = base;
    let replayed_any = out.replay_ran();
    d["transactions"] = json!({
        "first": out.start_transaction,
        "last": out.end_transaction.wrapping_sub(1),
        "count": out.end_transaction.wrapping_sub(out.start_transaction),
        "end_transaction": out.end_transaction,
    });
    d["blocks_replayed"] = json!(out.blocks_replayed);
    d["replay_writes"] = json!(out.nr_replays);
    d["revokes"] = json!(out.nr_revokes);
    d["revoke_hits"] = json!(out.nr_revoke_hits);
    d["failed_commit"] = json!(out.failed_commit);
    d["error"] = json!(out.error.map(|(p, e)| format!("{p:?}: {}", e.name())));
    d["replayed"] = json!(replayed_any);
    d["data_checksums_verified"] = json!(out.data_verified);
    d["head_in_flight"] = json!(head::write_in_flight(j, &out, fc.as_ref()));
    if !out.data_verified {
        d["data_checksums_note"] = json!(
            "logged blocks were not read: replay counts assume every tag checksum matches (daxray journal --verify-data verifies them)"
        );
    }
    if let Some(fc) = &fc {
        d["fast_commit"] = json!({
            "tags": fc.tag_count(),
            "valid_tags": fc.valid_tags(),
            "expected_tid": fc.expected_tid(),
            "scan_end": fc.scan_end(),
            "replay_applied": false,
        });
        if let Some((e, _)) = fc.scan_error() {
            findings.push(finding(
                Severity::Error,
                "jbd2 fast-commit area",
                Some(fc.first_block()),
                format!(
                    "the kernel's fast-commit scan fails with {e}: its journal recovery, and the mount, fail; the view is the media as it is"
                ),
            ));
        }
    }
    if let Some(why) = &refused {
        if out.error.is_none() && fc.as_ref().is_none_or(|f| f.scan_error().is_none()) {
            findings.push(finding(
                Severity::Error,
                "jbd2 recovery",
                None,
                format!("{why}: the mount fails; the view is the media as it is"),
            ));
        }
        d["refused"] = json!([why]);
        d["note"] = json!(
            "the kernel would not mount this file system: its journal recovery fails; the view is the media as it is"
        );
        return Recovered { report: mk(true, false, d, findings), outcome: Some(out), fc, refused };
    }
    let applied = replayed_any && out.blocks_replayed > 0;
    Recovered { report: mk(true, applied, d, findings), outcome: Some(out), fc, refused }
}

/// Why the kernel's mount fails after its journal recovery of `out` (and the fast-commit scan
/// of `fc`), if it does, in the kernel's order: an error of the jbd2 scan pass; an error of the
/// fast-commit scan, which `fc_do_one_pass` runs at the end of the scan pass
/// (`ext4_fc_replay_scan`); an error of the revoke or replay pass (`jbd2_journal_recover`
/// returns it); a transaction whose commit failed its checksum (`j_failed_commit`, which
/// `jbd2_journal_load` turns into EFSCORRUPTED). Each ends in ext4's "error loading journal".
pub fn kernel_refusal<A: FastCommitArea>(out: &recover::Outcome, fc: Option<&A>) -> Option<String> {
    let pass_error = |pass: recover::Pass, e: recover::KernelError| {
        let why: Vec<String> = out
            .problems
            .iter()
            .filter(|p| p.pass == pass && !p.notice)
            .take(4)
            .map(|p| format!("{} [journal block {}]", p.message, p.journal_block))
            .collect();
        format!(
            "JBD2: journal recovery failed: the {pass:?} pass fails with {} ({})",
            e.name(),
            if why.is_empty() { "no detail".into() } else { why.join("; ") }
        )
    };
    if let Some((pass @ recover::Pass::Scan, e)) = out.error {
        return Some(pass_error(pass, e));
    }
    if let Some((e, at)) = fc.and_then(|f| f.scan_error()) {
        return Some(format!(
            "JBD2: journal recovery failed: the fast-commit scan fails with {e} [journal block {at}]"
        ));
    }
    if let Some((pass, e)) = out.error {
        return Some(pass_error(pass, e));
    }
    out.failed_commit.map(|t| {
        let at = out
            .problems
            .iter()
            .rev()
            .find(|p| p.sequence == t && p.pass == recover::Pass::Scan && !p.notice)
            .map(|p| format!(" [journal block {}]", p.journal_block))
            .unwrap_or_default();
        format!(
            "JBD2: journal transaction {t} is corrupt: its commit block fails its checksum (EFSCORRUPTED){at}"
        )
    })
}

/// Everything recovery produced: the view, the report, and the kernel-level outcome.
pub struct RecoveryRun<A> {
    /// The view to read through (an overlay, or the input itself).
    pub view: Arc<dyn BlockSource>,
    /// The report.
    pub report: RecoveryReport,
    /// The replayed blocks: fs block and the copy the view holds, sorted by fs block.
    pub writes: Vec<(u64, recover::Write)>,
    /// The kernel's error, if its recovery would fail.
    pub error: Option<(recover::Pass, recover::KernelError)>,
    /// The transaction whose commit failed its checksum, if any.
    pub failed_commit: Option<u32>,
    /// First transaction of the live log (s_sequence), when recovery ran.
    pub start_transaction: Option<u32>,
    /// First transaction not replayed, when recovery ran.
    pub end_transaction: Option<u32>,
    /// The fast-commit area as the kernel's scan pass sees it (valid tags marked), when the
    /// journal has fast commits and recovery ran. The replay itself needs the file-system model:
    /// the file system does it.
    pub fast_commit: Option<A>,
    /// With [`recover::DataCheck::Background`]: tag checksums still being verified; the view is the
    /// kernel's only once they are confirmed good.
    pub pending: Option<PendingChecks>,
    /// Set when the kernel's mount fails after its journal recovery, with the kernel's reason
    /// (also in the report's `details.refused`). `view` and `writes` then still hold what the
    /// jbd2 passes write, but there is no recovered file system: readers show the media as it is.
    pub refused: Option<String>,
}

impl<A> RecoveryRun<A> {
    /// fs block -> (transaction, journal block) of the copy the view holds, for replayed blocks.
    pub fn replayed(&self) -> std::collections::BTreeMap<u64, (u32, u64)> {
        self.writes.iter().map(|(blk, w)| (*blk, (w.sequence, w.journal_block))).collect()
    }
}

impl<A> RecoveryRun<A> {
    /// A run that changed nothing: `view` with `report`.
    pub fn unchanged(view: Arc<dyn BlockSource>, report: RecoveryReport) -> Self {
        RecoveryRun {
            view,
            report,
            writes: vec![],
            error: None,
            failed_commit: None,
            start_transaction: None,
            end_transaction: None,
            fast_commit: None,
            pending: None,
            refused: None,
        }
    }
}

/// Recover the located journal `j` of the file system in `fs` (blocks of `fs_block_size`
/// bytes) in memory, as the kernel's `jbd2_journal_recover` does: the view (an overlay of the
/// replayed copies over `fs`), the report and the outcome. `needs_recovery` is the file
/// system's own flag; `format` reads the fast-commit area.
pub fn recover_located<F: FastCommitFormat>(
    fs: Arc<dyn BlockSource>,
    fs_block_size: u32,
    j: &Journal,
    needs_recovery: bool,
    format: &F,
    data: recover::DataCheck,
) -> Result<RecoveryRun<F::Area>> {
    let run = RecoveryRun::unchanged;
    let rec = run_recovery(j, needs_recovery, format, data);
    let Some(mut out) = rec.outcome else { return Ok(run(fs, rec.report)) };
    let mut result = run(fs.clone(), rec.report);
    result.pending = out.pending.take();
    result.refused = rec.refused;
    result.fast_commit = rec.fc.filter(|fc| result.refused.is_none() && out.replay_ran() && fc::replays(fc));
    result.error = out.error;
    result.failed_commit = out.failed_commit;
    result.start_transaction = Some(out.start_transaction);
    result.end_transaction = Some(out.end_transaction);
    if !out.replay_ran() || out.writes.is_empty() {
        return Ok(result);
    }
    let mut ov = Overlay::new(fs, fs_block_size, "jbd2 recovery overlay")?;
    let bs = u64::from(j.bs);
    // Zero-copy: the overlay reads the journal's copy in place; only an escaped block (its
    // magic zeroed in the log) needs bytes of its own. `out.writes` is sorted by fs block.
    let refs: Vec<(u64, u64)> = out
        .writes
        .iter()
        .filter(|(_, w)| !w.escaped)
        .map(|(blk, w)| (*blk, w.journal_block.saturating_mul(bs)))
        .collect();
    let mut rejected: std::collections::HashMap<u64, Error> =
        ov.put_refs_sorted(&j.src, refs).into_iter().collect();
    for (blk, w) in out.writes.iter().filter(|(_, w)| w.escaped) {
        let put = match j.read(w.journal_block) {
            Some(b) => {
                let mut data = b.into_owned().into_boxed_slice();
                if let Some(m) = data.get_mut(..4) {
                    m.copy_from_slice(&block::JBD2_MAGIC_BYTES);
                }
                ov.put(*blk, data)
            }
            None => Err(Error::OutOfRange {
                what: "jbd2 logged block",
                offset: w.journal_block.saturating_mul(bs),
                end: u64::MAX,
                len: j.src.len(),
            }),
        };
        if let Err(e) = put {
            rejected.insert(*blk, e);
        }
    }
    let mut writes = out.writes;
    // No lookup at all in the usual case: nothing rejected.
    if !rejected.is_empty() {
        writes.retain(|(blk, w)| match rejected.remove(blk) {
            None => true,
            Some(e) => {
                result.report.findings.push(finding(
                    Severity::Error,
                    "jbd2 replay",
                    Some(w.journal_block),
                    format!("transaction {} logs fs block {blk} outside the file system: {e}", w.sequence),
                ));
                false
            }
        });
    }
    result.writes = writes;
    result.view = Arc::new(ov);
    Ok(result)
}
