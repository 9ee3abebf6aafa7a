//! The host–guest protocol: JSON Lines over the guest's `/dev/ttyS1`, which QEMU connects to a
//! unix socket on the host.
//!
//! The exchange for one boot:
//! 1. The host passes the [`Job`] on the kernel command line (`daxray.job=<hex of JSON>`), so the
//!    guest can make the namespace and the file system before it says anything.
//! 2. Guest → [`GuestMsg::Ready`] (kernel release, file system, `dataoff` of the namespace), then
//!    [`GuestMsg::Probe`] (MAP_SYNC flag semantics on the mounted file system).
//! 3. Host → [`HostMsg::Job`] (must equal the command-line job; the guest checks) and the guest
//!    starts the scenario.
//! 4. For every store: guest → [`GuestMsg::Store`], then it waits for [`HostMsg::Go`]
//!    ([`HostMsg::Abort`] ends the run early). Bench jobs send [`GuestMsg::LatencyRun`] instead.
//! 5. Guest → [`GuestMsg::Done`] with the kernel's `fs_dax` trace counts, then it syncs and
//!    powers off. On any failure the guest sends [`GuestMsg::Error`] and powers off.
//!
//! Every line is one JSON value; a line longer than [`MAX_LINE`] or one that does not parse is
//! an error on both sides, never acted on.

use serde::{Deserialize, Serialize};

/// Longest accepted protocol line, in bytes.
pub const MAX_LINE: usize = 1 << 20;

/// The file system the guest formats on the fsdax namespace.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FsChoice {
    /// ext4 with a jbd2 journal, 4 KiB blocks.
    #[serde(rename = "ext4")]
    Ext4,
    /// ext4 without a journal (`-O ^has_journal`).
    #[serde(rename = "ext4-nojournal")]
    Ext4NoJournal,
    /// XFS (`-m reflink=0`).
    #[serde(rename = "xfs")]
    Xfs,
}

impl FsChoice {
    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            FsChoice::Ext4 => "ext4",
            FsChoice::Ext4NoJournal => "ext4-nojournal",
            FsChoice::Xfs => "xfs",
        }
    }

    /// Parse a command-line name.
    pub fn parse(s: &str) -> Option<FsChoice> {
        match s {
            "ext4" => Some(FsChoice::Ext4),
            "ext4-nojournal" => Some(FsChoice::Ext4NoJournal),
            "xfs" => Some(FsChoice::Xfs),
            _ => None,
        }
    }

    /// The namespace (image) size this file system needs: XFS wants at least 300 MiB.
    pub fn default_image_size(self) -> u64 {
        match self {
            FsChoice::Xfs => 512 << 20,
            _ => 256 << 20,
        }
    }
}

/// Size of the page-table entries the workload aims for.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultSize {
    /// 4 KiB PTE faults (namespace align 4096 is enough).
    #[serde(rename = "pte")]
    Pte,
    /// 2 MiB PMD faults (namespace align 2 MiB, file system aligned to 2 MiB).
    #[serde(rename = "pmd")]
    Pmd,
}

impl FaultSize {
    /// Bytes covered by one fault of this size.
    pub fn bytes(self) -> u64 {
        match self {
            FaultSize::Pte => 4096,
            FaultSize::Pmd => 2 << 20,
        }
    }
}

/// What the guest is asked to do in one boot.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// File system to format.
    pub fs: FsChoice,
    /// `MAP_SHARED_VALIDATE | MAP_SYNC` when true; plain `MAP_SHARED` (the control) when false.
    pub sync: bool,
    /// Scenario name (see [`crate::agent::scenario::SCENARIOS`]).
    pub scenario: String,
    /// Number of stores (pages, or 2 MiB extents for PMD faults).
    pub pages: u32,
    /// Seed for random orders and store patterns.
    pub seed: u64,
    /// PTE or PMD faults.
    pub fault_size: FaultSize,
    /// The fsdax namespace's `align` (4096 or 2097152).
    pub namespace_align: u64,
}

impl Job {
    /// A job with the usual defaults: PTE faults, namespace align 2 MiB, seed 1.
    pub fn new(fs: FsChoice, sync: bool, scenario: &str, pages: u32) -> Job {
        Job {
            fs,
            sync,
            scenario: scenario.to_string(),
            pages,
            seed: 1,
            fault_size: FaultSize::Pte,
            namespace_align: 2 << 20,
        }
    }
}

/// One store that became visible through the mapping (and was flushed from the CPU caches).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Store {
    /// Sequence number, from 0.
    pub seq: u64,
    /// Absolute path of the file inside the file system (e.g. `/f0`), not the guest mount path.
    pub file: String,
    /// Inode number of the file.
    pub ino: u64,
    /// Byte offset in the file.
    pub offset: u64,
    /// Number of bytes stored.
    pub len: u64,
    /// Lower-case hex sha256 of the stored bytes.
    pub sha256: String,
}

