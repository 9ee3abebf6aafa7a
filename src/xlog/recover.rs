//! In-memory log recovery, pass by pass as `xlog_do_recovery_pass` with `xlog_recover_commit_trans`:
//! pass one builds the buffer-cancel table, pass two replays buffers (by dirty bitmap, with the v5
//! LSN rule) and hands inode and icreate items to `recover/inode.rs`; the results go into an
//! overlay of 512-byte sectors. Buffers replayed on a v5 file system get their LSN and crc set as
//! the kernel's write verifiers do when recovery writes them back (where, by the block's magic:
//! [`crate::xfs::blockhdr`]).

use super::due::DueFilter;
use super::format::lsn_cmp;
use super::items::*;
use super::record::Region;
use super::trans::{Item, Native, Trans};
use crate::error::{Error, Result};
use crate::image::{BlockSource, Overlay, check_range};
use crate::xfs::Superblock;
use crate::xfs::blockhdr::{SB_FEATURES_INCOMPAT, SB_UUID, V5Header, v5_header};
use crate::xfs::inode::{V2_CORE, V3_CORE};
use crate::xfs::sb::{INCOMPAT_META_UUID, XFS_SB_MAGIC};
use byteorder::{BigEndian, ByteOrder};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

mod inode;

/// What replay did, for the report.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    /// Transactions replayed.
    pub transactions_replayed: usize,
    /// Buffer items replayed.
    pub buffers_replayed: usize,
    /// Buffer items skipped because the buffer was cancelled (freed) later.
    pub buffers_cancelled: usize,
    /// Buffer items skipped because the buffer on disk is newer (v5 LSN).
    pub buffers_skipped_lsn: usize,
    /// Dquot buffers not replayed (quota accounting is a mount option; off here).
    pub dquot_buffers_skipped: usize,
    /// Cancel records seen in pass one.
    pub cancel_records: usize,
    /// Inode items replayed.
    pub inodes_replayed: usize,
    /// Inode items skipped because the inode on disk is newer (v5 LSN / v4 flushiter).
    pub inodes_skipped: usize,
    /// Inode items skipped because their cluster was cancelled.
    pub inodes_cancelled: usize,
    /// Inode chunks initialised by icreate items.
    pub icreates_replayed: usize,
    /// icreate items skipped (cancelled cluster).
    pub icreates_cancelled: usize,
    /// Intent/done and other items that need no replay here.
    pub other_items: usize,
    /// Fork owner changes not replayed (swapext on v5).
    pub owner_changes_not_replayed: usize,
    /// Buffers whose LSN and crc were set after replay.
    pub buffers_stamped: usize,
    /// Items that could not be replayed, with why.
    pub errors: Vec<String>,
}

/// File-system geometry replay needs.
#[derive(Clone, Copy)]
struct Geo {
    crc: bool,
    blocksize: u64,
    agblocks: u64,
    agblklog: u32,
    inopblog: u32,
    inodesize: usize,
    meta_uuid: [u8; 16],
    blocks_per_cluster: u64,
    inopblock: u64,
    agcount: u64,
}

impl Geo {
    fn new(sb: &Superblock) -> Self {
        let raw = sb.raw();
        let blocksize = u64::from(sb.blocksize());
        let inodesize = sb.inodesize() as usize;
        let mut cluster_raw: u64 = 8192;
        if sb.has_crc() {
            let new = cluster_raw * (inodesize as u64 / 256).max(1);
            if u64::from(raw.inoalignmt.get()) >= new / blocksize {
                cluster_raw = new;
            }
        }
        let blocks_per_cluster = if blocksize >= cluster_raw { 1 } else { cluster_raw / blocksize };
        Self {
            crc: sb.has_crc(),
            blocksize,
            agblocks: u64::from(sb.agblocks()),
            agblklog: u32::from(sb.agblklog()),
            inopblog: u32::from(sb.inopblog()),
            inodesize,
            meta_uuid: sb.meta_uuid(),
            blocks_per_cluster,
            inopblock: u64::from(sb.inopblock()),
            agcount: u64::from(sb.agcount()),
        }
    }
    /// Size of the dinode core on disk.
    fn dinode_size(&self, version: u8) -> usize {
        if version >= 3 { V3_CORE } else { V2_CORE }
    }
}

