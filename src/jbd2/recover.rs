//! Journal recovery exactly as the kernel's `fs/jbd2/recovery.c` does it: three passes over the
//! log (scan, revoke, replay), with its rules for checksums, async commit and revokes. The
//! replayed blocks are collected in memory; nothing is written.

use super::block::{self, FLAG_ESCAPE};
use super::copycheck::{self, CopyChecks, PendingChecks};
use super::csum;
use super::journal::Journal;
use super::superblock::{BT_COMMIT, BT_DESCRIPTOR, BT_REVOKE, INCOMPAT_ASYNC_COMMIT, JBD2_MAGIC};
use super::tid::{is_revoked, tid_geq, tid_gt};
pub use super::winners::Write;
use super::winners::{count_distinct, last_writers};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// The recovery passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pass {
    /// Find the end of the log, verify checksums.
    Scan,
    /// Collect revoke records.
    Revoke,
    /// Write the logged blocks.
    Replay,
}

/// Why the kernel's recovery would fail (the mount then fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum KernelError {
    /// EFSCORRUPTED: a read outside the journal.
    Corrupted,
    /// EFSBADCRC: a checksum that the rules do not allow to be ignored.
    BadCrc,
    /// EINVAL: a revoke block whose r_count exceeds the block.
    Invalid,
    /// EIO: passes disagreed, or a logged block failed its checksum during replay.
    Io,
}

impl KernelError {
    /// The errno name.
    pub fn name(self) -> &'static str {
        match self {
            KernelError::Corrupted => "EFSCORRUPTED",
            KernelError::BadCrc => "EFSBADCRC",
            KernelError::Invalid => "EINVAL",
            KernelError::Io => "EIO",
        }
    }
}

/// How [`recover_with`] treats the logged data blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataCheck {
    /// Verify every replayed block's tag checksum (csum v2/v3) as the kernel's replay pass
    /// does: a bad one is not replayed and fails recovery. This reads every logged block.
    Verify,
    /// Do not read the logged blocks: the replay pass only counts what it would write, as if
    /// every tag checksum matched. For listings; the outcome says the data was not verified.
    Skip,
    /// As `Verify`, except that the tag checksums may still be being verified when recovery
    /// returns: see [`recover_background`].
    Background,
}

/// Tag checksum results per journal block, from the replay pass (0 not checked, 1 good, 2 bad).
#[derive(Debug, Default, Clone)]
pub struct TagChecks(Vec<u8>);

impl TagChecks {
    /// The result recorded for journal block `n`, if the replay pass checked it.
    pub fn get(&self, n: u64) -> Option<bool> {
        match self.0.get(usize::try_from(n).ok()?) {
            Some(1) => Some(true),
            Some(2) => Some(false),
            _ => None,
        }
    }

    fn set(&mut self, n: u64, ok: bool) {
        if let Some(v) = usize::try_from(n).ok().and_then(|i| self.0.get_mut(i)) {
            *v = if ok { 1 } else { 2 };
        }
    }
}

/// A problem met during recovery.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// Pass.
    pub pass: Pass,
    /// Journal block.
    pub journal_block: u64,
    /// Transaction.
    pub sequence: u32,
    /// What.
    pub message: String,
    /// The kernel only notes it (`pr_notice`): recovery goes on as if nothing were wrong.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub notice: bool,
}

