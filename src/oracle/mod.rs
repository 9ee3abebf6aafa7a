//! The kernel as an oracle: make images with the real mkfs, loop-mount them, run seeded
//! workloads through the real kernel, and read back what the kernel shows (`FS_IOC_FIEMAP`,
//! file contents) in the same [`ManifestEntry`](crate::manifest::ManifestEntry) shape that
//! daxray's own model produces, so that tests can compare the two.
//!
//! Everything here runs external programs (mkfs, losetup, mount, umount), each under a timeout,
//! and needs root for mounting. Tests call [`require`] first; when it fails they fail with its
//! message (naming the package to install), unless [`tests_may_skip`] says the user opted out.
//!
//! A "dirty" crash image for recovery tests: [`crash_copy`] runs a workload ([`run_workload`]
//! with `fsync`) on a mount and copies the backing file while it is still mounted (committed
//! journal or log, metadata not checkpointed); [`recovered_manifest`] mounts a second copy of the
//! dirty image so that the kernel recovers it, and takes its [`kernel_manifest`].
//!
//! The kernel's verdict on a crash state's claims: [`kernel_check`] mounts a copy and reads
//! every claim back (the replay engine and the benchmark both ask it).

mod copy;
mod crash;
mod kmanifest;
mod mount;
mod verdicts;
mod workload;

/// The vm layer refuses an image in use through here.
pub use crate::image::refuse_in_use;
pub use copy::{copy_compact, copy_sparse, for_each_nonzero_block};
pub use crash::{crash_copy, recovered_manifest};
pub use kmanifest::{compare_manifests, kernel_manifest, kernel_manifest_with_errors};
pub use mount::{Mount, Refused};
pub use verdicts::{KernelVerdicts, kernel_check, kernel_check_copy, kernel_log};
pub use workload::{WorkloadSpec, WorkloadStats, run_workload};

use crate::error::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The Debian package that provides a tool, for "install X" messages.
fn package_for(tool: &str) -> &'static str {
    match tool {
        "mkfs.ext4" | "mke2fs" | "debugfs" | "dumpe2fs" | "e2fsck" | "tune2fs" => "e2fsprogs",
        "mkfs.xfs" | "xfs_db" | "xfs_io" | "xfs_logprint" | "xfs_repair" => "xfsprogs",
        "qemu-system-x86_64" => "qemu-system-x86",
        "busybox" => "busybox-static",
        "cpio" => "cpio",
        "modinfo" | "insmod" => "kmod",
        "losetup" | "mount" | "umount" => "mount",
        "sha256sum" | "dd" => "coreutils",
        "getfattr" | "setfattr" => "attr",
        _ => "the package that provides it",
    }
}

/// Find an executable by name on `PATH`, also trying the sbin folders (root tools).
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    for d in ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        dirs.push(PathBuf::from(d));
    }
    dirs.into_iter().map(|d| d.join(tool)).find(|p| {
        std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
    })
}

/// Check that every tool in `tools` is installed and, when `need_root`, that we run as root.
///
/// `Err` says exactly what is missing and what to `apt-get install`, for a test to fail with.
pub fn require(tools: &[&str], need_root: bool) -> Result<(), String> {
    let mut missing = Vec::new();
    let mut pkgs: Vec<&str> = Vec::new();
    for t in tools {
        if find_tool(t).is_none() {
            missing.push(*t);
            let p = package_for(t);
            if !pkgs.contains(&p) {
                pkgs.push(p);
            }
        }
    }
    let mut msg = Vec::new();
    if !missing.is_empty() {
        msg.push(format!(
            "missing tools: {} (install with: apt-get install {})",
            missing.join(", "),
            pkgs.join(" ")
        ));
    }
    if need_root && !crate::sys::is_root() {
        msg.push("this test needs root (loop devices and mount): run it as root".to_string());
    }
    if msg.is_empty() {
        Ok(())
    } else {
        Err(format!("{}; or set DAXRAY_SKIP_ROOT_TESTS=1 to skip such tests explicitly", msg.join("; ")))
    }
}

/// True when the user opted out of tests that need root, tools or a kernel
/// (environment `DAXRAY_SKIP_ROOT_TESTS=1`). Such a test then prints that it skipped.
pub fn tests_may_skip() -> bool {
    std::env::var("DAXRAY_SKIP_ROOT_TESTS").map(|v| v == "1").unwrap_or(false)
}

/// The output of a finished command.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

/// Run `program args...` with stdin closed, capture its output, and kill it when it runs longer
/// than `timeout`. A non-zero exit, a signal or the timeout is an [`Error::External`] that names
/// the command and shows its stderr.
pub fn run(program: &str, args: &[&str], timeout: Duration) -> Result<CmdOutput> {
    let shown = format!("{program} {}", args.join(" "));
    let mut cmd = Command::new(program);
    cmd.args(args);
    run_command(&mut cmd, &shown, timeout).map_err(|e| match e {
        Error::External(m) if m.starts_with("cannot run") => {
            Error::External(format!("{m} (is {} installed?)", package_for(program)))
        }
        other => other,
    })
}

/// Like [`run`] for a prepared `Command` (arguments, folder, environment set by the caller);
/// `shown` names it in errors.
pub fn run_command(cmd: &mut Command, shown: &str, timeout: Duration) -> Result<CmdOutput> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::External(format!("cannot run `{shown}`: {e}")))?;
    // Drain both pipes on threads so that a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut v);
        }
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut v);
        }
        v
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::External(format!(
                    "`{shown}` did not finish within {} s; killed it",
                    timeout.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(Error::External(format!("waiting for `{shown}`: {e}"))),
        }
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    if !status.success() {
        return Err(Error::External(format!("`{shown}` failed ({status}): {}", stderr.trim())));
    }
    Ok(CmdOutput { stdout, stderr })
}

/// Make a fresh sparse image file of `size` bytes at `path` (replacing any file there) and
/// format it: `mkfs` is the program and its options, e.g. `&["mkfs.ext4", "-q", "-b", "4096"]`
/// or `&["mkfs.xfs", "-q", "-m", "reflink=0"]`; the image path is appended as the last argument.
pub fn make_image(path: &Path, size: u64, mkfs: &[&str]) -> Result<()> {
    let (prog, args) = mkfs.split_first().ok_or_else(|| {
        Error::Usage("make_image: mkfs is empty; give the program first, e.g. [\"mkfs.ext4\", \"-q\"]".into())
    })?;
    if !prog.starts_with("mkfs") && !prog.starts_with("mke2fs") {
        return Err(Error::Usage(format!(
            "make_image: the first element must be the mkfs program (e.g. \"mkfs.ext4\"), got {prog:?}"
        )));
    }
    let f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    f.set_len(size).map_err(|e| Error::io(path, e))?;
    drop(f);
    let p = path.to_str().ok_or_else(|| Error::Usage(format!("make_image: path {path:?} is not UTF-8")))?;
    let mut all: Vec<&str> = args.to_vec();
    all.push(p);
    run(prog, &all, Duration::from_secs(300))?;
    Ok(())
}

#[cfg(test)]
mod tests;
