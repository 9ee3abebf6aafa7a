//! Walking the log transaction by transaction for listing (`daxray journal`), like `debugfs
//! logdump` but with every checksum checked.

use super::block::{self, FLAG_ESCAPE};
use super::csum;
use super::journal::Journal;
use super::recover::TagChecks;
use super::superblock::{BT_COMMIT, BT_DESCRIPTOR, BT_REVOKE, JBD2_MAGIC};
use super::tid::tid_gt;
use serde::Serialize;

/// A logged block. Fields are in alphabetical order, as JSON listings print them.
#[derive(Debug, Clone, Serialize)]
pub struct TxBlock {
    /// Tag checksum matches (None without csum v2/v3).
    pub csum_ok: Option<bool>,
    /// The copy's magic was escaped.
    pub escaped: bool,
    /// Tag flags.
    pub flags: u16,
    /// Where it belongs in the file system.
    pub fs_block: u64,
    /// Where its copy sits in the journal.
    pub journal_block: u64,
}

/// Checksum results of one transaction. Fields are in alphabetical order, as JSON listings print them.
#[derive(Debug, Clone, Serialize, Default)]
pub struct TxChecksums {
    /// Commit block checksum (csum v2/v3).
    pub commit: Option<bool>,
    /// Legacy crc32 over descriptor and data blocks (journal_checksum), when present.
    pub crc32: Option<bool>,
    /// Descriptor block tails (csum v2/v3), in order.
    pub descriptors: Vec<bool>,
    /// Legacy checksum type named in the commit block (crc32, md5, sha1), if any.
    pub legacy_type: Option<&'static str>,
    /// Revoke block tails (csum v2/v3), in order.
    pub revokes: Vec<bool>,
}

/// One transaction found in the log. Fields are in alphabetical order, as JSON listings print them.
#[derive(Debug, Clone, Serialize)]
pub struct Transaction {
    /// Revoke blocks whose r_count exceeds the block.
    pub bad_r_count: usize,
    /// Logged blocks.
    pub blocks: Vec<TxBlock>,
    /// Checksums.
    pub checksums: TxChecksums,
    /// Commit time, nanoseconds.
    pub commit_nsec: Option<u32>,
    /// Commit time, seconds.
    pub commit_time: Option<u64>,
    /// A commit block with this sequence was found.
    pub committed: bool,
    /// Descriptor block numbers.
    pub descriptor_blocks: Vec<u64>,
    /// First journal block.
    pub first_block: u64,
    /// Last journal block (the commit block when committed).
    pub last_block: u64,
    /// In the live region (from s_start); false for old, checkpointed ones (`--all`).
    pub live: bool,
    /// Whether the kernel's recovery replays it (live transactions only).
    pub replayed: Option<bool>,
    /// Revoke block numbers.
    pub revoke_blocks: Vec<u64>,
    /// Revoked fs blocks.
    pub revokes: Vec<u64>,
    /// Sequence number.
    pub sequence: u32,
    /// Journal blocks this transaction occupies.
    #[serde(skip)]
    pub span: u64,
}

/// Whether and how a listing verifies the logged blocks' tag checksums (csum v2/v3).
#[derive(Debug, Clone, Copy)]
pub enum DataTags<'a> {
    /// Read every logged block and verify its tag checksum, reusing results that recovery's
    /// replay pass already computed.
    Verify(Option<&'a TagChecks>),
    /// Do not read logged blocks: their `csum_ok` is None (not verified).
    Skip,
}

