//! `daxray replay`: the MAP_SYNC fault-replay campaign on a real kernel under QEMU.
//!
//! With no arguments it runs the default campaign: ext4, ext4 without a journal and XFS, each
//! with and without MAP_SYNC, the scenarios `seq-sparse` and `background-writer`, 8 stores each.
//!
//! JSON output (`--json`): `{"runs":[{"fs","sync","scenario","kernel","faults","states_checked",
//! "random_states","violations","lost_claims","claims_checked","needdsync_faults","pte_faults",
//! "pmd_faults","insert_pfn_mkwrite","oracle_checked","oracle_agree","oracle_disagree",
//! "check_ms_per_state","oracle_ms_per_state","oracle_to_check_ratio","map_sync_works","dataoff",
//! "kept":[dirs],"console_log"?,"seconds","error"?}],"probe":{...},"keep_dir","seconds",
//! "silent_controls":[...],"exit_code"}`.
//!
//! Exit code: 1 when a MAP_SYNC run lost a store or daxray disagreed with the kernel's own
//! recovery; 2 when a run could not finish; else 0.

use super::{Global, output};
use crate::agent::proto::FsChoice;
use crate::replay::{self, CampaignOptions, CampaignReport};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Arguments of `replay`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// File system (repeat for several): ext4, ext4-nojournal, xfs. Default: all three.
    #[arg(long = "fs", value_name = "FS", value_parser = ["ext4", "ext4-nojournal", "xfs"])]
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
    /// Keep failing states here (image, claims, verdicts), for `daxray check`.
    /// Default: a new folder daxray-replay-* in the temporary directory.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    /// Keep every oracle-checked state, not only failing ones.
    #[arg(long)]
    pub keep_all: bool,
    /// Random stops between two stores of the background-writer scenario.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub random_stops: u32,
    /// Seed for the workloads and the random stops.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
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
    let fs: Vec<FsChoice> = if a.fs.is_empty() {
        replay::DEFAULT_FS.to_vec()
    } else {
        a.fs.iter().filter_map(|s| FsChoice::parse(s)).collect()
    };
    let sync = match (a.sync, a.no_sync) {
        (true, _) => vec![true],
        (_, true) => vec![false],
        _ => vec![true, false],
    };
    let scenarios: Vec<String> = if a.scenarios.is_empty() {
        replay::DEFAULT_SCENARIOS.iter().map(|s| s.to_string()).collect()
    } else {
        a.scenarios.clone()
    };
    if a.pages == 0 {
        return Err(crate::Error::Usage("--pages must be at least 1".into()));
    }
    let assets = crate::vm::Assets::resolve(a.cache.as_deref(), a.kernel.as_deref(), a.modules.as_deref())?;
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
    let opts = CampaignOptions {
        fs,
        sync,
        scenarios,
        pages: a.pages,
        oracle_every: a.oracle,
        keep,
        keep_all: a.keep_all || a.pack_fixtures.is_some(),
        random_stops: a.random_stops,
        seed: a.seed,
        assets,
        work: work.path().to_path_buf(),
    };
    // One guest at a time on this machine (two TCG guests slow each other down by half).
    let _lock = crate::vm::exclusive_lock()?;
    let total = replay::run_count(&opts);
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(total as u64);
        if let Ok(st) =
            indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} runs  {msg}")
        {
            b.set_style(st.progress_chars("=> "));
        }
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let quiet = g.json || !bar.is_hidden();
    let mut current = String::new();
    let report = replay::run_campaign(
        &opts,
        &mut |i, name| {
            current = name.to_string();
            bar.set_message(format!("{name}: booting"));
            if !quiet {
                eprintln!("daxray replay: run {}/{total}: {name}", i + 1);
            }
        },
        &mut |r| {
            bar.set_message(format!(
                "{} {} {}: {} states, {} violations",
                r.fs,
                r.mode(),
                r.scenario,
                r.states_checked,
                r.violations
            ))
        },
        &mut |r| {
            bar.inc(1);
            if let Some(e) = &r.error {
                bar.suspend(|| eprintln!("daxray replay: {} {} {} failed: {e}", r.fs, r.mode(), r.scenario));
            }
        },
    );
    bar.finish_and_clear();
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
    let code = report.exit_code();
    if g.json {
        let mut v =
            serde_json::to_value(&report).map_err(|e| crate::Error::External(format!("JSON: {e}")))?;
        v["silent_controls"] = serde_json::json!(
            report.silent_controls().iter().map(|r| format!("{} {}", r.fs, r.scenario)).collect::<Vec<_>>()
        );
        v["exit_code"] = code.into();
        output::print_json(&v)?;
    } else {
        output::write_stdout(render(&report).as_bytes())?;
    }
    Ok(code)
}

