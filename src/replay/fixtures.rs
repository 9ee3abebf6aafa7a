//! Test fixtures from a campaign: kept crash states packed small ([`super::sparse`]) with their
//! claims and the kernel's verdicts, so `cargo test` re-checks real kernel-made states without
//! QEMU.
//!
//! A fixture folder holds `image.dxs.gz` (the packed image), `claims.jsonl` and `verdicts.json`
//! (daxray's verdicts at the time and, under `kernel_durable`, what the kernel's own recovery
//! read back from a mounted copy: the oracle). `manifest.json` beside them lists every fixture.

use super::CampaignReport;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Largest packed image kept as a fixture.
pub const MAX_FIXTURE_BYTES: u64 = 5 << 20;

/// One manifest entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FixtureEntry {
    /// Folder name under the fixtures folder.
    pub name: String,
    /// ext4, ext4-nojournal or xfs.
    pub fs: String,
    /// MAP_SYNC run (true) or control.
    pub sync: bool,
    /// Scenario.
    pub scenario: String,
    /// State number in its run, and what it followed.
    pub state: u64,
    /// "store N" / "random stop after store N".
    pub at: String,
    /// Guest kernel release that made it.
    pub kernel: String,
    /// Byte offset of the file system in the image.
    pub dataoff: u64,
    /// Unpacked image size.
    pub image_bytes: u64,
    /// Packed size.
    pub packed_bytes: u64,
    /// Number of claims.
    pub claims: usize,
    /// Claims the kernel's recovery found durable.
    pub kernel_durable: usize,
}

/// The manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// How the fixtures were made.
    pub made_by: String,
    /// The fixtures.
    pub fixtures: Vec<FixtureEntry>,
}

