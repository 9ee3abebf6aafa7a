//! The fault-replay campaign on the real kernel under QEMU (TCG) on an emulated NVDIMM:
//! - ext4, MAP_SYNC, first stores into an empty file: every state checked, no store lost, the
//!   kernel's own recovery agrees on every oracle-checked state, and the kernel's trace shows
//!   NEEDDSYNC faults (the synchronous path ran);
//! - the same without MAP_SYNC (the control): stores are lost (so the checker can see a lost
//!   mapping), the kernel agrees, and no NEEDDSYNC fault.
//!
//! Needs root, qemu-system-x86 and busybox-static, and the kernel assets (`daxray vm setup`).
//! `daxray replay` takes the cross-process VM lock itself, so guests never run two at once.
//! Set DAXRAY_SKIP_ROOT_TESTS=1 to skip (it says so).

mod common;

use common::{cannot_run, ready};
use std::process::Command;

fn campaign(args: &[&str]) -> (i32, serde_json::Value) {
    let keep = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_daxray"))
        .arg("replay")
        .args(args)
        .arg("--keep")
        .arg(keep.path())
        .arg("--json")
        .output()
        .expect("run daxray replay");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "daxray replay {args:?} printed no JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

#[test]
fn replay_map_sync_passes_and_control_loses_stores() {
    if !ready(&["qemu-system-x86_64", "busybox", "losetup", "mount"], true) {
        return;
    }
    if let Err(e) = daxray::vm::Assets::resolve(None, None, None, None) {
        cannot_run(&format!("replay_vm: no guest kernel ({e}); run `daxray vm setup`"));
        return;
    }

    let pages = "4";
    let (code, v) =
        campaign(&["--fs", "ext4", "--sync", "--scenario", "seq-sparse", "--pages", pages, "--oracle", "1"]);
    let r = &v["runs"][0];
    assert!(r["error"].is_null(), "MAP_SYNC run failed: {r}");
    assert_eq!(code, 0, "{v}");
    assert_eq!(r["faults"], 4, "{r}");
    assert_eq!(r["states_checked"], 4, "{r}");
    assert_eq!(r["violations"], 0, "MAP_SYNC lost a store: {r}");
    assert_eq!(r["check_errors"], 0, "{r}");
    assert_eq!(r["oracle_checked"], 4, "{r}");
    assert_eq!(r["oracle_agree"], 4, "daxray and the kernel disagree: {r}");
    assert!(r["needdsync_faults"].as_u64().unwrap_or(0) > 0, "no NEEDDSYNC fault with MAP_SYNC: {r}");
    assert!(r["check_ms_per_state"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
    assert_eq!(v["probe"]["map_sync_works"], true, "{v}");

    let (code, v) = campaign(&[
        "--fs",
        "ext4",
        "--no-sync",
        "--scenario",
        "seq-sparse",
        "--pages",
        pages,
        "--oracle",
        "1",
    ]);
    let r = &v["runs"][0];
    assert!(r["error"].is_null(), "control run failed: {r}");
    assert_eq!(code, 0, "a control violation must not fail the campaign: {v}");
    assert!(
        r["violations"].as_u64().unwrap_or(0) > 0,
        "the control lost no store: the checker saw nothing: {r}"
    );
    assert!(r["oracle_checked"].as_u64().unwrap_or(0) > 0, "{r}");
    assert_eq!(r["oracle_agree"], r["oracle_checked"], "daxray and the kernel disagree: {r}");
    assert_eq!(r["needdsync_faults"], 0, "NEEDDSYNC without MAP_SYNC: {r}");
    assert!(!r["kept"].as_array().expect("kept").is_empty(), "failing states must be kept: {r}");
}

/// The rows of a report that must not depend on how the campaign was cut: which run, its
/// stores and states, whether it failed, lost stores (MAP_SYNC: never; the control: some),
/// took NEEDDSYNC faults, and whether daxray and the kernel agreed on every oracle state.
fn verdict_rows(v: &serde_json::Value) -> Vec<String> {
    v["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} faults={} states={} error={} lost={} needdsync={} disagree={} oracle_all_agree={}",
                r["run"],
                r["fs"],
                r["sync"],
                r["scenario"],
                r["faults"],
                r["states_checked"],
                !r["error"].is_null(),
                r["violations"].as_u64().unwrap_or(0) > 0,
                r["needdsync_faults"].as_u64().unwrap_or(0) > 0,
                r["oracle_disagree"],
                r["oracle_agree"] == r["oracle_checked"],
            )
        })
        .collect()
}

#[test]
fn one_boot_serves_the_campaign_and_two_shards_merge_to_it() {
    if !ready(&["qemu-system-x86_64", "busybox", "losetup", "mount"], true) {
        return;
    }
    if let Err(e) = daxray::vm::Assets::resolve(None, None, None, None) {
        cannot_run(&format!("replay_vm: no guest kernel ({e}); run `daxray vm setup`"));
        return;
    }
    let args = [
        "--fs",
        "ext4",
        "--scenario",
        "seq-sparse",
        "--scenario",
        "multi-file",
        "--scenario",
        "msync-after",
        "--pages",
        "4",
        "--seed",
        "7",
    ];
    let (code, whole) = campaign(&args);
    assert_eq!(code, 0, "{whole}");
    // Six runs (three scenarios, MAP_SYNC and control) in one guest: one boot, five setups.
    assert_eq!(whole["runs"].as_array().map(Vec::len), Some(6), "{whole}");
    assert_eq!(whole["timing"]["boots"], 1, "{}", whole["timing"]);
    assert!(whole["timing"]["setup_s"].as_f64().unwrap_or(0.0) > 0.0, "{}", whole["timing"]);
    for r in whole["runs"].as_array().expect("runs") {
        assert!(r["error"].is_null(), "{r}");
        assert_eq!(r["states_checked"], 4, "{r}");
        if r["sync"] == true {
            assert_eq!(r["violations"], 0, "MAP_SYNC lost a store: {r}");
            assert!(r["needdsync_faults"].as_u64().unwrap_or(0) > 0, "{r}");
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    for shard in ["1/2", "2/2"] {
        let mut a = args.to_vec();
        a.extend(["--shard", shard]);
        let (code, v) = campaign(&a);
        assert_eq!(code, 0, "shard {shard}: {v}");
        assert_eq!(v["runs"].as_array().map(Vec::len), Some(3), "shard {shard}: {v}");
        let f = dir.path().join(format!("shard-{}.json", &shard[..1]));
        std::fs::write(&f, v.to_string()).expect("write shard report");
        files.push(f);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_daxray"))
        .args(["--json", "replay", "--merge"])
        .args(&files)
        .output()
        .expect("daxray replay --merge");
    let merged: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("--merge printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr))
    });
    assert_eq!(out.status.code(), Some(0), "{merged}");
    assert_eq!(verdict_rows(&merged), verdict_rows(&whole), "merged shards differ from the whole campaign");
    assert_eq!(merged["shard"], "1+2 of 2", "{merged}");
    // The same shard twice is refused.
    let out = Command::new(env!("CARGO_BIN_EXE_daxray"))
        .args(["replay", "--merge"])
        .args([&files[0], &files[0]])
        .output()
        .expect("daxray replay --merge");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("given twice"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_kernel_matrix_runs_on_6_1_and_6_12() {
    if !ready(&["qemu-system-x86_64", "busybox", "losetup", "mount"], true) {
        return;
    }
    for s in ["6.1", "6.12"] {
        if let Err(e) = daxray::vm::Assets::resolve(None, Some(s), None, None) {
            cannot_run(&format!(
                "replay_vm: no guest kernel of series {s} ({e}); run `daxray vm setup --kernel-series {s}`"
            ));
            return;
        }
    }
    let (code, v) = campaign(&[
        "--kernel-series",
        "6.1",
        "--kernel-series",
        "6.12",
        "--fs",
        "xfs-reflink",
        "--sync",
        "--scenario",
        "seq-sparse",
        "--pages",
        "4",
    ]);
    assert_eq!(code, 0, "{v}");
    let kernels: Vec<&str> =
        v["kernels"].as_array().expect("kernels").iter().filter_map(|k| k.as_str()).collect();
    assert_eq!(kernels.len(), 2, "{v}");
    assert!(kernels[0].starts_with("6.1.") && kernels[1].starts_with("6.12."), "{kernels:?}");
    assert_eq!(v["timing"]["boots"], 2, "one boot per kernel: {}", v["timing"]);
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "{v}");
    for (r, k) in runs.iter().zip(&kernels) {
        assert_eq!(r["kernel"].as_str(), Some(*k), "each run on its kernel, in the matrix's order: {r}");
        assert!(r["error"].is_null(), "{r}");
        assert_eq!(r["violations"], 0, "MAP_SYNC lost a store on {k}: {r}");
        assert!(r["needdsync_faults"].as_u64().unwrap_or(0) > 0, "{r}");
        assert_eq!(r["oracle_agree"], r["oracle_checked"], "{r}");
    }
    // One probe per kernel, each from its own guest.
    let probes: Vec<&str> =
        v["probes"].as_array().expect("probes").iter().filter_map(|p| p["kernel"].as_str()).collect();
    assert_eq!(probes, kernels, "{v}");
}
