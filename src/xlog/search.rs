//! The head and tail of the log, found as the kernel finds them at mount (`xlog_find_tail` in
//! fs/xfs/xfs_log_recover.c), with the kernel's own reads.
//!
//! `xlog_do_io` rounds the start of every log read down to a log sector and its length up to
//! whole sectors, separately, into a zeroed buffer (`xlog_alloc_buffer`) that a function may
//! reuse for later reads. On a log with 4 KiB sectors, a read that does not start on a sector
//! boundary therefore ends before the last blocks it was asked for, and the search sees zeros
//! there, or what an earlier read left in the buffer. A `Buf` keeps which log block each place
//! of such a buffer holds, so the search below sees what the kernel's sees: with the log's sector
//! size it finds the head the kernel finds; with sector size 1 ([`LogDev::exact`]) it finds the
//! head that a reader of exact 512-byte blocks finds. Where the two differ, the kernel drops
//! records that are complete on the media ([`dropped_records`]).

use super::format::*;
use super::log::LogDev;
pub use super::log::Rules;
use super::record::Record;
use crate::error::{Error, Result};
use serde::Serialize;
use zerocopy::FromBytes;

/// Blocks scanned back from a head candidate for cycle holes (`XLOG_TOTAL_REC_SHIFT`): every
/// iclog in flight at its largest.
fn total_rec_bbs(log: &LogDev) -> i64 {
    MAX_ICLOGS as i64 * rec_bbs(log)
}

/// Blocks of one record at its largest (`XLOG_REC_SHIFT`).
fn rec_bbs(log: &LogDev) -> i64 {
    let rec = if log.v2 { MAX_RECORD_BSIZE } else { HEADER_CYCLE_SIZE };
    (rec / BBSIZE) as i64
}

/// `xlog_verify_bno`: a read of `n` blocks from `blk` lies inside the log.
fn verify_bno(log: &LogDev, blk: i64, n: i64) -> bool {
    let nbb = log.nbb() as i64;
    (0..nbb).contains(&blk) && n > 0 && blk + n <= nbb
}

/// A kernel recovery buffer: which log block each of its places holds, as the reads into it
/// left them (later reads over earlier ones); places no read reached are zero.
struct Buf {
    /// (first place, blocks, first log block counted from the start of the log, not wrapped).
    reads: Vec<(i64, i64, u64)>,
    /// Places (basic blocks) in the buffer.
    cap: i64,
}

impl Buf {
    /// `xlog_alloc_buffer`: room for `n` blocks at any offset, rounded up to whole sectors with
    /// one sector more for reads of more than one block. None where the kernel's allocation
    /// fails (a length outside the log).
    fn alloc(log: &LogDev, n: i64) -> Option<Buf> {
        if !verify_bno(log, 0, n) {
            return None;
        }
        let s = log.sect_bbs() as i64;
        let mut cap = n;
        if cap > 1 && s > 1 {
            cap += s;
        }
        Some(Buf { reads: vec![], cap: round_up(cap, s) })
    }

    /// `xlog_bread`: read `n` blocks from `blk` as `xlog_do_io` does (start rounded down to a
    /// sector, length rounded up) into the start of the buffer; returns the place of `blk`.
    fn bread(&mut self, log: &LogDev, blk: i64, n: i64) -> Result<i64> {
        if !verify_bno(log, blk, n) {
            return Err(kernel_err(
                log,
                blk.max(0) as u64,
                "EFSCORRUPTED",
                format!("invalid log block/length ({blk:#x}, {n:#x}) for buffer"),
            ));
        }
        let s = log.sect_bbs() as i64;
        let start = blk - blk % s;
        let len = round_up(n, s);
        if len > self.cap {
            return Err(kernel_err(log, blk as u64, "EFSCORRUPTED", "read larger than its buffer"));
        }
        if !log.readable_phys(start as u64, len as u64) {
            return Err(Error::corrupt(
                "xfs log",
                start as u64,
                log.byte_of(0) + start as u64 * BBSIZE as u64,
                format!(
                    "the kernel's read of {len} blocks from log block {start} runs past the end of the device (EIO)"
                ),
            ));
        }
        self.reads.push((0, len, start as u64));
        Ok(blk - start)
    }

