//! The jbd2 journal: parsing, listing and in-memory recovery.
//!
//! - [`superblock`], [`block`], [`fastcommit`]: the on-disk structures.
//! - [`journal`]: a journal located inside the file system (inode) or on an external device.
//! - [`recover`]: the kernel's three recovery passes, into memory.
//! - [`list`]: transaction listing for `daxray journal`.
//!
//! Fast commits are parsed and listed, the tags the kernel would replay are identified
//! ([`fastcommit`]), and they are replayed over the file-system model by
//! [`crate::ext4::fcreplay`] (see [`apply_fast_commit`]).

pub mod block;
mod copycheck;
pub use copycheck::PendingChecks;
pub mod csum;
pub mod fastcommit;
pub mod head;
pub mod journal;
pub mod list;
pub mod recover;
pub mod superblock;

use crate::error::{Error, Finding, Result, Severity};
use crate::fs::FileSystem;
use crate::image::{BlockSource, FileView, MmapSource, Overlay};
use crate::report::RecoveryReport;
use byteorder::{ByteOrder, LE};
use journal::Journal;
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

/// ext4 compat feature: has a journal.
const EXT4_COMPAT_HAS_JOURNAL: u32 = 0x4;
/// ext4 compat feature: fast commits.
const EXT4_COMPAT_FAST_COMMIT: u32 = 0x400;
/// ext4 ro_compat feature: metadata checksums.
const EXT4_RO_COMPAT_METADATA_CSUM: u32 = 0x400;
/// ext4 incompat feature: needs recovery.
const EXT4_INCOMPAT_RECOVER: u32 = 0x4;
/// ext4 incompat feature: this is a journal device.
const EXT4_INCOMPAT_JOURNAL_DEV: u32 = 0x8;

/// The ext4 superblock fields journal handling needs.
#[derive(Debug, Clone)]
pub struct FsJournalInfo {
    /// File-system block size.
    pub block_size: u32,
    /// Blocks in the file system.
    pub blocks_count: u64,
    /// has_journal.
    pub has_journal: bool,
    /// needs_recovery.
    pub needs_recovery: bool,
    /// This is a journal device, not a file system.
    pub journal_dev: bool,
    /// fast_commit (ext4 side).
    pub fast_commit: bool,
    /// s_journal_inum.
    pub journal_inum: u32,
    /// s_journal_dev.
    pub journal_devnum: u32,
    /// s_journal_uuid.
    pub journal_uuid: [u8; 16],
    /// s_uuid.
    pub uuid: [u8; 16],
    /// s_inode_size (128 for revision 0).
    pub inode_size: u16,
}

/// Read the ext4 superblock fields about the journal from byte 1024 of `src`.
pub fn fs_journal_info(src: &dyn BlockSource) -> Result<FsJournalInfo> {
    let sb = src.read_at(1024, 1024)?;
    if LE::read_u16(&sb[56..]) != 0xEF53 {
        return Err(Error::corrupt("ext4 superblock", 0, 1024, "no ext4 magic 0xEF53 at byte 1080"));
    }
    let log = LE::read_u32(&sb[24..]);
    if log > 6 {
        return Err(Error::corrupt(
            "ext4 superblock",
            0,
            1024 + 24,
            format!("s_log_block_size {log} gives a block size over 64 KiB"),
        ));
    }
    let compat = LE::read_u32(&sb[92..]);
    let incompat = LE::read_u32(&sb[96..]);
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&sb[104..120]);
    let mut journal_uuid = [0u8; 16];
    journal_uuid.copy_from_slice(&sb[208..224]);
    let lo = u64::from(LE::read_u32(&sb[4..]));
    // s_blocks_count_hi only counts with the 64bit feature (incompat 0x80).
    let hi = if incompat & 0x80 != 0 { u64::from(LE::read_u32(&sb[0x150..])) } else { 0 };
    Ok(FsJournalInfo {
        block_size: 1024 << log,
        blocks_count: lo | (hi << 32),
        has_journal: compat & EXT4_COMPAT_HAS_JOURNAL != 0,
        needs_recovery: incompat & EXT4_INCOMPAT_RECOVER != 0,
        journal_dev: incompat & EXT4_INCOMPAT_JOURNAL_DEV != 0,
        fast_commit: compat & EXT4_COMPAT_FAST_COMMIT != 0,
        journal_inum: LE::read_u32(&sb[224..]),
        journal_devnum: LE::read_u32(&sb[228..]),
        journal_uuid,
        uuid,
        inode_size: if LE::read_u32(&sb[76..]) == 0 { 128 } else { LE::read_u16(&sb[88..]) },
    })
}

