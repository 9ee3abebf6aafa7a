//! The fault-replay campaign (host side).
//!
//! For each run (file system × MAP_SYNC or control × scenario) the host boots the guest kernel on
//! an emulated NVDIMM ([`crate::vm`]). The guest agent ([`crate::agent`]) makes stores through a
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

pub mod fixtures;
pub mod sparse;
pub mod state;

use crate::agent::proto::{FaultSize, FsChoice, GuestMsg, HostMsg, Job, ProbeReport, Store, TraceCounts};
use crate::check::Claim;
use crate::error::{Error, Result};
use crate::oracle::{kernel_check, kernel_log};
use crate::vm::{Assets, Vm, VmConfig};
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use state::{KeptState, WholeView, check_in_place, disagreements, keep_state, keep_views};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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

/// The scenarios of the default campaign: first writes into an empty file (the synchronous
/// fault path, NEEDDSYNC) and the background writer (a busy journal/log, random stops).
pub const DEFAULT_SCENARIOS: &[&str] = &["seq-sparse", "background-writer"];

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
    /// Kernel and modules.
    pub assets: Assets,
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
            assets,
            work,
            whole_view: false,
            run_seconds: None,
            stop_gap_ms: (20, 300),
            journal: JournalSize::Default,
        }
    }
}

/// The result of one run.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RunReport {
    /// File system.
    pub fs: String,
    /// MAP_SYNC (true) or the control.
    pub sync: bool,
    /// Scenario.
    pub scenario: String,
    /// Guest kernel release.
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
#[derive(Debug, Clone, Serialize, Default)]
pub struct CampaignReport {
    /// One entry per run.
    pub runs: Vec<RunReport>,
    /// The MAP_SYNC flag semantics the guest saw (from the first run that probed).
    pub probe: Option<ProbeReport>,
    /// Where failing states were kept.
    pub keep_dir: String,
    /// Total wall time, seconds.
    pub seconds: f64,
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

