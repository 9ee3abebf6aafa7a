//! The committed small XFS fixtures (`fixtures/xfs/`, see `fixtures/README.md`) read by daxray and
//! by the kernel on the same bytes, at test time: the clean image mounted read-only, and a copy of
//! the crash image mounted so that the kernel replays its log.

mod common;

use common::{ready, sha256_file, unpack_fixture};
use daxray::manifest::ManifestEntry;
use daxray::open::{OpenOptions, open};
use daxray::oracle;
use std::path::Path;

fn ours(img: &Path, raw: bool) -> (Vec<ManifestEntry>, usize) {
    let before = sha256_file(img);
    let o = open(img, &OpenOptions { raw, ..Default::default() })
        .unwrap_or_else(|e| panic!("open {}: {e}", img.display()));
    let (entries, errors) = daxray::manifest::build(&*o.fs, true).expect("manifest");
    assert_eq!(sha256_file(img), before, "daxray changed its input image");
    // The kind and size `check` asks of every claim are those of the full stat.
    for e in &entries {
        let st = o.fs.stat(e.ino).expect("stat");
        assert_eq!(o.fs.type_and_size(e.ino).expect("type_and_size"), (st.file_type, st.size), "{}", e.path);
    }
    (entries, errors.len())
}

/// The kernel's manifest of a copy of `img` (mounting a copy lets the kernel recover it). XFS
/// refuses two mounted file systems with one uuid, and tests run in parallel: use `nouuid`.
fn kernel(img: &Path, tmp: &Path, opts: &str) -> Vec<ManifestEntry> {
    oracle::recovered_manifest(img, "xfs", opts, &tmp.join("copy.img"), true)
        .expect("the kernel's recovery of a copy")
}

#[test]
fn clean_xfs_fixture_matches_the_kernel() {
    if !ready(&["losetup", "mount", "umount"], true) {
        return;
    }
    let (tmp, img) = unpack_fixture("xfs", "kernel");
    let (ours, errors) = ours(&img, false);
    assert_eq!(errors, 0, "per-file errors");
    let k = kernel(&img, tmp.path(), "ro,nouuid");
    let n = oracle::compare_manifests(&ours, &k)
        .unwrap_or_else(|e| panic!("daxray differs from the kernel:\n{e}"));
    assert!(n > 400, "compared only {n} files");
    eprintln!("clean xfs fixture: {n} files equal to the kernel's view");
}

#[test]
fn dirty_xfs_fixture_recovers_like_the_kernel() {
    if !ready(&["losetup", "mount", "umount"], true) {
        return;
    }
    let (tmp, img) = unpack_fixture("xfs", "kernel-dirty");
    let (ours, errors) = ours(&img, false);
    assert_eq!(errors, 0, "per-file errors in the recovered view");
    let k = kernel(&img, tmp.path(), "nouuid");
    let n = oracle::compare_manifests(&ours, &k)
        .unwrap_or_else(|e| panic!("daxray's recovered view differs from the kernel's recovery:\n{e}"));
    assert!(n > 400, "compared only {n} files");
    let (raw, raw_errors) = ours_raw(&img);
    let raw_diff = oracle::compare_manifests(&raw, &k).err();
    assert!(
        raw_diff.is_some() || raw_errors > 0,
        "the raw media already equals the recovered view: the fixture does not exercise log recovery"
    );
    eprintln!("dirty xfs fixture: {n} files equal to the kernel's recovery; the raw view differs");
}

fn ours_raw(img: &Path) -> (Vec<ManifestEntry>, usize) {
    ours(img, true)
}
