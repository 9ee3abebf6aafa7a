//! In-memory log recovery, pass by pass as `xlog_do_recovery_pass` with `xlog_recover_commit_trans`:
//! pass one builds the buffer-cancel table, pass two replays buffers (by dirty bitmap, with the v5
//! LSN rule), inode items into their clusters, and icreate items; the results go into an overlay of
//! 512-byte sectors. Buffers replayed on a v5 file system get their LSN and crc set as the kernel's
//! write verifiers do when recovery writes them back.

use super::format::lsn_cmp;
use super::items::*;
use super::record::Region;
use super::trans::{Item, Native, Trans};
use crate::error::{Error, Result};
use crate::image::{BlockSource, Overlay, check_range};
use crate::xfs::Superblock;
use byteorder::{BigEndian, ByteOrder};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// `XFS_DINODE_MAGIC` ("IN").
const DINODE_MAGIC: u16 = 0x494e;
/// Offset of di_crc in a v3 dinode.
const DINODE_CRC_OFF: usize = 100;
/// NULLAGINO.
const NULL_AGINO: u32 = 0xffff_ffff;

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
        if version >= 3 { 176 } else { 100 }
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

    /// An inode buffer (`XFS_BLF_INODE_BUF`): only the di_next_unlinked fields logged.
    fn inode_buffer(&mut self, it: &Item, b: &BufFormat, off: u64, blen: usize) -> Result<()> {
        let isz = self.geo.inodesize;
        let n_inodes = blen / isz;
        // Map each dirty chunk to (region index, offset in region).
        let mut chunk_src: HashMap<usize, (usize, usize)> = HashMap::new();
        let runs = chunk_regions(b, it)
            .map_err(|d| Error::corrupt("xfs log buffer item", b.blkno, b.blkno.saturating_mul(512), d))?;
        for (bit, n, ri) in runs {
            for k in 0..n {
                chunk_src.insert(bit + k, (ri, k * BLF_CHUNK));
            }
        }
        for ino in 0..n_inodes {
            let at_ino = ino * isz + 96;
            let Some(&(ri, ro)) = chunk_src.get(&(at_ino / BLF_CHUNK)) else { continue };
            let at = ro + at_ino % BLF_CHUNK;
            let mut w = [0u8; 4];
            if !it.regions.get(ri).is_some_and(|r| r.copy_to(&*self.log, at, &mut w)) {
                continue;
            }
            self.ov.write_bytes(off + at_ino as u64, &w)?;
            if self.geo.crc {
                let d0 = off + (ino * isz) as u64;
                let mut d = self.ov.read_at(d0, isz)?.into_owned();
                if d.get(4).is_some_and(|v| *v >= 3) {
                    set_crc(&mut d, DINODE_CRC_OFF);
                    self.ov
                        .write_bytes(d0 + DINODE_CRC_OFF as u64, &d[DINODE_CRC_OFF..DINODE_CRC_OFF + 4])?;
                }
            }
        }
        Ok(())
    }

    /// An inode item (`xlog_recover_inode_commit_pass2`).
    fn inode(&mut self, it: &Item, t: &Trans, log: &dyn BlockSource) -> Result<()> {
        let n = t.native;
        let f = InodeFormat::parse(&it.regions[0].bytes(log), n)
            .ok_or_else(|| Error::corrupt("xfs log inode item", 0, 0, "short inode log format"))?;
        let bad = |d: String| Error::corrupt("xfs log inode item", f.ino, f.blkno.saturating_mul(512), d);
        if self.is_cancelled(f.blkno, f.len) {
            self.stats.inodes_cancelled += 1;
            return Ok(());
        }
        let (off, blen) = self.span(f.blkno, u64::from(f.len))?;
        let isz = self.geo.inodesize;
        let bo = f.boffset as usize;
        if bo.checked_add(isz).is_none_or(|e| e > blen) {
            return Err(bad(format!("inode offset {bo} outside its {blen}-byte buffer")));
        }
        let Some(ldr) = it.regions.get(1) else { return Err(bad("no inode core region".into())) };
        // The log dinode (at most 176 bytes) copied to the stack: no allocation when a sector
        // starts inside it.
        let mut ld_buf = [0u8; 256];
        let whole;
        let n = ldr.len();
        let ld: &[u8] = if n <= ld_buf.len() && ldr.copy_to(log, 0, &mut ld_buf[..n]) {
            &ld_buf[..n]
        } else {
            whole = ldr.bytes(log);
            &whole
        };
        // Only the inode changes: it is copied out, changed, and written back when replayed.
        let d0 = off + bo as u64;
        self.settle_range(d0 / 512, (d0 % 512 + isz as u64).div_ceil(512), None)?;
        let mut dipv = std::mem::take(&mut self.scratch);
        dipv.clear();
        let g = u64::from(self.ov.granule());
        let within = (d0 % g) as usize;
        let r = if within + isz <= g as usize {
            // In the one granule that holds the inode (one lookup), changed in the copy and
            // written back only when replayed.
            let slot = &mut self.ov.granule_mut(d0 / g)?[within..within + isz];
            dipv.extend_from_slice(slot);
            let r = Self::inode_core(&self.geo, &mut self.stats, &mut dipv, it, t, &f, ld, log);
            if r.as_ref().is_ok_and(|done| *done) {
                slot.copy_from_slice(&dipv);
            }
            r
        } else {
            dipv.extend_from_slice(&self.ov.read_at(d0, isz)?);
            let r = Self::inode_core(&self.geo, &mut self.stats, &mut dipv, it, t, &f, ld, log);
            if r.as_ref().is_ok_and(|done| *done) {
                self.ov.write_bytes(d0, &dipv)?;
            }
            r
        };
        if r.as_ref().is_ok_and(|done| *done) {
            note_written(&mut self.written, f.blkno, blen);
            self.stats.inodes_replayed += 1;
        }
        self.scratch = dipv;
        r.map(|_| ())
    }

    /// The changes of an inode item to a copy of the inode, `dip`: true when replayed, false
    /// when skipped (the inode on disk is newer).
    #[allow(clippy::too_many_arguments)]
    fn inode_core(
        geo: &Geo,
        stats: &mut Stats,
        dip: &mut [u8],
        it: &Item,
        t: &Trans,
        f: &InodeFormat,
        ld: &[u8],
        log: &dyn BlockSource,
    ) -> Result<bool> {
        let n = t.native;
        let isz = geo.inodesize;
        let bad = |d: String| Error::corrupt("xfs log inode item", f.ino, f.blkno.saturating_mul(512), d);
        if BigEndian::read_u16(dip) != DINODE_MAGIC {
            return Err(bad("no inode magic in the cluster buffer".into()));
        }
        if n.u16(ld, 0) != Some(DINODE_MAGIC) {
            return Err(bad("bad log dinode magic".into()));
        }
        if dip[4] >= 3 {
            let lsn = BigEndian::read_u64(&dip[112..120]);
            if lsn != 0 && lsn != u64::MAX && lsn_cmp(lsn, t.lsn) == Ordering::Greater {
                stats.inodes_skipped += 1;
                return Ok(false);
            }
        }
        if !geo.crc {
            let ld_fi = n.u16(ld, 30).unwrap_or(0);
            let d_fi = BigEndian::read_u16(&dip[30..32]);
            if ld_fi < d_fi && !(d_fi == 0xffff && ld_fi < 0x7fff) {
                stats.inodes_skipped += 1;
                return Ok(false);
            }
        }
        let isize_log = if geo.crc { 176 } else { 96 };
        if ld.len() > isize_log || ld.len() < 96 {
            return Err(bad(format!("log dinode of {} bytes", ld.len())));
        }
        log_dinode_to_disk(ld, dip, n, t.lsn);
        let version = dip[4];
        let dsz = geo.dinode_size(version);
        let litino = isz.saturating_sub(dsz);
        let forkoff = usize::from(dip[82]) * 8;
        if forkoff > litino {
            return Err(bad(format!("fork offset {forkoff} past the literal area")));
        }
        if f.fields & ILOG_DEV != 0 {
            dip[dsz..dsz + 4].copy_from_slice(&f.rdev.to_be_bytes());
        }
        if f.size > 2 {
            let dsize = if forkoff > 0 { forkoff } else { litino };
            if let Some(src) = it.regions.get(2).filter(|_| f.fields & ILOG_DFORK != 0) {
                let src = &src.bytes(log)[..];
                match f.fields & ILOG_DFORK {
                    ILOG_DDATA | ILOG_DEXT => {
                        let Some(dst) = dip.get_mut(dsz..dsz + src.len()) else {
                            return Err(bad(format!("data fork of {} bytes past the inode", src.len())));
                        };
                        dst.copy_from_slice(src);
                    }
                    ILOG_DBROOT => bmbt_to_bmdr(src, &mut dip[dsz..dsz + dsize], geo.crc).map_err(bad)?,
                    x => return Err(bad(format!("data fork fields {x:#x}"))),
                }
            }
            if f.fields & ILOG_AFORK != 0 {
                let ai = if f.fields & ILOG_DFORK != 0 { 3 } else { 2 };
                let Some(src) = it.regions.get(ai) else { return Err(bad("no attr fork region".into())) };
                let src = &src.bytes(log)[..];
                let (ap, asz) = (dsz + forkoff, litino - forkoff);
                match f.fields & ILOG_AFORK {
                    ILOG_ADATA | ILOG_AEXT => {
                        let Some(dst) = dip.get_mut(ap..ap + src.len()) else {
                            return Err(bad(format!("attr fork of {} bytes past the inode", src.len())));
                        };
                        dst.copy_from_slice(src);
                    }
                    ILOG_ABROOT => bmbt_to_bmdr(src, &mut dip[ap..ap + asz], geo.crc).map_err(bad)?,
                    x => return Err(bad(format!("attr fork fields {x:#x}"))),
                }
            }
        }
        if f.fields & (ILOG_DOWNER | ILOG_AOWNER) != 0 {
            stats.owner_changes_not_replayed += 1;
        }
        if version >= 3 {
            set_crc(dip, DINODE_CRC_OFF);
        }
        Ok(true)
    }

    /// An icreate item (`xlog_recover_icreate_commit_pass2` → `xfs_ialloc_inode_init`).
    fn icreate(&mut self, it: &Item) -> Result<()> {
        let c = Icreate::parse(&it.regions[0].bytes(&*self.log))
            .ok_or_else(|| Error::corrupt("xfs log icreate item", 0, 0, "short icreate"))?;
        let g = self.geo;
        let g = &g;
        let bad = |d: String| Error::corrupt("xfs log icreate item", u64::from(c.agbno), 0, d);
        let (agbno, length) = (u64::from(c.agbno), u64::from(c.length));
        // One inode chunk at a time, as the kernel checks (ialloc_inos inodes, whole blocks).
        let max_inos = 64u64.max(g.inopblock);
        let count = u64::from(c.count);
        if length == 0
            || u64::from(c.ag) >= g.agcount
            || agbno + length > g.agblocks
            || c.isize as usize != g.inodesize
            || count == 0
            || count > max_inos
            || count != length * g.inopblock
        {
            return Err(bad(format!("agbno {agbno} length {length} isize {}", c.isize)));
        }
        let bpc = g.blocks_per_cluster;
        let nbufs = length / bpc;
        let bb_per_cluster = bpc * g.blocksize / 512;
        let daddr_of = |b: u64| (u64::from(c.ag) * g.agblocks + b) * (g.blocksize / 512);
        let cancelled = (0..nbufs)
            .filter(|j| self.is_cancelled(daddr_of(agbno + j * bpc), bb_per_cluster as u32))
            .count();
        if cancelled > 0 {
            self.stats.icreates_cancelled += 1;
            return Ok(());
        }
        let version: u8 = if g.crc { 3 } else { 2 };
        let per_cluster = (bpc * g.inopblock) as usize;
        let meta_uuid = g.meta_uuid;
        let isz = g.inodesize;
        for j in 0..nbufs {
            let b = agbno + j * bpc;
            let mut ino = (u64::from(c.ag) << (g.agblklog + g.inopblog)) | (b << g.inopblog);
            let mut buf = vec![0u8; per_cluster * isz];
            for i in 0..per_cluster {
                let d = &mut buf[i * isz..(i + 1) * isz];
                d[0..2].copy_from_slice(&DINODE_MAGIC.to_be_bytes());
                d[4] = version;
                d[92..96].copy_from_slice(&c.generation.to_be_bytes());
                d[96..100].copy_from_slice(&NULL_AGINO.to_be_bytes());
                if version == 3 {
                    d[152..160].copy_from_slice(&ino.to_be_bytes());
                    d[160..176].copy_from_slice(&meta_uuid);
                    ino += 1;
                    set_crc(d, DINODE_CRC_OFF);
                }
            }
            self.settle_range(daddr_of(b), bb_per_cluster, None)?;
            self.write(daddr_of(b), &buf)?;
        }
        self.stats.icreates_replayed += 1;
        Ok(())
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
                let Some((lo, _, co, st)) = meta_layout(&buf[..blen.min(512)]) else { continue };
                if !st || blen < lo + 8 || blen < co + 4 {
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
            let Some((lo, _, co, st)) = meta_layout(&pre) else { continue };
            if !st || blen < lo + 8 || blen < co + 4 {
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

/// Counts of keys of [`Replayer`]'s `due` by their first sector, hashed into a fixed table: a
/// count of 0 over a range of sectors means no due buffer starts there (collisions only make
/// the count larger, and the map is searched).
struct DueFilter {
    counts: Vec<u32>,
}

impl DueFilter {
    /// Table slots (a power of two).
    const SLOTS: u64 = 1 << 14;
    /// The longest range counted slot by slot (longer ones count as "maybe").
    const SPAN: u64 = 256;

    fn new() -> Self {
        Self { counts: vec![0; Self::SLOTS as usize] }
    }

    fn slot(&self, daddr: u64) -> usize {
        // Fibonacci hashing: the same block of every AG (a power-of-two distance apart) lands
        // in different slots.
        (daddr.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - Self::SLOTS.trailing_zeros())) as usize
    }

    fn add(&mut self, daddr: u64) {
        let s = self.slot(daddr);
        if let Some(c) = self.counts.get_mut(s) {
            *c = c.saturating_add(1);
        }
    }

    fn remove(&mut self, daddr: u64) {
        let s = self.slot(daddr);
        if let Some(c) = self.counts.get_mut(s) {
            *c = c.saturating_sub(1);
        }
    }

    /// Keys starting in `from..end` (basic blocks), or more.
    fn count(&self, from: u64, end: u64) -> u32 {
        if end <= from {
            return 0;
        }
        if end - from > Self::SPAN {
            return u32::MAX;
        }
        (from..end).fold(0u32, |a, d| a.saturating_add(self.counts.get(self.slot(d)).copied().unwrap_or(0)))
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

/// Where the LSN, uuid and crc of a v5 metadata block sit, found by its magic:
/// (lsn offset, uuid offset, crc offset, stamped by the write verifier).
fn meta_layout(buf: &[u8]) -> Option<(usize, usize, usize, bool)> {
    let m32 = BigEndian::read_u32(buf.get(..4)?);
    let l = match m32 {
        // Short-form btree blocks: AB3B AB3C RMB3 R3FC IAB3 FIB3.
        0x4142_3342 | 0x4142_3343 | 0x524d_4233 | 0x5233_4643 | 0x4941_4233 | 0x4649_4233 => {
            (24, 32, 52, true)
        }
        0x424d_4133 => (32, 40, 64, true),                            // BMA3
        0x5841_4746 => (208, 64, 216, true),                          // XAGF
        0x5841_464c => (24, 8, 32, true),                             // XAFL
        0x5841_4749 => (320, 296, 312, true),                         // XAGI
        0x5853_4c4d => (48, 16, 12, true),                            // XSLM
        0x5844_4233 | 0x5844_4433 | 0x5844_4633 => (16, 24, 4, true), // XDB3 XDD3 XDF3
        0x5846_5342 => (240, 248, 224, true),                         // XFSB
        _ => {
            let m16 = BigEndian::read_u16(buf.get(8..10)?);
            match m16 {
                0x3ebe | 0x3bee | 0x3df1 | 0x3dff => (24, 32, 12, true),
                _ => return None,
            }
        }
    };
    Some(l)
}

/// The LSN of a buffer on disk for the v5 skip rule (`xlog_recover_get_buf_lsn`); None means
/// "recover immediately".
fn buf_lsn(buf: &[u8], meta_uuid: &[u8; 16], blft: u16) -> Option<u64> {
    // Realtime bitmap/summary blocks carry no header.
    if blft == 14 || blft == 15 {
        return None;
    }
    let (lo, uo, _, _) = meta_layout(buf)?;
    let lsn = BigEndian::read_u64(buf.get(lo..lo + 8)?);
    let mut uuid_off = uo;
    if BigEndian::read_u32(&buf[..4]) == 0x5846_5342 {
        // Superblock: meta_uuid only with the META_UUID feature, else sb_uuid.
        let incompat = BigEndian::read_u32(buf.get(216..220)?);
        if incompat & crate::xfs::sb::INCOMPAT_META_UUID == 0 {
            uuid_off = 32;
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
    let Some((lo, _, co, st)) = meta_layout(buf) else { return false };
    if !st || buf.len() < lo + 8 || buf.len() < co + 4 {
        return false;
    }
    buf[lo..lo + 8].copy_from_slice(&lsn.to_be_bytes());
    set_crc(buf, co);
    true
}

/// `xfs_log_dinode_to_disk`: the logged core (native order) into the on-disk dinode.
fn log_dinode_to_disk(ld: &[u8], d: &mut [u8], n: Native, lsn: u64) {
    let u16_ = |at| n.u16(ld, at).unwrap_or(0);
    let u32_ = |at| n.u32(ld, at).unwrap_or(0);
    let u64_ = |at| n.u64(ld, at).unwrap_or(0);
    let version = ld[4];
    let flags2 = if version >= 3 { u64_(120) } else { 0 };
    let bigtime = version >= 3 && flags2 & 0x8 != 0;
    let nrext64 = version >= 3 && flags2 & 0x10 != 0;
    let put16 = |d: &mut [u8], at: usize, v: u16| d[at..at + 2].copy_from_slice(&v.to_be_bytes());
    let put32 = |d: &mut [u8], at: usize, v: u32| d[at..at + 4].copy_from_slice(&v.to_be_bytes());
    let put64 = |d: &mut [u8], at: usize, v: u64| d[at..at + 8].copy_from_slice(&v.to_be_bytes());
    let ts = |d: &mut [u8], at: usize| {
        if bigtime {
            d[at..at + 8].copy_from_slice(&u64_(at).to_be_bytes());
        } else {
            d[at..at + 4].copy_from_slice(&u32_(at).to_be_bytes());
            d[at + 4..at + 8].copy_from_slice(&u32_(at + 4).to_be_bytes());
        }
    };
    put16(d, 0, u16_(0));
    put16(d, 2, u16_(2));
    d[4] = version;
    d[5] = ld[5];
    put16(d, 6, 0);
    put32(d, 8, u32_(8));
    put32(d, 12, u32_(12));
    put32(d, 16, u32_(16));
    put16(d, 20, u16_(20));
    put16(d, 22, u16_(22));
    ts(d, 32);
    ts(d, 40);
    ts(d, 48);
    put64(d, 56, u64_(56));
    put64(d, 64, u64_(64));
    put32(d, 72, u32_(72));
    d[82] = ld[82];
    d[83] = ld[83];
    put32(d, 84, u32_(84));
    put16(d, 88, u16_(88));
    put16(d, 90, u16_(90));
    put32(d, 92, u32_(92));
    if version == 3 && ld.len() >= 176 {
        put64(d, 104, u64_(104));
        ts(d, 144);
        put64(d, 120, flags2);
        put32(d, 128, u32_(128));
        put64(d, 152, u64_(152));
        put64(d, 112, lsn);
        d[132..144].fill(0);
        d[160..176].copy_from_slice(&ld[160..176]);
        put64(d, 24, 0);
    } else {
        // flushiter is reset to zero before the copy.
        put16(d, 30, 0);
        d[24..30].fill(0);
    }
    if nrext64 {
        put64(d, 24, u64_(24));
        put32(d, 76, u32_(76));
        put16(d, 80, u16_(80));
    } else {
        put32(d, 76, u32_(76));
        put16(d, 80, u16_(80));
    }
}

/// `xfs_bmbt_to_bmdr`: an in-memory bmbt root block (long header) into the on-disk root.
fn bmbt_to_bmdr(src: &[u8], dst: &mut [u8], crc: bool) -> std::result::Result<(), String> {
    let hdr = if crc { 72 } else { 24 };
    if src.len() < hdr || dst.len() < 4 {
        return Err(format!("bmbt root of {} bytes", src.len()));
    }
    let level = BigEndian::read_u16(&src[4..6]);
    let numrecs = usize::from(BigEndian::read_u16(&src[6..8]));
    let mxr = (src.len() - hdr) / 16;
    let dmxr = (dst.len() - 4) / 16;
    if numrecs > mxr || numrecs > dmxr {
        return Err(format!("bmbt root with {numrecs} records (room for {mxr}/{dmxr})"));
    }
    dst[0..2].copy_from_slice(&level.to_be_bytes());
    dst[2..4].copy_from_slice(&(numrecs as u16).to_be_bytes());
    let keys = numrecs * 8;
    dst[4..4 + keys].copy_from_slice(&src[hdr..hdr + keys]);
    let sp = hdr + mxr * 8;
    let dp = 4 + dmxr * 8;
    dst[dp..dp + keys].copy_from_slice(&src[sp..sp + keys]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(regions: Vec<Vec<u8>>) -> Item {
        Item { total: regions.len(), regions: regions.into_iter().map(Region::Owned).collect() }
    }

    #[test]
    fn due_filter_never_misses_a_key() {
        // Keys at the same block of every AG (a power-of-two distance apart) and neighbours;
        // some removed again. A range with a key starting in it never counts 0.
        let mut f = DueFilter::new();
        let mut keys: Vec<u64> = vec![];
        for ag in 0..8u64 {
            for b in [1u64, 2, 8, 16, 24, 4096, 16383, 16384] {
                keys.push(ag * 524_288 + b);
            }
        }
        for k in &keys {
            f.add(*k);
        }
        for k in keys.iter().step_by(3) {
            f.remove(*k);
        }
        let live: Vec<u64> = keys.iter().enumerate().filter(|(i, _)| i % 3 != 0).map(|(_, k)| *k).collect();
        assert!(!live.is_empty());
        let mut zero = 0;
        for from in (0..8 * 524_288u64).step_by(7).take(200_000) {
            for len in [1u64, 8, 15, 40] {
                let n = f.count(from, from + len);
                let truth = live.iter().filter(|k| (from..from + len).contains(k)).count() as u32;
                assert!(n >= truth, "from {from} len {len}: {n} < {truth}");
                zero += usize::from(n == 0);
            }
        }
        // The filter does tell most empty ranges apart.
        assert!(zero > 100_000, "{zero}");
        assert_eq!(f.count(5, 5), 0);
        assert_eq!(f.count(0, DueFilter::SPAN + 1), u32::MAX);
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
    fn bmbt_root_moves_pointers() {
        // A crc bmbt root (72-byte header) with room for 2 records, holding 1, into a 36-byte bmdr.
        let mut src = vec![0u8; 72 + 32];
        src[4..6].copy_from_slice(&1u16.to_be_bytes());
        src[6..8].copy_from_slice(&1u16.to_be_bytes());
        src[72..80].copy_from_slice(&7u64.to_be_bytes()); // key 0
        src[72 + 16..72 + 24].copy_from_slice(&99u64.to_be_bytes()); // ptr 0 after 2 key slots
        let mut dst = vec![0u8; 36];
        bmbt_to_bmdr(&src, &mut dst, true).unwrap(); // OK to unwrap: sizes are consistent
        assert_eq!(&dst[0..4], &[0, 1, 0, 1]);
        assert_eq!(BigEndian::read_u64(&dst[4..12]), 7);
        assert_eq!(BigEndian::read_u64(&dst[20..28]), 99); // dmxr = 2: ptrs at 4 + 16
        let mut tiny = vec![0u8; 3];
        assert!(bmbt_to_bmdr(&src, &mut tiny, true).is_err());
    }

    #[test]
    fn log_dinode_converts_to_big_endian() {
        let mut ld = vec![0u8; 176];
        ld[0..2].copy_from_slice(&DINODE_MAGIC.to_le_bytes());
        ld[2..4].copy_from_slice(&0o100644u16.to_le_bytes());
        ld[4] = 3;
        ld[5] = 2;
        ld[56..64].copy_from_slice(&12345u64.to_le_bytes());
        ld[32..36].copy_from_slice(&10u32.to_le_bytes()); // legacy timestamp: sec
        ld[36..40].copy_from_slice(&20u32.to_le_bytes()); // nsec
        ld[152..160].copy_from_slice(&131u64.to_le_bytes());
        let mut d = vec![0u8; 512];
        log_dinode_to_disk(&ld, &mut d, Native::Little, 0x0000_0002_0000_0010);
        assert_eq!(BigEndian::read_u16(&d[0..2]), DINODE_MAGIC);
        assert_eq!(BigEndian::read_u16(&d[2..4]), 0o100644);
        assert_eq!(BigEndian::read_u64(&d[56..64]), 12345);
        assert_eq!(BigEndian::read_u32(&d[32..36]), 10);
        assert_eq!(BigEndian::read_u32(&d[36..40]), 20);
        assert_eq!(BigEndian::read_u64(&d[152..160]), 131);
        assert_eq!(BigEndian::read_u64(&d[112..120]), 0x0000_0002_0000_0010);
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
