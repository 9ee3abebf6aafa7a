//! The text report of a campaign: the verdict table, the summary, where the time went, and with
//! several kernels the matrix that sets their verdicts side by side.

use crate::replay::{CampaignReport, RunReport};

/// The verdict table and the summary.
pub fn render(r: &CampaignReport) -> String {
    let matrix = r.kernels.len() > 1;
    let mut s = String::new();
    if matrix {
        s.push_str(&format!("{:<22} ", "kernel"));
    }
    s.push_str(&format!(
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
    ));
    for x in &r.runs {
        if matrix {
            s.push_str(&format!("{:<22} ", x.kernel));
        }
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
    for x in r.runs.iter().filter(|x| x.sync && x.error.is_none() && x.violations > 0) {
        s.push_str(&format!(
            "MAP_SYNC VIOLATION: {} {} {}{}: {} of {} states lost a visible store ({} NEEDDSYNC faults); the kernel's own recovery agreed on {}/{} (kept under {})\n",
            x.fs,
            x.mode(),
            x.scenario,
            if r.kernels.len() > 1 { format!(" on {}", x.kernel) } else { String::new() },
            x.violations,
            x.states_checked,
            x.needdsync_faults,
            x.oracle_agree,
            x.oracle_checked,
            r.keep_dir
        ));
    }
    for c in r.silent_controls() {
        s.push_str(&format!(
            "WARNING: the control run {} {} showed NO violation: the checker could not see a lost mapping there\n",
            c.fs, c.scenario
        ));
    }
    let by_design: Vec<String> = r
        .runs
        .iter()
        .filter(|x| !x.sync && x.error.is_none() && !crate::agent::scenario::control_can_lose(&x.scenario))
        .map(|x| format!("{} {}", x.fs, x.scenario))
        .collect();
    if !by_design.is_empty() {
        s.push_str(&format!(
            "controls that cannot lose a store by design (blocks written before the mapping, or msync after each store): {}\n",
            by_design.join(", ")
        ));
    }
    let probes: Vec<_> =
        if r.probes.is_empty() { r.probe.iter().collect() } else { r.probes.iter().collect() };
    for p in probes {
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
    s.push_str(&timing_line(r));
    if matrix {
        s.push_str(&matrix_table(r));
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

/// Where the wall time went, and the states per second.
fn timing_line(r: &CampaignReport) -> String {
    let t = &r.timing;
    format!(
        "time: {} boot(s) {:.1} s, later runs' setup {:.1} s ({} mkfs, {} file systems put back), guest running {:.1} s, frozen {:.1} s \
         (in-place checks {:.1} s), random-stop waits {:.1} s, kernel oracle {:.1} s on its own thread \
         (waited for {:.1} s), power-off {:.1} s; {} states in {:.0} s: {:.1} states/s\n",
        t.boots,
        t.boot_s,
        t.setup_s,
        t.mkfs,
        t.restored,
        t.guest_s,
        t.paused_s,
        t.check_s,
        t.gaps_s,
        t.oracle_s,
        t.oracle_wait_s,
        t.shutdown_s,
        t.states,
        r.seconds,
        t.states_per_second
    )
}

/// One run's cell in the kernel matrix: verdict, violations, NEEDDSYNC faults, PMD faults,
/// oracle agreement.
fn cell(x: &RunReport) -> String {
    if let Some(e) = &x.error {
        let first: String = e.lines().next().unwrap_or("").chars().take(40).collect();
        return format!("ERROR {first}");
    }
    let verdict = if x.fails() { "FAIL" } else { "ok" };
    format!(
        "{verdict} v{} nd{} pmd{} o{}/{}",
        x.violations, x.needdsync_faults, x.pmd_faults, x.oracle_agree, x.oracle_checked
    )
}

/// The kernel matrix: one line per file system, mode and scenario, one cell per kernel, and the
/// lines where the kernels differ in verdict, NEEDDSYNC or PMD faults, or in whether a control
/// run showed violations.
fn matrix_table(r: &CampaignReport) -> String {
    let mut s = String::from(
        "\nkernel matrix (v: states with a lost store, nd: NEEDDSYNC faults, pmd: PMD faults, o: oracle agreed/checked)\n",
    );
    s.push_str(&format!("{:<15} {:<8} {:<20}", "fs", "mode", "scenario"));
    for k in &r.kernels {
        s.push_str(&format!(" {k:<34}"));
    }
    s.truncate(s.trim_end().len());
    s.push('\n');
    let mut keys: Vec<(String, bool, String)> = Vec::new();
    for x in &r.runs {
        let k = (x.fs.clone(), x.sync, x.scenario.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let mut differ = Vec::new();
    for (fs, sync, sc) in &keys {
        let mode = if *sync { "MAP_SYNC" } else { "control" };
        s.push_str(&format!("{fs:<15} {mode:<8} {sc:<20}"));
        let mut seen: Vec<(bool, bool, u64, u64, bool)> = Vec::new();
        for k in &r.kernels {
            let run =
                r.runs.iter().find(|x| &x.kernel == k && &x.fs == fs && x.sync == *sync && &x.scenario == sc);
            match run {
                Some(x) => {
                    s.push_str(&format!(" {:<34}", cell(x)));
                    seen.push((
                        x.error.is_some(),
                        x.fails(),
                        x.needdsync_faults,
                        x.pmd_faults,
                        x.violations > 0,
                    ));
                }
                None => s.push_str(&format!(" {:<34}", "-")),
            }
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        if seen.windows(2).any(|w| w[0] != w[1]) {
            differ.push(format!("{fs} {mode} {sc}"));
        }
    }
    if differ.is_empty() {
        s.push_str("the kernels agree on every run (verdict, NEEDDSYNC and PMD fault counts, control violations seen)\n");
    } else {
        s.push_str(&format!("the kernels differ on: {}\n", differ.join("; ")));
    }
    s
}
