//! Torn jbd2 journal and fast-commit states on 4 KiB ext4 blocks (`fixtures/jbd2-torn/`, made by
//! the kernel and edited only where a torn write, or for two states a media corruption, would
//! change them): daxray's default recovered view must be the kernel's, as recorded when the
//! fixtures were made and, as root, as the running kernel recovers a copy now; where the
//! kernel's mount fails, daxray must refuse the recovered view with the kernel's reason.

mod common;

use common::{fixture, gunzip, ready};
use daxray::manifest::ManifestEntry;
use daxray::open::{OpenOptions, open};
use serde_json::Value;

fn states() -> Vec<Value> {
    let m: Value =
        serde_json::from_slice(&std::fs::read(fixture("jbd2-torn/manifest.json")).expect("manifest"))
            .expect("manifest json");
    m["states"].as_array().expect("states").clone()
}

/// (path, size, sha256, extents as (logical, physical, length, unwritten)), sorted by path.
type Files = Vec<(String, u64, String, Vec<(u64, u64, u64, bool)>)>;

fn ours(entries: &[ManifestEntry]) -> Files {
    let mut v: Files = entries
        .iter()
        .map(|e| {
            let x = e.extents.iter().map(|x| (x.logical, x.physical, x.length, x.unwritten)).collect();
            (e.path.clone(), e.size, e.sha256.clone().unwrap_or_default(), x)
        })
        .collect();
    v.sort();
    v
}

fn recorded(k: &Value) -> Files {
    let mut v: Files = k["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            let x = f["extents"]
                .as_array()
                .expect("extents")
                .iter()
                .map(|x| {
                    (
                        x["logical"].as_u64().unwrap(),
                        x["physical"].as_u64().unwrap(),
                        x["length"].as_u64().unwrap(),
                        x["unwritten"].as_bool().unwrap(),
                    )
                })
                .collect();
            (
                f["path"].as_str().unwrap().to_string(),
                f["size"].as_u64().unwrap(),
                f["sha256"].as_str().unwrap().to_string(),
                x,
            )
        })
        .collect();
    v.sort();
    v
}

