//! `daxray vm ...`: kernel assets, and a single guest run for trying things by hand.

use super::Global;
use super::output;
use crate::agent::proto::{FaultSize, FsChoice, GuestMsg, HostMsg, Job, Misbehave};
use crate::error::{Error, Result};
use crate::vm::{Assets, Vm, VmConfig};
use std::path::PathBuf;
use std::time::Duration;

/// Options that choose the guest kernel and how it runs (shared by the commands that boot it).
#[derive(Debug, Clone, clap::Args)]
pub struct VmArgs {
    /// Cache folder for the kernel package and initramfs (default: $XDG_CACHE_HOME/daxray or
    /// ~/.cache/daxray).
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// The Debian kernel series to boot (e.g. 6.1 or 6.12; default: the release's
    /// linux-image-amd64), fetched into the cache if needed.
    #[arg(long, value_name = "SERIES", conflicts_with = "kernel")]
    pub kernel_series: Option<String>,
    /// Boot this kernel image (bzImage) instead of Debian's (needs --modules).
    #[arg(long, value_name = "FILE", requires = "modules")]
    pub kernel: Option<PathBuf>,
    /// Folder searched for the kernel's .ko modules (with --kernel).
    #[arg(long, value_name = "DIR", requires = "kernel")]
    pub modules: Option<PathBuf>,
    /// QEMU accelerator: tcg (software emulation, works everywhere) or kvm.
    #[arg(long, default_value = "tcg", value_parser = ["tcg", "kvm"])]
    pub accel: String,
    /// Guest RAM in MiB.
    #[arg(long, default_value_t = 512)]
    pub mem_mb: u32,
}

impl VmArgs {
    /// The kernel assets these options name.
    pub fn assets(&self) -> Result<Assets> {
        Assets::resolve(
            self.cache.as_deref(),
            self.kernel_series.as_deref(),
            self.kernel.as_deref(),
            self.modules.as_deref(),
        )
    }

    /// A VM configuration in `work_dir` for file system `fs`.
    pub fn config(&self, work_dir: &std::path::Path, fs: FsChoice) -> Result<VmConfig> {
        let mut c = VmConfig::new(self.assets()?, work_dir, fs);
        c.accel = self.accel.clone();
        c.mem_mb = self.mem_mb;
        Ok(c)
    }
}

/// VM subcommands.
#[allow(clippy::large_enum_variant)] // parsed once
#[derive(Debug, clap::Subcommand)]
pub enum VmCommand {
    /// Fetch the kernel package into the cache and check for QEMU and busybox.
    ///
    /// Resolves Debian's current kernel with `apt-cache depends linux-image-amd64`, fetches it
    /// with `apt-get download` and unpacks it with `dpkg-deb -x` into the cache folder; nothing
    /// is installed into the host's /boot. Says exactly what to install when qemu-system-x86_64,
    /// a static busybox, mkfs.ext4 or mkfs.xfs is missing.
    ///
    /// With --kernel-series (repeatable) it fetches those series instead (e.g. 6.1 and 6.12: the
    /// series' meta-package linux-image-SERIES-amd64 names the package).
    ///
    /// JSON output: `{"kernel":"PATH","modules":"DIR","version":"6.1.0-N-amd64","qemu":"PATH","busybox":"PATH","kernels":[{"kernel","modules","version"}...]}`
    /// (the first kernel's fields, then every kernel fetched).
    Setup(SetupArgs),
    /// Boot the guest once, run one scenario (answering Go to every store) and print every
    /// message from the guest as a JSON line.
    ///
    /// The guest makes an fsdax namespace on the emulated NVDIMM, formats it, mounts it with
    /// -o dax, probes MAP_SYNC, runs the scenario through a MAP_SYNC mapping (plain MAP_SHARED
    /// with --no-sync) and reports the kernel's fs_dax trace counts. Scenarios: seq-sparse,
    /// random-sparse, prealloc-written, fallocated-unwritten, pmd-sparse, multi-file,
    /// background-writer, msync-after, and the bench's latency-empty, latency-prealloc,
    /// latency-empty-load, latency-prealloc-load, latency-all.
    ///
    /// Output (JSON Lines): `{"Ready":{"kernel","fs","dataoff"}}`, `{"Probe":{...as daxray probe --json}}`,
    /// then `{"Store":{"seq","file","ino","offset","len","sha256"}}` per store (or
    /// `{"LatencyRun":{"config":{...},"ns":[...],"trace":{...}}}` for latency scenarios), then
    /// `{"Done":{"stores":N,"trace":{"pte_faults","pmd_faults","needdsync","pmd_needdsync","insert_pfn_mkwrite","pmd_fallbacks","lost_events"},"pmd":null|{"data_phys","map_addrs":[...],"extents":[{"file","logical","physical","length","flags"}]}}}`.
    /// When PMD faults fell back to PTEs, the kernel condition that refused them is printed on
    /// stderr ("no PMD fault: ...").
    Run(RunArgs),
}

