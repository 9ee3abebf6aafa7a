//! The listing of an XFS log for `daxray journal`, as data: [`LogListing`] (the analysis of
//! [`super::analyse`], serialized as JSON one transaction at a time) and [`stream_log`], the
//! committed transactions handed to a [`LogSink`] while the log is read. Rendering them as text
//! is the caller's.

use super::format::{lsn_cmp, lsn_str};
use super::record::Record;
use super::search::Bounds;
use super::trans::{self, Parsed, Trans};
use super::{
    Analysis, LogOptions, analyse, items, keep_intents, open_log, record_findings, search, unfinished_intents,
};
use crate::error::{Error, Findings, Result};
use crate::image::BlockSource;
use serde_json::{Value, json};
use std::sync::Arc;

/// JSON of one record.
fn record_json(r: &Record) -> Value {
    json!({
        "block": r.blk, "lsn": lsn_str(r.lsn), "tail_lsn": lsn_str(r.tail_lsn), "cycle": r.cycle,
        "len": r.len, "ops": r.num_logops, "header_blocks": r.hblks, "version": r.version, "size": r.size,
        "crc": {"stored": format!("{:#010x}", r.crc_stored), "computed": format!("{:#010x}", r.crc_calc), "ok": r.crc_ok},
    })
}

/// JSON of one transaction.
fn trans_json(t: &Trans, tail_lsn: Option<u64>, src: &dyn BlockSource) -> Value {
    let items: Vec<Value> =
        t.items.iter().filter(|i| !i.regions.is_empty()).map(|i| items::describe(i, t.native, src)).collect();
    json!({
        "tid": format!("{:#x}", t.tid), "lsn": lsn_str(t.lsn), "commit_lsn": lsn_str(t.commit_lsn),
        "start_block": t.start_blk, "type": t.th_type(), "num_items": t.th_num_items(),
        "byte_order": t.native.name(), "items": items,
        "checkpointed": tail_lsn.map(|tl| lsn_cmp(t.lsn, tl) == std::cmp::Ordering::Less),
    })
}

/// An XFS log listing, kept structured so that it can be written out (text or JSON) one
/// transaction at a time instead of as one JSON tree of every item.
pub struct LogListing {
    a: Analysis,
    all: bool,
}

/// Calls its argument with each element of a JSON array, in order, until it returns false.
type EachValue<'a> = Box<dyn Fn(&mut dyn FnMut(Value) -> bool) + 'a>;

/// A JSON value made on demand while serializing: large arrays are built one element at a time.
enum Lazy<'a> {
    Value(Value),
    Seq(EachValue<'a>),
    /// Transactions, serialized as [`trans_json`] builds them, without building them.
    Trans(&'a [Trans], Option<u64>, &'a dyn BlockSource),
}

/// A transaction serialized as [`trans_json`]'s object (keys in its sorted order).
struct TransJson<'a>(&'a Trans, Option<u64>, &'a dyn BlockSource);

impl serde::Serialize for TransJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (t, tail_lsn, src) = (self.0, self.1, self.2);
        let mut m = s.serialize_map(Some(9))?;
        m.serialize_entry("byte_order", t.native.name())?;
        m.serialize_entry(
            "checkpointed",
            &tail_lsn.map(|tl| lsn_cmp(t.lsn, tl) == std::cmp::Ordering::Less),
        )?;
        m.serialize_entry("commit_lsn", &lsn_str(t.commit_lsn))?;
        m.serialize_entry("items", &ItemsJson(t, src))?;
        m.serialize_entry("lsn", &lsn_str(t.lsn))?;
        m.serialize_entry("num_items", &t.th_num_items())?;
        m.serialize_entry("start_block", &t.start_blk)?;
        m.serialize_entry("tid", &format!("{:#x}", t.tid))?;
        m.serialize_entry("type", &t.th_type())?;
        m.end()
    }
}

