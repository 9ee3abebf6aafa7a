//! The XFS log: finding head and tail, parsing records and transactions, listing them
//! (`daxray journal`) and replaying them in memory as the kernel does at mount. This file
//! holds the orchestration: opening the log with the kernel's geometry, the analysis (bounds,
//! records, transactions, findings) and the recovered view.
//!
//! Modules: [`format`](mod@format) (record and op headers), [`log`] (the log device and the
//! walk over record headers with their crcs), [`record`] (records and their data, cycle words
//! restored), [`search`] (head and tail as the kernel finds them), [`trans`] (transaction
//! reassembly), [`items`] (item decoders), [`recover`] (the replay passes into an overlay),
//! `listing` (the listing as data, and the log streamed to a consumer; `cli/xlog_text.rs` renders
//! it as text).
//!
//! `daxray journal --json` on XFS prints one object: `kind` ("xfs-log"), `device`,
//! `log_start_byte`, `log_bytes`, `log_blocks`, `head` and `tail` (`block`, `cycle`, `lsn`),
//! `state` ("clean", "dirty" or "empty"), `torn_head` (`original_head`, `new_head` or null),
//! `records` (count) and `record_list` (per record: `block`, `lsn`, `tail_lsn`, `len`, `ops`,
//! `header_blocks`, `crc` {`stored`, `computed`, `ok`}), `crc_errors`, `ops`, `unmount_records`,
//! `transactions` (per transaction: `tid`, `lsn`, `commit_lsn`, `start_block`, `type`,
//! `num_items` (the header's count, as xfs_logprint's `#items`), `byte_order`, `items` (per item:
//! `type`, `regions`, `bytes` and its decoded fields), `checkpointed` (with `--all`)),
//! `uncommitted`, `unfinished_intents` and `errors`. The recovery report's `details` carry
//! `head`, `tail`, `state`, `records`, `transactions`, and `replay` with the counts of buffers
//! replayed, cancelled and skipped by LSN, inodes replayed and skipped, icreates, and errors.

pub mod dinode;
mod due;
pub mod format;
pub mod items;
mod listing;
pub mod log;
pub mod record;
pub mod recover;
pub mod search;
pub mod trans;

pub use listing::{LogListing, LogSink, StreamHeader, Streamed, list_log, stream_log};

use crate::error::{Error, Findings, Result};
use crate::image::{BlockSource, MmapSource};
use crate::report::RecoveryReport;
use crate::xfs::Superblock;
use crate::xfs::sb::DiskSb;
use core::mem::offset_of;
use format::{HEADER_CYCLE_SIZE, lsn_str};
use log::LogDev;
use record::Record;
use search::Bounds;
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;
use trans::{Parsed, Trans};

/// How to read an XFS log.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// The external log device, when the log is not internal.
    pub log_dev: Option<std::path::PathBuf>,
    /// Find the head reading exact 512-byte blocks instead of whole log sectors as the kernel
    /// does: the view that keeps records the kernel drops at a torn log sector.
    pub exact_head: bool,
    /// Whose head search to follow where kernels differ.
    pub rules: search::Rules,
}

/// Everything read from the log: where it is, its bounds, records and transactions.
pub struct Analysis {
    /// The superblock of the file system.
    pub sb: Superblock,
    /// "internal" or the external device path.
    pub device: String,
    /// Byte offset of the log on its device.
    pub base: u64,
    /// Log size in bytes.
    pub bytes: u64,
    /// Head, tail, state (None: the log is all zeroes).
    pub bounds: Option<Bounds>,
    /// Records between tail and head (or the whole log with `all`), without their data.
    pub records: Vec<Record>,
    /// The source the log is in: the regions of `parsed` are read from it
    /// ([`record::Region::bytes`]).
    pub log: Arc<dyn BlockSource>,
    /// The transactions in them.
    pub parsed: Parsed,
    /// Problems found.
    pub findings: Findings,
    /// Why the kernel's log search fails (the mount fails), when it does.
    pub refused: Option<String>,
    /// Work the kernel's recovery drops at a torn log sector, when it does.
    pub dropped: Option<Dropped>,
    /// A log write in flight at the head (a record torn or begun), and what shows it
    /// ([`search::write_in_flight`]).
    pub in_flight: Option<String>,
}

