//! The check of one frozen state: daxray's in place while the guest is frozen, and for the
//! sampled, failing and unusual states the kernel's recovery of a compact copy taken then. The
//! kernel oracle (loop mount, recovery, read back, unmount) runs on a second thread while the
//! guest goes on, and its verdicts are compared in the order the states were taken.

use super::CampaignOptions;
use super::report::{RunReport, Timing};
use super::state::{
    self, InPlace, KeptState, WholeView, check_in_place, disagreements, keep_state, keep_views,
};
use crate::agent::proto::Job;
use crate::check::{Claim, Verdict};
use crate::error::{Error, Result};
use crate::oracle::{KernelVerdicts, copy_compact, kernel_check_copy, kernel_log};
use crate::vm::Vm;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

/// Oracle states taken but not yet compared, at most: a state beyond waits for the oldest.
const MAX_PENDING: usize = 4;

/// A state the kernel oracle is to look at: daxray's side of it and the copy to mount.
pub(super) struct Pending {
    n: u64,
    at: String,
    dataoff: u64,
    claims: Vec<Claim>,
    verdicts: Vec<Verdict>,
    ours: Option<InPlace>,
    check_error: Option<String>,
    failing: bool,
    torn: bool,
    in_flight: Option<String>,
    ours_refused: Option<String>,
    whole: bool,
    copy: PathBuf,
}

/// What the oracle thread is given: the copy, where its file system starts, its type, the
/// claims, and whether to list the whole view.
type OracleJob = (PathBuf, u64, &'static str, Vec<Claim>, bool);
/// What it answers: the kernel's verdicts and its log lines about the loop device.
type OracleAnswer = Result<(KernelVerdicts, Vec<String>)>;

/// The kernel oracle's thread and the states waiting for it.
struct OracleQueue {
    tx: Option<mpsc::Sender<OracleJob>>,
    rx: mpsc::Receiver<OracleAnswer>,
    handle: Option<std::thread::JoinHandle<()>>,
    pending: VecDeque<Pending>,
}

impl OracleQueue {
    fn start() -> OracleQueue {
        let (tx, jobs) = mpsc::channel::<OracleJob>();
        let (answers, rx) = mpsc::channel();
        let handle = std::thread::spawn(move || {
            for (copy, dataoff, fstype, claims, whole) in jobs {
                let a = kernel_check_copy(&copy, dataoff, fstype, &claims, whole).map(|kv| {
                    // The log is read now: the loop device may serve the next state soon.
                    let log = kv.loop_device.as_deref().map(|d| kernel_log(d, 40)).unwrap_or_default();
                    (kv, log)
                });
                if answers.send(a).is_err() {
                    break;
                }
            }
        });
        OracleQueue { tx: Some(tx), rx, handle: Some(handle), pending: VecDeque::new() }
    }

    /// Stop the thread after the job it is on.
    fn stop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        for p in self.pending.drain(..) {
            let _ = std::fs::remove_file(&p.copy);
        }
    }
}

impl Drop for OracleQueue {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Per-run state while it goes on.
pub(super) struct RunCtx<'a> {
    pub opts: &'a CampaignOptions,
    pub job: Job,
    pub report: RunReport,
    pub check_ms: f64,
    pub timed_states: u64,
    pub oracle_ms: f64,
    pub run_dir: PathBuf,
    pub keep_dir: PathBuf,
    oracle: OracleQueue,
}

impl<'a> RunCtx<'a> {
    /// The context of a run that has made no state yet.
    pub fn new(
        opts: &'a CampaignOptions,
        job: Job,
        report: RunReport,
        run_dir: PathBuf,
        keep_dir: PathBuf,
    ) -> Self {
        RunCtx {
            opts,
            job,
            report,
            check_ms: 0.0,
            timed_states: 0,
            oracle_ms: 0.0,
            run_dir,
            keep_dir,
            oracle: OracleQueue::start(),
        }
    }

