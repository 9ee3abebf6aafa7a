//! ext4: the jbd2 recovery of its journal, the fast-commit replay the kernel runs inside it,
//! then the mount's orphan cleanup, and the model over the result.

use super::{Model, OpenOptions, RecoveryReport};
use crate::error::Result;
use crate::ext4::Ext4;
use crate::image::BlockSource;
use std::sync::Arc;

/// The ext4 model of `raw`, recovered as the kernel's mount would recover it.
pub fn model(raw: Arc<dyn BlockSource>, opts: &OpenOptions) -> Result<Model> {
    model_over(raw.clone(), crate::ext4::journal::recover_full(raw, opts.journal_dev.as_deref())?)
}

/// The ext4 model over a jbd2 recovery; over the media `raw` as it is when the kernel's mount
/// fails after its recovery (`RecoveryRun::refused`).
pub fn model_over(
    raw: Arc<dyn BlockSource>,
    run: crate::jbd2::RecoveryRun<crate::ext4::fastcommit::FastCommitArea>,
) -> Result<Model> {
    // The kernel's mount fails after its journal recovery: the media as it is.
    let media = |recovery| Ok(Model { view: raw.clone(), recovery, fs: Box::new(Ext4::open(raw.clone())?) });
    if run.refused.is_some() {
        return media(run.report);
    }
    let mut recovery = run.report;
    let mut ext4 = Ext4::open(run.view.clone())?;
    // Fast commits are replayed over the model of the jbd2-recovered view.
    if let Some(fc) = &run.fast_commit {
        let (replayed, failed) = crate::ext4::journal::apply_fast_commit(ext4, fc, &mut recovery);
        ext4 = replayed;
        // The replay runs inside the kernel's journal recovery (its fc_replay callback): when it
        // fails, the recovery and the mount fail, and the media is left as it is.
        if let Some(e) = failed {
            let why = format!("the kernel's fast-commit replay (ext4_fc_replay) fails at {e}");
            if let serde_json::Value::Object(m) = &mut recovery.details {
                m.insert("refused".into(), serde_json::json!([why]));
                m.insert(
                    "note".into(),
                    serde_json::json!("the kernel would not mount this file system: its fast-commit replay fails; the view is the media as it is"),
                );
            }
            recovery.applied = false;
            return media(recovery);
        }
    }
    // Then the mount's orphan cleanup (ext4_orphan_cleanup, after ext4_load_journal).
    let (ext4, orphans) = ext4.with_orphan_cleanup();
    report_orphans(&orphans, &mut recovery);
    Ok(Model { view: run.view, recovery, fs: Box::new(ext4) })
}

/// Say in `report` what the mount's orphan cleanup changes (`details.orphan_cleanup`, an info
/// finding), when it changes anything or stops early.
fn report_orphans(o: &crate::ext4::orphan::OrphanCleanup, report: &mut RecoveryReport) {
    if o.is_empty() && o.stopped.is_none() {
        return;
    }
    if let serde_json::Value::Object(m) = &mut report.details {
        m.insert("orphan_cleanup".into(), serde_json::json!(o));
    }
    let list = |v: Vec<String>| if v.is_empty() { "none".to_string() } else { v.join(", ") };
    let truncated = list(o.truncated.iter().map(|(i, b)| format!("inode {i} from block {b}")).collect());
    let deleted = list(o.deleted.iter().map(|i| format!("inode {i}")).collect());
    report.findings.push(crate::Finding {
        severity: crate::error::Severity::Info,
        structure: "ext4 orphan list".into(),
        block: None,
        offset: None,
        message: format!(
            "the mount's orphan cleanup (ext4_orphan_cleanup) truncates {truncated} and deletes {deleted}; the view shows the result{}",
            o.stopped.as_deref().map(|s| format!("; it stops early: {s}")).unwrap_or_default()
        ),
    });
}
