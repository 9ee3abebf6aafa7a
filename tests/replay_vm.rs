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
