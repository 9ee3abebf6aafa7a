//! The log device: 512-byte log blocks, cycle numbers, head and tail search (as the kernel's
//! `xlog_find_head` / `xlog_find_tail` / `xlog_verify_head`), and reading records with their
//! crc checked and their cycle-stamped words restored.

use super::format::*;
use crate::error::{Error, Result};
use crate::image::BlockSource;
use serde::Serialize;
use std::borrow::Cow;
use std::sync::Arc;
use zerocopy::FromBytes;

/// The log's bytes: `nbb` basic blocks starting at byte `base` of `src`.
pub struct LogDev {
    src: Arc<dyn BlockSource>,
    /// Record crcs already verified: header block → (stored, computed, ok).
    crc_cache: std::sync::Mutex<std::collections::HashMap<u64, (u32, u32, bool)>>,
    base: u64,
    nbb: u64,
    /// Log v2 (records up to 256 KiB).
    pub v2: bool,
}

impl LogDev {
    /// The log at `base` of `src`, `bytes` long.
    pub fn new(src: Arc<dyn BlockSource>, base: u64, bytes: u64, v2: bool) -> Result<Self> {
        let nbb = bytes / BBSIZE as u64;
        let end = base.checked_add(bytes);
        if nbb < 2 || end.is_none_or(|e| e > src.len()) {
            return Err(Error::corrupt(
                "xfs log",
                0,
                base,
                format!("log of {bytes} bytes at byte {base} does not fit a {}-byte device", src.len()),
            ));
        }
        Ok(Self { src, base, nbb, v2, crc_cache: Default::default() })
    }

    /// The source the log is in (what [`Region::bytes`] reads).
    pub fn src(&self) -> &Arc<dyn BlockSource> {
        &self.src
    }

    /// Number of basic blocks.
    pub fn nbb(&self) -> u64 {
        self.nbb
    }

    /// Byte offset of log block `blk` in the source.
    pub fn byte_of(&self, blk: u64) -> u64 {
        self.base + (blk % self.nbb) * BBSIZE as u64
    }

