//! Differential tests against `xfs_db -r` on the same bytes, for images made by mkfs.xfs.

mod xfs_common;

use daxray::image::MmapSource;
use daxray::xfs::Xfs;
use std::path::Path;
use std::sync::Arc;
use xfs_common::*;

fn open(path: &Path) -> Xfs {
    let src = MmapSource::open(path).expect("mmap image");
    Xfs::open(Arc::new(src)).expect("open xfs")
}

#[test]
fn superblock_matches_xfs_db() {
    if !need(&["mkfs.xfs", "xfs_db"], false) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut checked = 0;
    for (name, args) in [
        ("v5", vec![]),
        ("v4", vec!["-m", "crc=0"]),
        ("v5-1k", vec!["-b", "size=1024", "-n", "size=8192"]),
        ("v5-nrext64", vec!["-i", "nrext64=1", "-L", "lbl"]),
    ] {
        let img = dir.path().join(format!("{name}.img"));
        if !mkfs_xfs(&img, 320 << 20, &args) {
            eprintln!("mkfs.xfs {args:?} refused; skipping that variant");
            continue;
        }
        let fs = open(&img);
        let sb = fs.superblock();
        let db = xfs_db_print(&img, &["sb 0"]);
        let num = |k: &str| parse_num(db.get(k).unwrap_or_else(|| panic!("xfs_db sb has no {k}")));
        assert_eq!(u64::from(sb.blocksize()), num("blocksize"), "{name}");
        assert_eq!(u64::from(sb.sectsize()), num("sectsize"), "{name}");
        assert_eq!(u64::from(sb.agblocks()), num("agblocks"), "{name}");
        assert_eq!(u64::from(sb.agcount()), num("agcount"), "{name}");
        assert_eq!(u64::from(sb.agblklog()), num("agblklog"), "{name}");
        assert_eq!(u64::from(sb.inodesize()), num("inodesize"), "{name}");
        assert_eq!(u64::from(sb.inopblock()), num("inopblock"), "{name}");
        assert_eq!(u64::from(sb.inopblog()), num("inopblog"), "{name}");
        assert_eq!(sb.logstart(), num("logstart"), "{name}");
        assert_eq!(u64::from(sb.logblocks()), num("logblocks"), "{name}");
        assert_eq!(u64::from(sb.logsunit()), num("logsunit"), "{name}");
        assert_eq!(u64::from(sb.logsectsize()), num("logsectsize"), "{name}");
        assert_eq!(sb.rootino(), num("rootino"), "{name}");
        assert_eq!(sb.dblocks(), num("dblocks"), "{name}");
        assert_eq!(u64::from(sb.versionnum()), num("versionnum"), "{name}");
        assert_eq!(daxray::xfs::sb::fmt_uuid(&sb.uuid()), db["uuid"], "{name}");
        if sb.has_crc() {
            assert!(db["crc"].ends_with("(correct)"), "{name}: xfs_db says {}", db["crc"]);
            assert!(sb.crc_ok, "{name}: our crc check failed where xfs_db says correct");
            assert_eq!(u64::from(sb.features().incompat), num("features_incompat"), "{name}");
            assert_eq!(u64::from(sb.features().ro_compat), num("features_ro_compat"), "{name}");
        }
        assert_eq!(sb.version(), if name == "v4" { 4 } else { 5 });
        if name.contains("nrext64") {
            assert!(sb.features().nrext64);
            assert_eq!(sb.label(), "lbl");
        }
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} mkfs variants could be made");
}
