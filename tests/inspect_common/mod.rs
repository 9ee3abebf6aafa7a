//! Helpers of tests/inspect_bugs.rs: running daxray and the peer tools, making images with mkfs
//! and populating them through the kernel, reading the peers' output.

#![allow(dead_code)]

use daxray::oracle::Mount;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a daxray run gave: exit code, standard output, standard error.
pub struct Run {
    pub code: i32,
    pub out: String,
    pub err: String,
}

/// Run daxray with `args`.
pub fn dx(args: &[&str]) -> Run {
    let o = Command::new(env!("CARGO_BIN_EXE_daxray"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("run daxray: {e}"));
    Run {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Run a tool and return its standard output; fails the test when it fails.
pub fn tool(prog: &str, args: &[&str]) -> String {
    let o =
        Command::new(prog).args(args).env("TZ", "UTC").output().unwrap_or_else(|e| panic!("run {prog}: {e}"));
    assert!(o.status.success(), "{prog} {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// A symlink target too long for the inode on both file systems (ext4 keeps targets under 60
/// bytes in i_block; XFS keeps them in the inode's literal area), so it lives in a block.
pub fn slow_target() -> String {
    format!("{}end", "dir/".repeat(120))
}

/// A fresh image of `fs` ("ext4" or "xfs") made by mkfs, in its own folder.
pub fn mkfs(fs: &str, dir: &Path) -> PathBuf {
    let img = dir.join(format!("{fs}.img"));
    let f = std::fs::File::create(&img).expect("create image");
    f.set_len(64 << 20).expect("size image");
    drop(f);
    let mut cmd = if fs == "ext4" {
        let mut c = Command::new("mkfs.ext4");
        c.args(["-q", "-b", "4096"]);
        c
    } else {
        // As fstests does: without these mkfs.xfs refuses file systems under 300 MiB.
        let mut c = Command::new("mkfs.xfs");
        c.args(["-q", "-f"]).env("TEST_DIR", "1").env("TEST_DEV", "1").env("QA_CHECK_FS", "1");
        c
    };
    let o = cmd.arg(&img).output().expect("run mkfs");
    assert!(o.status.success(), "mkfs.{fs}: {}", String::from_utf8_lossy(&o.stderr));
    img
}

/// Mount `img` as `fs`, let `f` populate it or read it, then unmount cleanly.
pub fn mounted<T>(img: &Path, fs: &str, f: impl FnOnce(&Path) -> T) -> T {
    let m = Mount::new(img, 0, fs, "").expect("loop mount");
    let out = f(m.path());
    m.unmount().expect("unmount");
    out
}

/// The tree the tests look at: a directory with a file, a fast and a slow symlink.
pub fn populate(root: &Path) {
    std::fs::create_dir(root.join("docs")).expect("mkdir");
    std::fs::write(root.join("docs/hello.txt"), b"hello, pmem\n").expect("write");
    std::os::unix::fs::symlink("docs/hello.txt", root.join("fast")).expect("fast symlink");
    std::os::unix::fs::symlink(slow_target(), root.join("slow")).expect("slow symlink");
}

/// Images of both file systems made by mkfs and populated by the kernel, with what the kernel
/// said of the symlinks while mounted (`readlink`).
pub fn images(dir: &Path) -> Vec<(&'static str, PathBuf, [String; 2])> {
    ["ext4", "xfs"]
        .into_iter()
        .map(|fs| {
            let img = mkfs(fs, dir);
            let links = mounted(&img, fs, |root| {
                populate(root);
                ["fast", "slow"].map(|l| tool("readlink", &[s(&root.join(l))]).trim_end().to_string())
            });
            (fs, img, links)
        })
        .collect()
}

/// The `recovery:` line of `daxray info` text.
pub fn recovery_line(info: &str) -> &str {
    info.lines().find(|l| l.starts_with("recovery:")).unwrap_or_else(|| panic!("no recovery line:\n{info}"))
}

/// A copy of `img` cut to its first `bytes` bytes.
pub fn truncated_copy(img: &Path, bytes: u64, name: &str) -> PathBuf {
    let out = img.with_file_name(name);
    std::fs::copy(img, &out).expect("copy image");
    std::fs::OpenOptions::new().write(true).open(&out).expect("open copy").set_len(bytes).expect("truncate");
    out
}

/// The number after `key` in a dumpe2fs / xfs_db line such as "Journal start:   419" or
/// "logstart = 8198".
pub fn field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .and_then(|v| v.trim_start_matches([' ', ':', '=']).split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
}

pub fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

pub fn claim(path: &str, offset: u64, len: u64, sha: &str) -> String {
    format!("{{\"path\":\"{path}\",\"offset\":{offset},\"len\":{len},\"sha256\":\"{sha}\"}}\n")
}

/// What the kernel's path walk gives for `path` under `root`: the inode `lstat` finds, or the
/// error's words.
pub fn kernel_lstat(root: &Path, path: &str) -> Result<u64, String> {
    let full = format!("{}{path}", root.display());
    match std::fs::symlink_metadata(&full) {
        Ok(m) => Ok(std::os::unix::fs::MetadataExt::ino(&m)),
        Err(e) => Err(match e.raw_os_error() {
            Some(libc::ENOTDIR) => "is not a directory".into(),
            Some(libc::ENOENT) => "not found".into(),
            Some(libc::ELOOP) => "too many symbolic links".into(),
            _ => e.to_string(),
        }),
    }
}

/// `xfs_db -r -c "sb 0" -c "print icount ifree fdblocks"` of `img`.
pub fn xfs_db_counters(img: &Path) -> [u64; 3] {
    let db = tool("xfs_db", &["-r", "-c", "sb 0", "-c", "print icount ifree fdblocks", s(img)]);
    ["icount", "ifree", "fdblocks"].map(|k| field(&db, k))
}

/// statvfs(2) of `p`: (f_files, f_ffree).
pub fn nix_statvfs(p: &Path) -> (u64, u64) {
    let c = std::ffi::CString::new(s(p)).expect("path");
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid NUL-terminated path and st a writable statvfs.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    assert_eq!(rc, 0, "statvfs {}", p.display());
    (st.f_files, st.f_ffree)
}

/// The value of the `key:` line of `text`.
pub fn line_value<'t>(text: &'t str, key: &str) -> &'t str {
    text.lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| *k == key).map(|(_, v)| v.trim()))
        .unwrap_or_else(|| panic!("no {key}: line in:\n{text}"))
}
