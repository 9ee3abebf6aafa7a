//! Verdicts: each claim checked against a (recovered) file-system model, with evidence.

use super::claims::Claim;
use super::search::find_data;
use crate::error::Error;
use crate::fs::{self, Extent, FileSystem, FileType};
use crate::open::{Model, RecoveryReport};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Largest claim whose bytes are read back (a store is a few bytes to a 2 MiB page).
const MAX_CLAIM_BYTES: u64 = 64 << 20;
/// Claims below which they are checked on one thread.
const PARALLEL_MIN_CLAIMS: usize = 16;
/// At most this many physical blocks are listed as evidence per claim.
const MAX_LISTED_BLOCKS: usize = 16;

/// What happened to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The range maps to written extents inside the file size and holds the claimed bytes.
    Durable,
    /// Part of the range maps to no extent (a hole), and the bytes are nowhere else either.
    LostHole,
    /// Part of the range maps to an unwritten (preallocated) extent: it reads as zeros.
    LostUnwritten,
    /// The range is a hole or unwritten after recovery, but the claimed bytes sit in a block
    /// that recovery does not map there: the mapping existed only in memory or in an
    /// uncommitted journal/log transaction.
    LostUncommitted,
    /// The file size does not cover the range (mapped or not): reads stop at the end of the
    /// file, so the bytes are not in it after recovery.
    LostBeyondEof,
    /// The range is mapped and written, but holds other bytes.
    DataDiffers,
    /// Lost in the kernel's recovered view only because the kernel's log search drops a
    /// complete, crc-valid record at a torn log sector: an exact reading of the log keeps it
    /// and the claim is durable there. Not a fault-path violation: recovery loses the work.
    LostByRecovery,
    /// The path does not exist (or is not a regular file) after recovery.
    MissingFile,
    /// The model could not read what it needed (a damaged structure): see the detail.
    Unreadable,
}

impl Status {
    /// True for every status but [`Status::Durable`].
    pub fn is_lost(self) -> bool {
        self != Status::Durable
    }

    /// The kebab-case name used in JSON and text output.
    pub fn name(self) -> &'static str {
        match self {
            Status::Durable => "durable",
            Status::LostHole => "lost-hole",
            Status::LostUnwritten => "lost-unwritten",
            Status::LostUncommitted => "lost-uncommitted",
            Status::LostBeyondEof => "lost-beyond-eof",
            Status::DataDiffers => "data-differs",
            Status::LostByRecovery => "lost-by-recovery",
            Status::MissingFile => "missing-file",
            Status::Unreadable => "unreadable",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What recovery did, as carried in each verdict's evidence.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RecoverySummary {
    /// "jbd2", "xfs-log" or "none".
    pub kind: String,
    /// The journal/log held work the kernel would replay.
    pub needed: bool,
    /// The view includes that replay.
    pub applied: bool,
}

/// Why a verdict is what it is.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Evidence {
    /// The inode the path resolved to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ino: Option<u64>,
    /// The file size after recovery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// File-system block size.
    pub block_size: u32,
    /// The extents (file-system blocks) that intersect the claimed range.
    pub extents: Vec<Extent>,
    /// Physical blocks (from the file system's start) holding the range, in file order.
    pub blocks: Vec<u64>,
    /// Blocks of the range that map to nothing.
    pub hole_blocks: u64,
    /// Blocks of the range that map to unwritten extents.
    pub unwritten_blocks: u64,
    /// SHA-256 of the bytes found at the range (when it was read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found_sha256: Option<String>,
    /// Physical blocks that hold the claimed bytes although recovery does not map them there.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub data_found_at: Vec<u64>,
    /// Journal/log state relevant to a lost mapping (from the recovery report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction: Option<serde_json::Value>,
    /// What recovery did before the check.
    pub recovery: Option<RecoverySummary>,
    /// A sentence for people.
    pub detail: String,
}

/// One claim and its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The claim checked.
    pub claim: Claim,
    /// The verdict.
    pub verdict: Status,
    /// Why.
    pub evidence: Evidence,
}

/// Check claims against an opened model (the view after in-memory recovery, unless raw).
pub fn check_model(model: &Model, claims: &[Claim]) -> Vec<Verdict> {
    check_claims(&*model.fs, &model.recovery, claims)
}

