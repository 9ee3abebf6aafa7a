//! XFS log recovery against the kernel's own recovery.
//!
//! Each case makes an XFS image with mkfs.xfs, loop-mounts it, runs a seeded workload with
//! fsync, copies the backing file WHILE STILL MOUNTED (a crash image: committed log, stale
//! metadata in place), unmounts, and mounts a second copy so that the kernel recovers it. Then:
//! - daxray's recovered view of the crash image (`open::open`, default options) must give the
//!   same manifest (every file's size, sha256 and merged extents) as the kernel's recovery;
//! - the recovered bytes written to a file and mounted with `-o ro,norecovery` must give the
//!   kernel the same manifest too (the kernel reads our replayed metadata, no recovery of its own);
//! - at least one crash image read raw (no recovery) must differ, proving the test can fail.
//!
//! One case uses a tiny log and a long workload, and asserts that the log wrapped (head cycle > 1);
//! one mounts with `logbsize=256k` so that records carry extended headers.

mod common;
mod xfs_common;

use common::ready;
use daxray::manifest::{self, ManifestEntry};
use daxray::open::{self, OpenOptions};
use daxray::oracle::{self, Mount, WorkloadSpec};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use xfs_common::{dirty_xfs, mkfs_xfs_env};

fn seed_base() -> u64 {
    std::env::var("DAXRAY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(7)
    })
}

struct Case {
    dirty: PathBuf,
    kernel: Vec<ManifestEntry>,
}

/// Make a crash image and the kernel's recovered manifest of it.
fn crash_image(
    dir: &Path,
    name: &str,
    mkfs_args: &[&str],
    small_log: bool,
    opts: &str,
    spec: &WorkloadSpec,
) -> Case {
    let (stats, dirty) = dirty_xfs(dir, name, mkfs_args, small_log, opts, spec);
    eprintln!("{name}: workload {stats:?}");
    let kcopy = dir.join(format!("{name}-kernel.img"));
    let kernel = oracle::recovered_manifest(&dirty, "xfs", "", &kcopy, true).expect("the kernel's recovery");
    assert!(kernel.len() >= 100, "{name}: only {} files in the kernel's view", kernel.len());
    Case { dirty, kernel }
}

/// daxray's manifest of `img` (recovered unless `raw`) and the recovery report.
fn ours(img: &Path, raw: bool) -> (Vec<ManifestEntry>, daxray::open::RecoveryReport) {
    let o = open::open(img, &OpenOptions { raw, ..Default::default() }).expect("daxray open");
    let (m, errs) = manifest::build(&*o.fs, true).expect("daxray manifest");
    // The raw media of a crash image may hold metadata never written yet (zeroed blocks).
    assert!(raw || errs.is_empty(), "daxray path errors: {errs:?}");
    (m, o.recovery)
}

/// Write daxray's recovered view of `img` to `out` (sparse: all-zero MiBs are skipped).
fn write_view(img: &Path, out: &Path) {
    let o = open::open(img, &OpenOptions::default()).expect("daxray open");
    let v = &o.view;
    let mut f = std::fs::File::create(out).expect("create view file");
    f.set_len(v.len()).expect("size view file");
    let chunk = 1u64 << 20;
    let mut off = 0;
    while off < v.len() {
        let n = chunk.min(v.len() - off) as usize;
        let b = v.read_at(off, n).expect("read view");
        if b.iter().any(|x| *x != 0) {
            f.seek(SeekFrom::Start(off)).expect("seek");
            f.write_all(&b).expect("write view");
        }
        off += n as u64;
    }
}

/// The kernel's manifest of `img` mounted read-only without log recovery.
fn norecovery_manifest(img: &Path) -> Vec<ManifestEntry> {
    let m = Mount::new(img, 0, "xfs", "ro,norecovery").expect("norecovery mount");
    let v = oracle::kernel_manifest(m.path(), true).expect("kernel manifest");
    m.unmount().expect("unmount");
    v
}

