//! Unit tests of the oracle: they use the real mkfs and the real kernel (root).

use super::*;
use crate::manifest::{ManifestEntry, ManifestExtent};
use std::path::PathBuf;

fn ready(tools: &[&str]) -> bool {
    match require(tools, true) {
        Ok(()) => true,
        Err(e) if tests_may_skip() => {
            eprintln!("SKIPPED (DAXRAY_SKIP_ROOT_TESTS=1): {e}");
            false
        }
        Err(e) => panic!("{e}"),
    }
}

fn entry(path: &str, ino: u64, size: u64, ext: &[(u64, u64, u64, bool)], sha: Option<&str>) -> ManifestEntry {
    ManifestEntry {
        path: path.into(),
        ino,
        size,
        block_size: 4096,
        extents: ext
            .iter()
            .map(|&(logical, physical, length, unwritten)| ManifestExtent {
                logical,
                physical,
                length,
                unwritten,
            })
            .collect(),
        sha256: sha.map(String::from),
    }
}

#[test]
fn compare_manifests_reports_each_difference_and_refuses_empty() {
    let a = vec![entry("/a", 12, 10, &[(0, 100, 1, false)], Some("aa")), entry("/b", 13, 0, &[], None)];
    assert_eq!(compare_manifests(&a, &a), Ok(2));
    assert!(compare_manifests(&[], &a).is_err());
    assert!(compare_manifests(&a, &[]).is_err());
    let b = vec![entry("/a", 12, 11, &[(0, 101, 1, true)], Some("ab")), entry("/c", 14, 0, &[], None)];
    let e = compare_manifests(&a, &b).unwrap_err();
    for needle in ["/a: size", "/a: sha256", "/a: extents", "/b: only in ours", "/c: only in the kernel"] {
        assert!(e.contains(needle), "missing {needle:?} in {e}");
    }
}

#[test]
fn require_names_the_package() {
    let e = require(&["surely-not-a-tool-daxray"], false).unwrap_err();
    assert!(e.contains("surely-not-a-tool-daxray"), "{e}");
    assert!(require(&["sh"], false).is_ok());
}

#[test]
fn run_times_out() {
    let t = std::time::Instant::now();
    let e = run("sleep", &["5"], std::time::Duration::from_millis(300)).unwrap_err();
    assert!(e.to_string().contains("did not finish"), "{e}");
    assert!(t.elapsed() < std::time::Duration::from_secs(3));
}

