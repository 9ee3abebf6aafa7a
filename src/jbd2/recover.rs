//! Journal recovery exactly as the kernel's `fs/jbd2/recovery.c` does it: three passes over the
//! log (scan, revoke, replay), with its rules for checksums, async commit and revokes. The
//! replayed blocks are collected in memory; nothing is written.

use super::block::{self, FLAG_ESCAPE};
use super::copycheck::{self, CopyChecks, PendingChecks};
use super::csum;
use super::journal::Journal;
use super::superblock::{BT_COMMIT, BT_DESCRIPTOR, BT_REVOKE, INCOMPAT_ASYNC_COMMIT, JBD2_MAGIC};
use super::tid::{is_revoked, tid_geq, tid_gt};
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

/// One block written by replay (the last writer of each fs block wins). The bytes are not
/// copied: they are journal block `journal_block`, with the jbd2 magic restored in the first
/// four bytes when `escaped`.
#[derive(Debug, Clone)]
pub struct Write {
    /// Transaction that logged it.
    pub sequence: u32,
    /// Journal block it was read from.
    pub journal_block: u64,
    /// The copy's first four bytes were the jbd2 magic, zeroed in the log (FLAG_ESCAPE).
    pub escaped: bool,
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

    /// One pass; Err when the kernel's pass returns an error.
    fn pass(&mut self, pass: Pass) -> Result<(), KernelError> {
        let j = self.j;
        let sb = &j.sb;
        let mut next_commit = sb.sequence;
        let mut next_log_block = u64::from(sb.start);
        let mut head_block = next_log_block;
        if pass == Pass::Scan {
            self.out.start_transaction = next_commit;
        }
        let mut crc32_sum: u32 = !0;
        let mut need_check_commit_time = false;
        let mut last_trans_commit_time = 0u64;
        let mut success: Option<KernelError> = None;
        let mut block_error = false;
        // Bound: a log is at most one lap; anything longer loops over itself.
        let budget = j.lap().saturating_add(2);
        let mut consumed = 0u64;

        let step = loop {
            if pass != Pass::Scan && tid_geq(next_commit, self.out.end_transaction) {
                break Step::Done;
            }
            if consumed > budget {
                self.problem(
                    pass,
                    next_log_block,
                    next_commit,
                    "log runs longer than one lap of the journal; stopping".into(),
                );
                break Step::Done;
            }
            let this_block = next_log_block;
            let Some(bh) = j.read(this_block) else {
                self.problem(pass, this_block, next_commit, "journal block outside the journal".into());
                break Step::Failed(KernelError::Corrupted);
            };
            consumed += 1;
            next_log_block = j.wrap(next_log_block + 1);
            let Some(h) = block::header(&bh) else { break Step::Done };
            if h.magic != JBD2_MAGIC || h.sequence != next_commit {
                break Step::Done;
            }
            match h.blocktype {
                BT_DESCRIPTOR => {
                    if sb.csum_v2v3() && !block::tail_csum_ok(&bh, sb) {
                        if pass != Pass::Scan {
                            self.problem(pass, this_block, next_commit, "descriptor block checksum".into());
                            break Step::Failed(KernelError::BadCrc);
                        }
                        need_check_commit_time = true;
                        self.problem(
                            pass,
                            this_block,
                            next_commit,
                            "descriptor block checksum does not match".into(),
                        );
                    }
                    if pass != Pass::Replay {
                        let ntags = block::descriptor_tag_count(&bh, sb);
                        if pass == Pass::Scan {
                            self.tags_scanned = self.tags_scanned.saturating_add(ntags as u64);
                        }
                        if pass == Pass::Scan
                            && sb.csum_v1()
                            && !need_check_commit_time
                            && self.out.end_transaction == 0
                        {
                            crc32_sum = csum::crc32_be(crc32_sum, &bh);
                            let mut io_failed = false;
                            for _ in 0..ntags {
                                let io = next_log_block;
                                next_log_block = j.wrap(next_log_block + 1);
                                consumed += 1;
                                match j.read(io) {
                                    Some(obh) => crc32_sum = csum::crc32_be(crc32_sum, &obh),
                                    None => {
                                        io_failed = true;
                                        break;
                                    }
                                }
                            }
                            if io_failed {
                                break Step::Done;
                            }
                            continue;
                        }
                        next_log_block = j.wrap(next_log_block + ntags as u64);
                        consumed += ntags as u64;
                        continue;
                    }
                    for tag in block::tags(&bh, sb) {
                        let io = next_log_block;
                        next_log_block = j.wrap(next_log_block + 1);
                        consumed += 1;
                        // Skip: the block is not read, only checked to be inside the journal.
                        let obh = match self.data {
                            DataCheck::Verify | DataCheck::Background => j.read(io),
                            DataCheck::Skip => {
                                (io < j.total_len).then_some(std::borrow::Cow::Borrowed(&[][..]))
                            }
                        };
                        let Some(obh) = obh else {
                            success = Some(KernelError::Corrupted);
                            self.problem(pass, io, next_commit, "logged block outside the journal".into());
                            continue;
                        };
                        if self.test_revoke(tag.fs_block, next_commit) {
                            self.out.nr_revoke_hits += 1;
                            continue;
                        }
                        let csum_ok = match self.data {
                            DataCheck::Skip => true,
                            DataCheck::Verify | DataCheck::Background if self.speculate => {
                                self.assumed.push((io, h.sequence, tag.checksum));
                                true
                            }
                            DataCheck::Verify | DataCheck::Background => {
                                let pre = usize::try_from(io).ok().and_then(|i| self.pre.get(i));
                                let ok = match pre {
                                    Some(&(s, c, r)) if r != 0 && s == h.sequence && c == tag.checksum => {
                                        r == 1
                                    }
                                    _ => block::tag_csum_ok(&obh, tag.checksum, h.sequence, sb),
                                };
                                self.out.tag_checks.set(io, ok);
                                ok
                            }
                        };
                        if !csum_ok {
                            success = Some(KernelError::BadCrc);
                            block_error = true;
                            self.problem(
                                pass,
                                io,
                                next_commit,
                                format!(
                                    "logged copy of fs block {} fails its tag checksum; not replayed",
                                    tag.fs_block
                                ),
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
                        self.pending.push((
                            tag.fs_block,
                            Write { sequence: next_commit, journal_block: io, escaped },
                        ));
                    }
                    continue;
                }
                BT_COMMIT => {
                    let Some(c) = block::commit(&bh) else { break Step::Done };
                    let commit_time = c.commit_sec;
                    if need_check_commit_time {
                        if commit_time >= last_trans_commit_time {
                            self.problem(
                                pass,
                                this_block,
                                next_commit,
                                format!("invalid checksum found in transaction {next_commit}"),
                            );
                            break Step::Failed(KernelError::BadCrc);
                        }
                        self.problem(
                            pass,
                            this_block,
                            next_commit,
                            format!("checksum mismatch in transaction {next_commit} ignored: commit time goes back, stale data"),
                        );
                        break Step::Done;
                    }
                    let mut chksum_error = false;
                    if pass == Pass::Scan && sb.csum_v1() {
                        if self.out.end_transaction != 0 {
                            self.out.failed_commit = Some(self.out.end_transaction);
                            break Step::Done;
                        }
                        let matches = crc32_sum == c.chksum0
                            && c.chksum_type == block::CHKSUM_CRC32
                            && c.chksum_size == block::CHKSUM_CRC32_SIZE;
                        let unused = c.chksum_type == 0 && c.chksum_size == 0 && c.chksum0 == 0;
                        if !(matches || unused) {
                            chksum_error = true;
                        } else {
                            crc32_sum = !0;
                        }
                    }
                    // jbd2_commit_block_csum_verify, then jbd2_commit_block_csum_verify_partial:
                    // a commit block whose header is intact but whose later sectors were not
                    // written (a torn write) still commits its transaction.
                    if !chksum_error && pass == Pass::Scan && !block::commit_csum_ok(&bh, sb) {
                        if block::commit_csum_partial_ok(&bh, sb) {
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
                        if commit_time < last_trans_commit_time {
                            self.problem(
                                pass,
                                this_block,
                                next_commit,
                                format!("commit checksum mismatch in transaction {next_commit} ignored: commit time goes back, stale data"),
                            );
                            break Step::Done;
                        }
                        self.problem(
                            pass,
                            this_block,
                            next_commit,
                            format!("commit block checksum of transaction {next_commit} does not match; recovery ends before it"),
                        );
                        self.out.end_transaction = next_commit;
                        self.out.head_block = head_block;
                        if !sb.has_incompat(INCOMPAT_ASYNC_COMMIT) {
                            self.out.failed_commit = Some(next_commit);
                            break Step::Done;
                        }
                    }
                    if pass == Pass::Scan {
                        last_trans_commit_time = commit_time;
                        head_block = next_log_block;
                    }
                    next_commit = next_commit.wrapping_add(1);
                    continue;
                }
                BT_REVOKE => {
                    if pass == Pass::Scan && !block::tail_csum_ok(&bh, sb) {
                        need_check_commit_time = true;
                        self.problem(
                            pass,
                            this_block,
                            next_commit,
                            "revoke block checksum does not match".into(),
                        );
                    }
                    if pass != Pass::Revoke {
                        continue;
                    }
                    let Some(r) = block::revoke(&bh, sb) else { break Step::Done };
                    if !r.r_count_ok {
                        self.problem(
                            pass,
                            this_block,
                            next_commit,
                            format!("revoke block r_count {} exceeds the block", r.r_count),
                        );
                        break Step::Failed(KernelError::Invalid);
                    }
                    for b in r.blocks {
                        self.set_revoke(b, next_commit);
                        self.out.nr_revokes += 1;
                    }
                    continue;
                }
                _ => break Step::Done,
            }
        };
        if let Step::Failed(e) = step {
            return Err(e);
        }
        if pass == Pass::Scan {
            if self.out.end_transaction == 0 {
                self.out.end_transaction = next_commit;
            }
            if self.out.head_block == 0 {
                self.out.head_block = next_log_block;
            }
        } else if self.out.end_transaction != next_commit {
            self.problem(
                pass,
                next_log_block,
                next_commit,
                format!("pass ended at transaction {next_commit}, expected {}", self.out.end_transaction),
            );
            if success.is_none() {
                success = Some(KernelError::Io);
            }
        }
        if block_error && success.is_none() {
            success = Some(KernelError::Io);
        }
        match success {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
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

/// How many distinct values `blocks` holds: a bitmap when the largest is small next to the count
/// (fs block numbers of one file system), else a sort.
fn count_distinct(mut blocks: Vec<u64>) -> usize {
    let max = blocks.iter().copied().max().unwrap_or(0);
    // Bounded: at most 32 bytes of bitmap per value.
    if max / 8 <= (blocks.len() as u64).saturating_mul(32) {
        // OK to cast: max / 64 + 1 <= 4 × len, a usize.
        let mut bits = vec![0u64; (max / 64) as usize + 1];
        let mut n = 0usize;
        for b in blocks {
            let (w, m) = ((b / 64) as usize, 1u64 << (b % 64));
            if let Some(word) = bits.get_mut(w)
                && *word & m == 0
            {
                *word |= m;
                n += 1;
            }
        }
        return n;
    }
    blocks.sort_unstable();
    blocks.dedup();
    blocks.len()
}

/// The last write of each fs block, sorted by fs block, from writes in pass order.
///
/// When the fs block numbers are dense next to the writes (those of one file system), a table
/// indexed by fs block keeps each block's last write, read back in block order. Otherwise the
/// writes' indices are sorted by (fs block, index) and the last of each block's run wins.
fn last_writers(pending: Vec<(u64, Write)>) -> Vec<(u64, Write)> {
    let max = pending.iter().map(|w| w.0).max().unwrap_or(0);
    // Bounded: at most 8 slots (32 bytes) per write.
    let dense = max < (pending.len() as u64).saturating_mul(8) && u32::try_from(pending.len()).is_ok();
    if dense {
        // Slot = 1 + index of the block's last write; 0 = not written.
        // OK to cast: max < 8 × len, a usize.
        let mut last = vec![0u32; max as usize + 1];
        for (i, w) in pending.iter().enumerate() {
            if let Some(slot) = last.get_mut(w.0 as usize) {
                // OK to cast: len fits in u32 (checked above).
                *slot = i as u32 + 1;
            }
        }
        // Reserved once (pages never written are never touched): no regrowth copies.
        let mut out: Vec<(u64, Write)> = Vec::with_capacity(pending.len());
        for &i in last.iter().filter(|&&i| i != 0) {
            if let Some(w) = pending.get(i as usize - 1) {
                out.push(w.clone());
            }
        }
        return out;
    }
    let mut order: Vec<(u64, usize)> = pending.iter().enumerate().map(|(i, w)| (w.0, i)).collect();
    radix_sort_stable(&mut order);
    let mut out: Vec<(u64, Write)> = Vec::with_capacity(order.len());
    for run in order.chunk_by(|a, b| a.0 == b.0) {
        if let Some(&(blk, i)) = run.last()
            && let Some(w) = pending.get(i)
        {
            out.push((blk, w.1.clone()));
        }
    }
    out
}

/// Sort by the first field, keeping the order of equal keys (LSD radix sort, one byte a pass;
/// a pass where every key has the same byte is skipped, so fs block numbers below 2^24 take
/// three passes). Linear, unlike a comparison sort of tens of thousands of writes.
fn radix_sort_stable(v: &mut Vec<(u64, usize)>) {
    let mut tmp = vec![(0u64, 0usize); v.len()];
    for shift in (0..64).step_by(8) {
        let digit = |k: u64| ((k >> shift) & 0xFF) as usize;
        let mut counts = [0usize; 256];
        for e in v.iter() {
            counts[digit(e.0)] += 1;
        }
        if counts.contains(&v.len()) {
            continue;
        }
        let mut next = [0usize; 256];
        let mut sum = 0usize;
        for (n, c) in next.iter_mut().zip(counts) {
            *n = sum;
            sum += c;
        }
        for e in v.iter() {
            let d = digit(e.0);
            if let Some(slot) = tmp.get_mut(next[d]) {
                *slot = *e;
            }
            next[d] += 1;
        }
        std::mem::swap(v, &mut tmp);
    }
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

#[cfg(test)]
mod tests {
    use super::{Write, last_writers};
    use std::collections::BTreeMap;

    /// Both ways of finding the last writes (dense table, sort) agree with a map that keeps
    /// the last write of each block.
    #[test]
    fn last_writers_keeps_the_last_write_of_each_block() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Dense block numbers (a table), sparse ones (a sort), and block 0 and u64::MAX.
        for (n, span) in [(5000u64, 2000u64), (3000, 1 << 40), (10, 3)] {
            let mut pending: Vec<(u64, Write)> = (0..n)
                .map(|i| {
                    let blk = next() % span;
                    (blk, Write { sequence: i as u32, journal_block: next() % 100_000, escaped: i % 7 == 0 })
                })
                .collect();
            pending.push((0, Write { sequence: 1, journal_block: 1, escaped: false }));
            if span > 1 << 32 {
                pending.push((u64::MAX, Write { sequence: 2, journal_block: 2, escaped: true }));
            }
            let model: BTreeMap<u64, (u32, u64, bool)> =
                pending.iter().map(|(b, w)| (*b, (w.sequence, w.journal_block, w.escaped))).collect();
            let got: Vec<(u64, (u32, u64, bool))> = last_writers(pending)
                .into_iter()
                .map(|(b, w)| (b, (w.sequence, w.journal_block, w.escaped)))
                .collect();
            assert_eq!(got, model.into_iter().collect::<Vec<_>>(), "{n} writes over {span} blocks");
        }
    }
}
