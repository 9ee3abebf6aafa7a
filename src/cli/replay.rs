//! `daxray replay`: the MAP_SYNC fault-replay campaign on a real kernel under QEMU.
//!
//! With no arguments it runs the default campaign: ext4, ext4 without a journal and XFS, each
//! with and without MAP_SYNC, the scenarios `seq-sparse` and `background-writer`, 8 stores each.
//!
//! JSON output (`--json`): `{"runs":[{"fs","sync","scenario","kernel","faults","states_checked",
//! "random_states","violations","lost_claims","lost_by_recovery_states","lost_by_recovery_claims",
//! "claims_checked","in_flight_states","mount_refused_states","whole_checked","files_compared",
//! "needdsync_faults","pte_faults",
//! "pmd_faults","pmd_needdsync_faults","pmd_fallbacks","pmd_refused"?:[why],"insert_pfn_mkwrite","oracle_checked","oracle_agree","oracle_disagree",
//! "check_ms_per_state","oracle_ms_per_state","oracle_to_check_ratio","map_sync_works","dataoff",
//! "kept":[dirs],"console_log"?,"seconds","error"?}],"probe":{...},"keep_dir","seconds",
//! "silent_controls":[...],"exit_code"}`.
//!
//! With `--soak SECONDS` it runs the soak instead (see the option); with `--recheck DIR` it checks
//! one kept state again.
//!
//! Exit code: 1 when a MAP_SYNC run lost a store or daxray disagreed with the kernel's own
//! recovery (claims, whole view, or whether the mount fails); 2 when a run could not finish;
//! else 0. States the kernel refuses to mount, and states lost only by its recovery at a torn log
//! sector, are counted and kept apart, and do not fail the run.

use super::{Global, output};
use crate::agent::proto::FsChoice;
use crate::replay::{self, CampaignOptions, CampaignReport, RunReport};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Arguments of `replay`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// File system (repeat for several): ext4, ext4-nojournal, ext4-fc (fast commits), xfs,
    /// xfs-reflink (reflink and copy-on-write under fsdax; kernels from 6.0 on).
    /// Default: ext4, ext4-nojournal and xfs (with --soak: ext4, ext4-nojournal, ext4-fc, xfs).
    #[arg(long = "fs", value_name = "FS", value_parser = ["ext4", "ext4-nojournal", "ext4-fc", "xfs", "xfs-reflink"])]
    pub fs: Vec<String>,
    /// Only MAP_SYNC runs (default: both MAP_SYNC and the control).
    #[arg(long, conflicts_with = "no_sync")]
    pub sync: bool,
    /// Only control runs, plain MAP_SHARED (default: both).
    #[arg(long)]
    pub no_sync: bool,
    /// Scenario (repeat for several). Default: seq-sparse and background-writer.
    #[arg(long = "scenario", value_name = "NAME", value_parser = replay::SCENARIOS.to_vec())]
    pub scenarios: Vec<String>,
    /// Stores per run.
    #[arg(long, default_value_t = 8)]
    pub pages: u32,
    /// Also check every N-th state with the kernel's own recovery (a loop mount of a copy);
    /// failing states are always checked so. 0: failing states only.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub oracle: u32,
    /// What the kernel oracle compares: the stores' claims, or the whole recovered view (every
    /// regular file's path, inode, size, merged extents and sha256) as well.
    #[arg(long, value_name = "VIEW", value_parser = ["claims", "whole"], default_value = "claims")]
    pub oracle_view: String,
    /// The soak: for SECONDS in all (shared among the file systems), MAP_SYNC stores while
    /// threads append, fsync, create, rename, truncate and unlink files on a small journal or
    /// log that wraps; many random stops (--random-stops per store, 1-60 ms apart), every state
    /// checked against the kernel's recovery of the whole view (--oracle 1 --oracle-view whole).
    #[arg(long, value_name = "SECONDS", conflicts_with_all = ["scenarios", "no_sync", "recheck"])]
    pub soak: Option<u64>,
    /// The journal (ext4) or log (XFS) size for mkfs, in MiB. Default: mkfs's own; with --soak
    /// 4 (ext4) and 7 (XFS, the smallest mkfs.xfs accepts here), so that they wrap.
    #[arg(long, value_name = "MIB")]
    pub journal_mib: Option<u32>,
    /// Check a kept state folder again (daxray in place and the kernel's recovery of a copy,
    /// claims and whole view) instead of running a campaign. Exit 1 when they disagree.
    #[arg(long, value_name = "DIR")]
    pub recheck: Option<PathBuf>,
    /// Keep failing states here (image, claims, verdicts), for `daxray check`.
    /// Default: a new folder daxray-replay-* in the temporary directory.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    /// Keep every oracle-checked state, not only failing ones.
    #[arg(long)]
    pub keep_all: bool,
    /// Random stops between two stores of the background-writer scenario (and the soak's;
    /// default 3, with --soak 8).
    #[arg(long, value_name = "N")]
    pub random_stops: Option<u32>,
    /// Seed for the workloads and the random stops.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The kernel matrix: a Debian kernel series to run the whole campaign on (repeat for
    /// several, e.g. --kernel-series 6.1 --kernel-series 6.12; each is fetched into the cache
    /// if needed). The report lists every run per kernel and compares the kernels. Default: the
    /// release's linux-image-amd64.
    #[arg(long, value_name = "SERIES", conflicts_with = "kernel")]
    pub kernel_series: Vec<String>,
    /// Run only a part of the campaign: shard I of N (1-based), every N-th run from the I-th,
    /// so that N machines with the same options and seed cover the campaign once between them.
    /// Merge their --json reports with --merge.
    #[arg(long, value_name = "I/N", conflicts_with_all = ["recheck", "merge"])]
    pub shard: Option<replay::Shard>,
    /// Merge the --json reports of a sharded campaign's shards into one report and its verdict
    /// table (nothing is run). The exit code is the merged campaign's.
    #[arg(long, value_name = "REPORT.json", num_args = 1.., conflicts_with_all = ["recheck", "soak"])]
    pub merge: Vec<PathBuf>,
    /// A kernel image (bzImage) to test instead of the cached Debian kernel.
    #[arg(long, value_name = "FILE", requires = "modules")]
    pub kernel: Option<PathBuf>,
    /// The modules folder that goes with --kernel (plain .ko files).
    #[arg(long, value_name = "DIR", requires = "kernel")]
    pub modules: Option<PathBuf>,
    /// Kernel asset cache (default: daxray's cache folder).
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// After the campaign, pack kept states into test fixtures here (per run: the last MAP_SYNC
    /// state the kernel found fully durable, or the last control state where it lost a store).
    #[arg(long, value_name = "DIR", hide = true)]
    pub pack_fixtures: Option<PathBuf>,
}

