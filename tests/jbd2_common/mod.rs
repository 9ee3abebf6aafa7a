//! Shared by the jbd2 kernel tests: prerequisites and kernel-made dirty ext4 images.

#![allow(dead_code)]

use daxray::oracle::{self, Mount, WorkloadSpec};
use std::path::{Path, PathBuf};
use std::process::Command;

/// True when the test can run; panics with what to install, or skips when the user opted out.
pub fn prerequisites(tools: &[&str]) -> bool {
    crate::common::ready(tools, true)
}

/// How the workload makes its transactions durable before the crash copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fsync files (the workload's own fsyncs): on fast_commit file systems this writes fast commits.
    Fsync,
    /// No fsync; one syncfs at the end: a full jbd2 commit of everything, no fast commits.
    Syncfs,
    /// fsync, then one syncfs at the end (everything written back: for file systems without a
    /// journal, whose crash copies are otherwise torn).
    FsyncSyncfs,
}

/// A kernel-made crash image: mkfs with `mkfs_opts`, mount, seeded workload, then copy the backing
/// file while it is still mounted (committed transactions not yet checkpointed). Returns the copy.
pub fn make_dirty(dir: &Path, name: &str, mkfs_opts: &[&str], seed: u64, durability: Durability) -> PathBuf {
    make_dirty_then(dir, name, mkfs_opts, seed, durability, |_| {})
}

/// Like [`make_dirty`], running `after` on the mounted tree just before the crash copy.
pub fn make_dirty_then(
    dir: &Path,
    name: &str,
    mkfs_opts: &[&str],
    seed: u64,
    durability: Durability,
    after: impl Fn(&Path),
) -> PathBuf {
    make_dirty_mounted_with(dir, name, mkfs_opts, "", seed, durability, after)
}

/// Like [`make_dirty_then`], mounting with `mount_opts` (e.g. "data=journal").
pub fn make_dirty_mounted_with(
    dir: &Path,
    name: &str,
    mkfs_opts: &[&str],
    mount_opts: &str,
    seed: u64,
    durability: Durability,
    after: impl Fn(&Path),
) -> PathBuf {
    let img = dir.join(format!("{name}.live.img"));
    let dirty = dir.join(format!("{name}.dirty.img"));
    let mut mkfs = vec!["mkfs.ext4", "-q", "-F", "-b", "4096"];
    mkfs.extend_from_slice(mkfs_opts);
    oracle::make_image(&img, 256 << 20, &mkfs).expect("mkfs.ext4");
    let m = Mount::new(&img, 0, "ext4", mount_opts).expect("loop mount");
    let spec = WorkloadSpec {
        seed,
        files: 150,
        big_dir_entries: 1500,
        max_file_bytes: 2 << 20,
        ops: 300,
        fsync: durability != Durability::Syncfs,
    };
    let stats = oracle::run_workload(m.path(), &spec).expect("workload");
    assert!(stats.files_at_end > 100, "workload left {} files", stats.files_at_end);
    if durability != Durability::Fsync {
        let st = Command::new("sync").arg("-f").arg(m.path()).status().expect("sync -f");
        assert!(st.success(), "sync -f failed");
    }
    after(m.path());
    oracle::copy_sparse(&img, &dirty).expect("copy while mounted");
    m.unmount().expect("unmount");
    let _ = std::fs::remove_file(&img);
    dirty
}

/// The kernel's view of `dirty` after its own recovery: mount a second copy, manifest with hashes.
pub fn kernel_view(dirty: &Path) -> Vec<daxray::manifest::ManifestEntry> {
    let k = dirty.with_extension("kernel.img");
    oracle::copy_sparse(dirty, &k).expect("copy");
    let m = Mount::new(&k, 0, "ext4", "").expect("mount the second copy (kernel recovery)");
    let man = oracle::kernel_manifest(m.path(), true).expect("kernel manifest");
    m.unmount().expect("unmount");
    let _ = std::fs::remove_file(&k);
    man
}

/// Operations that ext4 commits as fast commits: append to some existing regular files and create
/// a few new ones in the root directory, each followed by fsync. Returns how many files it touched.
pub fn fast_commit_ops(root: &Path) -> usize {
    use std::io::Write;
    let mut files: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("read root")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut n = 0;
    for p in files.iter().take(10) {
        let mut f = std::fs::OpenOptions::new().append(true).open(p).expect("open for append");
        f.write_all(&[0x5a; 8192]).expect("append");
        f.sync_all().expect("fsync");
        n += 1;
    }
    for i in 0..5 {
        let p = root.join(format!("fc_new_{i}"));
        let mut f = std::fs::File::create(&p).expect("create");
        f.write_all(&vec![i as u8 + 1; 12288]).expect("write");
        f.sync_all().expect("fsync");
        n += 1;
    }
    n
}

