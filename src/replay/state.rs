//! One crash state: the paused media checked in place, and (sometimes) by the kernel's own
//! recovery on a copy; failing states kept for `daxray check`.

use crate::check::{Claim, Status, Verdict, check_claims, mark_lost_by_recovery, write_claims};
use crate::error::{Error, Result};
use crate::manifest::{self, Listed, ManifestEntry};
use crate::open::{InUse, OpenOptions, open_then};
use crate::oracle::{KernelVerdicts, kernel_check};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The in-place check of one state.
pub struct InPlace {
    /// Each claim's verdict.
    pub verdicts: Vec<Verdict>,
    /// Time to map, recover in memory and check, in milliseconds.
    pub ms: f64,
    /// Where the file system starts in the image, as found from the namespace header.
    pub dataoff: u64,
    /// With the whole view: daxray's recovered manifest (every regular file with its sha256, and
    /// the paths it could not read), or why it could not be listed at all.
    pub manifest: Option<std::result::Result<Listed, String>>,
    /// A journal or log write in flight at the head (torn or begun), and what shows it.
    pub in_flight: Option<String>,
    /// Why the kernel's recovery fails and the mount with it, as daxray reads the media.
    pub refused: Option<String>,
}

impl InPlace {
    /// Claims lost in this state.
    pub fn lost(&self) -> usize {
        self.verdicts
            .iter()
            .filter(|v| {
                v.verdict.is_lost() && !matches!(v.verdict, Status::Unreadable | Status::LostByRecovery)
            })
            .count()
    }

    /// Claims lost only because the kernel's recovery drops a record at a torn log sector.
    pub fn lost_by_recovery(&self) -> usize {
        self.verdicts.iter().filter(|v| v.verdict == Status::LostByRecovery).count()
    }

    /// The first claim daxray could not read (a model failure, not a verdict), if any.
    pub fn unreadable(&self) -> Option<&Verdict> {
        self.verdicts.iter().find(|v| v.verdict == Status::Unreadable)
    }
}

/// Check `claims` on the image at `path` as it is now (the paused media): map it read-only, find
/// the fsdax window, recover the journal/log in memory, check every claim; with `whole`, also
/// list every regular file of the recovered view with its sha256 ([`manifest::build`]).
pub fn check_in_place(path: &Path, claims: &[Claim], whole: bool) -> Result<InPlace> {
    let t = Instant::now();
    // The engine owns the paused media: no mount-table probe.
    let opts = OpenOptions { in_use: InUse::Ignore, ..OpenOptions::default() };
    let (opened, (mut verdicts, manifest)) = open_then(path, &opts, |m| {
        let v = check_claims(&*m.fs, &m.recovery, claims);
        let listed = whole.then(|| whole_manifest(&*m.fs));
        (v, listed)
    })?;
    let img = &opened.image;
    mark_lost_by_recovery(&mut verdicts, &opened.recovery, img.fs_bytes.clone(), img.placement.fs, &opts);
    let details = &opened.recovery.details;
    let in_flight = details.get("head_in_flight").and_then(|v| v.as_str()).map(String::from);
    let refused = match details.get("refused") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Array(a)) if !a.is_empty() => {
            Some(a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join("; "))
        }
        _ => None,
    };
    Ok(InPlace {
        verdicts,
        ms: t.elapsed().as_secs_f64() * 1e3,
        dataoff: img.placement.location.fs_offset,
        manifest,
        in_flight,
        refused,
    })
}

/// Every regular file of `fsys` with its sha256, and the paths that cannot be read.
fn whole_manifest(fsys: &dyn crate::fs::FileSystem) -> std::result::Result<Listed, String> {
    let (mut entries, errors) = manifest::build(fsys, true).map_err(|e| e.to_string())?;
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let mut errors: Vec<(String, String)> = errors.into_iter().map(|(p, e)| (p, e.to_string())).collect();
    errors.sort();
    Ok(Listed { entries, errors })
}

/// One line saying how daxray's verdict `v` and the kernel's (`durable`) differ on a claim.
pub fn disagreement_line(v: &Verdict, durable: bool) -> String {
    format!(
        "  {} @{}+{}: daxray says {} ({}), the kernel's recovery says {}\n",
        v.claim.path,
        v.claim.offset,
        v.claim.len,
        v.verdict,
        v.evidence.detail,
        if durable { "durable" } else { "lost" }
    )
}

