//! Crash states a soak caught (fixtures/soak/, see its README): each a pmem image the guest kernel
//! made under QEMU, stopped at a random instant, with the whole view the host kernel's recovery
//! of a copy showed (`kernel-manifest.json`: every regular file's path, inode, size, merged
//! extents and sha256; `kernel-unreadable.txt`: the paths it could not read), or that it
//! refused to mount it (`kernel-refused.txt`). `daxray manifest
//! --hash` on the image must show the same files, or `daxray info` refuse the recovered view,
//! without QEMU.

use daxray::manifest::ManifestEntry;
use daxray::replay::sparse;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join("soak")
}

/// daxray's recovered manifest of `image`, its standard error (findings), and whether it exited 0.
fn daxray_manifest(image: &Path) -> (Vec<ManifestEntry>, String, bool) {
    let out = Command::new(env!("CARGO_BIN_EXE_daxray"))
        .args(["manifest", "--hash"])
        .arg(image)
        .output()
        .expect("run daxray manifest");
    let mut v: Vec<ManifestEntry> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("manifest line {l:?}: {e}")))
        .collect();
    v.sort_by(|a, b| a.path.cmp(&b.path));
    (v, String::from_utf8_lossy(&out.stderr).into_owned(), out.status.success())
}

/// `daxray info --json` of `image`.
fn daxray_info(image: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_daxray"))
        .args(["info", "--json"])
        .arg(image)
        .output()
        .expect("run daxray info");
    serde_json::from_slice(&out.stdout).expect("info JSON")
}

#[test]
fn soak_states_show_what_the_kernel_shows() {
    let root = fixtures();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("fixtures/soak")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("kernel-manifest.json").exists() || p.join("kernel-refused.txt").exists())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no soak fixtures under {}", root.display());
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut failures = vec![];
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let image = tmp.path().join(format!("{name}.img"));
        sparse::unpack(&dir.join("image.dxs.gz"), &image).expect("unpack fixture");
        let (ours, stderr, ok) = daxray_manifest(&image);
        if dir.join("kernel-refused.txt").exists() {
            // The kernel refused to mount the copy: daxray must refuse the recovered view too.
            let v = daxray_info(&image);
            let refused = &v["recovery"]["details"]["refused"];
            if refused.as_array().is_none_or(|a| a.is_empty()) || v["recovery"]["applied"] != false {
                failures.push(format!(
                    "{name}: the kernel refuses to mount it, daxray does not: {}",
                    v["recovery"]
                ));
            }
        } else {
            // Error findings (a lookup the kernel refuses, a lazy-init risk) make the exit
            // code 1; the listing itself must still be there and equal the kernel's.
            assert!(ok || stderr.contains("daxray: error:"), "{name}: daxray manifest failed: {stderr}");
            let kernel: Vec<ManifestEntry> = serde_json::from_slice(
                &std::fs::read(dir.join("kernel-manifest.json")).expect("kernel manifest"),
            )
            .expect("kernel manifest JSON");
            // Paths the kernel could not read (its lookup failed): daxray must not show them and
            // must say why.
            let unreadable = std::fs::read_to_string(dir.join("kernel-unreadable.txt")).unwrap_or_default();
            for line in unreadable.lines() {
                let path = line.split('\t').next().unwrap_or("");
                if ours.iter().any(|e| e.path == path) || !stderr.contains(&format!("{path}:")) {
                    failures.push(format!(
                        "{name}: the kernel cannot read {path}; daxray shows it or says nothing:\n{stderr}"
                    ));
                }
            }
            if kernel.is_empty() {
                // Nothing readable after the mount (`kernel-unreadable.txt` says why).
                assert!(!unreadable.is_empty(), "{name}: an empty kernel manifest with no reason");
                if !ours.is_empty() {
                    failures.push(format!("{name}: the kernel shows no file, daxray shows {}", ours.len()));
                }
            } else {
                match daxray::oracle::compare_manifests(&ours, &kernel) {
                    Ok(n) => assert!(n >= 2, "{name}: only {n} files compared"),
                    Err(d) => failures.push(format!("{name}:\n{d}\n{stderr}")),
                }
            }
        }
        // A state caught with a journal or log write in flight at the head: daxray must still
        // see that write (the same block, the same evidence) in the recovery it reports.
        let kept: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("verdicts.json")).expect("verdicts.json"))
                .expect("verdicts JSON");
        if let Some(want) = kept["in_flight"].as_str() {
            let v = daxray_info(&image);
            let got = &v["recovery"]["details"]["head_in_flight"];
            if got.as_str() != Some(want) {
                failures.push(format!(
                    "{name}: caught with {want:?} in flight at the head; daxray now says {got}"
                ));
            }
        }
        // Each fixture is kept for what it shows; its README line says which finding that is.
        let expect = std::fs::read_to_string(dir.join("expect-finding.txt")).unwrap_or_default();
        let expect = expect.trim();
        if !expect.is_empty() && !stderr.contains(expect) {
            failures.push(format!("{name}: daxray did not report {expect:?}; it said:\n{stderr}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