/// Check every claim against `fs` (already recovered as `recovery` says).
pub fn check_claims(fs: &dyn FileSystem, recovery: &RecoveryReport, claims: &[Claim]) -> Vec<Verdict> {
    let summary = RecoverySummary {
        kind: recovery.kind.to_string(),
        needed: recovery.needed,
        applied: recovery.applied,
    };
    let check_part = |part: &[Claim]| -> Vec<Verdict> {
        // Each worker indexes the directories its paths go through once.
        let paths = fs::Resolver::new(fs);
        part.iter()
            .map(|c| {
                let (verdict, mut evidence) = check_one(fs, &paths, c);
                evidence.recovery = Some(summary.clone());
                Verdict { claim: c.clone(), verdict, evidence }
            })
            .collect()
    };
    // Claims are independent: read and hash them on every core (a paused state's check is on
    // the replay engine's critical path).
    let threads = crate::cores().min(4);
    let mut verdicts: Vec<Verdict> = if threads < 2 || claims.len() < PARALLEL_MIN_CLAIMS {
        check_part(claims)
    } else {
        let chunk = claims.len().div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> =
                claims.chunks(chunk).map(|part| s.spawn(move || check_part(part))).collect();
            // A worker that panicked is checked again here, so that its panic surfaces.
            claims
                .chunks(chunk)
                .zip(handles)
                .flat_map(|(part, h)| h.join().unwrap_or_else(|_| check_part(part)))
                .collect()
        })
    };

    // Lost mappings: look for the claimed bytes anywhere on the media. Found there, the data
    // reached the media but the mapping to it did not survive recovery.
    let lost: Vec<usize> = verdicts
        .iter()
        .enumerate()
        .filter(|(_, v)| {
            matches!(v.verdict, Status::LostHole | Status::LostUnwritten)
                || (v.verdict == Status::LostBeyondEof
                    && v.evidence.hole_blocks + v.evidence.unwritten_blocks > 0)
        })
        .map(|(i, _)| i)
        .collect();
    if !lost.is_empty() {
        let bs = fs.block_size();
        let wanted: Vec<(usize, u64, u64, String)> = lost
            .iter()
            .filter_map(|&i| {
                let c = &verdicts[i].claim;
                let inoff = c.offset % u64::from(bs);
                (inoff + c.len <= u64::from(bs)).then(|| (i, inoff, c.len, c.sha256.clone()))
            })
            .collect();
        let found = find_data(fs.source(), bs, &wanted);
        let tx = transaction_evidence(recovery);
        for (i, blocks) in found {
            if let Some(v) = verdicts.get_mut(i) {
                v.verdict = Status::LostUncommitted;
                v.evidence.data_found_at = blocks;
                v.evidence.transaction = tx.clone();
                v.evidence.detail = format!(
                    "{}; the claimed bytes are on the media at physical {}, which recovery does not map at this offset",
                    v.evidence.detail,
                    blocks_text(&runs(v.evidence.data_found_at.iter().map(|b| (*b, 1))))
                );
            }
        }
    }
    verdicts
}

