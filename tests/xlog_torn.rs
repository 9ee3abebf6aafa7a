//! Torn XFS log states on 4 KiB log sectors (`fixtures/xfs-torn/`, made by the kernel and edited
//! only where a torn or corrupted write would change them): daxray's default recovered view must
//! be the kernel's, as recorded when the fixtures were made and, as root, as the running kernel
//! recovers a copy now; where the kernel drops a complete record, daxray must say so and
//! `--exact-log-head` must keep it.

mod common;

use common::{fixture, gunzip, ready};
use daxray::manifest::ManifestEntry;
use daxray::open::{OpenOptions, open};
use serde_json::Value;

fn states() -> Vec<Value> {
    let m: Value =
        serde_json::from_slice(&std::fs::read(fixture("xfs-torn/manifest.json")).expect("manifest"))
            .expect("manifest json");
    m["states"].as_array().expect("states").clone()
}

fn ours(img: &std::path::Path, opts: &OpenOptions) -> (daxray::open::Opened, Vec<ManifestEntry>) {
    let o = open(img, opts).unwrap_or_else(|e| panic!("open {}: {e}", img.display()));
    let (entries, errors) = daxray::manifest::build(&*o.fs, true).expect("manifest");
    assert!(errors.is_empty(), "{}: {errors:?}", img.display());
    (o, entries)
}

#[test]
fn torn_log_states_recover_as_the_kernel_recovers_them() {
    let live = ready(&["losetup", "mount", "umount"], true);
    let mut dropped_seen = 0;
    for s in states() {
        let name = s["name"].as_str().expect("name");
        let tmp = tempfile::tempdir().expect("tmp");
        let img = tmp.path().join(format!("{name}.img"));
        gunzip(&fixture(&format!("xfs-torn/{name}.img.gz")), &img);
        let (o, entries) = ours(&img, &OpenOptions::default());
        let k = &s["kernel"];
        if k["mounted"] == false {
            // The kernel refused the log: so must daxray, with the kernel's reason.
            assert!(!o.recovery.applied, "{name}: the kernel refuses this log, daxray applied it");
            let why = o.recovery.details["refused"].to_string();
            assert!(why.contains("failed to locate log tail") && why.contains("EFSBADCRC"), "{name}: {why}");
            if live {
                let r = daxray::oracle::recovered_manifest(
                    &img,
                    "xfs",
                    "nouuid",
                    &tmp.path().join("c.img"),
                    true,
                );
                assert!(r.is_err(), "{name}: the running kernel mounted what the recorded one refused");
            }
            continue;
        }
        let files: Vec<(String, u64, String)> = k["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| {
                (
                    format!("/{}", f["path"].as_str().unwrap()),
                    f["size"].as_u64().unwrap(),
                    f["sha256"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let mine: Vec<(String, u64, String)> =
            entries.iter().map(|e| (e.path.clone(), e.size, e.sha256.clone().unwrap_or_default())).collect();
        assert_eq!(mine, files, "{name}: daxray's view differs from the kernel's recorded recovery");
        if live {
            let kv =
                daxray::oracle::recovered_manifest(&img, "xfs", "nouuid", &tmp.path().join("c.img"), true)
                    .expect("the kernel's recovery of a copy");
            daxray::oracle::compare_manifests(&entries, &kv).unwrap_or_else(|e| {
                panic!("{name}: daxray differs from the running kernel's recovery:\n{e}")
            });
        }
        let dropped = &o.recovery.details["dropped_by_kernel"];
        if !dropped.is_null() {
            dropped_seen += 1;
            // The newest record is torn; the kernel also drops the complete record before it.
            let newest = s["newest_record"]["block"].as_u64().expect("newest record");
            assert_eq!(dropped["exact_head"].as_u64(), Some(newest), "{name}: {dropped}");
            let recs = dropped["records"].as_array().expect("records");
            assert_eq!(recs.last().and_then(|r| r["block"].as_u64()), Some(newest - 8), "{name}: {dropped}");
            assert!(!dropped["transactions"].as_array().unwrap().is_empty(), "{name}: {dropped}");
            assert!(
                o.recovery.findings.iter().any(|f| f.message.contains("drops complete, crc-valid log work")),
                "{name}: no finding names the dropped record"
            );
            // The exact reading keeps it: a different view (its extent map differs here).
            let (_, exact) = ours(&img, &OpenOptions { exact_log_head: true, ..Default::default() });
            assert_ne!(
                serde_json::to_value(&exact).unwrap(),
                serde_json::to_value(&entries).unwrap(),
                "{name}: the exact view should keep what the kernel drops"
            );
            // xfs_logprint before xfsprogs 6.7 searches with the older rule: so does
            // --log-rules 6.1, and finds its head.
            let old = open(
                &img,
                &OpenOptions { log_rules: daxray::xlog::search::Rules::Before6_7, ..Default::default() },
            )
            .expect("open with 6.1 rules");
            assert_eq!(
                old.recovery.details["head"]["block"].as_u64(),
                s["xfs_logprint_t"]["head_block"].as_u64(),
                "{name}: head with the pre-6.7 rules"
            );
        }
        eprintln!("{name}: daxray's view equals the kernel's ({} files)", entries.len());
    }
    assert!(dropped_seen > 0, "no fixture showed the kernel dropping a complete record");
}
