//! The kernel's `fs_dax` trace events, counted per run: PTE and PMD fault completions, the ones
//! whose result includes `NEEDDSYNC` (the synchronous-fault path of MAP_SYNC), and
//! `dax_insert_pfn_mkwrite` (a synchronous fault finished after the metadata was synced).

use super::proto::TraceCounts;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The events counted; a run fails without them.
const EVENTS: &[&str] = &["dax_pte_fault_done", "dax_pmd_fault_done", "dax_insert_pfn_mkwrite"];

/// Events enabled as evidence of the PMD path when the kernel has them (`include/trace/events/fs_dax.h`):
/// the fault's start, hole loads at PMD size and their fallback, and the PMD insert
/// (`dax_pmd_insert_mapping` exists only in kernels before 5.19).
const PMD_EVIDENCE: &[&str] = &[
    "dax_pmd_fault",
    "dax_pmd_load_hole",
    "dax_pmd_load_hole_fallback",
    "dax_pmd_insert_mapping",
    "dax_insert_pfn_mkwrite_no_entry",
];

/// Raw lines of each event printed on the console.
const LINES_PER_EVENT: usize = 8;

/// An enabled trace session.
pub struct Tracer {
    root: PathBuf,
}

fn w(path: &Path, v: &str) -> Result<()> {
    std::fs::write(path, v).map_err(|e| Error::External(format!("writing {v:?} to {}: {e}", path.display())))
}

impl Tracer {
    /// Clear the trace buffer and enable the events.
    pub fn start() -> Result<Tracer> {
        let root = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.join("events/fs_dax").is_dir())
            .ok_or_else(|| {
                Error::NotFound(
                    "tracefs with events/fs_dax (mount tracefs; kernel with CONFIG_FS_DAX)".into(),
                )
            })?;
        w(&root.join("tracing_on"), "0")?;
        w(&root.join("buffer_size_kb"), "16384")?;
        w(&root.join("trace"), "")?;
        for e in EVENTS {
            w(&root.join("events/fs_dax").join(e).join("enable"), "1")?;
        }
        let mut missing = Vec::new();
        for e in PMD_EVIDENCE {
            let en = root.join("events/fs_dax").join(e).join("enable");
            if en.exists() {
                w(&en, "1")?;
            } else {
                missing.push(*e);
            }
        }
        if !missing.is_empty() {
            eprintln!("daxray-agent: trace: this kernel has no {}", missing.join(", "));
        }
        w(&root.join("tracing_on"), "1")?;
        Ok(Tracer { root })
    }

    /// Stop tracing and count the events.
    pub fn finish(self) -> Result<TraceCounts> {
        w(&self.root.join("tracing_on"), "0")?;
        let p = self.root.join("trace");
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
        // A few raw event lines on the console, as evidence for whoever reads the log.
        for e in EVENTS.iter().chain(PMD_EVIDENCE) {
            let pat = format!(" {e}:");
            for line in text.lines().filter(|l| l.contains(&pat)).take(LINES_PER_EVENT) {
                eprintln!("daxray-agent: trace: {}", line.trim());
            }
        }
        Ok(count(&text))
    }
}

/// Count the events in the text of a `trace` file.
pub fn count(text: &str) -> TraceCounts {
    let mut c = TraceCounts::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# entries-in-buffer/entries-written:") {
            let nums: Vec<u64> =
                rest.split(|ch: char| !ch.is_ascii_digit()).filter_map(|s| s.parse().ok()).take(2).collect();
            if let [a, b] = nums[..] {
                c.lost_events = a < b;
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let needd = line.contains("NEEDDSYNC");
        if line.contains(" dax_pte_fault_done:") {
            c.pte_faults += 1;
            c.needdsync += u64::from(needd);
        } else if line.contains(" dax_pmd_fault_done:") {
            if line.contains("FALLBACK") {
                c.pmd_fallbacks += 1;
            } else {
                c.pmd_faults += 1;
            }
            c.needdsync += u64::from(needd);
            c.pmd_needdsync += u64::from(needd);
        } else if line.contains(" dax_insert_pfn_mkwrite:") {
            c.insert_pfn_mkwrite += 1;
        }
    }
    c
}
