//! The text of an XFS log listing (like `xfs_logprint -t`): a header, a rule and a line per
//! committed transaction, a line per item, the uncommitted transactions and the count of
//! unfinished intents. Written from a whole [`LogListing`], or while the log is read
//! ([`write_streamed`]), byte for byte the same.

use crate::error::{Error, Result};
use crate::image::BlockSource;
use crate::xlog::format::{self, lsn_str};
use crate::xlog::items::{self, ItemSummary};
use crate::xlog::search::Bounds;
use crate::xlog::trans::{Parsed, Trans};
use crate::xlog::{Dropped, LogListing, LogOptions, LogSink, StreamHeader, stream_log, unfinished_intents};
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;

/// The header's facts, from a listing or a stream.
struct Header<'a> {
    device: &'a str,
    base: u64,
    bytes: u64,
    bounds: Option<&'a Bounds>,
    refused: Option<&'a str>,
    dropped: Option<&'a Dropped>,
    records: usize,
    bad_records: usize,
}

fn write_header(w: &mut dyn Write, h: &Header<'_>) -> std::io::Result<()> {
    writeln!(w, "xfs log: {} at byte {}, {} bytes", h.device, h.base, h.bytes)?;
    let Some(b) = h.bounds else {
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
    if let Some(why) = h.refused {
        writeln!(w, "REFUSED: the kernel's log recovery fails, the mount fails: {why}")?;
    }
    if let Some(d) = h.dropped {
        let recs: Vec<String> = d.records.iter().map(|r| format!("{} (lsn {})", r.block, r.lsn)).collect();
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
    writeln!(w, "records: {} (crc ok {}, bad {})", h.records, h.records - h.bad_records, h.bad_records)
}

/// Write the text of the whole listing `l` to `w`.
pub fn write(w: &mut dyn Write, l: &LogListing) -> std::io::Result<()> {
    let a = l.analysis();
    write_header(
        w,
        &Header {
            device: &a.device,
            base: a.base,
            bytes: a.bytes,
            bounds: a.bounds.as_ref(),
            refused: a.refused.as_deref(),
            dropped: a.dropped.as_ref(),
            records: a.records.len(),
            bad_records: a.records.iter().filter(|r| !r.crc_ok).count(),
        },
    )?;
    if a.bounds.is_none() {
        return Ok(());
    }
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
        write_trans(w, t, src, &mut line)?;
    }
    write_tail(w, &a.parsed, src)
}

/// Write the text of the log of the file system in `fs` to `w` while the log is read (see
/// [`stream_log`]); returns the findings. Listed whole when it cannot be streamed, and with
/// `all`.
pub fn write_streamed(
    fs: Arc<dyn BlockSource>,
    opts: &LogOptions,
    all: bool,
    w: &mut dyn Write,
) -> Result<Vec<crate::Finding>> {
    if !all {
        let mut sink = TextSink { w: &mut *w, held: Some(Vec::new()), line: Vec::with_capacity(256) };
        if let Some(s) = stream_log(fs.clone(), opts, &mut sink)? {
            write_tail(w, &s.parsed, &*s.src).map_err(stdout)?;
            return Ok(s.findings);
        }
    }
    let l = crate::xlog::list_log(fs, opts, all)?;
    write(w, &l).map_err(stdout)?;
    Ok(l.findings())
}

fn stdout(e: std::io::Error) -> Error {
    Error::io("<stdout>", e)
}

/// The text of a streamed log: transactions reassembled before the header could be written
/// are held back until it is.
struct TextSink<'w> {
    w: &'w mut dyn Write,
    /// Some until the header is written.
    held: Option<Vec<u8>>,
    line: Vec<u8>,
}

impl LogSink for TextSink<'_> {
    fn transaction(&mut self, t: &Trans, src: &dyn BlockSource) -> Result<()> {
        let out: &mut dyn Write = match &mut self.held {
            Some(h) => h,
            None => &mut *self.w,
        };
        write_trans(out, t, src, &mut self.line).map_err(stdout)
    }

    fn header(&mut self, h: &StreamHeader<'_>) -> Result<()> {
        let header = Header {
            device: h.device,
            base: h.base,
            bytes: h.bytes,
            bounds: Some(h.bounds),
            refused: None,
            dropped: None,
            records: h.records,
            bad_records: h.bad_records,
        };
        write_header(self.w, &header).map_err(stdout)?;
        if let Some(held) = self.held.take() {
            self.w.write_all(&held).map_err(stdout)?;
        }
        Ok(())
    }

    fn wants_header(&self) -> bool {
        self.held.as_ref().is_some_and(|h| h.len() > 4 << 20)
    }
}

