//! XFS against the kernel: images made by mkfs.xfs, populated by the kernel (loop mount, a
//! seeded workload plus deliberate fragmentation), then every file read by daxray must equal
//! what the kernel shows (stat size, FIEMAP extents, sha256 of the contents).

mod common;
mod xfs_common;

use daxray::fs::{FileSystem, FileType};
use daxray::image::MmapSource;
use daxray::oracle::{self, Mount, WorkloadSpec};
use daxray::xfs::Xfs;
use daxray::xfs::dir::DirForm;
use daxray::xfs::inode::Fork;
use std::path::Path;
use std::sync::Arc;
use xfs_common::*;

const SIZE: u64 = 320 << 20;

struct Shape {
    files: usize,
    btree_forks: usize,
    multilevel_bmbt: Vec<u64>,
    node_dirs: Vec<u64>,
    leaf_dirs: usize,
    block_dirs: usize,
    unwritten_extents: usize,
    attr_extent_forks: usize,
}

/// Count what the parser sees: btree forks, bmbt depths, directory forms.
fn shape(fs: &Xfs) -> Shape {
    let mut errs = vec![];
    let all = daxray::fs::walk(fs, "/", &mut errs).expect("walk");
    assert!(errs.is_empty(), "walk errors: {errs:?}");
    let mut s = Shape {
        files: 0,
        btree_forks: 0,
        multilevel_bmbt: vec![],
        node_dirs: vec![],
        leaf_dirs: 0,
        block_dirs: 0,
        unwritten_extents: 0,
        attr_extent_forks: 0,
    };
    for e in &all {
        let ino = fs.inode(e.ino).expect("inode");
        if let Some(l) = fs.bmbt_root_level(&ino, Fork::Data) {
            s.btree_forks += 1;
            if l >= 2 {
                s.multilevel_bmbt.push(e.ino);
            }
        }
        if ino.fork_format(Fork::Attr).is_some_and(|f| f >= daxray::xfs::inode::FMT_EXTENTS) {
            let (recs, _) = fs.fork_records(&ino, Fork::Attr).expect("attr fork");
            if !recs.is_empty() {
                s.attr_extent_forks += 1;
            }
        }
        match e.file_type {
            FileType::File => {
                s.files += 1;
                s.unwritten_extents += fs.map(e.ino).expect("map").iter().filter(|x| x.unwritten).count();
            }
            FileType::Dir => match fs.dir_form(&ino).expect("dir form") {
                DirForm::Node => s.node_dirs.push(e.ino),
                DirForm::Leaf => s.leaf_dirs += 1,
                DirForm::Block => s.block_dirs += 1,
                DirForm::Shortform => {}
            },
            _ => {}
        }
    }
    s
}

/// Populate through the kernel. False when the running kernel refuses to mount the variant
/// (v4 XFS is compiled out of recent kernels: CONFIG_XFS_SUPPORT_V4).
fn populate(img: &Path, seed: u64, v4: bool) -> bool {
    let m = match Mount::new(img, 0, "xfs", "") {
        Ok(m) => m,
        Err(e) if v4 => {
            eprintln!("the running kernel does not mount v4 XFS ({e}); v4 is covered by tests/xfs_db.rs");
            return false;
        }
        Err(e) => panic!("mount: {e}"),
    };
    let spec = WorkloadSpec {
        seed,
        files: 300,
        big_dir_entries: 2500,
        max_file_bytes: 1 << 20,
        ops: 600,
        fsync: true,
    };
    let st = oracle::run_workload(m.path(), &spec).expect("workload");
    eprintln!("seed {seed}: workload {st:?}");
    let made = fragment(m.path(), seed, 3000 + seed % 1000, 24, 3000);
    assert!(made.len() > 20);
    m.unmount().expect("unmount");
    true
}

