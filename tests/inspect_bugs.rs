//! The inspection commands (`cat`, `ls`, `stat`, `info`, `check`) on images made by mkfs and the
//! kernel, each answer compared with an oracle that is not daxray: the kernel through a loop
//! mount (`readlink`, `stat(1)`, `statfs`), `debugfs` and `xfs_db`.
//!
//! Needs root, util-linux (`mount`, `losetup`), e2fsprogs and xfsprogs.

mod common;

use common::ready;
use daxray::oracle::Mount;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a daxray run gave: exit code, standard output, standard error.
struct Run {
    code: i32,
    out: String,
    err: String,
}

/// Run daxray with `args`.
fn dx(args: &[&str]) -> Run {
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
fn tool(prog: &str, args: &[&str]) -> String {
    let o =
        Command::new(prog).args(args).env("TZ", "UTC").output().unwrap_or_else(|e| panic!("run {prog}: {e}"));
    assert!(o.status.success(), "{prog} {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// A symlink target too long for the inode on both file systems (ext4 keeps targets under 60
/// bytes in i_block; XFS keeps them in the inode's literal area), so it lives in a block.
fn slow_target() -> String {
    format!("{}end", "dir/".repeat(120))
}

/// A fresh image of `fs` ("ext4" or "xfs") made by mkfs, in its own folder.
fn mkfs(fs: &str, dir: &Path) -> PathBuf {
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
fn mounted<T>(img: &Path, fs: &str, f: impl FnOnce(&Path) -> T) -> T {
    let m = Mount::new(img, 0, fs, "").expect("loop mount");
    let out = f(m.path());
    m.unmount().expect("unmount");
    out
}

/// The tree the tests look at: a directory with a file, a fast and a slow symlink.
fn populate(root: &Path) {
    std::fs::create_dir(root.join("docs")).expect("mkdir");
    std::fs::write(root.join("docs/hello.txt"), b"hello, pmem\n").expect("write");
    std::os::unix::fs::symlink("docs/hello.txt", root.join("fast")).expect("fast symlink");
    std::os::unix::fs::symlink(slow_target(), root.join("slow")).expect("slow symlink");
}

/// Images of both file systems made by mkfs and populated by the kernel, with what the kernel
/// said of the symlinks while mounted (`readlink`).
fn images(dir: &Path) -> Vec<(&'static str, PathBuf, [String; 2])> {
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

#[test]
fn symlinks_show_their_target_in_cat_ls_and_stat() {
    if !ready(&["mkfs.ext4", "mkfs.xfs", "debugfs", "xfs_db", "readlink", "mount", "losetup"], true) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    for (fs, img, [fast, slow]) in images(tmp.path()) {
        assert_eq!(slow, slow_target(), "{fs}: the kernel's readlink");
        // The oracles agree the fast link is in the inode and the slow one in a block.
        if fs == "ext4" {
            let d = tool("debugfs", &["-R", "stat /fast", s(&img)]);
            assert!(d.contains(&format!("Fast link dest: \"{fast}\"")), "{d}");
            let d = tool("debugfs", &["-R", "stat /slow", s(&img)]);
            assert!(!d.contains("Fast link dest"), "ext4 /slow is not a slow symlink: {d}");
        } else {
            let ino = dx(&["--json", "stat", s(&img), "/slow"]);
            let v: serde_json::Value = serde_json::from_str(&ino.out).expect("stat JSON");
            let db = tool(
                "xfs_db",
                &["-r", "-c", &format!("inode {}", v["ino"]), "-c", "print core.format", s(&img)],
            );
            assert!(db.contains("core.format = 2 (extents)"), "XFS /slow is not a remote symlink: {db}");
        }
        for (link, target) in [("/fast", &fast), ("/slow", &slow)] {
            let r = dx(&["cat", s(&img), link]);
            assert_eq!((r.code, r.out.as_str()), (0, target.as_str()), "{fs} cat {link}: {}", r.err);
            let r = dx(&["stat", s(&img), link]);
            assert!(
                r.out
                    .lines()
                    .any(|l| l.split_once(':').is_some_and(|(k, v)| k == "target" && v.trim() == target)),
                "{fs} stat {link}:\n{}",
                r.out
            );
            let r = dx(&["ls", "-l", s(&img), "/"]);
            let name = &link[1..];
            assert!(
                r.out.lines().any(|l| l.ends_with(&format!(" {name} -> {target}"))),
                "{fs} ls -l:\n{}",
                r.out
            );
            let r = dx(&["--json", "ls", s(&img), "/"]);
            let v: serde_json::Value = serde_json::from_str(&r.out).expect("ls JSON");
            let e = v["entries"].as_array().unwrap().iter().find(|e| e["name"] == name).expect("entry");
            assert_eq!(e["target"].as_str(), Some(target.as_str()), "{fs} ls --json");
        }
    }
}

#[test]
fn cat_refuses_a_directory_and_json() {
    if !ready(&["mkfs.ext4", "mkfs.xfs", "readlink", "mount", "losetup"], true) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    for (fs, img, _) in images(tmp.path()) {
        let r = dx(&["cat", s(&img), "/docs"]);
        assert_eq!(r.code, 2, "{fs}: cat of a directory: {}", r.err);
        assert!(r.out.is_empty(), "{fs}: cat of a directory wrote {} bytes", r.out.len());
        assert!(r.err.contains("/docs: is a directory"), "{fs}: {}", r.err);
        let r = dx(&["--json", "cat", s(&img), "/docs/hello.txt"]);
        assert_eq!(r.code, 2, "{fs}: cat --json: {}", r.out);
        let r = dx(&["cat", s(&img), "/docs/hello.txt"]);
        assert_eq!((r.code, r.out.as_str()), (0, "hello, pmem\n"), "{fs}");
    }
}
