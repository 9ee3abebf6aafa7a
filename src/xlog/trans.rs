//! Reassembling transactions from the op headers of the records between tail and head, as
//! `xlog_recover_process_data` does: regions split across records (`CONTINUE`/`WAS_CONT`), the
//! transaction header, items made of `ilf_size`-style region counts, and commit records.

use super::format::*;
use super::record::{RecData, Record, Region};
use crate::image::BlockSource;
use byteorder::{BigEndian, ByteOrder, LittleEndian};
use std::collections::HashMap;

/// Most regions in one item (`XLOG_MAX_REGIONS_IN_ITEM`).
pub const MAX_REGIONS_IN_ITEM: usize = 65536 / 128 / 2 + 1;

/// Byte order the writing host used for native-order structures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Native {
    /// Little-endian (x86-64 and most hosts).
    Little,
    /// Big-endian.
    Big,
}

impl Native {
    /// u16 at `at`, if there.
    pub fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let s = b.get(at..at.checked_add(2)?)?;
        Some(match self {
            Native::Little => LittleEndian::read_u16(s),
            Native::Big => BigEndian::read_u16(s),
        })
    }
    /// u32 at `at`, if there.
    pub fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let s = b.get(at..at.checked_add(4)?)?;
        Some(match self {
            Native::Little => LittleEndian::read_u32(s),
            Native::Big => BigEndian::read_u32(s),
        })
    }
    /// u64 at `at`, if there.
    pub fn u64(self, b: &[u8], at: usize) -> Option<u64> {
        let s = b.get(at..at.checked_add(8)?)?;
        Some(match self {
            Native::Little => LittleEndian::read_u64(s),
            Native::Big => BigEndian::read_u64(s),
        })
    }
    /// "le" or "be".
    pub fn name(self) -> &'static str {
        match self {
            Native::Little => "le",
            Native::Big => "be",
        }
    }
}

/// One log item: its regions (region 0 is the item's format structure).
#[derive(Debug, Clone, Default)]
pub struct Item {
    /// Regions, in order (in place in the log, or assembled: read with [`Region::bytes`]).
    pub regions: Vec<Region>,
    /// Regions the item says it has.
    pub total: usize,
}

/// A transaction (a CIL checkpoint) put back together.
#[derive(Debug, Clone)]
pub struct Trans {
    /// Transaction id.
    pub tid: u32,
    /// LSN of the record holding its start (the LSN recovery compares with).
    pub lsn: u64,
    /// LSN of the record holding its commit.
    pub commit_lsn: u64,
    /// Log block of the record holding its start.
    pub start_blk: u64,
    /// The transaction header bytes (16).
    pub header: Vec<u8>,
    /// Items.
    pub items: Vec<Item>,
    /// The writer's byte order (from the header magic).
    pub native: Native,
}

impl Trans {
    fn new(tid: u32, lsn: u64, blk: u64) -> Self {
        Self {
            tid,
            lsn,
            commit_lsn: 0,
            start_blk: blk,
            header: vec![],
            items: vec![],
            native: Native::Little,
        }
    }
    /// th_type.
    pub fn th_type(&self) -> Option<u32> {
        self.native.u32(&self.header, 4)
    }
    /// th_num_items.
    pub fn th_num_items(&self) -> Option<u32> {
        self.native.u32(&self.header, 12)
    }
}

/// What reassembly found.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Committed transactions in commit order.
    pub committed: Vec<Trans>,
    /// Transactions started but not committed before the head.
    pub uncommitted: Vec<Trans>,
    /// Op headers seen.
    pub ops: u64,
    /// LSNs of unmount records seen.
    pub unmounts: Vec<u64>,
    /// Problems (the kernel would refuse to mount on the first of these).
    pub errors: Vec<(u64, String)>,
}