/// Run `replay`.
pub fn run(a: &Args, g: &Global) -> crate::Result<i32> {
    if let Some(dir) = &a.recheck {
        return recheck(dir, a.pack_fixtures.as_deref(), g);
    }
    if !a.merge.is_empty() {
        return merge(&a.merge, g);
    }
    let soak = a.soak.is_some();
    let fs: Vec<FsChoice> = if a.fs.is_empty() {
        if soak {
            FsChoice::ALL.iter().copied().filter(|f| *f != FsChoice::XfsReflink).collect()
        } else {
            replay::DEFAULT_FS.to_vec()
        }
    } else {
        a.fs.iter().filter_map(|s| FsChoice::parse(s)).collect()
    };
    let sync = match (a.sync || soak, a.no_sync) {
        (true, _) => vec![true],
        (_, true) => vec![false],
        _ => vec![true, false],
    };
    let scenarios: Vec<String> = if soak {
        vec!["soak".into()]
    } else if a.scenarios.is_empty() {
        replay::DEFAULT_SCENARIOS.iter().map(|s| s.to_string()).collect()
    } else {
        a.scenarios.clone()
    };
    if a.pages == 0 {
        return Err(crate::Error::Usage("--pages must be at least 1".into()));
    }
    if a.soak == Some(0) {
        return Err(crate::Error::Usage("--soak needs at least 1 second".into()));
    }
    let series: Vec<Option<&str>> = if a.kernel_series.is_empty() {
        vec![None]
    } else {
        a.kernel_series.iter().map(|s| Some(s.as_str())).collect()
    };
    let kernels = series
        .iter()
        .map(|s| {
            crate::vm::Assets::resolve(a.cache.as_deref(), *s, a.kernel.as_deref(), a.modules.as_deref())
        })
        .collect::<crate::Result<Vec<_>>>()?;
    let assets = kernels[0].clone();
    let keep = match &a.keep {
        Some(k) => k.clone(),
        None => tempfile::Builder::new()
            .prefix("daxray-replay-")
            .tempdir()
            .map_err(|e| crate::Error::io(std::env::temp_dir(), e))?
            .keep(),
    };
    std::fs::create_dir_all(&keep).map_err(|e| crate::Error::io(&keep, e))?;
    let work = tempfile::Builder::new()
        .prefix("daxray-work-")
        .tempdir()
        .map_err(|e| crate::Error::io(std::env::temp_dir(), e))?;
    let mut opts = CampaignOptions::new(assets, keep, work.path().to_path_buf());
    opts.kernels = kernels;
    opts.shard = a.shard;
    opts.fs = fs;
    opts.sync = sync;
    opts.scenarios = scenarios;
    opts.pages = a.pages;
    opts.oracle_every = a.oracle;
    opts.keep_all = a.keep_all || a.pack_fixtures.is_some();
    opts.random_stops = a.random_stops.unwrap_or(3);
    opts.seed = a.seed;
    opts.whole_view = a.oracle_view == "whole";
    opts.journal = a.journal_mib.map_or(replay::JournalSize::Default, replay::JournalSize::Mib);
    if let Some(secs) = a.soak {
        opts.oracle_every = 1;
        opts.whole_view = true;
        opts.random_stops = a.random_stops.unwrap_or(8);
        opts.stop_gap_ms = (1, 60);
        // Enough stores never to run out before the deadline.
        opts.pages = a.pages.max(1 << 16);
        opts.run_seconds = Some((secs / opts.fs.len() as u64).max(1));
        if a.journal_mib.is_none() {
            opts.journal = replay::JournalSize::Small;
        }
    }
    // One guest at a time on this machine (two TCG guests slow each other down by half).
    let _lock = crate::vm::exclusive_lock()?;
    let mut bar = Bar::new(&opts, g.json);
    let report = replay::run_campaign(&opts, &mut bar);
    bar.finish();
    // A default keep folder that ended up empty is removed (remove_dir fails when it is not).
    let mut report = report;
    if a.keep.is_none() && std::fs::remove_dir(&opts.keep).is_ok() {
        report.keep_dir = String::new();
    }
    let report = report;
    if let Some(dir) = &a.pack_fixtures {
        let n = replay::fixtures::pack_from_report(&report, dir)?;
        eprintln!("daxray replay: packed {n} fixture(s) into {}", dir.display());
    }
    print_report(&report, g)
}

