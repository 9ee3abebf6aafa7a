//! The guest VM: kernel assets ([`setup`]), the initramfs ([`initramfs`]), QEMU with an emulated
//! NVDIMM backed by an image file, the agent channel (the guest's second serial port, a unix
//! socket here) and QMP ([`qmp`]) to stop and resume the machine.
//!
//! Because the NVDIMM's backend is a shared file mapping, every guest store is visible in the
//! image file at once; after [`Vm::stop`] the image is a crash state that can be checked in
//! place, and [`Vm::cont`] resumes the guest.

pub mod assets;
pub mod guard;
pub mod initramfs;
pub mod lock;
pub mod media;
pub mod qmp;
pub mod text;

pub use assets::{Assets, setup};
pub use lock::{VmLock, exclusive_lock};
use text::{last_lines, sanitize_msg};
pub use text::{log_tail, sanitize};

use crate::agent::proto::{self, FsChoice, GuestMsg, HostMsg, Job};
use crate::error::{Error, Result};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The console log may not grow beyond this: a guest that floods it is stopped.
pub const CONSOLE_LIMIT: u64 = 64 << 20;
/// What is kept of the console log after a flood: its last bytes.
pub const CONSOLE_KEEP: u64 = 1 << 20;
/// How often the console watchdog looks at the console log's size.
const WATCH_EVERY: Duration = Duration::from_millis(50);

/// How to run the guest.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// Kernel and modules.
    pub assets: Assets,
    /// The NVDIMM backing file; created sparse by [`Vm::boot`] if absent.
    pub image: PathBuf,
    /// Size of the NVDIMM (and of the image file): 256 MiB for ext4, 512 MiB for XFS.
    pub image_size: u64,
    /// Guest RAM in MiB.
    pub mem_mb: u32,
    /// `tcg` (software emulation, the default) or `kvm`.
    pub accel: String,
    /// Where the guest's kernel console (ttyS0) goes.
    pub console_log: PathBuf,
    /// Longest wait for the guest's `Ready` (boot, namespace, mkfs, mount).
    pub boot_timeout: Duration,
    /// Default longest wait for any later message.
    pub event_timeout: Duration,
    /// A folder for the initramfs cache fallback and scratch files.
    pub work_dir: PathBuf,
    /// Longest life of the whole guest, from the start of QEMU: however the guest talks, the
    /// host gives up (and kills QEMU) after this.
    pub run_timeout: Duration,
    /// The console log may not grow beyond this many bytes: a watchdog kills QEMU when it does.
    pub console_limit: u64,
    /// After a flood, only the last this many bytes of the console log are kept.
    pub console_keep: u64,
    /// Where the bytes of freshly made file systems are kept across boots (see [`media`]), by
    /// initramfs (so by mkfs binary), kernel, image size, namespace alignment and mkfs options;
    /// None: only within one boot.
    pub format_cache: Option<PathBuf>,
}

impl VmConfig {
    /// A configuration with the usual values: image `work_dir/pmem.img` sized for `fs`,
    /// 512 MiB RAM, TCG, console `work_dir/console.log`, 300 s boot and 120 s event timeouts,
    /// 12 h for the whole run, console capped at [`CONSOLE_LIMIT`] (keeping [`CONSOLE_KEEP`]).
    pub fn new(assets: Assets, work_dir: &Path, fs: FsChoice) -> VmConfig {
        VmConfig {
            assets,
            image: work_dir.join("pmem.img"),
            image_size: fs.default_image_size(),
            mem_mb: 512,
            accel: "tcg".into(),
            console_log: work_dir.join("console.log"),
            boot_timeout: Duration::from_secs(300),
            event_timeout: Duration::from_secs(120),
            work_dir: work_dir.to_path_buf(),
            run_timeout: Duration::from_secs(12 * 3600),
            console_limit: CONSOLE_LIMIT,
            console_keep: CONSOLE_KEEP,
            format_cache: assets::default_cache().ok().map(|c| c.join("formats")),
        }
    }
}

/// What the guest said in its `Ready` message.
#[derive(Debug, Clone)]
pub struct ReadyInfo {
    /// Guest kernel release.
    pub kernel: String,
    /// File system made.
    pub fs: FsChoice,
    /// Byte offset of the file system in the image.
    pub dataoff: u64,
}

