//! Kernel assets: the Debian kernel package, fetched with `apt-get download` and unpacked with
//! `dpkg-deb -x` into a cache folder. Nothing is installed into the host's `/boot`.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A kernel image and the folder holding its modules.
#[derive(Debug, Clone)]
pub struct Assets {
    /// The bzImage (`vmlinuz-*`).
    pub kernel: PathBuf,
    /// A folder searched recursively for the `.ko` modules (e.g. `lib/modules/<version>`).
    pub modules: PathBuf,
    /// Kernel release, e.g. `6.1.0-56-amd64`.
    pub version: String,
}

/// The cache folder: `$XDG_CACHE_HOME/daxray`, else `~/.cache/daxray`.
pub fn default_cache() -> Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("daxray"));
    }
    match std::env::var_os("HOME").filter(|x| !x.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".cache").join("daxray")),
        None => Err(Error::Usage("neither XDG_CACHE_HOME nor HOME is set: pass --cache DIR".into())),
    }
}

/// How long one host command of the setup (apt-cache, apt-get download, dpkg-deb) may take.
const SETUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

fn run(cmd: &mut Command, what: &str) -> Result<String> {
    Ok(crate::oracle::run_command(cmd, what, SETUP_TIMEOUT)?.stdout)
}

/// Find an executable on `PATH` (plus the sbin folders, which root's PATH may lack).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"];
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Check the host tools the VM needs, saying what to install for each one missing.
pub fn check_host_tools() -> Result<()> {
    let mut missing = Vec::new();
    if which("qemu-system-x86_64").is_none() {
        missing.push("qemu-system-x86_64 (apt-get install qemu-system-x86)".to_string());
    }
    match which("busybox") {
        None => missing.push("busybox (apt-get install busybox-static)".to_string()),
        Some(b) => {
            if !is_static(&b)? {
                missing.push(format!(
                    "a static busybox: {} is dynamically linked (apt-get install busybox-static)",
                    b.display()
                ));
            }
        }
    }
    if which("mkfs.ext4").is_none() {
        missing.push("mkfs.ext4 (apt-get install e2fsprogs)".into());
    }
    if which("mkfs.xfs").is_none() {
        missing.push("mkfs.xfs (apt-get install xfsprogs)".into());
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::External(format!("missing on this host: {}", missing.join("; "))))
    }
}

/// True when an ELF file has no program interpreter (`PT_INTERP`), i.e. is statically linked.
pub fn is_static(path: &Path) -> Result<bool> {
    let b = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = || Error::Unrecognised(format!("{}: not a 64-bit little-endian ELF file", path.display()));
    if b.get(0..4) != Some(b"\x7fELF") || b.get(4) != Some(&2) || b.get(5) != Some(&1) {
        return Err(bad());
    }
    let u16at = |o: usize| b.get(o..o + 2).map(|s| u16::from_le_bytes([s[0], s[1]]));
    let u64at = |o: usize| {
        b.get(o..o + 8).map(|s| {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            u64::from_le_bytes(a)
        })
    };
    let phoff = u64at(0x20).ok_or_else(bad)? as usize;
    let phentsize = usize::from(u16at(0x36).ok_or_else(bad)?);
    let phnum = usize::from(u16at(0x38).ok_or_else(bad)?);
    for i in 0..phnum.min(256) {
        let o = phoff.checked_add(i.checked_mul(phentsize).ok_or_else(bad)?).ok_or_else(bad)?;
        let Some(t) = b.get(o..o + 4) else { return Err(bad()) };
        if u32::from_le_bytes([t[0], t[1], t[2], t[3]]) == 3 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The kernel package `apt-cache depends META` names (`linux-image-<release>-amd64`).
fn depends_of(meta: &str) -> Result<String> {
    let deps = run(Command::new("apt-cache").args(["depends", meta]), &format!("apt-cache depends {meta}"))?;
    deps.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|p| p.starts_with("linux-image-") && p.ends_with("-amd64"))
        .map(str::to_string)
        .ok_or_else(|| {
            Error::External(format!("apt-cache depends {meta} names no linux-image-*-amd64 package:\n{deps}"))
        })
}

/// The Debian kernel package of a series (`6.1`, `6.12`): the one the series' meta-package
/// `linux-image-<series>-amd64` depends on, else the release's default kernel
/// (`linux-image-amd64`) when it is of that series. None: the release's default kernel.
pub fn package_for(series: Option<&str>) -> Result<String> {
    let hint = "is this a Debian system with apt? else pass --kernel and --modules";
    let Some(s) = series else {
        return depends_of("linux-image-amd64").map_err(|e| Error::External(format!("{e} ({hint})")));
    };
    let well_formed = !s.is_empty()
        && s.split('.').count() == 2
        && s.split('.').all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()));
    if !well_formed {
        return Err(Error::Usage(format!("kernel series {s:?}: give MAJOR.MINOR, e.g. 6.1 or 6.12")));
    }
    if let Ok(p) = depends_of(&format!("linux-image-{s}-amd64")) {
        return Ok(p);
    }
    let default = depends_of("linux-image-amd64").map_err(|e| Error::External(format!("{e} ({hint})")))?;
    if default.starts_with(&format!("linux-image-{s}.")) {
        return Ok(default);
    }
    Err(Error::NotFound(format!(
        "a Debian kernel of series {s}: neither linux-image-{s}-amd64 nor the default {default} \
         (`apt-cache search linux-image-{s}` lists what this machine's package index offers)"
    )))
}