/// The recovery engine over an overlay.
pub struct Replayer {
    ov: Overlay,
    /// The log's source (where the regions of the transactions are).
    log: Arc<dyn BlockSource>,
    /// Buffers stamped with an LSN whose crc is not computed yet: (daddr, BBs) → crc offset.
    /// The crc is computed when anything else touches those bytes, or at the end, so that a
    /// buffer replayed in many transactions is summed once (the result is the same as summing
    /// at every stamp: nothing reads the field in between).
    due: BTreeMap<(u64, u32), usize>,
    /// The longest buffer ever in `due`, in basic blocks.
    due_bbs: u32,
    /// The buffers in `due` counted by where they start (a quick "none near here").
    due_starts: DueFilter,
    /// A reused copy of the inode being replayed.
    scratch: Vec<u8>,
    /// The dirty runs of the buffer being replayed (reused).
    runs: Vec<(usize, usize, usize)>,
    geo: Geo,
    cancel: HashMap<(u64, u32), u32>,
    /// Buffers replayed since the last LSN change: (daddr, BBs) and the LSN to stamp, in the
    /// order replayed (sorted by key when flushed, the last LSN of a key kept).
    pending: Vec<((u64, u32), u64)>,
    recovery_lsn: Option<u64>,
    /// Sector ranges written (first 512-byte sector, count), for the count of sectors replaced
    /// (a range equal to the one before it is not pushed again; the LSN stamps of buffers
    /// replayed are not pushed: their replay pushed the same range).
    written: Vec<(u64, u64)>,
    /// Counters.
    pub stats: Stats,
}

impl Replayer {
    /// A replayer writing into a fresh overlay over `base`, reading the transactions' regions
    /// from `log` (the log's source: `base` itself for an internal log).
    pub fn new(base: Arc<dyn BlockSource>, log: Arc<dyn BlockSource>, sb: &Superblock) -> Result<Self> {
        Ok(Self {
            log,
            due: BTreeMap::new(),
            due_bbs: 0,
            due_starts: DueFilter::new(),
            scratch: Vec::new(),
            runs: Vec::new(),
            // The overlay replaces whole fs blocks (read-modify-write for smaller buffers), so
            // that the model's block reads borrow one granule instead of assembling sectors.
            ov: Overlay::new(base, overlay_granule(sb.blocksize()), "xfs log recovery")?,
            geo: Geo::new(sb),
            cancel: HashMap::new(),
            pending: Vec::new(),
            recovery_lsn: None,
            written: Vec::new(),
            stats: Stats::default(),
        })
    }

    /// Pass one: the buffer-cancel table.
    pub fn pass1(&mut self, t: &Trans) {
        for it in &t.items {
            let log = &*self.log;
            // The flags are in the inline bytes: only cancel records are read from the log.
            if item_type(it, t.native, log) == Some(LI_BUF)
                && buf_flags(it, t.native) & BLF_CANCEL != 0
                && let Some(b) = it.regions.first().and_then(|r| BufFormat::parse(&r.bytes(log), t.native))
                && b.flags & BLF_CANCEL != 0
            {
                *self.cancel.entry((b.blkno, u32::from(b.len))).or_insert(0) += 1;
                self.stats.cancel_records += 1;
            }
        }
    }

    fn is_cancelled(&self, blkno: u64, len: u32) -> bool {
        // Most logs hold no cancel record: no hashing then.
        !self.cancel.is_empty() && self.cancel.contains_key(&(blkno, len))
    }

    /// Pass two for one committed transaction.
    pub fn pass2(&mut self, t: &Trans) -> Result<()> {
        if self.recovery_lsn != Some(t.lsn) {
            self.flush()?;
            self.recovery_lsn = Some(t.lsn);
        }
        // xlog_recover_reorder_trans: buffers and icreates first, then other items, then inode
        // buffers and cancel records (both most recent first).
        let mut bufs = vec![];
        let mut items = vec![];
        let mut inode_bufs = vec![];
        let mut cancels = vec![];
        for it in &t.items {
            if it.regions.is_empty() {
                continue;
            }
            let log = &*self.log;
            match item_type(it, t.native, log) {
                Some(LI_BUF) => {
                    let f = buf_flags(it, t.native);
                    if f & BLF_CANCEL != 0 {
                        cancels.push(it);
                    } else if f & BLF_INODE_BUF != 0 {
                        inode_bufs.push(it);
                    } else {
                        bufs.push(it);
                    }
                }
                Some(LI_ICREATE) => bufs.push(it),
                _ => items.push(it),
            }
        }
        // One reference to the log for the whole transaction (the items borrow it while the
        // replayer changes).
        let log = self.log.clone();
        let log = &*log;
        for it in
            bufs.into_iter().chain(items).chain(inode_bufs.into_iter().rev()).chain(cancels.into_iter().rev())
        {
            let ty = item_type(it, t.native, log).unwrap_or(0);
            let r = match ty {
                LI_BUF => self.buf(it, t, log),
                LI_INODE => self.inode(it, t, log),
                LI_ICREATE => self.icreate(it),
                _ => {
                    self.stats.other_items += 1;
                    Ok(())
                }
            };
            if let Err(e) = r {
                self.stats.errors.push(format!("tid {:#x} {} item: {e}", t.tid, type_name(ty)));
            }
        }
        self.stats.transactions_replayed += 1;
        Ok(())
    }