/// Per-run counts of the kernel's `fs_dax` trace events.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceCounts {
    /// `dax_pte_fault_done` events.
    pub pte_faults: u64,
    /// `dax_pmd_fault_done` events whose result is not `FALLBACK`.
    pub pmd_faults: u64,
    /// Fault-done events (PTE or PMD) whose result includes `NEEDDSYNC`.
    pub needdsync: u64,
    /// `dax_insert_pfn_mkwrite` events (a synchronous fault finished after the fsync).
    pub insert_pfn_mkwrite: u64,
    /// `dax_pmd_fault_done` events that fell back to PTEs.
    #[serde(default)]
    pub pmd_fallbacks: u64,
    /// True when the trace buffer overflowed (counts are then lower bounds).
    #[serde(default)]
    pub lost_events: bool,
}

/// One configuration of the fault-latency bench (the MAP_SYNC series' table, plus
/// "preallocated, background load" for symmetry).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LatencyConfig {
    /// The file was written and fsynced before it was mapped (else: empty, sparse).
    pub preallocated: bool,
    /// A background writer appended to and fsynced another file meanwhile.
    pub background_load: bool,
    /// `MAP_SHARED_VALIDATE | MAP_SYNC` (else plain `MAP_SHARED`).
    pub sync: bool,
}

impl LatencyConfig {
    /// All eight configurations, in the series' order (then the added ones).
    pub fn all() -> Vec<LatencyConfig> {
        let c = |preallocated, background_load, sync| LatencyConfig { preallocated, background_load, sync };
        vec![
            c(true, false, false),
            c(true, false, true),
            c(false, false, false),
            c(false, false, true),
            c(false, true, false),
            c(false, true, true),
            c(true, true, false),
            c(true, true, true),
        ]
    }

    /// Human-readable name, e.g. "file empty, background load, MAP_SYNC".
    pub fn label(&self) -> String {
        format!(
            "file {}, {}, {}",
            if self.preallocated { "preallocated" } else { "empty" },
            if self.background_load { "background load" } else { "no background load" },
            if self.sync { "MAP_SYNC" } else { "no MAP_SYNC" }
        )
    }
}

/// The MAP_SYNC flag semantics seen on one path (see [`crate::agent::probe`]).
pub use super::probe::ProbeReport;

/// Guest → host.
#[allow(clippy::large_enum_variant)] // one message a boot; kept unboxed for plain matching
#[derive(Serialize, Deserialize, Clone, Debug)]
pub enum GuestMsg {
    /// The namespace, file system and mount are ready.
    Ready {
        /// `uname -r` of the guest kernel.
        kernel: String,
        /// The file system that was made.
        fs: FsChoice,
        /// Where the file system starts in the image (bytes; from the fsdax namespace).
        dataoff: u64,
    },
    /// Probe of the MAP_SYNC flags on a file of the mounted file system.
    Probe(ProbeReport),
    /// A store became visible; the guest waits for [`HostMsg::Go`].
    Store(Store),
    /// Bench jobs: the times of the first store to each page for one configuration, by
    /// `CLOCK_MONOTONIC`, in nanoseconds (each includes the page fault), with the kernel's trace
    /// counts for that configuration alone.
    LatencyRun {
        /// The configuration.
        config: LatencyConfig,
        /// Nanoseconds per page, in page order.
        ns: Vec<u64>,
        /// `fs_dax` trace counts during the timed loop.
        trace: TraceCounts,
    },
    /// The scenario finished; the guest now syncs and powers off.
    Done {
        /// Number of stores made.
        stores: u64,
        /// Kernel trace counts.
        trace: TraceCounts,
    },
    /// The guest failed; it powers off after sending this.
    Error {
        /// What went wrong.
        message: String,
    },
}

/// Host → guest.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub enum HostMsg {
    /// The job (must equal the one on the kernel command line).
    Job(Job),
    /// Go on after a [`GuestMsg::Store`].
    Go,
    /// Stop the scenario, report Done and power off.
    Abort,
}

/// Encode one message as a JSON line (with the trailing newline).
pub fn encode<T: Serialize>(m: &T) -> crate::Result<Vec<u8>> {
    let mut v =
        serde_json::to_vec(m).map_err(|e| crate::Error::External(format!("encoding a message: {e}")))?;
    v.push(b'\n');
    Ok(v)
}

/// Decode one JSON line (without its newline); `who` names the sender for the error.
pub fn decode<T: for<'de> Deserialize<'de>>(line: &[u8], who: &str) -> crate::Result<T> {
    serde_json::from_slice(line).map_err(|e| {
        let shown = String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
        crate::Error::External(format!("malformed message from the {who} ({e}): {shown:?}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let j = Job::new(FsChoice::Ext4NoJournal, true, "seq-sparse", 4);
        let s = String::from_utf8(encode(&HostMsg::Job(j.clone())).unwrap()).unwrap();
        assert!(s.contains("\"ext4-nojournal\"") && s.contains("\"pte\""), "{s}");
        let back: HostMsg = decode(s.trim_end().as_bytes(), "host").unwrap();
        match back {
            HostMsg::Job(k) => assert_eq!(k, j),
            other => panic!("{other:?}"),
        }
        assert!(decode::<GuestMsg>(b"{\"Nope\":1}", "guest").is_err());
    }
}
