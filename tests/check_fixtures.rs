//! `daxray check` on crash states the real kernel made under QEMU (fixtures/crash/), without
//! QEMU: each fixture's claims are checked and daxray's verdicts are compared, claim by claim,
//! with what the kernel's own recovery read back from a mounted copy of the same state when the
//! fixture was made (`kernel_durable` in its verdicts.json). See fixtures/crash/README.md.

use daxray::replay::sparse;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join("crash")
}

#[test]
fn fixtures_agree_with_the_kernel() {
    let root = fixtures();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("manifest.json")).expect("fixtures/crash/manifest.json"),
    )
    .expect("manifest JSON");
    let list = manifest["fixtures"].as_array().expect("fixtures array");
    assert!(list.len() >= 4, "expected at least four fixtures, found {}", list.len());
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut failures = Vec::new();
    let (mut sync_pass, mut control_lost, mut claims_compared, mut mixed) = (0, 0, 0, 0);
    let mut fs_seen = std::collections::BTreeSet::new();
    for f in list {
        let name = f["name"].as_str().expect("name");
        let dir = root.join(name);
        let image = tmp.path().join(format!("{name}.img"));
        let size = sparse::unpack(&dir.join("image.dxs.gz"), &image).expect("unpack fixture");
        assert_eq!(Some(size), f["image_bytes"].as_u64(), "{name}: image size");
        let recorded: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("verdicts.json")).expect("verdicts.json"))
                .expect("JSON");
        let kernel: Vec<bool> =
            serde_json::from_value(recorded["kernel_durable"].clone()).expect("kernel_durable");
        assert!(!kernel.is_empty(), "{name}: no kernel verdicts");
        let out = Command::new(env!("CARGO_BIN_EXE_daxray"))
            .arg("check")
            .arg(&image)
            .arg("--claims")
            .arg(dir.join("claims.jsonl"))
            .arg("--json")
            .output()
            .expect("run daxray check");
        let v: serde_json::Value = match serde_json::from_slice(&out.stdout) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!(
                    "{name}: no JSON from daxray check ({e}): {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
                continue;
            }
        };
        let Some(verdicts) = v["verdicts"].as_array() else {
            failures.push(format!("{name}: daxray check failed: {v}"));
            continue;
        };
        assert_eq!(verdicts.len(), kernel.len(), "{name}: one verdict per claim");
        for (i, (ours, k)) in verdicts.iter().zip(&kernel).enumerate() {
            claims_compared += 1;
            let durable = ours["verdict"] == "durable";
            if durable != *k {
                failures.push(format!(
                    "{name} claim {i}: daxray says {} ({}), the kernel's recovery said {}",
                    ours["verdict"],
                    ours["evidence"]["detail"],
                    if *k { "durable" } else { "lost" }
                ));
            }
        }
        let any_lost = kernel.iter().any(|k| !k);
        if any_lost && kernel.iter().any(|k| *k) {
            mixed += 1;
        }
        assert_eq!(out.status.code(), Some(i32::from(any_lost)), "{name}: exit code");
        let sync = f["sync"].as_bool().expect("sync");
        if sync && !any_lost {
            sync_pass += 1;
        }
        if !sync && any_lost {
            control_lost += 1;
        }
        fs_seen.insert(f["fs"].as_str().unwrap_or("").to_string());
    }
    assert!(failures.is_empty(), "daxray disagrees with the kernel:\n{}", failures.join("\n"));
    assert!(claims_compared > 0);
    assert!(sync_pass >= 1, "no MAP_SYNC fixture where every store survived");
    assert!(control_lost >= 1, "no control fixture where a store was lost");
    assert!(mixed >= 1, "no fixture where the kernel kept some stores and lost others");
    for fs in ["ext4", "ext4-nojournal", "xfs"] {
        assert!(fs_seen.contains(fs), "no {fs} fixture (have {fs_seen:?})");
    }
}
