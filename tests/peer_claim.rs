//! `daxray claim` against the kernel and `daxray check`: on mkfs-made images filled through a loop
//! mount, each claim's sha256 equals `sha256sum` of `dd` of the same range of the mounted file;
//! `check` finds every claim made from the image durable on it, and lost once the files were
//! changed (overwritten, truncated, removed) through a loop mount.

mod peer_common;

use daxray::oracle::Mount;
use peer_common::*;
use std::path::Path;
use std::process::Command;

/// (path, offset, len): inside a file, a whole small file, a sparse file's data between holes,
/// one extent of many. (A claim over a hole is never durable: `check` reads it as lost.)
const RANGES: &[(&str, u64, u64)] = &[
    ("/big", 1000, 5000),
    ("/big", 1_000_000, 300_000),
    ("/small", 0, 12),
    ("/sparse", (1 << 20) + 100, 8000),
    ("/frag", 8192 * 3 + 100, 3000),
    ("/d/sub/deeper/leaf", 69_999, 1),
];

/// sha256sum of `dd` of `len` bytes at `offset` of `file`.
fn dd_sha256(file: &Path, offset: u64, len: u64) -> String {
    let cmd = format!(
        "dd if='{}' iflag=skip_bytes,count_bytes bs=65536 skip={offset} count={len} status=none | sha256sum",
        file.display()
    );
    let o = Command::new("sh").arg("-c").arg(&cmd).output().expect("run dd | sha256sum (coreutils)");
    assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).split_whitespace().next().expect("sha256sum output").to_string()
}

fn claims_then_check(img: &Path, fstype: &str) {
    let s = img.to_str().unwrap();
    let mut lines = String::new();
    let m = Mount::new(img, 0, fstype, "ro").expect("mount read-only");
    for (path, off, len) in RANGES {
        let line = daxray_ok(&["claim", s, path, &off.to_string(), &len.to_string()]);
        let v: serde_json::Value = serde_json::from_str(&line).expect("claim line is JSON");
        assert_eq!(
            (v["path"].as_str(), v["offset"].as_u64(), v["len"].as_u64()),
            (Some(*path), Some(*off), Some(*len))
        );
        let want = dd_sha256(&m.path().join(&path[1..]), *off, *len);
        assert_eq!(v["sha256"].as_str(), Some(want.as_str()), "{path} {off}+{len}: not the kernel's bytes");
        lines.push_str(&line);
    }
    m.unmount().expect("umount");
    let (code, _, err) = daxray(&["claim", s, "/small", "5", "100"]);
    assert_eq!(code, 2, "a range past the end of the file is refused: {err}");
    let claims = img.with_extension("claims.jsonl");
    std::fs::write(&claims, &lines).expect("write claims");
    let c = claims.to_str().unwrap();
    let report = |code_want: i32| -> Vec<String> {
        let (code, out, err) = daxray(&["--json", "check", s, "--claims", c]);
        assert_eq!(code, code_want, "check: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("check JSON");
        v["verdicts"].as_array().unwrap().iter().map(|x| x["verdict"].as_str().unwrap().to_string()).collect()
    };
    assert!(report(0).iter().all(|v| v == "durable"), "claims made from the image hold on it");

    // Change the files through the kernel: overwrite, truncate, remove.
    let m = Mount::new(img, 0, fstype, "").expect("mount");
    let root = m.path();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(root.join("big")).expect("open /big");
        f.write_all_at(b"changed", 3000).expect("overwrite /big");
        f.write_all_at(b"changed", 1_100_000).expect("overwrite /big");
        f.sync_all().expect("fsync");
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(root.join("frag"))
        .and_then(|f| f.set_len(100))
        .expect("truncate /frag");
    std::fs::remove_file(root.join("d/sub/deeper/leaf")).expect("remove leaf");
    m.unmount().expect("umount");
    let after = report(1);
    let lost: Vec<&(&str, u64, u64)> =
        RANGES.iter().zip(&after).filter(|(_, v)| *v != "durable").map(|(r, _)| r).collect();
    let changed: Vec<&(&str, u64, u64)> = RANGES
        .iter()
        .filter(|(p, _, _)| *p == "/big" || *p == "/frag" || *p == "/d/sub/deeper/leaf")
        .collect();
    assert_eq!(lost, changed, "verdicts after the change: {after:?}");
}

#[test]
fn ext4_claims_hold_until_the_kernel_changes_the_file() {
    if !ready(&["setfattr", "mkfs.ext4", "mount", "losetup", "dd", "sha256sum"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary folder");
    let (img, _) = ext4_image(tmp.path());
    claims_then_check(&img, "ext4");
}

#[test]
fn xfs_claims_hold_until_the_kernel_changes_the_file() {
    if !ready(&["setfattr", "mkfs.xfs", "mount", "losetup", "dd", "sha256sum"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary folder");
    let (img, _) = xfs_image(tmp.path());
    claims_then_check(&img, "xfs");
}