/// The items of a transaction that have regions, as [`items::describe`] gives them.
struct ItemsJson<'a>(&'a Trans, &'a dyn BlockSource);

impl serde::Serialize for ItemsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let (t, src) = (self.0, self.1);
        let mut seq = s.serialize_seq(None)?;
        for it in t.items.iter().filter(|i| !i.regions.is_empty()) {
            seq.serialize_element(&items::ItemJson::new(it, t.native, src))?;
        }
        seq.end()
    }
}

impl serde::Serialize for Lazy<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        match self {
            Lazy::Value(v) => v.serialize(s),
            Lazy::Trans(ts, tail_lsn, src) => {
                let mut seq = s.serialize_seq(Some(ts.len()))?;
                for t in *ts {
                    seq.serialize_element(&TransJson(t, *tail_lsn, *src))?;
                }
                seq.end()
            }
            Lazy::Seq(each) => {
                let mut seq = s.serialize_seq(None)?;
                let mut err = None;
                each(&mut |v| match seq.serialize_element(&v) {
                    Ok(()) => true,
                    Err(e) => {
                        err = Some(e);
                        false
                    }
                });
                if let Some(e) = err {
                    return Err(e);
                }
                seq.end()
            }
        }
    }
}

impl LogListing {
    /// The JSON document as a map with sorted keys (like `serde_json::Value`'s), whose large
    /// arrays are produced element by element.
    fn doc(&self) -> std::collections::BTreeMap<&'static str, Lazy<'_>> {
        use std::collections::BTreeMap;
        let a = &self.a;
        let mut m: BTreeMap<&'static str, Lazy<'_>> = BTreeMap::new();
        let v = |x: Value| Lazy::Value(x);
        m.insert("kind", v(json!("xfs-log")));
        m.insert("device", v(json!(a.device)));
        m.insert("findings", v(json!(a.findings.snapshot())));
        let Some(b) = &a.bounds else {
            m.insert("state", v(json!("empty")));
            m.insert("records", v(json!(0)));
            m.insert("transactions", v(json!([])));
            return m;
        };
        let tail_lsn = (u64::from(b.tail_cycle) << 32) | b.tail_blk;
        let all = self.all;
        m.insert("log_start_byte", v(json!(a.base)));
        m.insert("log_bytes", v(json!(a.bytes)));
        m.insert("log_blocks", v(json!(b.log_bbs)));
        m.insert(
            "head",
            v(json!({"block": b.head_blk, "cycle": b.head_cycle, "lsn": lsn_str((u64::from(b.head_cycle) << 32) | b.head_blk)})),
        );
        m.insert("tail", v(json!({"block": b.tail_blk, "cycle": b.tail_cycle, "lsn": lsn_str(tail_lsn)})));
        m.insert("state", v(json!(if b.clean { "clean" } else { "dirty" })));
        m.insert("torn_head", v(json!(b.torn.map(|(o, n)| json!({"original_head": o, "new_head": n})))));
        m.insert("log_sector_bytes", v(json!(b.sector_blocks * 512)));
        m.insert("dropped_by_kernel", v(json!(a.dropped)));
        m.insert("head_in_flight", v(json!(a.in_flight)));
        m.insert("refused", v(json!(a.refused)));
        m.insert("records", v(json!(a.records.len())));
        m.insert(
            "record_list",
            Lazy::Seq(Box::new(move |f| {
                for r in &a.records {
                    if !f(record_json(r)) {
                        return;
                    }
                }
            })),
        );
        m.insert("crc_errors", v(json!(a.records.iter().filter(|r| !r.crc_ok).count())));
        m.insert("ops", v(json!(a.parsed.ops)));
        m.insert(
            "unmount_records",
            v(json!(a.parsed.unmounts.iter().map(|l| lsn_str(*l)).collect::<Vec<_>>())),
        );
        m.insert("transactions", Lazy::Trans(&a.parsed.committed, all.then_some(tail_lsn), &*a.log));
        m.insert("uncommitted", Lazy::Trans(&a.parsed.uncommitted, None, &*a.log));
        m.insert("unfinished_intents", v(json!(unfinished_intents(&a.parsed.committed, &*a.log))));
        m.insert(
            "errors",
            v(json!(
                a.parsed.errors.iter().map(|(b, e)| json!({"block": b, "error": e})).collect::<Vec<_>>()
            )),
        );
        m
    }