fn check(case: &Case, name: &str, dir: &Path) -> (u64, bool) {
    let (mine, rep) = ours(&case.dirty, false);
    eprintln!("{name}: recovery {}", serde_json::to_string(&rep.details).unwrap_or_default());
    assert_eq!(rep.kind, "xfs-log");
    assert!(rep.needed && rep.applied, "{name}: the crash image needs recovery: {:?}", rep.details);
    let replay = &rep.details["replay"];
    assert!(replay["transactions_replayed"].as_u64().unwrap_or(0) > 0, "{name}: nothing replayed");
    assert!(replay["errors"].as_array().is_some_and(|e| e.is_empty()), "{name}: replay errors {replay}");
    let n = oracle::compare_manifests(&mine, &case.kernel)
        .unwrap_or_else(|e| panic!("{name}: daxray vs kernel:\n{e}"));
    assert_eq!(n, case.kernel.len());
    // The kernel reading our replayed bytes without recovering anything itself.
    let view = dir.join(format!("{name}-view.img"));
    write_view(&case.dirty, &view);
    let kv = norecovery_manifest(&view);
    std::fs::remove_file(&view).ok();
    oracle::compare_manifests(&kv, &case.kernel)
        .unwrap_or_else(|e| panic!("{name}: kernel on daxray-recovered bytes vs kernel recovery:\n{e}"));
    // Raw: no recovery.
    let (raw, _) = ours(&case.dirty, true);
    let raw_differs = oracle::compare_manifests(&raw, &case.kernel).is_err();
    eprintln!("{name}: {n} files equal the kernel's recovery; raw view differs: {raw_differs}");
    (rep.details["head"]["cycle"].as_u64().unwrap_or(0), raw_differs)
}

/// Flip one byte inside the last record of the crash image: the kernel takes it for a torn
/// write, trims the head back to that record, and recovers the rest; daxray must do the same.
fn torn_head(c: &Case, dir: &Path) {
    use std::os::unix::fs::FileExt;
    let l = daxray::cli::listing::xfs(
        daxray::image::open(&c.dirty, None).expect("open").fs_bytes.clone(),
        &Default::default(),
        false,
    )
    .expect("listing");
    let recs = l.json["record_list"].as_array().expect("records");
    let last = recs.last().expect("a record");
    let (blk, hb, len) = (
        last["block"].as_u64().expect("block"),
        last["header_blocks"].as_u64().expect("hblks"),
        last["len"].as_u64().expect("len"),
    );
    let log_blocks = l.json["log_blocks"].as_u64().expect("log blocks");
    assert!(blk + hb + len.div_ceil(512) < log_blocks, "last record wraps; pick another image");
    // A byte in the middle of the data, away from the cycle-stamped first word of a sector.
    let mut at = len / 2;
    if at % 512 < 4 {
        at += 4;
    }
    let off = l.json["log_start_byte"].as_u64().expect("log start") + (blk + hb) * 512 + at.min(len - 1);
    let torn = dir.join("torn-dirty.img");
    oracle::copy_sparse(&c.dirty, &torn).expect("copy");
    let f = std::fs::OpenOptions::new().read(true).write(true).open(&torn).expect("open torn");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, off).expect("read");
    f.write_all_at(&[b[0] ^ 0x5a], off).expect("write");
    drop(f);
    let kernel = oracle::recovered_manifest(&torn, "xfs", "", &dir.join("torn-kernel.img"), true)
        .expect("the kernel's recovery of the torn image");
    let (mine, rep) = ours(&torn, false);
    assert_eq!(
        rep.details["torn_head"]["new_head"].as_u64(),
        Some(blk),
        "torn head not trimmed to the damaged record: {}",
        rep.details
    );
    let n = oracle::compare_manifests(&mine, &kernel)
        .unwrap_or_else(|e| panic!("torn head: daxray vs kernel:\n{e}"));
    eprintln!(
        "torn: head trimmed from {} to {blk}; {n} files equal the kernel's recovery",
        rep.details["torn_head"]["original_head"]
    );
    std::fs::remove_file(&torn).ok();
}