/// Open the log of the file system in `fs` (internal, or `opts.log_dev`), with the geometry the
/// kernel mounts it with (log sector size, uuid, iclog size); read in exact 512-byte blocks with
/// `opts.exact_head`.
fn open_log(fs: &Arc<dyn BlockSource>, opts: &LogOptions) -> Result<(Superblock, LogDev, String, u64, u64)> {
    let findings = Findings::new();
    let n = fs.len().min(4096) as usize;
    let sb = Superblock::parse(&fs.read_at(0, n)?, &findings)?;
    let bytes = u64::from(sb.logblocks()) * u64::from(sb.blocksize());
    let v2 = sb.log_version() == 2;
    let sect_bbs = if sb.logsectlog() > 9 { 1u64 << (sb.logsectlog() - 9).min(15) } else { 1 };
    let logbsize = sb.logsunit().max(HEADER_CYCLE_SIZE as u32);
    let geometry = |d: LogDev| {
        let d = d.with_geometry(sect_bbs, sb.uuid(), logbsize).with_rules(opts.rules);
        if opts.exact_head { d.exact() } else { d }
    };
    if let Some(p) = opts.log_dev.as_deref() {
        let src: Arc<dyn BlockSource> = Arc::new(MmapSource::open(p)?);
        let bytes = bytes.min(src.len());
        let dev = geometry(LogDev::new(src, 0, bytes, v2)?);
        return Ok((sb, dev, p.display().to_string(), 0, bytes));
    }
    let Some(lin) = sb.logstart_linear() else {
        return Err(Error::Usage(
            "this XFS file system has an external log: give it with --log-dev FILE".into(),
        ));
    };
    let base = lin.checked_mul(u64::from(sb.blocksize())).ok_or_else(|| {
        Error::corrupt("xfs superblock", 0, offset_of!(DiskSb, logstart) as u64, "log start overflows")
    })?;
    let dev = geometry(LogDev::new(fs.clone(), base, bytes, v2)?);
    Ok((sb, dev, "internal".into(), base, bytes))
}

/// Read the log: bounds, records from tail to head (or every record still there with `all`),
/// transactions.
pub fn analyse(fs: &Arc<dyn BlockSource>, opts: &LogOptions, all: bool) -> Result<Analysis> {
    Ok(analyse_inner(fs, opts, all, false)?.0)
}

/// Replay done while the log is read: each transaction as it commits, while its bytes are still
/// in the cache. Pass 2 may run before pass 1 has seen the whole log only when the log holds no
/// cancel record (pass 1 then finds nothing): at the first one, this replay is abandoned and
/// recovery runs its two passes over the transactions afterwards.
struct EarlyReplay {
    rp: recover::Replayer,
    /// The first error of pass 2 (recovery stops there).
    err: Option<Error>,
    /// A cancel record was seen: this replay does not count.
    abandoned: bool,
}

impl EarlyReplay {
    /// Pass 1 then pass 2 of a transaction that just committed.
    fn commit(&mut self, t: &Trans) {
        if self.abandoned {
            return;
        }
        // Pass 1 looks at every transaction, also after an error of pass 2.
        self.rp.pass1(t);
        if self.rp.stats.cancel_records > 0 {
            self.abandoned = true;
            return;
        }
        if self.err.is_none()
            && let Err(e) = self.rp.pass2(t)
        {
            self.err = Some(e);
        }
    }
}

