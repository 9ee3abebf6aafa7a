//! The guest's initramfs: a newc cpio written by daxray, holding busybox (static) and its applet
//! links, the kernel modules for NVDIMM, ext4 and XFS, `mkfs.ext4`/`mkfs.xfs` with the shared
//! libraries `ldd` names, daxray itself (the guest agent) with its libraries, and a small `/init`
//! that mounts the pseudo file systems, loads the modules in dependency order and runs
//! `daxray agent`. The archive is cached by the sha256 of everything that goes into it.

use super::assets::{Assets, which};
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The modules the guest needs; their `depends=` fields order them (and add any missing one).
pub const MODULES: &[&str] = &[
    "libnvdimm",
    "nd_btt",
    "nd_pmem",
    "nfit",
    "crc16",
    "mbcache",
    "jbd2",
    "crc32c_generic",
    "ext4",
    "libcrc32c",
    "xfs",
];

/// The busybox applets linked in `/bin`.
const APPLETS: &[&str] = &[
    "sh",
    "mount",
    "umount",
    "insmod",
    "mkdir",
    "poweroff",
    "cat",
    "echo",
    "sleep",
    "ls",
    "sync",
    "mknod",
    "dmesg",
    "uname",
    "rm",
    "cp",
    "dd",
    "sed",
    "grep",
    "head",
    "tail",
    "wc",
    "stat",
    "sha256sum",
    "hexdump",
    "reboot",
];

enum Node {
    Dir,
    File { data: Vec<u8>, mode: u32 },
    Symlink(String),
    CharDev(u32, u32),
}

/// A tree of files to archive, keyed by path without the leading `/`.
#[derive(Default)]
struct Tree {
    nodes: BTreeMap<String, Node>,
}

impl Tree {
    fn dirs_for(&mut self, path: &str) {
        let mut acc = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for p in &parts[..parts.len().saturating_sub(1)] {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(p);
            self.nodes.entry(acc.clone()).or_insert(Node::Dir);
        }
    }
    fn add(&mut self, path: &str, node: Node) {
        let path = path.trim_start_matches('/').to_string();
        self.dirs_for(&path);
        self.nodes.insert(path, node);
    }
    fn add_host_file(&mut self, dest: &str, src: &Path, mode: u32) -> Result<()> {
        let data = std::fs::read(src).map_err(|e| Error::io(src, e))?;
        self.add(dest, Node::File { data, mode });
        Ok(())
    }
    /// An executable at `dest` plus every library `ldd` names for it, at the same paths.
    fn add_program(&mut self, dest: &str, src: &Path, data: Option<Vec<u8>>) -> Result<()> {
        let data = match data {
            Some(d) => d,
            None => std::fs::read(src).map_err(|e| Error::io(src, e))?,
        };
        self.add(dest, Node::File { data, mode: 0o755 });
        for lib in ldd(src)? {
            let dest = lib.to_string_lossy().into_owned();
            if !self.nodes.contains_key(dest.trim_start_matches('/')) {
                self.add_host_file(&dest, &lib, 0o755)?;
            }
        }
        Ok(())
    }
    fn digest(&self) -> String {
        let mut h = Sha256::new();
        for (p, n) in &self.nodes {
            h.update(p.as_bytes());
            h.update([0]);
            match n {
                Node::Dir => h.update(b"d"),
                Node::File { data, mode } => {
                    h.update(format!("f{mode:o}:{}:", data.len()).as_bytes());
                    h.update(data);
                }
                Node::Symlink(t) => h.update(format!("l{t}").as_bytes()),
                Node::CharDev(a, b) => h.update(format!("c{a}:{b}").as_bytes()),
            }
            h.update([0]);
        }
        hex::encode(h.finalize())
    }
    fn write_cpio(&self, out: &mut impl Write) -> Result<()> {
        use cpio::newc::{Builder, ModeFileType, trailer};
        let ioerr = |e: std::io::Error| Error::External(format!("writing the initramfs: {e}"));
        for (ino, (path, node)) in self.nodes.iter().enumerate() {
            let ino =
                u32::try_from(ino + 1).map_err(|_| Error::External("too many initramfs entries".into()))?;
            let b = Builder::new(path).ino(ino).uid(0).gid(0);
            let (b, data): (Builder, &[u8]) = match node {
                Node::Dir => (b.mode(0o755).set_mode_file_type(ModeFileType::Directory).nlink(2), &[]),
                Node::File { data, mode } => (b.mode(*mode).set_mode_file_type(ModeFileType::Regular), data),
                Node::Symlink(t) => (b.mode(0o777).set_mode_file_type(ModeFileType::Symlink), t.as_bytes()),
                Node::CharDev(ma, mi) => (
                    b.mode(0o600).set_mode_file_type(ModeFileType::Char).rdev_major(*ma).rdev_minor(*mi),
                    &[],
                ),
            };
            let size = u32::try_from(data.len())
                .map_err(|_| Error::External(format!("{path}: too big for a newc archive")))?;
            let mut w = b.write(&mut *out, size);
            w.write_all(data).map_err(ioerr)?;
            w.finish().map_err(ioerr)?;
        }
        trailer(&mut *out).map_err(ioerr)?;
        Ok(())
    }
}

