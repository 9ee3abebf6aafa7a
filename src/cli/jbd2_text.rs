//! The text of a jbd2 journal listing (in the manner of `debugfs logdump`): the superblock, a
//! line per transaction and per logged block and revoke, the checksums, ext4's fast-commit area
//! and what recovery would do.

use super::xlog_text::{push_hex, push_u64};
use crate::ext4::fastcommit::FastCommitArea;
use crate::jbd2::listing::JournalListing;
use std::io::Write;

/// How a listing shows a checksum: ok, BAD, or - when it was not verified.
pub fn ok_str(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "ok",
        Some(false) => "BAD",
        None => "-",
    }
}

/// Write the text of the listing `l` of an ext4 file system's journal to `w`.
pub fn write(w: &mut dyn Write, l: &JournalListing<FastCommitArea>) -> std::io::Result<()> {
    let j = l.journal();
    let sb = &j.sb;
    writeln!(w, "Journal: {} (jbd2 superblock v{})", j.location, sb.version)?;
    writeln!(
        w,
        "  block size {}, s_maxlen {}, s_first {}, log blocks {}..{}, fast-commit blocks {}",
        sb.block_size,
        sb.maxlen,
        sb.first,
        j.first,
        j.last,
        sb.fc_blocks()
    )?;
    writeln!(
        w,
        "  features: {}",
        if sb.features.is_empty() { "(none)".into() } else { sb.features.join(" ") }
    )?;
    writeln!(w, "  superblock checksum: {}", ok_str(sb.checksum_ok))?;
    writeln!(
        w,
        "Journal starts at block {}, transaction {}{}",
        sb.start,
        sb.sequence,
        if sb.start == 0 { " (clean)" } else { "" }
    )?;
    for r in &j.refusal {
        writeln!(w, "  REFUSED by the kernel: {r}")?;
    }
    let mut line: Vec<u8> = Vec::new();
    for t in l.transactions() {
        writeln!(
            w,
            "Transaction {} ({}{}{}): journal blocks {}..{}{}",
            t.sequence,
            if t.committed { "committed" } else { "NOT committed" },
            if t.live { "" } else { ", checkpointed" },
            match t.replayed {
                Some(true) => ", replayed",
                Some(false) if t.live => ", not replayed",
                _ => "",
            },
            t.first_block,
            t.last_block,
            t.commit_time
                .map(|c| format!(", commit time {c}.{:09}", t.commit_nsec.unwrap_or(0)))
                .unwrap_or_default()
        )?;
        // Tens of thousands of these lines: formatted by hand into one buffer, reused for every
        // transaction (a fresh large buffer each time would fault in new pages each time).
        line.clear();
        for b in &t.blocks {
            line.extend_from_slice(b"  FS block ");
            push_u64(&mut line, b.fs_block);
            line.extend_from_slice(b" logged at journal block ");
            push_u64(&mut line, b.journal_block);
            line.extend_from_slice(b" (flags ");
            push_hex(&mut line, u64::from(b.flags));
            line.extend_from_slice(b") csum ");
            line.extend_from_slice(ok_str(b.csum_ok).as_bytes());
            line.push(b'\n');
        }
        for r in &t.revokes {
            line.extend_from_slice(b"  Revoke FS block ");
            push_u64(&mut line, *r);
            line.push(b'\n');
        }
        w.write_all(&line)?;
        let c = &t.checksums;
        if sb.csum_v2v3() || sb.csum_v1() {
            writeln!(
                w,
                "  checksums: descriptors [{}] revokes [{}] commit {} crc32 {}",
                c.descriptors.iter().map(|b| ok_str(Some(*b))).collect::<Vec<_>>().join(" "),
                c.revokes.iter().map(|b| ok_str(Some(*b))).collect::<Vec<_>>().join(" "),
                ok_str(c.commit),
                ok_str(c.crc32)
            )?;
        }
    }
    if let Some(fc) = l.fast_commit() {
        write_fast_commit(w, fc)?;
    }
    if let Some(r) = l.recovery() {
        writeln!(w, "Recovery: needed {}, applied {}: {}", r.needed, r.applied, r.details)?;
    }
    Ok(())
}

/// The fast-commit area: a summary line and a line per tag.
fn write_fast_commit(w: &mut dyn Write, fc: &FastCommitArea) -> std::io::Result<()> {
    use std::fmt::Write as _;
    writeln!(
        w,
        "Fast-commit area: blocks {}.. ({} blocks), {} tags, {} valid for tid {}; scan: {}",
        fc.first_block,
        fc.blocks,
        fc.tags.len(),
        fc.valid_tags,
        fc.expected_tid,
        fc.scan_end
    )?;
    for t in &fc.tags {
        let mut line = format!("  block {} +{}: {}", t.journal_block, t.offset, t.tag);
        if let Some(v) = t.ino {
            let _ = write!(line, " ino {v}");
        }
        if let Some(v) = t.parent {
            let _ = write!(line, " parent {v}");
        }
        if let Some(v) = &t.name {
            let _ = write!(line, " name {v:?}");
        }
        if let Some(v) = t.lblk {
            let _ = write!(line, " lblk {v}");
        }
        if let Some(v) = t.pblk {
            let _ = write!(line, " pblk {v}");
        }
        if let Some(v) = t.blocks {
            let _ = write!(line, " len {v}");
        }
        if let Some(v) = t.tid {
            let _ = write!(line, " tid {v}");
        }
        if let Some(v) = t.crc_ok {
            let _ = write!(line, " crc {}", ok_str(Some(v)));
        }
        if t.valid {
            line.push_str(" [valid]");
        }
        writeln!(w, "{line}")?;
    }
    Ok(())
}