    /// Byte offset and length of the buffer at `daddr`, `bbs` basic blocks long, checked as
    /// reading it would be.
    fn span(&self, daddr: u64, bbs: u64) -> Result<(u64, usize)> {
        let off = daddr
            .checked_mul(512)
            .ok_or_else(|| Error::corrupt("xfs log item", daddr, 0, "daddr overflow"))?;
        let len = bbs.checked_mul(512).filter(|l| *l <= 1 << 20).ok_or_else(|| {
            Error::corrupt("xfs log item", daddr, off, format!("buffer of {bbs} basic blocks"))
        })?;
        check_range("overlay", off, len as usize, self.ov.len())?;
        Ok((off, len as usize))
    }

    /// Compute the crc of buffer `key` if it is due.
    fn settle_key(&mut self, key: (u64, u32)) -> Result<()> {
        let Some(co) = self.due.remove(&key) else { return Ok(()) };
        self.due_starts.remove(key.0);
        let (off, len) = self.span(key.0, u64::from(key.1))?;
        let c = crate::xfs::crc::crc_with_hole(&self.ov.read_at(off, len)?, co);
        if let Some(c) = c {
            self.ov.write_bytes(off + co as u64, &c.to_le_bytes())?;
        }
        Ok(())
    }

    /// Compute the due crcs of the buffers overlapping `bbs` basic blocks at `daddr` (before
    /// those bytes are read or changed), except that of `except`.
    fn settle_range(&mut self, daddr: u64, bbs: u64, except: Option<(u64, u32)>) -> Result<()> {
        if self.due.is_empty() {
            return Ok(());
        }
        let end = daddr.saturating_add(bbs);
        // No due buffer is longer than due_bbs basic blocks.
        let from = (daddr.saturating_sub(u64::from(self.due_bbs)), 0);
        // Most calls find no due buffer but `except` starting in that range: told without a
        // search of the map. A due buffer overlapping the range starts after `from` (it is at
        // most due_bbs long).
        let mut near = self.due_starts.count(from.0.saturating_add(1), end);
        if near > 0
            && let Some(k) = except
            && (from.0.saturating_add(1)..end).contains(&k.0)
            && self.due_starts.count(k.0, k.0 + 1) > 0
            && self.due.contains_key(&k)
        {
            near -= 1;
        }
        if near == 0 {
            return Ok(());
        }
        loop {
            let next = self
                .due
                .range(from..(end, 0))
                .map(|(k, _)| *k)
                .find(|k| k.0.saturating_add(u64::from(k.1)) > daddr && Some(*k) != except);
            let Some(k) = next else { return Ok(()) };
            self.settle_key(k)?;
        }
    }

    /// Copy `n` bytes of region `r` (from its start) to byte `dst` of the overlay.
    fn copy_region(&mut self, r: &Region, dst: u64, n: usize) -> Result<()> {
        let g = u64::from(self.ov.granule());
        let mut done = 0usize;
        while done < n {
            let abs = dst + done as u64;
            let within = (abs % g) as usize;
            let k = (g as usize - within).min(n - done);
            let gm = self.ov.granule_mut(abs / g)?;
            if !r.copy_to(&*self.log, done, &mut gm[within..within + k]) {
                return Err(Error::corrupt(
                    "xfs log buffer item",
                    abs / 512,
                    abs,
                    "region shorter than its chunks",
                ));
            }
            done += k;
        }
        Ok(())
    }