/// The verdict table and the summary.
pub fn render(r: &CampaignReport) -> String {
    let mut s = format!(
        "{:<15} {:<8} {:<20} {:>6} {:>6} {:>6} {:>9} {:>8} {:>9} {:>9} {:>9} {:>7}\n",
        "fs",
        "mode",
        "scenario",
        "faults",
        "states",
        "random",
        "violation",
        "NEEDDSYNC",
        "oracle",
        "check ms",
        "oracle ms",
        "time s"
    );
    for x in &r.runs {
        s.push_str(&format!(
            "{:<15} {:<8} {:<20} {:>6} {:>6} {:>6} {:>9} {:>8} {:>9} {:>9.1} {:>9.1} {:>7.1}{}\n",
            x.fs,
            x.mode(),
            x.scenario,
            x.faults,
            x.states_checked,
            x.random_states,
            x.violations,
            x.needdsync_faults,
            format!("{}/{}", x.oracle_agree, x.oracle_checked),
            x.check_ms_per_state,
            x.oracle_ms_per_state,
            x.seconds,
            match (&x.error, x.fails(), &x.first_check_error) {
                (Some(e), _, _) => format!("  ERROR: {}", e.lines().next().unwrap_or("")),
                (None, true, _) => "  FAIL".to_string(),
                (None, false, Some(e)) => format!(
                    "  {} state(s) daxray could not check: {}",
                    x.check_errors,
                    e.lines().next().unwrap_or("")
                ),
                _ => String::new(),
            }
        ));
    }
    let runs = r.runs.len();
    let sync_v: u64 = r.runs.iter().filter(|x| x.sync).map(|x| x.violations).sum();
    let ctl_v: u64 = r.runs.iter().filter(|x| !x.sync).map(|x| x.violations).sum();
    let states: u64 = r.runs.iter().map(|x| x.states_checked).sum();
    let oc: u64 = r.runs.iter().map(|x| x.oracle_checked).sum();
    let oa: u64 = r.runs.iter().map(|x| x.oracle_agree).sum();
    let od: u64 = r.runs.iter().map(|x| x.oracle_disagree).sum();
    let check_ms: f64 = r.runs.iter().map(|x| x.check_ms_per_state * x.states_checked as f64).sum::<f64>()
        / states.max(1) as f64;
    let oracle_ms: f64 = r.runs.iter().map(|x| x.oracle_ms_per_state * x.oracle_checked as f64).sum::<f64>()
        / oc.max(1) as f64;
    let errors = r.runs.iter().filter(|x| x.error.is_some()).count();
    s.push_str(&format!(
        "\n{runs} runs, {states} states checked in {:.0} s: MAP_SYNC violations {sync_v}, control violations {ctl_v}; \
         kernel oracle agreed on {oa}/{oc} states ({od} disagreements); in-place check {check_ms:.1} ms/state vs kernel oracle {oracle_ms:.1} ms/state ({:.0}x){}\n",
        r.seconds,
        if check_ms > 0.0 { oracle_ms / check_ms } else { 0.0 },
        if errors > 0 { format!("; {errors} run(s) did not finish") } else { String::new() }
    ));
    for c in r.silent_controls() {
        s.push_str(&format!(
            "WARNING: the control run {} {} showed NO violation: the checker could not see a lost mapping there\n",
            c.fs, c.scenario
        ));
    }
    if let Some(p) = &r.probe {
        let failed: Vec<&str> = p.checks.iter().filter(|c| !c.1).map(|c| c.0.as_str()).collect();
        s.push_str(&format!(
            "probe ({}): MAP_SYNC works: {}; {} of {} expectations of the MAP_SYNC series held{}\n",
            p.kernel,
            p.map_sync_works,
            p.checks.len() - failed.len(),
            p.checks.len(),
            if failed.is_empty() { String::new() } else { format!(" (not: {})", failed.join("; ")) }
        ));
    }
    let kept: usize = r.runs.iter().map(|x| x.kept.len()).sum();
    if kept > 0 {
        s.push_str(&format!("{kept} state(s) kept under {} (re-check with daxray check DIR/image.img --claims DIR/claims.jsonl)\n", r.keep_dir));
    }
    s
}