/// Put the transactions of `records` (tail to head, with their data) back together; `src` is
/// the log's source.
pub fn reassemble(src: &dyn BlockSource, records: &[(Record, RecData<'_>)]) -> Parsed {
    let mut r = Reassembler::default();
    for (rec, d) in records {
        r.feed(src, rec, d);
    }
    r.finish()
}

/// Reassembly one record at a time (tail to head): [`reassemble`] over records fed in order.
/// Regions are kept as references into the log; only those split across records are copied.
#[derive(Default)]
pub struct Reassembler {
    p: Parsed,
    open: OpenSet,
    order: Vec<u32>,
    stopped: bool,
    /// Emptied region vectors of items dropped by [`Reassembler::keep_committed_items`], for
    /// the next items (no allocation per item once the first transactions are dropped).
    spare: Vec<Vec<Region>>,
}

/// Most region vectors kept for reuse.
const SPARE_MAX: usize = 4096;

impl Reassembler {
    /// Take the ops of the next record (`d`, its data; `src`, the log's source). After an
    /// error, later records are ignored.
    pub fn feed(&mut self, src: &dyn BlockSource, r: &Record, d: &RecData<'_>) {
        if self.stopped {
            return;
        }
        let (p, open, order, spare) = (&mut self.p, &mut self.open, &mut self.order, &mut self.spare);
        d.touch();
        let mut pos = 0usize;
        let mut left = r.num_logops;
        while pos < d.len() && left > 0 {
            let Some(oh) = d.get(pos, OP_HEADER_SIZE).and_then(|h| op_header(&h).ok().map(|(_, o)| o)) else {
                p.errors.push((r.blk, format!("op header at byte {pos} runs past the record")));
                self.stopped = true;
                return;
            };
            pos += OP_HEADER_SIZE;
            p.ops += 1;
            left -= 1;
            if oh.clientid != CLIENT_TRANSACTION && oh.clientid != CLIENT_LOG {
                p.errors.push((
                    r.blk,
                    format!("op header at byte {} has client id {:#x}", pos - 12, oh.clientid),
                ));
                self.stopped = true;
                return;
            }
            let len = oh.len as usize;
            if pos.checked_add(len).is_none_or(|e| e > d.len()) {
                p.errors
                    .push((r.blk, format!("op region of {len} bytes at byte {pos} runs past the record")));
                self.stopped = true;
                return;
            }
            let at = pos;
            pos += len;
            if oh.flags & OP_UNMOUNT != 0 {
                p.unmounts.push(r.lsn);
            }
            let Some(t) = open.get_mut(oh.tid) else {
                if oh.flags & OP_START != 0 {
                    open.insert(Trans::new(oh.tid, r.lsn, r.blk));
                    order.retain(|x| *x != oh.tid);
                    order.push(oh.tid);
                }
                continue;
            };
            let mut flags = oh.flags & !OP_END;
            if flags & OP_WAS_CONT != 0 {
                flags &= !OP_CONTINUE;
            }
            let op = Op { d, at, len };
            let res = match flags {
                0 | OP_CONTINUE => add_to_trans(t, &op, spare),
                OP_WAS_CONT => add_to_cont_trans(src, t, &op),
                OP_COMMIT => {
                    // OK to unwrap because get_mut above found this tid.
                    let mut t = open.remove(oh.tid).unwrap();
                    order.retain(|x| *x != oh.tid);
                    t.commit_lsn = r.lsn;
                    p.committed.push(t);
                    Ok(())
                }
                OP_UNMOUNT => {
                    open.remove(oh.tid);
                    order.retain(|x| *x != oh.tid);
                    Ok(())
                }
                f => Err(format!("bad op flags {f:#x} for tid {:#x}", oh.tid)),
            };
            if let Err(e) = res {
                p.errors.push((r.blk, e));
                self.stopped = true;
                return;
            }
        }
    }

    /// The transactions committed so far, in commit order.
    pub fn committed(&self) -> &[Trans] {
        &self.p.committed
    }

    /// Keep, in the transactions committed from the `from`-th on, only the items `keep` says to
    /// (given each item and its transaction's byte order); the region vectors of the others are
    /// kept for the items reassembled next.
    pub fn keep_committed_items(&mut self, from: usize, keep: impl Fn(&Item, Native) -> bool) {
        let spare = &mut self.spare;
        for t in self.p.committed.get_mut(from..).unwrap_or_default() {
            let native = t.native;
            t.items.retain_mut(|it| {
                if keep(it, native) {
                    return true;
                }
                if spare.len() < SPARE_MAX {
                    let mut v = std::mem::take(&mut it.regions);
                    v.clear();
                    spare.push(v);
                }
                false
            });
            t.items.shrink_to_fit();
        }
    }

    /// The transactions: committed in commit order, then those still open, in start order.
    pub fn finish(mut self) -> Parsed {
        for tid in std::mem::take(&mut self.order) {
            if let Some(t) = self.open.remove(tid) {
                self.p.uncommitted.push(t);
            }
        }
        self.p
    }
}

/// The open transactions by tid; the one used last is kept out of the map, since ops of one
/// transaction mostly follow each other (no hashing for them).
#[derive(Default)]
struct OpenSet {
    map: HashMap<u32, Trans>,
    cur: Option<Trans>,
}

impl OpenSet {
    fn get_mut(&mut self, tid: u32) -> Option<&mut Trans> {
        if self.cur.as_ref().is_some_and(|t| t.tid == tid) {
            return self.cur.as_mut();
        }
        let t = self.map.remove(&tid)?;
        if let Some(c) = self.cur.replace(t) {
            self.map.insert(c.tid, c);
        }
        self.cur.as_mut()
    }
    /// Add a transaction whose tid is not open.
    fn insert(&mut self, t: Trans) {
        if let Some(c) = self.cur.replace(t) {
            self.map.insert(c.tid, c);
        }
    }
    fn remove(&mut self, tid: u32) -> Option<Trans> {
        if self.cur.as_ref().is_some_and(|t| t.tid == tid) {
            return self.cur.take();
        }
        self.map.remove(&tid)
    }
}

/// One op's region: `len` bytes at `at` of a record's data (checked to be there).
struct Op<'d, 's> {
    d: &'d RecData<'s>,
    at: usize,
    len: usize,
}

impl Op<'_, '_> {
    /// The first `n` bytes (all when shorter), restored.
    fn head(&self, n: usize) -> std::borrow::Cow<'_, [u8]> {
        self.d.get(self.at, n.min(self.len)).unwrap_or_default()
    }
    /// The region, by reference when possible.
    fn region(&self) -> Region {
        self.d.region(self.at, self.len).unwrap_or_default()
    }
}

/// `xlog_recover_add_to_trans`.
fn add_to_trans(t: &mut Trans, op: &Op<'_, '_>, spare: &mut Vec<Vec<Region>>) -> Result<(), String> {
    if op.len == 0 {
        return Ok(());
    }
    if t.items.is_empty() && t.header.len() < TRANS_HEADER_SIZE {
        if !t.header.is_empty() {
            return Err(format!("tid {:#x}: split transaction header continued without WAS_CONT", t.tid));
        }
        let dp = op.head(TRANS_HEADER_SIZE + 1);
        let le = LittleEndian::read_u32(dp.get(..4).unwrap_or(&[0; 4]));
        let be = BigEndian::read_u32(dp.get(..4).unwrap_or(&[0; 4]));
        t.native = if le == TRANS_HEADER_MAGIC {
            Native::Little
        } else if be == TRANS_HEADER_MAGIC {
            Native::Big
        } else {
            return Err(format!("tid {:#x}: bad transaction header magic {le:#x}", t.tid));
        };
        if op.len > TRANS_HEADER_SIZE {
            return Err(format!("tid {:#x}: transaction header of {} bytes", t.tid, op.len));
        }
        t.header = dp.to_vec();
        return Ok(());
    }
    let need_new = match t.items.last() {
        None => true,
        Some(it) => it.total != 0 && it.total == it.regions.len(),
    };
    if need_new {
        if t.items.capacity() == 0 {
            // The header's item count, bounded: one allocation for most transactions.
            let want = t.th_num_items().unwrap_or(0).min(4096) as usize;
            t.items.reserve(want);
        }
        t.items.push(Item { regions: spare.pop().unwrap_or_default(), total: 0 });
    }
    let native = t.native;
    // OK to unwrap because an item was pushed above when there was none.
    let it = t.items.last_mut().unwrap();
    if it.total == 0 {
        let size = native.u16(&op.head(4), 2).unwrap_or(0) as usize;
        if size == 0 || size > MAX_REGIONS_IN_ITEM {
            return Err(format!("tid {:#x}: item with {size} regions", t.tid));
        }
        it.total = size;
        it.regions.reserve_exact(size.min(64));
    }
    if it.regions.len() >= it.total {
        return Err(format!("tid {:#x}: item has more regions than its {}", t.tid, it.total));
    }
    it.regions.push(op.region());
    Ok(())
}

/// `xlog_recover_add_to_cont_trans`.
fn add_to_cont_trans(src: &dyn BlockSource, t: &mut Trans, op: &Op<'_, '_>) -> Result<(), String> {
    if t.items.is_empty() {
        if t.header.len() + op.len > TRANS_HEADER_SIZE {
            return Err(format!("tid {:#x}: transaction header continued past 16 bytes", t.tid));
        }
        t.header.extend_from_slice(&op.head(op.len));
        if t.header.len() == TRANS_HEADER_SIZE {
            // The whole header is here: the next region starts the first item.
            t.items.push(Item::default());
        }
        return Ok(());
    }
    let Some(last) = t.items.last_mut().and_then(|it| it.regions.last_mut()) else {
        return Err(format!("tid {:#x}: continuation with no region to continue", t.tid));
    };
    // A region split across records is assembled in memory.
    let mut v = match std::mem::take(last) {
        Region::Owned(v) => v,
        r @ Region::Log { .. } => r.bytes(src).into_owned(),
    };
    v.extend_from_slice(&op.head(op.len));
    *last = Region::Owned(v);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(tid: u32, flags: u8, data: &[u8]) -> Vec<u8> {
        let mut v = tid.to_be_bytes().to_vec();
        v.extend((data.len() as u32).to_be_bytes());
        v.extend([CLIENT_TRANSACTION, flags, 0, 0]);
        v.extend(data);
        v
    }

    fn rec(blk: u64, ops: &[Vec<u8>]) -> (Record, RecData<'static>) {
        let data: Vec<u8> = ops.concat();
        let r = Record {
            blk,
            cycle: 1,
            version: 2,
            len: data.len() as u32,
            lsn: (1 << 32) | blk,
            tail_lsn: 1 << 32,
            prev_block: 0,
            num_logops: ops.len() as u32,
            size: 32768,
            fmt: 1,
            hblks: 1,
            crc_stored: 0,
            crc_calc: 0,
            crc_ok: true,
            uuid: [0; 16],
        };
        (r, RecData::plain(data))
    }

    /// A source for regions (these tests' regions are all in memory).
    fn src() -> crate::image::MemSource {
        crate::image::MemSource::new(vec![0; 512], "test")
    }

    #[test]
    fn regions_split_across_records_are_joined() {
        let mut th = TRANS_HEADER_MAGIC.to_le_bytes().to_vec();
        th.extend([0u8; 12]);
        // An item of 2 regions: a format (type 0x123c, size 2) and 300 bytes split 100 + 200.
        let mut fmt = 0x123cu16.to_le_bytes().to_vec();
        fmt.extend(2u16.to_le_bytes());
        fmt.extend([0u8; 20]);
        let body: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let r1 =
            rec(2, &[op(7, OP_START, &[]), op(7, 0, &th), op(7, 0, &fmt), op(7, OP_CONTINUE, &body[..100])]);
        let r2 = rec(
            10,
            &[op(7, OP_WAS_CONT | OP_END, &body[100..]), op(7, OP_COMMIT, &[]), op(9, OP_START, &[])],
        );
        let src = src();
        let p = reassemble(&src, &[r1, r2]);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.committed.len(), 1);
        assert_eq!(p.uncommitted.len(), 1);
        let t = &p.committed[0];
        assert_eq!((t.tid, t.lsn, t.commit_lsn), (7, (1 << 32) | 2, (1 << 32) | 10));
        assert_eq!(t.items.len(), 1);
        assert_eq!(t.items[0].regions[1].bytes(&src), body);
    }

    #[test]
    fn bad_trans_header_is_an_error() {
        let r = rec(2, &[op(7, OP_START, &[]), op(7, 0, b"nonsense nonsense")]);
        let p = reassemble(&src(), &[r]);
        assert_eq!(p.errors.len(), 1);
        assert!(p.committed.is_empty());
    }
}