    /// The JSON document (`{"kind":"xfs-log",...}`) as a tree.
    ///
    /// The transactions here are built as JSON values item by item ([`items::describe`]),
    /// independently of the serializer (its `Serialize` impl) that streams them, so that
    /// the two can be compared.
    pub fn json_value(&self) -> Value {
        let mut v = json!(self.doc());
        let a = &self.a;
        if let (Some(b), Value::Object(o)) = (&a.bounds, &mut v) {
            let tail_lsn = (u64::from(b.tail_cycle) << 32) | b.tail_blk;
            let all = self.all.then_some(tail_lsn);
            let src = &*a.log;
            let c: Vec<Value> = a.parsed.committed.iter().map(|t| trans_json(t, all, src)).collect();
            let u: Vec<Value> = a.parsed.uncommitted.iter().map(|t| trans_json(t, None, src)).collect();
            o.insert("transactions".into(), Value::Array(c));
            o.insert("uncommitted".into(), Value::Array(u));
        }
        v
    }

    /// The analysis listed: bounds, records, transactions, what the kernel refuses or drops.
    pub fn analysis(&self) -> &Analysis {
        &self.a
    }

    /// Problems found (bad record CRCs, torn head, reassembly errors...).
    pub fn findings(&self) -> Vec<crate::Finding> {
        self.a.findings.snapshot()
    }
}

/// The listing of the log of the file system in `fs`; `all` includes checkpointed transactions.
pub fn list_log(fs: Arc<dyn BlockSource>, opts: &LogOptions, all: bool) -> Result<LogListing> {
    Ok(LogListing { a: analyse(&fs, opts, all)?, all })
}

impl serde::Serialize for LogListing {
    /// The JSON document (`{"kind":"xfs-log",...}`), its transactions serialized one by one.
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.doc().serialize(s)
    }
}

/// The facts of a streamed log, known once every record's crc is verified.
pub struct StreamHeader<'a> {
    /// "internal" or the external device path.
    pub device: &'a str,
    /// Byte offset of the log on its device.
    pub base: u64,
    /// Log size in bytes.
    pub bytes: u64,
    /// Head, tail and state.
    pub bounds: &'a Bounds,
    /// Records between tail and head.
    pub records: usize,
    /// Of them, records whose crc fails.
    pub bad_records: usize,
}

