//! What a campaign reports: one [`RunReport`] per run, the [`CampaignReport`] of a campaign (or
//! of one shard of it), where the wall time went ([`Timing`]), and the merge of shards' reports.

use crate::agent::proto::ProbeReport;
use serde::{Deserialize, Serialize};

/// The result of one run.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RunReport {
    /// Place in the whole campaign's order (see `replay::plan`); shards keep these numbers.
    #[serde(default)]
    pub run: usize,
    /// File system.
    pub fs: String,
    /// MAP_SYNC (true) or the control.
    pub sync: bool,
    /// Scenario.
    pub scenario: String,
    /// Guest kernel release (`uname -r` in the guest; the kernel package's release when the
    /// guest never said).
    pub kernel: String,
    /// Stores made (each a first write through the mapping: one page fault).
    pub faults: u64,
    /// Frozen states checked (one per store, plus random stops).
    pub states_checked: u64,
    /// States at random instants among them.
    pub random_states: u64,
    /// States daxray could not check (the model failed to read the media); the kernel oracle
    /// still looked at them.
    pub check_errors: u64,
    /// The first such failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_check_error: Option<String>,
    /// States in which at least one visible store was lost.
    pub violations: u64,
    /// Lost claims summed over all states.
    pub lost_claims: u64,
    /// States in which a visible store was lost only because the kernel's log recovery drops a
    /// complete record at a torn log sector (`lost-by-recovery`): counted apart from
    /// violations of the fault path.
    pub lost_by_recovery_states: u64,
    /// Claims lost that way, summed over all states.
    pub lost_by_recovery_claims: u64,
    /// Claims checked summed over all states.
    pub claims_checked: u64,
    /// States in which a journal or log write was in flight at the head (a record or
    /// transaction torn or begun, see `head_in_flight` in the recovery details).
    pub in_flight_states: u64,
    /// States whose journal or log the kernel's recovery refuses (the mount fails), as daxray
    /// said too: nothing of the file system can be read until it is repaired.
    pub mount_refused_states: u64,
    /// Oracle states whose whole recovered view (every file) was compared with the kernel's.
    pub whole_checked: u64,
    /// Files compared over those states.
    pub files_compared: u64,
    /// Kernel trace: faults that returned NEEDDSYNC.
    pub needdsync_faults: u64,
    /// Kernel trace: PTE faults.
    pub pte_faults: u64,
    /// Kernel trace: PMD faults (`dax_pmd_fault_done` whose result is not `FALLBACK`).
    pub pmd_faults: u64,
    /// Kernel trace: PMD faults whose result includes `NEEDDSYNC` (of `needdsync_faults`).
    pub pmd_needdsync_faults: u64,
    /// Kernel trace: PMD faults that fell back to PTEs (`dax_pmd_fault_done` ... `FALLBACK`).
    pub pmd_fallbacks: u64,
    /// A PMD scenario whose stores did not all take PMD faults: why, per 2 MiB extent, from the
    /// kernel's conditions (`PmdLayout::refusals`); the stores were then PTE faults, not PMD
    /// ones. Empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pmd_refused: Vec<String>,
    /// Kernel trace: `dax_insert_pfn_mkwrite` events.
    pub insert_pfn_mkwrite: u64,
    /// States also checked by the kernel's recovery.
    pub oracle_checked: u64,
    /// Of those, states where every claim's verdict agreed.
    pub oracle_agree: u64,
    /// Of those, states where some verdict disagreed (a daxray bug).
    pub oracle_disagree: u64,
    /// Mean in-place check time per state (map, recover in memory, check every claim).
    pub check_ms_per_state: f64,
    /// Mean kernel-oracle time per oracle state (copy, mount with recovery, read, unmount).
    pub oracle_ms_per_state: f64,
    /// oracle_ms_per_state / check_ms_per_state.
    pub oracle_to_check_ratio: f64,
    /// MAP_SYNC accepted with `sf` in the guest (from the probe).
    pub map_sync_works: Option<bool>,
    /// Where the file system sat in the image.
    pub dataoff: u64,
    /// Folders of kept states.
    pub kept: Vec<String>,
    /// The kept console log of the guest (when states were kept or the run failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_log: Option<String>,
    /// Wall time of the run, seconds.
    pub seconds: f64,
    /// Why the run did not finish, if it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunReport {
    /// "sync" or "control".
    pub fn mode(&self) -> &'static str {
        if self.sync { "MAP_SYNC" } else { "control" }
    }

    /// True when this run makes the campaign fail: a MAP_SYNC violation or an oracle
    /// disagreement.
    pub fn fails(&self) -> bool {
        (self.sync && self.violations > 0) || self.oracle_disagree > 0
    }
}