/// Print a campaign's report (JSON or the verdict table) and return its exit code.
fn print_report(report: &CampaignReport, g: &Global) -> crate::Result<i32> {
    let code = report.exit_code();
    if g.json {
        let mut v = serde_json::to_value(report).map_err(|e| crate::Error::External(format!("JSON: {e}")))?;
        v["silent_controls"] = serde_json::json!(
            report.silent_controls().iter().map(|r| format!("{} {}", r.fs, r.scenario)).collect::<Vec<_>>()
        );
        v["exit_code"] = code.into();
        output::print_json(&v)?;
    } else {
        output::write_stdout(super::replay_table::render(report).as_bytes())?;
    }
    Ok(code)
}

/// One progress bar for the whole campaign, in states, with states/s and the time left (on a
/// terminal); else a line per run on stderr (unless the output is JSON).
struct Bar {
    bar: indicatif::ProgressBar,
    quiet: bool,
    total_runs: usize,
    /// States checked by the runs already done.
    done_states: u64,
    /// States expected of each run not yet done (for the bar's length).
    expected: Vec<u64>,
    current: String,
}

impl Bar {
    fn new(opts: &CampaignOptions, json: bool) -> Bar {
        let mut specs = replay::plan(opts);
        specs.sort_by_key(|r| r.index);
        let expected: Vec<u64> = specs.iter().map(|r| replay::expected_states(opts, &r.scenario)).collect();
        let total: u64 = expected.iter().sum();
        let bar = if std::io::stderr().is_terminal() && opts.run_seconds.is_some() {
            // A timed run (the soak) has no known number of states: states and states/s only.
            let b = indicatif::ProgressBar::new_spinner();
            if let Ok(st) =
                indicatif::ProgressStyle::with_template("{elapsed_precise} {pos} states {per_sec}  {msg}")
            {
                b.set_style(st);
            }
            b
        } else if std::io::stderr().is_terminal() {
            let b = indicatif::ProgressBar::new(total);
            if let Ok(st) = indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} states {per_sec} ETA {eta}  {msg}",
            ) {
                b.set_style(st.progress_chars("=> "));
            }
            b
        } else {
            indicatif::ProgressBar::hidden()
        };
        let quiet = json || !bar.is_hidden();
        Bar { bar, quiet, total_runs: specs.len(), done_states: 0, expected, current: String::new() }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl replay::Progress for Bar {
    fn run_start(&mut self, i: usize, name: &str) {
        self.current = name.to_string();
        self.bar.set_message(format!("run {}/{}: {name}: starting", i + 1, self.total_runs));
        if !self.quiet {
            eprintln!("daxray replay: run {}/{}: {name}", i + 1, self.total_runs);
        }
    }

    fn state(&mut self, r: &RunReport) {
        self.bar.set_position(self.done_states + r.states_checked);
        self.bar.set_message(format!(
            "{}: {} states, {} violations",
            self.current, r.states_checked, r.violations
        ));
    }

    fn run_done(&mut self, r: &RunReport) {
        // The bar's length follows what the runs really checked (a failed run checks fewer).
        let expected = self.expected.get(r.run).copied().unwrap_or(0);
        self.done_states += r.states_checked;
        if let Some(len) = self.bar.length() {
            self.bar.set_length((len + r.states_checked).saturating_sub(expected));
        }
        self.bar.set_position(self.done_states);
        if let Some(e) = &r.error {
            self.bar.suspend(|| eprintln!("daxray replay: {} {} {} failed: {e}", r.fs, r.mode(), r.scenario));
        }
    }
}