    /// Control runs that showed no violation (the checker could not see a lost mapping there).
    pub fn silent_controls(&self) -> Vec<&RunReport> {
        self.runs.iter().filter(|r| !r.sync && r.error.is_none() && r.violations == 0).collect()
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

fn claim_of(s: &Store) -> Claim {
    Claim {
        path: s.file.clone(),
        ino: Some(s.ino),
        offset: s.offset,
        len: s.len,
        sha256: s.sha256.to_ascii_lowercase(),
        seq: Some(s.seq),
    }
}

/// Add a store to the visible set; an earlier claim that the new store overwrites (in part) no
/// longer holds and is dropped.
fn add_claim(claims: &mut Vec<Claim>, c: Claim) {
    let end = c.offset.saturating_add(c.len);
    claims.retain(|o| o.path != c.path || o.offset.saturating_add(o.len) <= c.offset || o.offset >= end);
    claims.push(c);
}

/// Per-run state while it goes on.
struct RunCtx<'a> {
    opts: &'a CampaignOptions,
    job: Job,
    report: RunReport,
    check_ms: f64,
    timed_states: u64,
    oracle_ms: f64,
    run_dir: PathBuf,
    keep_dir: PathBuf,
}

impl RunCtx<'_> {
    /// Check the frozen media now; `at` says after what.
    fn check_state(
        &mut self,
        image: &Path,
        dataoff: u64,
        claims: &[Claim],
        at: String,
        random: bool,
    ) -> Result<()> {
        let n = self.report.states_checked;
        self.report.states_checked += 1;
        if random {
            self.report.random_states += 1;
        }
        self.report.claims_checked += claims.len() as u64;
        let every = u64::from(self.opts.oracle_every);
        let sample = every > 0 && n.is_multiple_of(every);
        let whole = self.opts.whole_view && sample;
        // daxray's check, in place. A failure to read the media is recorded (the state is then
        // unverified) and the kernel oracle still looks at it.
        let mut ours = None;
        let (verdicts, lost, by_recovery, check_error) = match check_in_place(image, claims, whole) {
            Ok(ip) if ip.dataoff != dataoff => (
                vec![],
                0,
                0,
                Some(format!(
                    "the namespace header says the file system starts at {} but the guest said {dataoff}",
                    ip.dataoff
                )),
            ),
            Ok(mut ip) => {
                self.check_ms += ip.ms;
                self.timed_states += 1;
                // When the kernel's recovery fails, nothing is read back at all: the state counts
                // as a refused mount (compared with the kernel's below), not as lost claims.
                let (lost, by_recovery) =
                    if ip.refused.is_some() { (0, 0) } else { (ip.lost(), ip.lost_by_recovery()) };
                let err = ip.unreadable().map(|v| format!("{}: {}", v.claim.path, v.evidence.detail));
                let verdicts = std::mem::take(&mut ip.verdicts);
                ours = Some(ip);
                (verdicts, lost, by_recovery, err)
            }
            Err(e) => (vec![], 0, 0, Some(e.to_string())),
        };
        let in_flight = ours.as_ref().and_then(|o| o.in_flight.clone());
        let ours_refused = ours.as_ref().and_then(|o| o.refused.clone());
        if in_flight.is_some() {
            self.report.in_flight_states += 1;
        }
        if by_recovery > 0 {
            self.report.lost_by_recovery_states += 1;
            self.report.lost_by_recovery_claims += by_recovery as u64;
        }
        if let Some(e) = &check_error {
            self.report.check_errors += 1;
            if self.report.first_check_error.is_none() {
                self.report.first_check_error = Some(format!("state {n} ({at}): {e}"));
            }
        }
        self.report.lost_claims += lost as u64;
        if lost > 0 {
            self.report.violations += 1;
        }
        let failing = lost > 0;
        let torn = by_recovery > 0;
        if !(sample
            || failing
            || torn
            || in_flight.is_some()
            || check_error.is_some()
            || ours_refused.is_some())
        {
            return Ok(());
        }
        let fs = self.job.fs;
        let kv = kernel_check(image, dataoff, fs.mount_type(), claims, &self.run_dir, whole)?;
        self.oracle_ms += kv.ms;
        // A mount the kernel refuses is compared as such: both refuse (the claims and files are
        // then not compared), or one of the two is wrong.
        let refusal_differs = ours_refused.is_some() != kv.refused.is_some();
        let both_refuse = ours_refused.is_some() && kv.refused.is_some();
        if both_refuse {
            self.report.mount_refused_states += 1;
        }
        let any_refuses = ours_refused.is_some() || kv.refused.is_some();
        let dis = if any_refuses { vec![] } else { disagreements(&verdicts, &kv) };
        let view = if any_refuses {
            None
        } else {
            WholeView::compare(ours.as_ref().and_then(|o| o.manifest.as_ref()), kv.manifest.as_ref())
        };
        if let Some(WholeView::Agree(files)) = &view {
            self.report.whole_checked += 1;
            self.report.files_compared += *files as u64;
        }
        let view_differs = matches!(view, Some(WholeView::Differ(_)));
        let view_error = match &view {
            Some(WholeView::Unreadable(e)) => Some(e.clone()),
            _ => None,
        };
        let check_error = check_error.or(view_error);
        if check_error.is_some() && self.report.first_check_error.is_none() {
            self.report.first_check_error = check_error.as_ref().map(|e| format!("state {n} ({at}): {e}"));
        }
        let disagree = !dis.is_empty() || view_differs || refusal_differs;
        let why = if disagree {
            self.report.oracle_checked += 1;
            self.report.oracle_disagree += 1;
            "disagreement"
        } else if check_error.is_some() {
            "check-error"
        } else {
            self.report.oracle_checked += 1;
            self.report.oracle_agree += 1;
            if both_refuse {
                "mount-refused"
            } else if failing {
                "violation"
            } else if torn {
                "lost-by-recovery"
            } else if in_flight.is_some() {
                "in-flight"
            } else {
                "sample"
            }
        };
        // A state whose newest journal or log write was caught mid-way is rare and is what the
        // recovery rules are judged on: it is kept even when both sides agree.
        let kept_anyway = in_flight.is_some() || self.opts.keep_all;
        if !(disagree || failing || torn || both_refuse || check_error.is_some() || kept_anyway) {
            return Ok(());
        }
        let dir = self.keep_dir.join(format!("state-{n:04}-{why}"));
        let described = view.as_ref().map(WholeView::describe);
        let info = KeptState {
            why,
            fs: fs.name(),
            sync: self.job.sync,
            scenario: &self.job.scenario,
            state: n,
            at: at.clone(),
            dataoff,
            kernel: &self.report.kernel,
            daxray: &verdicts,
            daxray_error: check_error.as_deref(),
            kernel_durable: Some(&kv.durable),
            kernel_refused: kv.refused.as_deref(),
            in_flight: in_flight.as_deref(),
            whole_view: described.as_deref(),
        };
        keep_state(image, &dir, claims, &info)?;
        let log = if disagree {
            kv.loop_device.as_deref().map(|d| kernel_log(d, 40)).unwrap_or_default()
        } else {
            vec![]
        };
        keep_views(&dir, ours.as_ref().and_then(|o| o.manifest.as_ref()), kv.manifest.as_ref(), &log)?;
        self.report.kept.push(dir.display().to_string());
        if disagree {
            let mut msg = format!(
                "\n!!!!!!!! ORACLE DISAGREEMENT: {} {} {} state {n} ({at}) !!!!!!!!\n",
                fs.name(),
                self.report.mode(),
                self.job.scenario
            );
            if let Some(f) = &in_flight {
                msg.push_str(&format!("  write in flight at the head: {f}\n"));
            }
            if refusal_differs {
                msg.push_str(&format!(
                    "  daxray: {}\n  the kernel: {}\n",
                    ours_refused
                        .as_deref()
                        .map_or("recovers the view".into(), |r| format!("the mount fails: {r}")),
                    kv.refused
                        .as_deref()
                        .map_or("mounts the copy".into(), |r| format!("refuses to mount the copy: {r}"))
                ));
            }
            for i in dis {
                if let (Some(v), Some(k)) = (verdicts.get(i), kv.durable.get(i)) {
                    msg.push_str(&state::disagreement_line(v, *k));
                }
            }
            if let Some(WholeView::Differ(d)) = &view {
                msg.push_str(&format!("  whole view: {}\n", d.replace('\n', "\n  ")));
            }
            msg.push_str(&format!(
                "  kept in {} (image, claims, both views, the kernel's log)\n  re-check: daxray replay --recheck {}\n",
                dir.display(),
                dir.display()
            ));
            eprintln!("{msg}");
        }
        Ok(())
    }
}