    /// Freeze the guest, check the state (copying it for the oracle if it needs one), resume
    /// the guest (even when the check failed), then compare the oracle's finished states.
    #[allow(clippy::too_many_arguments)]
    pub fn paused(
        &mut self,
        vm: &mut Vm,
        timing: &mut Timing,
        image: &Path,
        dataoff: u64,
        claims: &[Claim],
        at: String,
        random: bool,
    ) -> Result<()> {
        let t = Instant::now();
        vm.stop()?;
        let (c0, o0) = (self.check_ms, self.oracle_ms);
        let r = self.check_frozen(image, dataoff, claims, at, random);
        vm.cont()?;
        timing.paused_s += t.elapsed().as_secs_f64();
        timing.check_s += (self.check_ms - c0) / 1000.0;
        timing.oracle_s += (self.oracle_ms - o0) / 1000.0;
        if let Some(p) = r? {
            let fstype = self.job.fs.mount_type();
            let job = (p.copy.clone(), p.dataoff, fstype, p.claims.clone(), p.whole);
            self.oracle.pending.push_back(p);
            let sent = self.oracle.tx.as_ref().is_some_and(|tx| tx.send(job).is_ok());
            if !sent {
                return Err(Error::External("the kernel oracle's thread is gone".into()));
            }
        }
        self.collect(timing, false)
    }

    /// Compare the states the oracle has finished: those ready now, or (`all`) every one
    /// taken. A state beyond [`MAX_PENDING`] waits for the oldest.
    pub fn collect(&mut self, timing: &mut Timing, all: bool) -> Result<()> {
        while !self.oracle.pending.is_empty() {
            let wait = all || self.oracle.pending.len() > MAX_PENDING;
            let t = Instant::now();
            let answer = if wait {
                match self.oracle.rx.recv() {
                    Ok(a) => a,
                    Err(_) => return Err(Error::External("the kernel oracle's thread stopped".into())),
                }
            } else {
                match self.oracle.rx.try_recv() {
                    Ok(a) => a,
                    Err(mpsc::TryRecvError::Empty) => return Ok(()),
                    Err(mpsc::TryRecvError::Disconnected) => {
                        return Err(Error::External("the kernel oracle's thread stopped".into()));
                    }
                }
            };
            timing.oracle_wait_s += t.elapsed().as_secs_f64();
            let Some(p) = self.oracle.pending.pop_front() else { break };
            let copy = p.copy.clone();
            let o0 = self.oracle_ms;
            let r = answer.and_then(|(kv, log)| self.compare(p, kv, log));
            timing.oracle_s += (self.oracle_ms - o0) / 1000.0;
            let _ = std::fs::remove_file(&copy);
            r?;
        }
        Ok(())
    }

    /// Stop the oracle's thread (after a failed run).
    pub fn stop_oracle(&mut self) {
        self.oracle.stop();
    }

    /// Check the frozen media now (`at` says after what); when the kernel oracle must look at
    /// this state too, take the compact copy it mounts, while the guest is still frozen.
    fn check_frozen(
        &mut self,
        image: &Path,
        dataoff: u64,
        claims: &[Claim],
        at: String,
        random: bool,
    ) -> Result<Option<Pending>> {
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
            return Ok(None);
        }
        let copy = self.run_dir.join(format!("oracle-{n:04}.img"));
        crate::image::refuse_in_use(&copy, "the oracle's copy")?;
        let t = Instant::now();
        copy_compact(image, &copy)?;
        self.oracle_ms += t.elapsed().as_secs_f64() * 1e3;
        Ok(Some(Pending {
            n,
            at,
            dataoff,
            claims: claims.to_vec(),
            verdicts,
            ours,
            check_error,
            failing,
            torn,
            in_flight,
            ours_refused,
            whole,
            copy,
        }))
    }

    /// Compare the kernel's verdict on a state with daxray's, count it, keep the state when it
    /// must be kept, and say so loudly when the two disagree.
    fn compare(&mut self, p: Pending, kv: KernelVerdicts, kv_log: Vec<String>) -> Result<()> {
        let Pending {
            n,
            at,
            dataoff,
            claims,
            verdicts,
            ours,
            check_error,
            failing,
            torn,
            in_flight,
            ours_refused,
            copy,
            ..
        } = p;
        let fs = self.job.fs;
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
        keep_state(&copy, &dir, &claims, &info)?;
        let log = if disagree { kv_log } else { vec![] };
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