fn compare(img: &Path, seed: u64, label: &str) -> (usize, Shape) {
    // the kernel's view (read-only mount of the clean image)
    let m = Mount::new(img, 0, "xfs", "ro").expect("mount ro");
    let kernel = oracle::kernel_manifest(m.path(), true).expect("kernel manifest");
    let links = kernel_symlinks(m.path());
    m.unmount().expect("unmount");
    let src = MmapSource::open(img).expect("mmap");
    let fs = Xfs::open(Arc::new(src)).expect("open xfs");
    let (ours, errs) = daxray::manifest::build(&fs, true).expect("manifest");
    assert!(errs.is_empty(), "{label} seed {seed}: path errors {errs:?}");
    let n = oracle::compare_manifests(&ours, &kernel)
        .unwrap_or_else(|d| panic!("{label} seed {seed}: daxray differs from the kernel:\n{d}"));
    assert_eq!(n, kernel.len());
    // symlink targets, local and remote, equal what the kernel's readlink gives
    let mut remote = 0;
    for (path, target) in &links {
        let ino = daxray::fs::lookup(&fs, path).unwrap_or_else(|e| panic!("{label}: lookup {path}: {e}"));
        let ours = fs.read_link(ino).unwrap_or_else(|e| panic!("{label}: readlink {path}: {e}"));
        assert_eq!(&ours, target, "{label}: symlink {path}");
        if fs.inode(ino).expect("inode").core.format != daxray::xfs::inode::FMT_LOCAL {
            remote += 1;
        }
    }
    assert!(links.len() >= 40 && remote >= 10, "{label}: {} symlinks, {remote} remote", links.len());
    let bad: Vec<_> =
        fs.findings().into_iter().filter(|f| f.severity == daxray::error::Severity::Error).collect();
    assert!(bad.is_empty(), "{label} seed {seed}: findings on a clean image: {bad:?}");
    (n, shape(&fs))
}

/// The kernel-made fsdax namespace header (fixtures/pmem, written by a guest kernel).
fn pfn_fixture() -> Option<Vec<u8>> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pmem/pfn-info-512M.bin");
    std::fs::read(p).ok()
}

/// Wrap `img` as a 512 MiB fsdax namespace: zeros, the kernel's NVDIMM_PFN_INFO block at
/// byte 4096, the file system at `dataoff` (10 MiB). Only non-zero MiB chunks are written.
fn wrap_fsdax(img: &Path, out: &Path, pfn: &[u8]) -> u64 {
    use std::io::{Read, Seek, SeekFrom, Write};
    let dataoff = 10u64 << 20;
    let mut o = std::fs::File::create(out).expect("create wrapped");
    o.set_len(512 << 20).expect("set_len");
    o.seek(SeekFrom::Start(4096)).expect("seek");
    o.write_all(pfn).expect("write pfn");
    let mut i = std::fs::File::open(img).expect("open image");
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    loop {
        let n = i.read(&mut buf).expect("read image");
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|b| *b != 0) {
            o.seek(SeekFrom::Start(dataoff + pos)).expect("seek");
            o.write_all(&buf[..n]).expect("write");
        }
        pos += n as u64;
    }
    dataoff
}

/// The same manifest through the whole pipeline (namespace detection, recovery, model) on the
/// image wrapped in a kernel-made fsdax namespace; the kernel mounts the namespace's data part.
fn compare_fsdax(img: &Path, pfn: &[u8], label: &str) -> usize {
    let wrapped = img.with_extension("ns.img");
    let dataoff = wrap_fsdax(img, &wrapped, pfn);
    let m = Mount::new(&wrapped, dataoff, "xfs", "ro").expect("mount namespace data at dataoff");
    let kernel = oracle::kernel_manifest(m.path(), true).expect("kernel manifest");
    m.unmount().expect("unmount");
    let opened = daxray::open::open(&wrapped, &daxray::open::OpenOptions::default()).expect("open namespace");
    assert_eq!(opened.placement().location.fs_offset, dataoff, "{label}: namespace not detected");
    assert_eq!(opened.placement().location.found_by, "fsdax namespace");
    let (ours, errs) = daxray::manifest::build(&*opened.fs, true).expect("manifest");
    assert!(errs.is_empty(), "{label} (fsdax): {errs:?}");
    let n = oracle::compare_manifests(&ours, &kernel)
        .unwrap_or_else(|d| panic!("{label} (fsdax): daxray differs from the kernel:\n{d}"));
    std::fs::remove_file(&wrapped).ok();
    n
}