/// What recovery found and did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// First transaction expected (s_sequence).
    pub start_transaction: u32,
    /// First transaction NOT replayed (the kernel's `end_transaction`).
    pub end_transaction: u32,
    /// The transaction whose commit failed its checksum (`j_failed_commit`), if any.
    pub failed_commit: Option<u32>,
    /// Blocks written by replay (the kernel's nr_replays, counting rewrites).
    pub nr_replays: u64,
    /// Revoke records read.
    pub nr_revokes: u64,
    /// Logged blocks skipped because revoked.
    pub nr_revoke_hits: u64,
    /// Final contents per fs block: the last write of each, sorted by fs block. Empty with
    /// [`DataCheck::Skip`], which only counts them ([`Outcome::blocks_replayed`]).
    pub writes: Vec<(u64, Write)>,
    /// Distinct fs blocks the replay pass writes (`writes.len()` when they are kept).
    pub blocks_replayed: usize,
    /// Set when the kernel's recovery returns an error (mount fails): in which pass, which error.
    pub error: Option<(Pass, KernelError)>,
    /// Notable events (checksum failures, stale blocks, ...).
    pub problems: Vec<Problem>,
    /// Where the next transaction would start (`head_block`).
    pub head_block: u64,
    /// Whether the replay pass verified the logged blocks' tag checksums.
    pub data_verified: bool,
    /// Tag checksum results of the logged blocks the replay pass verified.
    pub tag_checks: TagChecks,
    /// From [`recover_background`]: the tag checksums still being verified. Until they are
    /// confirmed, the outcome is the kernel's only if every one is good.
    pub pending: Option<PendingChecks>,
}

impl Outcome {
    /// Whether the replay pass ran: recovery succeeded, or failed only during the replay pass
    /// itself (the scan and revoke passes completed).
    pub fn replay_ran(&self) -> bool {
        self.error.is_none_or(|(p, _)| p == Pass::Replay)
    }
}

struct Recovery<'a> {
    j: &'a Journal,
    data: DataCheck,
    /// Tag checksum results computed ahead of the replay pass (in parallel), per journal block:
    /// (sequence, stored tag checksum, 0 unknown / 1 good / 2 bad).
    pre: Vec<(u32, u32, u8)>,
    /// Replay writes in pass order (fs block, write); the last writer of a block wins.
    pending: Vec<(u64, Write)>,
    out: Outcome,
    /// Revoked fs block -> the newest revoking transaction.
    revoked: HashMap<u64, u32>,
    /// Tags the scan pass stepped over: what the replay pass may write, to reserve once.
    tags_scanned: u64,
    /// Set while the replay pass runs ahead of the checksum workers: every tag checksum is
    /// taken as good and noted in `assumed` (journal block, sequence, stored checksum), to be
    /// confirmed when the workers are done.
    speculate: bool,
    assumed: Vec<(u64, u32, u32)>,
    /// With [`DataCheck::Skip`]: the fs block of each write, to count the distinct ones.
    skipped: Vec<u64>,
}

enum Step {
    /// Leave the pass normally (the kernel's `break` / `goto done`).
    Done,
    /// Leave the pass with an error (`goto failed`).
    Failed(KernelError),
}

impl<'a> Recovery<'a> {
    fn problem(&mut self, pass: Pass, journal_block: u64, sequence: u32, message: String) {
        if self.out.problems.len() < 10_000 {
            self.out.problems.push(Problem { pass, journal_block, sequence, message, notice: false });
        }
    }

    fn notice(&mut self, pass: Pass, journal_block: u64, sequence: u32, message: String) {
        let before = self.out.problems.len();
        self.problem(pass, journal_block, sequence, message);
        if self.out.problems.len() > before
            && let Some(p) = self.out.problems.last_mut()
        {
            p.notice = true;
        }
    }

    fn set_revoke(&mut self, blk: u64, seq: u32) {
        self.revoked
            .entry(blk)
            .and_modify(|s| {
                if tid_gt(seq, *s) {
                    *s = seq
                }
            })
            .or_insert(seq);
    }

    fn test_revoke(&self, blk: u64, seq: u32) -> bool {
        is_revoked(&self.revoked, blk, seq)
    }

