//! One run of a campaign on a booted guest: the job's stores, a frozen state checked in place
//! after each one (and at random stops), the kernel's recovery of a copy for the sampled and
//! failing states, and the states kept.

use super::checker::RunCtx;
use super::report::{RunReport, Timing};
use super::{CampaignOptions, Progress, job_for};
use crate::agent::proto::{FaultSize, FsChoice, GuestMsg, HostMsg, Job, ProbeReport, Store, TraceCounts};
use crate::check::Claim;
use crate::error::{Error, Result};
use crate::vm::{Vm, VmConfig};
use rand::{RngExt, SeedableRng};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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

/// One run of a campaign: its place in the campaign's order ([`super::plan`]), the kernel (an
/// index into [`CampaignOptions::kernels`]), the file system, the mode and the scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    /// Place in the whole campaign's order (shards keep the unsharded numbers).
    pub index: usize,
    /// Index into the campaign's kernels.
    pub kernel: usize,
    /// File system.
    pub fs: FsChoice,
    /// MAP_SYNC (true) or the control.
    pub sync: bool,
    /// Scenario.
    pub scenario: String,
}

impl RunSpec {
    /// The guest's job for this run.
    pub fn job(&self, opts: &CampaignOptions) -> Job {
        Job {
            journal_mib: opts.journal.mib(self.fs),
            ..job_for(self.fs, self.sync, &self.scenario, opts.pages, opts.seed)
        }
    }

    /// `ext4 MAP_SYNC seq-sparse` (with the kernel when the campaign has several).
    pub fn name(&self, opts: &CampaignOptions) -> String {
        let mode = if self.sync { "MAP_SYNC" } else { "control" };
        let k = if opts.kernels.len() > 1 {
            format!("{} ", opts.kernels.get(self.kernel).map_or("?", |k| k.version.as_str()))
        } else {
            String::new()
        };
        format!("{k}{} {mode} {}", self.fs.name(), self.scenario)
    }

    /// The folder name of the run: `ext4-sync-seq-sparse`, prefixed by the kernel in a matrix.
    fn dir_name(&self, opts: &CampaignOptions) -> String {
        let base =
            format!("{}-{}-{}", self.fs.name(), if self.sync { "sync" } else { "nosync" }, self.scenario);
        match opts.kernels.get(self.kernel) {
            Some(k) if opts.kernels.len() > 1 => format!("{}-{base}", k.version),
            _ => base,
        }
    }
}

/// A booted guest that serves one run after another.
pub struct Guest {
    vm: Vm,
    /// The kernel index and namespace alignment it was booted with.
    key: (usize, u64),
    /// Console bytes up to the end of the first run's setup (the boot itself).
    boot_console: u64,
}

/// The image size of a campaign's boots: large enough for every file system it formats.
fn image_size(opts: &CampaignOptions) -> u64 {
    opts.fs.iter().map(|f| f.default_image_size()).max().unwrap_or(256 << 20)
}

/// Power a guest off after its last run.
pub fn shut_down(g: Guest, timing: &mut Timing) {
    count_formats(&g, timing);
    let t = Instant::now();
    let _ = g.vm.finish(Duration::from_secs(120));
    timing.shutdown_s += t.elapsed().as_secs_f64();
}

/// Add a guest's mkfs runs and restored file systems to the campaign's timing, as it goes.
fn count_formats(g: &Guest, timing: &mut Timing) {
    let (made, restored) = g.vm.format_counts();
    timing.mkfs += made;
    timing.restored += restored;
}