/// QEMU, shared with the console watchdog (which may kill it).
type Shared = Arc<Mutex<Option<Child>>>;

/// Watches the console log's size while the guest runs: past the limit it kills QEMU at once,
/// so that a flooding guest cannot fill the disk while the host is busy elsewhere.
struct Watchdog {
    stop: Arc<AtomicBool>,
    flooded: Arc<AtomicU64>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn start(child: Shared, console: PathBuf, limit: u64) -> Watchdog {
        let stop = Arc::new(AtomicBool::new(false));
        let flooded = Arc::new(AtomicU64::new(0));
        let (s, f) = (stop.clone(), flooded.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let len = std::fs::metadata(&console).map(|m| m.len()).unwrap_or(0);
                if len > limit {
                    f.store(len, Ordering::Relaxed);
                    if let Some(c) = child.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                        // Kill on an already reaped child signals nothing (std keeps its status).
                        let _ = c.kill();
                    }
                    return;
                }
                std::thread::sleep(WATCH_EVERY);
            }
        });
        Watchdog { stop, flooded, handle: Some(handle) }
    }

    /// The console's size when the watchdog found it over the limit (and killed QEMU), else 0.
    fn flooded(&self) -> u64 {
        self.flooded.load(Ordering::Relaxed)
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A running guest. Dropping it kills QEMU and removes the sockets and QEMU's log.
///
/// Every message goes through [`guard::Guard`]; any error from [`Vm::recv`] (malformed or
/// undefined message, timeout, panic, flood, QEMU's exit) kills QEMU before it is returned.
pub struct Vm {
    child: Shared,
    pid: u32,
    agent: UnixStream,
    framer: proto::LineFramer,
    guard: guard::Guard,
    qmp: qmp::Qmp,
    image: PathBuf,
    console_log: PathBuf,
    console_scanned: u64,
    console_limit: u64,
    console_keep: u64,
    qemu_log: PathBuf,
    ready: ReadyInfo,
    event_timeout: Duration,
    boot_timeout: Duration,
    /// The bytes of each file system made in this boot, by [`Job::format_key`] (None: too big
    /// to keep).
    formats: std::collections::HashMap<String, Option<media::Snapshot>>,
    /// Where kept file systems go across boots, and the start of their file names there.
    format_cache: Option<(PathBuf, String)>,
    /// mkfs runs in the guest, and file systems the host put back instead, in this boot.
    counts: (u64, u64),
    run_deadline: Instant,
    run_timeout: Duration,
    watchdog: Watchdog,
    sockets: Option<tempfile::TempDir>,
    sockets_path: PathBuf,
    _lock: VmLock,
}

/// The kernel command line for a job.
/// `restored`: the host put back a kept file system for the job (`daxray.restored=1`: the guest
/// mounts it without mkfs).
fn cmdline(job: &Job, restored: bool) -> Result<String> {
    let json = serde_json::to_vec(job).map_err(|e| Error::External(format!("encoding the job: {e}")))?;
    Ok(format!(
        "console=ttyS0,115200 panic=-1 loglevel=5 mitigations=off tsc=reliable no_timer_check rdinit=/init daxray.job={}{}",
        hex::encode(json),
        if restored { " daxray.restored=1" } else { "" }
    ))
}

/// The file a kept file system for `job` lives in under the format cache `dir`.
fn cached_format_path(dir: &Path, base: &str, job: &Job) -> PathBuf {
    let name: String = format!("{base}-{}", job.format_key())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' })
        .collect();
    dir.join(format!("{name}.dxformat"))
}

impl Vm {
    /// Build the initramfs (cached), start QEMU, wait for the guest's `Ready`, send the job.
    /// The guest's `Probe` is then the first message [`Vm::recv`] returns.
    pub fn boot(cfg: &VmConfig, job: &Job) -> Result<Vm> {
        let qemu = assets::which("qemu-system-x86_64").ok_or_else(|| {
            Error::External("qemu-system-x86_64 is missing (apt-get install qemu-system-x86)".into())
        })?;
        if job.fs.is_xfs() && cfg.image_size < (400 << 20) {
            return Err(Error::Usage(format!(
                "XFS needs a file system of at least 300 MiB: use an image of 512 MiB, not {} bytes",
                cfg.image_size
            )));
        }
        if cfg.image_size < (64 << 20) || !cfg.image_size.is_multiple_of(2 << 20) {
            return Err(Error::Usage(format!(
                "image size {} must be a multiple of 2 MiB and at least 64 MiB",
                cfg.image_size
            )));
        }
        std::fs::create_dir_all(&cfg.work_dir).map_err(|e| Error::io(&cfg.work_dir, e))?;
        let lock = exclusive_lock()?;
        // The guest writes the image: never one that is mounted or behind a loop device.
        crate::oracle::refuse_in_use(&cfg.image, "the VM's NVDIMM image")?;
        crate::oracle::refuse_in_use(&cfg.console_log, "the VM's console log")?;
        prepare_image(&cfg.image, cfg.image_size)?;
        let cache = assets::default_cache().unwrap_or_else(|_| cfg.work_dir.clone()).join("initramfs");
        let initrd = initramfs::build(&cfg.assets, &cache)?;
        let format_cache = cfg.format_cache.as_ref().map(|d| {
            let stem = initrd.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let base = format!("{stem}-{}-{}-{}", cfg.assets.version, cfg.image_size, job.namespace_align);
            (d.clone(), base)
        });
        // A file system kept from an earlier boot with the same initramfs, kernel and geometry:
        // put it on the media now and let the guest mount it without mkfs.
        let mut formats = std::collections::HashMap::new();
        let restored_first = format_cache
            .as_ref()
            .map(|(d, b)| cached_format_path(d, b, job))
            .and_then(|p| media::Snapshot::load(&p).ok())
            .filter(|snap| snap.restore(&cfg.image).is_ok());
        if let Some(snap) = &restored_first {
            formats.insert(job.format_key(), Some(snap.clone()));
        }

        let sockets = tempfile::Builder::new()
            .prefix("daxray-vm-")
            .tempdir()
            .map_err(|e| Error::External(format!("making a socket folder: {e}")))?;
        let agent_sock = sockets.path().join("agent.sock");
        let qmp_sock = sockets.path().join("qmp.sock");
        let qemu_log = sockets.path().join("qemu.log");
        let _ = std::fs::remove_file(&cfg.console_log);
        let accel = match cfg.accel.as_str() {
            "tcg" => vec!["-accel", "tcg"],
            "kvm" => vec!["-accel", "kvm", "-cpu", "host"],
            other => return Err(Error::Usage(format!("--accel {other}: use tcg or kvm"))),
        };
        let mut cmd = Command::new(qemu);
        cmd.args(["-machine", "pc,nvdimm=on"])
            .args(accel)
            .args(["-smp", "1", "-m"])
            .arg(format!("{}M,slots=2,maxmem=2G", cfg.mem_mb))
            .arg("-object")
            .arg(format!(
                "memory-backend-file,id=mem1,share=on,mem-path={},size={}",
                cfg.image.display(),
                cfg.image_size
            ))
            .args(["-device", "nvdimm,id=nvdimm1,memdev=mem1"])
            .arg("-kernel")
            .arg(&cfg.assets.kernel)
            .arg("-initrd")
            .arg(&initrd)
            .arg("-append")
            .arg(cmdline(job, restored_first.is_some())?)
            .args(["-nodefaults", "-display", "none", "-no-reboot"])
            .arg("-serial")
            .arg(format!("file:{}", cfg.console_log.display()))
            .arg("-chardev")
            .arg(format!("socket,id=agent,path={},server=on,wait=off", agent_sock.display()))
            .args(["-serial", "chardev:agent"])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", qmp_sock.display()))
            .stdin(Stdio::null());
        let log = File::create(&qemu_log).map_err(|e| Error::io(&qemu_log, e))?;
        let log2 = log.try_clone().map_err(|e| Error::io(&qemu_log, e))?;
        cmd.stdout(log).stderr(log2);
        let mut child = cmd.spawn().map_err(|e| Error::External(format!("starting QEMU: {e}")))?;
        let run_deadline = Instant::now() + cfg.run_timeout;

        // Connect the agent channel before the guest boots (bytes to a port no one holds are lost).
        let t0 = Instant::now();
        let agent = loop {
            match UnixStream::connect(&agent_sock) {
                Ok(s) => break s,
                Err(e) => {
                    if let Ok(Some(st)) = child.try_wait() {
                        return Err(Error::External(format!(
                            "QEMU exited at start ({st}): {}",
                            log_tail(&qemu_log, 4000).trim()
                        )));
                    }
                    if t0.elapsed() > Duration::from_secs(20) {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(Error::External(format!(
                            "QEMU's agent socket did not appear within 20 s ({e}): {}",
                            log_tail(&qemu_log, 4000).trim()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        };
        let qmp = match qmp::Qmp::connect(&qmp_sock, Duration::from_secs(20)) {
            Ok(q) => q,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        agent
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|e| Error::External(format!("agent socket: {e}")))?;
        let pid = child.id();
        let child: Shared = Arc::new(Mutex::new(Some(child)));
        let watchdog = Watchdog::start(child.clone(), cfg.console_log.clone(), cfg.console_limit);
        let sockets_path = sockets.path().to_path_buf();
        let mut vm = Vm {
            child,
            pid,
            agent,
            framer: proto::LineFramer::new(),
            guard: guard::Guard::new(job),
            qmp,
            image: cfg.image.clone(),
            console_log: cfg.console_log.clone(),
            console_scanned: 0,
            console_limit: cfg.console_limit,
            console_keep: cfg.console_keep,
            qemu_log,
            ready: ReadyInfo { kernel: String::new(), fs: job.fs, dataoff: 0 },
            event_timeout: cfg.event_timeout,
            boot_timeout: cfg.boot_timeout,
            formats,
            format_cache,
            counts: (0, u64::from(restored_first.is_some())),
            run_deadline,
            run_timeout: cfg.run_timeout,
            watchdog,
            sockets: Some(sockets),
            sockets_path,
            _lock: lock,
        };
        vm.await_ready(job, cfg.boot_timeout)?;
        Ok(vm)
    }

    /// Wait for the guest's `Ready` for `job` (keeping the bytes of a file system it has just
    /// made, see [`media`]), then confirm the job.
    fn await_ready(&mut self, job: &Job, timeout: Duration) -> Result<()> {
        let mut m = self.recv(timeout)?;
        if let GuestMsg::Formatted { dataoff } = m {
            self.counts.0 += 1;
            self.keep_format(job, dataoff)?;
            self.send(&HostMsg::Go)?;
            m = self.recv(timeout)?;
        }
        match m {
            GuestMsg::Ready { kernel, fs, dataoff } => {
                if fs != job.fs {
                    let what =
                        format!("the guest made {} but the job asked for {}", fs.name(), job.fs.name());
                    return Err(self.abort(&what));
                }
                let kept = self.formats.get(&job.format_key()).and_then(|s| s.as_ref().map(|s| s.start()));
                if let Some(start) = kept.filter(|&st| st != dataoff) {
                    let what = format!(
                        "the guest's file system starts at byte {dataoff}, the kept one at {start}: the namespace differs"
                    );
                    return Err(self.abort(&what));
                }
                self.ready = ReadyInfo { kernel, fs, dataoff };
            }
            GuestMsg::Error { message } => {
                return Err(self.abort(&format!("the guest failed before it was ready: {message}")));
            }
            other => {
                let what = format!("expected Ready from the guest, got {}", guard::kind(&other));
                return Err(self.abort(&what));
            }
        }
        self.send(&HostMsg::Job(job.clone()))
    }

    /// Keep the bytes of the file system the guest just made for `job` (once per mkfs key).
    fn keep_format(&mut self, job: &Job, dataoff: u64) -> Result<()> {
        let key = job.format_key();
        if self.formats.contains_key(&key) {
            return Ok(());
        }
        let len = std::fs::metadata(&self.image).map(|m| m.len()).unwrap_or(0);
        if dataoff == 0 || dataoff >= len {
            let what =
                format!("the guest said its file system starts at byte {dataoff} of a {len}-byte image");
            return Err(self.abort(&what));
        }
        let snap = match media::Snapshot::capture(&self.image, dataoff) {
            Ok(s) => s,
            Err(e) => return Err(self.abort(&format!("keeping the new file system's bytes: {e}"))),
        };
        // Kept across boots too; a cache that cannot be written only costs the next boot a mkfs.
        if let (Some(s), Some((dir, base))) = (&snap, &self.format_cache)
            && std::fs::create_dir_all(dir).is_ok()
        {
            let _ = s.save(&cached_format_path(dir, base, job));
        }
        self.formats.insert(key, snap);
        Ok(())
    }

    /// After the guest's `Done`: run `job` next in the same boot. When the guest is idle (its
    /// file system unmounted), the host puts back the bytes mkfs made for a job with the same
    /// mkfs options, if it kept them ([`media`]), else the guest runs mkfs. The guest's `Probe`
    /// is then the first message [`Vm::recv`] returns, as after [`Vm::boot`].
    pub fn next_job(&mut self, job: &Job) -> Result<()> {
        match self.recv(self.event_timeout)? {
            GuestMsg::Idle => {}
            GuestMsg::Error { message } => {
                return Err(self.abort(&format!("the guest failed after its run: {message}")));
            }
            other => {
                let what = format!("expected Idle from the guest, got {}", guard::kind(&other));
                return Err(self.abort(&what));
            }
        }
        let key = job.format_key();
        if !self.formats.contains_key(&key)
            && let Some((dir, base)) = &self.format_cache
            && let Ok(snap) = media::Snapshot::load(&cached_format_path(dir, base, job))
        {
            self.formats.insert(key.clone(), Some(snap));
        }
        let mut restored = false;
        if let Some(Some(snap)) = self.formats.get(&key) {
            if let Err(e) = snap.restore(&self.image) {
                return Err(self.abort(&format!("putting back the file system's bytes: {e}")));
            }
            restored = true;
            self.counts.1 += 1;
        }
        self.send(&HostMsg::Next { job: job.clone(), restored })?;
        self.guard = guard::Guard::new(job);
        self.await_ready(job, self.boot_timeout)
    }

    /// In this boot: how many times the guest ran mkfs, and how many file systems the host put
    /// back instead (kept from an earlier mkfs with the same options, in this boot or before).
    pub fn format_counts(&self) -> (u64, u64) {
        self.counts
    }

    /// Bytes the guest's console log holds so far (to cut one job's part out of a boot's log).
    pub fn console_len(&self) -> u64 {
        std::fs::metadata(&self.console_log).map(|m| m.len()).unwrap_or(0)
    }

    /// What the guest said when it was ready (kernel release, file system, dataoff).
    pub fn ready(&self) -> &ReadyInfo {
        &self.ready
    }

    /// The default event timeout from the configuration.
    pub fn event_timeout(&self) -> Duration {
        self.event_timeout
    }

    fn fail(&mut self, what: &str) -> Error {
        Error::External(format!(
            "{what}\n--- guest console (last lines of {}) ---\n{}",
            self.console_log.display(),
            last_lines(&log_tail(&self.console_log, 6000), 40)
        ))
    }

    /// End the run: kill QEMU, cap the console log, and return the error for `what` with the
    /// console's tail.
    fn abort(&mut self, what: &str) -> Error {
        self.kill();
        self.trim_console();
        self.fail(what)
    }

    /// Kill QEMU (if it still runs) and reap it; stop the console watchdog.
    fn kill(&mut self) {
        self.watchdog.stop();
        if let Some(mut c) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Keep only the last `console_keep` bytes of a console log over `console_limit`.
    fn trim_console(&mut self) {
        let len = std::fs::metadata(&self.console_log).map(|m| m.len()).unwrap_or(0);
        if len <= self.console_limit {
            return;
        }
        let Ok(mut f) = std::fs::OpenOptions::new().read(true).write(true).open(&self.console_log) else {
            return;
        };
        let keep = self.console_keep.min(len);
        let mut tail = Vec::new();
        let header = format!("[daxray: console log cut: {len} bytes written, the last {keep} kept]\n");
        if f.seek(SeekFrom::Start(len - keep)).is_ok()
            && Read::by_ref(&mut f).take(keep).read_to_end(&mut tail).is_ok()
        {
            let _ = f.set_len(0);
            let _ = f.seek(SeekFrom::Start(0));
            let _ = f.write_all(header.as_bytes()).and_then(|_| f.write_all(&tail));
        }
    }

    /// QEMU's process id (it may have exited: see [`Vm::qemu_running`]).
    pub fn qemu_pid(&self) -> u32 {
        self.pid
    }

    /// Whether QEMU still runs (it is killed by any error from [`Vm::recv`]).
    pub fn qemu_running(&self) -> bool {
        self.child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The private folder of this guest (sockets, QEMU's log), removed when the `Vm` is dropped.
    pub fn scratch_dir(&self) -> &Path {
        &self.sockets_path
    }

    /// Scan the console log written since the last call: panics and floods end the run.
    fn check_console(&mut self) -> Result<()> {
        let len = std::fs::metadata(&self.console_log).map(|m| m.len()).unwrap_or(0);
        let flooded = self.watchdog.flooded().max(if len > self.console_limit { len } else { 0 });
        if flooded > 0 {
            let what = format!(
                "the guest flooded its console ({flooded} bytes, over the {}-byte limit); QEMU killed",
                self.console_limit
            );
            return Err(self.abort(&what));
        }
        if len > self.console_scanned {
            let from = self.console_scanned.saturating_sub(64);
            let mut panicked = None;
            if let Ok(mut f) = File::open(&self.console_log) {
                let _ = f.seek(SeekFrom::Start(from));
                let mut v = Vec::new();
                let _ = f.take(len - from).read_to_end(&mut v);
                let text = String::from_utf8_lossy(&v);
                if let Some(at) = text.find("Kernel panic") {
                    // The kernel's own panic line, named in the error's first line.
                    let line: String = text[at..].lines().next().unwrap_or("").chars().take(200).collect();
                    panicked = Some(line);
                }
            }
            self.console_scanned = len;
            if let Some(line) = panicked {
                // Let the kernel finish its panic report before QEMU is killed.
                self.wait_exit(Duration::from_secs(2));
                return Err(self.abort(&format!("the guest kernel panicked ({}); QEMU killed", line.trim())));
            }
        }
        Ok(())
    }

    /// The next message from the guest, waiting at most `timeout` (and never past the run's
    /// deadline). Only defined messages, in the order the protocol allows ([`guard::Guard`]),
    /// are returned; garbage, an undefined or out-of-place message, a timeout, a panic, a console
    /// flood or QEMU's exit is an error with the console's tail, and QEMU is killed before it is
    /// returned. A [`GuestMsg::Error`] is returned as a message.
    pub fn recv(&mut self, timeout: Duration) -> Result<GuestMsg> {
        let start = Instant::now();
        let deadline = (start + timeout).min(self.run_deadline);
        loop {
            match self.framer.next_line() {
                Ok(Some(line)) => {
                    let m = match proto::decode::<GuestMsg>(&line, "guest") {
                        Ok(m) => m,
                        Err(e) => return Err(self.abort(&e.to_string())),
                    };
                    if let Err(e) = self.guard.check(&m) {
                        return Err(self.abort(&e.to_string()));
                    }
                    return Ok(sanitize_msg(m));
                }
                Ok(None) => {}
                Err(e) => {
                    let what = e.to_string().replace("the peer", "the guest");
                    return Err(self.abort(&what));
                }
            }
            self.check_console()?;
            // Checked on every pass, not only when the channel is quiet: a guest that streams
            // bytes without end must not keep the host here.
            let now = Instant::now();
            if now >= deadline {
                let what = if now >= self.run_deadline {
                    format!("the guest ran past the run's limit of {:?}; QEMU killed", self.run_timeout)
                } else {
                    format!("no message from the guest within {timeout:?}; QEMU killed")
                };
                return Err(self.abort(&what));
            }
            let mut chunk = [0u8; 8192];
            match self.agent.read(&mut chunk) {
                Ok(0) => {
                    let st = self.wait_exit(Duration::from_secs(5));
                    self.check_console()?;
                    return Err(self.abort(&format!("the guest's channel closed (QEMU {st})")));
                }
                Ok(n) => self.framer.push(&chunk[..n]),
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    let exited = self
                        .child
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .as_mut()
                        .and_then(|c| c.try_wait().ok().flatten());
                    if let Some(st) = exited {
                        self.check_console()?;
                        let ql = sanitize(&log_tail(&self.qemu_log, 2000), 2000);
                        return Err(self.abort(&format!(
                            "QEMU exited ({st}) while waiting for the guest. {}",
                            ql.trim()
                        )));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.abort(&format!("reading the guest's channel: {e}"))),
            }
        }
    }

    /// Send a message to the guest. A failure kills QEMU.
    pub fn send(&mut self, m: &HostMsg) -> Result<()> {
        let bytes = proto::encode(m)?;
        if let Err(e) = self.agent.write_all(&bytes).and_then(|_| self.agent.flush()) {
            return Err(self.abort(&format!("sending to the guest: {e}")));
        }
        Ok(())
    }

    /// Freeze the guest (QMP `stop`): the image is then a crash state.
    pub fn stop(&mut self) -> Result<()> {
        self.qmp.execute("stop").map(|_| ())
    }

    /// Resume the guest (QMP `cont`).
    pub fn cont(&mut self) -> Result<()> {
        self.qmp.execute("cont").map(|_| ())
    }

    /// The guest's run state from QMP (`running`, `paused`, ...).
    pub fn status(&mut self) -> Result<String> {
        self.qmp.status()
    }

    /// The NVDIMM backing file.
    pub fn image(&self) -> &Path {
        &self.image
    }

    /// The guest's console log.
    pub fn console_log(&self) -> &Path {
        &self.console_log
    }

    fn wait_exit(&mut self, timeout: Duration) -> String {
        let t0 = Instant::now();
        loop {
            let mut g = self.child.lock().unwrap_or_else(|e| e.into_inner());
            let Some(c) = g.as_mut() else { return "already reaped".into() };
            match c.try_wait() {
                Ok(Some(st)) => {
                    *g = None;
                    return format!("exited: {st}");
                }
                Ok(None) if t0.elapsed() < timeout => {
                    drop(g);
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(None) => return "still running".into(),
                Err(e) => return format!("unknown state: {e}"),
            }
        }
    }

    /// Ask the guest to power off (after its `Done`, or after an `Error`, when it powers off by
    /// itself) and wait for QEMU to exit, else kill QEMU and say so.
    pub fn finish(mut self, timeout: Duration) -> Result<()> {
        // A guest that already powers off has closed nothing yet but reads no more: the message
        // is then lost, which is fine.
        let _ = proto::encode(&HostMsg::PowerOff)
            .and_then(|b| self.agent.write_all(&b).map_err(|e| Error::External(e.to_string())));
        let st = self.wait_exit(timeout);
        if st.starts_with("exited") {
            self.check_console()?;
            self.kill();
            return Ok(());
        }
        Err(self.abort(&format!("the guest did not power off within {timeout:?}; QEMU killed")))
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
        self.trim_console();
        if let Some(d) = self.sockets.take() {
            let _ = d.close();
        }
    }
}

/// Create the image sparse if absent, size it, and clear an old namespace info block (at byte
/// 4096) so the guest makes a fresh fsdax namespace with the job's alignment.
fn prepare_image(image: &Path, size: u64) -> Result<()> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(image)
        .map_err(|e| Error::io(image, e))?;
    f.set_len(size).map_err(|e| Error::io(image, e))?;
    use std::os::unix::fs::FileExt;
    f.write_all_at(&[0u8; 4096], 4096).map_err(|e| Error::io(image, e))?;
    f.sync_all().map_err(|e| Error::io(image, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_text_is_sanitized() {
        let s = sanitize("ok\tline\n\x1b[2Jclear\r\x07bell", 100);
        assert!(!s.chars().any(|c| c.is_control() && c != '\n' && c != '\t'), "{s:?}");
        assert!(s.contains("\\u{1b}[2J") && s.contains("ok\tline\n"), "{s:?}");
        assert_eq!(sanitize(&"x".repeat(10), 4), "xxxx...");
        let m = sanitize_msg(GuestMsg::Error { message: "\x1b]0;owned\x07".into() });
        match m {
            GuestMsg::Error { message } => assert!(!message.contains('\x1b'), "{message:?}"),
            other => panic!("{other:?}"),
        }
    }
}
