//! The listing of an XFS log for `daxray journal`: [`LogListing`] written as text (like
//! `xfs_logprint -t`) or as JSON, streamed one transaction at a time; [`write_text_streamed`],
//! the same text written while the log is read. The analysis it lists is [`super::analyse`]'s.

use super::format::{self, lsn_cmp, lsn_str};
use super::record::Record;
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
    /// independently of the serializer [`LogListing::write_json`] streams them with, so that
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

    /// Write the JSON document, pretty-printed, to `w`.
    pub fn write_json(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *w, &self.doc())?;
        w.write_all(b"\n")
    }

    /// Write the text form (like `xfs_logprint -t`) to `w`.
    pub fn write_text(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        let a = &self.a;
        writeln!(w, "xfs log: {} at byte {}, {} bytes", a.device, a.base, a.bytes)?;
        let Some(b) = &a.bounds else {
            return w.write_all(b"state: empty (all zeroes)\n");
        };
        let state = if b.clean { "clean" } else { "dirty" };
        writeln!(
            w,
            "head: block {} cycle {}   tail: block {} cycle {}   state: {state}",
            b.head_blk, b.head_cycle, b.tail_blk, b.tail_cycle
        )?;
        if let Some((o, n)) = b.torn {
            writeln!(w, "torn head: records from block {n} fail their check (head was {o})")?;
        }
        if let Some(why) = &a.refused {
            writeln!(w, "REFUSED: the kernel's log recovery fails, the mount fails: {why}")?;
        }
        if let Some(d) = &a.dropped {
            let recs: Vec<String> =
                d.records.iter().map(|r| format!("{} (lsn {})", r.block, r.lsn)).collect();
            writeln!(
                w,
                "DROPPED BY THE KERNEL: its {}-byte log sector reads put the head at block {}; an exact reading finds {}: record(s) {}, {} committed transaction(s), inode(s) {:?} are lost (--exact-log-head keeps them)",
                d.sector_bytes,
                d.kernel_head,
                d.exact_head,
                recs.join(", "),
                d.transactions.len(),
                d.inodes
            )?;
        }
        let bad = a.records.iter().filter(|r| !r.crc_ok).count();
        writeln!(w, "records: {} (crc ok {}, bad {bad})", a.records.len(), a.records.len() - bad)?;
        let src = &*a.log;
        let mut line = Vec::with_capacity(256);
        for t in &a.parsed.committed {
            // What the items' lines print, loaded first, all at once.
            for it in &t.items {
                if let [r0, r1, ..] = &it.regions[..] {
                    r0.prefetch(src, 84);
                    r1.prefetch(src, 80);
                }
            }
            write_trans_text(w, t, src, &mut line)?;
        }
        write_text_tail(w, &a.parsed, src)
    }

    /// Problems found (bad record CRCs, torn head, reassembly errors...).
    pub fn findings(&self) -> Vec<crate::Finding> {
        self.a.findings.snapshot()
    }
}

/// The text of one committed transaction (a rule, its line, a line per item).
fn write_trans_text(
    w: &mut dyn std::io::Write,
    t: &Trans,
    src: &dyn BlockSource,
    line: &mut Vec<u8>,
) -> std::io::Result<()> {
    // The rule and "TRANS: tid:{:#x}  lsn:{}  commit:{}  #items:{}", written by hand.
    line.clear();
    line.extend_from_slice(&[b'='; 76]);
    line.extend_from_slice(b"\nTRANS: tid:");
    items::push_hex(line, u64::from(t.tid));
    line.extend_from_slice(b"  lsn:");
    push_lsn(line, t.lsn);
    line.extend_from_slice(b"  commit:");
    push_lsn(line, t.commit_lsn);
    line.extend_from_slice(b"  #items:");
    items::push_u64(line, t.items.iter().filter(|i| !i.regions.is_empty()).count() as u64);
    line.push(b'\n');
    w.write_all(line)?;
    for (k, it) in t.items.iter().filter(|i| !i.regions.is_empty()).enumerate() {
        // The fields describe() adds to type, type code, regions and bytes.
        let ty = items::item_type_name(it, t.native, src).unwrap_or("?");
        line.clear();
        line.extend_from_slice(b"  item ");
        items::push_u64(line, k as u64);
        line.extend_from_slice(b": ");
        line.extend_from_slice(ty.as_bytes());
        line.extend_from_slice(b" {");
        if items::write_common_fields(line, it, t.native, src) {
            line.extend_from_slice(b"}\n");
            w.write_all(line)?;
            continue;
        }
        match items::describe_fields(it, t.native, src) {
            Some(Value::Object(o)) => writeln!(w, "  item {k}: {ty} {}", Value::Object(o))?,
            _ => writeln!(w, "  item {k}: {ty} {{}}")?,
        }
    }
    Ok(())
}

/// Append an LSN as [`lsn_str`] writes it (`cycle:block`).
fn push_lsn(out: &mut Vec<u8>, lsn: u64) {
    items::push_u64(out, u64::from(format::lsn_cycle(lsn)));
    out.push(b':');
    items::push_u64(out, u64::from(format::lsn_block(lsn)));
}

/// The end of the text listing: uncommitted transactions and the count of unfinished intents.
fn write_text_tail(w: &mut dyn std::io::Write, p: &Parsed, src: &dyn BlockSource) -> std::io::Result<()> {
    for t in &p.uncommitted {
        writeln!(w, "UNCOMMITTED: tid:{:#x} lsn:{} #items:{}", t.tid, lsn_str(t.lsn), t.items.len())?;
    }
    let intents = unfinished_intents(&p.committed, src);
    if !intents.is_empty() {
        writeln!(w, "unfinished intents: {}", intents.len())?;
    }
    Ok(())
}

