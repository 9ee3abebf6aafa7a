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
    let spec = WorkloadSpec {
        seed,
        files: 150,
        big_dir_entries: 1500,
        max_file_bytes: 2 << 20,
        ops: 300,
        fsync: durability != Durability::Syncfs,
    };
    oracle::crash_copy(&img, "ext4", mount_opts, &dirty, |root| {
        let stats = oracle::run_workload(root, &spec)?;
        assert!(stats.files_at_end > 100, "workload left {} files", stats.files_at_end);
        if durability != Durability::Fsync {
            let st = Command::new("sync").arg("-f").arg(root).status().expect("sync -f");
            assert!(st.success(), "sync -f failed");
        }
        after(root);
        Ok(())
    })
    .expect("crash copy");
    let _ = std::fs::remove_file(&img);
    dirty
}

/// The kernel's view of `dirty` after its own recovery: mount a second copy, manifest with hashes.
pub fn kernel_view(dirty: &Path) -> Vec<daxray::manifest::ManifestEntry> {
    oracle::recovered_manifest(dirty, "ext4", "", &dirty.with_extension("kernel.img"), true)
        .expect("the kernel's recovery of a second copy")
}

/// What [`fast_commit_ops`] did.
#[derive(Debug, Default, Clone)]
pub struct FcOps {
    /// Appends.
    pub appends: usize,
    /// New files (in existing and in new directories).
    pub creates: usize,
    /// New directories.
    pub mkdirs: usize,
    /// Unlinks.
    pub unlinks: usize,
    /// Renames of files (same or other directory).
    pub renames: usize,
    /// Hard links.
    pub links: usize,
    /// Truncates (shrink and grow).
    pub truncates: usize,
    /// fallocate calls (plain, KEEP_SIZE).
    pub fallocates: usize,
    /// Punched holes.
    pub punches: usize,
    /// Overwrites inside a file.
    pub overwrites: usize,
}

impl FcOps {
    /// All operations.
    pub fn total(&self) -> usize {
        self.appends
            + self.creates
            + self.mkdirs
            + self.unlinks
            + self.renames
            + self.links
            + self.truncates
            + self.fallocates
            + self.punches
            + self.overwrites
    }
}

fn regular_files(root: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    let Ok(rd) = std::fs::read_dir(root) else { return };
    let mut v: Vec<_> = rd.filter_map(|e| e.ok()).collect();
    v.sort_by_key(|e| e.path());
    for e in v {
        let Ok(t) = e.file_type() else { continue };
        if t.is_file() {
            out.push(e.path());
        } else if t.is_dir() && depth < 8 && e.file_name() != "lost+found" {
            regular_files(&e.path(), out, depth + 1);
        }
    }
}