    fn write(&mut self, daddr: u64, data: &[u8]) -> Result<()> {
        let off = daddr
            .checked_mul(512)
            .ok_or_else(|| Error::corrupt("xfs log item", daddr, 0, "daddr overflow"))?;
        note_written(&mut self.written, daddr, data.len());
        self.ov.write_bytes(off, data)
    }

    /// A buffer item (`xlog_recover_buf_commit_pass2`).
    fn buf(&mut self, it: &Item, t: &Trans, log: &dyn BlockSource) -> Result<()> {
        let r0 = it.regions[0].bytes(log);
        let b = BufFormat::parse(&r0, t.native)
            .ok_or_else(|| Error::corrupt("xfs log buffer item", 0, 0, "short buffer log format"))?;
        let key = (b.blkno, u32::from(b.len));
        if b.flags & BLF_CANCEL != 0 {
            if let Some(c) = self.cancel.get_mut(&key) {
                *c -= 1;
                if *c == 0 {
                    self.cancel.remove(&key);
                }
            }
            self.stats.buffers_cancelled += 1;
            return Ok(());
        }
        if self.is_cancelled(b.blkno, u32::from(b.len)) {
            self.stats.buffers_cancelled += 1;
            return Ok(());
        }
        let (off, blen) = self.span(b.blkno, u64::from(b.len))?;
        self.settle_range(b.blkno, u64::from(b.len), Some(key))?;
        let g = u64::from(self.ov.granule());
        if b.flags & (BLF_INODE_BUF | BLF_DQUOT_BUFS) == 0 && (off % g) as usize + blen <= g as usize {
            return self.buf_in_granule(it, t, &b, off, blen, log);
        }
        if self.geo.crc {
            // The header fields the LSN rule reads are in the first sector.
            let pre = self.ov.read_at(off, blen.min(512))?;
            if let Some(lsn) = buf_lsn(&pre, &self.geo.meta_uuid, b.blft())
                && lsn != 0
                && lsn != u64::MAX
                && lsn_cmp(lsn, t.lsn) != Ordering::Less
            {
                self.stats.buffers_skipped_lsn += 1;
                return Ok(());
            }
        }
        if b.flags & BLF_INODE_BUF != 0 {
            self.settle_key(key)?;
            self.inode_buffer(it, &b, off, blen)?;
        } else if b.flags & BLF_DQUOT_BUFS != 0 {
            self.stats.dquot_buffers_skipped += 1;
            return Ok(());
        } else {
            let runs = dirty_runs(&b, it, blen)?;
            if self.due.contains_key(&key) && self.layout_may_change(&runs, it, off)? {
                self.settle_key(key)?;
            }
            for (bit, n, ri) in runs {
                self.copy_region(&it.regions[ri], off + (bit * BLF_CHUNK) as u64, n * BLF_CHUNK)?;
            }
        }
        note_written(&mut self.written, b.blkno, blen);
        if self.geo.crc {
            self.pending.push((key, t.lsn));
        }
        self.stats.buffers_replayed += 1;
        Ok(())
    }

    /// [`Replayer::buf`] for a plain buffer inside one overlay granule (most are one fs block):
    /// the same steps, in place in the granule.
    fn buf_in_granule(
        &mut self,
        it: &Item,
        t: &Trans,
        b: &BufFormat,
        off: u64,
        blen: usize,
        log: &dyn BlockSource,
    ) -> Result<()> {
        let key = (b.blkno, u32::from(b.len));
        let g = u64::from(self.ov.granule());
        let within = (off % g) as usize;
        let geo = self.geo;
        let buf = &mut self.ov.granule_mut(off / g)?[within..within + blen];
        if geo.crc
            && let Some(lsn) = buf_lsn(&buf[..blen.min(512)], &geo.meta_uuid, b.blft())
            && lsn != 0
            && lsn != u64::MAX
            && lsn_cmp(lsn, t.lsn) != Ordering::Less
        {
            self.stats.buffers_skipped_lsn += 1;
            return Ok(());
        }
        let runs = &mut self.runs;
        dirty_runs_into(b, it, blen, runs)?;
        if let Some(&co) = self.due.get(&key)
            && layout_changes(buf, runs, it, log)
        {
            // Its crc as it was stamped, before the bytes change (see `due`).
            set_crc(buf, co);
            self.due.remove(&key);
            self.due_starts.remove(key.0);
        }
        for &(bit, n, ri) in runs.iter() {
            let (start, bytes) = (bit * BLF_CHUNK, n * BLF_CHUNK);
            if !it.regions[ri].copy_to(log, 0, &mut buf[start..start + bytes]) {
                let abs = off + start as u64;
                return Err(Error::corrupt(
                    "xfs log buffer item",
                    abs / 512,
                    abs,
                    "region shorter than its chunks",
                ));
            }
        }
        note_written(&mut self.written, b.blkno, blen);
        if geo.crc {
            self.pending.push((key, t.lsn));
        }
        self.stats.buffers_replayed += 1;
        Ok(())
    }