/// Run one (fs, sync, scenario). `on_state` is called after each checked state (progress).
pub fn run_one(
    opts: &CampaignOptions,
    fs: FsChoice,
    sync: bool,
    scenario: &str,
    probe_out: &mut Option<ProbeReport>,
    on_state: &mut dyn FnMut(&RunReport),
) -> RunReport {
    let t = Instant::now();
    let name = format!("{}-{}-{}", fs.name(), if sync { "sync" } else { "nosync" }, scenario);
    let mut ctx = RunCtx {
        opts,
        job: Job { journal_mib: opts.journal.mib(fs), ..job_for(fs, sync, scenario, opts.pages, opts.seed) },
        report: RunReport { fs: fs.name().into(), sync, scenario: scenario.into(), ..RunReport::default() },
        check_ms: 0.0,
        timed_states: 0,
        oracle_ms: 0.0,
        run_dir: opts.work.join(&name),
        keep_dir: opts.keep.join(&name),
    };
    let r = drive(&mut ctx, probe_out, on_state);
    let mut rep = ctx.report;
    if let Err(e) = r {
        rep.error = Some(e.to_string());
    }
    if ctx.timed_states > 0 {
        rep.check_ms_per_state = ctx.check_ms / ctx.timed_states as f64;
    }
    let oracle_runs = rep.oracle_checked + rep.check_errors.min(rep.states_checked);
    if oracle_runs > 0 {
        rep.oracle_ms_per_state = ctx.oracle_ms / oracle_runs as f64;
        if rep.check_ms_per_state > 0.0 {
            rep.oracle_to_check_ratio = rep.oracle_ms_per_state / rep.check_ms_per_state;
        }
    }
    // Keep the console when states were kept or the run failed; then drop the scratch image.
    let console = ctx.run_dir.join("console.log");
    if (!rep.kept.is_empty() || rep.error.is_some()) && console.exists() {
        let _ = std::fs::create_dir_all(&ctx.keep_dir);
        let dst = ctx.keep_dir.join("console.log");
        if std::fs::copy(&console, &dst).is_ok() {
            rep.console_log = Some(dst.display().to_string());
        }
    }
    let _ = std::fs::remove_dir_all(&ctx.run_dir);
    rep.seconds = t.elapsed().as_secs_f64();
    rep
}

