//! The guest side of the replay engine and of the fault-latency bench: `daxray agent`, run as
//! PID 1 inside the VM (the initramfs's `/init` execs it).
//!
//! It opens its private channel (`/dev/ttyS1`, raw) before saying anything, reads the job from
//! the kernel command line, makes the fsdax namespace ([`namespace`]), formats and mounts the
//! file system with `-o dax`, sends `Ready` and a [`probe`] report, confirms the job sent by the
//! host, enables the kernel's `fs_dax` trace events ([`trace`]), runs the [`scenario`] and sends
//! `Done` with the trace counts. It then unmounts and waits: the host sends the next job of the
//! same boot (formatted anew on the same namespace) or asks for power-off. On any error it sends
//! `Error` and powers off: the guest never hangs waiting for nobody (a host that is gone closes
//! the channel).

pub mod misbehave;
pub mod namespace;
pub mod probe;
pub mod proto;
pub mod scenario;
pub mod trace;

use crate::error::{Error, Result};
use proto::{GuestMsg, HostMsg, Job};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

/// Where the guest mounts the file system.
pub const MOUNT_POINT: &str = "/mnt";
/// The guest's private serial port.
pub const CHANNEL: &str = "/dev/ttyS1";

/// Something that carries protocol messages to and from the host.
pub trait Link {
    /// Send one message.
    fn send(&mut self, m: &GuestMsg) -> Result<()>;
    /// Wait for the next message.
    fn recv(&mut self) -> Result<HostMsg>;
    /// Send bytes as they are (test misbehaviour only: [`misbehave`]).
    fn send_raw(&mut self, bytes: &[u8]) -> Result<()>;
}

/// The serial channel to the host.
pub struct Channel {
    reader: BufReader<File>,
    writer: File,
}

impl Channel {
    /// Open a tty raw (no echo, no line editing), read-write.
    pub fn open(path: &Path) -> Result<Channel> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        crate::sys::set_raw_tty(&f).map_err(|e| Error::io(path, e))?;
        let writer = f.try_clone().map_err(|e| Error::io(path, e))?;
        Ok(Channel { reader: BufReader::new(f), writer })
    }
}

impl Link for Channel {
    fn send(&mut self, m: &GuestMsg) -> Result<()> {
        let b = proto::encode(m)?;
        self.send_raw(&b)
    }

    fn send_raw(&mut self, b: &[u8]) -> Result<()> {
        self.writer
            .write_all(b)
            .and_then(|_| self.writer.flush())
            .and_then(|_| crate::sys::tcdrain(&self.writer))
            .map_err(|e| Error::io(CHANNEL, e))
    }

    fn recv(&mut self) -> Result<HostMsg> {
        loop {
            let mut line = Vec::new();
            let n = Read::take(&mut self.reader, proto::MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)
                .map_err(|e| Error::io(CHANNEL, e))?;
            if n == 0 {
                return Err(Error::External("the host closed the channel".into()));
            }
            if line.len() > proto::MAX_LINE {
                return Err(Error::External("the host sent an over-long line".into()));
            }
            let t = line.trim_ascii();
            if t.is_empty() {
                continue;
            }
            return proto::decode(t, "host");
        }
    }
}

/// The job from the kernel command line (`daxray.job=<hex of JSON>`).
pub fn job_from_cmdline(cmdline: &str) -> Result<Job> {
    let hexjob = cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("daxray.job="))
        .ok_or_else(|| Error::Usage("no daxray.job= on the kernel command line".into()))?;
    let bytes = hex::decode(hexjob).map_err(|e| Error::Usage(format!("daxray.job= is not hex: {e}")))?;
    proto::decode(&bytes, "kernel command line")
}

fn log(msg: &str) {
    eprintln!("daxray-agent: {msg}");
}

/// How long one command in the guest (mkfs, mount, sync, umount) may take under emulation.
pub const GUEST_CMD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(180);

/// Run a command under [`GUEST_CMD_TIMEOUT`], failing with its output (or killing it and saying
/// so when it runs over).
pub(crate) fn run_cmd(prog: &str, args: &[&str]) -> Result<()> {
    crate::oracle::run(prog, args, GUEST_CMD_TIMEOUT).map(|_| ())
}

/// The mkfs options that make 2 MiB aligned extents for PMD faults (`dax_iomap_direct_access`
/// in fs/dax.c refuses a PMD whose pfn is not 2 MiB aligned, and the fault falls back to PTEs).
///
/// ext4: a 2 MiB RAID stripe (`-E stride=512,stripe_width=512`): mballoc honours the stripe
/// (`sbi->s_stripe`) for the 2 MiB allocation `ext4_iomap_alloc` makes on a PMD write fault on a
/// hole, which then starts 2 MiB aligned (checked with FIEMAP in the guest).
///
/// XFS: a 2 MiB stripe unit (`-d su=2m,sw=1`), which `xfs_bmap_btalloc` uses to align the first
/// allocation of a file at offset 0; the file's 2 MiB extent size hint keeps the later ones in
/// 2 MiB units. Two AGs (`agcount=2`) leave room in an AG for the 64 MiB log mkfs.xfs then
/// wants ("Log size must be at least 64MB" with four AGs of a 502 MiB device), and a 4 KiB log
/// stripe unit (`-l su=4096`) replaces the 2 MiB one mkfs.xfs would refuse and shrink.
pub fn pmd_mkfs_options(fs: proto::FsChoice) -> (&'static [&'static str], Option<&'static str>) {
    match fs {
        proto::FsChoice::Xfs | proto::FsChoice::XfsReflink => {
            (&["-d", "su=2m,sw=1,agcount=2"], Some("su=4096"))
        }
        _ => (&["-E", "stride=512,stripe_width=512"], None),
    }
}