#[test]
fn ext4_workload_manifest_is_stable_and_copy_sparse_keeps_holes() {
    if !ready(&["mkfs.ext4", "losetup", "mount", "umount"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap(); // OK to unwrap because /tmp is writable in tests
    let img = tmp.path().join("e.img");
    make_image(&img, 96 << 20, &["mkfs.ext4", "-q", "-b", "4096"]).unwrap(); // OK to unwrap: test
    let spec = WorkloadSpec {
        seed: 7,
        files: 60,
        big_dir_entries: 1500,
        max_file_bytes: 2 << 20,
        ops: 200,
        fsync: true,
    };
    let m = Mount::new(&img, 0, "ext4", "").unwrap(); // OK to unwrap: test
    let st = run_workload(m.path(), &spec).unwrap(); // OK to unwrap: test
    eprintln!("{st:?}");
    assert!(st.files_created >= 1500 && st.fsyncs > 0 && st.fallocates > 0 && st.sparse_files > 0);
    let k1 = kernel_manifest(m.path(), true).unwrap(); // OK to unwrap: test
    let k2 = kernel_manifest(m.path(), true).unwrap(); // OK to unwrap: test
    assert_eq!(k1.len(), st.files_at_end, "one manifest entry per live file name");
    assert_eq!(compare_manifests(&k1, &k2), Ok(k1.len()));
    assert!(k1.iter().any(|e| e.extents.iter().any(|x| x.unwritten)), "some unwritten extent");
    assert!(k1.iter().any(|e| e.extents.len() > 1), "some file with several extents");
    assert!(k1.iter().all(|e| e.path.starts_with('/') && e.block_size == 4096 && e.sha256.is_some()));
    // A crash copy while mounted, then the kernel's recovery of it on a second mount.
    let dirty = tmp.path().join("dirty.img");
    copy_sparse(&img, &dirty).unwrap(); // OK to unwrap: test
    m.unmount().unwrap(); // OK to unwrap: test
    let (s1, s2) = (std::fs::metadata(&img).unwrap(), std::fs::metadata(&dirty).unwrap()); // OK to unwrap: test
    use std::os::unix::fs::MetadataExt;
    assert_eq!(s1.len(), s2.len());
    assert!(s2.blocks() * 512 < s2.len() / 2, "the copy is sparse");
    let m2 = Mount::new(&dirty, 0, "ext4", "").unwrap(); // OK to unwrap: test
    let k3 = kernel_manifest(m2.path(), true).unwrap(); // OK to unwrap: test
    drop(m2);
    // The recovered copy holds every fsynced file with its contents.
    let by_path: std::collections::HashMap<_, _> = k3.iter().map(|e| (e.path.clone(), e)).collect();
    for e in &k1 {
        let r = by_path.get(&e.path).unwrap_or_else(|| panic!("{} lost after recovery", e.path));
        assert_eq!((r.size, &r.sha256), (e.size, &e.sha256), "{}", e.path);
    }
}

#[test]
fn mount_is_cleaned_up_on_panic() {
    if !ready(&["mkfs.ext4", "losetup", "mount", "umount"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap(); // OK to unwrap: test
    let img = tmp.path().join("p.img");
    make_image(&img, 16 << 20, &["mkfs.ext4", "-q"]).unwrap(); // OK to unwrap: test
    let dir = std::sync::Mutex::new(PathBuf::new());
    let r = std::panic::catch_unwind(|| {
        let m = Mount::new(&img, 0, "ext4", "").unwrap(); // OK to unwrap: test
        *dir.lock().unwrap() = m.path().to_path_buf(); // OK to unwrap: test
        panic!("boom");
    });
    assert!(r.is_err());
    let d = dir.lock().unwrap().clone(); // OK to unwrap: test
    assert!(!d.as_os_str().is_empty());
    assert!(!d.exists(), "mount point removed");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap(); // OK to unwrap: test
    assert!(!mounts.contains(d.to_str().unwrap()), "still mounted"); // OK to unwrap: test
    let lo = run("losetup", &["-j", img.to_str().unwrap()], std::time::Duration::from_secs(30)).unwrap(); // OK to unwrap: test
    assert!(lo.stdout.trim().is_empty(), "loop device still attached: {}", lo.stdout);
}

#[test]
fn xfs_workload_manifest_is_stable() {
    if !ready(&["mkfs.xfs", "losetup", "mount", "umount"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap(); // OK to unwrap: test
    let img = tmp.path().join("x.img");
    make_image(&img, 320 << 20, &["mkfs.xfs", "-q", "-m", "reflink=0"]).unwrap(); // OK to unwrap: test
    let spec = WorkloadSpec {
        seed: 3,
        files: 40,
        big_dir_entries: 1000,
        max_file_bytes: 1 << 20,
        ops: 100,
        fsync: true,
    };
    let m = Mount::new(&img, 0, "xfs", "").unwrap(); // OK to unwrap: test
    let st = run_workload(m.path(), &spec).unwrap(); // OK to unwrap: test
    let k1 = kernel_manifest(m.path(), false).unwrap(); // OK to unwrap: test
    let k2 = kernel_manifest(m.path(), false).unwrap(); // OK to unwrap: test
    assert_eq!(k1.len(), st.files_at_end);
    assert_eq!(compare_manifests(&k1, &k2), Ok(k1.len()));
    assert!(k1.iter().any(|e| e.extents.iter().any(|x| x.unwritten)), "some unwritten extent");
    m.unmount().unwrap(); // OK to unwrap: test
}