/// Walk one transaction with sequence `seq` starting at journal block `pos`, the tag checksums
/// of its logged blocks verified or not per `data`. Returns the transaction (None if the block at
/// `pos` is not a jbd2 block of that sequence) and the position after it.
pub fn walk_transaction_with(
    j: &Journal,
    mut pos: u64,
    seq: u32,
    live: bool,
    data: DataTags<'_>,
) -> Option<(Transaction, u64)> {
    let sb = &j.sb;
    let mut tx = Transaction {
        sequence: seq,
        committed: false,
        first_block: pos,
        last_block: pos,
        descriptor_blocks: vec![],
        blocks: vec![],
        revoke_blocks: vec![],
        revokes: vec![],
        bad_r_count: 0,
        commit_time: None,
        commit_nsec: None,
        checksums: TxChecksums::default(),
        live,
        replayed: None,
        span: 0,
    };
    let mut crc: u32 = !0;
    let budget = j.lap().saturating_add(1);
    let mut any = false;
    while tx.span < budget {
        let Some(bh) = j.read(pos) else { break };
        let Some(h) = block::header(&bh) else { break };
        if h.magic != JBD2_MAGIC || h.sequence != seq {
            break;
        }
        match h.blocktype {
            BT_DESCRIPTOR => {
                any = true;
                tx.last_block = pos;
                tx.descriptor_blocks.push(pos);
                if sb.csum_v2v3() {
                    tx.checksums.descriptors.push(block::tail_csum_ok(&bh, sb));
                }
                // The legacy crc32 is only checked on csum v1 journals: skip its cost elsewhere.
                if sb.csum_v1() {
                    crc = csum::crc32_be(crc, &bh);
                }
                pos = j.wrap(pos + 1);
                tx.span += 1;
                for tag in block::tags(&bh, sb) {
                    if sb.csum_v1()
                        && let Some(d) = j.read(pos)
                    {
                        crc = csum::crc32_be(crc, &d);
                    }
                    let csum_ok = match data {
                        _ if !sb.csum_v2v3() => None,
                        DataTags::Skip => None,
                        DataTags::Verify(known) => {
                            Some(known.and_then(|k| k.get(pos)).unwrap_or_else(|| {
                                j.read(pos).is_some_and(|d| block::tag_csum_ok(&d, tag.checksum, seq, sb))
                            }))
                        }
                    };
                    tx.blocks.push(TxBlock {
                        fs_block: tag.fs_block,
                        journal_block: pos,
                        flags: tag.flags,
                        csum_ok,
                        escaped: tag.flags & FLAG_ESCAPE != 0,
                    });
                    tx.last_block = pos;
                    pos = j.wrap(pos + 1);
                    tx.span += 1;
                }
            }
            BT_REVOKE => {
                any = true;
                tx.last_block = pos;
                tx.revoke_blocks.push(pos);
                if sb.csum_v2v3() {
                    tx.checksums.revokes.push(block::tail_csum_ok(&bh, sb));
                }
                if let Some(r) = block::revoke(&bh, sb) {
                    if !r.r_count_ok {
                        tx.bad_r_count += 1;
                    }
                    tx.revokes.extend(r.blocks);
                }
                pos = j.wrap(pos + 1);
                tx.span += 1;
            }
            BT_COMMIT => {
                any = true;
                tx.last_block = pos;
                tx.committed = true;
                if let Some(c) = block::commit(&bh) {
                    tx.commit_time = Some(c.commit_sec);
                    tx.commit_nsec = Some(c.commit_nsec);
                    tx.checksums.legacy_type = match c.chksum_type {
                        block::CHKSUM_CRC32 => Some("crc32"),
                        block::CHKSUM_MD5 => Some("md5"),
                        block::CHKSUM_SHA1 => Some("sha1"),
                        _ => None,
                    };
                    if sb.csum_v1() {
                        let ok = (c.chksum_type == block::CHKSUM_CRC32
                            && c.chksum_size == block::CHKSUM_CRC32_SIZE
                            && c.chksum0 == crc)
                            || (c.chksum_type == 0 && c.chksum_size == 0 && c.chksum0 == 0);
                        tx.checksums.crc32 = Some(ok);
                    }
                }
                if sb.csum_v2v3() {
                    tx.checksums.commit = Some(block::commit_csum_ok(&bh, sb));
                }
                pos = j.wrap(pos + 1);
                tx.span += 1;
                break;
            }
            _ => break,
        }
    }
    any.then_some((tx, pos))
}

/// The live transactions, from s_start/s_sequence, and the position after them.
pub fn live(j: &Journal) -> (Vec<Transaction>, u64) {
    live_with(j, DataTags::Verify(None))
}

/// [`live`], with the tag checksums of logged blocks verified or not per `data`.
pub fn live_with(j: &Journal, data: DataTags<'_>) -> (Vec<Transaction>, u64) {
    let mut out = vec![];
    let mut pos = u64::from(j.sb.start);
    if pos == 0 {
        return (out, 0);
    }
    let mut seq = j.sb.sequence;
    let mut used = 0u64;
    let lap = j.lap();
    while used <= lap {
        let Some((tx, next)) = walk_transaction_with(j, pos, seq, true, data) else { break };
        used += tx.span.max(1);
        let committed = tx.committed;
        out.push(tx);
        pos = next;
        if !committed {
            break;
        }
        seq = seq.wrapping_add(1);
    }
    (out, pos)
}

/// Old transactions still in the log outside the live region: one lap from `from` until `stop`,
/// transactions with sequences older than s_sequence and increasing, the tag checksums of their
/// logged blocks verified or not per `data`.
pub fn old_with(j: &Journal, from: u64, stop: u64, data: DataTags<'_>) -> Vec<Transaction> {
    let mut out: Vec<Transaction> = vec![];
    // One lap, but never more blocks than the container holds: a corrupt s_maxlen (larger than
    // the device, which the kernel refuses) must not make the scan step through billions of
    // unreadable blocks.
    let lap = j.lap().min(j.total_len.saturating_sub(j.first));
    if lap == 0 {
        return out;
    }
    let mut pos = if from < j.first || from >= j.last { j.first } else { from };
    let mut scanned = 0u64;
    while scanned < lap {
        let mut advanced = false;
        if let Some(bh) = j.read(pos)
            && let Some(h) = block::header(&bh)
            && h.magic == JBD2_MAGIC
            && (h.blocktype == BT_DESCRIPTOR || h.blocktype == BT_REVOKE)
            && tid_gt(j.sb.sequence, h.sequence)
            && out.last().is_none_or(|l| tid_gt(h.sequence, l.sequence))
            && let Some((tx, next)) = walk_transaction_with(j, pos, h.sequence, false, data)
        {
            let span = tx.span.max(1);
            if scanned + span <= lap {
                scanned += span;
                pos = next;
                out.push(tx);
                advanced = true;
            }
        }
        if !advanced {
            pos = j.wrap(pos + 1);
            scanned += 1;
        }
        if pos == stop {
            break;
        }
    }
    out
}