/// The text of one committed transaction (a rule, its line, a line per item).
fn write_trans(
    w: &mut dyn Write,
    t: &Trans,
    src: &dyn BlockSource,
    line: &mut Vec<u8>,
) -> std::io::Result<()> {
    // The rule and "TRANS: tid:{:#x}  lsn:{}  commit:{}  #items:{}", written by hand.
    line.clear();
    line.extend_from_slice(&[b'='; 76]);
    line.extend_from_slice(b"\nTRANS: tid:");
    push_hex(line, u64::from(t.tid));
    line.extend_from_slice(b"  lsn:");
    push_lsn(line, t.lsn);
    line.extend_from_slice(b"  commit:");
    push_lsn(line, t.commit_lsn);
    line.extend_from_slice(b"  #items:");
    push_u64(line, t.items.iter().filter(|i| !i.regions.is_empty()).count() as u64);
    line.push(b'\n');
    w.write_all(line)?;
    for (k, it) in t.items.iter().filter(|i| !i.regions.is_empty()).enumerate() {
        let ty = items::item_type_name(it, t.native, src).unwrap_or("?");
        line.clear();
        line.extend_from_slice(b"  item ");
        push_u64(line, k as u64);
        line.extend_from_slice(b": ");
        line.extend_from_slice(ty.as_bytes());
        line.extend_from_slice(b" {");
        if let Some(s) = items::summary(it, t.native, src) {
            push_summary(line, &s);
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

/// The end of the text: uncommitted transactions and the count of unfinished intents.
fn write_tail(w: &mut dyn Write, p: &Parsed, src: &dyn BlockSource) -> std::io::Result<()> {
    for t in &p.uncommitted {
        writeln!(w, "UNCOMMITTED: tid:{:#x} lsn:{} #items:{}", t.tid, lsn_str(t.lsn), t.items.len())?;
    }
    let intents = unfinished_intents(&p.committed, src);
    if !intents.is_empty() {
        writeln!(w, "unfinished intents: {}", intents.len())?;
    }
    Ok(())
}

/// Append the fields of a buffer or inode item as compact JSON with sorted keys, byte for byte
/// what serializing the item's fields gives ([`items::describe_fields`]), without building it.
fn push_summary(out: &mut Vec<u8>, s: &ItemSummary) {
    match *s {
        ItemSummary::Buf { blf_type, blkno, cancel, dirty_chunks, flags, inode_buf, len, magic } => {
            key(out, "blf_type", true);
            push_u64(out, u64::from(blf_type));
            key(out, "blkno", false);
            push_u64(out, blkno);
            key(out, "cancel", false);
            push_bool(out, cancel);
            key(out, "dirty_chunks", false);
            push_u64(out, u64::from(dirty_chunks));
            key(out, "flags", false);
            push_hex_str(out, u64::from(flags), 1);
            key(out, "inode_buf", false);
            push_bool(out, inode_buf);
            key(out, "len", false);
            push_u64(out, u64::from(len));
            key(out, "magic", false);
            match magic {
                Some(m) => push_hex_str(out, u64::from(m), 8),
                None => out.extend_from_slice(b"null"),
            }
        }
        ItemSummary::Inode {
            asize,
            blkno,
            boffset,
            dsize,
            fields,
            format,
            ino,
            len,
            mode,
            nextents,
            size,
        } => {
            key(out, "asize", true);
            push_u64(out, u64::from(asize));
            key(out, "blkno", false);
            push_u64(out, blkno);
            key(out, "boffset", false);
            push_u64(out, u64::from(boffset));
            key(out, "dsize", false);
            push_u64(out, u64::from(dsize));
            key(out, "fields", false);
            push_hex_str(out, u64::from(fields), 1);
            key(out, "format", false);
            push_opt(out, format.map(u64::from));
            key(out, "ino", false);
            push_u64(out, ino);
            key(out, "len", false);
            push_u64(out, u64::from(len));
            key(out, "mode", false);
            match mode {
                Some(m) => {
                    out.push(b'"');
                    push_radix(out, u64::from(m), 3, 1);
                    out.push(b'"');
                }
                None => out.extend_from_slice(b"null"),
            }
            key(out, "nextents", false);
            push_opt(out, nextents.map(u64::from));
            key(out, "size", false);
            push_opt(out, size);
        }
    }
}

/// Append an LSN as [`lsn_str`] writes it (`cycle:block`).
fn push_lsn(out: &mut Vec<u8>, lsn: u64) {
    push_u64(out, u64::from(format::lsn_cycle(lsn)));
    out.push(b':');
    push_u64(out, u64::from(format::lsn_block(lsn)));
}

/// Append `v` in decimal (itoa: no formatter machinery per number).
pub(crate) fn push_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Append `v` in base `1 << shift` (lowercase digits), at least `width` digits.
fn push_radix(out: &mut Vec<u8>, mut v: u64, shift: u32, width: usize) {
    let mut b = [b'0'; 64];
    let mut i = b.len();
    let mask = (1u64 << shift) - 1;
    while v != 0 || b.len() - i < width.max(1) {
        i -= 1;
        b[i] = b"0123456789abcdef"[(v & mask) as usize];
        v >>= shift;
    }
    out.extend_from_slice(&b[i..]);
}

/// Append `0x…` (`{:#x}`), unquoted.
pub(crate) fn push_hex(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(b"0x");
    push_radix(out, v, 4, 1);
}

/// Append `"0x…"` (`{:#x}`), quoted.
fn push_hex_str(out: &mut Vec<u8>, v: u64, width: usize) {
    out.extend_from_slice(b"\"0x");
    push_radix(out, v, 4, width);
    out.push(b'"');
}

fn push_bool(out: &mut Vec<u8>, v: bool) {
    out.extend_from_slice(if v { b"true" } else { b"false" });
}

/// Append a JSON field `"name":` (after a comma unless first).
fn key(out: &mut Vec<u8>, name: &str, first: bool) {
    if !first {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Append an optional number, `null` when absent.
fn push_opt(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        Some(v) => push_u64(out, v),
        None => out.extend_from_slice(b"null"),
    }
}