fn drive(
    ctx: &mut RunCtx<'_>,
    probe_out: &mut Option<ProbeReport>,
    on_state: &mut dyn FnMut(&RunReport),
) -> Result<()> {
    let opts = ctx.opts;
    std::fs::create_dir_all(&ctx.run_dir).map_err(|e| Error::io(&ctx.run_dir, e))?;
    let cfg = VmConfig::new(opts.assets.clone(), &ctx.run_dir, ctx.job.fs);
    let mut vm = Vm::boot(&cfg, &ctx.job)?;
    let dataoff = vm.ready().dataoff;
    ctx.report.kernel = vm.ready().kernel.clone();
    ctx.report.dataoff = dataoff;
    let image = vm.image().to_path_buf();
    let timeout = vm.event_timeout();
    let background = matches!(ctx.job.scenario.as_str(), "background-writer" | "soak");
    let deadline = opts.run_seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let (gap_lo, gap_hi) = (opts.stop_gap_ms.0, opts.stop_gap_ms.1.max(opts.stop_gap_ms.0 + 1));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed ^ 0x5eed_da7a);
    let mut claims: Vec<Claim> = Vec::new();
    loop {
        match vm.recv(timeout)? {
            GuestMsg::Probe(p) => {
                ctx.report.map_sync_works = Some(p.map_sync_works);
                if probe_out.is_none() {
                    *probe_out = Some(p);
                }
            }
            GuestMsg::Store(s) => {
                ctx.report.faults += 1;
                let seq = s.seq;
                add_claim(&mut claims, claim_of(&s));
                vm.stop()?;
                let r = ctx.check_state(&image, dataoff, &claims, format!("store {seq}"), false);
                vm.cont()?;
                r?;
                on_state(&ctx.report);
                // The background writer keeps appending and fsyncing while the agent waits for
                // Go: stop at random instants there too (before Go, so that the last store's
                // stops cannot race the guest's power-off).
                if background {
                    for _ in 0..opts.random_stops {
                        std::thread::sleep(Duration::from_millis(rng.random_range(gap_lo..gap_hi)));
                        vm.stop()?;
                        let r = ctx.check_state(
                            &image,
                            dataoff,
                            &claims,
                            format!("random stop after store {seq}"),
                            true,
                        );
                        vm.cont()?;
                        r?;
                        on_state(&ctx.report);
                    }
                }
                // A timed run (the soak) ends at its deadline: the guest stops storing.
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    vm.send(&HostMsg::Abort)?;
                } else {
                    vm.send(&HostMsg::Go)?;
                }
            }
            GuestMsg::Done { stores, trace, pmd } => {
                apply_trace(&mut ctx.report, &trace);
                if ctx.job.fault() == FaultSize::Pmd && (trace.pmd_fallbacks > 0 || trace.pmd_faults < stores)
                {
                    ctx.report.pmd_refused = pmd_refused(&ctx.job, &trace, pmd.as_ref());
                }
                if stores != ctx.report.faults {
                    return Err(Error::External(format!(
                        "the guest says it made {stores} stores, the host saw {}",
                        ctx.report.faults
                    )));
                }
                break;
            }
            GuestMsg::Error { message } => {
                return Err(Error::External(format!("the guest failed: {message}")));
            }
            GuestMsg::Ready { .. } => {
                return Err(Error::External("the guest said Ready twice".into()));
            }
            #[allow(unreachable_patterns)]
            other => {
                return Err(Error::External(format!("unexpected message from the guest: {other:?}")));
            }
        }
    }
    // The final state, after the guest finished (nothing runs any more but its shutdown).
    vm.finish(Duration::from_secs(120))?;
    Ok(())
}

