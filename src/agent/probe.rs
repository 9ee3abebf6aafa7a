//! The MAP_SYNC flag semantics of the running kernel on one file (`daxray probe`).
//!
//! What the MAP_SYNC series (Linux 4.15) specifies, and what is checked here:
//! - `MAP_SHARED_VALIDATE | MAP_SYNC` is accepted on a DAX file, and the mapping shows `sf` in
//!   its `/proc/self/smaps` VmFlags;
//! - the same is refused with `EOPNOTSUPP` on a file that is not DAX;
//! - an unknown flag under `MAP_SHARED_VALIDATE` is refused with `EOPNOTSUPP`;
//! - `MAP_SHARED | MAP_SYNC` is accepted and the flag silently ignored (no `sf`);
//! - a kernel that predates `MAP_SHARED_VALIDATE` says `EINVAL` for it;
//! - statx reports the DAX attribute (`STATX_ATTR_DAX`, Linux 5.8) on DAX files.

use crate::error::{Error, Result};
use crate::sys;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// The outcome of one `mmap` call.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MapOutcome {
    /// The flags passed, e.g. `MAP_SHARED_VALIDATE|MAP_SYNC`.
    pub flags: String,
    /// The call succeeded.
    pub accepted: bool,
    /// The errno name when it failed (`EOPNOTSUPP`, `EINVAL`, ...).
    pub errno: Option<String>,
    /// When it succeeded: the mapping's VmFlags include `sf` (synchronous page faults).
    pub vmflags_sf: Option<bool>,
    /// When it succeeded: the mapping's VmFlags line as the kernel printed it.
    pub vmflags: Option<String>,
}

/// Everything `daxray probe` found out about one file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ProbeReport {
    /// The probed file.
    pub path: String,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// statx knows the DAX attribute on this kernel/file system (`STATX_ATTR_DAX` in the mask).
    pub statx_dax_known: bool,
    /// statx says the file is DAX (`None` when the attribute is not known).
    pub statx_dax: Option<bool>,
    /// `MAP_SHARED_VALIDATE | MAP_SYNC`.
    pub validate_sync: MapOutcome,
    /// `MAP_SHARED | MAP_SYNC` (legacy type: the flag must be silently ignored).
    pub shared_sync: MapOutcome,
    /// `MAP_SHARED_VALIDATE` with an undefined flag bit (must be `EOPNOTSUPP`).
    pub validate_unknown: MapOutcome,
    /// `MAP_SHARED_VALIDATE` alone (`EINVAL` on kernels older than 4.15).
    pub validate_plain: MapOutcome,
    /// MAP_SYNC works here: accepted under `MAP_SHARED_VALIDATE` with `sf` set.
    pub map_sync_works: bool,
    /// Each expectation of the series, checked: (statement, held).
    pub checks: Vec<(String, bool)>,
}

fn errno_name(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) => "EOPNOTSUPP".into(),
        Some(libc::EINVAL) => "EINVAL".into(),
        Some(libc::EACCES) => "EACCES".into(),
        Some(libc::ENODEV) => "ENODEV".into(),
        Some(libc::EPERM) => "EPERM".into(),
        Some(libc::ENOMEM) => "ENOMEM".into(),
        Some(n) => format!("errno {n}"),
        None => e.to_string(),
    }
}

/// The VmFlags line of the mapping starting at `addr`, from `/proc/self/smaps`.
fn vmflags_of(addr: usize) -> Option<String> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let mut inside = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((start, _end)) = first.split_once('-')
            && let Ok(s) = usize::from_str_radix(start, 16)
            && !first.contains(':')
        {
            inside = s == addr;
            continue;
        }
        if inside && let Some(rest) = line.strip_prefix("VmFlags:") {
            return Some(rest.trim().to_string());
        }
    }
    None
}

fn try_map(file: &File, flags: i32, name: &str) -> MapOutcome {
    match sys::map_shared_rw(file, 4096, flags) {
        Ok(m) => {
            let vm = vmflags_of(m.addr());
            MapOutcome {
                flags: name.into(),
                accepted: true,
                errno: None,
                vmflags_sf: vm.as_ref().map(|v| v.split_whitespace().any(|f| f == "sf")),
                vmflags: vm,
            }
        }
        Err(e) => MapOutcome {
            flags: name.into(),
            accepted: false,
            errno: Some(errno_name(&e)),
            vmflags_sf: None,
            vmflags: None,
        },
    }
}