    /// One basic block (`blk` taken modulo the log size).
    pub fn bb(&self, blk: u64) -> Result<Cow<'_, [u8]>> {
        self.src.read_at(self.byte_of(blk), BBSIZE)
    }

    /// `n` basic blocks from `blk`, wrapping at the end of the log.
    pub fn read_wrapped(&self, blk: u64, n: u64) -> Result<Vec<u8>> {
        if n > self.nbb {
            return Err(Error::corrupt("xfs log", blk, self.byte_of(blk), format!("read of {n} blocks")));
        }
        let mut out = Vec::with_capacity((n as usize) * BBSIZE);
        let mut b = blk % self.nbb;
        let mut left = n;
        while left > 0 {
            let run = left.min(self.nbb - b);
            out.extend_from_slice(&self.src.read_at(self.byte_of(b), (run as usize) * BBSIZE)?);
            left -= run;
            b = (b + run) % self.nbb;
        }
        Ok(out)
    }

    /// crc32c `c` extended over `len` bytes from log block `blk`, wrapping at the end of the
    /// log, read in place (no copy).
    fn crc_wrapped(&self, mut c: u32, blk: u64, len: usize) -> Result<u32> {
        let n = len.div_ceil(BBSIZE) as u64;
        if n > self.nbb {
            return Err(Error::corrupt("xfs log", blk, self.byte_of(blk), format!("read of {n} blocks")));
        }
        let mut b = blk % self.nbb;
        let mut left = len;
        while left > 0 {
            let run = (left.div_ceil(BBSIZE) as u64).min(self.nbb - b);
            let bytes = ((run as usize) * BBSIZE).min(left);
            c = crate::crc32c::append(c, &self.src.read_at(self.byte_of(b), bytes)?);
            left -= bytes;
            b = (b + run) % self.nbb;
        }
        Ok(c)
    }

    /// The first word of a block as a big-endian number.
    fn word(&self, blk: u64, at: usize) -> Result<u32> {
        let b = self.bb(blk)?;
        Ok(u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
    }

    /// True when block `blk` starts with the record header magic.
    pub fn is_header(&self, blk: u64) -> Result<bool> {
        Ok(self.word(blk, 0)? == HEADER_MAGIC)
    }

    /// The cycle number of a block (`xlog_get_cycle`).
    pub fn cycle(&self, blk: u64) -> Result<u32> {
        let w = self.word(blk, 0)?;
        if w == HEADER_MAGIC { self.word(blk, 4) } else { Ok(w) }
    }

    /// Blocks scanned back from the head for out-of-order iclog writes.
    fn total_rec_bbs(&self) -> u64 {
        let rec = if self.v2 { MAX_RECORD_BSIZE } else { HEADER_CYCLE_SIZE };
        (MAX_ICLOGS * rec as u64 / BBSIZE as u64).min(self.nbb)
    }

    /// Blocks of one maximal record.
    fn rec_bbs(&self) -> u64 {
        let rec = if self.v2 { MAX_RECORD_BSIZE } else { HEADER_CYCLE_SIZE };
        rec as u64 / BBSIZE as u64
    }

    /// Binary search between `first` and `last` for the first block with `cycle`.
    fn find_cycle_start(&self, mut first: u64, last: u64, cycle: u32) -> Result<u64> {
        let mut end = last;
        let mut mid = (first + end) / 2;
        let mut guard = 0;
        while mid != first && mid != end {
            guard += 1;
            if guard > 128 {
                break;
            }
            if self.cycle(mid)? == cycle {
                end = mid;
            } else {
                first = mid;
            }
            mid = (first + end) / 2;
        }
        Ok(end)
    }

    /// The first block in `start..start+n` whose cycle is `stop`.
    fn find_verify_cycle(&self, start: u64, n: u64, stop: u32) -> Result<Option<u64>> {
        for b in start..start + n {
            if self.cycle(b)? == stop {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }

    /// Header blocks of the record whose header is `h`.
    pub fn hblks(h: &RecHeader) -> u64 {
        let size = h.size.get() as usize;
        if h.version.get() & VERSION_2 != 0 && size > HEADER_CYCLE_SIZE {
            size.div_ceil(HEADER_CYCLE_SIZE).min(MAX_RECORD_BSIZE / HEADER_CYCLE_SIZE) as u64
        } else {
            1
        }
    }

    /// The header at `blk`.
    pub fn header(&self, blk: u64) -> Result<RecHeader> {
        let b = self.bb(blk)?;
        let (h, _) = RecHeader::read_from_prefix(&b)
            .map_err(|_| Error::corrupt("xfs log record header", blk, self.byte_of(blk), "short block"))?;
        Ok(h)
    }

    /// `xlog_find_verify_log_record`: back up from `*last` to the last record header at or after
    /// `start`; if that record does not end exactly at `*last`, move `*last` to its header.
    /// Returns true when the start of the log was hit without finding a header.
    fn find_verify_log_record(&self, start: u64, last: &mut u64, extra: u64) -> Result<bool> {
        let mut i = *last;
        let found = loop {
            if i == 0 {
                break None;
            }
            i -= 1;
            if i < start {
                return Err(Error::corrupt(
                    "xfs log",
                    i,
                    self.byte_of(i),
                    "no record header before the head",
                ));
            }
            if self.is_header(i)? {
                break Some(i);
            }
        };
        let Some(i) = found else { return Ok(true) };
        let h = self.header(i)?;
        let len_bbs = u64::from(h.len.get()).div_ceil(BBSIZE as u64);
        if *last - i + extra != len_bbs + Self::hblks(&h) {
            *last = i;
        }
        Ok(false)
    }

    /// `xlog_find_zeroed`: Some(first zero-cycle block) when the log has not wrapped once yet.
    fn find_zeroed(&self) -> Result<Option<u64>> {
        if self.cycle(0)? == 0 {
            return Ok(Some(0));
        }
        let last = self.nbb - 1;
        if self.cycle(last)? != 0 {
            return Ok(None);
        }
        let mut last_blk = self.find_cycle_start(0, last, 0)?;
        let scan = self.total_rec_bbs().min(last_blk);
        let start = last_blk - scan;
        if let Some(b) = self.find_verify_cycle(start, scan, 0)? {
            last_blk = b;
        }
        if self.find_verify_log_record(start, &mut last_blk, 0)? {
            return Err(Error::corrupt(
                "xfs log",
                start,
                self.byte_of(start),
                "no record header in a zeroed log",
            ));
        }
        Ok(Some(last_blk))
    }

    /// `xlog_find_head`: the block after the last record written.
    pub fn find_head(&self) -> Result<u64> {
        if let Some(b) = self.find_zeroed()? {
            return Ok(b);
        }
        let n = self.nbb;
        let first_cycle = self.cycle(0)?;
        let last_cycle = self.cycle(n - 1)?;
        let (mut head, stop) = if first_cycle == last_cycle {
            (n, last_cycle.wrapping_sub(1))
        } else {
            (self.find_cycle_start(0, n - 1, last_cycle)?, last_cycle)
        };
        let scan = self.total_rec_bbs();
        let mut done = false;
        if head >= scan {
            if let Some(b) = self.find_verify_cycle(head - scan, scan, stop)? {
                head = b;
            }
        } else {
            let start = n - (scan - head);
            if let Some(b) = self.find_verify_cycle(start, scan - head, stop.wrapping_sub(1))? {
                head = b;
                done = true;
            }
            if !done && let Some(b) = self.find_verify_cycle(0, head, stop)? {
                head = b;
            }
        }
        let scan = self.rec_bbs();
        if head >= scan {
            if self.find_verify_log_record(head - scan, &mut head, 0)? {
                return Err(Error::corrupt(
                    "xfs log",
                    head,
                    self.byte_of(head),
                    "no record header before the head",
                ));
            }
        } else if self.find_verify_log_record(0, &mut head, 0)? {
            let start = n - (scan - head).min(n);
            let mut new = n;
            if self.find_verify_log_record(start, &mut new, head)? {
                return Err(Error::corrupt(
                    "xfs log",
                    head,
                    self.byte_of(head),
                    "no record header before the head",
                ));
            }
            if new != n {
                head = new;
            }
        }
        Ok(if head == n { 0 } else { head })
    }

    /// `xlog_rseek_logrec_hdr`: up to `count` headers searching back from `head` toward `tail`;
    /// returns the last one found (the earliest) and how many, and whether the search wrapped.
    pub fn rseek_header(&self, head: u64, tail: u64, count: usize) -> Result<(Option<u64>, usize, bool)> {
        let mut found = 0;
        let mut last = None;
        let mut wrapped = false;
        let end = if head > tail { tail } else { 0 };
        let mut i = head;
        while i > end {
            i -= 1;
            if self.is_header(i)? {
                last = Some(i);
                found += 1;
                if found == count {
                    return Ok((last, found, wrapped));
                }
            }
        }
        if tail >= head && found != count {
            let mut i = self.nbb;
            while i > tail {
                i -= 1;
                if self.is_header(i)? {
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

    /// Read the record whose header is at `blk`: check its header and verify its crc.
    pub fn read_record(&self, blk: u64) -> Result<Record> {
        let mut r = self.record_header(blk)?;
        self.check_crc(&mut r)?;
        Ok(r)
    }

    /// The record header at `blk`, checked (magic, version, lengths); its crc is not verified
    /// yet (`crc_calc` 0, `crc_ok` false).
    fn record_header(&self, blk: u64) -> Result<Record> {
        let off = self.byte_of(blk);
        let bad = |d: String| Error::corrupt("xfs log record header", blk, off, d);
        let hb = self.bb(blk)?;
        let (h, _) = RecHeader::ref_from_prefix(&hb).map_err(|_| bad("short block".into()))?;
        if h.magicno.get() != HEADER_MAGIC {
            return Err(bad(format!("bad magic {:#x}", h.magicno.get())));
        }
        let version = h.version.get();
        if version == 0 || version & !3 != 0 {
            return Err(bad(format!("bad version {version}")));
        }
        let hblks = Self::hblks(h);
        let len = h.len.get() as usize;
        let bufsize = if version & VERSION_2 != 0 {
            (h.size.get() as usize).max(HEADER_CYCLE_SIZE)
        } else {
            HEADER_CYCLE_SIZE
        };
        if len == 0 || len > bufsize || len > MAX_RECORD_BSIZE {
            return Err(bad(format!("record length {len} (buffer size {bufsize})")));
        }
        let dbbs = len.div_ceil(BBSIZE) as u64;
        if hblks + dbbs >= self.nbb {
            return Err(bad("record longer than the log".into()));
        }
        if len.div_ceil(HEADER_CYCLE_SIZE) > hblks as usize {
            return Err(bad(format!("record of {len} bytes needs more than {hblks} header blocks")));
        }
        Ok(Record {
            blk,
            cycle: h.cycle.get(),
            version,
            len: h.len.get(),
            lsn: h.lsn.get(),
            tail_lsn: h.tail_lsn.get(),
            prev_block: h.prev_block.get(),
            num_logops: h.num_logops.get(),
            size: h.size.get(),
            fmt: h.fmt.get(),
            hblks,
            crc_stored: h.crc.get(),
            crc_calc: 0,
            crc_ok: false,
            uuid: h.fs_uuid,
        })
    }

    /// The records from `tail` up to `head` with their crcs verified, each handed with its
    /// data to `each` in log order. The crcs are verified on another thread meanwhile (`each`
    /// does not look at them; they are set in the records returned). Returns the records, where
    /// reading stopped with an error, and the first record that fails its crc (or the error's
    /// block); None when a record's crc or data cannot be read (the caller then takes the
    /// two-pass way, [`LogDev::records`]).
    #[allow(clippy::type_complexity)]
    pub fn records_with_data(
        &self,
        tail: u64,
        head: u64,
        mut each: impl FnMut(&Record, &RecData<'_>),
    ) -> Option<(Vec<Record>, Option<(u64, Error)>, Option<u64>)> {
        let (mut recs, err) = self.walk(tail, head, false);
        let crcs = std::thread::scope(|s| {
            let recs = &recs;
            let job = s.spawn(move || self.crcs(recs));
            let mut read = true;
            for r in recs {
                let Ok(d) = self.record_data(r) else {
                    read = false;
                    break;
                };
                each(r, &d);
            }
            job.join().ok().filter(|_| read)
        });
        let crcs = crcs?.ok()?;
        let mut first_bad = None;
        for (r, (calc, ok)) in recs.iter_mut().zip(crcs) {
            (r.crc_calc, r.crc_ok) = (calc, ok);
            if !ok && first_bad.is_none() {
                first_bad = Some(r.blk);
            }
        }
        let first_bad = first_bad.or(err.as_ref().map(|(b, _)| *b));
        Some((recs, err, first_bad))
    }

    /// Verify the crc of a record read by [`LogDev::record_header`]: over the header (the 64-bit
    /// C struct, or the packed i386 one), the extended headers the data needs, then the data as
    /// written (still cycle-stamped), in place.
    fn check_crc(&self, r: &mut Record) -> Result<()> {
        (r.crc_calc, r.crc_ok) = self.crc_of(r)?;
        Ok(())
    }

    /// The crcs of `recs` ([`LogDev::crc_of`] of each), in order; the first error stops.
    pub fn crcs(&self, recs: &[Record]) -> std::result::Result<Vec<(u32, bool)>, (u64, Error)> {
        recs.iter().map(|r| self.crc_of(r).map_err(|e| (r.blk, e))).collect()
    }

    /// The computed crc of a record and whether it checks (as `LogDev::check_crc` checks it).
    pub fn crc_of(&self, r: &Record) -> Result<(u32, bool)> {
        let hb = self.bb(r.blk)?;
        let len = r.len as usize;
        let ext = if r.hblks > 1 { Some(self.read_blocks(r.blk + 1, r.hblks - 1)?) } else { None };
        let ext: &[u8] = ext.as_deref().unwrap_or(&[]);
        let mut crc_calc = 0;
        let mut crc_ok = false;
        for size in REC_CRC_SIZES {
            let mut c = crate::crc32c::append(0, &hb[..REC_CRC_OFF]);
            c = crate::crc32c::append(c, &[0; 4]);
            c = crate::crc32c::append(c, &hb[REC_CRC_OFF + 4..size]);
            // The extended headers the data length needs (not all those h_size reserves).
            let xheads = len.div_ceil(HEADER_CYCLE_SIZE).min(r.hblks as usize);
            for x in 0..xheads.saturating_sub(1) {
                let Some(e) = ext.get(x * BBSIZE..x * BBSIZE + size_of::<ExtHeader>()) else { break };
                c = crate::crc32c::append(c, e);
            }
            c = self.crc_wrapped(c, r.blk + r.hblks, len)?;
            if size == REC_CRC_SIZES[0] {
                crc_calc = c;
            }
            if c == r.crc_stored {
                crc_calc = c;
                crc_ok = true;
                break;
            }
        }
        Ok((crc_calc, crc_ok || r.crc_stored == 0))
    }

    /// `n` blocks from `blk`: borrowed when they do not wrap at the end of the log.
    fn read_blocks(&self, blk: u64, n: u64) -> Result<Cow<'_, [u8]>> {
        let b = blk % self.nbb;
        if b + n <= self.nbb {
            return self.src.read_at(self.byte_of(b), (n as usize) * BBSIZE);
        }
        Ok(Cow::Owned(self.read_wrapped(b, n)?))
    }

    /// The data of a record read by [`LogDev::read_record`]: the bytes as written (borrowed from
    /// the source when the record does not wrap at the end of the log) and the first word of
    /// each sector that the cycle stamping replaced, taken from the (extended) headers.
    pub fn record_data(&self, r: &Record) -> Result<RecData<'_>> {
        let len = r.len as usize;
        let dbbs = len.div_ceil(BBSIZE) as u64;
        let bad = |d: String| Error::corrupt("xfs log record header", r.blk, self.byte_of(r.blk), d);
        let hdr = self.read_blocks(r.blk, r.hblks)?;
        let mut words = Vec::with_capacity(dbbs as usize);
        for i in 0..dbbs as usize {
            let at = cycle_word_offset(i);
            let Some(w) = hdr.get(at..at + 4) else {
                return Err(bad(format!("record needs extended header {}", i / CYCLE_WORDS)));
            };
            // OK to unwrap because the slice is 4 bytes long.
            words.push(<[u8; 4]>::try_from(w).unwrap());
        }
        let start = (r.blk + r.hblks) % self.nbb;
        let contiguous = r.blk % self.nbb + r.hblks + dbbs <= self.nbb;
        let (raw, at) = if contiguous {
            (self.src.read_at(self.byte_of(start), len)?, Some((self.byte_of(start), self.byte_of(r.blk))))
        } else {
            let mut v = self.read_wrapped(start, dbbs)?;
            v.truncate(len);
            (Cow::Owned(v), None)
        };
        Ok(RecData { raw, words, at })
    }

    /// The records from `tail` up to `head`, in log order, their crcs verified (on two threads
    /// for a long stretch). Stops at the first record that cannot be read, returning it as the
    /// error beside the records read so far. With `full` and `tail == head`, the whole circle is
    /// read.
    pub fn records(&self, tail: u64, head: u64, full: bool) -> (Vec<Record>, Option<(u64, Error)>) {
        let (mut out, mut err) = self.walk(tail, head, full);
        if let Err((blk, e)) = self.check_all(&mut out) {
            // Cannot happen (the headers were checked to fit the log), but stop there if it does.
            out.retain(|r| r.blk != blk);
            err = Some((blk, e));
        }
        (out, err)
    }

    /// Verify the crcs of `recs`: the second half of the bytes on another thread when there is
    /// enough work. Results of an earlier verification of the same record are reused.
    fn check_all(&self, recs: &mut [Record]) -> std::result::Result<(), (u64, Error)> {
        let mut todo: Vec<&mut Record> = {
            let cache = self.crc_cache.lock().unwrap_or_else(|e| e.into_inner());
            recs.iter_mut()
                .filter_map(|r| match cache.get(&r.blk) {
                    Some(&(stored, calc, ok)) if stored == r.crc_stored => {
                        (r.crc_calc, r.crc_ok) = (calc, ok);
                        None
                    }
                    _ => Some(r),
                })
                .collect()
        };
        let one = |rs: &mut [&mut Record]| -> std::result::Result<(), (u64, Error)> {
            for r in rs.iter_mut() {
                self.check_crc(r).map_err(|e| (r.blk, e))?;
            }
            Ok(())
        };
        let total: u64 = todo.iter().map(|r| u64::from(r.len)).sum();
        if total < PARALLEL_CRC_BYTES {
            one(&mut todo)?;
        } else {
            // Split where half of the bytes are on each side.
            let mut acc = 0u64;
            let mid = todo
                .iter()
                .position(|r| {
                    acc += u64::from(r.len);
                    acc >= total / 2
                })
                .unwrap_or(todo.len());
            let (a, b) = todo.split_at_mut(mid);
            let (ra, rb) = std::thread::scope(|s| {
                let h = s.spawn(|| one(b));
                let ra = one(a);
                (ra, h.join().unwrap_or(Ok(())))
            });
            ra?;
            rb?;
        }
        let mut cache = self.crc_cache.lock().unwrap_or_else(|e| e.into_inner());
        for r in todo {
            cache.insert(r.blk, (r.crc_stored, r.crc_calc, r.crc_ok));
        }
        Ok(())
    }

    /// The first record from `tail` up to `head` that fails its crc, or the block where reading
    /// stopped with an error; None when every record reads and checks. Reads in place.
    pub fn first_bad_record(&self, tail: u64, head: u64) -> Option<u64> {
        let (recs, err) = self.records(tail, head, false);
        recs.iter().find(|r| !r.crc_ok).map(|r| r.blk).or(err.map(|(b, _)| b))
    }

    /// The record headers from `tail` up to `head` (the whole circle with `full` and `tail ==
    /// head`), crcs not verified, and where reading stopped with an error.
    pub fn walk(&self, tail: u64, head: u64, full: bool) -> (Vec<Record>, Option<(u64, Error)>) {
        self.walk_each(tail, head, full, |_| true)
    }

    /// [`LogDev::walk`], handing each record to `each` as its header is read (it may fill in
    /// the crc fields); reading stops, without an error, after a record `each` returns false for.
    pub fn walk_each(
        &self,
        tail: u64,
        head: u64,
        full: bool,
        mut each: impl FnMut(&mut Record) -> bool,
    ) -> (Vec<Record>, Option<(u64, Error)>) {
        let mut dist = (head + self.nbb - tail) % self.nbb;
        if full && dist == 0 {
            dist = self.nbb;
        }
        let mut out = vec![];
        let mut done = 0u64;
        let mut blk = tail;
        while done < dist {
            match self.record_header(blk) {
                Ok(mut r) => {
                    let step = r.hblks + u64::from(r.len).div_ceil(BBSIZE as u64);
                    done += step;
                    blk = (blk + step) % self.nbb;
                    if done > dist {
                        out.push(r);
                        let e =
                            Error::corrupt("xfs log", blk, self.byte_of(blk), "record runs past the head");
                        return (out, Some((blk, e)));
                    }
                    let go_on = each(&mut r);
                    out.push(r);
                    if !go_on {
                        return (out, None);
                    }
                }
                Err(e) => return (out, Some((blk, e))),
            }
        }
        (out, None)
    }
}

/// Bytes of unverified record data above which crcs are verified on two threads.
const PARALLEL_CRC_BYTES: u64 = 2 << 20;

/// Offset, in a record's header blocks, of the saved first word of data sector `i`.
fn cycle_word_offset(i: usize) -> usize {
    let (hdr_i, word_i) = (i / CYCLE_WORDS, i % CYCLE_WORDS);
    if hdr_i == 0 {
        std::mem::offset_of!(RecHeader, cycle_data) + 4 * word_i
    } else {
        hdr_i * BBSIZE + std::mem::offset_of!(ExtHeader, cycle_data) + 4 * word_i
    }
}

/// The saved first word of data sector `i` of the record whose header block is at byte `hdr`
/// of `src` (header blocks contiguous).
pub fn saved_word(src: &dyn BlockSource, hdr: u64, i: usize) -> Option<[u8; 4]> {
    let b = src.read_at(hdr.checked_add(cycle_word_offset(i) as u64)?, 4).ok()?;
    <[u8; 4]>::try_from(&b[..]).ok()
}

/// A record's data: the bytes as written, whose sectors start with the cycle number, and the
/// words those replaced. Read through [`RecData::get`], which restores them.
pub struct RecData<'s> {
    /// The bytes as written (`len` bytes).
    raw: Cow<'s, [u8]>,
    /// The first word of each 512-byte sector before stamping.
    words: Vec<[u8; 4]>,
    /// Byte offsets in the source of the data and of the header block, when both are in place
    /// (the record does not wrap at the end of the log).
    at: Option<(u64, u64)>,
}

impl<'s> RecData<'s> {
    /// Data that was never stamped (tests, hand-made records): each sector keeps its words.
    pub fn plain(data: Vec<u8>) -> RecData<'static> {
        let words =
            data.chunks(BBSIZE).map(|c| std::array::from_fn(|k| c.get(k).copied().unwrap_or(0))).collect();
        RecData { raw: Cow::Owned(data), words, at: None }
    }

    /// Bytes of data.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Load one byte of every cache line, all independent, so that the op headers that
    /// [`super::trans::Reassembler::feed`] then follows one after the other (each one's length
    /// gives the next one's place) are in the cache instead of each waiting on memory.
    pub fn touch(&self) {
        let x = self.raw.iter().step_by(64).fold(0u8, |a, b| a ^ b);
        std::hint::black_box(x);
    }

    /// True when there is no data.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// `n` bytes at `pos`, their stamped words restored: borrowed when no sector starts inside.
    pub fn get(&self, pos: usize, n: usize) -> Option<Cow<'_, [u8]>> {
        let s = self.raw.get(pos..pos.checked_add(n)?)?;
        Some(restore(s, pos, |i| self.words.get(i).copied()))
    }

    /// The region of `n` bytes at `pos`: a reference into the log when the record is in place,
    /// else a copy with its words restored.
    pub fn region(&self, pos: usize, n: usize) -> Option<Region> {
        self.raw.get(pos..pos.checked_add(n)?)?;
        Some(match (self.at, &self.raw) {
            (Some((data, hdr)), Cow::Borrowed(_)) => {
                let mut first = [0u8; INLINE];
                let h = self.get(pos, n.min(INLINE))?;
                first[..h.len()].copy_from_slice(&h);
                // The header blocks end where the data starts.
                let hblks = ((data - hdr) / BBSIZE as u64) as u8;
                Region::Log { at: data + pos as u64, len: n as u32, off: pos as u32, hblks, first }
            }
            _ => Region::Owned(self.get(pos, n)?.into_owned()),
        })
    }
}

/// `s` (the record data at byte `pos`) with the first word of each sector starting inside it
/// replaced by `word(sector)`; borrowed when none does.
fn restore<'b>(s: &'b [u8], pos: usize, word: impl Fn(usize) -> Option<[u8; 4]>) -> Cow<'b, [u8]> {
    let first = pos.div_ceil(BBSIZE);
    let end = pos + s.len();
    if first * BBSIZE >= end {
        return Cow::Borrowed(s);
    }
    let mut v = s.to_vec();
    let mut k = first;
    while k * BBSIZE < end {
        let w = word(k).unwrap_or([0; 4]);
        let at = k * BBSIZE - pos;
        let n = 4.min(v.len() - at);
        v[at..at + n].copy_from_slice(&w[..n]);
        k += 1;
    }
    Cow::Owned(v)
}

