//! The fault-replay campaign (host side).
//!
//! A campaign is a list of runs ([`plan`]: kernel × file system × MAP_SYNC or control ×
//! scenario). The host boots the guest kernel on an emulated NVDIMM ([`crate::vm`]) once for all
//! the runs that share a kernel and a namespace alignment; between two runs the guest unmounts,
//! formats the namespace anew and mounts it again. The guest agent ([`crate::agent`]) makes stores through a
//! shared mapping and reports each one when it is visible and flushed; the host then freezes the
//! machine (QMP `stop`), checks the frozen media **in place** (the image file mapped read-only,
//! the journal/log recovered in memory) against **every** store seen so far, resumes it (`cont`)
//! and lets the agent go on. During the background-writer scenario the host also freezes the
//! machine at random instants between stores and checks there too.
//!
//! With `MAP_SYNC` no state may lose a store. Without it (the control), states must lose some:
//! that shows the checker sees a lost mapping. Every `N`-th state and every failing state is
//! also checked by the kernel's own recovery (a loop mount of a sparse copy), and the two
//! verdicts are compared. Failing states, and states with a journal or log write in flight at the
//! head, are kept (image, claims, verdicts) for `daxray check` and `daxray replay --recheck`.
//!
//! A campaign can be cut into shards ([`Shard`]) that run on different machines; their JSON
//! reports merge into one ([`report::merge`]).

mod checker;
pub mod fixtures;
pub mod report;
pub mod run;
pub mod sparse;
pub mod state;

use crate::agent::proto::{FaultSize, FsChoice, Job};
use crate::vm::Assets;
pub use report::{CampaignReport, RunReport, Timing};
use run::{Guest, RunSpec};
use std::path::PathBuf;
use std::time::Instant;

/// Every scenario the guest agent knows.
pub const SCENARIOS: &[&str] = &[
    "seq-sparse",
    "random-sparse",
    "prealloc-written",
    "fallocated-unwritten",
    "pmd-sparse",
    "multi-file",
    "background-writer",
    "msync-after",
    "soak",
];

/// The scenarios of the default campaign: all but the soak (the last one, which runs for a given
/// time).
pub const DEFAULT_SCENARIOS: &[&str] = SCENARIOS.split_at(SCENARIOS.len() - 1).0;

/// The file systems of the default campaign.
pub const DEFAULT_FS: &[FsChoice] = &[FsChoice::Ext4, FsChoice::Ext4NoJournal, FsChoice::Xfs];

/// How to run a campaign.
#[derive(Debug, Clone)]
pub struct CampaignOptions {
    /// File systems.
    pub fs: Vec<FsChoice>,
    /// Modes: `true` = MAP_SYNC, `false` = the control (plain MAP_SHARED).
    pub sync: Vec<bool>,
    /// Scenario names.
    pub scenarios: Vec<String>,
    /// Stores per run.
    pub pages: u32,
    /// Check every N-th state with the kernel's recovery too (0: only failing states).
    pub oracle_every: u32,
    /// Where to keep failing states (and, with `keep_all`, oracle-checked ones).
    pub keep: PathBuf,
    /// Keep every oracle-checked state, not only failing ones (to make fixtures).
    pub keep_all: bool,
    /// Random stops between two stores of the background-writer scenario.
    pub random_stops: u32,
    /// Seed for the guest's workloads and the host's random stops.
    pub seed: u64,
    /// The kernels, each with its modules: every run is made on each (the kernel matrix).
    pub kernels: Vec<Assets>,
    /// Run only this part of the campaign.
    pub shard: Option<Shard>,
    /// Scratch folder (images, consoles, oracle copies).
    pub work: PathBuf,
    /// Compare the whole recovered view with the kernel's at every oracle state (every regular
    /// file: path, inode, size, merged extents, sha256), not only the stores' claims.
    pub whole_view: bool,
    /// End each run after this long: the host answers the next store with `Abort` (the soak).
    pub run_seconds: Option<u64>,
    /// The random wait before each random stop, in milliseconds (from, to).
    pub stop_gap_ms: (u64, u64),
    /// The journal or log size for mkfs.
    pub journal: JournalSize,
}

/// The journal (ext4) or log (XFS) size a campaign formats with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalSize {
    /// mkfs's default.
    Default,
    /// Small enough to wrap often ([`FsChoice::small_journal_mib`]).
    Small,
    /// This many MiB.
    Mib(u32),
}

impl JournalSize {
    /// The size in MiB for `fs` (None: mkfs's default).
    pub fn mib(self, fs: FsChoice) -> Option<u32> {
        match self {
            JournalSize::Default => None,
            JournalSize::Small => fs.small_journal_mib(),
            JournalSize::Mib(m) => Some(m),
        }
    }
}

impl CampaignOptions {
    /// The options of the default campaign (the CLI's defaults), with these assets and folders.
    pub fn new(assets: Assets, keep: PathBuf, work: PathBuf) -> CampaignOptions {
        CampaignOptions {
            fs: DEFAULT_FS.to_vec(),
            sync: vec![true, false],
            scenarios: DEFAULT_SCENARIOS.iter().map(|s| s.to_string()).collect(),
            pages: 8,
            oracle_every: 4,
            keep,
            keep_all: false,
            random_stops: 3,
            seed: 1,
            kernels: vec![assets],
            shard: None,
            work,
            whole_view: false,
            run_seconds: None,
            stop_gap_ms: (5, 60),
            journal: JournalSize::Default,
        }
    }
}