    /// Would the chunks `runs` of `it` change the bytes that decide where a stamped buffer at
    /// byte `off` keeps its crc (its magic numbers, in the first chunk)?
    fn layout_may_change(&self, runs: &[(usize, usize, usize)], it: &Item, off: u64) -> Result<bool> {
        let Some(&(0, _, ri)) = runs.first() else { return Ok(false) };
        let mut new = [0u8; 10];
        if !it.regions.get(ri).is_some_and(|r| r.copy_to(&*self.log, 0, &mut new)) {
            return Ok(true);
        }
        let cur = self.ov.read_at(off, 10)?;
        Ok(cur[..4] != new[..4] || cur[8..10] != new[8..10])
    }

    /// Write back the buffers replayed since the last LSN change, as the kernel's delwri
    /// submission does: the verifiers stamp the LSN and recompute the crc (the crc is computed
    /// later, see `due`).
    pub fn flush(&mut self) -> Result<()> {
        let mut pending = std::mem::take(&mut self.pending);
        // In key order, one entry per buffer with the LSN inserted last (as a map would keep).
        pending.sort_by_key(|e| e.0);
        pending.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = later.1;
            }
            same
        });
        let r = self.flush_sorted(&pending);
        pending.clear();
        self.pending = pending;
        r
    }

    /// [`Replayer::flush`] of `pending`, sorted by key without duplicates.
    fn flush_sorted(&mut self, pending: &[((u64, u32), u64)]) -> Result<()> {
        for &(key, lsn) in pending {
            let (off, blen) = self.span(key.0, u64::from(key.1))?;
            self.settle_range(key.0, u64::from(key.1), Some(key))?;
            let g = u64::from(self.ov.granule());
            if (off % g) as usize + blen <= g as usize {
                // In place in the one granule that holds the buffer.
                let within = (off % g) as usize;
                let buf = &mut self.ov.granule_mut(off / g)?[within..within + blen];
                let Some(V5Header { lsn: lo, crc: co, .. }) = v5_header(&buf[..blen.min(512)]) else {
                    continue;
                };
                if blen < lo + 8 || blen < co + 4 {
                    continue;
                }
                // One lookup in the due map: a crc still due at another place is computed
                // first (as it was stamped), then the LSN is stamped and the crc is due here.
                match self.due.entry(key) {
                    std::collections::btree_map::Entry::Occupied(mut o) => {
                        if *o.get() != co {
                            set_crc(buf, *o.get());
                            o.insert(co);
                        }
                    }
                    std::collections::btree_map::Entry::Vacant(v) => {
                        v.insert(co);
                        self.due_starts.add(key.0);
                    }
                }
                buf[lo..lo + 8].copy_from_slice(&lsn.to_be_bytes());
                self.due_bbs = self.due_bbs.max(key.1);
                self.stats.buffers_stamped += 1;
                continue;
            }
            let pre = self.ov.read_at(off, blen.min(512))?;
            let Some(V5Header { lsn: lo, crc: co, .. }) = v5_header(&pre) else { continue };
            if blen < lo + 8 || blen < co + 4 {
                continue;
            }
            if self.due.get(&key).is_some_and(|c| *c != co) {
                self.settle_key(key)?;
            }
            self.ov.write_bytes(off + lo as u64, &lsn.to_be_bytes())?;
            if self.due.insert(key, co).is_none() {
                self.due_starts.add(key.0);
            }
            self.due_bbs = self.due_bbs.max(key.1);
            self.stats.buffers_stamped += 1;
        }
        Ok(())
    }

    /// Finish: flush and hand back the overlay, the counters and the number of distinct
    /// 512-byte sectors replaced.
    pub fn finish(mut self) -> Result<(Overlay, Stats, u64)> {
        self.flush()?;
        let due: Vec<(u64, u32)> = self.due.keys().copied().collect();
        for k in due {
            self.settle_key(k)?;
        }
        let mut w = std::mem::take(&mut self.written);
        w.sort_unstable();
        let mut sectors = 0u64;
        let mut end = 0u64;
        for (start, n) in w {
            let e = start.saturating_add(n);
            if e > end {
                sectors += e - start.max(end);
                end = e;
            }
        }
        Ok((self.ov, self.stats, sectors))
    }
}

