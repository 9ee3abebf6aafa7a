//! The host's check of every message the guest sends: only the defined events, each at most as
//! often as the protocol allows, and every `Store` about a file the job made, at an offset inside
//! it, with the next sequence number. Anything else ends the run: the host never acts on it.

use crate::agent::proto::{GuestMsg, Job, LatencyConfig, Store};
use crate::agent::scenario;
use crate::error::{Error, Result};

/// What the guest has said so far in one boot.
#[derive(Debug)]
pub struct Guard {
    job: Job,
    ready: bool,
    probes: u64,
    stores: u64,
    latency_runs: u64,
    done: bool,
    formatted: bool,
    idle: bool,
    files: Vec<String>,
    layout: Option<scenario::Layout>,
}

fn bad(what: String) -> Error {
    Error::External(format!("the guest broke the protocol: {what}"))
}

impl Guard {
    /// A guard for one boot running `job`.
    pub fn new(job: &Job) -> Guard {
        let layout = scenario::layout(job).ok();
        let files = if layout.is_some() { scenario::files(job).unwrap_or_default() } else { Vec::new() };
        Guard {
            job: job.clone(),
            ready: false,
            probes: 0,
            stores: 0,
            latency_runs: 0,
            done: false,
            formatted: false,
            idle: false,
            files,
            layout,
        }
    }

    /// Stores accepted so far.
    pub fn stores(&self) -> u64 {
        self.stores
    }

    fn check_store(&self, s: &Store) -> Result<()> {
        let Some(l) = self.layout else {
            return Err(bad(format!("a Store in bench scenario {:?}", self.job.scenario)));
        };
        if s.seq != self.stores {
            return Err(bad(format!("Store with sequence {} where {} was next", s.seq, self.stores)));
        }
        if self.stores >= u64::from(self.job.pages) {
            return Err(bad(format!("more Stores than the {} the job asked for", self.job.pages)));
        }
        if !self.files.contains(&s.file) {
            let shown: String = s.file.chars().take(100).collect();
            return Err(bad(format!(
                "Store for file {shown:?}, which the job never made (its files: {})",
                self.files.join(", ")
            )));
        }
        let end = s.offset.checked_add(s.len);
        if s.len == 0 || s.len > l.claim_len || end.is_none_or(|e| e > l.file_len) {
            return Err(bad(format!(
                "Store of {} bytes at offset {} outside the {}-byte file {}",
                s.len, s.offset, l.file_len, s.file
            )));
        }
        if s.sha256.len() != 64 || !s.sha256.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad("Store whose sha256 is not 64 hex digits".into()));
        }
        Ok(())
    }

    fn check_latency(&self, config: &LatencyConfig, ns: &[u64]) -> Result<()> {
        if self.layout.is_some() {
            return Err(bad(format!("a LatencyRun in store scenario {:?}", self.job.scenario)));
        }
        if self.latency_runs >= LatencyConfig::all().len() as u64 {
            return Err(bad("more LatencyRuns than there are configurations".into()));
        }
        if ns.len() > self.job.pages as usize {
            return Err(bad(format!(
                "LatencyRun ({}) with {} times for {} pages",
                config.label(),
                ns.len(),
                self.job.pages
            )));
        }
        Ok(())
    }

    /// Accept `m` as the next message of the boot, or say how it breaks the protocol.
    pub fn check(&mut self, m: &GuestMsg) -> Result<()> {
        if self.done {
            if matches!(m, GuestMsg::Idle) && !self.idle {
                self.idle = true;
                return Ok(());
            }
            return Err(bad(format!("a message after Done: {}", kind(m))));
        }
        match m {
            GuestMsg::Formatted { .. } if self.ready || self.formatted => {
                return Err(bad("Formatted twice or after Ready".into()));
            }
            GuestMsg::Formatted { .. } => self.formatted = true,
            GuestMsg::Idle => return Err(bad("Idle before Done".into())),
            GuestMsg::Ready { .. } if self.ready => return Err(bad("Ready twice".into())),
            GuestMsg::Ready { .. } => self.ready = true,
            _ if !self.ready => return Err(bad(format!("{} before Ready", kind(m)))),
            GuestMsg::Probe(_) if self.probes > 0 => return Err(bad("Probe twice".into())),
            GuestMsg::Probe(_) => self.probes += 1,
            GuestMsg::Store(s) => {
                self.check_store(s)?;
                self.stores += 1;
            }
            GuestMsg::LatencyRun { config, ns, .. } => {
                self.check_latency(config, ns)?;
                self.latency_runs += 1;
            }
            GuestMsg::Done { .. } | GuestMsg::Error { .. } => self.done = true,
        }
        Ok(())
    }
}

