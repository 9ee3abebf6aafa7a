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
//! 5. Guest → [`GuestMsg::Done`] with the kernel's `fs_dax` trace counts. It unmounts and says
//!    [`GuestMsg::Idle`]; the host answers [`HostMsg::Next`] (another job in the same boot, from
//!    step 2 on the same namespace) or [`HostMsg::PowerOff`]. On any failure the guest sends
//!    [`GuestMsg::Error`] and powers off.
//!
//! Before step 2, each time the guest has run mkfs it says [`GuestMsg::Formatted`] and waits for
//! [`HostMsg::Go`] before it mounts: the host may then keep the freshly made file system's bytes
//! and, for a later job with the same mkfs options, put them back on the media itself (while the
//! guest has nothing mounted) and say so in [`HostMsg::Next`]; the guest then mounts without
//! running mkfs again.
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
    /// ext4 with a jbd2 journal and fast commits (`-O fast_commit`).
    #[serde(rename = "ext4-fc")]
    Ext4FastCommit,
    /// XFS (`-m reflink=0`).
    #[serde(rename = "xfs")]
    Xfs,
    /// XFS with reflink (`-m reflink=1`, mkfs.xfs's default): shared extents and copy-on-write
    /// under fsdax, which kernels from 6.0 on mount with `-o dax` (`xfs_setup_dax_always`).
    #[serde(rename = "xfs-reflink")]
    XfsReflink,
}

impl FsChoice {
    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            FsChoice::Ext4 => "ext4",
            FsChoice::Ext4NoJournal => "ext4-nojournal",
            FsChoice::Ext4FastCommit => "ext4-fc",
            FsChoice::Xfs => "xfs",
            FsChoice::XfsReflink => "xfs-reflink",
        }
    }

    /// Parse a command-line name.
    pub fn parse(s: &str) -> Option<FsChoice> {
        match s {
            "ext4" => Some(FsChoice::Ext4),
            "ext4-nojournal" => Some(FsChoice::Ext4NoJournal),
            "ext4-fc" => Some(FsChoice::Ext4FastCommit),
            "xfs" => Some(FsChoice::Xfs),
            "xfs-reflink" => Some(FsChoice::XfsReflink),
            _ => None,
        }
    }

    /// Every file system the guest can format, in the order campaigns run them.
    pub const ALL: [FsChoice; 5] = [
        FsChoice::Ext4,
        FsChoice::Ext4NoJournal,
        FsChoice::Ext4FastCommit,
        FsChoice::Xfs,
        FsChoice::XfsReflink,
    ];

    /// XFS, with or without reflink.
    pub fn is_xfs(self) -> bool {
        matches!(self, FsChoice::Xfs | FsChoice::XfsReflink)
    }

    /// The file-system type `mount -t` takes.
    pub fn mount_type(self) -> &'static str {
        match self {
            FsChoice::Xfs | FsChoice::XfsReflink => "xfs",
            FsChoice::Ext4 | FsChoice::Ext4NoJournal | FsChoice::Ext4FastCommit => "ext4",
        }
    }

    /// A journal or log size (MiB) small enough to wrap often: 4 MiB of jbd2 journal (1024
    /// blocks, the least mkfs.ext4 makes with 4 KiB blocks), 7 MiB of XFS log (mkfs.xfs wants
    /// 1605 blocks of 4 KiB on a 512 MiB namespace). None without a journal.
    pub fn small_journal_mib(self) -> Option<u32> {
        match self {
            FsChoice::Ext4 | FsChoice::Ext4FastCommit => Some(4),
            FsChoice::Ext4NoJournal => None,
            FsChoice::Xfs | FsChoice::XfsReflink => Some(7),
        }
    }

    /// The namespace (image) size this file system needs: XFS wants at least 300 MiB.
    pub fn default_image_size(self) -> u64 {
        match self {
            FsChoice::Xfs | FsChoice::XfsReflink => 512 << 20,
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
    /// The journal (ext4, `mkfs.ext4 -J size=`) or log (XFS, `mkfs.xfs -l size=`) size in MiB;
    /// None: mkfs's default. A small one wraps often (for the soak). XFS accepts down to about
    /// 7 MiB on a 512 MiB namespace (1605 blocks of 4 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_mib: Option<u32>,
    /// Tests of the host only: the guest misbehaves this way once it has the job (never set by
    /// the replay engine or the bench; `daxray vm run` has a hidden option for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misbehave: Option<Misbehave>,
}

/// Ways a (test) guest breaks the protocol after it confirmed the job, to show that the host
/// ends the run with a clear error, kills QEMU and removes its files.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Misbehave {
    /// A line of non-JSON bytes (and terminal escapes on the console), then silence.
    Garbage,
    /// More than [`MAX_LINE`] bytes without a newline, then silence.
    LongLine,
    /// A well-formed JSON line that is no defined message, then silence.
    UnknownMessage,
    /// A `Store` for a file the job never made (`/etc/passwd`), then silence.
    ForeignStore,
    /// Stop talking (the agent sleeps for ever; the machine stays up).
    Hang,
    /// A real kernel panic (`echo c > /proc/sysrq-trigger`).
    Panic,
    /// Write to the console without end (and an empty line to the channel every 10 ms).
    Flood,
    /// Send an empty line every 100 ms without end: bytes, but never a message.
    Trickle,
    /// Send one defined message (`Probe`) over and over without end.
    FloodValid,
}