/// Format the namespace for `job`.
fn make_fs(job: &Job, dev: &str) -> Result<()> {
    use proto::{FaultSize, FsChoice};
    let pmd = job.fault() == FaultSize::Pmd;
    let (pmd_opts, pmd_log) = pmd_mkfs_options(job.fs);
    let journal = job.journal_mib.map(|m| m.to_string());
    match job.fs {
        FsChoice::Ext4 | FsChoice::Ext4NoJournal | FsChoice::Ext4FastCommit => {
            let mut a = vec!["-F", "-q", "-b", "4096"];
            match job.fs {
                FsChoice::Ext4NoJournal => a.extend(["-O", "^has_journal"]),
                FsChoice::Ext4FastCommit => a.extend(["-O", "fast_commit"]),
                _ => {}
            }
            let size = journal.as_ref().map(|m| format!("size={m}"));
            if let (Some(size), false) = (&size, job.fs == FsChoice::Ext4NoJournal) {
                a.extend(["-J", size.as_str()]);
            }
            if pmd {
                a.extend(pmd_opts);
            }
            a.push(dev);
            let t = std::time::Instant::now();
            run_cmd("/sbin/mkfs.ext4", &a)?;
            log(&format!("mkfs.ext4 in {} ms", t.elapsed().as_millis()));
        }
        FsChoice::Xfs | FsChoice::XfsReflink => {
            let reflink = if job.fs == FsChoice::XfsReflink { "reflink=1" } else { "reflink=0" };
            let mut a = vec!["-f", "-q", "-m", reflink];
            if pmd {
                a.extend(pmd_opts);
            }
            let mut log: Vec<String> = journal.iter().map(|m| format!("size={m}m")).collect();
            if pmd {
                log.extend(pmd_log.map(str::to_string));
            }
            let log = log.join(",");
            if !log.is_empty() {
                a.extend(["-l", log.as_str()]);
            }
            a.push(dev);
            let mut cmd = std::process::Command::new("/sbin/mkfs.xfs");
            cmd.args(&a);
            if journal.is_some() {
                // mkfs.xfs refuses logs under 64 MiB unless it runs under fstests, which these
                // variables announce (xfsprogs' mkfs/xfs_mkfs.c, validate_supported).
                cmd.envs([("TEST_DIR", "1"), ("TEST_DEV", "1"), ("QA_CHECK_FS", "1")]);
            }
            crate::oracle::run_command(
                &mut cmd,
                &format!("/sbin/mkfs.xfs {}", a.join(" ")),
                GUEST_CMD_TIMEOUT,
            )?;
        }
    }
    Ok(())
}

/// Mount the namespace with `-o dax` at [`MOUNT_POINT`].
fn mount_fs(job: &Job, dev: &str) -> Result<()> {
    std::fs::create_dir_all(MOUNT_POINT).map_err(|e| Error::io(MOUNT_POINT, e))?;
    run_cmd("/bin/mount", &["-t", job.fs.mount_type(), "-o", "dax", dev, MOUNT_POINT])
}

/// What the guest does after a job's `Done`.
enum After {
    /// Wait for the host's next job or power-off.
    Wait,
    /// Power off now (a misbehaviour test ended the boot).
    PowerOff,
}

/// The whole boot over `link`: the job on the kernel command line, then every job the host sends
/// with [`HostMsg::Next`] on the same fsdax namespace, until [`HostMsg::PowerOff`] (the caller
/// powers off).
pub fn run_guest(link: &mut dyn Link) -> Result<()> {
    let cmdline = std::fs::read_to_string("/proc/cmdline").map_err(|e| Error::io("/proc/cmdline", e))?;
    let mut job = job_from_cmdline(&cmdline)?;
    let ns = namespace::make_fsdax(job.namespace_align)?;
    log(&format!("fsdax namespace {} dataoff {}", ns.device, ns.dataoff));
    // The host put back a file system kept from an earlier boot (see `crate::vm::media`).
    let mut restored = cmdline.split_whitespace().any(|w| w == "daxray.restored=1");
    loop {
        if let After::PowerOff = run_job(&job, &ns, restored, link)? {
            return Ok(());
        }
        let t = std::time::Instant::now();
        run_cmd("/bin/umount", &[MOUNT_POINT])?;
        log(&format!("unmounted in {} ms", t.elapsed().as_millis()));
        link.send(&GuestMsg::Idle)?;
        match link.recv()? {
            HostMsg::Next { job: j, restored: r } if j.namespace_align == job.namespace_align => {
                job = j;
                restored = r;
            }
            HostMsg::Next { job: j, .. } => {
                return Err(Error::Usage(format!(
                    "the next job wants a namespace aligned to {} but this boot's is aligned to {}",
                    j.namespace_align, job.namespace_align
                )));
            }
            HostMsg::PowerOff => return Ok(()),
            other => return Err(Error::Usage(format!("expected the next job or power-off, got {other:?}"))),
        }
    }
}