/// An op region's bytes: in place in the log (its stamped words restored when read), or
/// assembled in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Region {
    /// `len` bytes at byte `at` of the log's source, `off` bytes into the data of the record
    /// whose header block is at byte `hdr`.
    Log {
        /// Source byte of the first byte.
        at: u64,
        /// Bytes.
        len: u32,
        /// Offset in the record's data.
        off: u32,
        /// Header blocks of the record (they end where its data starts).
        hblks: u8,
        /// The first [`INLINE`] bytes (fewer when shorter), restored: item types, flags and
        /// magic numbers without a trip to the log.
        first: [u8; INLINE],
    },
    /// Bytes in memory (split across records, or read around the end of the log).
    Owned(Vec<u8>),
}

impl Default for Region {
    fn default() -> Self {
        Region::Owned(Vec::new())
    }
}

/// Bytes of a region kept inline.
pub const INLINE: usize = 8;

impl Region {
    /// Source byte of the header block of the record holding a region in the log.
    fn hdr(at: u64, off: u32, hblks: u8) -> u64 {
        at.wrapping_sub(u64::from(off)).wrapping_sub(u64::from(hblks) * BBSIZE as u64)
    }

    /// The first [`INLINE`] bytes (all of them when shorter), from memory.
    pub fn first(&self) -> &[u8] {
        match self {
            Region::Log { len, first, .. } => &first[..(*len as usize).min(INLINE)],
            Region::Owned(v) => &v[..v.len().min(INLINE)],
        }
    }