impl Misbehave {
    /// Every kind, in the order the tests run them.
    pub const ALL: [Misbehave; 9] = [
        Misbehave::Garbage,
        Misbehave::LongLine,
        Misbehave::UnknownMessage,
        Misbehave::ForeignStore,
        Misbehave::Hang,
        Misbehave::Panic,
        Misbehave::Flood,
        Misbehave::Trickle,
        Misbehave::FloodValid,
    ];

    /// The name used in JSON and on the command line (`long-line`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Misbehave::Garbage => "garbage",
            Misbehave::LongLine => "long-line",
            Misbehave::UnknownMessage => "unknown-message",
            Misbehave::ForeignStore => "foreign-store",
            Misbehave::Hang => "hang",
            Misbehave::Panic => "panic",
            Misbehave::Flood => "flood",
            Misbehave::Trickle => "trickle",
            Misbehave::FloodValid => "flood-valid",
        }
    }

    /// Parse a name given by [`Misbehave::name`].
    pub fn parse(s: &str) -> Option<Misbehave> {
        Misbehave::ALL.into_iter().find(|m| m.name() == s)
    }
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
            journal_mib: None,
            misbehave: None,
        }
    }

    /// What decides the bytes mkfs makes for this job: the file system, formatting for PMD
    /// faults or not, and the journal size. Jobs with the same key can share one mkfs.
    pub fn format_key(&self) -> String {
        let pmd = if self.fault() == FaultSize::Pmd { "pmd" } else { "pte" };
        format!("{}-{pmd}-journal-{:?}", self.fs.name(), self.journal_mib)
    }

    /// The fault size the job's stores aim for: `pmd-sparse` always asks for PMD faults (and so
    /// formats for them), whatever `fault_size` says.
    pub fn fault(&self) -> FaultSize {
        if self.scenario == "pmd-sparse" { FaultSize::Pmd } else { self.fault_size }
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

/// One extent of a mapped file as `FS_IOC_FIEMAP` reports it after the scenario.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FileExtent {
    /// Absolute path of the file inside the file system (e.g. `/f0`).
    pub file: String,
    /// Byte offset in the file.
    pub logical: u64,
    /// Byte offset on the block device (from the start of the file system).
    pub physical: u64,
    /// Length in bytes.
    pub length: u64,
    /// `FIEMAP_EXTENT_*` flags.
    pub flags: u32,
}

