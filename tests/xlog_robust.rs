//! Damaged logs never panic or hang daxray: a kernel-made crash image gets random bytes of its
//! log overwritten (record headers, op headers, item formats, inode cores), and every time
//! `recover_view`, the model on top of it and `listing` must return (Ok or a clear error).

mod common;

use daxray::image::BlockSource;
use daxray::oracle::{self, WorkloadSpec};
use rand::{RngExt, SeedableRng};
use std::os::unix::fs::FileExt;

#[test]
fn damaged_logs_do_not_panic() {
    if !common::ready(&["mkfs.xfs", "losetup", "mount", "umount"], true) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().join("base.img");
    let dirty = dir.path().join("dirty.img");
    oracle::make_image(&base, 320 << 20, &["mkfs.xfs", "-q"]).expect("mkfs");
    let spec = WorkloadSpec {
        seed: 11,
        files: 120,
        big_dir_entries: 300,
        max_file_bytes: 256 << 10,
        ops: 300,
        fsync: true,
    };
    oracle::crash_copy(&base, "xfs", "", &dirty, |root| oracle::run_workload(root, &spec))
        .expect("workload and crash copy");

    let img = daxray::image::open(&dirty, None).expect("open");
    let a = daxray::xlog::analyse(&img.fs_bytes, &Default::default(), false).expect("analyse");
    let b = a.bounds.clone().expect("bounds");
    assert!(!b.clean && !a.parsed.committed.is_empty(), "the crash image has a dirty log");
    let log_base = a.base;
    let used = b.head_blk * 512;
    drop(img);

    let f = std::fs::OpenOptions::new().read(true).write(true).open(&dirty).expect("open copy");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0xdead);
    let (mut ok, mut err) = (0, 0);
    for round in 0..40 {
        // Damage 1..64 spots of 1..16 bytes in the used part of the log.
        let mut saved = vec![];
        for _ in 0..rng.random_range(1..64) {
            let off = log_base + rng.random_range(0..used);
            let len = rng.random_range(1..16usize);
            let mut old = vec![0u8; len];
            f.read_exact_at(&mut old, off).expect("read");
            let new: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            f.write_all_at(&new, off).expect("write");
            saved.push((off, old));
        }
        let img = daxray::image::open(&dirty, None).expect("open damaged");
        match daxray::xlog::recover_view(img.fs_bytes.clone(), &Default::default()) {
            Ok((view, _rep)) => {
                ok += 1;
                // The model over the replayed bytes must not panic either.
                if let Ok(fs) = daxray::xfs::Xfs::open(view.clone()) {
                    let mut errs = vec![];
                    let _ = daxray::fs::walk(&fs, "/", &mut errs);
                }
                let _ = view.read_at(0, 512);
            }
            Err(e) => {
                err += 1;
                eprintln!("round {round}: {e}");
            }
        }
        let _ = daxray::cli::listing::xfs(img.fs_bytes.clone(), &Default::default(), true);
        drop(img);
        for (off, old) in saved.into_iter().rev() {
            f.write_all_at(&old, off).expect("restore");
        }
    }
    eprintln!("{ok} damaged logs recovered (with findings), {err} refused with an error");
    assert_eq!(ok + err, 40);
}