/// What [`stream_log`] hands its consumer while it reads the log.
pub trait LogSink {
    /// A committed transaction, as soon as it is reassembled (its regions are in `src`). It may
    /// come before [`LogSink::header`]: the crcs are verified meanwhile on another thread.
    fn transaction(&mut self, t: &Trans, src: &dyn BlockSource) -> Result<()>;
    /// The log's facts, once, as soon as the record crcs are known.
    fn header(&mut self, h: &StreamHeader<'_>) -> Result<()>;
    /// Whether the sink would rather wait for the header now than take more transactions first.
    fn wants_header(&self) -> bool;
}

/// The end of a streamed log.
pub struct Streamed {
    /// What was reassembled: the uncommitted transactions, and the committed ones reduced to
    /// their intents.
    pub parsed: Parsed,
    /// The source the regions of `parsed` are in.
    pub src: Arc<dyn BlockSource>,
    /// The findings, as [`LogListing::findings`] gives them.
    pub findings: Vec<crate::Finding>,
}

/// Read the log of the file system in `fs` and hand each committed transaction to `sink` as it
/// is reassembled, while its bytes are in the cache; it is then dropped but for its intents.
/// None when the log cannot be streamed so and must be listed whole ([`list_log`]): a log of
/// zeroes, a refusal by the kernel's search, records the kernel drops, or a bad record near
/// enough past the head to move the tail. Then `sink` got no header, and what it was handed is
/// to be discarded.
pub fn stream_log(
    fs: Arc<dyn BlockSource>,
    opts: &LogOptions,
    sink: &mut dyn LogSink,
) -> Result<Option<Streamed>> {
    let (sb, dev, device, base, bytes) = open_log(&fs, opts)?;
    let Ok(Some(b)) = search::find_bounds_deferred(&dev) else { return Ok(None) };
    if !search::dropped_records(&dev, &b).is_empty() {
        return Ok(None);
    }
    let (recs, walk_err) = dev.walk(b.tail_blk, b.head_blk, false);
    let src = &**dev.src();
    let mut reasm = trans::Reassembler::default();
    // The header, once the crcs are known; None: the tail moves.
    let header = |crcs: &std::result::Result<Vec<(u32, bool)>, (u64, Error)>| -> Option<StreamHeader<'_>> {
        let crcs = crcs.as_ref().ok()?;
        let first_bad = recs.iter().zip(crcs).find(|(_, c)| !c.1).map(|(r, _)| r.blk);
        if first_bad.or(walk_err.as_ref().map(|(blk, _)| *blk)).is_some() {
            return None;
        }
        Some(StreamHeader {
            device: &device,
            base,
            bytes,
            bounds: &b,
            records: recs.len(),
            bad_records: crcs.iter().filter(|c| !c.1).count(),
        })
    };
    let join = |job: std::thread::ScopedJoinHandle<'_, _>| {
        job.join().unwrap_or_else(|_| Err((0, Error::Usage("crc thread failed".into()))))
    };
    let streamed = std::thread::scope(|s| -> Result<Option<Vec<(u32, bool)>>> {
        let mut crc_job = Some(s.spawn(|| dev.crcs(&recs)));
        let mut crcs = None;
        for r in &recs {
            let d = dev.record_data(r)?;
            let n = reasm.committed().len();
            reasm.feed(src, r, &d);
            for t in &reasm.committed()[n..] {
                sink.transaction(t, src)?;
            }
            keep_intents(&mut reasm, n, src);
            let ready = crc_job.as_ref().is_some_and(|j| j.is_finished()) || sink.wants_header();
            if crcs.is_none()
                && ready
                && let Some(job) = crc_job.take()
            {
                let c = join(job);
                let Some(h) = header(&c) else { return Ok(None) };
                sink.header(&h)?;
                crcs = c.ok();
            }
        }
        if crcs.is_none()
            && let Some(job) = crc_job.take()
        {
            let c = join(job);
            let Some(h) = header(&c) else { return Ok(None) };
            sink.header(&h)?;
            crcs = c.ok();
        }
        Ok(crcs)
    })?;
    let Some(crcs) = streamed else { return Ok(None) };
    let parsed = reasm.finish();
    // The findings, in the order the analysis records them.
    let findings = Findings::new();
    if let Some((orig, bad)) = b.torn {
        findings.info(
            "xfs log",
            Some(bad),
            Some(base + bad * 512),
            format!("torn write: record at log block {bad} fails its check; head moved from {orig} to {bad}"),
        );
    }
    if let Some((blk, e)) = walk_err {
        findings.error("xfs log record", Some(blk), Some(base + blk * 512), e.to_string());
    }
    for (r, &crc) in recs.iter().zip(&crcs) {
        record_findings(&findings, r, crc, &sb.uuid(), base);
    }
    for (blk, e) in &parsed.errors {
        findings.error("xfs log transaction", Some(*blk), Some(base + blk * 512), e.clone());
    }
    Ok(Some(Streamed { parsed, src: dev.src().clone(), findings: findings.snapshot() }))
}