/// Fetch (if needed) and unpack the Debian kernel of `series` (default: the release's
/// `linux-image-amd64`) into the cache folder, and check the host tools. Returns the kernel,
/// its modules folder and its release.
pub fn setup(cache: Option<&Path>, series: Option<&str>) -> Result<Assets> {
    check_host_tools()?;
    let cache = match cache {
        Some(c) => c.to_path_buf(),
        None => default_cache()?,
    };
    std::fs::create_dir_all(&cache).map_err(|e| Error::io(&cache, e))?;
    let pkg = package_for(series)?;
    let version = pkg.trim_start_matches("linux-image-").to_string();
    let root = cache.join(&pkg);
    let assets = assets_in(&root, &version);
    if let Ok(a) = &assets {
        return Ok(a.clone());
    }
    let dl = cache.join("dl");
    std::fs::create_dir_all(&dl).map_err(|e| Error::io(&dl, e))?;
    let have_deb = |dl: &Path| -> Option<PathBuf> {
        std::fs::read_dir(dl).ok()?.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{pkg}_")) && n.ends_with(".deb"))
        })
    };
    let deb = match have_deb(&dl) {
        Some(d) => d,
        None => {
            run(
                Command::new("apt-get").arg("download").arg(&pkg).current_dir(&dl),
                &format!("apt-get download {pkg}"),
            )
            .map_err(|e| Error::External(format!("{e} (try `apt-get update` first)")))?;
            have_deb(&dl).ok_or_else(|| {
                Error::External(format!("apt-get download {pkg} left no .deb in {}", dl.display()))
            })?
        }
    };
    let tmp = cache.join(format!(".unpack-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tmp), "dpkg-deb -x")?;
    std::fs::rename(&tmp, &root).map_err(|e| Error::io(&root, e))?;
    assets_in(&root, &version)
}

/// The assets of an unpacked kernel package at `root`.
fn assets_in(root: &Path, version: &str) -> Result<Assets> {
    let kernel = root.join("boot").join(format!("vmlinuz-{version}"));
    let modules = root.join("lib").join("modules").join(version);
    if kernel.is_file() && modules.is_dir() {
        Ok(Assets { kernel, modules, version: version.to_string() })
    } else {
        Err(Error::NotFound(format!("no unpacked kernel at {}", root.display())))
    }
}

impl Assets {
    /// Assets from explicit paths (`--kernel FILE --modules DIR`); the release is read from the
    /// bzImage header when possible.
    pub fn from_paths(kernel: &Path, modules: &Path) -> Result<Assets> {
        if !kernel.is_file() {
            return Err(Error::NotFound(format!("kernel image {}", kernel.display())));
        }
        if !modules.is_dir() {
            return Err(Error::NotFound(format!("modules folder {}", modules.display())));
        }
        let version = bzimage_version(kernel).unwrap_or_else(|| "unknown".into());
        Ok(Assets { kernel: kernel.to_path_buf(), modules: modules.to_path_buf(), version })
    }

    /// The cached assets (of the release's default kernel, or of `series`), or the ones named
    /// by overrides. `kernel` and `modules` must be given together.
    pub fn resolve(
        cache: Option<&Path>,
        series: Option<&str>,
        kernel: Option<&Path>,
        modules: Option<&Path>,
    ) -> Result<Assets> {
        match (kernel, modules) {
            (Some(k), Some(m)) => Assets::from_paths(k, m),
            (None, None) => setup(cache, series),
            _ => Err(Error::Usage("--kernel and --modules go together".into())),
        }
    }
}

/// The release string in a bzImage's setup header (`kernel_version` pointer at 0x20e).
fn bzimage_version(kernel: &Path) -> Option<String> {
    let b = std::fs::read(kernel).ok()?;
    if b.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let p = u16::from_le_bytes([*b.get(0x20e)?, *b.get(0x20f)?]) as usize + 0x200;
    let s = b.get(p..p.checked_add(256)?)?;
    let end = s.iter().position(|&c| c == 0 || c == b' ')?;
    String::from_utf8(s[..end].to_vec()).ok()
}