/// [`Replayer::layout_may_change`] for a buffer `buf` in memory.
fn layout_changes(buf: &[u8], runs: &[(usize, usize, usize)], it: &Item, log: &dyn BlockSource) -> bool {
    let Some(&(0, _, ri)) = runs.first() else { return false };
    let mut new = [0u8; 10];
    if !it.regions.get(ri).is_some_and(|r| r.copy_to(log, 0, &mut new)) {
        return true;
    }
    buf.get(..10).is_none_or(|cur| cur[..4] != new[..4] || cur[8..10] != new[8..10])
}

/// The flags of a buffer item whose format parses (`BufFormat::parse` needs 20 bytes), from the
/// inline bytes of its first region; 0 otherwise.
fn buf_flags(it: &Item, n: Native) -> u16 {
    match it.regions.first() {
        Some(r) if r.len() >= 20 => n.u16(r.first(), 4).unwrap_or(0),
        _ => 0,
    }
}

/// The overlay granule for an XFS file system of block size `bs`: the block, when it is a
/// power of two from 512 bytes to 64 KiB, else the 512-byte sector.
fn overlay_granule(bs: u32) -> u32 {
    if bs.is_power_of_two() && (512..=65536).contains(&bs) { bs } else { 512 }
}

/// [`chunk_regions`] of a buffer item of `blen` bytes, as a corrupt-input error when the map does
/// not fit its regions or a dirty chunk lies past the buffer.
fn dirty_runs(b: &BufFormat, it: &Item, blen: usize) -> Result<Vec<(usize, usize, usize)>> {
    let mut runs = vec![];
    dirty_runs_into(b, it, blen, &mut runs)?;
    Ok(runs)
}

/// [`dirty_runs`] into `runs` (cleared first; a vector reused from buffer to buffer).
fn dirty_runs_into(
    b: &BufFormat,
    it: &Item,
    blen: usize,
    runs: &mut Vec<(usize, usize, usize)>,
) -> Result<()> {
    let corrupt = |d| Error::corrupt("xfs log buffer item", b.blkno, b.blkno.saturating_mul(512), d);
    chunk_regions_into(b, it, runs).map_err(corrupt)?;
    if runs.iter().any(|&(bit, n, _)| (bit + n) * BLF_CHUNK > blen) {
        return Err(corrupt("dirty chunk past the buffer".into()));
    }
    Ok(())
}

/// The kernel's walk of a buffer item's dirty bitmap: (first chunk, chunks, region index) for
/// each copy, a run being cut where its region ends (a run may span several regions).
fn chunk_regions(b: &BufFormat, it: &Item) -> std::result::Result<Vec<(usize, usize, usize)>, String> {
    let mut out = vec![];
    chunk_regions_into(b, it, &mut out)?;
    Ok(out)
}

/// [`chunk_regions`] into `out` (cleared first).
fn chunk_regions_into(
    b: &BufFormat,
    it: &Item,
    out: &mut Vec<(usize, usize, usize)>,
) -> std::result::Result<(), String> {
    out.clear();
    let mut bit = 0usize;
    let mut ri = 1usize;
    let nb = b.nbits();
    loop {
        let s = b.next_bit(bit, true);
        if s >= nb {
            break;
        }
        let mut n = b.next_bit(s, false) - s;
        let Some(reg) = it.regions.get(ri) else {
            return Err(format!("dirty chunk {s} has no region (item has {})", it.regions.len()));
        };
        if reg.len() < n * BLF_CHUNK {
            n = reg.len() / BLF_CHUNK;
        }
        if n == 0 {
            return Err(format!("region {ri} of {} bytes is shorter than a chunk", reg.len()));
        }
        out.push((s, n, ri));
        ri += 1;
        bit = s + n;
    }
    Ok(())
}

/// Note that `bytes` bytes from sector `daddr` were written, for the count of sectors replaced: a
/// range equal to the one noted just before is not noted again (replay writes the same buffer
/// over and over).
fn note_written(written: &mut Vec<(u64, u64)>, daddr: u64, bytes: usize) {
    let w = (daddr, (bytes as u64).div_ceil(512));
    if written.last() != Some(&w) {
        written.push(w);
    }
}