/// [`analyse`], replaying the transactions as they commit when `replay` (not with `all`).
fn analyse_inner(
    fs: &Arc<dyn BlockSource>,
    opts: &LogOptions,
    all: bool,
    replay: bool,
) -> Result<(Analysis, Option<EarlyReplay>)> {
    let (sb, dev, device, base, bytes) = open_log(fs, opts)?;
    let findings = Findings::new();
    let src = &**dev.src();
    let early = || -> Result<Option<EarlyReplay>> {
        if !replay || all {
            return Ok(None);
        }
        let rp = recover::Replayer::new(fs.clone(), dev.src().clone(), &sb)?;
        Ok(Some(EarlyReplay { rp, err: None, abandoned: false }))
    };
    // Feed a record, and replay what it committed.
    let feed =
        |r: &mut trans::Reassembler, e: &mut Option<EarlyReplay>, rec: &Record, d: &record::RecData<'_>| {
            let n = r.committed().len();
            r.feed(src, rec, d);
            if let Some(e) = e {
                for t in &r.committed()[n..] {
                    e.commit(t);
                }
                if !e.abandoned {
                    // Replayed: only the items the report still reads (intents and their done
                    // items) are kept, and the memory of the others serves the next ones.
                    keep_intents(r, n, src);
                }
            }
        };
    let mut reasm = trans::Reassembler::default();
    let mut replayed = None;
    // From the tail: one pass that verifies each record's crc and reassembles it while it is
    // in the cache. The tail verification's own crc pass is left out, unless a record fails
    // (then the kernel's search from scratch: it moves the tail or refuses the log).
    let mut fused = None;
    let mut refused = None;
    // The kernel's search fails: the mount fails with its error. The listing then shows the
    // log up to the head found before the failure, when there is one.
    let refuse = |e: Error, refused: &mut Option<String>| match e {
        Error::Corrupt { detail, block, .. } => {
            *refused = Some(format!("{detail} [log block {block}]"));
            Ok(())
        }
        e => Err(e),
    };
    // The kernel's whole search; `fallback` when it refuses the log.
    let kernel_bounds =
        |fallback: Option<Bounds>, refused: &mut Option<String>| match search::find_bounds(&dev) {
            Ok(x) => Ok(x),
            Err(e) => refuse(e, refused).map(|()| fallback),
        };
    let deferred = if all {
        None
    } else {
        match search::find_bounds_deferred(&dev) {
            Ok(d) => d,
            Err(e) => {
                refuse(e, &mut refused)?;
                None
            }
        }
    };
    let bounds = match deferred {
        Some(b) => {
            let mut r = trans::Reassembler::default();
            let mut e = early()?;
            let got = dev.records_with_data(b.tail_blk, b.head_blk, |rec, d| feed(&mut r, &mut e, rec, d));
            match got {
                Some((recs, err, None)) => {
                    fused = Some((recs, err));
                    reasm = r;
                    replayed = e;
                    Some(b)
                }
                _ => kernel_bounds(Some(b), &mut refused)?,
            }
        }
        None if all => kernel_bounds(None, &mut refused)?,
        None => None,
    };
    if let Some(why) = &refused {
        findings.error(
            "xfs log",
            None,
            None,
            format!("the kernel's log recovery fails (failed to locate log tail; the mount fails): {why}"),
        );
    }
    let mut records = vec![];
    if let Some(b) = &bounds {
        if let Some((orig, bad)) = b.torn {
            findings.info(
                "xfs log",
                Some(bad),
                Some(base + bad * 512),
                format!(
                    "torn write: record at log block {bad} fails its check; head moved from {orig} to {bad}"
                ),
            );
        }
        let start = if all { oldest_record(&dev, b)?.unwrap_or(b.tail_blk) } else { b.tail_blk };
        let (recs, err) = match fused {
            Some(f) => f,
            None => {
                // Headers and crcs first (crcs on two threads), then the ops, read in place.
                let (mut recs, mut err) = dev.records(start, b.head_blk, all);
                let mut e = early()?;
                for (i, r) in recs.iter().enumerate() {
                    match dev.record_data(r) {
                        Ok(d) => feed(&mut reasm, &mut e, r, &d),
                        Err(x) => {
                            err = Some((r.blk, x));
                            recs.truncate(i);
                            break;
                        }
                    }
                }
                replayed = e;
                (recs, err)
            }
        };
        if let Some((blk, e)) = err {
            findings.error("xfs log record", Some(blk), Some(base + blk * 512), e.to_string());
        }
        for r in &recs {
            record_findings(&findings, r, (r.crc_calc, r.crc_ok), &sb.uuid(), base);
        }
        records = recs;
    }
    let parsed = reasm.finish();
    for (blk, e) in &parsed.errors {
        findings.error("xfs log transaction", Some(*blk), Some(base + blk * 512), e.clone());
    }
    let dropped = match &bounds {
        Some(b) if !all && refused.is_none() && dev.sect_bbs() > 1 => {
            dropped_work(fs, opts, &dev, b, &findings, base)?
        }
        _ => None,
    };
    let in_flight = match &bounds {
        Some(b) => search::write_in_flight(&dev, b)?,
        None => None,
    };
    let a = Analysis {
        in_flight,
        sb,
        device,
        base,
        bytes,
        bounds,
        records,
        log: dev.src().clone(),
        parsed,
        findings,
        refused,
        dropped,
    };
    Ok((a, replayed))
}

