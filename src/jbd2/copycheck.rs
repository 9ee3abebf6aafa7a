//! Tag checksums of the logged copies the replay pass verifies, computed by worker threads while
//! the pass (and, with [`PendingChecks`], whatever reads the recovered view) runs.

use super::block;
use super::journal::Journal;
use super::superblock::{BT_COMMIT, BT_DESCRIPTOR, BT_REVOKE, JBD2_MAGIC};
use super::tid::{is_revoked, tid_gt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

/// Logged bytes below which tag checksums are verified on one thread rather than several.
const PARALLEL_MIN_BYTES: u64 = 8 << 20;
/// Logged bytes from which one worker checks in the background ([`PendingChecks`]) rather
/// than the caller after its own work: below it, starting a thread costs more than it overlaps.
const BACKGROUND_MIN_BYTES: u64 = 1 << 20;
/// Journal blocks read with one pread (128 KiB of 4 KiB blocks).
const RUN_BLOCKS: usize = 32;
/// Copies a worker takes at a time.
const CHUNK: usize = 256;

/// A logged copy to verify: (journal block, sequence, stored tag checksum).
pub(super) type Copy = (u64, u32, u32);

/// Results by journal block: (sequence, stored checksum, 0 unknown / 1 good / 2 bad).
pub(super) type ByBlock = Vec<(u32, u32, u8)>;

/// The copies to verify and the workers' results, shared with the workers. The list itself is
/// made by the first thread that needs it (a worker, usually, while the replay pass runs).
pub(super) struct CopyChecks {
    /// A handle on the journal (it shares the source).
    j: Journal,
    /// The first transaction not replayed.
    end: u32,
    /// The revoke table: fs block -> latest revoking transaction.
    revoked: HashMap<u64, u32>,
    /// The copies in log order, and per copy: 0 unknown, 1 good, 2 bad.
    planned: OnceLock<(Vec<Copy>, Vec<AtomicU8>)>,
    /// The next copy no worker has taken.
    next: AtomicUsize,
    /// Set when nobody will ask for the results any more.
    cancel: AtomicBool,
}

impl CopyChecks {
    /// The copies the replay pass of `j` will verify (see [`plan`]), listed when first needed.
    pub(super) fn new(j: &Journal, end: u32, revoked: HashMap<u64, u32>) -> Self {
        Self {
            j: j.clone(),
            end,
            revoked,
            planned: OnceLock::new(),
            next: AtomicUsize::new(0),
            cancel: AtomicBool::new(false),
        }
    }

    /// The copies, in log order, and their results.
    fn planned(&self) -> &(Vec<Copy>, Vec<AtomicU8>) {
        self.planned.get_or_init(|| {
            let todo = plan(&self.j, self.end, |blk, seq| is_revoked(&self.revoked, blk, seq));
            let results = todo.iter().map(|_| AtomicU8::new(0)).collect();
            (todo, results)
        })
    }

    /// The copies, in log order.
    pub(super) fn todo(&self) -> &[Copy] {
        &self.planned().0
    }

    /// How many workers to start beside the calling thread for `copies` copies: none for little
    /// data, else one per other core (4 threads in all at most). In the background mode, one
    /// at least from a megabyte on.
    pub(super) fn workers(&self, copies: u64, background: bool) -> usize {
        let bytes = copies.saturating_mul(u64::from(self.j.bs));
        let threads = if bytes < PARALLEL_MIN_BYTES { 1 } else { crate::cores().min(4) };
        let min = usize::from(background && bytes >= BACKGROUND_MIN_BYTES && crate::cores() > 1);
        (threads - 1).max(min)
    }

    /// Take chunks of copies and checksum them until none is left (or the results are no longer
    /// wanted).
    pub(super) fn work(&self) {
        let mut buf = vec![0u8; RUN_BLOCKS * self.j.bs as usize];
        let (todo, results) = self.planned();
        while !self.cancel.load(Ordering::Relaxed) {
            let from = self.next.fetch_add(CHUNK, Ordering::Relaxed);
            let to = todo.len().min(from.saturating_add(CHUNK));
            let Some(part) = todo.get(from..to).filter(|p| !p.is_empty()) else { break };
            check_copies(&self.j, part, &mut buf, |k, v| {
                if let Some(slot) = results.get(from + k) {
                    slot.store(v, Ordering::Relaxed);
                }
            });
        }
    }

    /// The result for `todo[k]`: 0 unknown, 1 good, 2 bad.
    fn result(&self, k: usize) -> u8 {
        self.planned().1.get(k).map_or(0, |v| v.load(Ordering::Relaxed))
    }

    /// Checksum one copy on this thread: for a copy no worker checked (unreadable, not
    /// planned, or its worker panicked).
    fn check_here(&self, (io, seq, stored): Copy) -> bool {
        self.j.read(io).is_some_and(|data| block::tag_csum(&data, seq, &self.j.sb) == stored)
    }

    /// Whether every copy in `assumed` (those the speculative pass took as good) is good, and
    /// the results by journal block when they had to be built to say so. Call once the workers
    /// are done.
    pub(super) fn all_good(&self, assumed: &[Copy]) -> (bool, Option<ByBlock>) {
        // The pass assumed exactly the planned copies, in the same order (the usual case): their
        // results line up. Otherwise each is looked up by journal block.
        let todo = self.todo();
        if assumed == todo {
            let ok = todo.iter().enumerate().all(|(k, &c)| match self.result(k) {
                0 => self.check_here(c),
                v => v == 1,
            });
            return (ok, None);
        }
        let t = self.table();
        let ok =
            assumed.iter().all(|&(io, seq, stored)| match usize::try_from(io).ok().and_then(|i| t.get(i)) {
                Some(&(s, c, v)) if v != 0 && s == seq && c == stored => v == 1,
                _ => self.check_here((io, seq, stored)),
            });
        (ok, Some(t))
    }

    /// The results by journal block: (sequence, stored checksum, 0 unknown / 1 good / 2 bad),
    /// as the replay pass looks them up.
    pub(super) fn table(&self) -> ByBlock {
        let mut table = vec![(0u32, 0u32, 0u8); usize::try_from(self.j.total_len).unwrap_or(0)];
        for (k, &(io, seq, stored)) in self.todo().iter().enumerate() {
            if let Some(slot) = usize::try_from(io).ok().and_then(|i| table.get_mut(i)) {
                *slot = (seq, stored, self.result(k));
            }
        }
        table
    }
}

/// Start `n` workers on `checks`.
pub(super) fn spawn(checks: &Arc<CopyChecks>, n: usize) -> Vec<JoinHandle<()>> {
    (0..n)
        .filter_map(|_| {
            let c = Arc::clone(checks);
            // A thread that cannot be started leaves its share to the others and the caller.
            std::thread::Builder::new().name("jbd2-csum".into()).spawn(move || c.work()).ok()
        })
        .collect()
}

/// Tag checksums of logged copies still being verified after recovery returned its view: the
/// replay took them all as good. Whoever reads that view must [`confirm`](Self::confirm) before
/// trusting what it read; dropping this stops the workers.
pub struct PendingChecks {
    checks: Arc<CopyChecks>,
    workers: Vec<JoinHandle<()>>,
    assumed: Vec<Copy>,
}

impl PendingChecks {
    pub(super) fn new(checks: Arc<CopyChecks>, workers: Vec<JoinHandle<()>>, assumed: Vec<Copy>) -> Self {
        Self { checks, workers, assumed }
    }

    /// Help the workers finish, wait for them, and say whether every copy the replay took as
    /// good is good: true means the view is the kernel's; false means some copy fails its
    /// checksum, so the kernel would not replay it and its recovery would fail.
    pub fn confirm(mut self) -> bool {
        self.checks.work();
        // A worker that panicked leaves its results unknown (0): they are computed here.
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        self.checks.all_good(&self.assumed).0
    }
}

impl Drop for PendingChecks {
    fn drop(&mut self) {
        self.checks.cancel.store(true, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for PendingChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingChecks")
            .field("copies", &self.checks.planned.get().map(|p| p.0.len()))
            .field("workers", &self.workers.len())
            .finish()
    }
}

/// Check the copies `part` (in log order), reading runs of consecutive journal blocks with one
/// pread each into `buf`, which stays in cache: faulting 170 MiB of journal into the mapping
/// costs more than the checksums. `set(k, v)` receives the result of `part[k]`: 1 good, 2 bad,
/// 0 unreadable (checked again by the caller).
fn check_copies(j: &Journal, part: &[Copy], buf: &mut [u8], mut set: impl FnMut(usize, u8)) {
    let bs = j.bs as usize;
    let run_max = (buf.len() / bs.max(1)).max(1);
    let mut k = 0usize;
    while let Some(&(start, _, _)) = part.get(k) {
        let n =
            part[k..].iter().take(run_max).enumerate().take_while(|(i, t)| t.0 == start + *i as u64).count();
        let inside = start.checked_add(n as u64).is_some_and(|e| e <= j.total_len);
        let at = start.checked_mul(bs as u64);
        let Some(bytes) = buf.get_mut(..n * bs) else { break };
        if inside && at.is_some_and(|at| j.src.read_into(at, bytes).is_ok()) {
            for (i, (data, &(_, seq, stored))) in bytes.chunks_exact(bs).zip(&part[k..k + n]).enumerate() {
                set(k + i, if block::tag_csum(data, seq, &j.sb) == stored { 1 } else { 2 });
            }
        }
        k += n;
    }
}

/// The logged copies the replay pass will verify, in log order. Walks the log as the replay pass
/// does, from s_start until transaction `end` or the first block that is not the next expected
/// one. Copies that `revoked(fs block, sequence)` says are revoked are left out: the kernel's
/// replay pass tests the revoke table before the tag checksum and never verifies them.
fn plan(j: &Journal, end: u32, revoked: impl Fn(u64, u32) -> bool) -> Vec<Copy> {
    let sb = &j.sb;
    let mut todo: Vec<Copy> = vec![];
    let mut seq = sb.sequence;
    let mut pos = u64::from(sb.start);
    let budget = j.lap().saturating_add(2);
    let mut consumed = 0u64;
    while consumed <= budget && tid_gt(end, seq) {
        let Some(bh) = j.read(pos) else { break };
        consumed += 1;
        pos = j.wrap(pos + 1);
        let Some(h) = block::header(&bh) else { break };
        if h.magic != JBD2_MAGIC || h.sequence != seq {
            break;
        }
        match h.blocktype {
            BT_DESCRIPTOR => {
                for tag in block::tags(&bh, sb) {
                    if !revoked(tag.fs_block, seq) {
                        todo.push((pos, seq, tag.checksum));
                    }
                    pos = j.wrap(pos + 1);
                    consumed += 1;
                }
            }
            BT_COMMIT => seq = seq.wrapping_add(1),
            BT_REVOKE => {}
            _ => break,
        }
    }
    todo
}