/// Operations that ext4 commits as fast commits, each followed by fsync (of the file, or of the
/// parent directory for namespace changes), chosen with `seed`: appends, overwrites, new files
/// (in existing and new directories), new directories, unlinks, renames, hard links, truncates
/// (shrink and grow), fallocate (plain and KEEP_SIZE) and punched holes.
pub fn fast_commit_ops(root: &Path, seed: u64) -> FcOps {
    use rand::{RngExt, SeedableRng};
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xfa57_c0de);
    let mut files = Vec::new();
    regular_files(root, &mut files, 0);
    // Files inside the one large directory are many; keep a mix.
    files.retain(|p| !p.starts_with(root.join("big")) || rng.random_range(0..20) == 0);
    assert!(files.len() > 20, "the workload left only {} files", files.len());
    let mut ops = FcOps::default();
    fn pick(rng: &mut rand_chacha::ChaCha8Rng, files: &mut Vec<PathBuf>) -> PathBuf {
        let i = rng.random_range(0..files.len());
        files.swap_remove(i)
    }
    /// Pick a file, open it for writing and let `op` change it, given the file's length; `op`
    /// says whether it changed anything, and a change is fsynced.
    fn edit(
        rng: &mut rand_chacha::ChaCha8Rng,
        files: &mut Vec<PathBuf>,
        op: impl FnOnce(&mut rand_chacha::ChaCha8Rng, &std::fs::File, u64) -> bool,
    ) -> bool {
        let p = pick(rng, files);
        let f = std::fs::OpenOptions::new().write(true).open(&p).expect("open");
        let len = f.metadata().expect("stat").len();
        let changed = op(rng, &f, len);
        if changed {
            f.sync_all().expect("fsync");
        }
        changed
    }
    let bs = 4096u64;
    let debug = |what: &str| {
        if std::env::var_os("DAXRAY_FC_DEBUG").is_none() {
            return;
        }
        for e in std::fs::read_dir("/proc/fs/ext4").into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with("loop") {
                let t = std::fs::read_to_string(e.path().join("fc_info")).unwrap_or_default();
                let t: Vec<&str> = t.lines().filter(|l| !l.ends_with(":\t0") && !l.ends_with(" 0")).collect();
                eprintln!("after {what}: {}", t.join(" | "));
            }
        }
    };
    // Appends and overwrites.
    for _ in 0..8 {
        let p = pick(&mut rng, &mut files);
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).expect("open for append");
        let n = rng.random_range(1..6) * 4096 + rng.random_range(0..4096);
        f.write_all(&vec![rng.random::<u8>(); n]).expect("append");
        f.sync_all().expect("fsync");
        ops.appends += 1;
    }
    for _ in 0..4 {
        edit(&mut rng, &mut files, |rng, f, len| {
            let off = if len > 0 { rng.random_range(0..len) } else { 0 };
            f.write_all_at(&vec![rng.random::<u8>(); 5000], off).expect("overwrite");
            true
        });
        ops.overwrites += 1;
    }
    debug("appends/overwrites");
    // Truncates: shrink, and grow (a hole at the end).
    for k in 0..6 {
        edit(&mut rng, &mut files, |rng, f, len| {
            let to = if k % 2 == 0 { len / 3 } else { len + rng.random_range(1..40) * bs + 123 };
            f.set_len(to).expect("truncate");
            true
        });
        ops.truncates += 1;
    }
    debug("truncates");
    // fallocate (plain grows the size, KEEP_SIZE does not) and punched holes.
    for k in 0..4 {
        edit(&mut rng, &mut files, |rng, f, len| {
            let mode = if k % 2 == 0 { 0 } else { libc::FALLOC_FL_KEEP_SIZE };
            daxray::sys::fallocate(f, mode, len.div_ceil(bs) * bs, rng.random_range(1..16) * bs)
                .expect("fallocate");
            true
        });
        ops.fallocates += 1;
    }
    debug("fallocate");
    for _ in 0..4 {
        let punched = edit(&mut rng, &mut files, |rng, f, len| {
            if len < 3 * bs {
                return false;
            }
            let off = rng.random_range(0..len / bs - 1) * bs;
            let punch = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
            daxray::sys::fallocate(f, punch, off, rng.random_range(1..4) * bs).expect("punch hole");
            true
        });
        if punched {
            ops.punches += 1;
        }
    }
    debug("punch");
    // Unlinks, renames (same directory, and into another one), hard links.
    // Directories are never fsynced: an fsync of a changed directory makes a full commit, which
    // empties the fast-commit area. The fsync of a changed file commits every queued entry change.
    let carrier = pick(&mut rng, &mut files);
    let carry = |rng: &mut rand_chacha::ChaCha8Rng| {
        let mut f = std::fs::OpenOptions::new().append(true).open(&carrier).expect("open for append");
        f.write_all(&vec![rng.random::<u8>(); 3000]).expect("append");
        f.sync_all().expect("fsync");
    };
    for _ in 0..5 {
        let p = pick(&mut rng, &mut files);
        std::fs::remove_file(&p).expect("unlink");
        ops.unlinks += 1;
    }
    carry(&mut rng);
    debug("unlinks");
    for k in 0..4 {
        let p = pick(&mut rng, &mut files);
        let to = if k % 2 == 0 {
            p.with_file_name(format!("fc_renamed_{k}"))
        } else {
            root.join(format!("fc_moved_{k}"))
        };
        std::fs::rename(&p, &to).expect("rename");
        std::fs::File::open(&to).expect("open").sync_all().expect("fsync renamed");
        ops.renames += 1;
    }
    debug("renames");
    for k in 0..3 {
        let p = pick(&mut rng, &mut files);
        let to = root.join(format!("fc_link_{k}"));
        std::fs::hard_link(&p, &to).expect("link");
        std::fs::File::open(&to).expect("open").sync_all().expect("fsync link");
        ops.links += 1;
    }
    debug("links");
    // Renames over existing files (the target's inode loses its name), dropping one of two
    // names, a truncate to nothing then new data, and a file created then removed again.
    for _ in 0..2 {
        let p = pick(&mut rng, &mut files);
        let over = pick(&mut rng, &mut files);
        std::fs::rename(&p, &over).expect("rename over");
        std::fs::File::open(&over).expect("open").sync_all().expect("fsync renamed");
        ops.renames += 1;
    }
    {
        let l = root.join("fc_link_0");
        std::fs::remove_file(&l).expect("unlink one of two names");
        ops.unlinks += 1;
        let p = pick(&mut rng, &mut files);
        let mut f = std::fs::OpenOptions::new().write(true).truncate(true).open(&p).expect("open truncate");
        f.write_all(&vec![rng.random::<u8>(); 9000]).expect("write");
        f.sync_all().expect("fsync");
        ops.truncates += 1;
        let t = root.join("fc_short_lived");
        std::fs::write(&t, vec![7u8; 10000]).expect("create");
        std::fs::File::open(&t).expect("open").sync_all().expect("fsync");
        std::fs::remove_file(&t).expect("unlink");
        ops.creates += 1;
        ops.unlinks += 1;
        carry(&mut rng);
    }
    // New files in the root, and new directories with files in them.
    let mut dirs = vec![root.to_path_buf()];
    for d in 0..2 {
        let nd = root.join(format!("fc_dir_{d}"));
        std::fs::create_dir(&nd).expect("mkdir");
        dirs.push(nd);
        ops.mkdirs += 1;
    }
    debug("mkdirs");
    for i in 0..8 {
        let d = &dirs[i % dirs.len()];
        let p = d.join(format!("fc_new_{i}"));
        let mut f = std::fs::File::create(&p).expect("create");
        let n = rng.random_range(0..8) * 4096 + rng.random_range(1..4096);
        f.write_all(&vec![i as u8 + 1; n]).expect("write");
        f.sync_all().expect("fsync");
        ops.creates += 1;
    }
    debug("creates");
    ops
}

/// Whether the live log of the journal in `img` wraps around the end of the journal.
pub fn live_log_wraps(img: &Path) -> bool {
    let Ok(i) = daxray::open::open_image(img, &Default::default()) else { return false };
    let Ok(l) = daxray::cli::listing::ext4(i.fs_bytes.clone(), None, false) else { return false };
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