    /// One pass (`do_one_pass`); Err when the kernel's pass returns an error.
    fn pass(&mut self, pass: Pass) -> Result<(), KernelError> {
        let j = self.j;
        let sb = &j.sb;
        let mut c = Cursor {
            next_commit: sb.sequence,
            next_log_block: u64::from(sb.start),
            head_block: u64::from(sb.start),
            crc32_sum: !0,
            need_check_commit_time: false,
            last_trans_commit_time: 0,
            success: None,
            block_error: false,
            consumed: 0,
        };
        if pass == Pass::Scan {
            self.out.start_transaction = c.next_commit;
        }
        // Bound: a log is at most one lap; anything longer loops over itself.
        let budget = j.lap().saturating_add(2);

        let step = loop {
            if pass != Pass::Scan && tid_geq(c.next_commit, self.out.end_transaction) {
                break Step::Done;
            }
            if c.consumed > budget {
                self.problem(
                    pass,
                    c.next_log_block,
                    c.next_commit,
                    "log runs longer than one lap of the journal; stopping".into(),
                );
                break Step::Done;
            }
            let this_block = c.next_log_block;
            let Some(bh) = j.read(this_block) else {
                self.problem(pass, this_block, c.next_commit, "journal block outside the journal".into());
                break Step::Failed(KernelError::Corrupted);
            };
            c.consumed += 1;
            c.next_log_block = j.wrap(c.next_log_block + 1);
            let Some(h) = block::header(&bh) else { break Step::Done };
            if h.magic != JBD2_MAGIC || h.sequence != c.next_commit {
                break Step::Done;
            }
            let leave = match h.blocktype {
                BT_DESCRIPTOR => self.descriptor(pass, &mut c, this_block, &bh),
                BT_COMMIT => self.commit(pass, &mut c, this_block, &bh),
                BT_REVOKE => self.revoke_block(pass, &mut c, this_block, &bh),
                _ => Some(Step::Done),
            };
            if let Some(step) = leave {
                break step;
            }
        };
        if let Step::Failed(e) = step {
            return Err(e);
        }
        let mut success = c.success;
        if pass == Pass::Scan {
            if self.out.end_transaction == 0 {
                self.out.end_transaction = c.next_commit;
            }
            if self.out.head_block == 0 {
                self.out.head_block = c.next_log_block;
            }
        } else if self.out.end_transaction != c.next_commit {
            self.problem(
                pass,
                c.next_log_block,
                c.next_commit,
                format!("pass ended at transaction {}, expected {}", c.next_commit, self.out.end_transaction),
            );
            if success.is_none() {
                success = Some(KernelError::Io);
            }
        }
        if c.block_error && success.is_none() {
            success = Some(KernelError::Io);
        }
        match success {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// A descriptor block at `this_block`: its tags are stepped over (scan, with the v1
    /// checksum of the logged blocks summed; revoke) or replayed (replay). None: the pass goes
    /// on.
    fn descriptor(&mut self, pass: Pass, c: &mut Cursor, this_block: u64, bh: &[u8]) -> Option<Step> {
        let j = self.j;
        let sb = &j.sb;
        if sb.csum_v2v3() && !block::tail_csum_ok(bh, sb) {
            if pass != Pass::Scan {
                self.problem(pass, this_block, c.next_commit, "descriptor block checksum".into());
                return Some(Step::Failed(KernelError::BadCrc));
            }
            c.need_check_commit_time = true;
            self.problem(pass, this_block, c.next_commit, "descriptor block checksum does not match".into());
        }
        if pass == Pass::Replay {
            self.replay_tags(pass, c, bh);
            return None;
        }
        let ntags = block::descriptor_tag_count(bh, sb);
        if pass == Pass::Scan {
            self.tags_scanned = self.tags_scanned.saturating_add(ntags as u64);
        }
        if pass == Pass::Scan && sb.csum_v1() && !c.need_check_commit_time && self.out.end_transaction == 0 {
            c.crc32_sum = csum::crc32_be(c.crc32_sum, bh);
            for _ in 0..ntags {
                let io = c.next_log_block;
                c.next_log_block = j.wrap(c.next_log_block + 1);
                c.consumed += 1;
                match j.read(io) {
                    Some(obh) => c.crc32_sum = csum::crc32_be(c.crc32_sum, &obh),
                    None => return Some(Step::Done),
                }
            }
            return None;
        }
        c.next_log_block = j.wrap(c.next_log_block + ntags as u64);
        c.consumed += ntags as u64;
        None
    }

    /// The replay pass over the tags of descriptor block `bh`: each logged block not revoked
    /// and whose tag checksum holds is a write.
    fn replay_tags(&mut self, pass: Pass, c: &mut Cursor, bh: &[u8]) {
        let j = self.j;
        let sb = &j.sb;
        let sequence = c.next_commit;
        for tag in block::tags(bh, sb) {
            let io = c.next_log_block;
            c.next_log_block = j.wrap(c.next_log_block + 1);
            c.consumed += 1;
            // Skip: the block is not read, only checked to be inside the journal.
            let obh = match self.data {
                DataCheck::Verify | DataCheck::Background => j.read(io),
                DataCheck::Skip => (io < j.total_len).then_some(std::borrow::Cow::Borrowed(&[][..])),
            };
            let Some(obh) = obh else {
                c.success = Some(KernelError::Corrupted);
                self.problem(pass, io, sequence, "logged block outside the journal".into());
                continue;
            };
            if self.test_revoke(tag.fs_block, sequence) {
                self.out.nr_revoke_hits += 1;
                continue;
            }
            let csum_ok = match self.data {
                DataCheck::Skip => true,
                DataCheck::Verify | DataCheck::Background if self.speculate => {
                    self.assumed.push((io, sequence, tag.checksum));
                    true
                }
                DataCheck::Verify | DataCheck::Background => {
                    let pre = usize::try_from(io).ok().and_then(|i| self.pre.get(i));
                    let ok = match pre {
                        Some(&(s, ck, r)) if r != 0 && s == sequence && ck == tag.checksum => r == 1,
                        _ => block::tag_csum_ok(&obh, tag.checksum, sequence, sb),
                    };
                    self.out.tag_checks.set(io, ok);
                    ok
                }
            };
            if !csum_ok {
                c.success = Some(KernelError::BadCrc);
                c.block_error = true;
                self.problem(
                    pass,
                    io,
                    sequence,
                    format!("logged copy of fs block {} fails its tag checksum; not replayed", tag.fs_block),
                );
                continue;
            }
            self.out.nr_replays += 1;
            if self.data == DataCheck::Skip {
                // Only counted: which copy wins does not matter to a listing.
                self.skipped.push(tag.fs_block);
                continue;
            }
            let escaped = tag.flags & FLAG_ESCAPE != 0;
            self.pending.push((tag.fs_block, Write { sequence, journal_block: io, escaped }));
        }
    }

    /// A commit block at `this_block`: the transaction ends, or (a checksum that fails)
    /// recovery ends before it. None: the pass goes on with the next transaction.
    fn commit(&mut self, pass: Pass, c: &mut Cursor, this_block: u64, bh: &[u8]) -> Option<Step> {
        let sb = &self.j.sb;
        let next_commit = c.next_commit;
        let Some(cb) = block::commit(bh) else { return Some(Step::Done) };
        let commit_time = cb.commit_sec;
        if c.need_check_commit_time {
            if commit_time >= c.last_trans_commit_time {
                self.problem(
                    pass,
                    this_block,
                    next_commit,
                    format!("invalid checksum found in transaction {next_commit}"),
                );
                return Some(Step::Failed(KernelError::BadCrc));
            }
            self.problem(
                pass,
                this_block,
                next_commit,
                format!("checksum mismatch in transaction {next_commit} ignored: commit time goes back, stale data"),
            );
            return Some(Step::Done);
        }
        let mut chksum_error = false;
        if pass == Pass::Scan && sb.csum_v1() {
            if self.out.end_transaction != 0 {
                self.out.failed_commit = Some(self.out.end_transaction);
                return Some(Step::Done);
            }
            let matches = c.crc32_sum == cb.chksum0
                && cb.chksum_type == block::CHKSUM_CRC32
                && cb.chksum_size == block::CHKSUM_CRC32_SIZE;
            let unused = cb.chksum_type == 0 && cb.chksum_size == 0 && cb.chksum0 == 0;
            if !(matches || unused) {
                chksum_error = true;
            } else {
                c.crc32_sum = !0;
            }
        }
        // jbd2_commit_block_csum_verify, then jbd2_commit_block_csum_verify_partial: a commit
        // block whose header is intact but whose later sectors were not written (a torn write)
        // still commits its transaction.
        if !chksum_error && pass == Pass::Scan && !block::commit_csum_ok(bh, sb) {
            if block::commit_csum_partial_ok(bh, sb) {
                self.notice(
                    pass,
                    this_block,
                    next_commit,
                    format!("incomplete commit block in transaction {next_commit}: only its header matches the checksum; the kernel accepts it"),
                );
            } else {
                chksum_error = true;
            }
        }
        if chksum_error {
            if commit_time < c.last_trans_commit_time {
                self.problem(
                    pass,
                    this_block,
                    next_commit,
                    format!("commit checksum mismatch in transaction {next_commit} ignored: commit time goes back, stale data"),
                );
                return Some(Step::Done);
            }
            self.problem(
                pass,
                this_block,
                next_commit,
                format!("commit block checksum of transaction {next_commit} does not match; recovery ends before it"),
            );
            self.out.end_transaction = next_commit;
            self.out.head_block = c.head_block;
            if !sb.has_incompat(INCOMPAT_ASYNC_COMMIT) {
                self.out.failed_commit = Some(next_commit);
                return Some(Step::Done);
            }
        }
        if pass == Pass::Scan {
            c.last_trans_commit_time = commit_time;
            c.head_block = c.next_log_block;
        }
        c.next_commit = next_commit.wrapping_add(1);
        None
    }

    /// A revoke block at `this_block`: its checksum checked (scan), its blocks revoked
    /// (revoke). None: the pass goes on.
    fn revoke_block(&mut self, pass: Pass, c: &mut Cursor, this_block: u64, bh: &[u8]) -> Option<Step> {
        let sb = &self.j.sb;
        if pass == Pass::Scan && !block::tail_csum_ok(bh, sb) {
            c.need_check_commit_time = true;
            self.problem(pass, this_block, c.next_commit, "revoke block checksum does not match".into());
        }
        if pass != Pass::Revoke {
            return None;
        }
        let Some(r) = block::revoke(bh, sb) else { return Some(Step::Done) };
        if !r.r_count_ok {
            self.problem(
                pass,
                this_block,
                c.next_commit,
                format!("revoke block r_count {} exceeds the block", r.r_count),
            );
            return Some(Step::Failed(KernelError::Invalid));
        }
        for b in r.blocks {
            self.set_revoke(b, c.next_commit);
            self.out.nr_revokes += 1;
        }
        None
    }
}

/// Where a pass is in the log and what it has seen so far (the locals of `do_one_pass`).
struct Cursor {
    next_commit: u32,
    next_log_block: u64,
    /// The block after the last commit the scan accepted.
    head_block: u64,
    /// The running csum v1 checksum of the transaction's blocks.
    crc32_sum: u32,
    /// A descriptor or revoke block failed its checksum: the commit time decides.
    need_check_commit_time: bool,
    last_trans_commit_time: u64,
    /// The error the pass returns once it ends (`success` in the kernel).
    success: Option<KernelError>,
    block_error: bool,
    /// Journal blocks stepped over, against the one-lap bound.
    consumed: u64,
}

/// Run the kernel's recovery over a journal whose `s_start` is non-zero, verifying every
/// replayed block's tag checksum as the kernel does.
pub fn recover(j: &Journal) -> Outcome {
    recover_with(j, DataCheck::Verify)
}

/// Run the kernel's recovery passes; `data` says whether the replay pass reads and verifies
/// the logged blocks (the kernel does), leaves their checksums to the background, or only
/// counts them (listings).
pub fn recover_with(j: &Journal, data: DataCheck) -> Outcome {
    run(j, data)
}

/// [`recover_with`] `DataCheck::Verify`, except that the tag checksums are still being verified
/// when it returns: the outcome takes every one as good, and [`Outcome::pending`] says whether
/// that holds. Whoever reads the recovered view meanwhile overlaps the checksums, which are most
/// of recovery's work; if one fails, the whole recovery must run again with [`recover_with`].
pub fn recover_background(j: &Journal) -> Outcome {
    run(j, DataCheck::Background)
}

fn run(j: &Journal, data: DataCheck) -> Outcome {
    // The replay pass reads and verifies the copies in both verifying modes: the background
    // one only changes who waits for their checksums.
    let verify = data != DataCheck::Skip;
    let mut out = Outcome { data_verified: verify, ..Outcome::default() };
    if verify {
        // One byte per journal block: bounded by the journal, which is bounded by the image.
        out.tag_checks = TagChecks(vec![0; usize::try_from(j.total_len).unwrap_or(0)]);
    }
    let mut r = Recovery {
        j,
        data,
        pre: vec![],
        pending: vec![],
        out,
        revoked: HashMap::new(),
        tags_scanned: 0,
        speculate: false,
        assumed: vec![],
        skipped: vec![],
    };
    for pass in [Pass::Scan, Pass::Revoke, Pass::Replay] {
        let res = if pass != Pass::Replay {
            r.pass(pass)
        } else {
            // Bounded: a tag steps over one journal block, and the scan stops after one lap.
            r.pending.reserve(usize::try_from(r.tags_scanned.min(j.total_len)).unwrap_or(0));
            if data == DataCheck::Skip {
                let res = r.pass(pass);
                r.out.blocks_replayed = count_distinct(std::mem::take(&mut r.skipped));
                res
            } else if j.sb.csum_v2v3() {
                replay_verified(&mut r)
            } else {
                let res = r.pass(pass);
                r.out.writes = last_writers(std::mem::take(&mut r.pending));
                res
            }
        };
        if let Err(e) = res {
            r.out.error = Some((pass, e));
            break;
        }
    }
    if verify {
        r.out.blocks_replayed = r.out.writes.len();
    }
    r.out
}

/// The replay pass with every tag checksum verified, as the kernel's replay pass does; crc32c of
/// every logged copy is most of recovery's work, so it is spread over the cores and overlapped
/// with the pass itself:
/// 1. the copies the pass will verify are listed ([`CopyChecks`]), and workers checksum them
///    (reading runs of journal blocks with one pread each);
/// 2. meanwhile the pass runs taking every checksum as good, noting each one it assumed, and
///    the last writers are sorted;
/// 3. in the background mode ([`recover_background`]) that is the outcome, with the checks
///    still running ([`Outcome::pending`]). Otherwise this thread joins the workers: if every
///    assumed checksum is good, that is the kernel's outcome; if not, the pass runs again from
///    the same state, now with the results: a bad copy is not replayed and fails recovery,
///    exactly as without the speculation.
fn replay_verified(r: &mut Recovery<'_>) -> Result<(), KernelError> {
    let j = r.j;
    // The list of copies is made by the first worker (or by this thread when there is none),
    // while this thread runs the pass. The scan pass's tag count sizes the work.
    let checks = Arc::new(CopyChecks::new(j, r.out.end_transaction, r.revoked.clone()));
    let workers = copycheck::spawn(&checks, checks.workers(r.tags_scanned, r.data == DataCheck::Background));
    let counts = (r.out.nr_revoke_hits, r.out.nr_replays, r.out.problems.len());
    r.speculate = true;
    let res = r.pass(Pass::Replay);
    r.speculate = false;
    let writes = last_writers(std::mem::take(&mut r.pending));
    let assumed = std::mem::take(&mut r.assumed);
    // Background: the checks stay running and the outcome takes them all as good. Otherwise
    // this thread helps the workers and waits for them.
    let (workers, settled) = if r.data == DataCheck::Background {
        (workers, None)
    } else {
        checks.work();
        // A worker that panicked leaves its results unknown (0): they are computed below.
        for w in workers {
            let _ = w.join();
        }
        (vec![], Some(checks.all_good(&assumed)))
    };
    let table = match settled {
        Some((false, table)) => table,
        _ => {
            for &(io, _, _) in &assumed {
                r.out.tag_checks.set(io, true);
            }
            r.out.writes = writes;
            if r.data == DataCheck::Background {
                r.out.pending = Some(PendingChecks::new(checks, workers, assumed));
            }
            return res;
        }
    };
    // Some copy fails its checksum: run the pass again from where it started, verifying.
    (r.out.nr_revoke_hits, r.out.nr_replays) = (counts.0, counts.1);
    r.out.problems.truncate(counts.2);
    r.pending.clear();
    r.pre = table.unwrap_or_else(|| checks.table());
    let res = r.pass(Pass::Replay);
    r.out.writes = last_writers(std::mem::take(&mut r.pending));
    res
}
