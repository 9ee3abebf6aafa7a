//! `daxray journal`'s listing of a located jbd2 journal: its transactions, the fast-commit area
//! (as the file system's format reads it) and what recovery would do, as data: it serializes
//! as the JSON document; rendering it as text is the caller's.

use super::fc::{FastCommitArea, FastCommitFormat};
use super::journal::Journal;
use super::{list, recover};
use crate::error::{Finding, Severity};
use crate::report::RecoveryReport;
use serde_json::json;

/// A journal listing, kept structured so that it can be written out (text or JSON) without
/// building a JSON tree of every logged block first.
pub struct JournalListing<A> {
    j: Journal,
    txs: Vec<list::Transaction>,
    fc: Option<A>,
    rec: Option<RecoveryReport>,
    findings: Vec<Finding>,
    fc_replays: bool,
}

/// The top-level JSON document of a listing. Its fields, and those of the types inside it, are
/// in alphabetical order: serialized directly they give the same bytes as the `serde_json::Value`
/// of [`JournalListing::json_value`] (whose maps sort their keys).
#[derive(serde::Serialize)]
struct ListingDoc<'a> {
    fast_commit: serde_json::Value,
    findings: &'a [Finding],
    geometry: serde_json::Value,
    journal: &'a str,
    kind: &'static str,
    recovery: serde_json::Value,
    refused: &'a [String],
    superblock: serde_json::Value,
    transactions: &'a [list::Transaction],
}

impl<A: FastCommitArea> JournalListing<A> {
    fn doc(&self) -> ListingDoc<'_> {
        let j = &self.j;
        ListingDoc {
            fast_commit: json!(self.fc),
            findings: &self.findings,
            geometry: json!({"first": j.first, "last": j.last, "total_len": j.total_len, "fc_first": j.fc_first, "fc_last": j.fc_last, "tag_bytes": j.sb.tag_bytes()}),
            journal: &j.location,
            kind: "jbd2",
            recovery: json!(self.rec),
            refused: &j.refusal,
            superblock: json!(&j.sb),
            transactions: &self.txs,
        }
    }

    /// The JSON document (`{"kind":"jbd2",...}`) as a tree.
    pub fn json_value(&self) -> serde_json::Value {
        json!(self.doc())
    }

    /// The journal listed.
    pub fn journal(&self) -> &Journal {
        &self.j
    }

    /// The transactions listed, in journal order.
    pub fn transactions(&self) -> &[list::Transaction] {
        &self.txs
    }

    /// The fast-commit area, when the journal has one.
    pub fn fast_commit(&self) -> Option<&A> {
        self.fc.as_ref()
    }

    /// What recovery would do (None for a journal device: no file system, no recovery).
    pub fn recovery(&self) -> Option<&RecoveryReport> {
        self.rec.as_ref()
    }

    /// Problems found (bad checksums, refusals...).
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Whether the kernel's recovery goes on to replay valid fast commits: what that does to
    /// the file system is for the file system to say ([`Self::replace_recovery`]).
    pub fn fast_commit_replays(&self) -> bool {
        self.fc_replays
    }

    /// Replace the recovery report with `r` (the same recovery with the file system's replay of
    /// its fast commits said), adding the findings it has that the listing did not.
    pub fn replace_recovery(&mut self, r: RecoveryReport) {
        if let Some(rep) = &self.rec {
            self.findings.extend(r.findings.iter().filter(|f| !rep.findings.contains(f)).cloned());
        }
        self.rec = Some(r);
    }
}

impl<A: FastCommitArea> serde::Serialize for JournalListing<A> {
    /// The JSON document (`{"kind":"jbd2",...}`).
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.doc().serialize(s)
    }
}

/// List the transactions of the located journal `j`; `all` includes checkpointed ones.
/// Superblock, descriptor, revoke and commit checksums are always verified; the tag checksums
/// of the logged blocks (csum v2/v3), which need every logged block read, only when
/// `verify_data` (otherwise their `csum_ok` is None, and recovery's replay pass is only
/// counted). Recovery is never applied: a listing needs only the kernel's scan and revoke
/// passes and the replay pass's bookkeeping. `needs_recovery` is the file system's flag, None
/// for a journal device (no file system: no recovery is run).
pub fn list<F: FastCommitFormat>(
    j: Journal,
    needs_recovery: Option<bool>,
    format: &F,
    all: bool,
    verify_data: bool,
) -> JournalListing<F::Area> {
    let check = if verify_data { recover::DataCheck::Verify } else { recover::DataCheck::Skip };
    let rec = needs_recovery.map(|needed| super::run_recovery(&j, needed, format, check));
    let known = rec.as_ref().and_then(|r| r.outcome.as_ref()).map(|o| &o.tag_checks);
    let tags = if verify_data { list::DataTags::Verify(known) } else { list::DataTags::Skip };
    let (mut live, end_pos) = list::live_with(&j, tags);
    if let Some(out) = rec.as_ref().and_then(|r| r.outcome.as_ref()) {
        let ok = out.replay_ran();
        for t in &mut live {
            let in_range = (t.sequence.wrapping_sub(out.start_transaction) as i32) >= 0
                && (out.end_transaction.wrapping_sub(t.sequence) as i32) > 0;
            t.replayed = Some(ok && in_range);
        }
    } else {
        for t in &mut live {
            t.replayed = Some(false);
        }
    }
    let mut txs = vec![];
    if all {
        let dirty = j.sb.start != 0;
        let stop = if dirty {
            u64::from(j.sb.start)
        } else if j.sb.head != 0 {
            u64::from(j.sb.head)
        } else {
            j.first
        };
        let from = if dirty { end_pos } else { stop };
        txs.extend(list::old_with(&j, from, stop, tags));
    }
    txs.extend(live);
    let expected =
        rec.as_ref().and_then(|r| r.outcome.as_ref()).map(|o| o.end_transaction).unwrap_or(j.sb.sequence);
    let fc = rec.as_ref().and_then(|r| r.fc.clone()).or_else(|| super::fc::scan(&j, expected, format));
    let mut findings = rec.as_ref().map(|r| r.report.findings.clone()).unwrap_or_default();
    for t in &txs {
        for b in &t.blocks {
            if b.csum_ok == Some(false) && t.live {
                findings.push(super::finding(
                    Severity::Error,
                    "jbd2 logged block",
                    Some(b.journal_block),
                    format!(
                        "transaction {}: copy of fs block {} fails its tag checksum",
                        t.sequence, b.fs_block
                    ),
                ));
            }
        }
    }
    let fc_replays = rec
        .as_ref()
        .and_then(|r| r.outcome.as_ref())
        .is_some_and(|o| o.replay_ran() && fc.as_ref().is_some_and(super::fc::replays));
    let rec = rec.map(|r| r.report);
    JournalListing { j, txs, fc, rec, findings, fc_replays }
}