/// Make one run on `guest` (booting one first, or a new one when the kernel or the namespace
/// alignment changes, or when the last run broke the guest). `progress.state` is called after
/// each checked state.
pub fn run_one(
    opts: &CampaignOptions,
    spec: &RunSpec,
    guest: &mut Option<Guest>,
    timing: &mut Timing,
    probes: &mut Vec<ProbeReport>,
    progress: &mut dyn Progress,
) -> RunReport {
    let t = Instant::now();
    let name = spec.dir_name(opts);
    let kernel = opts.kernels.get(spec.kernel).map(|k| k.version.clone()).unwrap_or_default();
    let report = RunReport {
        run: spec.index,
        fs: spec.fs.name().into(),
        sync: spec.sync,
        scenario: spec.scenario.clone(),
        kernel,
        ..RunReport::default()
    };
    let mut ctx = RunCtx::new(opts, spec.job(opts), report, opts.work.join(&name), opts.keep.join(&name));
    let mut console = None;
    let mut r = drive(&mut ctx, spec, guest, timing, &mut console, probes, progress);
    if r.is_ok() {
        // The oracle's last states, compared while the next run sets up would race its keeping.
        r = ctx.collect(timing, true);
    }
    ctx.stop_oracle();
    let mut rep = std::mem::take(&mut ctx.report);
    if let Err(e) = r {
        rep.error = Some(e.to_string());
        // The guest may be broken (a failed run usually killed QEMU): the next run boots anew.
        if let Some(g) = guest.take() {
            count_formats(&g, timing);
        }
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
    // Keep this run's part of the console when states were kept or the run failed.
    if (!rep.kept.is_empty() || rep.error.is_some())
        && let Some((log, boot, from)) = console
    {
        let _ = std::fs::create_dir_all(&ctx.keep_dir);
        let dst = ctx.keep_dir.join("console.log");
        if keep_console(&log, boot, from, &dst).is_ok() {
            rep.console_log = Some(dst.display().to_string());
        }
    }
    let _ = std::fs::remove_dir_all(&ctx.run_dir);
    rep.seconds = t.elapsed().as_secs_f64();
    rep
}

/// Write one run's console: the boot's part (up to the end of its first run's setup), then the
/// run's own part from byte `from` of the boot's log, when the run was not the boot's first.
fn keep_console(log: &Path, boot: u64, from: u64, dst: &Path) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::File::open(log)?;
    let len = f.metadata()?.len();
    let mut out = std::fs::File::create(dst)?;
    let cap = crate::vm::CONSOLE_KEEP;
    if from > boot {
        let mut head = Vec::new();
        Read::by_ref(&mut f).take(boot.min(cap)).read_to_end(&mut head)?;
        out.write_all(&head)?;
        writeln!(out, "\n[daxray: this boot's console from byte {from}, where this run began]")?;
    }
    let start = if from > boot { from } else { 0 };
    let start = start.max(len.saturating_sub(cap)).min(len);
    f.seek(SeekFrom::Start(start))?;
    std::io::copy(&mut Read::by_ref(&mut f).take(len - start), &mut out)?;
    Ok(())
}

/// The console log, the boot's part and where this run began, for [`keep_console`].
type ConsolePart = Option<(PathBuf, u64, u64)>;

fn drive(
    ctx: &mut RunCtx<'_>,
    spec: &RunSpec,
    guest: &mut Option<Guest>,
    timing: &mut Timing,
    console: &mut ConsolePart,
    probes: &mut Vec<ProbeReport>,
    progress: &mut dyn Progress,
) -> Result<()> {
    let opts = ctx.opts;
    std::fs::create_dir_all(&ctx.run_dir).map_err(|e| Error::io(&ctx.run_dir, e))?;
    let key = (spec.kernel, ctx.job.namespace_align);
    if guest.as_ref().is_some_and(|g| g.key != key)
        && let Some(g) = guest.take()
    {
        shut_down(g, timing);
    }
    let t_setup = Instant::now();
    let g = match guest {
        Some(g) => {
            let from = g.vm.console_len();
            *console = Some((g.vm.console_log().to_path_buf(), g.boot_console, from));
            g.vm.next_job(&ctx.job)?;
            timing.setup_s += t_setup.elapsed().as_secs_f64();
            g
        }
        None => {
            let assets = opts
                .kernels
                .get(spec.kernel)
                .ok_or_else(|| Error::Usage(format!("no kernel number {}", spec.kernel)))?;
            let boot_dir = opts.work.join(format!("boot-{}-{}", spec.kernel, ctx.job.namespace_align));
            let mut cfg = VmConfig::new(assets.clone(), &boot_dir, ctx.job.fs);
            cfg.image_size = image_size(opts);
            *console = Some((cfg.console_log.clone(), 0, 0));
            let vm = Vm::boot(&cfg, &ctx.job)?;
            timing.boots += 1;
            timing.boot_s += t_setup.elapsed().as_secs_f64();
            let boot_console = vm.console_len();
            *console = Some((cfg.console_log.clone(), boot_console, 0));
            guest.insert(Guest { vm, key, boot_console })
        }
    };
    let vm = &mut g.vm;
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
        let t_guest = Instant::now();
        let msg = vm.recv(timeout);
        timing.guest_s += t_guest.elapsed().as_secs_f64();
        match msg? {
            GuestMsg::Probe(p) => {
                ctx.report.map_sync_works = Some(p.map_sync_works);
                // One probe per kernel: what the MAP_SYNC flags do is the kernel's.
                if !probes.iter().any(|q| q.kernel == p.kernel) {
                    probes.push(p);
                }
            }
            GuestMsg::Store(s) => {
                ctx.report.faults += 1;
                let seq = s.seq;
                add_claim(&mut claims, claim_of(&s));
                ctx.paused(vm, timing, &image, dataoff, &claims, format!("store {seq}"), false)?;
                progress.state(&ctx.report);
                // The background writer keeps appending and fsyncing while the agent waits for
                // Go: stop at random instants there too (before Go, so that the last store's
                // stops cannot race the guest's power-off).
                if background {
                    for _ in 0..opts.random_stops {
                        let t_gap = Instant::now();
                        std::thread::sleep(Duration::from_millis(rng.random_range(gap_lo..gap_hi)));
                        timing.gaps_s += t_gap.elapsed().as_secs_f64();
                        let at = format!("random stop after store {seq}");
                        ctx.paused(vm, timing, &image, dataoff, &claims, at, true)?;
                        progress.state(&ctx.report);
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
