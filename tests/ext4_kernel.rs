//! The kernel as the oracle: images written by the real ext4 driver (loop mount + a seeded
//! workload), then daxray's manifest of the unmounted bytes must equal what the kernel showed
//! through stat, FIEMAP and read() for every regular file: size, sha256, merged extents.
//! Also through an fsdax namespace window when a kernel-made pfn info block is committed
//! under `fixtures/pmem/`.

mod common;

use common::ready;
use daxray::ext4::Ext4;
use daxray::image::{BlockSource, MmapSource};
use daxray::oracle::{self, Mount, WorkloadSpec};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MIB: u64 = 1 << 20;

/// Format, mount, run the workload, unmount; mount again read-only and take the kernel's
/// manifest of what is on disk.
fn kernel_image(
    dir: &Path,
    seed: u64,
    size: u64,
    mkfs: &[&str],
) -> (PathBuf, Vec<daxray::manifest::ManifestEntry>) {
    let img = dir.join(format!("ext4-{seed}.img"));
    oracle::make_image(&img, size, mkfs).expect("mkfs.ext4");
    let m = Mount::new(&img, 0, "ext4", "").expect("loop mount");
    let spec = WorkloadSpec {
        seed,
        files: 300,
        big_dir_entries: 3000,
        max_file_bytes: 2 * MIB,
        ops: 600,
        fsync: true,
    };
    let stats = oracle::run_workload(m.path(), &spec).expect("workload");
    println!("seed {seed} {mkfs:?}: {stats:?}");
    let live = oracle::kernel_manifest(m.path(), true).expect("kernel manifest");
    m.unmount().expect("umount");
    // What the kernel shows of the bytes on disk: mount them again (read-only) and look.
    let m = Mount::new(&img, 0, "ext4", "ro").expect("loop mount ro");
    let kernel = oracle::kernel_manifest(m.path(), true).expect("kernel manifest (remounted)");
    m.unmount().expect("umount");
    if let Err(e) = oracle::compare_manifests(&live, &kernel) {
        // Not daxray's business, but worth seeing: the kernel's view changed across umount.
        println!("seed {seed}: the kernel's own view changed across umount/mount:\n{e}");
    }
    (img, kernel)
}

fn compare(name: &str, fs: &dyn daxray::FileSystem, kernel: &[daxray::manifest::ManifestEntry]) -> usize {
    let (ours, errors) = daxray::manifest::build(fs, true).expect("manifest");
    assert!(errors.is_empty(), "{name}: daxray errors: {errors:?}");
    let bad: Vec<_> =
        fs.findings().into_iter().filter(|f| f.severity == daxray::error::Severity::Error).collect();
    assert!(bad.is_empty(), "{name}: findings on a clean kernel-made image: {bad:#?}");
    let n =
        oracle::compare_manifests(&ours, kernel).unwrap_or_else(|e| panic!("{name}: manifests differ:\n{e}"));
    assert_eq!(n, kernel.len(), "{name}: compared {n} of {} files", kernel.len());
    let extents: usize = ours.iter().map(|e| e.extents.len()).sum();
    let unwritten = ours.iter().flat_map(|e| &e.extents).filter(|x| x.unwritten).count();
    println!("{name}: {n} files equal to the kernel's ({extents} extents, {unwritten} unwritten)");
    n
}

/// The kernel-made fsdax namespace header of a 256 MiB namespace committed by the vm worker
/// (`fixtures/pmem/pfn-info-256M.bin`, see its README), if it is there: the block holds
/// "NVDIMM_PFN_INFO" at byte 0 (or 4096 for a whole-namespace dump).
fn pfn_fixture() -> Option<(Vec<u8>, u64)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pmem");
    let files = [dir.join("pfn-info-256M.bin")];
    for f in files {
        let Ok(bytes) = std::fs::read(&f) else { continue };
        for at in [4096usize, 0] {
            if bytes.get(at..at + 15) == Some(b"NVDIMM_PFN_INFO".as_slice()) {
                let sb = bytes[at..].get(..4096.min(bytes.len() - at))?.to_vec();
                let dataoff = u64::from_le_bytes(sb.get(56..64)?.try_into().ok()?);
                println!("pmem fixture {}: dataoff {dataoff}", f.display());
                return Some((sb, dataoff));
            }
        }
    }
    None
}

