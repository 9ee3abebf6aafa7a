//! When the journal or log is not replayed into the view: what recovery would do under `--raw`
//! (without doing it), and why it cannot be done on an image cut short before the journal or
//! log ends.

use super::{OpenOptions, RecoveryReport};
use crate::error::{Error, Findings, Severity};
use crate::fs::{FileSystem, FsKind};
use crate::image::BlockSource;
use serde_json::json;
use std::sync::Arc;

/// The reason `--raw` reports give.
pub const RAW: &str = "--raw: the media as it is";

/// What recovery would do to `raw` (whether the journal or log holds work the kernel would
/// replay at mount), without doing it: the report of a `--raw` view.
pub fn raw_report(raw: &Arc<dyn BlockSource>, kind: FsKind, opts: &OpenOptions) -> RecoveryReport {
    let mut r = RecoveryReport::none(RAW);
    match kind {
        FsKind::Ext4 => {
            let Ok(info) = crate::ext4::journal::fs_journal_info(&**raw) else { return r };
            if !info.has_journal {
                return r;
            }
            r.kind = "jbd2";
            match crate::ext4::journal::open_journal(raw, opts.journal_dev.as_deref()) {
                Ok(Some((j, _))) => {
                    // jbd2_journal_recover replays only a journal with s_start set, and ext4
                    // only asks for it when needs_recovery is set (ext4_load_journal).
                    r.needed = info.needs_recovery && j.sb.start != 0;
                    if r.needed {
                        r.findings.push(notice(
                            "jbd2 journal",
                            format!(
                                "the journal needs recovery (needs_recovery set; transactions from sequence {} at journal block {}): --raw shows the media without replaying it",
                                j.sb.sequence, j.sb.start
                            ),
                        ));
                    }
                    r.details = json!({
                        "reason": RAW,
                        "journal": j.location,
                        "journal_state": if j.sb.start != 0 { "needs recovery" } else { "clean" },
                        "s_start": j.sb.start,
                        "s_sequence": j.sb.sequence,
                        "fs_needs_recovery_flag": info.needs_recovery,
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    r.needed = info.needs_recovery;
                    r.details = json!({
                        "reason": RAW,
                        "error": e.to_string(),
                        "fs_needs_recovery_flag": info.needs_recovery,
                    });
                }
            }
        }
        FsKind::Xfs => {
            r.kind = "xfs-log";
            match crate::xlog::analyse(raw, &opts.log_options(), false) {
                Ok(a) => {
                    let b = a.bounds.as_ref();
                    // As the recovered view decides it (`xlog::recover_view`): a log the kernel
                    // refuses still needs its recovery; a clean log or one without committed
                    // transactions does not.
                    r.needed =
                        a.refused.is_some() || b.is_some_and(|b| !b.clean && !a.parsed.committed.is_empty());
                    if let (true, Some(b)) = (r.needed, b) {
                        r.findings.push(notice(
                            "xfs log",
                            format!(
                                "the log needs recovery ({} committed transaction(s) from the tail at block {} to the head at block {}): --raw shows the media without replaying it",
                                a.parsed.committed.len(),
                                b.tail_blk,
                                b.head_blk
                            ),
                        ));
                    }
                    r.details = json!({
                        "reason": RAW,
                        "device": a.device,
                        "head": b.map(|b| json!({"block": b.head_blk, "cycle": b.head_cycle})),
                        "tail": b.map(|b| json!({"block": b.tail_blk, "cycle": b.tail_cycle})),
                        "state": match b { None => "empty", Some(b) if b.clean => "clean", _ => "dirty" },
                        "transactions": a.parsed.committed.len(),
                        "refused": a.refused.map(|w| vec![w]),
                    });
                }
                Err(e) => r.details = json!({ "reason": RAW, "error": e.to_string() }),
            }
        }
    }
    r
}

/// An info finding about `structure`.
fn notice(structure: &str, message: String) -> crate::Finding {
    crate::Finding::new(Severity::Info, structure, None, None, message)
}

/// Why the journal or log of the file system in `raw` cannot be replayed because the image ends
/// before it does (a truncated copy), if it does: "the journal lies past the end of the image
/// (...)". None when the image holds the whole file system, or the journal is elsewhere.
pub fn past_end(raw: &Arc<dyn BlockSource>, kind: FsKind) -> Option<String> {
    let len = raw.len();
    match kind {
        FsKind::Ext4 => {
            let info = crate::ext4::journal::fs_journal_info(&**raw).ok()?;
            let bs = u64::from(info.block_size);
            if !info.has_journal || info.journal_inum == 0 || info.blocks_count.saturating_mul(bs) <= len {
                return None;
            }
            let ends = format!("the image ends at byte {len}, block {}", len / bs);
            let ino = u64::from(info.journal_inum);
            let ext4 = crate::ext4::Ext4::open(raw.clone()).ok()?;
            match ext4.map(ino) {
                Err(Error::OutOfRange { offset, .. }) => Some(format!(
                    "the journal lies past the end of the image (its inode {ino} at byte {offset}, block {}; {ends})",
                    offset / bs
                )),
                Err(e) => Some(format!("the journal inode {ino} cannot be read ({e}; {ends})")),
                Ok(extents) => {
                    let nblocks = len / bs;
                    let e = extents.iter().find(|e| e.physical.saturating_add(e.length) > nblocks)?;
                    let fs_block = e.physical.max(nblocks);
                    Some(format!(
                        "the journal lies past the end of the image (journal block {} at block {fs_block}; {ends})",
                        e.logical + (fs_block - e.physical)
                    ))
                }
            }
        }
        FsKind::Xfs => {
            let head = raw.read_at(0, len.min(4096) as usize).ok()?;
            let sb = crate::xfs::Superblock::parse(&head, &Findings::new()).ok()?;
            let bs = u64::from(sb.blocksize());
            let start = sb.logstart_linear()?;
            let blocks = u64::from(sb.logblocks());
            let (from, to) = (start.saturating_mul(bs), start.saturating_add(blocks).saturating_mul(bs));
            (to > len).then(|| {
                format!(
                    "the log lies past the end of the image (log at blocks {start}-{}, bytes {from}-{}; the image ends at byte {len}, block {})",
                    start.saturating_add(blocks).saturating_sub(1),
                    to.saturating_sub(1),
                    len / bs
                )
            })
        }
    }
}

/// Say in `r` that its recovery is impossible on `raw` when it is needed, not applied, and the
/// journal or log lies past the end of the image (`details.impossible`, an error finding).
pub fn explain(raw: &Arc<dyn BlockSource>, kind: FsKind, r: &mut RecoveryReport) {
    if r.applied || !r.needed {
        return;
    }
    if let Some(why) = past_end(raw, kind) {
        impossible(r, why);
    }
}

/// Mark `r` impossible for `why`, with an error finding.
fn impossible(r: &mut RecoveryReport, why: String) {
    let structure = if r.kind == "xfs-log" { "xfs log" } else { "jbd2 journal" };
    r.findings.push(crate::Finding::new(
        Severity::Error,
        structure,
        None,
        None,
        format!("recovery is impossible: {why}; the view is the media as it is"),
    ));
    if !r.details.is_object() {
        r.details = json!({});
    }
    r.details["impossible"] = json!(why);
}

/// The report of an XFS log that could not be read at all (`error`): the view is the media as
/// it is. Whether recovery is needed is then unknown (`needed` false).
pub fn unreadable_log(raw: &Arc<dyn BlockSource>, error: &Error) -> RecoveryReport {
    let mut r = RecoveryReport {
        kind: "xfs-log",
        needed: false,
        applied: false,
        details: json!({ "error": error.to_string(), "note": "the log cannot be read: the view is the media as it is" }),
        findings: vec![],
    };
    let why = past_end(raw, FsKind::Xfs).unwrap_or_else(|| format!("the log cannot be read: {error}"));
    impossible(&mut r, why);
    r
}
