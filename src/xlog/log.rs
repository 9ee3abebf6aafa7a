//! The log device: 512-byte log blocks and their cycle numbers, the geometry of a recovery
//! pass (`xlog_do_recovery_pass`), and the walk over record headers with their crcs checked.
//! The records and their data, read back with the cycle-stamped words restored, are in
//! [`super::record`]; the head and tail search is in [`super::search`].

use super::format::*;
use super::record::cycle_word_offset;
pub use super::record::{RecData, Record, Region};
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
    /// Log sector size in basic blocks (`l_sectBBsize`): the kernel reads the log in whole
    /// sectors.
    sect_bbs: u64,
    /// The file system's uuid, which the record found before the head must carry
    /// (`xlog_header_check_mount`); None: not checked.
    uuid: Option<[u8; 16]>,
    /// The iclog size the kernel mounts with (`m_logbsize`), for the mkfs record-size rule of
    /// `xlog_do_recovery_pass`.
    logbsize: u32,
    /// Whose search rules to follow where kernels differ.
    rules: Rules,
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
        Ok(Self {
            src,
            base,
            nbb,
            v2,
            crc_cache: Default::default(),
            sect_bbs: 1,
            uuid: None,
            logbsize: HEADER_CYCLE_SIZE as u32,
            rules: Default::default(),
        })
    }

    /// The log as the kernel mounts it: `sect_bbs` basic blocks a log sector (`l_sectBBsize`,
    /// a power of two), the file system's `uuid`, iclogs of `logbsize` bytes.
    pub fn with_geometry(mut self, sect_bbs: u64, uuid: [u8; 16], logbsize: u32) -> Self {
        self.sect_bbs = sect_bbs.max(1).next_power_of_two();
        self.uuid = Some(uuid);
        self.logbsize = logbsize;
        self
    }

    /// The same log read in exact 512-byte blocks (sector size 1): the head a reader finds
    /// when it does not round its reads to log sectors.
    pub fn exact(&self) -> Self {
        // Its own crc cache: whether the kernel's read covers a record depends on the sector.
        Self { src: self.src.clone(), crc_cache: Default::default(), sect_bbs: 1, ..*self }
    }

    /// The search rules of `rules`' kernels.
    pub fn with_rules(mut self, rules: Rules) -> Self {
        self.rules = rules;
        self
    }

    /// Whose search rules are followed.
    pub fn rules(&self) -> Rules {
        self.rules
    }

    /// Log sector size in basic blocks.
    pub fn sect_bbs(&self) -> u64 {
        self.sect_bbs
    }

    /// The file system's uuid, when known.
    pub fn uuid(&self) -> Option<[u8; 16]> {
        self.uuid
    }

    /// `n` blocks from block `phys` counted from the start of the log, not wrapped: a read
    /// rounded to log sectors may run past the end of the log into what follows on the device.
    pub fn read_phys(&self, phys: u64, at: usize, n: usize) -> Result<Cow<'_, [u8]>> {
        let off = phys
            .checked_mul(BBSIZE as u64)
            .and_then(|b| b.checked_add(self.base))
            .and_then(|b| b.checked_add(at as u64))
            .ok_or_else(|| Error::corrupt("xfs log", phys, self.base, "block number overflows"))?;
        self.src.read_at(off, n)
    }

    /// True when `n` blocks from block `phys` (not wrapped) can be read from the device.
    pub fn readable_phys(&self, phys: u64, n: u64) -> bool {
        phys.checked_add(n)
            .and_then(|e| e.checked_mul(BBSIZE as u64))
            .and_then(|e| e.checked_add(self.base))
            .is_some_and(|e| e <= self.src.len())
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

    /// Header blocks of the record whose header is `h` (`xlog_logrec_hblks`): one, or one per
    /// 32 KiB of iclog on a v2 log whose record says it is v2.
    pub fn hblks(&self, h: &RecHeader) -> u64 {
        if self.v2 { hblks_of(u64::from(h.size.get()), h.version.get()) } else { 1 }
    }

    /// The iclog size and header blocks that `xlog_do_recovery_pass` takes from the record at
    /// `tail`, the first of the pass, for every record of the pass.
    pub fn pass_geometry(&self, tail: u64) -> Result<Pass> {
        let h = self.header(tail)?;
        if !self.v2 {
            return Ok(Pass { bufsize: HEADER_CYCLE_SIZE as u64, hblks: 1 });
        }
        let mut bufsize = u64::from(h.size.get());
        let len = u64::from(h.len.get());
        // xfsprogs' mkfs once wrote records longer than their h_size, sized by the log stripe
        // unit: the kernel then takes its own iclog size.
        if len > bufsize && len <= u64::from(self.logbsize) && h.num_logops.get() == 1 {
            bufsize = u64::from(self.logbsize);
        }
        let hblks = hblks_of(bufsize, h.version.get());
        // xlog_alloc_buffer refuses a buffer longer than the log: the pass fails with ENOMEM.
        if hblks > self.nbb || bufsize.div_ceil(BBSIZE as u64) > self.nbb {
            return Err(Error::corrupt(
                "xfs log record header",
                tail,
                self.byte_of(tail),
                format!("iclog size {bufsize} is larger than the log (the kernel fails with ENOMEM)"),
            ));
        }
        Ok(Pass { bufsize, hblks })
    }

    /// The header at `blk`.
    pub fn header(&self, blk: u64) -> Result<RecHeader> {
        let b = self.bb(blk)?;
        let (h, _) = RecHeader::read_from_prefix(&b)
            .map_err(|_| Error::corrupt("xfs log record header", blk, self.byte_of(blk), "short block"))?;
        Ok(h)
    }

    /// Read the record whose header is at `blk`, as the first of a pass: check its header and
    /// verify its crc.
    pub fn read_record(&self, blk: u64) -> Result<Record> {
        let pass = self.pass_geometry(blk)?;
        let mut r = self.record_header(blk, &pass)?;
        self.check_crc(&mut r)?;
        Ok(r)
    }

    /// The record header at `blk`, checked as `xlog_valid_rec_header` checks it against the
    /// pass's iclog size, with the pass's header blocks; its crc is not verified yet
    /// (`crc_calc` 0, `crc_ok` false).
    fn record_header(&self, blk: u64, pass: &Pass) -> Result<Record> {
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
        let hblks = pass.hblks;
        let len = u64::from(h.len.get());
        if len == 0 || len > pass.bufsize {
            return Err(bad(format!("record length {len} (buffer size {})", pass.bufsize)));
        }
        // The cycle words of the data sectors are in the header blocks read for the record.
        if len.div_ceil(HEADER_CYCLE_SIZE as u64) > hblks {
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
        if !self.kernel_read_covers(r) {
            // The kernel's rounded read of the data stops short of its last blocks, which it
            // then takes from whatever its buffer held before: not the bytes that were written.
            crc_ok = false;
        }
        Ok((crc_calc, crc_ok || r.crc_stored == 0))
    }

    /// True when `xlog_bread` of a record's data (start rounded down to a log sector, length
    /// rounded up, separately) covers all of it. Records written by the kernel start and end on
    /// sector boundaries, so only odd or damaged records fail this. A record that wraps at the
    /// end of the log is read in two parts, the second from the sector-aligned start.
    pub fn kernel_read_covers(&self, r: &Record) -> bool {
        let s = self.sect_bbs;
        let start = (r.blk + r.hblks) % self.nbb;
        let n = u64::from(r.len).div_ceil(BBSIZE as u64);
        let first = if start + n <= self.nbb { n } else { self.nbb - start };
        start % s + first <= first.div_ceil(s) * s
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
        Ok(RecData::new(raw, words, at))
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

    /// The record headers from `tail` up to `head` (the whole circle with `full` and `tail ==
    /// head`), crcs not verified, and where reading stopped with an error.
    pub fn walk(&self, tail: u64, head: u64, full: bool) -> (Vec<Record>, Option<(u64, Error)>) {
        self.walk_each(tail, head, full, |_| true)
    }

    /// [`LogDev::walk`], handing each record to `each` as its header is read (it may fill in
    /// the crc fields); reading stops, without an error, after a record `each` returns false for.
    ///
    /// The records are those `xlog_do_recovery_pass` reads: from the tail, each record's header
    /// checked against the iclog size of the first record and read with its header blocks;
    /// around the physical end of the log first when the tail lies past the head; a record that
    /// starts before the head is read whole even when it ends past it.
    pub fn walk_each(
        &self,
        tail: u64,
        head: u64,
        full: bool,
        mut each: impl FnMut(&mut Record) -> bool,
    ) -> (Vec<Record>, Option<(u64, Error)>) {
        let nbb = self.nbb;
        let tail = tail % nbb;
        let mut out = vec![];
        let pass = match self.pass_geometry(tail) {
            Ok(p) => p,
            Err(e) => return (out, Some((tail, e))),
        };
        let mut blk = tail;
        // `around`: a record may wrap at the physical end of the log, header or data; else
        // xlog_verify_bno refuses a read past the end of the log.
        let mut one =
            |blk: u64, around: bool, out: &mut Vec<Record>| -> std::result::Result<(u64, bool), Error> {
                let mut r = self.record_header(blk % nbb, &pass)?;
                let step = r.hblks + u64::from(r.len).div_ceil(BBSIZE as u64);
                let bad = |d: &str| {
                    Error::corrupt("xfs log record header", blk % nbb, self.byte_of(blk), d.to_string())
                };
                if step > nbb {
                    return Err(bad("record longer than the log"));
                }
                if !around && blk + step > nbb {
                    return Err(bad("record runs past the end of the log"));
                }
                let go_on = each(&mut r);
                out.push(r);
                Ok((step, go_on))
            };
        // Around the physical end of the log first when the tail lies past the head.
        let mut around = tail > head || (full && tail == head);
        loop {
            if around && blk >= nbb {
                blk -= nbb;
                around = false;
            }
            if !around && blk >= head {
                break;
            }
            match one(blk, around, &mut out) {
                Ok((step, go_on)) => {
                    blk += step;
                    if !go_on {
                        return (out, None);
                    }
                }
                Err(e) => return (out, Some((blk % nbb, e))),
            }
        }
        (out, None)
    }
}

/// Header blocks of a v2 log record of iclog size `size` (`xlog_logrec_hblks`): one per 32 KiB
/// when the record says it is v2, else one.
fn hblks_of(size: u64, version: u32) -> u64 {
    if version & VERSION_2 != 0 && size > HEADER_CYCLE_SIZE as u64 {
        size.div_ceil(HEADER_CYCLE_SIZE as u64)
    } else {
        1
    }
}

/// The iclog size and header blocks of one recovery pass (`xlog_do_recovery_pass` takes them
/// from the pass's first record).
#[derive(Debug, Clone, Copy)]
pub struct Pass {
    /// Largest record length accepted (`h_size` of the first record).
    pub bufsize: u64,
    /// Header blocks of every record.
    pub hblks: u64,
}

/// Bytes of unverified record data above which crcs are verified on two threads.
const PARALLEL_CRC_BYTES: u64 = 2 << 20;

/// Which kernel's search to follow where kernels differ.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
pub enum Rules {
    /// Linux 6.7 and later (and xfsprogs 6.7 and later): `xlog_find_verify_cycle` reads its
    /// range in one buffer of the next power of two.
    #[default]
    #[value(name = "6.7")]
    Linux6_7,
    /// Linux before 6.7 (6.1 among them) and xfsprogs before 6.7 (`xfs_logprint`): chunks of
    /// `1 << ffs(n)` blocks.
    #[value(name = "6.1")]
    Before6_7,
}

impl Rules {
    /// The kernels whose rules these are.
    pub fn name(self) -> &'static str {
        match self {
            Rules::Linux6_7 => "Linux 6.7 and later",
            Rules::Before6_7 => "Linux before 6.7 (6.1)",
        }
    }
}