    /// Bytes in the region.
    pub fn len(&self) -> usize {
        match self {
            Region::Log { len, .. } => *len as usize,
            Region::Owned(v) => v.len(),
        }
    }

    /// True when the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The region's bytes, read from `src` (the log's source) when in place. Empty when the
    /// source cannot give them (it was checked to when the region was made).
    pub fn bytes<'b>(&'b self, src: &'b dyn BlockSource) -> Cow<'b, [u8]> {
        self.head(src, usize::MAX)
    }

    /// Load the cache lines of the first `n` bytes of the region (a hint: the loads of many
    /// regions then overlap instead of each waiting on memory when the region is read).
    pub fn prefetch(&self, src: &dyn BlockSource, n: usize) {
        if let Region::Log { at, len, .. } = self
            && let Ok(b) = src.read_at(*at, n.min(*len as usize))
        {
            std::hint::black_box(b.iter().step_by(64).fold(b.last().copied().unwrap_or(0), |a, x| a ^ x));
        }
    }

    /// The first `n` bytes of the region (all of it when shorter).
    pub fn head<'b>(&'b self, src: &'b dyn BlockSource, n: usize) -> Cow<'b, [u8]> {
        match self {
            Region::Owned(v) => Cow::Borrowed(&v[..n.min(v.len())]),
            Region::Log { at, len, off, hblks, first } => {
                let n = n.min(*len as usize);
                if n <= first.len() {
                    return Cow::Borrowed(&first[..n]);
                }
                let hdr = &Self::hdr(*at, *off, *hblks);
                match src.read_at(*at, n) {
                    Ok(Cow::Borrowed(s)) => restore(s, *off as usize, |i| saved_word(src, *hdr, i)),
                    Ok(Cow::Owned(v)) => {
                        Cow::Owned(restore(&v, *off as usize, |i| saved_word(src, *hdr, i)).into_owned())
                    }
                    Err(_) => Cow::Borrowed(&[]),
                }
            }
        }
    }
}

