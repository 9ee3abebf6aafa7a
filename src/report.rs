//! What a journal or log reader hands up about recovery: what it did to a view. Data; the
//! callers above render it.

use crate::error::Finding;
use serde::Serialize;

/// What recovery did (or would do) to the view.
#[derive(Debug, Clone, Serialize)]
pub struct RecoveryReport {
    /// "jbd2", "xfs-log" or "none".
    pub kind: &'static str,
    /// True when the journal/log held work that the kernel would replay at mount.
    pub needed: bool,
    /// True when recovery ran in memory and the view includes it.
    pub applied: bool,
    /// Details (transactions, blocks, revokes, items...), specific to the journal kind.
    pub details: serde_json::Value,
    /// Problems found in the journal/log.
    pub findings: Vec<Finding>,
}

impl RecoveryReport {
    /// The report when there is nothing to recover from (no journal, or `--raw`).
    pub fn none(reason: &str) -> Self {
        Self {
            kind: "none",
            needed: false,
            applied: false,
            details: serde_json::json!({ "reason": reason }),
            findings: vec![],
        }
    }
}