/// The whole campaign.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct CampaignReport {
    /// One entry per run.
    pub runs: Vec<RunReport>,
    /// The MAP_SYNC flag semantics the guest saw (from the first run that probed).
    pub probe: Option<ProbeReport>,
    /// The same, once per kernel of the matrix.
    #[serde(default)]
    pub probes: Vec<ProbeReport>,
    /// Where failing states were kept.
    pub keep_dir: String,
    /// Total wall time, seconds.
    pub seconds: f64,
    /// The kernels of the campaign (their releases), in the matrix's order.
    #[serde(default)]
    pub kernels: Vec<String>,
    /// `I/N` when this report is one shard of a campaign; the list of shards when merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// The campaign's seed (shards of one campaign share it).
    #[serde(default)]
    pub seed: u64,
    /// Where the wall time went.
    #[serde(default)]
    pub timing: Timing,
}

/// Where a campaign's wall time went, in seconds, and the states it checked per second.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Timing {
    /// Guests booted (one per kernel and namespace alignment, plus one after each run that
    /// broke its guest).
    pub boots: u64,
    /// From QEMU's start to the first run's `Ready` (boot, namespace, first mkfs and mount).
    pub boot_s: f64,
    /// Later runs' setup in a booted guest: unmount, mkfs, mount, up to `Ready`.
    pub setup_s: f64,
    /// Waiting for the guest's stores and `Done` while it ran (the probe and the scenario).
    pub guest_s: f64,
    /// The guest frozen (QMP stop to cont): the checks below and the state keeping.
    pub paused_s: f64,
    /// Of the frozen time: daxray's in-place checks.
    pub check_s: f64,
    /// The kernel oracle: the compact copy (taken while the guest is frozen) and, on a second
    /// thread while the guest goes on, the loop mount with recovery, the read-back and unmount.
    pub oracle_s: f64,
    /// Waiting for the oracle's thread (when too many states were waiting for it, and at the
    /// end of each run).
    #[serde(default)]
    pub oracle_wait_s: f64,
    /// The random waits before the background writer's random stops.
    pub gaps_s: f64,
    /// Powering the guests off.
    pub shutdown_s: f64,
    /// mkfs runs in the guests.
    #[serde(default)]
    pub mkfs: u64,
    /// Runs whose freshly made file system the host put back instead of a mkfs.
    #[serde(default)]
    pub restored: u64,
    /// States checked.
    pub states: u64,
    /// States checked per second of the campaign's wall time (boots included).
    pub states_per_second: f64,
}

impl Timing {
    /// Fill in the totals from the runs and the wall time.
    pub fn finish(&mut self, runs: &[RunReport], seconds: f64) {
        self.states = runs.iter().map(|r| r.states_checked).sum();
        self.states_per_second = if seconds > 0.0 { self.states as f64 / seconds } else { 0.0 };
    }

    fn add(&mut self, o: &Timing) {
        self.boots += o.boots;
        self.boot_s += o.boot_s;
        self.setup_s += o.setup_s;
        self.guest_s += o.guest_s;
        self.paused_s += o.paused_s;
        self.check_s += o.check_s;
        self.oracle_s += o.oracle_s;
        self.oracle_wait_s += o.oracle_wait_s;
        self.gaps_s += o.gaps_s;
        self.shutdown_s += o.shutdown_s;
        self.mkfs += o.mkfs;
        self.restored += o.restored;
    }
}

