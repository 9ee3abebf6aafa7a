//! Helpers shared by the XFS tests: tool checks, mkfs, xfs_db output parsing.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// True when every tool is there (and root, when asked). Otherwise fails naming what to
/// install, unless DAXRAY_SKIP_ROOT_TESTS=1, in which case it prints that it skipped and
/// returns false.
pub fn need(tools: &[&str], root: bool) -> bool {
    match daxray::oracle::require(tools, root) {
        Ok(()) => true,
        Err(why) if daxray::oracle::tests_may_skip() => {
            eprintln!("skipped (DAXRAY_SKIP_ROOT_TESTS=1): {why}");
            false
        }
        Err(why) => panic!("{why}"),
    }
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