/// Whether the live log of the journal in `img` wraps around the end of the journal.
pub fn live_log_wraps(img: &Path) -> bool {
    let Ok(i) = daxray::image::open(img, None) else { return false };
    let Ok(l) = daxray::jbd2::listing(i.fs_bytes.clone(), None, false) else { return false };
    let live: Vec<&serde_json::Value> = l.json["transactions"]
        .as_array()
        .map(|a| a.iter().filter(|t| t["live"] == true).collect())
        .unwrap_or_default();
    live.windows(2).any(|w| w[1]["first_block"].as_u64() < w[0]["first_block"].as_u64())
        || live.iter().any(|t| t["last_block"].as_u64() < t["first_block"].as_u64())
}

/// A crash image whose live log wraps around the end of a small (1024-block) journal: the seeded
/// workload with fsync, then small fsynced files one by one, copying the image every few fsyncs
/// until a copy's live log wraps (bounded). Panics if no copy wraps.
pub fn make_wrapped_dirty(dir: &Path, seed: u64, mkfs_opts: &[&str]) -> PathBuf {
    use std::io::Write;
    let img = dir.join("wrap.live.img");
    let dirty = dir.join("wrap.dirty.img");
    let mut mkfs = vec!["mkfs.ext4", "-q", "-F", "-b", "4096", "-J", "size=4"];
    mkfs.extend_from_slice(mkfs_opts);
    oracle::make_image(&img, 256 << 20, &mkfs).expect("mkfs.ext4");
    let m = Mount::new(&img, 0, "ext4", "").expect("loop mount");
    let spec = WorkloadSpec {
        seed,
        files: 120,
        big_dir_entries: 500,
        max_file_bytes: 1 << 20,
        ops: 200,
        fsync: true,
    };
    oracle::run_workload(m.path(), &spec).expect("workload");
    let sub = m.path().join("wrap");
    std::fs::create_dir_all(&sub).expect("mkdir");
    let mut found = false;
    for i in 0..600 {
        let mut f = std::fs::File::create(sub.join(format!("w{i}"))).expect("create");
        f.write_all(&vec![(i % 251) as u8; 4096 * (1 + i % 3)]).expect("write");
        f.sync_all().expect("fsync");
        if i % 8 == 7 {
            oracle::copy_sparse(&img, &dirty).expect("copy while mounted");
            if live_log_wraps(&dirty) {
                found = true;
                break;
            }
        }
    }
    m.unmount().expect("unmount");
    let _ = std::fs::remove_file(&img);
    assert!(found, "no crash copy had a live log wrapping the journal's end");
    dirty
}

/// Files whose every 4 KiB block starts with the jbd2 magic (big-endian 0xC03B3998), fsynced:
/// on a `data=journal` mount their logged copies must be escaped and restored at replay.
pub fn magic_files(root: &Path) -> usize {
    use std::io::Write;
    for i in 0..4u8 {
        let mut buf = vec![i ^ 0x33; 4096 * 6];
        for blk in buf.chunks_mut(4096) {
            blk[..4].copy_from_slice(&0xC03B_3998u32.to_be_bytes());
        }
        let mut f = std::fs::File::create(root.join(format!("magic_{i}"))).expect("create");
        f.write_all(&buf).expect("write");
        f.sync_all().expect("fsync");
    }
    4
}

/// Make a directory of 300 entries, fsync it, then remove it and fsync the parent: in ordered
/// mode the kernel revokes the freed directory blocks that are still in the live log.
pub fn revoke_ops(root: &Path) {
    let big = root.join("doomed");
    std::fs::create_dir_all(&big).expect("mkdir");
    for i in 0..300 {
        std::fs::write(big.join(format!("entry-with-a-longish-name-{i:05}")), b"x").expect("write");
    }
    std::fs::File::open(&big).expect("open").sync_all().expect("fsync dir");
    std::fs::remove_dir_all(&big).expect("rm -r");
    std::fs::File::open(root).expect("open root").sync_all().expect("fsync root");
}
