//! Helpers shared by the XFS tests: tool checks, mkfs, xfs_db output parsing.
#![allow(dead_code)]

use daxray::oracle::{self, WorkloadSpec, WorkloadStats};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// True when every tool is there (and root, when asked). Otherwise fails naming what to
/// install, unless DAXRAY_SKIP_ROOT_TESTS=1, in which case it prints that it skipped and
/// returns false.
pub fn need(tools: &[&str], root: bool) -> bool {
    crate::common::ready(tools, root)
}

/// A sparse file of `size` bytes formatted with mkfs.xfs and `args`. False when mkfs refused
/// those options (e.g. an older mkfs without a feature).
pub fn mkfs_xfs(path: &Path, size: u64, args: &[&str]) -> bool {
    let f = std::fs::File::create(path).expect("create image");
    f.set_len(size).expect("set_len");
    drop(f);
    let out =
        Command::new("mkfs.xfs").arg("-q").arg("-f").args(args).arg(path).output().expect("run mkfs.xfs");
    if !out.status.success() {
        eprintln!("mkfs.xfs {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    out.status.success()
}

/// Size of the XFS crash images (mkfs.xfs refuses file systems under 300 MiB).
pub const DIRTY_SIZE: u64 = 320 << 20;

/// mkfs.xfs `args` on a new sparse file of [`DIRTY_SIZE`] bytes; `small_log` lets mkfs make a log
/// under its 64 MiB floor (the switch xfsprogs keeps for fstests). Fails the test if mkfs fails.
pub fn mkfs_xfs_env(path: &Path, args: &[&str], small_log: bool) {
    let f = std::fs::File::create(path).expect("create image");
    f.set_len(DIRTY_SIZE).expect("size image");
    drop(f);
    let mut c = Command::new("mkfs.xfs");
    c.args(args).arg(path);
    if small_log {
        c.env("TEST_DIR", "1").env("TEST_DEV", "1").env("QA_CHECK_FS", "1");
    }
    let out = c.output().expect("run mkfs.xfs");
    assert!(out.status.success(), "mkfs.xfs {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A kernel-made crash image, `dir/NAME-dirty.img`: [`mkfs_xfs_env`], the seeded workload on a
/// mount with `opts`, and the backing file copied while still mounted. Returns the workload's
/// figures and the image.
pub fn dirty_xfs(
    dir: &Path,
    name: &str,
    mkfs_args: &[&str],
    small_log: bool,
    opts: &str,
    spec: &WorkloadSpec,
) -> (WorkloadStats, PathBuf) {
    let base = dir.join(format!("{name}.img"));
    let dirty = dir.join(format!("{name}-dirty.img"));
    mkfs_xfs_env(&base, mkfs_args, small_log);
    let stats = oracle::crash_copy(&base, "xfs", opts, &dirty, |root| oracle::run_workload(root, spec))
        .expect("workload and crash copy");
    std::fs::remove_file(&base).ok();
    (stats, dirty)
}

/// Run `xfs_db -r` with the given commands and return stdout.
pub fn xfs_db(path: &Path, cmds: &[&str]) -> String {
    let mut c = Command::new("xfs_db");
    c.arg("-r");
    for cmd in cmds {
        c.arg("-c").arg(cmd);
    }
    let out = c.arg(path).output().expect("run xfs_db");
    assert!(out.status.success(), "xfs_db {cmds:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `xfs_db -r -c CMD... -c print` as key = value pairs.
pub fn xfs_db_print(path: &Path, cmds: &[&str]) -> BTreeMap<String, String> {
    let mut all: Vec<&str> = cmds.to_vec();
    all.push("print");
    parse_print(&xfs_db(path, &all))
}

/// Parse `key = value` lines.
pub fn parse_print(text: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(" = ") {
            m.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    m
}

/// A number as xfs_db prints it: decimal, 0x hex, or 0-prefixed octal; "null" is all ones.
pub fn parse_num(s: &str) -> u64 {
    let s = s.split_whitespace().next().unwrap_or("");
    if s == "null" {
        return u64::MAX;
    }
    if let Some(h) = s.strip_prefix("0x") {
        return u64::from_str_radix(h, 16).unwrap_or_else(|_| panic!("bad hex {s}"));
    }
    if s.len() > 1 && s.starts_with('0') {
        return u64::from_str_radix(&s[1..], 8).unwrap_or_else(|_| panic!("bad octal {s}"));
    }
    s.parse::<i64>().map(|v| v as u64).unwrap_or_else(|_| panic!("bad number {s}"))
}

/// A seed: from env DAXRAY_SEED when set, else random (printed so a failure can be replayed).
pub fn seeds(n: usize) -> Vec<u64> {
    if let Ok(s) = std::env::var("DAXRAY_SEED") {
        return s.split(',').map(|x| x.trim().parse().expect("DAXRAY_SEED: numbers")).collect();
    }
    let mut v = vec![];
    for _ in 0..n {
        let mut b = [0u8; 8];
        getrandom_bytes(&mut b);
        v.push(u64::from_le_bytes(b) % 1_000_000);
    }
    v
}

fn getrandom_bytes(b: &mut [u8]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(b)).expect("read /dev/urandom");
}

/// Fragmentation on a mounted XFS: one file with thousands of single-block extents (some of
/// them unwritten, via fallocate) so that its bmbt has interior blocks; files appended in turn
/// with fsync so that their extents interleave; a directory of `names` long names (node form).
/// Returns the paths made (relative to `root`).
pub fn fragment(root: &Path, seed: u64, sparse_blocks: u64, rr_files: usize, names: usize) -> Vec<String> {
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    let mut made = vec![];
    std::fs::create_dir_all(root.join("frag")).expect("mkdir frag");
    let f = std::fs::File::create(root.join("frag/sparse")).expect("create sparse");
    let bs = 4096u64;
    let mut x = seed | 1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for k in 0..sparse_blocks {
        let fill = [(k % 251) as u8 ^ (seed as u8); 4096];
        let n = 1 + (rnd() % 3) as usize * 1024;
        f.write_all_at(&fill[..n.min(4096)], 2 * k * bs).expect("pwrite");
        if k % 7 == 3 {
            // an unwritten block in the hole after this one
            daxray::sys::fallocate(&f, libc::FALLOC_FL_KEEP_SIZE, (2 * k + 1) * bs, bs).expect("fallocate");
        }
    }
    f.sync_all().expect("fsync");
    made.push("frag/sparse".to_string());
    // round-robin appends, each fsynced so the allocator interleaves the files
    let mut files = vec![];
    for i in 0..rr_files {
        let p = format!("frag/rr{i:03}");
        files.push(std::fs::File::create(root.join(&p)).expect("create rr"));
        made.push(p);
    }
    for round in 0..48u64 {
        for (i, fh) in files.iter_mut().enumerate() {
            let n = 512 + (rnd() % 8192) as usize;
            let buf = vec![(round as u8).wrapping_mul(31) ^ (i as u8); n];
            fh.write_all(&buf).expect("append");
            fh.sync_data().expect("fdatasync");
        }
    }
    // punch holes in a few of them
    for (i, fh) in files.iter().enumerate().filter(|(i, _)| i % 4 == 0) {
        let _ = i;
        let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
        daxray::sys::fallocate(fh, mode, 8192, 16384).expect("punch hole");
    }
    // symlinks: short (in the inode) and long (remote blocks)
    for i in 0..40u64 {
        let len = if i % 2 == 0 { 5 + (rnd() % 40) as usize } else { 300 + (rnd() % 700) as usize };
        let mut t = String::from("/");
        while t.len() < len {
            t.push(char::from(b'a' + (rnd() % 26) as u8));
            if rnd() % 9 == 0 {
                t.push('/');
            }
        }
        let p = format!("frag/link{i}");
        std::os::unix::fs::symlink(&t, root.join(&p)).expect("symlink");
        made.push(p);
    }
    // a leaf-form directory: a few data blocks and one leaf block
    std::fs::create_dir_all(root.join("leafdir")).expect("mkdir leafdir");
    for i in 0..260 {
        std::fs::write(root.join(format!("leafdir/entry_{i:04}_{:030}", rnd() % 1_000_000)), b"")
            .expect("create leaf entry");
    }
    // extended attributes: inline ones, and many large ones (attr fork in extents format,
    // remote values)
    for i in 0..6usize {
        let p = format!("frag/xattr{i}");
        let f = std::fs::File::create(root.join(&p)).expect("create xattr file");
        let count = if i < 2 { 2 } else { 40 + i * 20 };
        for k in 0..count {
            let len = if i < 2 { 16 } else { 200 + (rnd() % 3000) as usize };
            daxray::sys::fsetxattr(&f, &format!("user.a{k}"), &vec![(k & 0xff) as u8; len])
                .expect("fsetxattr");
        }
        made.push(p);
    }
    // a directory of long names
    std::fs::create_dir_all(root.join("names")).expect("mkdir names");
    for i in 0..names {
        let len = 100 + (rnd() % 150) as usize;
        let mut name = format!("n{i:05}_");
        while name.len() < len {
            name.push(char::from(b'a' + (rnd() % 26) as u8));
        }
        std::fs::write(root.join("names").join(&name), if i % 10 == 0 { name.as_bytes() } else { b"" })
            .expect("create name");
    }
    made
}

/// `ctime(3)`-style text of a UTC time, as `TZ=UTC xfs_db` prints timestamps:
/// "Thu Jan  1 00:00:00 1970".
pub fn ctime_utc(sec: i64) -> String {
    let days = sec.div_euclid(86400);
    let rem = sec.rem_euclid(86400);
    let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // civil from days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    let wd = (days + 4).rem_euclid(7) as usize;
    const WD: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MO: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!("{} {} {:2} {:02}:{:02}:{:02} {}", WD[wd], MO[(m - 1) as usize], d, h, mi, s, y)
}

/// Every symlink under `root` (a mounted tree) and its target as the kernel reads it, by path
/// from the root ("/a/b").
pub fn kernel_symlinks(root: &Path) -> BTreeMap<String, Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read_dir") {
            let e = e.expect("dirent");
            let name = e.file_name().to_string_lossy().into_owned();
            let path = format!("{prefix}/{name}");
            let ft = e.file_type().expect("file type");
            if ft.is_symlink() {
                out.insert(
                    path,
                    std::fs::read_link(e.path()).expect("readlink").as_os_str().as_bytes().to_vec(),
                );
            } else if ft.is_dir() {
                stack.push((e.path(), path));
            }
        }
    }
    out
}