impl Region {
    /// Copy the region's bytes `from..from + dst.len()` into `dst`, stamped words restored.
    /// False (and `dst` untouched) when the region is shorter or the source cannot give them.
    pub fn copy_to(&self, src: &dyn BlockSource, from: usize, dst: &mut [u8]) -> bool {
        let Some(end) = from.checked_add(dst.len()).filter(|e| *e <= self.len()) else { return false };
        match self {
            Region::Owned(v) => dst.copy_from_slice(&v[from..end]),
            Region::Log { at, off, hblks, .. } => {
                let hdr = &Self::hdr(*at, *off, *hblks);
                let Ok(raw) = src.read_at(at + from as u64, dst.len()) else { return false };
                dst.copy_from_slice(&raw);
                let pos = *off as usize + from;
                let mut k = pos.div_ceil(BBSIZE);
                while k * BBSIZE < pos + dst.len() {
                    let w = saved_word(src, *hdr, k).unwrap_or([0; 4]);
                    let at = k * BBSIZE - pos;
                    let n = 4.min(dst.len() - at);
                    dst[at..at + n].copy_from_slice(&w[..n]);
                    k += 1;
                }
            }
        }
        true
    }
}

/// One log record (its header, and whether its crc checks).
#[derive(Debug, Clone)]
pub struct Record {
    /// Log block of the header.
    pub blk: u64,
    /// Cycle.
    pub cycle: u32,
    /// h_version.
    pub version: u32,
    /// Data bytes.
    pub len: u32,
    /// LSN of the record.
    pub lsn: u64,
    /// Tail LSN when written.
    pub tail_lsn: u64,
    /// Previous record's block.
    pub prev_block: u32,
    /// Op headers in the record.
    pub num_logops: u32,
    /// iclog size.
    pub size: u32,
    /// h_fmt.
    pub fmt: u32,
    /// Header blocks (1 + extended headers).
    pub hblks: u64,
    /// crc stored.
    pub crc_stored: u32,
    /// crc computed.
    pub crc_calc: u32,
    /// crc matches (or is zero, as mkfs writes).
    pub crc_ok: bool,
    /// fs uuid in the header.
    pub uuid: [u8; 16],
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
}

