//! Remake the small fixtures in `fixtures/ext4/` and `fixtures/xfs/` (see `fixtures/README.md`):
//!
//! ```sh
//! cargo run --release --example make_fixtures -- fixtures     # as root
//! ```
//!
//! - `mkfs-d.img.gz`: `mkfs.ext4 -b 1024 -O inline_data -d TREE` of a seeded source tree (inline
//!   files, a sparse file, fast and slow symlinks, a hard link, a deep chain, a directory with
//!   300 entries). Made by mke2fs alone; the kernel never touched it.
//! - `kernel.img.gz`: `mkfs.ext4 -b 4096`, loop-mounted, the seeded workload of
//!   `daxray::oracle::run_workload` run through the kernel, unmounted (clean).
//! - `kernel-dirty.img.gz`: a copy of that image taken while it was still mounted, after the
//!   workload's fsyncs: committed jbd2 transactions that are not checkpointed (needs recovery).
//! - `xfs/kernel.img.gz` and `xfs/kernel-dirty.img.gz`: the same for a 32 MiB XFS (made with
//!   `mkfs.xfs -m reflink=0` with `TEST_DIR` set, which lets mkfs.xfs go below its 300 MiB
//!   minimum, as fstests does); the dirty copy has a log that needs recovery.
//!
//! The images are gzip-compressed (mtime 0 in the gzip header). Their contents differ from run to
//! run (mkfs picks uuids, the kernel stamps times), so tests compare them with oracles run at test
//! time, never with stored answers.

use daxray::oracle::{self, Mount, WorkloadSpec};
use flate2::{Compression, GzBuilder};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Compressed fixtures must stay below this.
const MAX_COMPRESSED: u64 = 2 << 20;

fn gzip(src: &Path, dst: &Path) -> std::io::Result<u64> {
    let data = std::fs::read(src)?;
    let out = std::fs::File::create(dst)?;
    let mut enc = GzBuilder::new().mtime(0).write(out, Compression::best());
    enc.write_all(&data)?;
    enc.finish()?.sync_all()?;
    Ok(std::fs::metadata(dst)?.len())
}

fn random(rng: &mut ChaCha8Rng, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rng.fill(&mut v[..]);
    v
}