/// Open the journal of the file system in `fs`: the inode s_journal_inum, or the external
/// journal device `external`. Ok(None) when the file system has no journal.
pub fn open_journal(
    fs: &Arc<dyn BlockSource>,
    external: Option<&Path>,
) -> Result<Option<(Journal, FsJournalInfo)>> {
    let info = fs_journal_info(&**fs)?;
    if info.journal_dev {
        // The image itself is a journal device.
        let j = open_device(fs.clone(), "the image (a journal device)", None)?;
        return Ok(Some((j, info)));
    }
    if !info.has_journal {
        return Ok(None);
    }
    if let Some(path) = external {
        let dev: Arc<dyn BlockSource> = Arc::new(MmapSource::open(path)?);
        let j = open_device(dev, &path.display().to_string(), Some(&info))?;
        return Ok(Some((j, info)));
    }
    if info.journal_inum == 0 {
        return Err(Error::Usage(format!(
            "the file system's journal is on an external device (s_journal_uuid {}, device {:#x}); pass --journal-dev FILE",
            hex::encode(info.journal_uuid),
            info.journal_devnum
        )));
    }
    let ext4 = crate::ext4::Ext4::open(fs.clone())?;
    let ino = u64::from(info.journal_inum);
    let st = ext4.stat(ino)?;
    let extents = ext4.map(ino)?;
    let bs = info.block_size;
    let view: Arc<dyn BlockSource> =
        Arc::new(FileView::new(fs.clone(), bs, st.size, extents, format!("journal inode {ino}")));
    let j = Journal::open(view, bs, st.size / u64::from(bs), format!("inode {ino}"))?;
    Ok(Some((j, info)))
}

/// A journal device: ext4-style superblock at byte 1024 with the journal_dev feature, the jbd2
/// superblock in the block after it; journal block N is device block N.
fn open_device(dev: Arc<dyn BlockSource>, name: &str, fs: Option<&FsJournalInfo>) -> Result<Journal> {
    let dinfo = fs_journal_info(&*dev)
        .map_err(|e| Error::Unrecognised(format!("{name}: not an ext4 journal device: {e}")))?;
    if !dinfo.journal_dev {
        return Err(Error::Unrecognised(format!("{name}: ext4 superblock without the journal_dev feature")));
    }
    let bs = dinfo.block_size;
    let sb_block: u64 = if bs == 1024 { 2 } else { 1 };
    let start = sb_block * u64::from(bs);
    // A journal source where journal block N is at N × bs: the device itself; the superblock is
    // read from `sb_block`, so give Journal a window that starts there and shift back.
    let shifted: Arc<dyn BlockSource> = Arc::new(Shifted { inner: dev.clone(), sb_at: start });
    let mut j = Journal::open(shifted, bs, dinfo.blocks_count, format!("external device {name}"))?;
    let esb = dev.read_at(1024, 1024)?;
    let ro_compat = LE::read_u32(&esb[100..]);
    if ro_compat & EXT4_RO_COMPAT_METADATA_CSUM != 0 {
        let stored = LE::read_u32(&esb[0x3FC..]);
        let calc = csum::raw(!0, &esb[..0x3FC]);
        if stored != calc {
            j.refusal.push(format!(
                "external journal has corrupt superblock: ext4 superblock checksum {stored:#010x}, computed {calc:#010x}"
            ));
        }
    }
    if let Some(fs) = fs {
        if dinfo.uuid != fs.journal_uuid {
            j.refusal.push(format!(
                "journal device UUID {} is not the file system's s_journal_uuid {}",
                hex::encode(dinfo.uuid),
                hex::encode(fs.journal_uuid)
            ));
        }
        if j.sb.nr_users != 1 {
            j.refusal.push(format!("external journal has {} users (the kernel needs 1)", j.sb.nr_users));
        }
    }
    Ok(j)
}

/// The device, except that bytes 0..1024 read the jbd2 superblock at `sb_at`, so that a
/// [`Journal`] finds its superblock at byte 0 while block N stays device block N.
struct Shifted {
    inner: Arc<dyn BlockSource>,
    sb_at: u64,
}