/// How long ldd or objcopy may take.
const TOOL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The shared libraries (and the program interpreter) `ldd` names for a dynamic executable.
/// A static executable has none.
pub fn ldd(program: &Path) -> Result<Vec<PathBuf>> {
    if super::assets::is_static(program)? {
        return Ok(Vec::new());
    }
    let shown = format!("ldd {}", program.display());
    let out = crate::oracle::run_command(Command::new("ldd").arg(program), &shown, TOOL_TIMEOUT)
        .map_err(|e| Error::External(format!("{e} (apt-get install libc-bin)")))?;
    let mut libs = Vec::new();
    for line in out.stdout.lines() {
        let line = line.trim();
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next().unwrap_or(""),
            None => line.split_whitespace().next().unwrap_or(""),
        };
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        } else if line.contains("not found") {
            return Err(Error::External(format!("ldd {}: {line}", program.display())));
        }
    }
    Ok(libs)
}

/// The `depends=` list in a module's `.modinfo` section (read as NUL-separated strings).
pub fn module_depends(ko: &[u8]) -> Vec<String> {
    for s in ko.split(|&c| c == 0) {
        if let Some(d) = s.strip_prefix(b"depends=") {
            return String::from_utf8_lossy(d)
                .split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect();
        }
    }
    Vec::new()
}

/// Find `<name>.ko` (or `<name>.ko.xz`, as Debian ships from 6.x kernels on) under `dir`
/// (recursively, bounded depth); `-` and `_` are the same in names.
fn find_module(dir: &Path, name: &str) -> Option<PathBuf> {
    fn walk(dir: &Path, want: &str, depth: u32) -> Option<PathBuf> {
        if depth > 12 {
            return None;
        }
        let mut subdirs = Vec::new();
        for e in std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok()) {
            let p = e.path();
            let ft = e.file_type().ok()?;
            if ft.is_dir() {
                subdirs.push(p);
            } else if let Some(n) = p.file_name().and_then(|n| n.to_str())
                && let Some(stem) = n.strip_suffix(".ko").or_else(|| n.strip_suffix(".ko.xz"))
                && stem.replace('-', "_") == want
            {
                return Some(p);
            }
        }
        subdirs.sort();
        subdirs.iter().find_map(|d| walk(d, want, depth + 1))
    }
    walk(dir, &name.replace('-', "_"), 0)
}

/// The largest module accepted, uncompressed (bounds a hostile `.ko.xz`).
const MAX_MODULE: u64 = 64 << 20;

/// A module's ELF bytes: `.ko` as it is, `.ko.xz` decompressed (busybox `insmod` hands the
/// bytes to `init_module(2)`, which takes only an uncompressed ELF).
fn read_module(p: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(p).map_err(|e| Error::io(p, e))?;
    if p.extension().is_none_or(|e| e != "xz") {
        return Ok(raw);
    }
    let mut out = Vec::new();
    let mut w = std::io::Write::by_ref(&mut out);
    let mut limited = LimitWriter { inner: &mut w, left: MAX_MODULE };
    lzma_rs::xz_decompress(&mut std::io::BufReader::new(&raw[..]), &mut limited)
        .map_err(|e| Error::External(format!("{}: not a valid xz file: {e:?}", p.display())))?;
    Ok(out)
}