/// Merge the reports of a campaign's shards into one: the runs of all of them in the campaign's
/// order, the time summed (the shards' wall times add up: they are machine time, not elapsed
/// time). The shards must come from one campaign: the same seed and kernels, `I/N` with one
/// `N`, each shard once, no run twice.
pub fn merge(parts: Vec<CampaignReport>) -> Result<CampaignReport, String> {
    let Some(first) = parts.first() else { return Err("no reports to merge".into()) };
    if parts.len() == 1 && first.shard.is_none() {
        // A whole campaign's report alone: it is its own merge (shown again as a table).
        return Ok(parts.into_iter().next().unwrap_or_default());
    }
    let (seed, kernels) = (first.seed, first.kernels.clone());
    let mut count = None;
    let mut seen_shards = Vec::new();
    let mut out = CampaignReport { seed, kernels: kernels.clone(), ..CampaignReport::default() };
    for (i, p) in parts.into_iter().enumerate() {
        if p.seed != seed {
            return Err(format!("report {} has seed {}, the first {seed}", i + 1, p.seed));
        }
        if p.kernels != kernels {
            return Err(format!("report {} ran kernels {:?}, the first {kernels:?}", i + 1, p.kernels));
        }
        let sh = p.shard.clone().ok_or_else(|| format!("report {} is not a shard (no I/N)", i + 1))?;
        let (a, n) =
            sh.split_once('/').ok_or_else(|| format!("report {}: shard {sh:?} is not I/N", i + 1))?;
        if *count.get_or_insert(n.to_string()) != n {
            return Err(format!("report {} is shard {sh}, of another count than the first", i + 1));
        }
        if seen_shards.contains(&a.to_string()) {
            return Err(format!("shard {sh} given twice"));
        }
        seen_shards.push(a.to_string());
        for q in p.probes {
            if !out.probes.iter().any(|o| o.kernel == q.kernel) {
                out.probes.push(q);
            }
        }
        if out.keep_dir.is_empty() {
            out.keep_dir = p.keep_dir;
        } else if !p.keep_dir.is_empty() {
            out.keep_dir = format!("{} {}", out.keep_dir, p.keep_dir);
        }
        out.seconds += p.seconds;
        out.timing.add(&p.timing);
        out.runs.extend(p.runs);
    }
    out.probe = out.probes.first().cloned();
    out.runs.sort_by_key(|r| r.run);
    if let Some(w) = out.runs.windows(2).find(|w| w[0].run == w[1].run) {
        return Err(format!(
            "run {} ({} {} {}) is in two reports",
            w[0].run,
            w[0].fs,
            w[0].mode(),
            w[0].scenario
        ));
    }
    let n = count.unwrap_or_default();
    seen_shards.sort_by_key(|a| a.parse::<u32>().unwrap_or(0));
    out.shard = Some(format!("{} of {n}", seen_shards.join("+")));
    out.timing.finish(&out.runs, out.seconds);
    Ok(out)
}

impl CampaignReport {
    /// Exit code: 1 when a MAP_SYNC run lost a store or daxray disagreed with the kernel, 2 when a
    /// run could not finish or a state could not be checked, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.runs.iter().any(RunReport::fails) {
            1
        } else if self.runs.iter().any(|r| r.error.is_some() || r.check_errors > 0) {
            2
        } else {
            0
        }
    }

    /// Control runs that showed no violation (the checker could not see a lost mapping there),
    /// of the scenarios whose control can lose a store ([`crate::agent::scenario::control_can_lose`]).
    pub fn silent_controls(&self) -> Vec<&RunReport> {
        self.runs
            .iter()
            .filter(|r| {
                !r.sync
                    && r.error.is_none()
                    && r.violations == 0
                    && crate::agent::scenario::control_can_lose(&r.scenario)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(runs: &[usize], sh: &str) -> CampaignReport {
        CampaignReport {
            runs: runs
                .iter()
                .map(|&run| RunReport { run, fs: "ext4".into(), ..RunReport::default() })
                .collect(),
            shard: Some(sh.into()),
            seed: 3,
            kernels: vec!["k".into()],
            seconds: 1.0,
            ..CampaignReport::default()
        }
    }

    #[test]
    fn merge_orders_runs_and_refuses_what_is_not_one_campaign() {
        let m = merge(vec![shard(&[1, 3], "2/2"), shard(&[0, 2], "1/2")]).unwrap();
        assert_eq!(m.runs.iter().map(|r| r.run).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        assert_eq!(m.shard.as_deref(), Some("1+2 of 2"));
        assert_eq!(m.seconds, 2.0);
        assert!(merge(vec![shard(&[0], "1/2"), shard(&[0], "2/2")]).unwrap_err().contains("in two reports"));
        assert!(merge(vec![shard(&[0], "1/2"), shard(&[1], "1/2")]).unwrap_err().contains("twice"));
        assert!(merge(vec![shard(&[0], "1/2"), shard(&[1], "2/3")]).unwrap_err().contains("count"));
        let mut other = shard(&[1], "2/2");
        other.seed = 4;
        assert!(merge(vec![shard(&[0], "1/2"), other]).unwrap_err().contains("seed"));
        let mut whole = shard(&[0], "1/1");
        whole.shard = None;
        assert!(merge(vec![whole.clone(), shard(&[1], "2/2")]).unwrap_err().contains("not a shard"));
        assert_eq!(merge(vec![whole]).unwrap().runs.len(), 1);
        assert!(merge(vec![]).is_err());
    }
}
