//! The streamed XFS log listing keeps its answers (root, kernel-made crash image): `daxray
//! journal` (text and `--json`, with and without `--all`) writes byte for byte what the library's
//! `xlog::listing` produces as a text and as a JSON tree, and the listing is not empty.

mod common;

use common::daxray_stdout;
use common::ready;
use daxray::oracle::{self, Mount, WorkloadSpec};
use std::process::Command;

#[test]
fn streamed_xfs_listing_equals_the_library_listing() {
    if !ready(&["mkfs.xfs", "losetup", "mount", "umount"], true) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base.img");
    let dirty = tmp.path().join("dirty.img");
    let f = std::fs::File::create(&base).unwrap();
    f.set_len(320 << 20).unwrap();
    drop(f);
    let out = Command::new("mkfs.xfs").args(["-q", "-f", "-m", "reflink=0"]).arg(&base).output().unwrap();
    assert!(out.status.success(), "mkfs.xfs: {}", String::from_utf8_lossy(&out.stderr));
    let m = Mount::new(&base, 0, "xfs", "").expect("mount");
    let spec = WorkloadSpec {
        seed: 31,
        files: 200,
        big_dir_entries: 100,
        max_file_bytes: 64 << 10,
        ops: 100,
        fsync: true,
    };
    oracle::run_workload(m.path(), &spec).expect("workload");
    oracle::copy_sparse(&base, &dirty).expect("copy while mounted");
    m.unmount().expect("unmount");

    for all in [false, true] {
        let fs = daxray::image::open(&dirty, None).unwrap().fs_bytes.clone();
        let lib = daxray::xlog::listing(fs, None, all).unwrap();
        let n = lib.json["transactions"].as_array().unwrap().len();
        assert!(n > 10, "a dirty log after a workload holds transactions: {n}");
        let flags: &[&str] = if all { &["--all"] } else { &[] };
        let mut args = vec!["--json", "journal"];
        args.extend(flags);
        let streamed = daxray_stdout(&args, &dirty);
        let pretty = serde_json::to_string_pretty(&lib.json).unwrap() + "\n";
        assert_eq!(String::from_utf8_lossy(&streamed), pretty, "streamed JSON differs (all: {all})");
        let mut args = vec!["journal"];
        args.extend(flags);
        let text = daxray_stdout(&args, &dirty);
        assert_eq!(String::from_utf8_lossy(&text), lib.text, "streamed text differs (all: {all})");
        let items = lib.text.lines().filter(|l| l.starts_with("  item ")).count();
        assert!(items > n, "every transaction lists its items: {items} items, {n} transactions");
        println!("all={all}: {n} transactions, {items} items, streamed output identical");
    }
}
