//! Paths in use, with a real loop device and a real mount (root): `oracle::in_use` sees a file
//! behind a loop device, the mount of that device (read-write), and a block device another
//! program holds with `O_EXCL`; the engine then refuses to loop-mount such an image
//! (`oracle::Mount`), to boot a guest on it (`Vm::boot`), and to write a kept replay state over
//! it; while inspection commands (`daxray info`, `ls`) still read a mounted image, with an info
//! finding that it is mounted read-write. After unmount and detach the same paths are free.

mod common;

use daxray::oracle::{self, Mount, in_use, mounted_read_write, refuse_in_use};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Command;

fn sh(prog: &str, args: &[&str]) -> String {
    let o = Command::new(prog).args(args).output().unwrap_or_else(|e| panic!("{prog}: {e}"));
    assert!(o.status.success(), "{prog} {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A loop device attached to a file, detached on drop.
struct Loop(String);
impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// A mount, unmounted on drop.
struct Mounted(String);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn daxray(args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_daxray")).args(args).output().expect("run daxray");
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    (o.status.code().unwrap_or(-1), text)
}

#[test]
fn paths_in_use_are_refused_and_inspection_warns() {
    if !common::ready(&["mkfs.ext4", "losetup", "mount", "umount"], true) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let img = tmp.path().join("in-use.img");
    oracle::make_image(&img, 64 << 20, &["mkfs.ext4", "-q", "-F", "-b", "4096"]).expect("mkfs");
    std::fs::write(tmp.path().join("other"), b"x").expect("write");
    assert_eq!(in_use(&img), None, "a fresh image is free");

    // 1. Attached to a loop device, not mounted.
    let dev = sh("losetup", &["--find", "--show", img.to_str().expect("utf-8")]);
    let lp = Loop(dev.clone());
    let why = in_use(&img).expect("an attached image is in use");
    assert!(why.contains(&format!("backs loop device {dev}")) && !why.contains("mounted"), "{why}");
    assert_eq!(in_use(Path::new(&dev)), None, "an attached, unmounted, unclaimed loop device is free");

    // 2. A program holds the device exclusively.
    {
        let _held = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_EXCL)
            .open(&dev)
            .expect("O_EXCL open");
        let why = in_use(Path::new(&dev)).expect("an O_EXCL-held device is in use");
        assert!(why.contains("busy") && why.contains("EBUSY"), "{why}");
    }
    assert_eq!(in_use(Path::new(&dev)), None, "free again once closed");

    // 3. Mounted read-write.
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mkdir");
    let mnt_s = mnt.to_str().expect("utf-8").to_string();
    sh("mount", &[&dev, &mnt_s]);
    let mounted = Mounted(mnt_s.clone());
    std::fs::write(mnt.join("live"), b"written through the kernel").expect("write through the mount");
    let why = in_use(&img).expect("mounted image");
    assert!(why.contains(&format!("mounted at {mnt_s} (rw)")), "{why}");
    let why_dev = in_use(Path::new(&dev)).expect("mounted device");
    assert!(why_dev.contains(&format!("is mounted at {mnt_s}")), "{why_dev}");
    assert!(mounted_read_write(&img).is_some_and(|m| m.contains(&mnt_s)));
    assert!(mounted_read_write(Path::new(&dev)).is_some());

    // The engine refuses to write to or loop-mount it.
    let e = refuse_in_use(&img, "a test target").expect_err("refused");
    assert!(e.to_string().contains("refusing to use") && e.to_string().contains("a test target"), "{e}");
    let e = Mount::new(&img, 0, "ext4", "ro").expect_err("Mount::new on a mounted image");
    assert!(e.to_string().contains("refusing") && e.to_string().contains("loop-mount"), "{e}");
    let e = Mount::new(Path::new(&dev), 0, "ext4", "ro").expect_err("Mount::new on a mounted device");
    assert!(e.to_string().contains("is mounted at"), "{e}");
    let assets = daxray::vm::Assets {
        kernel: tmp.path().join("other"),
        modules: tmp.path().to_path_buf(),
        version: "unused".into(),
    };
    let mut cfg = daxray::vm::VmConfig::new(assets, tmp.path(), daxray::agent::proto::FsChoice::Ext4);
    cfg.image = img.clone();
    let job = daxray::agent::proto::Job::new(daxray::agent::proto::FsChoice::Ext4, true, "seq-sparse", 1);
    match daxray::vm::Vm::boot(&cfg, &job) {
        Ok(_) => panic!("Vm::boot used a mounted image as the NVDIMM"),
        Err(e) => {
            assert!(e.to_string().contains("NVDIMM image") && e.to_string().contains("mounted at"), "{e}")
        }
    }
    // A kept replay state is never written over a file in use.
    let keep = tmp.path().join("keep");
    std::fs::create_dir(&keep).expect("mkdir");
    std::os::unix::fs::symlink(&img, keep.join("image.img")).expect("symlink");
    let info = daxray::replay::state::KeptState {
        why: "sample",
        fs: "ext4",
        sync: true,
        scenario: "seq-sparse",
        state: 0,
        at: "test".into(),
        dataoff: 0,
        kernel: "none",
        daxray: &[],
        daxray_error: None,
        kernel_durable: None,
    };
    let e = daxray::replay::state::keep_state(&tmp.path().join("other"), &keep, &[], &info)
        .expect_err("keep_state over an image in use");
    assert!(e.to_string().contains("kept state"), "{e}");
    let kept = std::fs::symlink_metadata(keep.join("image.img")).expect("lstat");
    assert!(kept.file_type().is_symlink(), "the link to the image in use was replaced");
    assert!(!keep.join("claims.jsonl").exists() && !keep.join("verdicts.json").exists());

    // Inspection still reads it, with a warning finding.
    let (code, out) = daxray(&["info", img.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("mounted read-write") && out.contains("may be inconsistent"), "{out}");
    let (code, out) = daxray(&["--json", "info", &dev]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let found = v["findings"].as_array().expect("findings").iter().filter(|f| {
        f["severity"] == "info" && f["message"].as_str().is_some_and(|m| m.contains("mounted read-write"))
    });
    assert_eq!(found.count(), 1, "{v}");
    let (code, out) = daxray(&["--json", "journal", img.to_str().expect("utf-8")]);
    assert!(code == 0 || code == 1, "{out}");
    assert!(out.contains("mounted read-write"), "{out}");
    let (code, out) = daxray(&["ls", img.to_str().expect("utf-8"), "/"]);
    assert!(code == 0 || code == 1, "{out}");
    assert!(out.contains("mounted read-write"), "{out}");

    // 4. Unmounted and detached: free again.
    drop(mounted);
    drop(lp);
    let mut free = false;
    for _ in 0..50 {
        if in_use(&img).is_none() {
            free = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(free, "still in use after detach: {:?}", in_use(&img));
    assert!(refuse_in_use(&img, "a test target").is_ok());
    let (code, out) = daxray(&["info", img.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("mounted read-write"), "{out}");
}