/// Kernel release of the running kernel.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// Probe `path`: a regular file (opened read-write, grown to one page if empty), or a directory
/// (a scratch file is made in it and removed afterwards).
pub fn probe(path: &Path) -> Result<ProbeReport> {
    let md = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let (file_path, scratch): (PathBuf, bool) = if md.is_dir() {
        (path.join(format!(".daxray-probe-{}", std::process::id())), true)
    } else if md.is_file() {
        (path.to_path_buf(), false)
    } else {
        return Err(Error::Usage(format!("{}: not a regular file or directory", path.display())));
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(scratch)
        .truncate(false)
        .open(&file_path)
        .map_err(|e| Error::io(&file_path, e))?;
    let result = probe_open(&file, &file_path, scratch);
    if scratch {
        let _ = std::fs::remove_file(&file_path);
    }
    result
}

fn probe_open(file: &File, file_path: &Path, scratch: bool) -> Result<ProbeReport> {
    let len = file.metadata().map_err(|e| Error::io(file_path, e))?.len();
    if len < 4096 {
        if !scratch {
            return Err(Error::Usage(format!(
                "{}: a probed file must hold at least 4096 bytes (daxray never grows your file; \
                 pass a directory to probe a scratch file)",
                file_path.display()
            )));
        }
        file.set_len(4096).map_err(|e| Error::io(file_path, e))?;
    }
    let (mask, attrs) = sys::statx_attributes(file_path).map_err(|e| Error::io(file_path, e))?;
    let statx_dax_known = mask & sys::STATX_ATTR_DAX != 0;
    let statx_dax = statx_dax_known.then_some(attrs & sys::STATX_ATTR_DAX != 0);
    let validate_sync =
        try_map(file, sys::MAP_SHARED_VALIDATE | sys::MAP_SYNC, "MAP_SHARED_VALIDATE|MAP_SYNC");
    let shared_sync = try_map(file, libc::MAP_SHARED | sys::MAP_SYNC, "MAP_SHARED|MAP_SYNC");
    let validate_unknown =
        try_map(file, sys::MAP_SHARED_VALIDATE | sys::MAP_UNKNOWN_FLAG, "MAP_SHARED_VALIDATE|0x200000");
    let validate_plain = try_map(file, sys::MAP_SHARED_VALIDATE, "MAP_SHARED_VALIDATE");
    let map_sync_works = validate_sync.accepted && validate_sync.vmflags_sf == Some(true);
    let is_dax = statx_dax.unwrap_or(map_sync_works);
    let mut checks = Vec::new();
    if validate_plain.accepted {
        if is_dax {
            checks.push((
                "MAP_SHARED_VALIDATE|MAP_SYNC is accepted on a DAX file, with sf in VmFlags".into(),
                map_sync_works,
            ));
        } else {
            checks.push((
                "MAP_SHARED_VALIDATE|MAP_SYNC is refused with EOPNOTSUPP on a non-DAX file".into(),
                validate_sync.errno.as_deref() == Some("EOPNOTSUPP"),
            ));
        }
        checks.push((
            "an unknown flag under MAP_SHARED_VALIDATE is refused with EOPNOTSUPP".into(),
            validate_unknown.errno.as_deref() == Some("EOPNOTSUPP"),
        ));
    } else {
        checks.push((
            "a kernel without MAP_SHARED_VALIDATE refuses it with EINVAL".into(),
            validate_plain.errno.as_deref() == Some("EINVAL"),
        ));
    }
    checks.push((
        "MAP_SHARED|MAP_SYNC is accepted and MAP_SYNC silently ignored (no sf)".into(),
        shared_sync.accepted && shared_sync.vmflags_sf == Some(false),
    ));
    if let Some(d) = statx_dax {
        checks.push(("statx STATX_ATTR_DAX agrees with MAP_SYNC support".into(), d == map_sync_works));
    }
    Ok(ProbeReport {
        path: file_path.display().to_string(),
        kernel: kernel_release(),
        statx_dax_known,
        statx_dax,
        validate_sync,
        shared_sync,
        validate_unknown,
        validate_plain,
        map_sync_works,
        checks,
    })
}
