//! Damaged XFS images (copies of kernel-made ones, never the original): a corrupted bmbt block
//! or directory block must give a finding or an error naming that block, never a panic; random
//! damage to metadata must never panic or hang.

mod common;
mod xfs_common;

use daxray::error::{Error, Severity};
use daxray::fs::FileSystem;
use daxray::image::{BlockSource, MmapSource, Overlay};
use daxray::oracle::{self, Mount};
use daxray::xfs::Xfs;
use daxray::xfs::inode::Fork;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use xfs_common::*;

fn open(path: &Path) -> Xfs {
    Xfs::open(Arc::new(MmapSource::open(path).expect("mmap"))).expect("open xfs")
}

fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).expect("open copy");
    f.seek(SeekFrom::Start(offset)).expect("seek");
    f.write_all(bytes).expect("write copy");
}

/// A kernel-made v5 image with a multi-level bmbt file and a node directory.
fn make(dir: &Path) -> std::path::PathBuf {
    let img = dir.join("base.img");
    oracle::make_image(&img, 320 << 20, &["mkfs.xfs", "-q", "-f"]).expect("mkfs");
    let m = Mount::new(&img, 0, "xfs", "").expect("mount");
    fragment(m.path(), seeds(1)[0], 3000, 4, 2000);
    m.unmount().expect("unmount");
    img
}

#[test]
fn corrupt_bmbt_and_dir_blocks_are_named() {
    if !need(&["mkfs.xfs", "losetup", "mount"], true) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let base = make(dir.path());
    let fs = open(&base);
    assert!(fs.findings().iter().all(|f| f.severity != Severity::Error), "{:?}", fs.findings());
    let sparse = daxray::fs::lookup(&fs, "/frag/sparse").expect("lookup");
    let ino = fs.inode(sparse).expect("inode");
    let (recs, blocks) = fs.fork_records(&ino, Fork::Data).expect("records");
    assert!(recs.len() > 1000 && blocks.len() > 2, "{} recs, {} bmbt blocks", recs.len(), blocks.len());
    let leaf = blocks.iter().find(|b| b.level == 0).expect("a bmbt leaf").block;
    let bs = u64::from(fs.block_size());
    let names = daxray::fs::lookup(&fs, "/names").expect("lookup names");
    let nmap = fs.map(names).expect("map names");
    let dext = nmap.iter().find(|e| e.logical < (32 << 30) / bs && e.length >= 1).expect("a data block");
    let dblk = dext.physical + dext.length - 1;
    drop(fs);

    // 1. a flipped byte inside bmbt leaf records: crc finding naming the block
    let c1 = dir.path().join("c1.img");
    oracle::copy_sparse(&base, &c1).expect("copy");
    patch(&c1, leaf * bs + 200, &[0x5a, 0xa5]);
    let fs = open(&c1);
    let _ = fs.map(sparse);
    let f = fs.findings();
    assert!(
        f.iter()
            .any(|f| f.structure == "xfs bmbt block" && f.block == Some(leaf) && f.message.contains("crc")),
        "no crc finding naming bmbt block {leaf}: {f:?}"
    );

    // 2. the bmbt block's magic destroyed: map fails with an error naming the block
    let c2 = dir.path().join("c2.img");
    oracle::copy_sparse(&base, &c2).expect("copy");
    patch(&c2, leaf * bs, b"JUNK");
    let fs = open(&c2);
    match fs.map(sparse) {
        Err(Error::Corrupt { structure, block, .. }) => {
            assert_eq!(structure, "xfs bmbt block");
            assert_eq!(block, leaf);
        }
        other => panic!("expected a corrupt bmbt block error, got {other:?}"),
    }
    // manifest goes on past the damaged file and names it
    let (entries, errs) = daxray::manifest::build(&fs, true).expect("manifest");
    assert!(entries.len() > 100);
    assert!(errs.iter().any(|(p, _)| p == "/frag/sparse"), "{errs:?}");

    // 3. a flipped byte inside a directory data block: crc finding naming the block
    let c3 = dir.path().join("c3.img");
    oracle::copy_sparse(&base, &c3).expect("copy");
    patch(&c3, dblk * bs + 300, b"\x01");
    let fs = open(&c3);
    let _ = fs.read_dir(names);
    let f = fs.findings();
    assert!(
        f.iter().any(|f| f.structure == "xfs directory block"
            && f.block == Some(dblk)
            && f.message.contains("crc")),
        "no crc finding naming directory block {dblk}: {f:?}"
    );

    // 4. the directory block's magic destroyed: an error naming the block
    let c4 = dir.path().join("c4.img");
    oracle::copy_sparse(&base, &c4).expect("copy");
    patch(&c4, dblk * bs, b"JUNK");
    let fs = open(&c4);
    match fs.read_dir(names) {
        Err(Error::Corrupt { structure, block, .. }) => {
            assert_eq!(structure, "xfs directory block");
            assert_eq!(block, dblk);
        }
        other => panic!("expected a corrupt directory block error, got {:?}", other.map(|v| v.len())),
    }
    // the original was never written
    let fs = open(&base);
    assert!(fs.map(sparse).is_ok() && fs.read_dir(names).is_ok());
    assert!(fs.findings().iter().all(|f| f.severity != Severity::Error));
}

#[test]
fn random_metadata_damage_never_panics() {
    if !need(&["mkfs.xfs", "losetup", "mount"], true) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let base = make(dir.path());
    let src: Arc<dyn BlockSource> = Arc::new(MmapSource::open(&base).expect("mmap"));
    let fs = open(&base);
    // the metadata blocks: inode clusters, bmbt and directory blocks actually used
    let mut errs = vec![];
    let all = daxray::fs::walk(&fs, "/", &mut errs).expect("walk");
    let bs = u64::from(fs.block_size());
    let mut targets: Vec<u64> = vec![0];
    for e in all.iter().step_by(7) {
        let ino = fs.inode(e.ino).expect("inode");
        targets.push(ino.offset);
        if let Ok((_, blocks)) = fs.fork_records(&ino, Fork::Data) {
            targets.extend(blocks.iter().map(|b| b.block * bs));
        }
        if e.file_type == daxray::fs::FileType::Dir
            && let Ok(m) = fs.map(e.ino)
        {
            targets.extend(m.iter().take(4).map(|x| x.physical * bs));
        }
    }
    drop(fs);
    assert!(targets.len() > 100);
    let mut x = seeds(1)[0] | 1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut errors_seen = 0;
    for round in 0..12 {
        let mut ov = Overlay::new(src.clone(), 512, format!("fuzz {round}")).expect("overlay");
        for _ in 0..300 {
            let t = targets[(rnd() % targets.len() as u64) as usize];
            let off = t + rnd() % bs;
            let v = [(rnd() & 0xff) as u8];
            ov.write_bytes(off, &v).expect("overlay write");
        }
        let fs = match Xfs::open(Arc::new(ov)) {
            Ok(f) => f,
            Err(_) => {
                errors_seen += 1;
                continue;
            }
        };
        let mut errs = vec![];
        if let Ok(all) = daxray::fs::walk(&fs, "/", &mut errs) {
            for e in all.iter().take(4000) {
                let _ = fs.stat(e.ino);
                let _ = fs.map(e.ino);
                let _ = fs.read_link(e.ino);
                let _ = fs.read(e.ino, 0, 8192);
            }
        }
        errors_seen += errs.len() + fs.findings().len();
    }
    assert!(errors_seen > 0, "300 random byte changes x 12 went unnoticed");
    eprintln!("random damage: {errors_seen} errors/findings, no panic");
}