/// One job: format (unless the host `restored` the bytes of an earlier mkfs with the same
/// options) and mount, `Ready`, the probe, the host's confirmation, the scenario, `Done`.
fn run_job(job: &Job, ns: &namespace::FsdaxNamespace, restored: bool, link: &mut dyn Link) -> Result<After> {
    log(&format!("job {job:?}"));
    let t = std::time::Instant::now();
    if restored {
        // The host rewrote the media under an unmounted device: drop whatever of the old bytes
        // the kernel still caches before the mount reads them.
        std::fs::write("/proc/sys/vm/drop_caches", "3")
            .map_err(|e| Error::io("/proc/sys/vm/drop_caches", e))?;
    } else {
        make_fs(job, &ns.device)?;
        link.send(&GuestMsg::Formatted { dataoff: ns.dataoff })?;
        match link.recv()? {
            HostMsg::Go => {}
            other => return Err(Error::Usage(format!("expected Go after Formatted, got {other:?}"))),
        }
    }
    mount_fs(job, &ns.device)?;
    log(&format!(
        "file system {} and mounted with -o dax in {} ms",
        if restored { "restored by the host" } else { "made" },
        t.elapsed().as_millis()
    ));
    link.send(&GuestMsg::Ready { kernel: probe::kernel_release(), fs: job.fs, dataoff: ns.dataoff })?;
    let t = std::time::Instant::now();
    let report = probe::probe(Path::new(MOUNT_POINT))?;
    log(&format!("probe in {} ms", t.elapsed().as_millis()));
    link.send(&GuestMsg::Probe(report))?;
    match link.recv()? {
        HostMsg::Job(j) if &j == job => {}
        HostMsg::Job(j) => {
            return Err(Error::Usage(format!("the host's job {j:?} differs from the announced {job:?}")));
        }
        HostMsg::Abort => {
            link.send(&GuestMsg::Done { stores: 0, trace: Default::default(), pmd: None })?;
            return Ok(After::Wait);
        }
        other => return Err(Error::Usage(format!("expected the job from the host, got {other:?}"))),
    }
    if let Some(m) = job.misbehave {
        misbehave::act(m, link)?;
        return Ok(After::PowerOff);
    }
    let bench = job.scenario.starts_with("latency-");
    // Bench jobs trace each configuration themselves.
    let tracer =
        if bench { Err(Error::Usage("traced per configuration".into())) } else { trace::Tracer::start() };
    if let (Err(e), false) = (&tracer, bench) {
        log(&format!("tracing unavailable: {e}"));
    }
    let out = scenario::run(job, Path::new(MOUNT_POINT), link)?;
    let counts = match tracer {
        Ok(t) => t.finish()?,
        Err(_) => Default::default(),
    };
    let stores = out.stores;
    let pmd = out.pmd.map(|mut l| {
        l.data_phys = ns.data_phys;
        for (i, a) in l.map_addrs.iter().enumerate() {
            log(&format!("pmd: mapping {i} at {a:#x}"));
        }
        for e in &l.extents {
            log(&format!(
                "pmd: {} extent logical {:#x} physical {:#x} (guest physical {:#x}) length {:#x} flags {:#x}",
                e.file,
                e.logical,
                e.physical,
                l.data_phys + e.physical,
                e.length,
                e.flags
            ));
        }
        l
    });
    log(&format!("done: {stores} stores, trace {counts:?}"));
    link.send(&GuestMsg::Done { stores, trace: counts, pmd })?;
    Ok(After::Wait)
}

/// `daxray agent`: must be PID 1 in the guest; never returns (powers the machine off).
pub fn agent_main() -> Result<i32> {
    if std::process::id() != 1 {
        return Err(Error::Usage(
            "`daxray agent` runs only as PID 1 inside the daxray guest VM (it reconfigures NVDIMM \
             namespaces and formats /dev/pmem0)"
                .into(),
        ));
    }
    let mut chan = match Channel::open(Path::new(CHANNEL)) {
        Ok(c) => Some(c),
        Err(e) => {
            log(&format!("cannot open the channel: {e}"));
            None
        }
    };
    if let Some(c) = chan.as_mut()
        && let Err(e) = run_guest(c)
    {
        log(&format!("error: {e}"));
        let _ = c.send(&GuestMsg::Error { message: e.to_string() });
    }
    if let Err(e) = run_cmd("/bin/umount", &[MOUNT_POINT]) {
        log(&format!("umount: {e}"));
    }
    let e = crate::sys::sync_and_power_off();
    log(&format!("power off failed: {e}"));
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
