//! The whole read pipeline in one call: image → window → recovery overlay → file-system model.
//! Every reader of an image opens it here.
//!
//! - [`detect`]: the image opened, the file system in its window named, the mount-table probe.
//! - [`ext4`]: the jbd2 journal located in ext4, its recovery, fast-commit replay and the
//!   mount's orphan cleanup, then the ext4 model.
//! - [`xfs`]: the XFS log's recovery, then the XFS model.
//! - [`unrecovered`]: what recovery would do under `--raw`, and why it cannot be done on an
//!   image that ends before its journal or log.

pub mod detect;
pub mod ext4;
pub mod unrecovered;
pub mod xfs;

pub use crate::image::Access;
pub use detect::{Image, Placement, detect_fs, open_image};

use crate::error::{Finding, Result};
use crate::fs::{FileSystem, FsKind};
use crate::image::BlockSource;
pub use crate::report::RecoveryReport;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How to open an image.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// File-system byte offset, overriding namespace detection.
    pub offset: Option<u64>,
    /// Show the media as it is: no journal or log recovery.
    pub raw: bool,
    /// External ext4 journal device.
    pub journal_dev: Option<PathBuf>,
    /// External XFS log device.
    pub log_dev: Option<PathBuf>,
    /// XFS: find the log head reading exact 512-byte blocks, not whole log sectors as the
    /// kernel does (keeps records the kernel drops at a torn log sector).
    pub exact_log_head: bool,
    /// XFS: whose log head search to follow where kernels differ.
    pub log_rules: crate::xlog::search::Rules,
    /// How the image's bytes are read.
    pub access: Access,
    /// Whether to look in the mount table for the image mounted read-write.
    pub in_use: InUse,
}

/// Whether opening an image probes the mount table ([`crate::image::mounted_read_write`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InUse {
    /// Probe, and report an image mounted read-write (the kernel may change it while it is read).
    #[default]
    Warn,
    /// Do not probe: the caller owns the image (the replay engine's paused media).
    Ignore,
}

impl OpenOptions {
    /// The XFS log options of these.
    pub fn log_options(&self) -> crate::xlog::LogOptions {
        crate::xlog::LogOptions {
            log_dev: self.log_dev.clone(),
            exact_head: self.exact_log_head,
            rules: self.log_rules,
        }
    }
}

/// An opened, possibly recovered, file system.
pub struct Opened {
    /// The image, where the file system sits and which it is.
    pub image: Image,
    /// The bytes the model reads: the window itself (raw) or a recovery overlay over it.
    pub view: Arc<dyn BlockSource>,
    /// What recovery did.
    pub recovery: RecoveryReport,
    /// The model.
    pub fs: Box<dyn FileSystem>,
}

impl Opened {
    /// Where the file system sits.
    pub fn placement(&self) -> &Placement {
        &self.image.placement
    }

    /// Findings of recovery and of the model so far.
    pub fn findings(&self) -> Vec<Finding> {
        let mut v = self.recovery.findings.clone();
        v.extend(self.fs.findings());
        v
    }
}

/// A file-system model over a (possibly recovered) view.
pub struct Model {
    /// The bytes the model reads.
    pub view: Arc<dyn BlockSource>,
    /// What recovery did.
    pub recovery: RecoveryReport,
    /// The model.
    pub fs: Box<dyn FileSystem>,
}

/// Open a file system from raw bytes already windowed (the replay engine's paused media, tests).
pub fn open_source(raw: Arc<dyn BlockSource>, kind: FsKind, opts: &OpenOptions) -> Result<Model> {
    if opts.raw {
        let fs: Box<dyn FileSystem> = match kind {
            FsKind::Ext4 => Box::new(crate::ext4::Ext4::open(raw.clone())?),
            FsKind::Xfs => Box::new(crate::xfs::Xfs::open(raw.clone())?),
        };
        let recovery = unrecovered::raw_report(&raw, kind, opts);
        return Ok(Model { view: raw, recovery, fs });
    }
    let mut m = match kind {
        FsKind::Ext4 => ext4::model(raw.clone(), opts)?,
        FsKind::Xfs => xfs::model(raw.clone(), opts)?,
    };
    unrecovered::explain(&raw, kind, &mut m.recovery);
    Ok(m)
}

/// [`open_source`], then `f` over the model; the model and what `f` returned.
///
/// The same result, sooner: on ext4, `f` runs while the journal's tag checksums (crc32c of
/// every logged copy, most of recovery's work) are still being verified by other threads. If
/// one turns out bad, the kernel would not replay that copy and its recovery would fail, so
/// the model is opened again with every checksum verified first and `f` runs again.
pub fn open_source_then<T>(
    raw: Arc<dyn BlockSource>,
    kind: FsKind,
    opts: &OpenOptions,
    mut f: impl FnMut(&Model) -> T,
) -> Result<(Model, T)> {
    if kind == FsKind::Ext4 && !opts.raw {
        let mut run =
            crate::ext4::journal::recover_full_background(raw.clone(), opts.journal_dev.as_deref())?;
        let pending = run.pending.take();
        let first = ext4::model_over(raw.clone(), run).map(|mut m| {
            unrecovered::explain(&raw, kind, &mut m.recovery);
            let out = f(&m);
            (m, out)
        });
        // Good checksums: the kernel's view, and so the kernel's outcome (an error included).
        if pending.is_none_or(|p| p.confirm()) {
            return first;
        }
    }
    let model = open_source(raw, kind, opts)?;
    let out = f(&model);
    Ok((model, out))
}

/// Open `path`: find the file system, recover it in memory unless `raw`, build the model.
///
/// An image that is mounted read-write (a block device, or a file behind a loop device) is read
/// all the same, with an info finding (unless `in_use` is [`InUse::Ignore`]): the kernel may
/// change it while it is read.
pub fn open(path: &Path, opts: &OpenOptions) -> Result<Opened> {
    open_then(path, opts, |_| ()).map(|(o, ())| o)
}

/// [`open`], then `f` over the model, as [`open_source_then`] does.
pub fn open_then<T>(path: &Path, opts: &OpenOptions, f: impl FnMut(&Model) -> T) -> Result<(Opened, T)> {
    let image = open_image(path, opts)?;
    let (Model { view, mut recovery, fs }, out) =
        open_source_then(image.fs_bytes.clone(), image.placement.fs, opts, f)?;
    if let Some(at) = &image.mounted_read_write {
        recovery.findings.push(Finding::new(
            crate::error::Severity::Info,
            "image",
            None,
            None,
            format!(
                "mounted read-write at {at}: the view may be inconsistent (the kernel may be changing it)"
            ),
        ));
    }
    Ok((Opened { image, view, recovery, fs }, out))
}
