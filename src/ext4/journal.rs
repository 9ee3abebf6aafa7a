//! ext4's journal: where it is (the journal inode, an external journal device, or the image
//! itself as a journal device), what the superblock says of it, and ext4's use of jbd2 to
//! recover and list it (the kernel's `ext4_load_journal` and `ext4_get_journal`), with the
//! fast-commit replay that runs inside that recovery.

use super::Ext4;
use super::fastcommit::{FastCommitArea, FcFormat};
use super::superblock::{
    COMPAT_FAST_COMMIT, COMPAT_HAS_JOURNAL, EXT4_MAGIC, INCOMPAT_64BIT, INCOMPAT_JOURNAL_DEV,
    INCOMPAT_RECOVER, RO_COMPAT_METADATA_CSUM, RawSuperblock, SB_OFFSET, SB_SIZE,
};
use crate::error::{Error, Result, Severity};
use crate::fs::FileSystem;
use crate::image::{BlockSource, FileView, MmapSource};
use crate::jbd2::{self, RecoveryRun, csum, finding, journal::Journal, listing::JournalListing, recover};
use crate::report::RecoveryReport;
use serde_json::json;
use std::mem::offset_of;
use std::path::Path;
use std::sync::Arc;
use zerocopy::FromBytes;

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
    /// With metadata_csum: the superblock's stored checksum and the one computed.
    pub checksum: Option<(u32, u32)>,
}

/// Read the ext4 superblock fields about the journal from byte 1024 of `src`. Only the magic
/// and the block size are checked: the journal of a superblock [`Superblock::read`](super::superblock::Superblock::read) refuses
/// (a journal device, an unknown feature) is still listed.
pub fn fs_journal_info(src: &dyn BlockSource) -> Result<FsJournalInfo> {
    let bytes = src.read_at(SB_OFFSET, SB_SIZE)?;
    let sb = RawSuperblock::ref_from_bytes(&bytes)
        .map_err(|_| Error::corrupt("ext4 superblock", 0, SB_OFFSET, "short superblock"))?;
    if sb.s_magic.get() != EXT4_MAGIC {
        return Err(Error::corrupt("ext4 superblock", 0, SB_OFFSET, "no ext4 magic 0xEF53 at byte 1080"));
    }
    let log = sb.s_log_block_size.get();
    if log > 6 {
        return Err(Error::corrupt(
            "ext4 superblock",
            0,
            SB_OFFSET + offset_of!(RawSuperblock, s_log_block_size) as u64,
            format!("s_log_block_size {log} gives a block size over 64 KiB"),
        ));
    }
    let compat = sb.s_feature_compat.get();
    let incompat = sb.s_feature_incompat.get();
    let lo = u64::from(sb.s_blocks_count_lo.get());
    // s_blocks_count_hi only counts with the 64bit feature.
    let hi = if incompat & INCOMPAT_64BIT != 0 { u64::from(sb.s_blocks_count_hi.get()) } else { 0 };
    let csum_at = offset_of!(RawSuperblock, s_checksum);
    let checksum = (sb.s_feature_ro_compat.get() & RO_COMPAT_METADATA_CSUM != 0)
        .then(|| (sb.s_checksum.get(), csum::raw(!0, &bytes[..csum_at])));
    Ok(FsJournalInfo {
        block_size: 1024 << log,
        blocks_count: lo | (hi << 32),
        has_journal: compat & COMPAT_HAS_JOURNAL != 0,
        needs_recovery: incompat & INCOMPAT_RECOVER != 0,
        journal_dev: incompat & INCOMPAT_JOURNAL_DEV != 0,
        fast_commit: compat & COMPAT_FAST_COMMIT != 0,
        journal_inum: sb.s_journal_inum.get(),
        journal_devnum: sb.s_journal_dev.get(),
        journal_uuid: sb.s_journal_uuid,
        uuid: sb.s_uuid,
        inode_size: if sb.s_rev_level.get() == 0 { 128 } else { sb.s_inode_size.get() },
        checksum,
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
    let ext4 = Ext4::open(fs.clone())?;
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
    if let Some((stored, calc)) = dinfo.checksum
        && stored != calc
    {
        j.refusal.push(format!(
            "external journal has corrupt superblock: ext4 superblock checksum {stored:#010x}, computed {calc:#010x}"
        ));
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

/// Recover in memory and return everything about it (see [`recover_view`]).
pub fn recover_full(
    fs: Arc<dyn BlockSource>,
    external: Option<&Path>,
) -> Result<RecoveryRun<FastCommitArea>> {
    recover_full_with(fs, external, recover::DataCheck::Verify)
}

/// [`recover_full`], except that the logged copies' tag checksums may still be being verified
/// when it returns ([`RecoveryRun::pending`]; see [`recover::recover_background`]): read the
/// view meanwhile, then confirm; when that fails, recover again with [`recover_full`].
pub fn recover_full_background(
    fs: Arc<dyn BlockSource>,
    external: Option<&Path>,
) -> Result<RecoveryRun<FastCommitArea>> {
    recover_full_with(fs, external, recover::DataCheck::Background)
}

fn recover_full_with(
    fs: Arc<dyn BlockSource>,
    external: Option<&Path>,
    data: recover::DataCheck,
) -> Result<RecoveryRun<FastCommitArea>> {
    let run = RecoveryRun::unchanged;
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
    let format = FcFormat { inode_size: info.inode_size };
    jbd2::recover_located(fs, info.block_size, &j, info.needs_recovery, &format, data)
}

/// Replay the valid fast-commit tags of `fc` over `ext4` (the model of the jbd2-recovered view),
/// as the kernel does at mount after the jbd2 passes, and say what it did in `report`
/// (`details.fast_commit.replay`, findings). Returns the model with the replay layered over it.
pub fn apply_fast_commit(
    ext4: Ext4,
    fc: &FastCommitArea,
    report: &mut RecoveryReport,
) -> (Ext4, Option<String>) {
    let (patch, rep) = super::fcreplay::replay(&ext4, &fc.tags);
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
    let failed = rep.error.clone();
    (ext4.with_fast_commit(patch), failed)
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

/// List the transactions of the journal (for `daxray journal`); `all` includes checkpointed
/// ones. Superblock, descriptor, revoke and commit checksums are always verified; the tag
/// checksums of the logged blocks (csum v2/v3), which need every logged block read, only when
/// `verify_data` (otherwise their `csum_ok` is None, and recovery's replay pass is only
/// counted). Recovery is never applied, but for a replay of valid fast commits, which the
/// report says the effect of.
pub fn list_journal(
    fs: Arc<dyn BlockSource>,
    external: Option<&Path>,
    all: bool,
    verify_data: bool,
) -> Result<JournalListing<FastCommitArea>> {
    let Some((j, info)) = open_journal(&fs, external)? else {
        return Err(Error::NotFound("the file system has no journal (has_journal is off)".into()));
    };
    let needs_recovery = if info.journal_dev { None } else { Some(info.needs_recovery) };
    let mut l =
        jbd2::listing::list(j, needs_recovery, &FcFormat { inode_size: info.inode_size }, all, verify_data);
    // With valid fast commits, the report says what replaying them does to the model. That
    // needs the recovered view, so only then is recovery run in full.
    if l.fast_commit_replays()
        && let Ok(run) = recover_full(fs.clone(), external)
        && let Some(fc) = &run.fast_commit
        && let Ok(e) = Ext4::open(run.view.clone())
    {
        let mut r = run.report.clone();
        let _ = apply_fast_commit(e, fc, &mut r);
        l.replace_recovery(r);
    }
    Ok(l)
}