impl BlockSource for Shifted {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_at(&self, offset: u64, len: usize) -> Result<std::borrow::Cow<'_, [u8]>> {
        if offset == 0 && len <= 1024 {
            return self.inner.read_at(self.sb_at, len);
        }
        self.inner.read_at(offset, len)
    }
    fn read_into(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if offset == 0 && buf.len() <= 1024 {
            return self.inner.read_into(self.sb_at, buf);
        }
        self.inner.read_into(offset, buf)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

fn finding(sev: Severity, structure: &str, block: Option<u64>, msg: String) -> Finding {
    Finding::new(sev, structure, block, None, msg)
}

fn fc_area(j: &Journal, expected_tid: u32, inode_size: u16) -> Option<fastcommit::FastCommitArea> {
    if !j.sb.fast_commit() || j.fc_first == 0 {
        return None;
    }
    let mut blocks = vec![];
    let mut n = j.fc_first;
    while n < j.fc_last && n < j.total_len {
        match j.read(n) {
            Some(b) => blocks.push((n, b)),
            None => break,
        }
        n += 1;
    }
    let refs: Vec<(u64, &[u8])> = blocks.iter().map(|(n, b)| (*n, &b[..])).collect();
    Some(fastcommit::parse(&refs, expected_tid, inode_size))
}

/// Whether the kernel replays the fast commits of `fc` after the jbd2 passes of `out`: the
/// replay pass ran, the scan of the area did not fail, and it holds valid tags.
fn fc_replays(out: &recover::Outcome, fc: &fastcommit::FastCommitArea) -> bool {
    out.replay_ran() && fc.scan_error.is_none() && fc.valid_tags > 0
}

/// What recovery did, for one opened journal.
struct Recovered {
    report: RecoveryReport,
    outcome: Option<recover::Outcome>,
    fc: Option<fastcommit::FastCommitArea>,
    refused: Option<String>,
}

fn run_recovery(j: &Journal, info: &FsJournalInfo, data: recover::DataCheck) -> Recovered {
    let sb = &j.sb;
    let dirty = sb.start != 0;
    let mut findings = vec![];
    let state = if dirty { "needs recovery" } else { "clean" };
    let base = json!({
        "journal": j.location,
        "journal_state": state,
        "s_sequence": sb.sequence,
        "s_start": sb.start,
        "fs_needs_recovery_flag": info.needs_recovery,
    });
    let mk = |needed: bool, applied: bool, details: serde_json::Value, findings: Vec<Finding>| {
        RecoveryReport { kind: "jbd2", needed, applied, details, findings }
    };
    if !j.refusal.is_empty() {
        for r in &j.refusal {
            findings.push(finding(
                Severity::Error,
                "jbd2 superblock",
                Some(0),
                format!("the kernel refuses this journal: {r}"),
            ));
        }
        let mut d = base;
        d["refused"] = json!(j.refusal);
        d["note"] = json!("the kernel would not mount this file system; the view is the media as it is");
        return Recovered { report: mk(dirty, false, d, findings), outcome: None, fc: None, refused: None };
    }
    if !dirty {
        let mut d = base;
        d["note"] = json!("journal is clean (s_start = 0): nothing to replay");
        return Recovered { report: mk(false, false, d, findings), outcome: None, fc: None, refused: None };
    }
    if !info.needs_recovery {
        findings.push(finding(
            Severity::Info,
            "jbd2 superblock",
            Some(0),
            "the journal holds transactions but the file system is not flagged needs_recovery: the kernel discards them without replay".into(),
        ));
        let mut d = base;
        d["note"] = json!("not replayed: ext4 needs_recovery flag is clear, the kernel wipes the journal");
        return Recovered { report: mk(false, false, d, findings), outcome: None, fc: None, refused: None };
    }
    let out = recover::recover_with(j, data);
    for p in &out.problems {
        findings.push(finding(
            if p.notice { Severity::Info } else { Severity::Error },
            "jbd2 journal block",
            Some(p.journal_block),
            format!("{:?} pass, transaction {}: {}", p.pass, p.sequence, p.message),
        ));
    }
    if let Some((pass, e)) = out.error {
        findings.push(finding(
            Severity::Error,
            "jbd2 recovery",
            None,
            format!(
                "the kernel's recovery fails in the {pass:?} pass with {}: the mount fails; the view is the media as it is",
                e.name()
            ),
        ));
    }
    let fc = fc_area(j, out.end_transaction, info.inode_size);
    let refused = kernel_refusal(&out, fc.as_ref());
    let mut d = base;
    let replayed_any = out.replay_ran();
    d["transactions"] = json!({
        "first": out.start_transaction,
        "last": out.end_transaction.wrapping_sub(1),
        "count": out.end_transaction.wrapping_sub(out.start_transaction),
        "end_transaction": out.end_transaction,
    });
    d["blocks_replayed"] = json!(out.blocks_replayed);
    d["replay_writes"] = json!(out.nr_replays);
    d["revokes"] = json!(out.nr_revokes);
    d["revoke_hits"] = json!(out.nr_revoke_hits);
    d["failed_commit"] = json!(out.failed_commit);
    d["error"] = json!(out.error.map(|(p, e)| format!("{p:?}: {}", e.name())));
    d["replayed"] = json!(replayed_any);
    d["data_checksums_verified"] = json!(out.data_verified);
    d["head_in_flight"] = json!(head::write_in_flight(j, &out, fc.as_ref()));
    if !out.data_verified {
        d["data_checksums_note"] = json!(
            "logged blocks were not read: replay counts assume every tag checksum matches (daxray journal --verify-data verifies them)"
        );
    }
    if let Some(fc) = &fc {
        d["fast_commit"] = json!({
            "tags": fc.tags.len(),
            "valid_tags": fc.valid_tags,
            "expected_tid": fc.expected_tid,
            "scan_end": fc.scan_end,
            "replay_applied": false,
        });
        if let Some(e) = &fc.scan_error {
            findings.push(finding(
                Severity::Error,
                "jbd2 fast-commit area",
                Some(fc.first_block),
                format!(
                    "the kernel's fast-commit scan fails with {e}: its journal recovery, and the mount, fail; the view is the media as it is"
                ),
            ));
        }
    }
    if let Some(why) = &refused {
        if out.error.is_none() && fc.as_ref().is_none_or(|f| f.scan_error.is_none()) {
            findings.push(finding(
                Severity::Error,
                "jbd2 recovery",
                None,
                format!("{why}: the mount fails; the view is the media as it is"),
            ));
        }
        d["refused"] = json!([why]);
        d["note"] = json!(
            "the kernel would not mount this file system: its journal recovery fails; the view is the media as it is"
        );
        return Recovered { report: mk(true, false, d, findings), outcome: Some(out), fc, refused };
    }
    let applied = replayed_any && out.blocks_replayed > 0;
    Recovered { report: mk(true, applied, d, findings), outcome: Some(out), fc, refused }
}

/// Why the kernel's mount fails after its journal recovery of `out` (and the fast-commit scan
/// of `fc`), if it does, in the kernel's order: an error of the jbd2 scan pass; an error of the
/// fast-commit scan, which `fc_do_one_pass` runs at the end of the scan pass
/// (`ext4_fc_replay_scan`); an error of the revoke or replay pass (`jbd2_journal_recover`
/// returns it); a transaction whose commit failed its checksum (`j_failed_commit`, which
/// `jbd2_journal_load` turns into EFSCORRUPTED). Each ends in ext4's "error loading journal".
fn kernel_refusal(out: &recover::Outcome, fc: Option<&fastcommit::FastCommitArea>) -> Option<String> {
    let pass_error = |pass: recover::Pass, e: recover::KernelError| {
        let why: Vec<String> = out
            .problems
            .iter()
            .filter(|p| p.pass == pass && !p.notice)
            .take(4)
            .map(|p| format!("{} [journal block {}]", p.message, p.journal_block))
            .collect();
        format!(
            "JBD2: journal recovery failed: the {pass:?} pass fails with {} ({})",
            e.name(),
            if why.is_empty() { "no detail".into() } else { why.join("; ") }
        )
    };
    if let Some((pass @ recover::Pass::Scan, e)) = out.error {
        return Some(pass_error(pass, e));
    }
    if let Some(f) = fc
        && let Some(e) = &f.scan_error
    {
        return Some(format!(
            "JBD2: journal recovery failed: the fast-commit scan fails with {e} [journal block {}]",
            f.tags.last().map_or(f.first_block, |t| t.journal_block)
        ));
    }
    if let Some((pass, e)) = out.error {
        return Some(pass_error(pass, e));
    }
    out.failed_commit.map(|t| {
        let at = out
            .problems
            .iter()
            .rev()
            .find(|p| p.sequence == t && p.pass == recover::Pass::Scan && !p.notice)
            .map(|p| format!(" [journal block {}]", p.journal_block))
            .unwrap_or_default();
        format!(
            "JBD2: journal transaction {t} is corrupt: its commit block fails its checksum (EFSCORRUPTED){at}"
        )
    })
}

/// Everything recovery produced: the view, the report, and the kernel-level outcome.
pub struct RecoveryRun {
    /// The view to read through (an overlay, or the input itself).
    pub view: Arc<dyn BlockSource>,
    /// The report.
    pub report: RecoveryReport,
    /// The replayed blocks: fs block and the copy the view holds, sorted by fs block.
    pub writes: Vec<(u64, recover::Write)>,
    /// The kernel's error, if its recovery would fail.
    pub error: Option<(recover::Pass, recover::KernelError)>,
    /// The transaction whose commit failed its checksum, if any.
    pub failed_commit: Option<u32>,
    /// First transaction of the live log (s_sequence), when recovery ran.
    pub start_transaction: Option<u32>,
    /// First transaction not replayed, when recovery ran.
    pub end_transaction: Option<u32>,
    /// The fast-commit area as the kernel's scan pass sees it (valid tags marked), when the
    /// journal has fast commits and recovery ran. The replay itself needs the file-system model:
    /// see [`apply_fast_commit`].
    pub fast_commit: Option<fastcommit::FastCommitArea>,
    /// From [`recover_full_background`]: tag checksums still being verified; the view is the
    /// kernel's only once they are confirmed good.
    pub pending: Option<PendingChecks>,
    /// Set when the kernel's mount fails after its journal recovery, with the kernel's reason
    /// (also in the report's `details.refused`). `view` and `writes` then still hold what the
    /// jbd2 passes write, but there is no recovered file system: readers show the media as it is.
    pub refused: Option<String>,
}

impl RecoveryRun {
    /// fs block -> (transaction, journal block) of the copy the view holds, for replayed blocks.
    pub fn replayed(&self) -> std::collections::BTreeMap<u64, (u32, u64)> {
        self.writes.iter().map(|(blk, w)| (*blk, (w.sequence, w.journal_block))).collect()
    }
}

/// Recover in memory and return everything about it (see [`recover_view`]).
pub fn recover_full(fs: Arc<dyn BlockSource>, external: Option<&Path>) -> Result<RecoveryRun> {
    recover_full_with(fs, external, recover::DataCheck::Verify)
}

/// [`recover_full`], except that the logged copies' tag checksums may still be being verified
/// when it returns ([`RecoveryRun::pending`]; see [`recover::recover_background`]): read the
/// view meanwhile, then confirm; when that fails, recover again with [`recover_full`].
pub fn recover_full_background(fs: Arc<dyn BlockSource>, external: Option<&Path>) -> Result<RecoveryRun> {
    recover_full_with(fs, external, recover::DataCheck::Background)
}

fn recover_full_with(
    fs: Arc<dyn BlockSource>,
    external: Option<&Path>,
    data: recover::DataCheck,
) -> Result<RecoveryRun> {
    let run = |view: Arc<dyn BlockSource>, report: RecoveryReport| RecoveryRun {
        view,
        report,
        writes: vec![],
        error: None,
        failed_commit: None,
        start_transaction: None,
        end_transaction: None,
        fast_commit: None,
        pending: None,
        refused: None,
    };
    let info = fs_journal_info(&*fs)?;
    if info.journal_dev {
        return Err(Error::Unsupported(
            "this image is an external journal device, not a file system: use `daxray journal` on it".into(),
        ));
    }
    if !info.has_journal {
        return Ok(run(fs, RecoveryReport::none("no journal (has_journal is off)")));
    }
    let (j, info) = match open_journal(&fs, external) {
        Ok(Some(x)) => x,
        Ok(None) => return Ok(run(fs, RecoveryReport::none("no journal"))),
        Err(e) => {
            let mut r = RecoveryReport::none("journal could not be opened");
            r.kind = "jbd2";
            r.needed = info.needs_recovery;
            r.details = json!({ "error": e.to_string(), "fs_needs_recovery_flag": info.needs_recovery });
            r.findings.push(finding(
                Severity::Error,
                "jbd2 journal",
                None,
                format!("cannot open the journal: {e}"),
            ));
            return Ok(run(fs, r));
        }
    };
    let rec = run_recovery(&j, &info, data);
    let Some(mut out) = rec.outcome else { return Ok(run(fs, rec.report)) };
    let mut result = run(fs.clone(), rec.report);
    result.pending = out.pending.take();
    result.refused = rec.refused;
    result.fast_commit = rec.fc.filter(|fc| result.refused.is_none() && fc_replays(&out, fc));
    result.error = out.error;
    result.failed_commit = out.failed_commit;
    result.start_transaction = Some(out.start_transaction);
    result.end_transaction = Some(out.end_transaction);
    if !out.replay_ran() || out.writes.is_empty() {
        return Ok(result);
    }
    let mut ov = Overlay::new(fs, info.block_size, "jbd2 recovery overlay")?;
    let bs = u64::from(j.bs);
    // Zero-copy: the overlay reads the journal's copy in place; only an escaped block (its
    // magic zeroed in the log) needs bytes of its own. `out.writes` is sorted by fs block.
    let refs: Vec<(u64, u64)> = out
        .writes
        .iter()
        .filter(|(_, w)| !w.escaped)
        .map(|(blk, w)| (*blk, w.journal_block.saturating_mul(bs)))
        .collect();
    let mut rejected: std::collections::HashMap<u64, Error> =
        ov.put_refs_sorted(&j.src, refs).into_iter().collect();
    for (blk, w) in out.writes.iter().filter(|(_, w)| w.escaped) {
        let put = match j.read(w.journal_block) {
            Some(b) => {
                let mut data = b.into_owned().into_boxed_slice();
                if let Some(m) = data.get_mut(..4) {
                    m.copy_from_slice(&block::JBD2_MAGIC_BYTES);
                }
                ov.put(*blk, data)
            }
            None => Err(Error::OutOfRange {
                what: "jbd2 logged block",
                offset: w.journal_block.saturating_mul(bs),
                end: u64::MAX,
                len: j.src.len(),
            }),
        };
        if let Err(e) = put {
            rejected.insert(*blk, e);
        }
    }
    let mut writes = out.writes;
    // No lookup at all in the usual case: nothing rejected.
    if !rejected.is_empty() {
        writes.retain(|(blk, w)| match rejected.remove(blk) {
            None => true,
            Some(e) => {
                result.report.findings.push(finding(
                    Severity::Error,
                    "jbd2 replay",
                    Some(w.journal_block),
                    format!("transaction {} logs fs block {blk} outside the file system: {e}", w.sequence),
                ));
                false
            }
        });
    }
    result.writes = writes;
    result.view = Arc::new(ov);
    Ok(result)
}

/// Replay the valid fast-commit tags of `fc` over `ext4` (the model of the jbd2-recovered view),
/// as the kernel does at mount after the jbd2 passes, and say what it did in `report`
/// (`details.fast_commit.replay`, findings). Returns the model with the replay layered over it.
pub fn apply_fast_commit(
    ext4: crate::ext4::Ext4,
    fc: &fastcommit::FastCommitArea,
    report: &mut RecoveryReport,
) -> crate::ext4::Ext4 {
    let (patch, rep) = crate::ext4::fcreplay::replay(&ext4, &fc.tags);
    let applied: usize = rep.applied.values().sum();
    let counts = rep.applied.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", ");
    report.findings.push(finding(
        Severity::Info,
        "jbd2 fast-commit area",
        Some(fc.first_block),
        format!(
            "fast commits for transaction {} replayed: {applied} of {} tags changed the view ({}), {} inodes touched",
            fc.expected_tid,
            fc.valid_tags,
            if counts.is_empty() { "none".into() } else { counts },
            rep.inodes_touched.len()
        ),
    ));
    report.findings.push(finding(
        Severity::Info,
        "jbd2 fast-commit area",
        Some(fc.first_block),
        format!("fast-commit replay: not emulated: {}", rep.not_emulated.join("; ")),
    ));
    if let Some(e) = &rep.error {
        report.findings.push(finding(
            Severity::Error,
            "jbd2 fast-commit area",
            Some(fc.first_block),
            format!("the kernel's fast-commit replay fails at {e}; the mount fails; the view is the media as it is"),
        ));
    }
    for p in rep.problems.iter().take(32) {
        report.findings.push(finding(Severity::Error, "jbd2 fast-commit replay", None, p.clone()));
    }
    if let Some(obj) = report.details.get_mut("fast_commit").and_then(|v| v.as_object_mut()) {
        obj.insert("replay_applied".into(), json!(true));
        obj.insert("replay".into(), json!(rep));
    }
    report.applied = true;
    ext4.with_fast_commit(patch)
}