/// A writer that refuses to take more than `left` bytes.
struct LimitWriter<'a, W: Write> {
    inner: &'a mut W,
    left: u64,
}

impl<W: Write> Write for LimitWriter<'_, W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if b.len() as u64 > self.left {
            return Err(std::io::Error::other(format!("a module larger than {MAX_MODULE} bytes")));
        }
        self.left -= b.len() as u64;
        self.inner.write(b)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The modules in load order: every needed module after its dependencies.
pub fn module_order(modules_dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut found: BTreeMap<String, (Vec<u8>, Vec<String>)> = BTreeMap::new();
    let mut todo: Vec<String> = MODULES.iter().map(|s| s.to_string()).collect();
    while let Some(m) = todo.pop() {
        if found.contains_key(&m) {
            continue;
        }
        if found.len() > 64 {
            return Err(Error::External("module dependencies do not close (more than 64 modules)".into()));
        }
        let p = find_module(modules_dir, &m).ok_or_else(|| {
            Error::NotFound(format!(
                "kernel module {m}.ko or {m}.ko.xz under {} (the kernel must build it as a module or in)",
                modules_dir.display()
            ))
        })?;
        let data = read_module(&p)?;
        let deps = module_depends(&data);
        todo.extend(deps.iter().cloned());
        found.insert(m, (data, deps));
    }
    // Depth-first topological order, starting from MODULES' own order.
    let mut order = Vec::new();
    let mut done = BTreeSet::new();
    fn visit(
        m: &str,
        found: &BTreeMap<String, (Vec<u8>, Vec<String>)>,
        done: &mut BTreeSet<String>,
        stack: &mut Vec<String>,
        order: &mut Vec<String>,
    ) -> Result<()> {
        if done.contains(m) {
            return Ok(());
        }
        if stack.iter().any(|s| s == m) {
            return Err(Error::External(format!("module dependency cycle through {m}")));
        }
        stack.push(m.to_string());
        if let Some((_, deps)) = found.get(m) {
            for d in deps {
                visit(d, found, done, stack, order)?;
            }
        }
        stack.pop();
        done.insert(m.to_string());
        order.push(m.to_string());
        Ok(())
    }
    for m in MODULES {
        visit(m, &found, &mut done, &mut Vec::new(), &mut order)?;
    }
    Ok(order.into_iter().filter_map(|m| found.remove(&m).map(|(d, _)| (m, d))).collect())
}

/// The daxray executable to put into the guest: `$DAXRAY_AGENT_BIN`, else this executable when
/// it is `daxray`, else a `daxray` next to (or one folder above) this executable, as in a cargo
/// target folder where tests run from `deps/`.
pub fn agent_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("DAXRAY_AGENT_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe =
        std::env::current_exe().map_err(|e| Error::External(format!("finding this executable: {e}")))?;
    if exe.file_name().and_then(|n| n.to_str()) == Some("daxray") {
        return Ok(exe);
    }
    for dir in exe.parent().into_iter().flat_map(|d| [Some(d), d.parent()]).flatten() {
        let c = dir.join("daxray");
        if c.is_file() {
            return Ok(c);
        }
    }
    Err(Error::NotFound(format!(
        "a daxray executable for the guest (not {}; build it with `cargo build` or set DAXRAY_AGENT_BIN)",
        exe.display()
    )))
}

/// The `/init` script.
fn init_script(modules: &[String]) -> String {
    let mut s = String::from(
        "#!/bin/sh\n\
         export PATH=/bin:/sbin\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sysfs /sys\n\
         mount -t devtmpfs devtmpfs /dev\n\
         mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null\n",
    );
    for m in modules {
        s.push_str(&format!("insmod /modules/{m}.ko || echo \"daxray-init: insmod {m} failed\"\n"));
    }
    s.push_str(
        "echo daxray-init: modules loaded, starting the agent\n\
         exec /bin/daxray agent\n\
         echo daxray-init: exec failed\n\
         poweroff -f\n",
    );
    s
}