#[test]
fn ext4_kernel_manifests() {
    if !ready(&["mkfs.ext4", "losetup", "mount", "umount"], true) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    // DAXRAY_KEEP_TMP=1 keeps the images for a post-mortem (the folder is printed).
    let dir = tmp.path().to_path_buf();
    let _guard = if std::env::var("DAXRAY_KEEP_TMP").is_ok_and(|v| v == "1") {
        println!("keeping {}", tmp.keep().display());
        None
    } else {
        Some(tmp)
    };
    let configs: [(u64, &[&str]); 3] = [
        (11, &["mkfs.ext4", "-q", "-F", "-b", "4096"]),
        (22, &["mkfs.ext4", "-q", "-F", "-b", "4096", "-O", "inline_data", "-I", "256"]),
        (33, &["mkfs.ext4", "-q", "-F", "-b", "1024", "-O", "^64bit,^metadata_csum"]),
    ];
    let pfn = pfn_fixture();
    assert!(pfn.is_some(), "fixtures/pmem/pfn-info-256M.bin (the kernel-made namespace header) is missing");
    let mut total = 0;
    let only: Option<u64> = std::env::var("DAXRAY_EXT4_SEED").ok().and_then(|s| s.parse().ok());
    for (seed, mkfs) in configs {
        if only.is_some_and(|o| o != seed) {
            continue;
        }
        // The first image is sized to fill a 256 MiB namespace after its dataoff, exactly like
        // the kernel-made namespace the pfn block comes from; the others are 256 MiB.
        let wrap = pfn.as_ref().filter(|_| seed == configs[0].0);
        let size = wrap.map_or(256 * MIB, |(_, dataoff)| 256 * MIB - dataoff);
        let (img, kernel) = kernel_image(&dir, seed, size, mkfs);
        assert!(kernel.len() > 100, "seed {seed}: the kernel shows only {} files", kernel.len());
        let src: Arc<dyn BlockSource> = Arc::new(MmapSource::open(&img).expect("map"));
        let fs = Ext4::open(src).expect("open");
        total += compare(&format!("seed {seed}"), &fs, &kernel);

        // The same bytes through the whole pipeline (pmem detection, jbd2 view, model).
        let opened = daxray::open::open(&img, &Default::default()).expect("open pipeline");
        compare(&format!("seed {seed} via open()"), &*opened.fs, &kernel);

        if let Some((sb, dataoff)) = wrap.map(|(s, d)| (s, *d)) {
            let wrapped = dir.join(format!("pmem-{seed}.img"));
            let fsbytes = std::fs::read(&img).expect("read image");
            let mut w = vec![0u8; dataoff as usize];
            w[4096..4096 + sb.len()].copy_from_slice(sb);
            w.extend_from_slice(&fsbytes);
            std::fs::write(&wrapped, &w).expect("write wrapped image");
            let w_len = w.len() as u64;
            drop(w);
            let opened = daxray::open::open(&wrapped, &Default::default()).expect("open wrapped");
            assert_eq!(w_len, 256 * MIB, "namespace size");
            assert_eq!(opened.placement().location.fs_offset, dataoff, "namespace offset");
            assert_eq!(opened.placement().location.found_by, "fsdax namespace");
            compare(&format!("seed {seed} in an fsdax namespace"), &*opened.fs, &kernel);
            std::fs::remove_file(&wrapped).ok();
        }
        if _guard.is_some() {
            std::fs::remove_file(&img).ok();
        }
    }
    assert!(total > 300 || (only.is_some() && total > 100), "only {total} files compared");
}