/// Work that the kernel's recovery drops although it is complete on the media: the records
/// past the kernel's head that an exact reading keeps ([`search::dropped_records`]), with the
/// transactions they commit and the inodes those log. Noted as a finding.
fn dropped_work(
    fs: &Arc<dyn BlockSource>,
    opts: &LogOptions,
    dev: &LogDev,
    b: &Bounds,
    findings: &Findings,
    base: u64,
) -> Result<Option<Dropped>> {
    let recs = search::dropped_records(dev, b);
    let Some(first) = recs.first() else { return Ok(None) };
    let exact = analyse(
        fs,
        &LogOptions { log_dev: opts.log_dev.clone(), exact_head: true, rules: opts.rules },
        false,
    )?;
    let lsns: std::collections::BTreeSet<u64> = recs.iter().map(|r| r.lsn).collect();
    let src = &*exact.log;
    let mut transactions = vec![];
    let mut inodes = std::collections::BTreeSet::new();
    for t in exact.parsed.committed.iter().filter(|t| lsns.contains(&t.commit_lsn)) {
        transactions.push(DroppedTrans {
            tid: format!("{:#x}", t.tid),
            lsn: lsn_str(t.lsn),
            commit_lsn: lsn_str(t.commit_lsn),
        });
        for it in &t.items {
            if items::item_type_name(it, t.native, src) == Some("INODE")
                && let Some(ino) = items::describe(it, t.native, src).get("ino").and_then(Value::as_u64)
            {
                inodes.insert(ino);
            }
        }
    }
    let exact_head = exact.bounds.as_ref().map_or(b.head_blk, |e| e.head_blk);
    let d = Dropped {
        kernel_head: b.head_blk,
        exact_head,
        sector_bytes: dev.sect_bbs() * 512,
        records: recs
            .iter()
            .map(|r| DroppedRecord { block: r.blk, lsn: lsn_str(r.lsn), len: r.len })
            .collect(),
        transactions,
        inodes: inodes.into_iter().collect(),
    };
    let recs_s: Vec<String> =
        d.records.iter().map(|r| format!("block {} (lsn {}, {} bytes)", r.block, r.lsn, r.len)).collect();
    let inos: Vec<String> = d.inodes.iter().map(u64::to_string).collect();
    findings.error(
        "xfs log",
        Some(first.blk),
        Some(base + first.blk * 512),
        format!(
            "the kernel's recovery drops complete, crc-valid log work: its reads of {}-byte log sectors (xlog_find_verify_log_record after xlog_do_io rounds them) cannot see the record header in the torn sector, so it puts the head at block {} where an exact reading finds {}; dropped: record(s) {}, {} committed transaction(s) ({}), inode(s) {}. --exact-log-head shows the view that keeps them",
            d.sector_bytes,
            d.kernel_head,
            d.exact_head,
            recs_s.join(", "),
            d.transactions.len(),
            d.transactions.iter().map(|t| format!("tid {} commit lsn {}", t.tid, t.commit_lsn)).collect::<Vec<_>>().join(", "),
            if inos.is_empty() { "none".to_string() } else { inos.join(", ") },
        ),
    );
    Ok(Some(d))
}

