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
use crate::replay::{self, CampaignOptions, CampaignReport};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Arguments of `replay`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// File system (repeat for several): ext4, ext4-nojournal, ext4-fc (fast commits), xfs.
    /// Default: ext4, ext4-nojournal and xfs (with --soak: all four).
    #[arg(long = "fs", value_name = "FS", value_parser = ["ext4", "ext4-nojournal", "ext4-fc", "xfs"])]
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
    let soak = a.soak.is_some();
    let fs: Vec<FsChoice> = if a.fs.is_empty() {
        if soak { FsChoice::ALL.to_vec() } else { replay::DEFAULT_FS.to_vec() }
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
    let mut opts = CampaignOptions::new(assets, keep, work.path().to_path_buf());
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
        "{:<15} {:<8} {:<20} {:>6} {:>6} {:>6} {:>9} {:>9} {:>8} {:>9} {:>9} {:>9} {:>7}\n",
        "fs",
        "mode",
        "scenario",
        "faults",
        "states",
        "random",
        "in-flight",
        "violation",
        "NEEDDSYNC",
        "oracle",
        "check ms",
        "oracle ms",
        "time s"
    );
    for x in &r.runs {
        s.push_str(&format!(
            "{:<15} {:<8} {:<20} {:>6} {:>6} {:>6} {:>9} {:>9} {:>8} {:>9} {:>9.1} {:>9.1} {:>7.1}{}\n",
            x.fs,
            x.mode(),
            x.scenario,
            x.faults,
            x.states_checked,
            x.random_states,
            x.in_flight_states,
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
        if x.error.is_none() && x.scenario == "pmd-sparse" {
            s.push_str(&format!(
                "  PMD faults {} (NEEDDSYNC {}), fallbacks to PTE {}\n",
                x.pmd_faults, x.pmd_needdsync_faults, x.pmd_fallbacks
            ));
        }
        for why in &x.pmd_refused {
            s.push_str(&format!("  no PMD fault: {why}\n"));
        }
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
    let whole: u64 = r.runs.iter().map(|x| x.whole_checked).sum();
    let files: u64 = r.runs.iter().map(|x| x.files_compared).sum();
    let in_flight: u64 = r.runs.iter().map(|x| x.in_flight_states).sum();
    let by_recovery: u64 = r.runs.iter().map(|x| x.lost_by_recovery_states).sum();
    let refused: u64 = r.runs.iter().map(|x| x.mount_refused_states).sum();
    s.push_str(&format!(
        "\n{runs} runs, {states} states checked in {:.0} s: MAP_SYNC violations {sync_v}, control violations {ctl_v}; \
         kernel oracle agreed on {oa}/{oc} states ({od} disagreements); in-place check {check_ms:.1} ms/state vs kernel oracle {oracle_ms:.1} ms/state ({:.0}x){}\n",
        r.seconds,
        if check_ms > 0.0 { oracle_ms / check_ms } else { 0.0 },
        if errors > 0 { format!("; {errors} run(s) did not finish") } else { String::new() }
    ));
    let mut parts =
        vec![format!("a journal or log write was in flight at the head in {in_flight} of {states} states")];
    if whole > 0 {
        parts.push(format!(
            "whole recovered view compared with the kernel's on {whole} states ({files} files)"
        ));
    }
    if by_recovery > 0 {
        parts.push(format!("lost only by the kernel's recovery (torn log sector): {by_recovery} states"));
    }
    if refused > 0 {
        parts.push(format!("the kernel refuses to mount: {refused} states"));
    }
    s.push_str(&(parts.join("; ") + "\n"));
    for x in r.runs.iter().filter(|x| x.mount_refused_states > 0) {
        s.push_str(&format!(
            "WARNING: {} {} {}: the kernel refuses to mount {} crash state(s): its journal or log recovery fails (kept, with the kernel's log)\n",
            x.fs,
            x.mode(),
            x.scenario,
            x.mount_refused_states
        ));
    }
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
        s.push_str(&format!(
            "{kept} state(s) kept under {} (re-check one with daxray replay --recheck DIR, or daxray check DIR/image.img --claims DIR/claims.jsonl)\n",
            r.keep_dir
        ));
    }
    s
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
