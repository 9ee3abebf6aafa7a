//! Paths in use, with a real loop device and a real mount (root): `image::in_use` sees a file
//! behind a loop device, the mount of that device (read-write), and a block device another
//! program holds with `O_EXCL`; the engine then refuses to loop-mount such an image
//! (`oracle::Mount`), to boot a guest on it (`Vm::boot`), and to write a kept replay state over
//! it; while inspection commands (`daxray info`, `ls`) still read a mounted image, with an info
//! finding that it is mounted read-write. After unmount and detach the same paths are free.

mod common;

use daxray::image::{in_use, mounted_read_write, refuse_in_use};
use daxray::oracle::{self, Mount};
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

/// The tests here attach loop devices and mount: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

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
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
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
    cfg.image = tmp.path().join("pmem.img");
    cfg.console_log = img.clone();
    match daxray::vm::Vm::boot(&cfg, &job) {
        Ok(_) => panic!("Vm::boot wrote its console over a mounted image"),
        Err(e) => {
            assert!(e.to_string().contains("console log") && e.to_string().contains("mounted at"), "{e}")
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
        kernel_refused: None,
        in_flight: None,
        whole_view: None,
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

/// A whole disk whose partition is mounted is in use, and says which partition. The disk is a
/// loop device with partition scanning (`losetup -P`, and `partx -a` where the kernel leaves
/// that to user space); its one-entry MBR partition table is written here (the kernel reads it),
/// the partition formatted by mkfs.
#[test]
fn a_disk_with_a_mounted_partition_is_in_use() {
    if !common::ready(&["mkfs.ext4", "losetup", "mount", "umount", "mknod", "partx"], true) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().expect("tempdir");
    let disk = tmp.path().join("disk.img");
    let f = std::fs::File::create(&disk).expect("create");
    f.set_len(64 << 20).expect("size");
    // MBR: one Linux partition (type 0x83) from sector 2048 to the end, and the 0x55AA signature.
    let mut mbr = [0u8; 512];
    mbr[446 + 4] = 0x83;
    mbr[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
    mbr[446 + 12..446 + 16].copy_from_slice(&((64u32 << 11) - 2048).to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    std::os::unix::fs::FileExt::write_all_at(&f, &mbr, 0).expect("write MBR");
    drop(f);
    let dev = sh("losetup", &["-P", "--find", "--show", disk.to_str().expect("utf-8")]);
    let _lp = Loop(dev.clone());
    // The kernel lists the partition in sysfs; without udev (containers) nobody makes its node
    // in /dev, so make one from sysfs' device number.
    let name = format!("{}p1", dev.trim_start_matches("/dev/"));
    let sys = Path::new("/sys/class/block").join(&name).join("dev");
    for i in 0..50 {
        if sys.exists() {
            break;
        }
        if i == 10 {
            // Some kernels leave the scan to user space: ask for the partitions (BLKPG).
            let _ = Command::new("partx").args(["-a", &dev]).status();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let majmin = std::fs::read_to_string(&sys).unwrap_or_else(|e| panic!("the kernel made no {name}: {e}"));
    let (ma, mi) = majmin.trim().split_once(':').expect("major:minor");
    let part = format!("/dev/{name}");
    let node = if Path::new(&part).exists() {
        part.clone()
    } else {
        let n = tmp.path().join(&name).to_str().expect("utf-8").to_string();
        sh("mknod", &[&n, "b", ma, mi]);
        n
    };
    let part = node;
    sh("mkfs.ext4", &["-q", "-F", &part]);
    assert_eq!(in_use(Path::new(&dev)), None, "a disk with an unmounted partition is free");
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mkdir");
    let mnt_s = mnt.to_str().expect("utf-8").to_string();
    sh("mount", &[&part, &mnt_s]);
    let _m = Mounted(mnt_s.clone());
    let why = in_use(Path::new(&dev)).expect("a disk with a mounted partition is in use");
    assert!(why.contains(&format!("has partition {name} mounted at {mnt_s}")), "{why}");
    assert!(refuse_in_use(Path::new(&dev), "a test target").is_err());
}
