//! Hostile fast-commit tags: a kernel-made crash image with valid fast commits, whose tag values
//! (inode numbers, ranges, names, raw inodes) are then rewritten at random with the TAIL crcs
//! recomputed, so that the scan accepts them and the replay must digest them. daxray must open
//! every variant, replay it, walk every file and read the touched ones without a panic, in
//! bounded time, and never write its input.

mod common;
mod jbd2_common;

use daxray::ext4::fastcommit::{self, TAG_HEAD, TAG_PAD, TAG_TAIL};
use daxray::fs::FileSystem;
use daxray::image::{BlockSource, MmapSource, Overlay};
use daxray::open::{OpenOptions, open_source};
use jbd2_common::{Durability, fast_commit_ops, make_dirty_mounted_with, prerequisites};
use rand::{RngExt, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Recompute every TAIL crc of the area's blocks (tags keep their lengths, so the structure
/// stays), as ext4 computes it: crc32c over each tag from the HEAD or the previous TAIL up to the
/// TAIL's tid.
fn fix_crcs(blocks: &mut [Vec<u8>]) {
    let mut crc = 0u32;
    for b in blocks.iter_mut() {
        let mut cur = 0usize;
        while cur + 4 <= b.len() {
            let tag = u16::from_le_bytes([b[cur], b[cur + 1]]);
            let len = usize::from(u16::from_le_bytes([b[cur + 2], b[cur + 3]]));
            if tag == 0 || cur + 4 + len > b.len() {
                break;
            }
            if tag == TAG_TAIL && len >= 8 {
                crc = daxray::jbd2::csum::raw(crc, &b[cur..cur + 8]);
                b[cur + 8..cur + 12].copy_from_slice(&crc.to_le_bytes());
                crc = 0;
            } else {
                crc = daxray::jbd2::csum::raw(crc, &b[cur..cur + 4 + len]);
            }
            cur += 4 + len;
        }
    }
}

#[test]
fn hostile_fast_commit_tags_never_panic() {
    if !prerequisites(&["mkfs.ext4", "losetup", "mount", "umount", "sync"]) {
        return;
    }
    let seed: u64 = std::env::var("DAXRAY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(11);
    println!("seed {seed}");
    let tmp = tempfile::tempdir().unwrap();
    let dirty = make_dirty_mounted_with(
        tmp.path(),
        "fc_hostile",
        &["-O", "fast_commit"],
        "commit=300",
        seed,
        Durability::FsyncSyncfs,
        |root| {
            fast_commit_ops(root, seed);
        },
    );
    let before = std::fs::read(&dirty).unwrap();
    let base: Arc<dyn BlockSource> = Arc::new(MmapSource::open(&dirty).unwrap());
    let (j, info) = daxray::ext4::journal::open_journal(&base, None).unwrap().expect("a journal");
    let bs = info.block_size;
    // Journal block -> file-system block, through the journal inode's extents.
    let ext4 = daxray::ext4::Ext4::open(base.clone()).unwrap();
    let jmap = ext4.map(u64::from(info.journal_inum)).unwrap();
    let fs_block = |n: u64| {
        jmap.iter().find(|e| n >= e.logical && n < e.logical + e.length).map(|e| e.physical + (n - e.logical))
    };
    let run = daxray::ext4::journal::recover_full(base.clone(), None).unwrap();
    let fc = run.fast_commit.clone().expect("the crash image holds valid fast commits");
    let last_valid = fc.tags.iter().filter(|t| t.valid).map(|t| t.journal_block).max().unwrap();
    let area: Vec<u64> = (j.fc_first..=last_valid).collect();
    let orig: Vec<Vec<u8>> = area.iter().map(|&n| j.read(n).unwrap().to_vec()).collect();
    let editable: Vec<&fastcommit::FcTag> =
        fc.tags.iter().filter(|t| t.valid && !matches!(t.kind, TAG_HEAD | TAG_TAIL | TAG_PAD)).collect();
    println!("{} valid tags over {} blocks, {} editable", fc.valid_tags, area.len(), editable.len());
    assert!(editable.len() > 10);

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let inodes = u64::from(ext4.superblock().raw.s_inodes_count.get());
    let mut replayed_runs = 0;
    let mut errors = 0;
    let variants = 64;
    for v in 0..variants {
        let mut blocks = orig.clone();
        for _ in 0..rng.random_range(1..6) {
            let t = editable[rng.random_range(0..editable.len())];
            let bi = area.iter().position(|&n| n == t.journal_block).unwrap();
            let val = t.offset + 4;
            let len = usize::from(t.len);
            let b = &mut blocks[bi];
            let word = |rng: &mut rand_chacha::ChaCha8Rng| -> u32 {
                match rng.random_range(0..5) {
                    0 => 0,
                    1 => u32::MAX,
                    2 => rng.random_range(1..12),
                    3 => rng.random_range(0..inodes as u32 + 2),
                    _ => rng.random(),
                }
            };
            // Rewrite one 32-bit field of the value, or scribble over raw inode / name bytes.
            if len >= 4 && rng.random_range(0..3) > 0 {
                let at = val + 4 * rng.random_range(0..(len / 4).min(4));
                let w = word(&mut rng);
                b[at..at + 4].copy_from_slice(&w.to_le_bytes());
            } else {
                for _ in 0..rng.random_range(1..8) {
                    let at = val + rng.random_range(0..len.max(1));
                    b[at] = rng.random();
                }
            }
        }
        fix_crcs(&mut blocks);
        let mut ov = Overlay::new(base.clone(), bs, format!("hostile variant {v}")).unwrap();
        for (k, &n) in area.iter().enumerate() {
            ov.put(fs_block(n).unwrap(), blocks[k].clone().into_boxed_slice()).unwrap();
        }
        let src: Arc<dyn BlockSource> = Arc::new(ov);
        let t0 = Instant::now();
        let m = open_source(src, daxray::FsKind::Ext4, &OpenOptions::default()).expect("opens");
        let replay_took = t0.elapsed();
        let fcr = &m.recovery.details["fast_commit"];
        if fcr["replay_applied"] == true {
            replayed_runs += 1;
        }
        if fcr["replay"]["error"].is_string()
            || fcr["scan_end"].as_str().is_some_and(|s| s.starts_with("error"))
        {
            errors += 1;
        }
        // Hashing is left out: a hostile i_size makes a file of gigabytes of zeros, which is
        // bounded but slow; the touched inodes are read below.
        let (man, errs) = daxray::manifest::build(&*m.fs, false).expect("walk");
        for ino in fcr["replay"]["inodes_touched"].as_array().into_iter().flatten().filter_map(|i| i.as_u64())
        {
            let _ = m.fs.stat(ino);
            let _ = m.fs.map(ino);
            let _ = m.fs.read_dir(ino);
            let _ = m.fs.read(ino, 0, 1 << 16);
        }
        let took = t0.elapsed();
        println!(
            "variant {v}: {} files, {} path errors, replay {} (open and replay {replay_took:?}, all {took:?})",
            man.len(),
            errs.len(),
            fcr["replay"]["applied"]
        );
        assert!(replay_took < Duration::from_secs(20), "variant {v}: open and replay took {replay_took:?}");
        assert!(took < Duration::from_secs(60), "variant {v} took {took:?}");
        assert!(!man.is_empty());
    }
    println!("{replayed_runs}/{variants} variants replayed, {errors} ended in a kernel error");
    assert!(replayed_runs > variants / 2, "most variants must still be replayed");
    assert_eq!(std::fs::read(&dirty).unwrap(), before, "the input image was written");
}