/// Give [`Status::LostByRecovery`] to the claims lost in the kernel's recovered view (its
/// `recovery` report says the kernel drops log records at a torn sector) that are durable in
/// the view of the same media (`raw`, opened with `opts`) with the log read in exact blocks.
pub fn mark_lost_by_recovery(
    verdicts: &mut [Verdict],
    recovery: &RecoveryReport,
    raw: std::sync::Arc<dyn crate::image::BlockSource>,
    kind: fs::FsKind,
    opts: &crate::open::OpenOptions,
) {
    let dropped = recovery.details.get("dropped_by_kernel").filter(|d| !d.is_null());
    let Some(dropped) = dropped else { return };
    let lost: Vec<usize> = verdicts
        .iter()
        .enumerate()
        .filter(|(_, v)| v.verdict.is_lost() && v.verdict != Status::Unreadable)
        .map(|(i, _)| i)
        .collect();
    if lost.is_empty() {
        return;
    }
    let exact_opts = crate::open::OpenOptions { exact_log_head: true, ..opts.clone() };
    let Ok(exact) = crate::open::open_source(raw, kind, &exact_opts) else { return };
    let claims: Vec<Claim> = lost.iter().map(|&i| verdicts[i].claim.clone()).collect();
    let there = check_claims(&*exact.fs, &exact.recovery, &claims);
    for (&i, e) in lost.iter().zip(there) {
        if e.verdict == Status::Durable {
            let v = &mut verdicts[i];
            v.evidence.detail = format!(
                "{} (after the kernel's recovery); durable when the log is read in exact blocks: the kernel's reads of {}-byte log sectors drop the record(s) at log block(s) {} that hold it",
                v.evidence.detail,
                dropped.get("sector_bytes").and_then(|x| x.as_u64()).unwrap_or(0),
                dropped
                    .get("records")
                    .and_then(|r| r.as_array())
                    .map(|r| r
                        .iter()
                        .filter_map(|x| x.get("block")?.as_u64())
                        .map(|b| b.to_string())
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default(),
            );
            v.evidence.transaction = Some(dropped.clone());
            v.verdict = Status::LostByRecovery;
        }
    }
}

/// Counts of verdicts by status, in status order.
pub fn summarize(verdicts: &[Verdict]) -> BTreeMap<Status, usize> {
    let mut m = BTreeMap::new();
    for v in verdicts {
        *m.entry(v.verdict).or_insert(0) += 1;
    }
    m
}

/// The parts of a recovery report's details that describe transactions not replayed.
fn transaction_evidence(r: &RecoveryReport) -> Option<serde_json::Value> {
    let d = r.details.as_object()?;
    let mut out = serde_json::Map::new();
    for (k, v) in d {
        let k_l = k.to_ascii_lowercase();
        if [
            "uncommit",
            "incomplete",
            "torn",
            "discard",
            "running",
            "sequence",
            "head",
            "tail",
            "transaction",
            "commit",
            "s_start",
            "state",
        ]
        .iter()
        .any(|w| k_l.contains(w))
            && !v.is_array()
        {
            out.insert(k.clone(), v.clone());
        }
    }
    out.insert("recovery".into(), serde_json::Value::String(r.kind.to_string()));
    Some(serde_json::Value::Object(out))
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn check_one(fs: &dyn FileSystem, paths: &fs::Resolver<'_>, c: &Claim) -> (Status, Evidence) {
    let (status, mut ev) = check_one_inner(fs, paths, c);
    if let (Some(want), Some(got)) = (c.ino, ev.ino)
        && want != got
    {
        ev.detail =
            format!("{} (note: {} is inode {got} here, the writer saw inode {want})", ev.detail, c.path);
    }
    (status, ev)
}

fn check_one_inner(fs: &dyn FileSystem, paths: &fs::Resolver<'_>, c: &Claim) -> (Status, Evidence) {
    let bs = fs.block_size();
    let mut ev = Evidence { block_size: bs, ..Evidence::default() };
    let ino = match paths.lookup(&c.path) {
        Ok(i) => i,
        Err(Error::NotFound(what)) => {
            ev.detail = format!("{} does not exist after recovery ({what})", c.path);
            return (Status::MissingFile, ev);
        }
        Err(e) => {
            ev.detail = format!("looking up {}: {e}", c.path);
            return (Status::Unreadable, ev);
        }
    };
    ev.ino = Some(ino);
    let (file_type, size) = match fs.type_and_size(ino) {
        Ok(s) => s,
        Err(e) => {
            ev.detail = format!("stat of inode {ino}: {e}");
            return (Status::Unreadable, ev);
        }
    };
    ev.size = Some(size);
    if file_type != FileType::File {
        ev.detail = format!("{} is a {:?}, not a regular file", c.path, file_type);
        return (Status::MissingFile, ev);
    }
    let extents = match fs.map(ino) {
        Ok(e) => e,
        Err(e) => {
            ev.detail = format!("extent map of inode {ino}: {e}");
            return (Status::Unreadable, ev);
        }
    };
    let bs64 = u64::from(bs);
    // OK: Claim::validate (at parse time) proved offset + len does not overflow and len > 0;
    // saturating keeps a claim built by hand from panicking.
    let end = c.offset.saturating_add(c.len);
    let first = c.offset / bs64;
    let last = end.saturating_sub(1) / bs64;
    let mut cursor = first;
    let mut covering: Vec<Extent> = extents
        .iter()
        .filter(|e| e.logical <= last && e.logical.saturating_add(e.length) > first)
        .copied()
        .collect();
    covering.sort_by_key(|e| e.logical);
    for e in &covering {
        let s = e.logical.max(first);
        let t = e.logical.saturating_add(e.length).min(last + 1);
        if s > cursor {
            ev.hole_blocks += s - cursor;
        }
        if e.unwritten {
            ev.unwritten_blocks += t.saturating_sub(s);
        } else {
            let mut b = s;
            while b < t && ev.blocks.len() < MAX_LISTED_BLOCKS {
                ev.blocks.push(e.physical.saturating_add(b - e.logical));
                b += 1;
            }
        }
        cursor = cursor.max(t);
    }
    if cursor <= last {
        ev.hole_blocks += last + 1 - cursor;
    }
    let written = runs(covering.iter().filter(|e| !e.unwritten).map(|e| {
        let s = e.logical.max(first);
        let t = e.logical.saturating_add(e.length).min(last + 1);
        (e.physical.saturating_add(s - e.logical), t.saturating_sub(s))
    }));
    ev.extents = covering;
    let nblocks = last - first + 1;
    let range = format!("{} bytes at offset {} (file {})", c.len, c.offset, blocks_text(&[(first, nblocks)]));
    let unmapped = || {
        let mut parts = vec![];
        if ev.hole_blocks > 0 {
            parts.push(format!("{} of {nblocks} block(s) map to no extent (a hole)", ev.hole_blocks));
        }
        if ev.unwritten_blocks > 0 {
            parts.push(format!(
                "{} of {nblocks} block(s) map to unwritten extents (read as zeros)",
                ev.unwritten_blocks
            ));
        }
        parts.join(", ")
    };
    // The size first: past the end of the file nothing is read, whatever the blocks map to.
    if size < end {
        let mapping = match unmapped() {
            m if m.is_empty() => "its blocks are mapped".to_string(),
            m => m,
        };
        ev.detail =
            format!("the file size {size} does not cover {range}, which ends at byte {end}; {mapping}");
        return (Status::LostBeyondEof, ev);
    }
    if ev.hole_blocks > 0 || ev.unwritten_blocks > 0 {
        ev.detail = format!("{}: {}", range, unmapped());
        let status = if ev.hole_blocks > 0 { Status::LostHole } else { Status::LostUnwritten };
        return (status, ev);
    }
    if c.len > MAX_CLAIM_BYTES {
        ev.detail = format!("claim of {} bytes is larger than the {MAX_CLAIM_BYTES}-byte limit", c.len);
        return (Status::Unreadable, ev);
    }
    // OK to cast: c.len <= MAX_CLAIM_BYTES (64 MiB).
    let bytes = match fs.read(ino, c.offset, c.len as usize) {
        Ok(b) => b,
        Err(e) => {
            ev.detail = format!("reading {range}: {e}");
            return (Status::Unreadable, ev);
        }
    };
    let found = sha256_hex(&bytes);
    let same = found == c.sha256 && bytes.len() as u64 == c.len;
    ev.found_sha256 = Some(found);
    if same {
        ev.detail = format!("{range} map to written {}, holding the claimed bytes", blocks_text(&written));
        (Status::Durable, ev)
    } else {
        ev.detail = format!("{range} map to written {}, but hold other bytes", blocks_text(&written));
        (Status::DataDiffers, ev)
    }
}

/// Runs `(start, length)` of blocks merged where one ends where the next starts.
fn runs(blocks: impl Iterator<Item = (u64, u64)>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = vec![];
    for (b, n) in blocks.filter(|r| r.1 > 0) {
        match out.last_mut() {
            Some(last) if last.0.checked_add(last.1) == Some(b) => last.1 += n,
            _ => out.push((b, n)),
        }
    }
    out
}

/// At most this many runs of blocks are named in a sentence.
const MAX_NAMED_RUNS: usize = 8;

/// Runs of blocks in words: "block 7", "blocks 64-79", "blocks 3-4, 9, 12-15".
fn blocks_text(runs: &[(u64, u64)]) -> String {
    let one = |&(b, n): &(u64, u64)| if n == 1 { b.to_string() } else { format!("{b}-{}", b + (n - 1)) };
    let mut parts: Vec<String> = runs.iter().take(MAX_NAMED_RUNS).map(one).collect();
    if runs.len() > MAX_NAMED_RUNS {
        parts.push(format!("... ({} runs in all)", runs.len()));
    }
    let plural = runs.len() > 1 || runs.first().is_some_and(|r| r.1 > 1);
    format!("{} {}", if plural { "blocks" } else { "block" }, parts.join(", "))
}
