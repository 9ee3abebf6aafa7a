//! `daxray journal --json` on XFS against `xfs_logprint -t` on the same bytes: the same
//! transactions (tid and `#items`, in order) with the same items (type and region count).
//! The crash images are made by the kernel: loop mount, seeded workload with fsync, copy of the
//! backing file while still mounted.

mod common;
mod xfs_common;

use common::ready;
use daxray::oracle::WorkloadSpec;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use xfs_common::dirty_xfs;

/// One transaction: tid, #items of its header, and (item type, regions) sorted.
type Tx = (u32, u64, Vec<(String, u64)>);

/// Item names as xfs_logprint prints them, in daxray's spelling.
fn logprint_name(n: &str) -> String {
    match n.trim() {
        "INO" => "INODE".into(),
        "ICR" => "ICREATE".into(),
        "DQ" => "DQUOT".into(),
        "QOFF" => "QUOTAOFF".into(),
        x => x.to_string(),
    }
}

fn logprint(img: &Path) -> Vec<Tx> {
    let out = Command::new("xfs_logprint").arg("-t").arg(img).output().expect("run xfs_logprint");
    assert!(out.status.success(), "xfs_logprint: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut v: Vec<Tx> = vec![];
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("TRANS: tid:0x") {
            let tid = u32::from_str_radix(rest.split_whitespace().next().unwrap_or(""), 16).expect("tid");
            let items = rest
                .split_whitespace()
                .find_map(|w| w.strip_prefix("#items:"))
                .and_then(|n| n.parse().ok())
                .expect("#items");
            v.push((tid, items, vec![]));
        } else if let Some((name, rest)) = line.split_once(": cnt:")
            && !line.starts_with(char::is_whitespace)
            && let Some(t) = v.last_mut()
        {
            let cnt = rest.split_whitespace().next().and_then(|n| n.parse().ok()).expect("cnt");
            t.2.push((logprint_name(name), cnt));
        }
    }
    for t in &mut v {
        t.2.sort();
    }
    v
}

fn daxray(img: &Path) -> (Vec<Tx>, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_daxray"))
        .args(["--json", "journal"])
        .arg(img)
        .output()
        .expect("run daxray");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("daxray journal json: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(j["kind"], "xfs-log");
    let v = j["transactions"]
        .as_array()
        .expect("transactions")
        .iter()
        .map(|t| {
            let tid = u32::from_str_radix(t["tid"].as_str().expect("tid").trim_start_matches("0x"), 16)
                .expect("tid");
            let mut items: Vec<(String, u64)> = t["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|i| (i["type"].as_str().unwrap_or("").to_string(), i["regions"].as_u64().unwrap_or(0)))
                .collect();
            items.sort();
            (tid, t["num_items"].as_u64().unwrap_or(0), items)
        })
        .collect();
    (v, j)
}

#[test]
fn journal_matches_xfs_logprint() {
    if !ready(&["mkfs.xfs", "xfs_logprint", "losetup", "mount", "umount"], true) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = std::env::var("DAXRAY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(3)
    });
    eprintln!("seed {seed} (set DAXRAY_SEED to repeat)");
    let spec = |s: u64, ops: usize| WorkloadSpec {
        seed: s,
        files: 200,
        big_dir_entries: 1000,
        max_file_bytes: 128 << 10,
        ops,
        fsync: true,
    };
    let cases: [(&str, &[&str], bool, &str, WorkloadSpec); 3] = [
        ("default", &["-q"], false, "", spec(seed, 800)),
        ("logbsize", &["-q", "-m", "reflink=0"], false, "logbsize=256k", spec(seed + 1, 800)),
        ("wrapped", &["-q", "-l", "size=6m"], true, "", spec(seed + 2, 4000)),
    ];
    let mut total = 0;
    let mut types: BTreeMap<String, usize> = BTreeMap::new();
    for (name, args, small, opts, spec) in cases {
        let (_, img) = dirty_xfs(dir.path(), name, args, small, opts, &spec);
        let lp = logprint(&img);
        let (ours, j) = daxray(&img);
        eprintln!(
            "{name}: xfs_logprint {} TRANS, daxray {} transactions; head {} tail {} state {} crc errors {}",
            lp.len(),
            ours.len(),
            j["head"]["lsn"],
            j["tail"]["lsn"],
            j["state"],
            j["crc_errors"]
        );
        assert!(!lp.is_empty(), "{name}: xfs_logprint found no transaction in a crash image");
        assert_eq!(ours.len(), lp.len(), "{name}: transaction count differs from xfs_logprint's TRANS lines");
        for (k, (a, b)) in ours.iter().zip(&lp).enumerate() {
            assert_eq!(a.0, b.0, "{name}: transaction {k}: tid");
            assert_eq!(a.1, b.1, "{name}: transaction {k} (tid {:#x}): #items", a.0);
            assert_eq!(a.2, b.2, "{name}: transaction {k} (tid {:#x}): items", a.0);
            for it in &a.2 {
                *types.entry(it.0.clone()).or_default() += 1;
            }
        }
        assert_eq!(j["crc_errors"], 0, "{name}: record crc errors");
        total += ours.len();
        std::fs::remove_file(&img).ok();
    }
    eprintln!("{total} transactions equal; item types {types:?}");
    assert!(types.get("BUF").is_some_and(|n| *n > 0) && types.get("INODE").is_some_and(|n| *n > 0));
}