/// Claims where daxray and the kernel disagree (indexes); claims daxray could not read are not
/// verdicts and are left out.
pub fn disagreements(ours: &[Verdict], kernel: &KernelVerdicts) -> Vec<usize> {
    ours.iter()
        .zip(&kernel.durable)
        .enumerate()
        .filter(|(_, (v, k))| v.verdict != Status::Unreadable && v.verdict.is_lost() == **k)
        .map(|(i, _)| i)
        .collect()
}

/// What a kept state's `verdicts.json` holds.
#[derive(Debug, Serialize)]
pub struct KeptState<'a> {
    /// Why it was kept: "violation", "disagreement", "sample".
    pub why: &'a str,
    /// File system (ext4, ext4-nojournal, xfs).
    pub fs: &'a str,
    /// MAP_SYNC run or control.
    pub sync: bool,
    /// Scenario.
    pub scenario: &'a str,
    /// State number within the run.
    pub state: u64,
    /// What the state followed: "store N" or "random stop after store N".
    pub at: String,
    /// Where the file system starts in `image.img`.
    pub dataoff: u64,
    /// The guest kernel release.
    pub kernel: &'a str,
    /// daxray's verdicts (empty when its check failed).
    pub daxray: &'a [Verdict],
    /// Why daxray's check failed, if it did.
    pub daxray_error: Option<&'a str>,
    /// The kernel's recovery: per claim, durable or not (when the oracle ran).
    pub kernel_durable: Option<&'a [bool]>,
    /// The kernel refused to mount the copy: what it said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_refused: Option<&'a str>,
    /// A journal or log write in flight at the head, and what shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<&'a str>,
    /// How the whole recovered views compared (files compared, or every difference).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whole_view: Option<&'a str>,
}

/// Keep a state: a compact sparse copy ([`super::sparse::copy_compact`]) of the image as `image.img`, `claims.jsonl`, `verdicts.json`.
pub fn keep_state(image_path: &Path, dir: &Path, claims: &[Claim], info: &KeptState<'_>) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for name in ["image.img", "claims.jsonl", "verdicts.json"] {
        crate::image::refuse_in_use(&dir.join(name), "a kept state's file")?;
    }
    super::sparse::copy_compact(image_path, &dir.join("image.img"))?;
    write_claims(&dir.join("claims.jsonl"), claims)?;
    let j = serde_json::to_string_pretty(info).map_err(|e| Error::External(format!("JSON: {e}")))?;
    let p = dir.join("verdicts.json");
    std::fs::write(&p, j + "\n").map_err(|e| Error::io(&p, e))?;
    Ok(dir.to_path_buf())
}

/// How daxray's whole recovered view compared with the kernel's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WholeView {
    /// Every file agrees (path, inode, size, merged extents, sha256): this many files.
    Agree(usize),
    /// The views differ: every difference, one per line.
    Differ(String),
    /// daxray could not read its view whole (a model failure, not a verdict).
    Unreadable(String),
}

impl WholeView {
    /// Compare daxray's manifest ([`InPlace::manifest`]) with the kernel's
    /// ([`KernelVerdicts::manifest`]); None when either side did not list one. A path one side
    /// cannot read must be one the other cannot read either.
    pub fn compare(
        ours: Option<&std::result::Result<Listed, String>>,
        kernel: Option<&Listed>,
    ) -> Option<WholeView> {
        let (o, k) = match (ours?, kernel?) {
            (Err(e), _) => return Some(WholeView::Unreadable(e.clone())),
            (Ok(o), k) => (o, k),
        };
        let mut diffs = vec![];
        let oe: std::collections::BTreeMap<&str, &str> =
            o.errors.iter().map(|(p, e)| (p.as_str(), e.as_str())).collect();
        let ke: std::collections::BTreeMap<&str, &str> =
            k.errors.iter().map(|(p, e)| (p.as_str(), e.as_str())).collect();
        for (p, e) in &ke {
            if !oe.contains_key(p) {
                diffs.push(format!("{p}: the kernel cannot read it ({e}); daxray can"));
            }
        }
        for (p, e) in &oe {
            if !ke.contains_key(p) {
                diffs.push(format!("{p}: daxray cannot read it ({e}); the kernel can"));
            }
        }
        // Files under a path either side could not read are not compared.
        let skip =
            |path: &str| oe.keys().chain(ke.keys()).any(|e| path == *e || path.starts_with(&format!("{e}/")));
        let a: Vec<ManifestEntry> = o.entries.iter().filter(|e| !skip(&e.path)).cloned().collect();
        let b: Vec<ManifestEntry> = k.entries.iter().filter(|e| !skip(&e.path)).cloned().collect();
        let compared = match crate::oracle::compare_manifests(&a, &b) {
            Ok(n) => n,
            // Nothing readable on either side, for the same reasons: the views agree.
            Err(_) if a.is_empty() && b.is_empty() && !ke.is_empty() && diffs.is_empty() => 0,
            Err(d) => {
                diffs.push(d);
                0
            }
        };
        Some(if diffs.is_empty() { WholeView::Agree(compared) } else { WholeView::Differ(diffs.join("\n")) })
    }

