//! A short soak on the real kernel under QEMU (TCG): `daxray replay --soak` on XFS (a 7 MiB log
//! that wraps) and ext4 (a 4 MiB journal), busy writers, random stops, every state's whole
//! recovered view compared with the host kernel's recovery of a copy. No state may disagree.
//! The long soak (300+ states per file system) is a command, `daxray replay --soak 1600`.
//!
//! Needs root, qemu-system-x86 and busybox-static, and the kernel assets (`daxray vm setup`).
//! Set DAXRAY_SKIP_ROOT_TESTS=1 to skip (it says so).

mod common;

use common::{cannot_run, ready};
use std::process::Command;

#[test]
fn short_soak_agrees_with_the_kernel_on_every_whole_view() {
    if !ready(&["qemu-system-x86_64", "busybox", "losetup", "mount"], true) {
        return;
    }
    if let Err(e) = daxray::vm::Assets::resolve(None, None, None, None) {
        cannot_run(&format!("soak_vm: no guest kernel ({e}); run `daxray vm setup`"));
        return;
    }
    let keep = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_daxray"))
        .args(["replay", "--soak", "60", "--fs", "xfs", "--fs", "ext4", "--json", "--keep"])
        .arg(keep.path())
        .output()
        .expect("run daxray replay --soak");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON from the soak ({e}):\n{}", String::from_utf8_lossy(&out.stderr)));
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "{v}");
    for r in runs {
        assert!(r["error"].is_null(), "the soak run failed: {r}");
        assert_eq!(r["scenario"], "soak", "{r}");
        assert_eq!(
            r["oracle_disagree"],
            0,
            "daxray and the kernel disagree: {r}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(r["check_errors"], 0, "{r}");
        assert_eq!(r["violations"], 0, "MAP_SYNC lost a store: {r}");
        let states = r["states_checked"].as_u64().unwrap_or(0);
        let whole = r["whole_checked"].as_u64().unwrap_or(0);
        let refused = r["mount_refused_states"].as_u64().unwrap_or(0);
        assert!(states >= 10, "too few states in 30 s: {r}");
        assert!(r["random_states"].as_u64().unwrap_or(0) > 0, "no random stop: {r}");
        assert_eq!(whole + refused, states, "every state must be whole-checked or refused by both: {r}");
        // Each state has the store file, the appended file and the churn files.
        assert!(r["files_compared"].as_u64().unwrap_or(0) >= 3 * whole, "{r}");
    }
    assert_eq!(v["exit_code"], 0, "{v}");
}