/// Set the little-endian crc32c at `off` of `buf`.
fn set_crc(buf: &mut [u8], off: usize) {
    // The crc with its field taken as zero: zeroed in place, one pass.
    if let Some(f) = off.checked_add(4).and_then(|e| buf.get_mut(off..e)) {
        f.fill(0);
        let c = crate::crc32c::append(0, buf);
        buf[off..off + 4].copy_from_slice(&c.to_le_bytes());
    }
}

/// The LSN of a buffer on disk for the v5 skip rule (`xlog_recover_get_buf_lsn`); None means
/// "recover immediately".
fn buf_lsn(buf: &[u8], meta_uuid: &[u8; 16], blft: u16) -> Option<u64> {
    // Realtime bitmap/summary blocks carry no header.
    if blft == 14 || blft == 15 {
        return None;
    }
    let h = v5_header(buf)?;
    let lsn = BigEndian::read_u64(buf.get(h.lsn..h.lsn + 8)?);
    let mut uuid_off = h.uuid;
    if BigEndian::read_u32(&buf[..4]) == XFS_SB_MAGIC {
        // Superblock: meta_uuid only with the META_UUID feature, else sb_uuid.
        let incompat = BigEndian::read_u32(buf.get(SB_FEATURES_INCOMPAT..SB_FEATURES_INCOMPAT + 4)?);
        if incompat & INCOMPAT_META_UUID == 0 {
            uuid_off = SB_UUID;
        }
    }
    if buf.get(uuid_off..uuid_off + 16)? != meta_uuid {
        return None;
    }
    Some(lsn)
}

/// Stamp `lsn` and recompute the crc of a replayed v5 metadata block. False when the block is
/// not a type whose write verifier does that. (What [`Replayer::flush`] does, with the crc
/// deferred.)
#[cfg(test)]
fn stamp(buf: &mut [u8], lsn: u64) -> bool {
    let Some(V5Header { lsn: lo, crc: co, .. }) = v5_header(buf) else { return false };
    if buf.len() < lo + 8 || buf.len() < co + 4 {
        return false;
    }
    buf[lo..lo + 8].copy_from_slice(&lsn.to_be_bytes());
    set_crc(buf, co);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(regions: Vec<Vec<u8>>) -> Item {
        Item { total: regions.len(), regions: regions.into_iter().map(Region::Owned).collect() }
    }

    #[test]
    fn next_bit_agrees_with_bit() {
        let mut map = [0u32; 16];
        map[0] = 0xf00f_0ff1;
        map[1] = 0xffff_ffff;
        map[2] = 0x8000_0001;
        for words in 0..4 {
            let b = BufFormat { flags: 0, len: 8, blkno: 0, map, words };
            let nb = b.nbits();
            for from in 0..nb + 3 {
                for set in [true, false] {
                    let slow = (from..nb).find(|&x| b.bit(x) == set).unwrap_or(nb);
                    assert_eq!(b.next_bit(from, set), slow, "words {words} from {from} set {set}");
                }
            }
        }
    }

    #[test]
    fn dirty_runs_follow_regions() {
        // Chunks 0..4 dirty (one run), logged as two regions of 2 chunks; chunk 6 in a third.
        let mut map = [0; 16];
        map[0] = 0b100_1111;
        let b = BufFormat { flags: 0, len: 8, blkno: 0, map, words: 1 };
        let it = item(vec![vec![], vec![1; 256], vec![2; 256], vec![3; 128]]);
        assert_eq!(chunk_regions(&b, &it).unwrap(), vec![(0, 2, 1), (2, 2, 2), (6, 1, 3)]); // OK to unwrap: regions present
        let short = item(vec![vec![], vec![1; 256]]);
        assert!(chunk_regions(&b, &short).is_err());
    }

    #[test]
    fn stamping_sets_lsn_and_crc() {
        let mut b = vec![0u8; 4096];
        b[0..4].copy_from_slice(&0x424d_4133u32.to_be_bytes()); // BMA3
        assert!(stamp(&mut b, 0x5_0000_0040));
        assert_eq!(BigEndian::read_u64(&b[32..40]), 0x5_0000_0040);
        assert!(crate::xfs::crc::verify(&b, 64).unwrap().0); // OK to unwrap: the block holds the field
        let mut unknown = vec![0u8; 512];
        assert!(!stamp(&mut unknown, 1));
    }
}