#[test]
fn kernel_made_xfs_matches_kernel() {
    if !need(&["mkfs.xfs", "xfs_db", "losetup", "mount", "umount"], true) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let seeds = seeds(2);
    let mut variants: Vec<(String, u64, Vec<&str>)> = vec![];
    for (k, s) in seeds.iter().enumerate() {
        variants.push((format!("v5-{k}"), *s, vec!["mkfs.xfs", "-q", "-f"]));
    }
    let s0 = seeds[0] + 7;
    variants.push(("v4".into(), s0, vec!["mkfs.xfs", "-q", "-f", "-m", "crc=0"]));
    variants.push((
        "v4-noftype".into(),
        s0 + 1,
        vec!["mkfs.xfs", "-q", "-f", "-m", "crc=0", "-n", "ftype=0"],
    ));
    variants.push((
        "v5-1k-dirblk8k".into(),
        s0 + 2,
        vec!["mkfs.xfs", "-q", "-f", "-b", "size=1024", "-n", "size=8192"],
    ));
    let mut total = 0;
    let mut multilevel = 0;
    let mut nodes = 0;
    for (label, seed, mkfs) in &variants {
        let img = dir.path().join(format!("{label}.img"));
        if let Err(e) = oracle::make_image(&img, SIZE, mkfs) {
            // the v4 variants: a future mkfs.xfs may refuse crc=0; say so, do not hide it
            assert!(label.starts_with("v4"), "{label}: mkfs failed: {e}");
            eprintln!("{label}: mkfs.xfs refused ({e}); variant skipped");
            continue;
        }
        if !populate(&img, *seed, label.starts_with("v4")) {
            std::fs::remove_file(&img).ok();
            continue;
        }
        let (n, sh) = compare(&img, *seed, label);
        eprintln!(
            "{label} seed {seed}: {n} files equal to the kernel; btree forks {}, multi-level bmbt {}, \
             node dirs {}, leaf dirs {}, block dirs {}, unwritten extents {}, attr forks with extents {}",
            sh.btree_forks,
            sh.multilevel_bmbt.len(),
            sh.node_dirs.len(),
            sh.leaf_dirs,
            sh.block_dirs,
            sh.unwritten_extents,
            sh.attr_extent_forks
        );
        assert!(n >= 300, "{label}: only {n} files compared");
        assert!(sh.btree_forks > 0, "{label}: no btree-format fork was produced");
        assert!(!sh.multilevel_bmbt.is_empty(), "{label}: no bmbt with interior blocks");
        assert!(!sh.node_dirs.is_empty(), "{label}: no node-format directory");
        assert!(sh.unwritten_extents > 0, "{label}: no unwritten extents");
        assert!(sh.leaf_dirs > 0, "{label}: no leaf-form directory");
        assert!(sh.attr_extent_forks >= 4, "{label}: {} attr forks with extents", sh.attr_extent_forks);
        // xfs_db agrees on the shapes
        let ino = sh.multilevel_bmbt[0];
        let db = xfs_db_print(&img, &[&format!("inode {ino}")]);
        assert!(db["core.format"].starts_with("3"), "xfs_db: inode {ino} format {}", db["core.format"]);
        let lvl = db.get("u3.bmbt.level").or(db.get("u.bmbt.level")).expect("xfs_db bmbt level");
        assert!(parse_num(lvl) >= 2, "xfs_db: inode {ino} bmbt level {lvl}");
        let d = sh.node_dirs[0];
        let bm = xfs_db(&img, &[&format!("inode {d}"), "bmap"]);
        let bs: u64 = if label.contains("1k") { 1024 } else { 4096 };
        let free_fsb = (64u64 << 30) / bs;
        let has_free = bm.lines().any(|l| {
            l.split_whitespace().nth(2).and_then(|o| o.parse::<u64>().ok()).is_some_and(|o| o >= free_fsb)
        });
        assert!(has_free, "xfs_db bmap of node dir {d} shows no free-index block:\n{bm}");
        if label == "v5-0" {
            match pfn_fixture() {
                Some(pfn) => {
                    let m = compare_fsdax(&img, &pfn, label);
                    eprintln!("{label} seed {seed}: inside a kernel-made fsdax namespace: {m} files equal");
                    assert_eq!(m, n);
                }
                None => panic!("fixtures/pmem/pfn-info-512M.bin is missing (made by the vm worker)"),
            }
        }
        // the disk is shared: drop each image as soon as it is checked
        std::fs::remove_file(&img).ok();
        total += n;
        multilevel += sh.multilevel_bmbt.len();
        nodes += sh.node_dirs.len();
    }
    eprintln!("total: {total} files equal; {multilevel} multi-level bmbts; {nodes} node dirs");
    assert!(total > 0);
}