/// Recover the jbd2 journal of the file system in `fs` in memory; returns the view to read through
/// (an overlay, or `fs` itself when there is nothing to replay) and what was done.
pub fn recover_view(
    fs: Arc<dyn BlockSource>,
    external: Option<&Path>,
) -> Result<(Arc<dyn BlockSource>, RecoveryReport)> {
    let r = recover_full(fs.clone(), external)?;
    if r.refused.is_some() {
        return Ok((fs, r.report));
    }
    Ok((r.view, r.report))
}

/// List the transactions (for `daxray journal`); `all` includes checkpointed ones. Every
/// checksum is verified, the tag checksum of every logged block included.
pub fn listing(
    fs: Arc<dyn BlockSource>,
    external: Option<&Path>,
    all: bool,
) -> Result<crate::report::Listing> {
    listing_with(fs, external, all, true)
}

/// A journal listing, kept structured so that it can be written out (text or JSON) without
/// building a JSON tree of every logged block first.
pub struct JournalListing {
    j: Journal,
    txs: Vec<list::Transaction>,
    fc: Option<fastcommit::FastCommitArea>,
    rec: Option<RecoveryReport>,
    findings: Vec<Finding>,
}

/// The top-level JSON document of a listing. Its fields, and those of the types inside it, are
/// in alphabetical order: serialized directly they give the same bytes as the `serde_json::Value`
/// of [`JournalListing::json_value`] (whose maps sort their keys).
#[derive(serde::Serialize)]
struct ListingDoc<'a> {
    fast_commit: serde_json::Value,
    findings: &'a [Finding],
    geometry: serde_json::Value,
    journal: &'a str,
    kind: &'static str,
    recovery: serde_json::Value,
    refused: &'a [String],
    superblock: serde_json::Value,
    transactions: &'a [list::Transaction],
}