/// The kernel's verdicts recorded in a kept state.
fn kernel_durable(state_dir: &Path) -> Option<Vec<bool>> {
    let b = std::fs::read(state_dir.join("verdicts.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&b).ok()?;
    serde_json::from_value(v.get("kernel_durable")?.clone()).ok()
}

/// The last kept state in which the kernel found every claim durable (`want_all_durable`), or
/// some claim lost.
fn pick(states: &[String], want_all_durable: bool) -> Option<PathBuf> {
    states.iter().rev().map(PathBuf::from).find(|d| {
        kernel_durable(d).is_some_and(|k| !k.is_empty() && k.iter().all(|x| *x) == want_all_durable)
    })
}

/// Pack, for each run, the last kept state in which the kernel found every store durable (a
/// MAP_SYNC run) or some store lost (a control run) into `dir` (merging with an existing
/// `manifest.json`). Returns the number packed.
pub fn pack_from_report(report: &CampaignReport, dir: &Path) -> Result<usize> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mpath = dir.join("manifest.json");
    let mut manifest: Manifest =
        std::fs::read(&mpath).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(Manifest {
            made_by:
                "daxray replay --keep-all --pack-fixtures DIR (a real kernel under QEMU TCG on an emulated \
                      NVDIMM; kernel_durable from a loop mount of a copy: the kernel's own recovery)"
                    .into(),
            fixtures: vec![],
        });
    let mut n = 0;
    for run in &report.runs {
        let Some(state_dir) = pick(&run.kept, run.sync) else { continue };
        let kind = if run.sync { "sync" } else { "control" };
        if manifest
            .fixtures
            .iter()
            .any(|f| f.fs == run.fs && f.sync == run.sync && f.scenario == run.scenario)
        {
            continue;
        }
        let vj: serde_json::Value = {
            let p = state_dir.join("verdicts.json");
            let b = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
            serde_json::from_slice(&b).map_err(|e| Error::External(format!("{}: {e}", p.display())))?
        };
        let kd: Vec<bool> = serde_json::from_value(vj["kernel_durable"].clone()).unwrap_or_default();
        let state = vj["state"].as_u64().unwrap_or(0);
        let name = format!("{}-{kind}-{}-state{state}", run.fs, run.scenario);
        let out = dir.join(&name);
        std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
        let (_, image_bytes) = super::sparse::pack(&state_dir.join("image.img"), &out.join("image.dxs.gz"))?;
        let packed_bytes = std::fs::metadata(out.join("image.dxs.gz")).map_err(|e| Error::io(&out, e))?.len();
        if packed_bytes > MAX_FIXTURE_BYTES {
            eprintln!(
                "daxray: {name}: packed image is {packed_bytes} bytes, over the fixture limit; skipped"
            );
            let _ = std::fs::remove_dir_all(&out);
            continue;
        }
        for f in ["claims.jsonl", "verdicts.json"] {
            std::fs::copy(state_dir.join(f), out.join(f)).map_err(|e| Error::io(state_dir.join(f), e))?;
        }
        manifest.fixtures.push(FixtureEntry {
            name,
            fs: run.fs.clone(),
            sync: run.sync,
            scenario: run.scenario.clone(),
            state,
            at: vj["at"].as_str().unwrap_or("").to_string(),
            kernel: run.kernel.clone(),
            dataoff: run.dataoff,
            image_bytes,
            packed_bytes,
            claims: kd.len(),
            kernel_durable: kd.iter().filter(|k| **k).count(),
        });
        n += 1;
    }
    let j = serde_json::to_string_pretty(&manifest).map_err(|e| Error::External(format!("JSON: {e}")))?;
    std::fs::write(&mpath, j + "\n").map_err(|e| Error::io(&mpath, e))?;
    Ok(n)
}

/// What the kernel's recovery of a copy showed, for a packed state.
pub enum KernelTruth<'a> {
    /// It mounted the copy: every regular file with its sha256, and the paths it could not
    /// read (path, error).
    Mounted(&'a [crate::manifest::ManifestEntry], &'a [(String, String)]),
    /// It refused to mount the copy: what the kernel log said.
    Refused(&'a str),
}

/// Pack one kept state, checked again by [`super::state::recheck`], into `root/name`:
/// `image.dxs.gz`, `claims.jsonl`, `verdicts.json` as kept, and the kernel's truth:
/// `kernel-manifest.json` (the whole view of its recovery of a copy, with
/// `kernel-unreadable.txt` listing the paths it could not read, path and error, tab-separated)
/// or `kernel-refused.txt`.
pub fn pack_rechecked(state_dir: &Path, root: &Path, name: &str, kernel: KernelTruth<'_>) -> Result<PathBuf> {
    let out = root.join(name);
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let (_, _) = super::sparse::pack(&state_dir.join("image.img"), &out.join("image.dxs.gz"))?;
    let packed = std::fs::metadata(out.join("image.dxs.gz")).map_err(|e| Error::io(&out, e))?.len();
    if packed > MAX_FIXTURE_BYTES {
        let _ = std::fs::remove_dir_all(&out);
        return Err(Error::Usage(format!("{name}: packed image is {packed} bytes, over the fixture limit")));
    }
    for f in ["claims.jsonl", "verdicts.json"] {
        std::fs::copy(state_dir.join(f), out.join(f)).map_err(|e| Error::io(state_dir.join(f), e))?;
    }
    let (file, text) = match kernel {
        KernelTruth::Mounted(k, unreadable) => {
            if !unreadable.is_empty() {
                let p = out.join("kernel-unreadable.txt");
                let text: String = unreadable.iter().map(|(path, e)| format!("{path}\t{e}\n")).collect();
                std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
            }
            (
                "kernel-manifest.json",
                serde_json::to_string_pretty(k).map_err(|e| Error::External(format!("JSON: {e}")))?,
            )
        }
        KernelTruth::Refused(why) => ("kernel-refused.txt", why.to_string()),
    };
    let p = out.join(file);
    std::fs::write(&p, text + "\n").map_err(|e| Error::io(&p, e))?;
    Ok(out)
}