/// The message's kind, for errors (never its guest-chosen contents).
pub fn kind(m: &GuestMsg) -> &'static str {
    match m {
        GuestMsg::Ready { .. } => "Ready",
        GuestMsg::Probe(_) => "Probe",
        GuestMsg::Store(_) => "Store",
        GuestMsg::LatencyRun { .. } => "LatencyRun",
        GuestMsg::Done { .. } => "Done",
        GuestMsg::Formatted { .. } => "Formatted",
        GuestMsg::Idle => "Idle",
        GuestMsg::Error { .. } => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::proto::{FsChoice, TraceCounts};

    fn store(seq: u64, file: &str, offset: u64) -> GuestMsg {
        GuestMsg::Store(Store { seq, file: file.into(), ino: 12, offset, len: 4096, sha256: "ab".repeat(32) })
    }

    #[test]
    fn accepts_the_protocol_and_refuses_the_rest() {
        let job = Job::new(FsChoice::Ext4, true, "multi-file", 5);
        let ready = GuestMsg::Ready { kernel: "k".into(), fs: FsChoice::Ext4, dataoff: 0 };
        let mut g = Guard::new(&job);
        assert!(g.check(&store(0, "/f0", 0)).is_err(), "Store before Ready");
        g.check(&ready).unwrap();
        assert!(g.check(&ready).is_err());
        let mut g = Guard::new(&job);
        g.check(&ready).unwrap();
        g.check(&store(0, "/f0", 0)).unwrap();
        g.check(&store(1, "/f1", 0)).unwrap();
        g.check(&store(2, "/f2", 4096)).unwrap();
        for bad in [
            store(2, "/f0", 0),            // sequence again
            store(3, "/etc/passwd", 0),    // a file the job never made
            store(3, "/f3", 0),            // one file too many
            store(3, "/f0", 2 * 4096),     // past the end of the 2-page file
            store(3, "/f0", u64::MAX - 1), // overflowing end
        ] {
            let e = g.check(&bad).unwrap_err().to_string();
            assert!(e.contains("broke the protocol"), "{e}");
        }
        g.check(&store(3, "/f0", 4096)).unwrap();
        g.check(&store(4, "/f1", 4096)).unwrap();
        assert!(g.check(&store(5, "/f2", 0)).is_err(), "more stores than pages");
        let lat = GuestMsg::LatencyRun {
            config: LatencyConfig::all()[0],
            ns: vec![1; 5],
            trace: TraceCounts::default(),
        };
        assert!(g.check(&lat).is_err(), "LatencyRun in a store scenario");
        g.check(&GuestMsg::Done { stores: 5, trace: TraceCounts::default(), pmd: None }).unwrap();
        assert!(g.check(&GuestMsg::Done { stores: 5, trace: TraceCounts::default(), pmd: None }).is_err());
        assert_eq!(g.stores(), 5);
    }

    #[test]
    fn bench_jobs_take_latency_runs_only() {
        let job = Job::new(FsChoice::Ext4, true, "latency-all", 4);
        let mut g = Guard::new(&job);
        g.check(&GuestMsg::Ready { kernel: "k".into(), fs: FsChoice::Ext4, dataoff: 0 }).unwrap();
        assert!(g.check(&store(0, "/f0", 0)).is_err());
        for c in LatencyConfig::all() {
            g.check(&GuestMsg::LatencyRun { config: c, ns: vec![1; 4], trace: TraceCounts::default() })
                .unwrap();
        }
        let extra = GuestMsg::LatencyRun {
            config: LatencyConfig::all()[0],
            ns: vec![],
            trace: TraceCounts::default(),
        };
        assert!(g.check(&extra).is_err(), "a ninth configuration");
    }
}