/// The number after `before` in `line`, if any.
fn number_after(line: &str, before: &str) -> Option<u64> {
    let rest = &line[line.find(before)? + before.len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// What daxray's refusal must name, from the kernel's journal messages: the same transaction,
/// fs block and journal block the kernel names, and the kind of failure.
fn check_refusal(name: &str, dmesg: &[String], why: &str) {
    let lower = why.to_lowercase();
    let mut named = 0;
    for l in dmesg {
        if l.contains("Invalid checksum recovering data block") {
            let fs_block = number_after(l, "data block ").expect("fs block");
            let jblock = number_after(l, "journal block ").expect("journal block");
            assert!(
                lower.contains(&format!("fs block {fs_block} "))
                    && lower.contains(&format!("journal block {jblock}]")),
                "{name}: the kernel says {l:?}; daxray refuses with {why}"
            );
            named += 1;
        } else if l.contains("Invalid checksum found in transaction") {
            let t = number_after(l, "transaction ").expect("transaction");
            assert!(
                lower.contains(&format!("invalid checksum found in transaction {t}")),
                "{name}: the kernel says {l:?}; daxray refuses with {why}"
            );
            named += 1;
        } else if l.contains("JBD2: journal transaction") && l.contains("is corrupt") {
            let t = number_after(l, "journal transaction ").expect("transaction");
            assert!(
                lower.contains(&format!("journal transaction {t} is corrupt")),
                "{name}: the kernel says {l:?}; daxray refuses with {why}"
            );
            named += 1;
        } else if l.contains("JBD2: journal recovery failed") {
            assert!(
                lower.contains("journal recovery failed"),
                "{name}: the kernel says {l:?}; daxray refuses with {why}"
            );
        }
    }
    if named == 0 {
        // The kernel names no block: here, the fast-commit scan failing without a message.
        assert!(
            lower.contains("fast-commit scan fails"),
            "{name}: kernel {dmesg:?}; daxray refuses with {why}"
        );
    }
}

#[test]
fn torn_journal_states_recover_as_the_kernel_recovers_them() {
    let live = ready(&["losetup", "mount", "umount"], true);
    let (mut refused_seen, mut partial_seen, mut equal) = (0, 0, 0);
    for s in states() {
        let name = s["name"].as_str().expect("name");
        let tmp = tempfile::tempdir().expect("tmp");
        let img = tmp.path().join(format!("{name}.img"));
        gunzip(&fixture(&format!("jbd2-torn/{name}.img.gz")), &img);
        let o = open(&img, &OpenOptions::default()).unwrap_or_else(|e| panic!("open {name}: {e}"));
        let (entries, errors) = daxray::manifest::build(&*o.fs, true).expect("manifest");
        let paths =
            |e: &[(String, daxray::Error)]| e.iter().map(|(p, e)| format!("{p}: {e}")).collect::<Vec<_>>();
        let k = &s["kernel"];
        let dmesg: Vec<String> =
            k["dmesg"].as_array().expect("dmesg").iter().map(|l| l.as_str().unwrap().to_string()).collect();
        let details = &o.recovery.details;
        if k["mounted"] == false {
            // The kernel's mount fails: daxray must refuse the recovered view, with its reason.
            assert!(
                !o.recovery.applied,
                "{name}: the kernel refuses this journal, daxray applied it: {details}"
            );
            let why =
                details["refused"][0].as_str().unwrap_or_else(|| panic!("{name}: not refused: {details}"));
            check_refusal(name, &dmesg, why);
            let raw = open(&img, &OpenOptions { raw: true, ..Default::default() }).expect("open --raw");
            let (raw_entries, raw_errors) = daxray::manifest::build(&*raw.fs, true).expect("raw manifest");
            assert_eq!(
                ours(&entries),
                ours(&raw_entries),
                "{name}: the view of a refused journal is the media as it is"
            );
            // The media as it is may name inodes never written back (no links there yet): the
            // same paths fail to look up in both.
            assert_eq!(paths(&errors), paths(&raw_errors), "{name}: the refused view's unreadable paths");
            if live {
                let c = tmp.path().join("c.img");
                let r = daxray::oracle::recovered_manifest(&img, "ext4", "", &c, true);
                assert!(r.is_err(), "{name}: the running kernel mounted what the recorded one refused");
            }
            refused_seen += 1;
            eprintln!("{name}: refused as the kernel refuses it: {why}");
            continue;
        }
        assert!(details["refused"].is_null(), "{name}: the kernel mounts it, daxray refuses: {details}");
        assert!(errors.is_empty(), "{name}: {:?}", paths(&errors));
        assert_eq!(
            ours(&entries),
            recorded(k),
            "{name}: daxray's view differs from the kernel's recorded recovery"
        );
        for l in dmesg.iter().filter(|l| l.contains("Find incomplete commit block in transaction")) {
            let t = number_after(l, "transaction ").expect("transaction");
            assert!(
                o.recovery.findings.iter().any(|f| f.severity == daxray::error::Severity::Info
                    && f.message.contains(&format!("incomplete commit block in transaction {t}"))),
                "{name}: the kernel notes {l:?}; daxray's findings: {:?}",
                o.recovery.findings
            );
            partial_seen += 1;
        }
        if live {
            let c = tmp.path().join("c.img");
            let kv = daxray::oracle::recovered_manifest(&img, "ext4", "", &c, true)
                .expect("the kernel's recovery of a copy");
            daxray::oracle::compare_manifests(&entries, &kv).unwrap_or_else(|e| {
                panic!("{name}: daxray differs from the running kernel's recovery:\n{e}")
            });
        }
        equal += 1;
        eprintln!("{name}: daxray's view equals the kernel's ({} files)", entries.len());
    }
    assert!(refused_seen > 0, "no fixture showed the kernel refusing a journal");
    assert!(partial_seen > 0, "no fixture showed the kernel accepting an incomplete commit block");
    eprintln!(
        "{equal} states equal to the kernel's recovery, {refused_seen} refused as the kernel refuses them"
    );
}