/// Log work the kernel's recovery drops although it is complete on the media.
#[derive(Debug, Clone, Serialize)]
pub struct Dropped {
    /// The head the kernel finds.
    pub kernel_head: u64,
    /// The head an exact reading finds.
    pub exact_head: u64,
    /// The log sector size the kernel reads with.
    pub sector_bytes: u64,
    /// The records between the two heads.
    pub records: Vec<DroppedRecord>,
    /// Transactions those records commit.
    pub transactions: Vec<DroppedTrans>,
    /// Inodes those transactions log.
    pub inodes: Vec<u64>,
}

/// One dropped record.
#[derive(Debug, Clone, Serialize)]
pub struct DroppedRecord {
    /// Log block of its header.
    pub block: u64,
    /// Its LSN.
    pub lsn: String,
    /// Data bytes.
    pub len: u32,
}

/// One dropped transaction.
#[derive(Debug, Clone, Serialize)]
pub struct DroppedTrans {
    /// Transaction id.
    pub tid: String,
    /// LSN of the record holding its start.
    pub lsn: String,
    /// LSN of the record holding its commit.
    pub commit_lsn: String,
}

/// The first record header after the head (the oldest record still in the log), searched
/// forward over at most one log length.
fn oldest_record(dev: &LogDev, b: &Bounds) -> Result<Option<u64>> {
    if b.zeroed_tail {
        return Ok(Some(0));
    }
    for k in 0..dev.nbb() {
        let blk = (b.head_blk + k) % dev.nbb();
        if dev.is_header(blk)? && dev.read_record(blk).is_ok() {
            return Ok(Some(blk));
        }
    }
    Ok(None)
}