/// The seeded source tree for `mkfs.ext4 -d`.
fn source_tree(root: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut rng = ChaCha8Rng::seed_from_u64(20261128);
    std::fs::create_dir_all(root.join("docs"))?;
    std::fs::write(root.join("docs/hello.txt"), b"hello, pmem\n")?;
    std::fs::write(root.join("docs/empty"), b"")?;
    for i in 0..8 {
        // Up to 56 bytes: these become inline data.
        let n = rng.random_range(1..57usize);
        std::fs::write(root.join(format!("docs/tiny{i}")), random(&mut rng, n))?;
    }
    std::fs::write(root.join("medium.bin"), random(&mut rng, 10_000))?;
    std::fs::write(root.join("large.bin"), random(&mut rng, 300 << 10))?;
    let sparse = std::fs::File::create(root.join("sparse.bin"))?;
    sparse.write_all_at(&random(&mut rng, 4096), 0)?;
    sparse.write_all_at(&random(&mut rng, 5000), 1 << 20)?;
    sparse.set_len(3 << 20)?;
    std::os::unix::fs::symlink("docs/hello.txt", root.join("fast-link"))?;
    std::os::unix::fs::symlink(format!("{}docs/hello.txt", "../".repeat(30)), root.join("slow-link"))?;
    std::fs::hard_link(root.join("medium.bin"), root.join("docs/medium-hardlink"))?;
    let mut deep = root.join("deep");
    for l in 0..12 {
        deep = deep.join(format!("level{l}"));
    }
    std::fs::create_dir_all(&deep)?;
    std::fs::write(deep.join("bottom.txt"), b"at the bottom\n")?;
    std::fs::create_dir(root.join("many"))?;
    for i in 0..300 {
        let n = rng.random_range(0..100usize);
        std::fs::write(root.join(format!("many/entry-{i:04}-{}", "x".repeat(i % 23))), random(&mut rng, n))?;
    }
    Ok(())
}

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fixtures".into()));
    let out = root.join("ext4");
    if let Err(e) = oracle::require(&["mkfs.ext4", "mkfs.xfs", "losetup", "mount", "umount"], true) {
        eprintln!("make_fixtures: {e}");
        std::process::exit(2);
    }
    std::fs::create_dir_all(&out).expect("output folder");
    let tmp = tempfile::tempdir().expect("temporary folder");
    let mut made = Vec::new();

    // 1. mkfs.ext4 -d
    let tree = tmp.path().join("tree");
    source_tree(&tree).expect("source tree");
    let img = tmp.path().join("mkfs-d.img");
    let tree_s = tree.to_str().expect("UTF-8 temp path");
    oracle::make_image(&img, 8 << 20, &["mkfs.ext4", "-q", "-b", "1024", "-O", "inline_data", "-d", tree_s])
        .expect("mkfs.ext4 -d");
    made.push(("mkfs-d.img.gz", img));

    // 2. and 3. the kernel: workload, crash copy while mounted, clean unmount.
    let img = tmp.path().join("kernel.img");
    oracle::make_image(&img, 32 << 20, &["mkfs.ext4", "-q", "-b", "4096"]).expect("mkfs.ext4");
    let dirty = tmp.path().join("kernel-dirty.img");
    {
        let m = Mount::new(&img, 0, "ext4", "").expect("loop mount");
        let spec = WorkloadSpec {
            seed: 20261128,
            files: 30,
            big_dir_entries: 400,
            max_file_bytes: 40 << 10,
            ops: 120,
            fsync: true,
        };
        let st = oracle::run_workload(m.path(), &spec).expect("workload");
        eprintln!("workload: {st:?}");
        oracle::copy_sparse(&img, &dirty).expect("crash copy");
        m.unmount().expect("unmount");
    }
    made.push(("kernel.img.gz", img));
    made.push(("kernel-dirty.img.gz", dirty));

    // 4. and 5. XFS: the same, small (fuzzing and quick tests; the 300 MiB ones are made at test
    // time).
    let xout = root.join("xfs");
    std::fs::create_dir_all(&xout).expect("output folder");
    let ximg = tmp.path().join("xfs-kernel.img");
    std::fs::File::create(&ximg).and_then(|f| f.set_len(32 << 20)).expect("sparse file");
    oracle::run(
        "env",
        &[
            "TEST_DIR=1",
            "TEST_DEV=1",
            "QA_CHECK_FS=1",
            "mkfs.xfs",
            "-q",
            "-f",
            "-m",
            "reflink=0",
            ximg.to_str().expect("UTF-8"),
        ],
        std::time::Duration::from_secs(120),
    )
    .expect("mkfs.xfs");
    let xdirty = tmp.path().join("xfs-kernel-dirty.img");
    {
        let m = Mount::new(&ximg, 0, "xfs", "").expect("loop mount");
        let spec = WorkloadSpec {
            seed: 20261129,
            files: 30,
            big_dir_entries: 400,
            max_file_bytes: 40 << 10,
            ops: 120,
            fsync: true,
        };
        let st = oracle::run_workload(m.path(), &spec).expect("workload");
        eprintln!("xfs workload: {st:?}");
        oracle::copy_sparse(&ximg, &xdirty).expect("crash copy");
        m.unmount().expect("unmount");
    }
    let made: Vec<(PathBuf, PathBuf)> = made
        .into_iter()
        .map(|(n, p)| (out.join(n), p))
        .chain([(xout.join("kernel.img.gz"), ximg), (xout.join("kernel-dirty.img.gz"), xdirty)])
        .collect();

    for (dst, img) in made {
        let name = dst.display().to_string();
        let n = gzip(&img, &dst).expect("gzip");
        eprintln!("{}: {n} bytes compressed", dst.display());
        assert!(n < MAX_COMPRESSED, "{name} is {n} bytes compressed; keep fixtures under 2 MiB");
    }
}