    /// One line (or the difference list) for reports and `verdicts.json`.
    pub fn describe(&self) -> String {
        match self {
            WholeView::Agree(n) => format!("the same {n} files, sizes, extents and sha256"),
            WholeView::Differ(d) => d.clone(),
            WholeView::Unreadable(e) => format!("daxray could not read its view whole: {e}"),
        }
    }
}

/// Keep the two whole views and the kernel's log lines beside a kept state:
/// `daxray-manifest.json`, `kernel-manifest.json`, `kernel-log.txt`.
pub fn keep_views(
    dir: &Path,
    ours: Option<&std::result::Result<Listed, String>>,
    kernel: Option<&Listed>,
    log: &[String],
) -> Result<()> {
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        crate::image::refuse_in_use(&p, "a kept state's file")?;
        std::fs::write(&p, text).map_err(|e| Error::io(&p, e))
    };
    let json = |e: &Listed| serde_json::to_string_pretty(e).unwrap_or_default() + "\n";
    if let Some(Ok(o)) = ours {
        write("daxray-manifest.json", json(o))?;
    }
    if let Some(k) = kernel {
        write("kernel-manifest.json", json(k))?;
    }
    if !log.is_empty() {
        write("kernel-log.txt", log.join("\n") + "\n")?;
    }
    Ok(())
}

/// A kept state checked again: daxray in place and the kernel's recovery of a copy, both whole.
pub struct Recheck {
    /// The in-place check.
    pub ours: InPlace,
    /// The kernel's.
    pub kernel: KernelVerdicts,
    /// Claims where the verdicts differ (indexes).
    pub disagree: Vec<usize>,
    /// The whole views.
    pub whole: Option<WholeView>,
    /// The claims.
    pub claims: Vec<Claim>,
}

impl Recheck {
    /// True when daxray and the kernel agree on every claim and on the whole view.
    pub fn agrees(&self) -> bool {
        match (&self.ours.refused, &self.kernel.refused) {
            (Some(_), Some(_)) => true,
            (None, None) => self.disagree.is_empty() && matches!(self.whole, Some(WholeView::Agree(_))),
            _ => false,
        }
    }
}

/// Check a kept state folder again (`image.img`, `claims.jsonl`, `verdicts.json` as
/// [`keep_state`] wrote them): daxray's in-place check and the kernel's recovery of a copy,
/// claims and whole views. `scratch` holds the kernel's copy while it is mounted.
pub fn recheck(dir: &Path, scratch: &Path) -> Result<Recheck> {
    let vp = dir.join("verdicts.json");
    let text = std::fs::read_to_string(&vp).map_err(|e| Error::io(&vp, e))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::Usage(format!("{}: not JSON: {e}", vp.display())))?;
    let fs = v
        .get("fs")
        .and_then(|f| f.as_str())
        .and_then(crate::agent::proto::FsChoice::parse)
        .ok_or_else(|| Error::Usage(format!("{}: no known \"fs\"", vp.display())))?;
    let dataoff = v
        .get("dataoff")
        .and_then(|d| d.as_u64())
        .ok_or_else(|| Error::Usage(format!("{}: no \"dataoff\"", vp.display())))?;
    let claims = crate::check::read_claims(&dir.join("claims.jsonl"))?;
    let image = dir.join("image.img");
    let ours = check_in_place(&image, &claims, true)?;
    let kernel = kernel_check(&image, dataoff, fs.mount_type(), &claims, scratch, true)?;
    let disagree = disagreements(&ours.verdicts, &kernel);
    let whole = WholeView::compare(ours.manifest.as_ref(), kernel.manifest.as_ref());
    Ok(Recheck { ours, kernel, disagree, whole, claims })
}