/// Intents (EFI, RUI, CUI, BUI, ATTRI, XMI...) logged without their done item, in log order.
pub fn unfinished_intents(committed: &[Trans], src: &dyn BlockSource) -> Vec<Value> {
    let mut open: Vec<(&'static str, u64, Value)> = vec![];
    for t in committed {
        for it in &t.items {
            let Some(ty) = items::item_type(it, t.native, src) else { continue };
            if items::intent_family(ty).is_none() {
                continue;
            }
            let Some((intent, fam, id)) =
                it.regions.first().and_then(|r| items::intent_id(ty, &r.head(src, 16), t.native))
            else {
                continue;
            };
            if intent {
                let mut d = items::describe(it, t.native, src);
                if let Value::Object(o) = &mut d {
                    o.insert("lsn".into(), json!(lsn_str(t.lsn)));
                    o.insert("tid".into(), json!(format!("{:#x}", t.tid)));
                }
                open.push((fam, id, d));
            } else {
                open.retain(|(f, i, _)| !(*f == fam && *i == id));
            }
        }
    }
    open.into_iter().map(|x| x.2).collect()
}

/// Recover the XFS log of the file system in `fs` in memory; returns the view to read through
/// (an overlay, or `fs` itself when there is nothing to replay) and what was done.
pub fn recover_view(
    fs: Arc<dyn BlockSource>,
    opts: &LogOptions,
) -> Result<(Arc<dyn BlockSource>, RecoveryReport)> {
    let (a, early) = analyse_inner(&fs, opts, false, true)?;
    if let Some(why) = &a.refused {
        let details = json!({
            "device": a.device,
            "head": a.bounds.as_ref().map(|b| json!({"block": b.head_blk, "cycle": b.head_cycle})),
            "tail": a.bounds.as_ref().map(|b| json!({"block": b.tail_blk, "cycle": b.tail_cycle})),
            "state": "dirty",
            "refused": [why],
            "note": "the kernel would not mount this file system: its log recovery fails; the view is the media as it is",
        });
        let report = RecoveryReport {
            kind: "xfs-log",
            needed: true,
            applied: false,
            details,
            findings: a.findings.snapshot(),
        };
        return Ok((fs, report));
    }
    let Some(b) = a.bounds.clone() else {
        return Ok((fs, RecoveryReport::none("the XFS log is all zeroes")));
    };
    let mut details = json!({
        "device": a.device,
        "head": {"block": b.head_blk, "cycle": b.head_cycle},
        "tail": {"block": b.tail_blk, "cycle": b.tail_cycle},
        "state": if b.clean { "clean" } else { "dirty" },
        "torn_head": b.torn.map(|(o, n)| json!({"original_head": o, "new_head": n})),
        "log_sector_bytes": b.sector_blocks * 512,
        "head_rule": if opts.exact_head { "exact 512-byte blocks (--exact-log-head)" } else { "the kernel's (reads rounded to log sectors)" },
        "dropped_by_kernel": a.dropped,
        "head_in_flight": a.in_flight,
        "records": a.records.len(),
        "transactions": a.parsed.committed.len(),
        "uncommitted_transactions": a.parsed.uncommitted.len(),
    });
    if b.clean || a.parsed.committed.is_empty() {
        let report = RecoveryReport {
            kind: "xfs-log",
            needed: false,
            applied: false,
            details,
            findings: a.findings.snapshot(),
        };
        return Ok((fs, report));
    }
    let (a, rp) = match early {
        Some(EarlyReplay { abandoned: false, err: Some(e), .. }) => return Err(e),
        Some(EarlyReplay { abandoned: false, rp, .. }) => (a, rp),
        replayed => {
            // A cancel record: the two passes, over the log read again when the transactions
            // replayed early were dropped.
            let a = if replayed.is_some() { analyse(&fs, opts, false)? } else { a };
            let mut rp = recover::Replayer::new(fs.clone(), a.log.clone(), &a.sb)?;
            for t in &a.parsed.committed {
                rp.pass1(t);
            }
            for t in &a.parsed.committed {
                rp.pass2(t)?;
            }
            (a, rp)
        }
    };
    let (ov, stats, sectors) = rp.finish()?;
    for e in &stats.errors {
        a.findings.error("xfs log recovery", None, None, e.clone());
    }
    let intents = unfinished_intents(&a.parsed.committed, &*a.log);
    if !intents.is_empty() {
        a.findings.info(
            "xfs log recovery",
            None,
            None,
            format!("{} unfinished intent(s): the kernel finishes them after replay", intents.len()),
        );
    }
    if let Value::Object(o) = &mut details {
        o.insert("replay".into(), serde_json::to_value(&stats).unwrap_or(Value::Null));
        o.insert("sectors_replaced".into(), json!(sectors));
        o.insert("unfinished_intents".into(), json!(intents));
    }
    let report = RecoveryReport {
        kind: "xfs-log",
        needed: true,
        applied: true,
        details,
        findings: a.findings.snapshot(),
    };
    Ok((Arc::new(ov), report))
}

/// Keep only the items of the transactions committed from the `from`-th on that the end of a
/// listing or the recovery report still reads: intents and their done items (the memory of the
/// others serves the items reassembled next).
fn keep_intents(r: &mut trans::Reassembler, from: usize, src: &dyn BlockSource) {
    r.keep_committed_items(from, |it, native| {
        items::item_type(it, native, src).is_some_and(|ty| items::intent_family(ty).is_some())
    });
}

/// The findings about one log record: a crc (computed, matches) that does not match, and a
/// record uuid that is not the file system's. `base` is the log's byte offset in the image.
fn record_findings(findings: &Findings, r: &Record, (calc, ok): (u32, bool), uuid: &[u8; 16], base: u64) {
    if !ok {
        findings.error(
            "xfs log record",
            Some(r.blk),
            Some(base + r.blk * 512),
            format!("crc {:#010x} stored, {calc:#010x} computed", r.crc_stored),
        );
    }
    if r.uuid != *uuid {
        findings.error(
            "xfs log record",
            Some(r.blk),
            Some(base + r.blk * 512),
            "record uuid differs from the superblock's",
        );
    }
}