/// `replay --merge A.json B.json ...`: the shards' reports as one.
fn merge(files: &[PathBuf], g: &Global) -> crate::Result<i32> {
    let mut parts = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| crate::Error::io(f, e))?;
        let r: CampaignReport = serde_json::from_str(&text).map_err(|e| {
            crate::Error::Usage(format!("{}: not a daxray replay --json report: {e}", f.display()))
        })?;
        parts.push(r);
    }
    let merged = replay::report::merge(parts).map_err(crate::Error::Usage)?;
    print_report(&merged, g)
}

/// `replay --recheck DIR`: a kept state checked again, in place and by the kernel.
fn recheck(dir: &std::path::Path, pack: Option<&std::path::Path>, g: &Global) -> crate::Result<i32> {
    let scratch = tempfile::Builder::new()
        .prefix("daxray-recheck-")
        .tempdir()
        .map_err(|e| crate::Error::io(std::env::temp_dir(), e))?;
    let r = replay::state::recheck(dir, scratch.path())?;
    let code = if r.agrees() { 0 } else { 1 };
    let truth = match (&r.kernel.refused, r.kernel.manifest.as_ref()) {
        (Some(why), _) => Some(replay::fixtures::KernelTruth::Refused(why)),
        (None, Some(k)) => Some(replay::fixtures::KernelTruth::Mounted(&k.entries, &k.errors)),
        (None, None) => None,
    };
    if let (Some(root), Some(k)) = (pack, truth) {
        let name =
            dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "state".into());
        let run = dir.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
        let name = run.map_or(name.clone(), |r| format!("{r}-{name}"));
        let out = replay::fixtures::pack_rechecked(dir, root, &name, k)?;
        eprintln!("daxray replay: packed {} as a fixture", out.display());
    }
    let whole = r.whole.as_ref().map(replay::state::WholeView::describe);
    let refusal = |x: &Option<String>, yes: &str, no: &str| {
        x.as_deref().map_or(no.to_string(), |r| format!("{yes}: {r}"))
    };
    let ours_mount = refusal(&r.ours.refused, "the mount fails", "recovers the view");
    let kernel_mount = refusal(&r.kernel.refused, "refuses to mount the copy", "mounts the copy");
    if g.json {
        let claims: Vec<serde_json::Value> = r
            .claims
            .iter()
            .zip(&r.ours.verdicts)
            .zip(&r.kernel.durable)
            .map(|((c, v), k)| {
                serde_json::json!({"path": c.path, "offset": c.offset, "len": c.len,
                    "daxray": v.verdict.to_string(), "kernel_durable": k})
            })
            .collect();
        output::print_json(&serde_json::json!({
            "state": dir.display().to_string(),
            "agrees": r.agrees(),
            "claims": claims,
            "claim_disagreements": r.disagree.len(),
            "whole_view": whole,
            "head_in_flight": r.ours.in_flight,
            "daxray_refused": r.ours.refused,
            "kernel_refused": r.kernel.refused,
            "exit_code": code,
        }))?;
        return Ok(code);
    }
    let mut s = format!("state {}\n", dir.display());
    if let Some(f) = &r.ours.in_flight {
        s.push_str(&format!("write in flight at the head: {f}\n"));
    }
    s.push_str(&format!("daxray: {ours_mount}\nthe kernel: {kernel_mount}\n"));
    s.push_str(&format!(
        "claims: {} checked, {} where daxray and the kernel's recovery disagree\n",
        r.claims.len(),
        r.disagree.len()
    ));
    for &i in &r.disagree {
        if let (Some(v), Some(k)) = (r.ours.verdicts.get(i), r.kernel.durable.get(i)) {
            s.push_str(&replay::state::disagreement_line(v, *k));
        }
    }
    s.push_str(&format!("whole view: {}\n", whole.as_deref().unwrap_or("not compared")));
    s.push_str(if code == 0 { "AGREE\n" } else { "DISAGREE\n" });
    output::write_stdout(s.as_bytes())?;
    Ok(code)
}