/// Why a PMD scenario's stores fell back to PTE faults: the kernel conditions the guest's
/// layout shows failing, or, when it shows none, the trace counts and the conditions it cannot
/// see.
pub fn pmd_refused(
    job: &Job,
    trace: &TraceCounts,
    pmd: Option<&crate::agent::proto::PmdLayout>,
) -> Vec<String> {
    let head = format!(
        "{} of {} PMD faults fell back to PTEs (dax_pmd_fault_done FALLBACK)",
        trace.pmd_fallbacks,
        trace.pmd_fallbacks + trace.pmd_faults
    );
    let file_len = crate::agent::scenario::layout(job).map(|l| l.file_len).unwrap_or(0);
    let mut v = vec![head];
    match pmd {
        None => v.push("the guest reported no mapping layout".into()),
        Some(l) => {
            let r = l.refusals(file_len);
            if r.is_empty() {
                v.push(
                    "the layout meets the colour, file size, extent length and pfn alignment \
                     conditions: the fallback came from one it cannot show (an existing PTE \
                     table, a PTE entry in the page cache, the VMA bounds)"
                        .into(),
                );
            }
            v.extend(r);
        }
    }
    v
}

fn apply_trace(r: &mut RunReport, t: &TraceCounts) {
    r.needdsync_faults = t.needdsync;
    r.pte_faults = t.pte_faults;
    r.pmd_faults = t.pmd_faults;
    r.pmd_needdsync_faults = t.pmd_needdsync;
    r.pmd_fallbacks = t.pmd_fallbacks;
    r.insert_pfn_mkwrite = t.insert_pfn_mkwrite;
}

/// Run the whole campaign. `on_run_start(i, name)` and `on_state` report progress.
pub fn run_campaign(
    opts: &CampaignOptions,
    on_run_start: &mut dyn FnMut(usize, &str),
    on_state: &mut dyn FnMut(&RunReport),
    on_run_done: &mut dyn FnMut(&RunReport),
) -> CampaignReport {
    let t = Instant::now();
    let mut rep = CampaignReport { keep_dir: opts.keep.display().to_string(), ..CampaignReport::default() };
    let mut i = 0;
    for &fs in &opts.fs {
        for &sync in &opts.sync {
            for sc in &opts.scenarios {
                on_run_start(
                    i,
                    &format!("{} {} {}", fs.name(), if sync { "MAP_SYNC" } else { "control" }, sc),
                );
                let r = run_one(opts, fs, sync, sc, &mut rep.probe, on_state);
                on_run_done(&r);
                rep.runs.push(r);
                i += 1;
            }
        }
    }
    rep.seconds = t.elapsed().as_secs_f64();
    rep
}

/// The number of runs a campaign makes.
pub fn run_count(opts: &CampaignOptions) -> usize {
    opts.fs.len() * opts.sync.len() * opts.scenarios.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(path: &str, off: u64, len: u64) -> Claim {
        Claim { path: path.into(), ino: None, offset: off, len, sha256: "0".repeat(64), seq: None }
    }

    #[test]
    fn later_store_supersedes_overlapping_claims_only() {
        let mut v = vec![c("/a", 0, 10), c("/a", 10, 10), c("/b", 0, 10)];
        add_claim(&mut v, c("/a", 5, 6));
        let kept: Vec<(String, u64)> = v.iter().map(|x| (x.path.clone(), x.offset)).collect();
        assert_eq!(kept, vec![("/b".to_string(), 0), ("/a".to_string(), 5)]);
    }

    #[test]
    fn pmd_scenario_asks_for_pmd_faults() {
        let j = job_for(FsChoice::Xfs, true, "pmd-sparse", 2, 7);
        assert_eq!((j.fault_size, j.namespace_align, j.seed), (FaultSize::Pmd, 2 << 20, 7));
        assert_eq!(job_for(FsChoice::Ext4, false, "seq-sparse", 2, 7).fault_size, FaultSize::Pte);
    }
}