/// `daxray journal`'s text listing (as [`LogListing::write_text`] writes it, byte for byte),
/// written while the log is read: each transaction as it commits, while its bytes are in the
/// cache, and then dropped but for its intents. The record crcs (which the header line counts)
/// are verified on another thread meanwhile; the text of the transactions reassembled before
/// they are is held back. Returns the findings (as [`LogListing::findings`]). With `all`, an
/// all-zero log, or a bad record near enough past the head to move the tail, the listing is
/// made the two-pass way.
pub fn write_text_streamed(
    fs: Arc<dyn BlockSource>,
    opts: &LogOptions,
    all: bool,
    w: &mut dyn std::io::Write,
) -> Result<Vec<crate::Finding>> {
    let io = |e: std::io::Error| Error::io("<stdout>", e);
    let two_pass = |w: &mut dyn std::io::Write| -> Result<Vec<crate::Finding>> {
        let l = list_log(fs.clone(), opts, all)?;
        l.write_text(w).map_err(io)?;
        Ok(l.findings())
    };
    if all {
        return two_pass(w);
    }
    let (sb, dev, device, base, bytes) = open_log(&fs, opts)?;
    // A refusal by the kernel's search, or records it drops: the two-pass listing says so.
    let Ok(Some(b)) = search::find_bounds_deferred(&dev) else { return two_pass(w) };
    if !search::dropped_records(&dev, &b).is_empty() {
        return two_pass(w);
    }
    let (recs, walk_err) = dev.walk(b.tail_blk, b.head_blk, false);
    let src = &**dev.src();
    let mut reasm = trans::Reassembler::default();
    let mut line = Vec::with_capacity(256);
    // The header, once the crcs are known; None: the tail moves, list the two-pass way.
    let header = |crcs: &std::result::Result<Vec<(u32, bool)>, (u64, Error)>| -> Option<Vec<u8>> {
        let crcs = crcs.as_ref().ok()?;
        let first_bad = recs.iter().zip(crcs).find(|(_, c)| !c.1).map(|(r, _)| r.blk);
        let first_bad = first_bad.or(walk_err.as_ref().map(|(blk, _)| *blk));
        if first_bad.is_some() {
            return None;
        }
        let mut h = Vec::new();
        let bad = crcs.iter().filter(|c| !c.1).count();
        let state = if b.clean { "clean" } else { "dirty" };
        use std::io::Write;
        // Writing into a Vec cannot fail.
        let _ = writeln!(h, "xfs log: {device} at byte {base}, {bytes} bytes");
        let _ = writeln!(
            h,
            "head: block {} cycle {}   tail: block {} cycle {}   state: {state}",
            b.head_blk, b.head_cycle, b.tail_blk, b.tail_cycle
        );
        if let Some((o, n)) = b.torn {
            let _ = writeln!(h, "torn head: records from block {n} fail their check (head was {o})");
        }
        let _ = writeln!(h, "records: {} (crc ok {}, bad {bad})", recs.len(), recs.len() - bad);
        Some(h)
    };
    let streamed = std::thread::scope(|s| -> Result<Option<Vec<(u32, bool)>>> {
        let mut crc_job = Some(s.spawn(|| dev.crcs(&recs)));
        let mut crcs = None;
        // Text reassembled before the header could be written.
        let mut held: Vec<u8> = Vec::new();
        for r in &recs {
            let d = dev.record_data(r)?;
            let n = reasm.committed().len();
            reasm.feed(src, r, &d);
            for t in &reasm.committed()[n..] {
                let out: &mut dyn std::io::Write = if crcs.is_some() { &mut *w } else { &mut held };
                write_trans_text(out, t, src, &mut line).map_err(io)?;
            }
            keep_intents(&mut reasm, n, src);
            let ready = crc_job.as_ref().is_some_and(|j| j.is_finished()) || held.len() > 4 << 20;
            if crcs.is_none()
                && ready
                && let Some(job) = crc_job.take()
            {
                let c = job.join().unwrap_or_else(|_| Err((0, Error::Usage("crc thread failed".into()))));
                let Some(h) = header(&c) else { return Ok(None) };
                w.write_all(&h).map_err(io)?;
                w.write_all(&held).map_err(io)?;
                held = Vec::new();
                crcs = c.ok();
            }
        }
        if crcs.is_none()
            && let Some(job) = crc_job.take()
        {
            let c = job.join().unwrap_or_else(|_| Err((0, Error::Usage("crc thread failed".into()))));
            let Some(h) = header(&c) else { return Ok(None) };
            w.write_all(&h).map_err(io)?;
            w.write_all(&held).map_err(io)?;
            crcs = c.ok();
        }
        Ok(crcs)
    })?;
    let Some(crcs) = streamed else { return two_pass(w) };
    let parsed = reasm.finish();
    write_text_tail(w, &parsed, src).map_err(io)?;
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
    Ok(findings.snapshot())
}

/// The listing of [`listing`], structured (see [`LogListing`]).
pub fn list_log(fs: Arc<dyn BlockSource>, opts: &LogOptions, all: bool) -> Result<LogListing> {
    Ok(LogListing { a: analyse(&fs, opts, all)?, all })
}

/// List the transactions (for `daxray journal`); `all` includes checkpointed ones.
pub fn listing(fs: Arc<dyn BlockSource>, opts: &LogOptions, all: bool) -> Result<crate::report::Listing> {
    let l = list_log(fs, opts, all)?;
    let mut text = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = l.write_text(&mut text);
    Ok(crate::report::Listing {
        json: l.json_value(),
        text: String::from_utf8_lossy(&text).into_owned(),
        findings: l.findings(),
    })
}