/// Build (or reuse from `cache_dir`) the initramfs for `assets`; returns its path.
pub fn build(assets: &Assets, cache_dir: &Path) -> Result<PathBuf> {
    let mut t = Tree::default();
    for d in ["dev", "proc", "sys", "mnt", "tmp", "etc", "sbin", "root", "run"] {
        t.add(d, Node::Dir);
    }
    t.add("dev/console", Node::CharDev(5, 1));
    t.add("dev/null", Node::CharDev(1, 3));
    let bb = which("busybox")
        .ok_or_else(|| Error::External("busybox is missing (apt-get install busybox-static)".into()))?;
    if !super::assets::is_static(&bb)? {
        return Err(Error::External(format!(
            "{} is dynamically linked; the guest needs a static busybox (apt-get install busybox-static)",
            bb.display()
        )));
    }
    t.add_host_file("bin/busybox", &bb, 0o755)?;
    for a in APPLETS {
        t.add(&format!("bin/{a}"), Node::Symlink("busybox".into()));
    }
    let modules = module_order(&assets.modules)?;
    let names: Vec<String> = modules.iter().map(|(n, _)| n.clone()).collect();
    for (n, data) in modules {
        t.add(&format!("modules/{n}.ko"), Node::File { data, mode: 0o644 });
    }
    for tool in ["mkfs.ext4", "mkfs.xfs"] {
        let p = which(tool).ok_or_else(|| {
            Error::External(format!(
                "{tool} is missing (apt-get install {})",
                if tool == "mkfs.xfs" { "xfsprogs" } else { "e2fsprogs" }
            ))
        })?;
        let real = std::fs::canonicalize(&p).map_err(|e| Error::io(&p, e))?;
        t.add_program(&format!("sbin/{tool}"), &real, None)?;
    }
    if Path::new("/etc/mke2fs.conf").is_file() {
        t.add_host_file("etc/mke2fs.conf", Path::new("/etc/mke2fs.conf"), 0o644)?;
    }
    let agent = agent_binary()?;
    t.add_program("bin/daxray", &agent, None)?;
    t.add("init", Node::File { data: init_script(&names).into_bytes(), mode: 0o755 });

    let digest = t.digest();
    std::fs::create_dir_all(cache_dir).map_err(|e| Error::io(cache_dir, e))?;
    let out = cache_dir.join(format!("initramfs-{}.cpio", &digest[..16]));
    if out.is_file() {
        return Ok(out);
    }
    // Strip debug info from the agent to keep the archive small (when objcopy is there).
    if let Some(objcopy) = which("objcopy") {
        let tmp = cache_dir.join(format!(".agent-{}", std::process::id()));
        let mut cmd = Command::new(objcopy);
        cmd.arg("--strip-debug").arg(&agent).arg(&tmp);
        let ok = crate::oracle::run_command(&mut cmd, "objcopy --strip-debug", TOOL_TIMEOUT).is_ok();
        if ok && let Ok(data) = std::fs::read(&tmp) {
            t.add("bin/daxray", Node::File { data, mode: 0o755 });
        }
        let _ = std::fs::remove_file(&tmp);
    }
    let tmp = cache_dir.join(format!(".initramfs-{}.tmp", std::process::id()));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?);
    t.write_cpio(&mut f)?;
    f.into_inner()
        .map_err(|e| Error::io(&tmp, e.into_error()))?
        .sync_all()
        .map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &out).map_err(|e| Error::io(&out, e))?;
    prune(cache_dir, KEEP);
    Ok(out)
}

/// How many cached archives to keep (each rebuild of daxray makes a new one).
const KEEP: usize = 6;

/// Remove all but the `keep` most recently modified `initramfs-*.cpio` in `dir`.
fn prune(dir: &Path, keep: usize) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut v: Vec<(std::time::SystemTime, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("initramfs-") && n.ends_with(".cpio"))
        })
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (_, p) in v.into_iter().skip(keep) {
        let _ = std::fs::remove_file(p);
    }
}