/// `xlog_find_tail` with `xlog_verify_head`: head, tail and state.
pub fn find_bounds(log: &LogDev) -> Result<Option<Bounds>> {
    Ok(find_bounds_opt(log, true)?.map(|(b, _)| b))
}

/// [`find_bounds`] without the crc pass of `xlog_verify_tail` over a dirty log: the tail is
/// moved to the first record header at or after it, and the distance past the head returned
/// beside the bounds: a record from the tail to the head that fails its crc (or cannot be read)
/// within that distance past the head would move the tail further, and then [`find_bounds`]
/// gives the bounds. For a caller that verifies every record anyway (the listing, recovery).
pub fn find_bounds_deferred(log: &LogDev) -> Result<Option<(Bounds, Option<u64>)>> {
    find_bounds_opt(log, false)
}

/// How far past the head (in blocks) a bad record moves the tail: `head` to `bad` going forward.
pub fn past_head(log: &LogDev, head: u64, bad: u64) -> u64 {
    if head < bad { bad - head } else { bad + log.nbb() - head }
}

fn find_bounds_opt(log: &LogDev, verify: bool) -> Result<Option<(Bounds, Option<u64>)>> {
    let mut head = log.find_head()?;
    if head == 0 && log.cycle(0)? == 0 {
        return Ok(None);
    }
    let (rb, n, _) = log.rseek_header(head, head, 1)?;
    let Some(mut rblk) = rb.filter(|_| n == 1) else {
        return Err(Error::corrupt("xfs log", head, log.byte_of(head), "no record header found"));
    };
    let mut rh = log.header(rblk)?;
    let mut tail = u64::from(lsn_block(rh.tail_lsn.get())) % log.nbb();
    let mut clean = unmount_at_head(log, head, rblk, &rh, &mut tail)?;
    let mut torn = None;
    if !clean {
        let orig = head;
        let (first, _, _) = log.rseek_header(head, tail, MAX_ICLOGS as usize)?;
        if let Some(first) = first {
            let (recs, err) = log.records(first, head, false);
            let first_bad = recs.iter().find(|r| !r.crc_ok).map(|r| r.blk).or(err.map(|(b, _)| b));
            if let Some(bad) = first_bad {
                let (rb, n, _) = log.rseek_header(bad, tail, 1)?;
                if let Some(b) = rb.filter(|_| n == 1) {
                    rblk = b;
                    rh = log.header(rblk)?;
                    head = bad;
                    tail = u64::from(lsn_block(rh.tail_lsn.get())) % log.nbb();
                    torn = Some((orig, bad));
                    clean = unmount_at_head(log, head, rblk, &rh, &mut tail)?;
                }
            }
        }
    }
    let mut deferred = None;
    if !clean {
        let hsize = u64::from(rh.size.get()).max(HEADER_CYCLE_SIZE as u64);
        if verify {
            verify_tail(log, head, &mut tail, hsize)?;
        } else {
            if let Some(t) = seek_header(log, head, tail, 1)? {
                tail = t;
            }
            deferred = Some(MAX_ICLOGS * hsize / BBSIZE as u64);
        }
    }
    // The cycle being written at the head: one more than the last record's when that record
    // lies at or past the head (it wrapped).
    let head_cycle = if rblk >= head { rh.cycle.get().wrapping_add(1) } else { rh.cycle.get() };
    let tail_cycle = if clean {
        head_cycle
    } else {
        let t = lsn_cycle(rh.tail_lsn.get());
        if t == 0 { head_cycle } else { t }
    };
    Ok(Some((
        Bounds {
            head_blk: head,
            head_cycle,
            tail_blk: tail,
            tail_cycle,
            last_rec_blk: rblk,
            clean,
            torn,
            log_bbs: log.nbb(),
            zeroed_tail: log.cycle(log.nbb() - 1)? == 0,
        },
        deferred,
    )))
}

