//! `daxray journal --json` against `debugfs -c -R 'logdump -a'` on kernel-made crash images
//! (root): the same committed transactions, with the same logged fs blocks at the same journal
//! blocks, and the same revoke records.

mod common;
mod jbd2_common;

use common::logdump::{ours, parse_logdump};
use jbd2_common::{Durability, make_dirty, make_wrapped_dirty, prerequisites};
use std::path::Path;
use std::process::Command;

fn daxray_json(img: &Path) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_daxray")).args(["--json", "journal"]).arg(img).output().unwrap();
    assert!(
        o.status.code().is_some_and(|c| c <= 1),
        "daxray journal failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("JSON")
}

#[test]
fn journal_listing_equals_debugfs_logdump() {
    if !prerequisites(&["mkfs.ext4", "debugfs", "losetup", "mount", "umount"]) {
        return;
    }
    let seed = std::env::var("DAXRAY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(11);
    let tmp = tempfile::tempdir().unwrap();
    let mut total_tx = 0;
    let mut total_tags = 0;
    let cases: [(&str, &[&str], &str); 3] = [
        ("csum_v3_64bit", &["-O", "metadata_csum,64bit"], "journal_checksum_v3"),
        ("nocsum_64bit", &["-O", "^metadata_csum,64bit"], "journal_64bit"),
        ("nocsum_32bit", &["-O", "^metadata_csum,^64bit"], ""),
    ];
    for (i, (name, opts, feature)) in cases.into_iter().enumerate() {
        let dirty = make_dirty(tmp.path(), name, opts, seed + i as u64, Durability::Fsync);
        let o = Command::new("debugfs").args(["-c", "-R", "logdump -a"]).arg(&dirty).output().unwrap();
        let dump = String::from_utf8_lossy(&o.stdout).into_owned();
        let theirs = parse_logdump(&dump);
        let v = daxray_json(&dirty);
        let mine = ours(&v);
        let features: Vec<&str> =
            v["superblock"]["features"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
        if feature.is_empty() {
            assert!(!features.contains(&"journal_64bit"), "{name}: {features:?}");
        } else {
            assert!(features.contains(&feature), "{name}: {features:?}");
        }
        assert!(!theirs.is_empty(), "{name}: logdump found no committed transaction:\n{dump}");
        assert_eq!(
            mine.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>(),
            "{name}: sequences differ"
        );
        for (seq, t) in &theirs {
            assert_eq!(&mine[seq], t, "{name}: transaction {seq} differs from logdump");
        }
        // Every checksum in a kernel-written live log is good.
        for t in v["transactions"].as_array().unwrap() {
            for b in t["blocks"].as_array().unwrap() {
                assert_ne!(b["csum_ok"], false, "{name}: bad tag checksum in {t}");
            }
            assert_ne!(t["checksums"]["commit"], false, "{name}: bad commit checksum");
        }
        let tags: usize = theirs.values().map(|t| t.0.len()).sum();
        println!("{name}: {} committed transactions, {tags} tags, equal to logdump", theirs.len());
        total_tx += theirs.len();
        total_tags += tags;
        let _ = std::fs::remove_file(&dirty);
    }
    assert!(total_tx >= 3 && total_tags > 10);
}

/// A live log that wraps around the end of the journal lists the same as logdump (which wraps too).
#[test]
fn wrapped_log_equals_debugfs_logdump() {
    if !prerequisites(&["mkfs.ext4", "debugfs", "losetup", "mount", "umount"]) {
        return;
    }
    let seed = std::env::var("DAXRAY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let tmp = tempfile::tempdir().unwrap();
    for (i, opts) in
        [&["-O", "metadata_csum,64bit"][..], &["-O", "^metadata_csum,^64bit"][..]].into_iter().enumerate()
    {
        let dirty = make_wrapped_dirty(tmp.path(), seed + i as u64, opts);
        let o = Command::new("debugfs").args(["-c", "-R", "logdump -a"]).arg(&dirty).output().unwrap();
        let dump = String::from_utf8_lossy(&o.stdout).into_owned();
        let theirs = parse_logdump(&dump);
        let mine = ours(&daxray_json(&dirty));
        assert!(!theirs.is_empty(), "logdump found nothing:\n{dump}");
        assert_eq!(mine, theirs, "{opts:?}: wrapped log differs from logdump");
        println!("{opts:?}: wrapped live log, {} committed transactions equal to logdump", theirs.len());
        let _ = std::fs::remove_file(&dirty);
    }
}