impl JournalListing {
    fn doc(&self) -> ListingDoc<'_> {
        let j = &self.j;
        ListingDoc {
            fast_commit: json!(self.fc),
            findings: &self.findings,
            geometry: json!({"first": j.first, "last": j.last, "total_len": j.total_len, "fc_first": j.fc_first, "fc_last": j.fc_last, "tag_bytes": j.sb.tag_bytes()}),
            journal: &j.location,
            kind: "jbd2",
            recovery: json!(self.rec),
            refused: &j.refusal,
            superblock: json!(&j.sb),
            transactions: &self.txs,
        }
    }

    /// The JSON document (`{"kind":"jbd2",...}`) as a tree.
    pub fn json_value(&self) -> serde_json::Value {
        json!(self.doc())
    }

    /// Write the JSON document, pretty-printed, to `w`.
    pub fn write_json(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *w, &self.doc())?;
        w.write_all(b"\n")
    }

    /// Write the text form to `w`.
    pub fn write_text(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        render_text(w, &self.j, &self.txs, self.fc.as_ref(), self.rec.as_ref())
    }

    /// Problems found (bad checksums, refusals...).
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }
}

/// List the transactions; `all` includes checkpointed ones. Superblock, descriptor, revoke and
/// commit checksums are always verified; the tag checksums of the logged blocks (csum v2/v3),
/// which need every logged block read, only when `verify_data` (otherwise their `csum_ok` is
/// None, and recovery's replay pass is only counted). Recovery is never applied: a listing
/// needs only the kernel's scan and revoke passes and the replay pass's bookkeeping.
pub fn listing_with(
    fs: Arc<dyn BlockSource>,
    external: Option<&Path>,
    all: bool,
    verify_data: bool,
) -> Result<crate::report::Listing> {
    let l = list_journal(fs, external, all, verify_data)?;
    let mut text = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = l.write_text(&mut text);
    Ok(crate::report::Listing {
        json: l.json_value(),
        text: String::from_utf8_lossy(&text).into_owned(),
        findings: l.findings,
    })
}

