//! `daxray check` on images the kernel made: loop-mount a fresh ext4 or XFS, write files with
//! known bytes (written pages, a hole, an fallocated-unwritten range, a punched range whose old
//! block still holds its bytes), then check claims about them. Every verdict is compared with
//! what the kernel itself reads back from a mounted copy of the same image (the oracle).
//!
//! Needs root, util-linux (`mount`, `losetup`), e2fsprogs, xfsprogs (`mkfs.xfs`, `xfs_io`).

mod common;

use common::ready;
use daxray::check::{Claim, Status, Verdict, check_model, write_claims};
use daxray::open::{Model, OpenOptions, open};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

fn sh(prog: &str, args: &[&str]) {
    let out = Command::new(prog).args(args).output().unwrap_or_else(|e| panic!("{prog}: {e}"));
    assert!(
        out.status.success(),
        "{prog} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A loop mount that unmounts on drop.
struct Mounted(PathBuf);
impl Mounted {
    fn new(image: &Path, dir: &Path, fstype: &str) -> Self {
        std::fs::create_dir_all(dir).expect("mount point");
        sh("mount", &["-t", fstype, "-o", "loop", path(image), path(dir)]);
        Mounted(dir.to_path_buf())
    }
}
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn claim(p: &str, offset: u64, bytes: &[u8]) -> Claim {
    Claim { path: p.into(), ino: None, offset, len: bytes.len() as u64, sha256: sha(bytes), seq: None }
}

/// Build the image, write the workload; with `dirty`, copy the image while still mounted
/// (after fsync: the journal/log holds committed, un-checkpointed metadata). Returns the image
/// to check and the claims with the verdict each should get.
fn make(dir: &Path, fstype: &str, dirty: bool) -> (PathBuf, Vec<(Claim, Status)>) {
    let img = dir.join("fs.img");
    let size: u64 = if fstype == "xfs" { 320 << 20 } else { 64 << 20 };
    std::fs::File::create(&img).expect("image").set_len(size).expect("size");
    match fstype {
        "xfs" => sh("mkfs.xfs", &["-q", "-f", "-m", "reflink=0", path(&img)]),
        _ => sh("mkfs.ext4", &["-q", "-F", "-b", "4096", path(&img)]),
    }
    let mnt = dir.join("mnt");
    let m = Mounted::new(&img, &mnt, fstype);
    let f = mnt.join("f");
    let io = |file: &Path, cmds: &[&str]| {
        let mut args = vec!["-f"];
        for c in cmds {
            args.push("-c");
            args.push(c);
        }
        args.push(path(file));
        sh("xfs_io", &args);
    };
    // /f: page 0 = 0xa1, page 1 a hole, page 2 = 0xa2, size 4 pages.
    io(&f, &["truncate 16384", "pwrite -S 0xa1 0 4096", "pwrite -S 0xa2 8192 4096", "fsync"]);
    // /u: fallocated, unwritten, size 4 pages.
    io(&mnt.join("u"), &["falloc 0 16384", "fsync"]);
    // /p: page 0 written with 0xa5, then punched out: its old block still holds the bytes.
    io(
        &mnt.join("p"),
        &["pwrite -S 0xa5 0 4096", "pwrite -S 0xa6 4096 4096", "fsync", "fpunch 0 4096", "fsync"],
    );
    let checked = if dirty {
        let copy = dir.join("dirty.img");
        sh("cp", &["--sparse=always", path(&img), path(&copy)]);
        copy
    } else {
        img.clone()
    };
    drop(m);
    let claims = vec![
        (claim("/f", 0, &[0xa1; 4096]), Status::Durable),
        (claim("/f", 100, &[0xa1; 64]), Status::Durable),
        (claim("/f", 8192 + 4000, &[0xa2; 96]), Status::Durable),
        (claim("/f", 4096, &[0xa3; 64]), Status::LostHole),
        (claim("/f", 8192, &[0xff; 64]), Status::DataDiffers),
        (claim("/u", 4096, &[0xa4; 64]), Status::LostUnwritten),
        (claim("/p", 0, &[0xa5; 4096]), Status::LostUncommitted),
        (claim("/p", 4096, &[0xa6; 4096]), Status::Durable),
        (claim("/nope", 0, &[1; 8]), Status::MissingFile),
    ];
    (checked, claims)
}

/// What the kernel says: mount a copy (its own recovery runs), read each claim's bytes back.
fn kernel_durable(image: &Path, dir: &Path, fstype: &str, claims: &[Claim]) -> Vec<bool> {
    let copy = dir.join("oracle.img");
    sh("cp", &["--sparse=always", path(image), path(&copy)]);
    let mnt = dir.join("omnt");
    let _m = Mounted::new(&copy, &mnt, fstype);
    claims
        .iter()
        .map(|c| {
            use std::io::{Read, Seek, SeekFrom};
            let Ok(mut f) = std::fs::File::open(mnt.join(c.path.trim_start_matches('/'))) else {
                return false;
            };
            let mut buf = vec![0u8; c.len as usize];
            f.seek(SeekFrom::Start(c.offset)).expect("seek");
            f.read_exact(&mut buf).is_ok() && sha(&buf) == c.sha256
        })
        .collect()
}

fn run_case(fstype: &str, dirty: bool) {
    if !ready(&["mkfs.ext4", "mkfs.xfs", "xfs_io", "mount", "losetup"], true) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (image, expected) = make(dir.path(), fstype, dirty);
    let claims: Vec<Claim> = expected.iter().map(|(c, _)| c.clone()).collect();
    let o = open(&image, &OpenOptions::default()).expect("daxray opens the kernel-made image");
    let model = Model { view: o.view, recovery: o.recovery, fs: o.fs };
    let verdicts: Vec<Verdict> = check_model(&model, &claims);
    assert_eq!(verdicts.len(), claims.len());
    let kernel = kernel_durable(&image, dir.path(), fstype, &claims);
    let mut wrong = Vec::new();
    for ((v, (_, want)), k) in verdicts.iter().zip(&expected).zip(&kernel) {
        if v.verdict != *want || v.verdict.is_lost() == *k {
            wrong.push(format!(
                "{} @{}+{}: daxray {} (expected {}), kernel says {}: {}",
                v.claim.path,
                v.claim.offset,
                v.claim.len,
                v.verdict,
                want,
                if *k { "durable" } else { "lost" },
                v.evidence.detail
            ));
        }
    }
    assert!(wrong.is_empty(), "{fstype} dirty={dirty}:\n{}", wrong.join("\n"));
    let durable = verdicts.iter().filter(|v| !v.verdict.is_lost()).count();
    assert_eq!(durable, 4, "four durable claims");
    assert_eq!(kernel.iter().filter(|k| **k).count(), 4, "the kernel agrees on four");
    // Evidence: the durable claims name their physical blocks; the punched one names where the
    // bytes still are.
    assert!(verdicts[0].evidence.blocks.len() == 1 && verdicts[0].evidence.size == Some(16384));
    assert!(!verdicts[6].evidence.data_found_at.is_empty());

    // The command line agrees, and exits 1 because claims are lost.
    let cf = dir.path().join("claims.jsonl");
    write_claims(&cf, &claims).expect("claims file");
    let out = Command::new(env!("CARGO_BIN_EXE_daxray"))
        .args(["check", path(&image), "--claims", path(&cf), "--json"])
        .output()
        .expect("run daxray");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["summary"]["durable"], 4);
    assert_eq!(v["verdicts"][3]["verdict"], "lost-hole");
    // Only the durable claims: exit 0.
    write_claims(&cf, &claims[..3]).expect("claims file");
    let st = Command::new(env!("CARGO_BIN_EXE_daxray"))
        .args(["check", path(&image), "--claims", path(&cf)])
        .output()
        .expect("run daxray");
    assert_eq!(st.status.code(), Some(0), "{}", String::from_utf8_lossy(&st.stdout));
}

#[test]
fn check_ext4_clean() {
    run_case("ext4", false);
}

#[test]
fn check_ext4_dirty_journal() {
    run_case("ext4", true);
}

#[test]
fn check_xfs_clean() {
    run_case("xfs", false);
}

#[test]
fn check_xfs_dirty_log() {
    run_case("xfs", true);
}