/// Arguments of `vm setup`.
#[derive(Debug, clap::Args)]
pub struct SetupArgs {
    /// Cache folder (default: $XDG_CACHE_HOME/daxray or ~/.cache/daxray).
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Debian kernel series to fetch (repeat for several, e.g. --kernel-series 6.1
    /// --kernel-series 6.12, for `replay`'s kernel matrix). Default: the release's
    /// linux-image-amd64.
    #[arg(long, value_name = "SERIES")]
    pub kernel_series: Vec<String>,
}

/// Arguments of `vm run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Kernel and QEMU options.
    #[command(flatten)]
    pub vm: VmArgs,
    /// File system: ext4, ext4-nojournal, ext4-fc or xfs.
    #[arg(long, default_value = "ext4")]
    pub fs: String,
    /// Plain MAP_SHARED instead of MAP_SHARED_VALIDATE|MAP_SYNC.
    #[arg(long)]
    pub no_sync: bool,
    /// Scenario name.
    #[arg(long, default_value = "seq-sparse")]
    pub scenario: String,
    /// Number of stores.
    #[arg(long, default_value_t = 4)]
    pub pages: u32,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Fault size: pte or pmd.
    #[arg(long, default_value = "pte", value_parser = ["pte", "pmd"])]
    pub fault_size: String,
    /// Namespace alignment in bytes (4096 or 2097152).
    #[arg(long, default_value_t = 2 << 20)]
    pub align: u64,
    /// Keep the NVDIMM image here (default: a temporary folder, removed).
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,
    /// Keep the console log here.
    #[arg(long, value_name = "FILE")]
    pub console: Option<PathBuf>,
    /// Tests of the host only: make the guest break the protocol (garbage, long-line,
    /// unknown-message, foreign-store, hang, panic, flood, trickle, flood-valid).
    #[arg(long, hide = true, value_name = "HOW")]
    pub misbehave: Option<String>,
}

/// Run a `vm` subcommand.
pub fn run(c: &VmCommand, g: &Global) -> Result<i32> {
    match c {
        VmCommand::Setup(a) => {
            let series: Vec<Option<&str>> = if a.kernel_series.is_empty() {
                vec![None]
            } else {
                a.kernel_series.iter().map(|s| Some(s.as_str())).collect()
            };
            let all = series
                .iter()
                .map(|s| crate::vm::setup(a.cache.as_deref(), *s))
                .collect::<Result<Vec<_>>>()?;
            if g.json {
                let one = |x: &Assets| serde_json::json!({"kernel": x.kernel, "modules": x.modules, "version": x.version});
                let mut v = one(&all[0]);
                v["qemu"] = serde_json::json!(crate::vm::assets::which("qemu-system-x86_64"));
                v["busybox"] = serde_json::json!(crate::vm::assets::which("busybox"));
                v["kernels"] = all.iter().map(one).collect();
                output::print_json(&v)?;
            } else {
                let mut s = String::new();
                for x in &all {
                    s.push_str(&format!(
                        "kernel  {}\nmodules {}\nversion {}\n",
                        x.kernel.display(),
                        x.modules.display(),
                        x.version
                    ));
                }
                s.push_str("qemu-system-x86_64 and a static busybox: found\n");
                output::write_stdout(s.as_bytes())?;
            }
            Ok(0)
        }
        VmCommand::Run(a) => run_once(a),
    }
}

fn run_once(a: &RunArgs) -> Result<i32> {
    let fs = FsChoice::parse(&a.fs)
        .ok_or_else(|| Error::Usage(format!("--fs {}: use ext4, ext4-nojournal or xfs", a.fs)))?;
    if !crate::agent::scenario::is_known(&a.scenario) {
        return Err(Error::Usage(format!("unknown scenario {:?}", a.scenario)));
    }
    let tmp = tempfile::Builder::new()
        .prefix("daxray-run-")
        .tempdir()
        .map_err(|e| Error::External(e.to_string()))?;
    let mut cfg = a.vm.config(tmp.path(), fs)?;
    if let Some(i) = &a.image {
        cfg.image = i.clone();
    }
    if let Some(c) = &a.console {
        cfg.console_log = c.clone();
    }
    let job = Job {
        fs,
        sync: !a.no_sync,
        scenario: a.scenario.clone(),
        pages: a.pages,
        seed: a.seed,
        fault_size: if a.fault_size == "pmd" { FaultSize::Pmd } else { FaultSize::Pte },
        namespace_align: a.align,
        journal_mib: None,
        misbehave: match &a.misbehave {
            None => None,
            Some(m) => Some(Misbehave::parse(m).ok_or_else(|| Error::Usage(format!("--misbehave {m}?")))?),
        },
    };
    let mut vm = Vm::boot(&cfg, &job)?;
    let r = vm.ready().clone();
    let line = serde_json::json!({"Ready": {"kernel": r.kernel, "fs": r.fs, "dataoff": r.dataoff}});
    output::write_stdout(format!("{line}\n").as_bytes())?;
    let timeout = vm.event_timeout();
    loop {
        let m = vm.recv(timeout)?;
        let s = serde_json::to_string(&m).map_err(|e| Error::External(e.to_string()))?;
        output::write_stdout(format!("{s}\n").as_bytes())?;
        match m {
            GuestMsg::Store(_) => vm.send(&HostMsg::Go)?,
            GuestMsg::Done { stores, trace, pmd } => {
                if job.fault() == FaultSize::Pmd && (trace.pmd_fallbacks > 0 || trace.pmd_faults < stores) {
                    for why in crate::replay::run::pmd_refused(&job, &trace, pmd.as_ref()) {
                        eprintln!("daxray: no PMD fault: {why}");
                    }
                }
                break;
            }
            GuestMsg::Error { message } => {
                return Err(Error::External(format!("the guest failed: {message}")));
            }
            _ => {}
        }
    }
    vm.finish(Duration::from_secs(60))?;
    Ok(0)
}