/// The listing of [`listing_with`], structured (see [`JournalListing`]).
pub fn list_journal(
    fs: Arc<dyn BlockSource>,
    external: Option<&Path>,
    all: bool,
    verify_data: bool,
) -> Result<JournalListing> {
    let Some((j, info)) = open_journal(&fs, external)? else {
        return Err(Error::NotFound("the file system has no journal (has_journal is off)".into()));
    };
    let check = if verify_data { recover::DataCheck::Verify } else { recover::DataCheck::Skip };
    let rec = if info.journal_dev { None } else { Some(run_recovery(&j, &info, check)) };
    let known = rec.as_ref().and_then(|r| r.outcome.as_ref()).map(|o| &o.tag_checks);
    let tags = if verify_data { list::DataTags::Verify(known) } else { list::DataTags::Skip };
    let (mut live, end_pos) = list::live_with(&j, tags);
    if let Some(out) = rec.as_ref().and_then(|r| r.outcome.as_ref()) {
        let ok = out.replay_ran();
        for t in &mut live {
            let in_range = (t.sequence.wrapping_sub(out.start_transaction) as i32) >= 0
                && (out.end_transaction.wrapping_sub(t.sequence) as i32) > 0;
            t.replayed = Some(ok && in_range);
        }
    } else {
        for t in &mut live {
            t.replayed = Some(false);
        }
    }
    let mut txs = vec![];
    if all {
        let dirty = j.sb.start != 0;
        let stop = if dirty {
            u64::from(j.sb.start)
        } else if j.sb.head != 0 {
            u64::from(j.sb.head)
        } else {
            j.first
        };
        let from = if dirty { end_pos } else { stop };
        txs.extend(list::old_with(&j, from, stop, tags));
    }
    txs.extend(live);
    let expected =
        rec.as_ref().and_then(|r| r.outcome.as_ref()).map(|o| o.end_transaction).unwrap_or(j.sb.sequence);
    let fc = rec.as_ref().and_then(|r| r.fc.clone()).or_else(|| fc_area(&j, expected, info.inode_size));
    let mut findings = rec.as_ref().map(|r| r.report.findings.clone()).unwrap_or_default();
    for t in &txs {
        for b in &t.blocks {
            if b.csum_ok == Some(false) && t.live {
                findings.push(finding(
                    Severity::Error,
                    "jbd2 logged block",
                    Some(b.journal_block),
                    format!(
                        "transaction {}: copy of fs block {} fails its tag checksum",
                        t.sequence, b.fs_block
                    ),
                ));
            }
        }
    }
    // With valid fast commits, the report says what replaying them does to the model. That
    // needs the recovered view, so only then is recovery run in full.
    let mut rec_report = rec.as_ref().map(|r| r.report.clone());
    let replays_fc = rec
        .as_ref()
        .and_then(|r| r.outcome.as_ref())
        .is_some_and(|o| fc.as_ref().is_some_and(|f| fc_replays(o, f)));
    if replays_fc
        && let Some(rep) = rec_report.as_mut()
        && let Ok(run) = recover_full(fs.clone(), external)
        && let Some(fc) = &run.fast_commit
        && let Ok(e) = crate::ext4::Ext4::open(run.view.clone())
    {
        let mut r = run.report.clone();
        let _ = apply_fast_commit(e, fc, &mut r);
        findings.extend(r.findings.iter().filter(|f| !rep.findings.contains(f)).cloned());
        *rep = r;
    }
    Ok(JournalListing { j, txs, fc, rec: rec_report, findings })
}