/// What a PMD fault needs besides the mapping: where the blocks are. `dax_iomap_direct_access`
/// (fs/dax.c) refuses a 2 MiB pfn range that is not 2 MiB aligned, so a PMD fault needs the
/// extent's physical address (`data_phys + physical`) 2 MiB aligned.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct PmdLayout {
    /// Guest physical address of the file system's first byte (the pfn device's `resource`).
    pub data_phys: u64,
    /// Start address of each file's mapping, in the order of the files.
    pub map_addrs: Vec<u64>,
    /// The files' extents.
    pub extents: Vec<FileExtent>,
}

impl PmdLayout {
    /// Why the kernel would refuse a PMD fault at the 2 MiB extents of the files (`/f0`, ... of
    /// `file_len` bytes each): for each extent start, the first of the conditions of
    /// `dax_iomap_pmd_fault` (fs/dax.c, Linux 6.1) that this layout shows failing, in the
    /// kernel's order. Empty when none does (a fallback then came from a condition the layout
    /// cannot show: an existing PTE table, the page cache entry, the VMA).
    pub fn refusals(&self, file_len: u64) -> Vec<String> {
        const PMD: u64 = 2 << 20;
        let mut out = Vec::new();
        for (i, &addr) in self.map_addrs.iter().enumerate() {
            let name = format!("/f{i}");
            let mut off = 0u64;
            while off < file_len {
                if let Some(r) = self.refusal(&name, addr, off, file_len) {
                    out.push(r);
                }
                off = off.saturating_add(PMD);
            }
        }
        out
    }