/// `xlog_seek_logrec_hdr`: the `count`-th record header searching forward from `tail` to `head`.
fn seek_header(log: &LogDev, head: u64, tail: u64, count: usize) -> Result<Option<u64>> {
    let mut found = 0;
    let mut last = None;
    let end = if head > tail { head } else { log.nbb() - 1 };
    let mut i = tail;
    while i <= end {
        if log.is_header(i)? {
            last = Some(i);
            found += 1;
            if found == count {
                return Ok(last);
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
                    return Ok(last);
                }
            }
        }
    }
    Ok(if found == count { last } else { None })
}

/// `xlog_verify_tail`: the tail must point at a record, and records near the tail that fail their
/// check (overwritten by a torn head that wrapped) are skipped, as far as the iclogs in flight
/// could have reached.
fn verify_tail(log: &LogDev, head: u64, tail: &mut u64, hsize: u64) -> Result<()> {
    if let Some(t) = seek_header(log, head, *tail, 1)? {
        *tail = t;
    }
    let reach = MAX_ICLOGS * hsize / BBSIZE as u64;
    for _ in 0..MAX_ICLOGS * 4 {
        let Some(bad) = log.first_bad_record(*tail, head) else {
            return Ok(());
        };
        if past_head(log, head, bad) > reach {
            return Ok(());
        }
        match seek_header(log, head, bad, 2)? {
            Some(t) => *tail = t,
            None => return Ok(()),
        }
    }
    Ok(())
}

/// `xlog_check_unmount_rec`: is the record at `rblk` an unmount record ending at `head`?
fn unmount_at_head(log: &LogDev, head: u64, rblk: u64, rh: &RecHeader, tail: &mut u64) -> Result<bool> {
    let hblks = LogDev::hblks(rh);
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