/// Attach `file` to a loop device.
fn losetup(file: &Path) -> String {
    let out = Command::new("losetup").args(["--find", "--show"]).arg(file).output().expect("losetup");
    assert!(out.status.success(), "losetup: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn detach(dev: &str) {
    let _ = Command::new("losetup").args(["-d", dev]).status();
}

/// An external log device (`mkfs.xfs -l logdev=`, `mount -o logdev=`, `--log-dev`).
fn external_log(dir: &Path, seed: u64) {
    let base = dir.join("ext.img");
    let log = dir.join("ext-log.img");
    let dirty = dir.join("ext-dirty.img");
    let dirty_log = dir.join("ext-dirty-log.img");
    std::fs::File::create(&log).and_then(|f| f.set_len(64 << 20)).expect("log file");
    let logarg = format!("logdev={},size=64m", log.display());
    mkfs_xfs_env(&base, &["-q", "-l", &logarg], false);
    let dev = losetup(&log);
    let m = Mount::new(&base, 0, "xfs", &format!("logdev={dev}")).expect("mount with external log");
    oracle::run_workload(m.path(), &spec(seed, 200, 800, 256 << 10)).expect("workload");
    oracle::copy_sparse(&base, &dirty).expect("copy data while mounted");
    oracle::copy_sparse(&log, &dirty_log).expect("copy log while mounted");
    m.unmount().expect("unmount");
    detach(&dev);
    let (kc, kl) = (dir.join("ext-kernel.img"), dir.join("ext-kernel-log.img"));
    oracle::copy_sparse(&dirty, &kc).expect("copy");
    oracle::copy_sparse(&dirty_log, &kl).expect("copy");
    let dev = losetup(&kl);
    let km = Mount::new(&kc, 0, "xfs", &format!("logdev={dev}")).expect("kernel recovery mount");
    let kernel = oracle::kernel_manifest(km.path(), true).expect("kernel manifest");
    km.unmount().expect("unmount");
    detach(&dev);
    let o = open::open(&dirty, &OpenOptions { log_dev: Some(dirty_log.clone()), ..Default::default() })
        .expect("open");
    assert!(o.recovery.applied, "external log: nothing recovered: {}", o.recovery.details);
    let (mine, errs) = manifest::build(&*o.fs, true).expect("manifest");
    assert!(errs.is_empty(), "external log: path errors {errs:?}");
    let n = oracle::compare_manifests(&mine, &kernel)
        .unwrap_or_else(|e| panic!("external log: daxray vs kernel:\n{e}"));
    assert!(n >= 100, "external log: only {n} files");
    eprintln!("external log: {n} files equal the kernel's recovery");
    for p in [base, log, dirty, dirty_log, kc, kl] {
        std::fs::remove_file(p).ok();
    }
}

fn spec(seed: u64, files: usize, ops: usize, max_file_bytes: u64) -> WorkloadSpec {
    WorkloadSpec { seed, files, big_dir_entries: 1500, max_file_bytes, ops, fsync: true }
}

#[test]
fn xfs_recovery_equals_kernel() {
    if !ready(&["mkfs.xfs", "losetup", "mount", "umount"], true) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    // DAXRAY_KEEP=1 keeps the images of a failed run for a look.
    let dir = if std::env::var("DAXRAY_KEEP").is_ok() { tmp.keep() } else { tmp.path().to_path_buf() };
    let dir = &dir;
    let s = seed_base();
    eprintln!("seed base {s} (set DAXRAY_SEED to repeat)");
    let mut raw_differs = false;

    // Default geometry (v5, crc, reflink), 64 MiB log.
    let c = crash_image(dir, "default", &["-q"], false, "", &spec(s, 300, 1500, 1 << 20));
    raw_differs |= check(&c, "default", dir).1;
    torn_head(&c, dir);
    if std::env::var("DAXRAY_KEEP").is_err() {
        std::fs::remove_file(&c.dirty).ok();
    }

    // 256 KiB iclogs: records with extended headers.
    let c = crash_image(
        dir,
        "logbsize",
        &["-q", "-m", "reflink=0"],
        false,
        "logbsize=256k",
        &spec(s + 1, 300, 1500, 1 << 20),
    );
    let l = daxray::cli::listing::xfs(
        daxray::image::open(&c.dirty, None).expect("open").fs_bytes.clone(),
        &Default::default(),
        false,
    )
    .expect("listing");
    let ext = l.json["record_list"]
        .as_array()
        .map_or(0, |r| r.iter().filter(|x| x["len"].as_u64() > Some(32768)).count());
    assert!(ext > 0, "logbsize=256k: no record longer than 32 KiB (none needs extended headers)");
    raw_differs |= check(&c, "logbsize", dir).1;
    if std::env::var("DAXRAY_KEEP").is_err() {
        std::fs::remove_file(&c.dirty).ok();
    }

    // A tiny log and a long workload: the log wraps.
    let c =
        crash_image(dir, "wrapped", &["-q", "-l", "size=6m"], true, "", &spec(s + 2, 400, 5000, 128 << 10));
    let (cycle, d) = check(&c, "wrapped", dir);
    raw_differs |= d;
    assert!(cycle > 1, "the small log did not wrap (head cycle {cycle})");
    if std::env::var("DAXRAY_KEEP").is_err() {
        std::fs::remove_file(&c.dirty).ok();
    }

    external_log(dir, s + 3);

    assert!(raw_differs, "no crash image differed without recovery: the test could not fail");
}