    fn refusal(&self, name: &str, addr: u64, off: u64, file_len: u64) -> Option<String> {
        const PMD: u64 = 2 << 20;
        let at = format!("{name} offset {off:#x}");
        if !addr.wrapping_add(off).is_multiple_of(PMD) {
            return Some(format!(
                "{at}: dax_fault_check_fallback: the address {:#x} and the file offset differ \
                 modulo 2 MiB (PMD colour)",
                addr.wrapping_add(off)
            ));
        }
        if off.checked_add(PMD).is_none_or(|e| e > file_len) {
            return Some(format!(
                "{at}: dax_fault_check_fallback: the PMD would extend beyond the file size {file_len}"
            ));
        }
        let ext = self
            .extents
            .iter()
            .find(|e| e.file == name && e.logical <= off && off < e.logical.saturating_add(e.length));
        let Some(e) = ext else {
            return Some(format!(
                "{at}: no block is mapped there after the store (the fault allocated none)"
            ));
        };
        let in_ext = off - e.logical;
        if e.length - in_ext < PMD {
            return Some(format!(
                "{at}: dax_iomap_pmd_fault: the extent maps {} bytes from here, under 2 MiB \
                 (iomap_length < PMD_SIZE)",
                e.length - in_ext
            ));
        }
        let phys = self.data_phys.wrapping_add(e.physical).wrapping_add(in_ext);
        if !phys.is_multiple_of(PMD) {
            return Some(format!(
                "{at}: dax_iomap_direct_access: the blocks start at physical address {phys:#x} \
                 (file system byte {:#x}, namespace data at {:#x}), not 2 MiB aligned, so the pfn \
                 is not either",
                e.physical + in_ext,
                self.data_phys
            ));
        }
        None
    }
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
    /// `dax_pmd_fault_done` events whose result includes `NEEDDSYNC` (of `needdsync`).
    #[serde(default)]
    pub pmd_needdsync: u64,
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
    /// mkfs finished (nothing is mounted); the guest waits for [`HostMsg::Go`] before it mounts.
    Formatted {
        /// Where the file system starts in the image (bytes; from the fsdax namespace).
        dataoff: u64,
    },
    /// After `Done`: the file system is unmounted; the guest waits for [`HostMsg::Next`] or
    /// [`HostMsg::PowerOff`].
    Idle,
    /// The scenario finished.
    Done {
        /// Number of stores made.
        stores: u64,
        /// Kernel trace counts.
        trace: TraceCounts,
        /// With PMD faults: where the mapped files' blocks are (None otherwise).
        #[serde(default)]
        pmd: Option<PmdLayout>,
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
    /// Stop the scenario and report Done.
    Abort,
    /// After `Idle`: make this job in the same boot (the fsdax namespace is kept, so the job's
    /// `namespace_align` must be the boot's), from `Ready` on.
    Next {
        /// The job.
        job: Job,
        /// The host has put back the bytes mkfs made for a job with the same mkfs options
        /// ([`Job::format_key`]) in this boot: mount them without running mkfs.
        restored: bool,
    },
    /// After `Done`: unmount, sync and power off.
    PowerOff,
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

/// Splits the bytes a peer sends into protocol lines, with bounded memory: at most
/// [`MAX_LINE`] bytes may pass without a message (an over-long line, or a stream of empty lines,
/// is an error), `\r\n` endings are accepted, and whitespace-only lines are skipped.
#[derive(Debug, Default)]
pub struct LineFramer {
    buf: Vec<u8>,
    /// Bytes consumed since the last non-empty line (empty lines included).
    idle: usize,
}

impl LineFramer {
    /// An empty framer.
    pub fn new() -> LineFramer {
        LineFramer::default()
    }

    /// Append received bytes. Call [`LineFramer::next_line`] until it returns `Ok(None)` before
    /// pushing more, so that the buffer stays under [`MAX_LINE`] plus one read.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held, not yet returned as a line.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete non-empty line (without its line ending), `Ok(None)` when more bytes
    /// are needed, or an error when the peer sent more than [`MAX_LINE`] bytes without a message.
    pub fn next_line(&mut self) -> crate::Result<Option<Vec<u8>>> {
        loop {
            let Some(nl) = self.buf.iter().position(|&c| c == b'\n') else {
                if self.idle.saturating_add(self.buf.len()) > MAX_LINE {
                    return Err(crate::Error::External(format!(
                        "the peer flooded its channel: more than {MAX_LINE} bytes without a newline or a message"
                    )));
                }
                return Ok(None);
            };
            let mut line: Vec<u8> = self.buf.drain(..=nl).collect();
            self.idle = self.idle.saturating_add(line.len());
            if self.idle > MAX_LINE {
                return Err(crate::Error::External(format!(
                    "the peer flooded its channel: more than {MAX_LINE} bytes without a message"
                )));
            }
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.iter().all(|c| c.is_ascii_whitespace()) {
                continue;
            }
            self.idle = 0;
            return Ok(Some(line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(addr: u64, physical: u64, length: u64) -> PmdLayout {
        // The namespace data start and extent shapes the guest reported on ext4 (fs_dax
        // fixtures: fixtures/trace/README.md).
        PmdLayout {
            data_phys: 0x1_0060_0000,
            map_addrs: vec![addr],
            extents: vec![FileExtent { file: "/f0".into(), logical: 0, physical, length, flags: 1 }],
        }
    }

    #[test]
    fn pmd_refusals_name_the_failing_condition() {
        let mb2 = 2u64 << 20;
        assert!(layout(0x7f44_1040_0000, 0x100_0000, 3 * mb2).refusals(3 * mb2).is_empty());
        let r = layout(0x7f44_1040_0000, 0xfc_b000, 3 * mb2).refusals(3 * mb2);
        assert_eq!(r.len(), 3, "{r:?}");
        assert!(r[0].contains("dax_iomap_direct_access") && r[0].contains("0x1015cb000"), "{r:?}");
        let r = layout(0x7f44_1040_1000, 0x100_0000, 3 * mb2).refusals(3 * mb2);
        assert!(r.iter().all(|x| x.contains("PMD colour")), "{r:?}");
        let r = layout(0x7f44_1040_0000, 0x100_0000, mb2 + 4096).refusals(3 * mb2);
        assert!(r.len() == 2 && r[0].contains("iomap_length") && r[1].contains("no block"), "{r:?}");
        let r = layout(0x7f44_1040_0000, 0x100_0000, mb2).refusals(mb2 + 4096);
        assert!(r.len() == 1 && r[0].contains("beyond the file size"), "{r:?}");
    }

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

    #[test]
    fn misbehave_names_round_trip_and_jobs_without_it_are_unchanged() {
        for m in Misbehave::ALL {
            assert_eq!(Misbehave::parse(m.name()), Some(m));
            let v = serde_json::to_value(m).unwrap();
            assert_eq!(v, serde_json::Value::String(m.name().into()));
        }
        let j = Job::new(FsChoice::Ext4, true, "seq-sparse", 4);
        let s = String::from_utf8(encode(&j).unwrap()).unwrap();
        assert!(!s.contains("misbehave"), "{s}");
        let old = br#"{"fs":"ext4","sync":true,"scenario":"seq-sparse","pages":4,"seed":1,"fault_size":"pte","namespace_align":2097152}"#;
        assert_eq!(decode::<Job>(old, "test").unwrap(), j);
    }

    #[test]
    fn framer_splits_lines_and_bounds_idle_bytes() {
        let mut f = LineFramer::new();
        f.push(b"\n \r\n{\"a\":1}\r\nxy");
        assert_eq!(f.next_line().unwrap().as_deref(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(f.next_line().unwrap(), None);
        f.push(b"z\n");
        assert_eq!(f.next_line().unwrap().as_deref(), Some(&b"xyz"[..]));
        // An over-long line without a newline.
        let mut f = LineFramer::new();
        for _ in 0..=MAX_LINE / 4096 {
            f.push(&[b'x'; 4096]);
            if f.next_line().is_err() {
                return framer_blank_flood();
            }
        }
        panic!("an over-long line was accepted");
    }

    fn framer_blank_flood() {
        let mut f = LineFramer::new();
        let mut n = 0usize;
        loop {
            f.push(&[b' ', b'\n'].repeat(2048));
            n += 4096;
            match f.next_line() {
                Ok(None) => assert!(n <= MAX_LINE + 4096, "empty lines never ended the wait"),
                Ok(Some(l)) => panic!("an empty line came out: {l:?}"),
                Err(e) => {
                    assert!(e.to_string().contains("flooded"), "{e}");
                    break;
                }
            }
        }
    }

    /// Arbitrary bytes (seeded, reproducible) in arbitrary pieces: the framer never panics,
    /// never holds more than MAX_LINE plus one piece, and every line it returns is a whole
    /// non-empty line of the input; decoding what it returns never panics either.
    #[test]
    fn framer_and_decoder_on_arbitrary_bytes() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        let mut lines_seen = 0usize;
        let mut errors = 0usize;
        for round in 0..400 {
            let mut f = LineFramer::new();
            let total = if round % 40 == 0 { 3 * MAX_LINE / 2 } else { rng.random_range(0..20_000) };
            // Now and then a long run without a message: no newline at all, or only empty lines.
            let alphabet: &[u8] = match round % 40 {
                0 => b"{}\":x \r",
                20 => b" \t\r\n",
                r if r % 3 == 0 => b"{}\":,[]0123456789abStoreProbe \n\r",
                _ => b"",
            };
            let total = if round % 20 == 0 { 3 * MAX_LINE / 2 } else { total };
            let mut sent = 0;
            'feed: while sent < total {
                let n = rng.random_range(1..9000usize).min(total - sent);
                let piece: Vec<u8> = (0..n)
                    .map(|_| {
                        if alphabet.is_empty() {
                            rng.random::<u8>()
                        } else {
                            alphabet[rng.random_range(0..alphabet.len())]
                        }
                    })
                    .collect();
                sent += n;
                f.push(&piece);
                loop {
                    match f.next_line() {
                        Ok(Some(l)) => {
                            lines_seen += 1;
                            assert!(!l.contains(&b'\n') && !l.iter().all(u8::is_ascii_whitespace));
                            let _ = decode::<GuestMsg>(&l, "guest");
                            let _ = decode::<HostMsg>(&l, "host");
                        }
                        Ok(None) => break,
                        Err(_) => {
                            errors += 1;
                            break 'feed;
                        }
                    }
                }
                assert!(f.pending() <= MAX_LINE + 9000, "framer holds {} bytes", f.pending());
            }
        }
        assert!(lines_seen > 1000, "only {lines_seen} lines framed");
        assert!(errors > 0, "no input was long enough to be refused");
    }
}
