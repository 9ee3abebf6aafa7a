//! Helpers shared by the XFS tests: tool checks, mkfs, xfs_db output parsing.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// True when every tool is there (and root, when asked). Otherwise panics naming what to
/// install, unless DAXRAY_SKIP_ROOT_TESTS=1, in which case it prints that it skipped and
/// returns false.
pub fn need(tools: &[&str], root: bool) -> bool {
    let mut missing = vec![];
    for t in tools {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok {
            missing.push(*t);
        }
    }
    let is_root = daxray_is_root();
    let mut why = String::new();
    if !missing.is_empty() {
        why = format!("missing tools {missing:?}: apt-get install xfsprogs util-linux");
    }
    if root && !is_root {
        why.push_str(" this test needs root (loop mounts)");
    }
    if why.is_empty() {
        return true;
    }
    if std::env::var("DAXRAY_SKIP_ROOT_TESTS").as_deref() == Ok("1") {
        eprintln!("skipped: {why}");
        return false;
    }
    panic!("{why}");
}

fn daxray_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
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
