//! XFS recovery replays transactions as they are read from the log, which is exact only when
//! the log holds no buffer-cancel record; at the first one it falls back to the kernel's two
//! passes (pass 1 builds the cancel table over the whole log, pass 2 replays). This test makes
//! a crash image whose log holds cancel records (big directories emptied and removed, so their
//! blocks are freed while logged), and checks against the kernel's own recovery (a copy mounted
//! read-write): daxray's recovered manifest equals the kernel's, and the report says cancel
//! records were seen and buffers were cancelled.

mod common;

use common::ready;
use daxray::oracle;
use std::io::Write;

#[test]
fn cancel_records_take_the_two_pass_replay_and_match_the_kernel() {
    if !ready(&["mkfs.xfs", "losetup", "mount", "umount"], true) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base.img");
    let dirty = tmp.path().join("dirty.img");
    let kcopy = tmp.path().join("kernel.img");
    oracle::make_image(&base, 320 << 20, &["mkfs.xfs", "-q", "-f", "-m", "reflink=0"]).expect("mkfs.xfs");
    oracle::crash_copy(&base, "xfs", "", &dirty, |root| {
        // Directories big enough for leaf/node form (their blocks are logged as they fill), then
        // emptied and removed (their blocks freed: cancel records), and files kept beside them.
        for d in 0..4 {
            let dir = root.join(format!("big{d}"));
            std::fs::create_dir(&dir).unwrap();
            for i in 0..400 {
                std::fs::write(dir.join(format!("a-rather-long-file-name-to-fill-blocks-{i:05}")), b"x")
                    .unwrap();
            }
        }
        let keep = root.join("keep");
        std::fs::create_dir(&keep).unwrap();
        for i in 0..50 {
            std::fs::write(keep.join(format!("f{i}")), vec![i as u8; 5000]).unwrap();
        }
        // One checkpoint holding the directories' blocks, replayed before the cancel records of
        // the next one are read.
        std::fs::File::open(keep.join("f0")).unwrap().sync_all().unwrap();
        for d in [0, 2] {
            std::fs::remove_dir_all(root.join(format!("big{d}"))).unwrap();
        }
        // Force the log (committed, not checkpointed) without writing metadata back.
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(keep.join("last"))
            .unwrap();
        f.write_all(b"last").unwrap();
        f.sync_all().unwrap();
        drop(f);
        Ok(())
    })
    .expect("crash copy");
    let kernel = oracle::recovered_manifest(&dirty, "xfs", "", &kcopy, true).expect("the kernel's recovery");
    assert!(kernel.len() > 800, "files in the kernel's view: {}", kernel.len());

    let o = daxray::open::open(&dirty, &Default::default()).expect("daxray open");
    let replay = &o.recovery.details["replay"];
    println!("recovery: {replay}");
    assert!(o.recovery.applied, "the crash image needs recovery: {:?}", o.recovery.details);
    let cancels = replay["cancel_records"].as_u64().unwrap_or(0);
    assert!(cancels > 0, "the log holds cancel records: {replay}");
    // More buffers skipped than cancel records: buffers logged before their cancel record were
    // not replayed, which needs pass 1 to have read the whole log first.
    assert!(replay["buffers_cancelled"].as_u64().unwrap_or(0) > cancels, "{replay}");
    assert!(replay["errors"].as_array().is_some_and(|e| e.is_empty()), "{replay}");
    assert!(replay["transactions_replayed"].as_u64().unwrap_or(0) >= 2, "{replay}");
    let (mine, errs) = daxray::manifest::build(&*o.fs, true).expect("daxray manifest");
    assert!(errs.is_empty(), "{errs:?}");
    let n = oracle::compare_manifests(&mine, &kernel).unwrap_or_else(|e| panic!("daxray vs kernel:\n{e}"));
    println!("{cancels} cancel records; {n} files identical to the kernel's recovery");
}