    /// The log block at place `at`, or None where the buffer is still zero.
    fn block(&self, at: i64) -> Option<u64> {
        if at < 0 || at >= self.cap {
            return None;
        }
        self.reads.iter().rev().find(|(p, l, _)| at >= *p && at < p + l).map(|(p, _, b)| b + (at - p) as u64)
    }
}

/// Round `n` up to a multiple of `s`.
fn round_up(n: i64, s: i64) -> i64 {
    (n + s - 1) / s * s
}

/// The error the kernel's search returns (the mount fails with it): `errno` and what the
/// kernel warns, at log block `blk`.
fn kernel_err(log: &LogDev, blk: u64, errno: &str, what: impl Into<String>) -> Error {
    Error::corrupt("xfs log", blk, log.byte_of(blk), format!("{} ({errno})", what.into()))
}

/// A big-endian word at byte `at` of the block a buffer place holds (0 where it is zero).
fn word(log: &LogDev, blk: Option<u64>, at: usize) -> Result<u32> {
    let Some(b) = blk else { return Ok(0) };
    let w = log.read_phys(b, at, 4)?;
    Ok(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
}

/// `xlog_get_cycle` of the block at a buffer place: the header's cycle, else the stamped first
/// word.
fn get_cycle(log: &LogDev, blk: Option<u64>) -> Result<u32> {
    let w = word(log, blk, 0)?;
    if w == HEADER_MAGIC { word(log, blk, 4) } else { Ok(w) }
}

/// The cycle of log block `blk` read alone (a one-block read is never cut by rounding).
fn cycle_of(log: &LogDev, buf: &mut Buf, blk: i64) -> Result<u32> {
    let at = buf.bread(log, blk, 1)?;
    get_cycle(log, buf.block(at))
}

/// `xlog_find_cycle_start`: binary search between `first` and `last` for the first block of
/// `cycle`.
fn find_cycle_start(log: &LogDev, buf: &mut Buf, mut first: i64, last: i64, cycle: u32) -> Result<i64> {
    let mut end = last;
    let mut mid = (first + end) >> 1;
    while mid != first && mid != end {
        if cycle_of(log, buf, mid)? == cycle {
            end = mid;
        } else {
            first = mid;
        }
        mid = (first + end) >> 1;
    }
    Ok(end)
}

/// `xlog_find_verify_cycle`: the first block in `start..start + n` whose cycle is `stop`, read
/// in chunks into one buffer: chunks of `roundup_pow_of_two(n)` blocks since Linux 6.7 (and
/// xfsprogs 6.7), of `1 << ffs(n)` before ([`Rules`]). With small chunks, a chunk that starts
/// inside a log sector ends before its last blocks, which then read as zeros (cycle 0).
fn find_verify_cycle(log: &LogDev, start: i64, n: i64, stop: u32) -> Result<Option<i64>> {
    let mut bufblks: i64 = match log.rules() {
        Rules::Linux6_7 => (n.max(1) as u64).next_power_of_two().min(1 << 62) as i64,
        Rules::Before6_7 => 1 << (if n == 0 { 0 } else { n.trailing_zeros() + 1 }).min(62),
    };
    while bufblks > log.nbb() as i64 {
        bufblks >>= 1;
    }
    let mut buf = loop {
        match Buf::alloc(log, bufblks) {
            Some(b) => break b,
            None => {
                bufblks >>= 1;
                if bufblks < log.sect_bbs() as i64 {
                    return Err(kernel_err(
                        log,
                        start.max(0) as u64,
                        "ENOMEM",
                        "no buffer for the cycle search",
                    ));
                }
            }
        }
    };
    let mut i = start;
    while i < start + n {
        let bcount = bufblks.min(start + n - i);
        let at = buf.bread(log, i, bcount)?;
        for j in 0..bcount {
            if get_cycle(log, buf.block(at + j))? == stop {
                return Ok(Some(i + j));
            }
        }
        i += bufblks;
    }
    Ok(None)
}

/// `xlog_find_verify_log_record`: back up from `*last` to the last record header at or after
/// `start`, reading `start..*last` into one buffer; if that record does not end exactly at
/// `*last` (`extra` blocks already seen at the start of the log count too), move `*last` to its
/// header. Returns true when the search hit block 0 without finding a header.
fn find_verify_log_record(log: &LogDev, start: i64, last: &mut i64, extra: i64) -> Result<bool> {
    let num = *last - start;
    let (mut buf, mut at, small) = match Buf::alloc(log, num) {
        Some(mut b) => {
            let at = b.bread(log, start, num)? + num - 1;
            (b, at, false)
        }
        None => (Buf::alloc(log, 1).ok_or_else(|| kernel_err(log, 0, "ENOMEM", "no buffer"))?, 0, true),
    };
    let mut i = *last - 1;
    let mut found = None;
    while i >= 0 {
        if i < start {
            return Err(kernel_err(
                log,
                i as u64,
                "EFSCORRUPTED",
                "log inconsistent (didn't find previous header)",
            ));
        }
        if small {
            at = buf.bread(log, i, 1)?;
        }
        let blk = buf.block(at);
        if word(log, blk, 0)? == HEADER_MAGIC {
            found = blk;
            break;
        }
        if !small {
            at -= 1;
        }
        i -= 1;
    }
    let Some(hblk) = found else { return Ok(true) };
    let hb = log.read_phys(hblk, 0, BBSIZE)?;
    let (h, _) = RecHeader::ref_from_prefix(&hb).map_err(|_| {
        Error::corrupt("xfs log record header", i as u64, log.byte_of(i as u64), "short block")
    })?;
    // xlog_header_check_mount: the record before the head must be this file system's.
    if let Some(uuid) = log.uuid()
        && h.fs_uuid != [0; 16]
        && h.fs_uuid != uuid
    {
        return Err(kernel_err(log, i as u64, "EFSCORRUPTED", "log has mismatched uuid - can't recover"));
    }
    let len_bbs = u64::from(h.len.get()).div_ceil(BBSIZE as u64) as i64;
    if *last - i + extra != len_bbs + log.hblks(h) as i64 {
        *last = i;
    }
    Ok(false)
}

/// `xlog_find_zeroed`: Some(first zero-cycle block) when the log has not wrapped once yet.
fn find_zeroed(log: &LogDev) -> Result<Option<i64>> {
    let nbb = log.nbb() as i64;
    let mut buf = Buf::alloc(log, 1).ok_or_else(|| kernel_err(log, 0, "ENOMEM", "no buffer"))?;
    if cycle_of(log, &mut buf, 0)? == 0 {
        return Ok(Some(0));
    }
    if cycle_of(log, &mut buf, nbb - 1)? != 0 {
        return Ok(None);
    }
    let mut last = find_cycle_start(log, &mut buf, 0, nbb - 1, 0)?;
    let scan = total_rec_bbs(log).min(last);
    let start = last - scan;
    if let Some(b) = find_verify_cycle(log, start, scan, 0)? {
        last = b;
    }
    if find_verify_log_record(log, start, &mut last, 0)? {
        return Err(kernel_err(log, start as u64, "EIO", "no record header in a partly zeroed log"));
    }
    Ok(Some(last))
}

/// `xlog_find_head`: the block after the last record written, as the kernel's reads see it.
pub fn find_head(log: &LogDev) -> Result<u64> {
    if let Some(b) = find_zeroed(log)? {
        return Ok(b as u64);
    }
    let n = log.nbb() as i64;
    let mut buf = Buf::alloc(log, 1).ok_or_else(|| kernel_err(log, 0, "ENOMEM", "no buffer"))?;
    let first_cycle = cycle_of(log, &mut buf, 0)?;
    let last_cycle = cycle_of(log, &mut buf, n - 1)?;
    let (mut head, stop) = if first_cycle == last_cycle {
        (n, last_cycle.wrapping_sub(1))
    } else {
        (find_cycle_start(log, &mut buf, 0, n - 1, last_cycle)?, last_cycle)
    };
    // Cycle holes left by out-of-order iclog writes, over every iclog that could be in flight.
    let scan = total_rec_bbs(log).min(n);
    let mut validate = false;
    if head >= scan {
        if let Some(b) = find_verify_cycle(log, head - scan, scan, stop)? {
            head = b;
        }
    } else {
        if let Some(b) = find_verify_cycle(log, n - (scan - head), scan - head, stop.wrapping_sub(1))? {
            head = b;
            validate = true;
        }
        if !validate && let Some(b) = find_verify_cycle(log, 0, head, stop)? {
            head = b;
        }
    }
    // The head must not point into the middle of a record.
    let scan = rec_bbs(log);
    let no_header = |at: i64| kernel_err(log, at.max(0) as u64, "EIO", "no record header before the head");
    if head >= scan {
        if find_verify_log_record(log, head - scan, &mut head, 0)? {
            return Err(no_header(head));
        }
    } else if find_verify_log_record(log, 0, &mut head, 0)? {
        let start = n - (scan - head);
        let mut new = n;
        if find_verify_log_record(log, start, &mut new, head)? {
            return Err(no_header(head));
        }
        if new != n {
            head = new;
        }
    }
    Ok(if head == n { 0 } else { head as u64 })
}

/// `xlog_rseek_logrec_hdr`: up to `count` headers searching back from `head` toward `tail`;
/// returns the last one found (the earliest) and how many, and whether the search wrapped.
pub fn rseek_header(log: &LogDev, head: u64, tail: u64, count: usize) -> Result<(Option<u64>, usize, bool)> {
    let mut found = 0;
    let mut last = None;
    let mut wrapped = false;
    let end = if head > tail { tail } else { 0 };
    let mut i = head;
    while i > end {
        i -= 1;
        if log.is_header(i)? {
            last = Some(i);
            found += 1;
            if found == count {
                return Ok((last, found, wrapped));
            }
        }
    }
    if tail >= head && found != count {
        let mut i = log.nbb();
        while i > tail {
            i -= 1;
            if log.is_header(i)? {
                wrapped = true;
                last = Some(i);
                found += 1;
                if found == count {
                    break;
                }
            }
        }
    }
    Ok((last, found, wrapped))
}

/// `xlog_seek_logrec_hdr`: the `count`-th record header searching forward from `tail` to
/// `head` (the last one found when there are fewer), and how many were found.
fn seek_header(log: &LogDev, head: u64, tail: u64, count: usize) -> Result<(Option<u64>, usize)> {
    let mut found = 0;
    let mut last = None;
    let end = if head > tail { head } else { log.nbb() - 1 };
    let mut i = tail;
    while i <= end {
        if log.is_header(i)? {
            last = Some(i);
            found += 1;
            if found == count {
                return Ok((last, found));
            }
        }
        i += 1;
    }
    if tail > head {
        for i in 0..head {
            if log.is_header(i)? {
                last = Some(i);
                found += 1;
                if found == count {
                    return Ok((last, found));
                }
            }
        }
    }
    Ok((last, found))
}

/// The crc pass of `xlog_do_recovery_pass` from `tail` to `head`: the block of the first record
/// that cannot be read or fails its crc (`first_bad`) and why, or Ok.
pub fn crc_pass(log: &LogDev, tail: u64, head: u64) -> std::result::Result<(), (u64, Error)> {
    let (recs, err) = log.records(tail, head, false);
    if let Some(r) = recs.iter().find(|r| !r.crc_ok) {
        let e = kernel_err(
            log,
            r.blk,
            "EFSBADCRC",
            format!("record crc mismatch: stored {:#010x}, computed {:#010x}", r.crc_stored, r.crc_calc),
        );
        return Err((r.blk, e));
    }
    match err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Distance from `head` forward to `blk` (`xlog_tail_distance`).
pub fn past_head(log: &LogDev, head: u64, blk: u64) -> u64 {
    if head < blk { blk - head } else { blk + log.nbb() - head }
}

/// `xlog_verify_tail`: the tail must point at a record, and records near the tail that fail
/// their check (overwritten by a torn head that wrapped) are skipped, as far as the iclogs in
/// flight could have reached. A record that fails farther from the head fails the mount.
fn verify_tail(log: &LogDev, head: u64, tail: &mut u64, hsize: u64) -> Result<()> {
    seek_tail(log, head, tail)?;
    let reach = (MAX_ICLOGS * hsize).div_ceil(BBSIZE as u64);
    // Each round moves the tail forward past one bad record; a log holds fewer records than
    // blocks.
    for _ in 0..=log.nbb() {
        if *tail == head {
            return Ok(());
        }
        let Err((bad, e)) = crc_pass(log, *tail, head) else { return Ok(()) };
        if past_head(log, head, bad) > reach {
            return Err(refusal(e, bad, past_head(log, head, bad), reach));
        }
        match seek_header(log, head, bad, 2)? {
            (Some(t), 2) => *tail = t,
            (found, _) => {
                return Err(kernel_err(
                    log,
                    bad,
                    "EFSCORRUPTED",
                    format!(
                        "bad record at block {bad} near the head has {} record header(s) after it: xlog_verify_tail cannot move the tail past it",
                        found.map_or(0, |_| 1)
                    ),
                ));
            }
        }
    }
    Err(kernel_err(log, *tail, "EFSCORRUPTED", "tail verification does not end"))
}

/// The first step of `xlog_verify_tail`: the tail moves to the first record header at or after
/// it (before the head).
fn seek_tail(log: &LogDev, head: u64, tail: &mut u64) -> Result<()> {
    match seek_header(log, head, *tail, 1)? {
        (Some(t), _) => {
            *tail = t;
            Ok(())
        }
        (None, _) => {
            Err(kernel_err(log, *tail, "EFSCORRUPTED", "no record header between the tail and the head"))
        }
    }
}

/// The mount failure for a bad record `dist` blocks past the head, beyond the `reach` of the
/// iclogs in flight.
fn refusal(e: Error, bad: u64, dist: u64, reach: u64) -> Error {
    let detail = match e {
        Error::Corrupt { detail, .. } => detail,
        e => e.to_string(),
    };
    Error::Corrupt {
        structure: "xfs log",
        block: bad,
        offset: 0,
        detail: format!(
            "failed to locate log tail: record at log block {bad}, {dist} blocks past the head (more than the {reach} that the iclogs in flight reach), fails: {detail}; the kernel refuses to mount"
        ),
    }
}

/// `xlog_check_unmount_rec`: is the record at `rblk` an unmount record ending at `head`? Then
/// the tail moves to the head.
fn unmount_at_head(log: &LogDev, head: u64, rblk: u64, rh: &RecHeader, tail: &mut u64) -> Result<bool> {
    let hblks = log.hblks(rh);
    let after = (rblk + hblks + u64::from(rh.len.get()).div_ceil(BBSIZE as u64)) % log.nbb();
    if head == after && rh.num_logops.get() == 1 {
        let d = log.bb(rblk + hblks)?;
        if let Ok((_, op)) = op_header(&d)
            && op.flags & OP_UNMOUNT != 0
        {
            *tail = after;
            return Ok(true);
        }
    }
    Ok(false)
}

/// Where the log's head and tail are, and its state.
#[derive(Debug, Clone, Serialize)]
pub struct Bounds {
    /// Block after the last good record.
    pub head_blk: u64,
    /// Cycle of the head (the cycle being written).
    pub head_cycle: u32,
    /// First block to replay.
    pub tail_blk: u64,
    /// Cycle of the tail.
    pub tail_cycle: u32,
    /// Block of the last record header before the head.
    pub last_rec_blk: u64,
    /// True when the last record is an unmount record at the head.
    pub clean: bool,
    /// A torn head: the original head and the first bad record block.
    pub torn: Option<(u64, u64)>,
    /// Log size in basic blocks.
    pub log_bbs: u64,
    /// True when the log is in its first cycle still partly zeroed.
    pub zeroed_tail: bool,
    /// Log sector size in basic blocks that the search read with.
    pub sector_blocks: u64,
}

/// `xlog_find_tail` with `xlog_verify_head`: head, tail and state; None for a log of zeroes.
/// An error is the kernel's: it would fail the mount with it.
pub fn find_bounds(log: &LogDev) -> Result<Option<Bounds>> {
    find_bounds_opt(log, true)
}

/// [`find_bounds`] without the crc pass of `xlog_verify_tail` over a dirty log: the tail is
/// moved to the first record header at or after it. A record from the tail to the head that
/// fails its crc (or cannot be read) would move the tail, or fail the mount: then
/// [`find_bounds`] gives the kernel's answer. For a caller that verifies every record anyway
/// (the listing, recovery).
pub fn find_bounds_deferred(log: &LogDev) -> Result<Option<Bounds>> {
    find_bounds_opt(log, false)
}

fn find_bounds_opt(log: &LogDev, verify: bool) -> Result<Option<Bounds>> {
    let nbb = log.nbb();
    let mut head = find_head(log)?;
    if head == 0 && log.cycle(0)? == 0 {
        return Ok(None);
    }
    let (rb, n, mut wrapped) = rseek_header(log, head, head, 1)?;
    let Some(mut rblk) = rb.filter(|_| n == 1) else {
        return Err(kernel_err(log, head, "EFSCORRUPTED", "couldn't find sync record"));
    };
    let mut rh = log.header(rblk)?;
    let tail_of = |rh: &RecHeader| -> Result<u64> {
        let t = u64::from(lsn_block(rh.tail_lsn.get()));
        if t >= nbb {
            return Err(kernel_err(
                log,
                t,
                "EFSCORRUPTED",
                format!("tail lsn block {t} lies outside the log"),
            ));
        }
        Ok(t)
    };
    let mut tail = tail_of(&rh)?;
    let mut clean = unmount_at_head(log, head, rblk, &rh, &mut tail)?;
    let mut torn = None;
    if !clean {
        // xlog_verify_head: a crc failure among the last iclogs written is a torn write; the
        // head moves back to the first bad record.
        let orig = head;
        let (first, found, _) = rseek_header(log, head, tail, MAX_ICLOGS as usize)?;
        let Some(first) = first.filter(|_| found > 0) else {
            return Err(kernel_err(
                log,
                head,
                "EFSCORRUPTED",
                "no record header between the tail and the head",
            ));
        };
        let mut skip_tail = false;
        if let Err((bad, e)) = crc_pass(log, first, head) {
            if !matches!(e, Error::Corrupt { .. }) {
                return Err(e);
            }
            let (rb, n, w) = rseek_header(log, bad, tail, 1)?;
            let Some(b) = rb.filter(|_| n == 1) else {
                return Err(kernel_err(log, bad, "EIO", "no good record before the torn write"));
            };
            rblk = b;
            wrapped = w;
            rh = log.header(rblk)?;
            head = bad;
            tail = tail_of(&rh)?;
            torn = Some((orig, bad));
            // Head and tail equal: corruption outside the iclogs' reach; the kernel stops here.
            skip_tail = head == tail;
        }
        if !skip_tail {
            if verify {
                verify_tail(log, head, &mut tail, u64::from(rh.size.get()))?;
            } else {
                seek_tail(log, head, &mut tail)?;
            }
        }
        if torn.is_some() {
            clean = unmount_at_head(log, head, rblk, &rh, &mut tail)?;
        }
    }
    // The cycle being written at the head (`xlog_set_state`): one more than the last record's
    // when the search for that record wrapped around the end of the log.
    let head_cycle = if wrapped { rh.cycle.get().wrapping_add(1) } else { rh.cycle.get() };
    check_stale_blocks(log, head, head_cycle, rh.tail_lsn.get())?;
    let tail_cycle = if clean {
        head_cycle
    } else {
        let t = lsn_cycle(rh.tail_lsn.get());
        if t == 0 { head_cycle } else { t }
    };
    Ok(Some(Bounds {
        head_blk: head,
        head_cycle,
        tail_blk: tail,
        tail_cycle,
        last_rec_blk: rblk,
        clean,
        torn,
        log_bbs: nbb,
        zeroed_tail: log.cycle(nbb - 1)? == 0,
        sector_blocks: log.sect_bbs(),
    }))
}

/// Whether a log write was in flight at the head when the media was copied: the search trimmed
/// a torn record (`xlog_verify_head`), or the first block past the head already carries the
/// head's cycle (a record begun and not complete, or complete where the kernel's sector reads
/// cannot see its header). On a settled log that block holds the previous cycle, or zeros.
/// Returns what shows it.
pub fn write_in_flight(log: &LogDev, b: &Bounds) -> Result<Option<String>> {
    if let Some((orig, bad)) = b.torn {
        return Ok(Some(format!("torn record at log block {bad} (the cycle search ended at {orig})")));
    }
    let next = b.head_blk % log.nbb();
    let c = log.cycle(next)?;
    Ok((c == b.head_cycle && !b.clean)
        .then(|| format!("log block {next}, past the head, already carries the head's cycle {c}")))
}

/// The checks of `xlog_clear_stale_blocks` (run at every writable mount) on the head and the
/// last record's tail lsn: a tail in the same cycle must not lie past the head, one cycle
/// behind it must lie past it.
fn check_stale_blocks(log: &LogDev, head: u64, head_cycle: u32, tail_lsn: u64) -> Result<()> {
    let (tc, tb) = (lsn_cycle(tail_lsn), u64::from(lsn_block(tail_lsn)));
    let bad = if head_cycle == tc {
        head < tb || head >= log.nbb()
    } else {
        head >= tb || head_cycle != tc.wrapping_add(1)
    };
    if bad {
        return Err(kernel_err(
            log,
            head,
            "EFSCORRUPTED",
            format!(
                "head {head} (cycle {head_cycle}) and tail lsn {} do not fit (xlog_clear_stale_blocks)",
                lsn_str(tail_lsn)
            ),
        ));
    }
    Ok(())
}

/// Records that the kernel's search drops although they are complete on the media: the
/// records from the kernel's head up to the head of an exact reading ([`LogDev::exact`]), when
/// that head lies further and every record there checks. Empty when both agree.
pub fn dropped_records(log: &LogDev, kernel: &Bounds) -> Vec<Record> {
    if log.sect_bbs() <= 1 {
        return vec![];
    }
    let exact = log.exact();
    // The head first, without the tail's crc pass over the whole log: only where the heads
    // differ does the full search (which may still refuse the exact reading) matter.
    let Ok(Some(e)) = find_bounds_deferred(&exact) else { return vec![] };
    if e.head_blk == kernel.head_blk {
        return vec![];
    }
    let Ok(Some(e)) = find_bounds(&exact) else { return vec![] };
    if e.head_blk == kernel.head_blk || e.clean && kernel.clean {
        return vec![];
    }
    // The exact head must lie ahead of the kernel's, within the records written since.
    let ahead = past_head(log, kernel.head_blk, e.head_blk);
    if ahead == 0 || ahead >= log.nbb() / 2 {
        return vec![];
    }
    let (recs, err) = exact.records(kernel.head_blk, e.head_blk, false);
    if err.is_some() || recs.is_empty() || recs.iter().any(|r| !r.crc_ok) {
        return vec![];
    }
    recs
}