/// Append `v` in decimal, as `{}` prints it (itoa: no formatter machinery per number).
fn push_dec(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Append `v` in hexadecimal with a 0x prefix, as `{:#x}` prints it.
fn push_hex(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[(v & 15) as usize];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(b"0x");
    out.extend_from_slice(&buf[i..]);
}

fn ok_str(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "ok",
        Some(false) => "BAD",
        None => "-",
    }
}

fn render_text(
    w: &mut dyn std::io::Write,
    j: &Journal,
    txs: &[list::Transaction],
    fc: Option<&fastcommit::FastCommitArea>,
    rec: Option<&RecoveryReport>,
) -> std::io::Result<()> {
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
    for t in txs {
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
            push_dec(&mut line, b.fs_block);
            line.extend_from_slice(b" logged at journal block ");
            push_dec(&mut line, b.journal_block);
            line.extend_from_slice(b" (flags ");
            push_hex(&mut line, u64::from(b.flags));
            line.extend_from_slice(b") csum ");
            line.extend_from_slice(ok_str(b.csum_ok).as_bytes());
            line.push(b'\n');
        }
        for r in &t.revokes {
            line.extend_from_slice(b"  Revoke FS block ");
            push_dec(&mut line, *r);
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
    if let Some(fc) = fc {
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
    }
    if let Some(r) = rec {
        writeln!(w, "Recovery: needed {}, applied {}: {}", r.needed, r.applied, r.details)?;
    }
    Ok(())
}