/// The job for one run.
pub fn job_for(fs: FsChoice, sync: bool, scenario: &str, pages: u32, seed: u64) -> Job {
    let mut j = Job::new(fs, sync, scenario, pages);
    j.seed = seed;
    if scenario == "pmd-sparse" {
        j.fault_size = FaultSize::Pmd;
        j.namespace_align = 2 << 20;
    }
    j
}

/// A part of a campaign: shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, 1..=count.
    pub index: u32,
    /// How many shards the campaign is cut into.
    pub count: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `I/N`, e.g. `2/4`.
    fn from_str(s: &str) -> std::result::Result<Shard, String> {
        let (i, n) = s.split_once('/').ok_or_else(|| format!("{s:?}: give the shard as I/N, e.g. 1/2"))?;
        let index: u32 = i.trim().parse().map_err(|_| format!("{s:?}: {i:?} is not a number"))?;
        let count: u32 = n.trim().parse().map_err(|_| format!("{s:?}: {n:?} is not a number"))?;
        if count == 0 || index == 0 || index > count {
            return Err(format!(
                "{s:?}: the shard must be between 1 and the count (1/{count} .. {count}/{count})"
            ));
        }
        Ok(Shard { index, count })
    }
}

/// Every run of the campaign, in the order the report lists them (kernel, file system, mode,
/// scenario), each with its place in that order; a shard takes every `count`-th run from its
/// `index`, so that the shards of a campaign are disjoint and cover it.
pub fn plan(opts: &CampaignOptions) -> Vec<RunSpec> {
    let mut v = Vec::new();
    for kernel in 0..opts.kernels.len() {
        for &fs in &opts.fs {
            for &sync in &opts.sync {
                for sc in &opts.scenarios {
                    v.push(RunSpec { index: v.len(), kernel, fs, sync, scenario: sc.clone() });
                }
            }
        }
    }
    if let Some(sh) = opts.shard {
        v.retain(|r| r.index % sh.count as usize == (sh.index - 1) as usize);
    }
    v
}

/// The order runs are made in: by kernel, then by namespace alignment, so that one boot serves
/// every run of a kernel with the same alignment.
fn boot_order(specs: &mut [RunSpec], opts: &CampaignOptions) {
    specs.sort_by_key(|r| (r.kernel, r.job(opts).namespace_align, r.index));
}

/// The stores and stops a run is expected to check (for the progress bar; the soak runs for a
/// time instead and counts as its stores).
pub fn expected_states(opts: &CampaignOptions, scenario: &str) -> u64 {
    let stops = if matches!(scenario, "background-writer" | "soak") { opts.random_stops } else { 0 };
    u64::from(opts.pages) * (1 + u64::from(stops))
}

/// Progress of a campaign, as it goes.
pub trait Progress {
    /// Run `i` (of the runs this campaign makes) starts; `name` says which.
    fn run_start(&mut self, i: usize, name: &str);
    /// A state of the current run was checked (`r` so far).
    fn state(&mut self, r: &RunReport);
    /// The run finished.
    fn run_done(&mut self, r: &RunReport);
}

/// Run the whole campaign (or its shard).
pub fn run_campaign(opts: &CampaignOptions, progress: &mut dyn Progress) -> CampaignReport {
    let t = Instant::now();
    let mut rep = CampaignReport {
        keep_dir: opts.keep.display().to_string(),
        kernels: opts.kernels.iter().map(|k| k.version.clone()).collect(),
        shard: opts.shard.map(|s| format!("{}/{}", s.index, s.count)),
        seed: opts.seed,
        ..CampaignReport::default()
    };
    let mut specs = plan(opts);
    boot_order(&mut specs, opts);
    let mut guest: Option<Guest> = None;
    for (i, spec) in specs.iter().enumerate() {
        progress.run_start(i, &spec.name(opts));
        let r = run::run_one(opts, spec, &mut guest, &mut rep.timing, &mut rep.probes, progress);
        progress.run_done(&r);
        rep.runs.push(r);
    }
    if let Some(g) = guest.take() {
        run::shut_down(g, &mut rep.timing);
    }
    rep.runs.sort_by_key(|r| r.run);
    rep.probe = rep.probes.first().cloned();
    rep.seconds = t.elapsed().as_secs_f64();
    rep.timing.finish(&rep.runs, rep.seconds);
    rep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_campaign_once() {
        assert!(
            "0/2".parse::<Shard>().is_err()
                && "3/2".parse::<Shard>().is_err()
                && "1".parse::<Shard>().is_err()
        );
        let assets = Assets { kernel: "k".into(), modules: "m".into(), version: "v".into() };
        let mut opts = CampaignOptions::new(assets, "keep".into(), "work".into());
        let all: Vec<usize> = plan(&opts).iter().map(|r| r.index).collect();
        assert_eq!(all.len(), 3 * 2 * DEFAULT_SCENARIOS.len());
        assert_eq!((DEFAULT_SCENARIOS.len(), SCENARIOS.last()), (8, Some(&"soak")));
        let mut seen = Vec::new();
        for i in 1..=3 {
            opts.shard = Some(format!("{i}/3").parse().unwrap());
            seen.extend(plan(&opts).iter().map(|r| r.index));
        }
        seen.sort();
        assert_eq!(seen, all);
    }
}
