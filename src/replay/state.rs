//! One crash state: the paused media checked in place, and (sometimes) by the kernel's own
//! recovery on a copy; failing states kept for `daxray check`.

use crate::check::{Claim, Status, Verdict, check_claims, mark_lost_by_recovery, write_claims};
use crate::error::{Error, Result};
use crate::image;
use crate::open::{OpenOptions, open_source_then};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom};
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
/// the fsdax window, recover the journal/log in memory, check every claim.
pub fn check_in_place(path: &Path, claims: &[Claim]) -> Result<InPlace> {
    let t = Instant::now();
    let img = image::open(path, None)?;
    let opts = OpenOptions::default();
    let (model, mut verdicts) = open_source_then(img.fs_bytes.clone(), img.placement.fs, &opts, |m| {
        check_claims(&*m.fs, &m.recovery, claims)
    })?;
    mark_lost_by_recovery(&mut verdicts, &model.recovery, img.fs_bytes.clone(), img.placement.fs, &opts);
    Ok(InPlace { verdicts, ms: t.elapsed().as_secs_f64() * 1e3, dataoff: img.placement.fs_offset })
}

/// What the kernel's recovery says about each claim.
#[derive(Debug, Clone, Serialize)]
pub struct KernelVerdicts {
    /// Per claim: the file exists and holds the claimed bytes at the offset after the kernel
    /// mounted (and so recovered) a copy.
    pub durable: Vec<bool>,
    /// Copy + mount + read + unmount, in milliseconds.
    pub ms: f64,
}

/// Read one claim back through a mounted file system: true when the bytes are there.
fn read_back(root: &Path, c: &Claim) -> bool {
    let p = root.join(c.path.trim_start_matches('/'));
    let Ok(mut f) = std::fs::File::open(&p) else {
        return false;
    };
    let Ok(len) = usize::try_from(c.len) else {
        return false;
    };
    let mut buf = vec![0u8; len];
    if f.seek(SeekFrom::Start(c.offset)).is_err() || f.read_exact(&mut buf).is_err() {
        return false;
    }
    hex::encode(Sha256::digest(&buf)) == c.sha256
}

/// The kernel oracle: copy `image` (sparse) into `scratch`, loop-mount the copy at `dataoff`
/// (the kernel replays the journal/log), read every claim back, unmount, delete the copy.
pub fn kernel_check(
    image: &Path,
    dataoff: u64,
    fstype: &str,
    claims: &[Claim],
    scratch: &Path,
) -> Result<KernelVerdicts> {
    let t = Instant::now();
    let copy = scratch.join("oracle-copy.img");
    crate::oracle::refuse_in_use(&copy, "the oracle's copy")?;
    super::sparse::copy_compact(image, &copy)?;
    let r = (|| {
        let m = crate::oracle::Mount::new(&copy, dataoff, fstype, "")?;
        let durable = claims.iter().map(|c| read_back(m.path(), c)).collect();
        m.unmount()?;
        Ok::<_, Error>(durable)
    })();
    let _ = std::fs::remove_file(&copy);
    Ok(KernelVerdicts { durable: r?, ms: t.elapsed().as_secs_f64() * 1e3 })
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
}

/// Keep a state: a compact sparse copy ([`super::sparse::copy_compact`]) of the image as `image.img`, `claims.jsonl`, `verdicts.json`.
pub fn keep_state(image_path: &Path, dir: &Path, claims: &[Claim], info: &KeptState<'_>) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for name in ["image.img", "claims.jsonl", "verdicts.json"] {
        crate::oracle::refuse_in_use(&dir.join(name), "a kept state's file")?;
    }
    super::sparse::copy_compact(image_path, &dir.join("image.img"))?;
    write_claims(&dir.join("claims.jsonl"), claims)?;
    let j = serde_json::to_string_pretty(info).map_err(|e| Error::External(format!("JSON: {e}")))?;
    let p = dir.join("verdicts.json");
    std::fs::write(&p, j + "\n").map_err(|e| Error::io(&p, e))?;
    Ok(dir.to_path_buf())
}
