//! `daxray journal`'s listing of a located jbd2 journal: its transactions, the fast-commit area
//! (as the file system's format reads it) and what recovery would do, as data that writes
//! itself out as text or JSON.

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

    /// Write the JSON document, pretty-printed, to `w`.
    pub fn write_json(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *w, &self.doc())?;
        w.write_all(b"\n")
    }

    /// Write the text form to `w`.
    pub fn write_text(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        render_text(w, &self.j, &self.txs, self.fc.as_ref(), self.rec.as_ref())
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

    /// The listing as JSON and text at once.
    pub fn into_listing(self) -> crate::report::Listing {
        let mut text = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = self.write_text(&mut text);
        crate::report::Listing {
            json: self.json_value(),
            text: String::from_utf8_lossy(&text).into_owned(),
            findings: self.findings,
        }
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

/// Append `v` in decimal, as `{}` prints it (itoa: no formatter machinery per number).
fn push_dec(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Append `v` in hexadecimal with a 0x prefix, as `{:#x}` prints it.
fn push_hex(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[(v & 15) as usize];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(b"0x");
    out.extend_from_slice(&buf[i..]);
}

/// How a listing shows a checksum: ok, BAD, or - when it was not verified.
pub fn ok_str(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "ok",
        Some(false) => "BAD",
        None => "-",
    }
}

fn render_text<A: FastCommitArea>(
    w: &mut dyn std::io::Write,
    j: &Journal,
    txs: &[list::Transaction],
    fc: Option<&A>,
    rec: Option<&RecoveryReport>,
) -> std::io::Result<()> {
    let sb = &j.sb;
    writeln!(w, "Journal: {} (jbd2 superblock v{})", j.location, sb.version)?;
    writeln!(
        w,
        "  block size {}, s_maxlen {}, s_first {}, log blocks {}..{}, fast-commit blocks {}",
        sb.block_size,
        sb.maxlen,
        sb.first,
        j.first,
        j.last,
        sb.fc_blocks()
    )?;
    writeln!(
        w,
        "  features: {}",
        if sb.features.is_empty() { "(none)".into() } else { sb.features.join(" ") }
    )?;
    writeln!(w, "  superblock checksum: {}", ok_str(sb.checksum_ok))?;
    writeln!(
        w,
        "Journal starts at block {}, transaction {}{}",
        sb.start,
        sb.sequence,
        if sb.start == 0 { " (clean)" } else { "" }
    )?;
    for r in &j.refusal {
        writeln!(w, "  REFUSED by the kernel: {r}")?;
    }
    let mut line: Vec<u8> = Vec::new();
    for t in txs {
        writeln!(
            w,
            "Transaction {} ({}{}{}): journal blocks {}..{}{}",
            t.sequence,
            if t.committed { "committed" } else { "NOT committed" },
            if t.live { "" } else { ", checkpointed" },
            match t.replayed {
                Some(true) => ", replayed",
                Some(false) if t.live => ", not replayed",
                _ => "",
            },
            t.first_block,
            t.last_block,
            t.commit_time
                .map(|c| format!(", commit time {c}.{:09}", t.commit_nsec.unwrap_or(0)))
                .unwrap_or_default()
        )?;
        // Tens of thousands of these lines: formatted by hand into one buffer, reused for every
        // transaction (a fresh large buffer each time would fault in new pages each time).
        line.clear();
        for b in &t.blocks {
            line.extend_from_slice(b"  FS block ");
            push_dec(&mut line, b.fs_block);
            line.extend_from_slice(b" logged at journal block ");
            push_dec(&mut line, b.journal_block);
            line.extend_from_slice(b" (flags ");
            push_hex(&mut line, u64::from(b.flags));
            line.extend_from_slice(b") csum ");
            line.extend_from_slice(ok_str(b.csum_ok).as_bytes());
            line.push(b'\n');
        }
        for r in &t.revokes {
            line.extend_from_slice(b"  Revoke FS block ");
            push_dec(&mut line, *r);
            line.push(b'\n');
        }
        w.write_all(&line)?;
        let c = &t.checksums;
        if sb.csum_v2v3() || sb.csum_v1() {
            writeln!(
                w,
                "  checksums: descriptors [{}] revokes [{}] commit {} crc32 {}",
                c.descriptors.iter().map(|b| ok_str(Some(*b))).collect::<Vec<_>>().join(" "),
                c.revokes.iter().map(|b| ok_str(Some(*b))).collect::<Vec<_>>().join(" "),
                ok_str(c.commit),
                ok_str(c.crc32)
            )?;
        }
    }
    if let Some(fc) = fc {
        fc.write_text(w)?;
    }
    if let Some(r) = rec {
        writeln!(w, "Recovery: needed {}, applied {}: {}", r.needed, r.applied, r.details)?;
    }
    Ok(())
}
