//! Hostile input: images made by mkfs.ext4 (several formats), with seeded random damage in their
//! metadata area, must open or fail with an error, and every accessor must return (value or
//! error) without panicking or hanging. Damage that hits a checksummed structure must show up:
//! across all mutations of metadata_csum images, daxray must report checksum findings.

mod common;

use daxray::FileSystem;
use daxray::ext4::Ext4;
use daxray::fs::FileType;
use daxray::image::{BlockSource, MemSource};
use std::process::Command;
use std::sync::Arc;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Exercise everything; returns the number of operations that returned an error.
fn exercise(fs: &Ext4) -> usize {
    let mut errors = 0;
    let mut walk_errs = Vec::new();
    let _ = daxray::fs::walk(fs, "/", &mut walk_errs);
    errors += walk_errs.len();
    let count = u64::from(fs.superblock().raw.s_inodes_count.get()).min(4096);
    for ino in 1..=count {
        let Ok(st) = fs.stat(ino) else {
            errors += 1;
            continue;
        };
        errors += fs.map(ino).is_err() as usize;
        errors += fs.read(ino, 0, 64 << 10).is_err() as usize;
        errors += fs.read(ino, st.size.saturating_sub(100), 200).is_err() as usize;
        match st.file_type {
            FileType::Dir => errors += fs.read_dir(ino).is_err() as usize,
            FileType::Symlink => errors += fs.read_link(ino).is_err() as usize,
            _ => {}
        }
    }
    let _ = fs.info();
    errors
}

#[test]
fn ext4_random_damage() {
    if !common::ready(&["mkfs.ext4"], false) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let tree = tmp.path().join("tree");
    let mut d = tree.clone();
    for i in 0..6 {
        d = d.join(format!("dir{i}"));
        std::fs::create_dir_all(&d).expect("mkdir");
        for k in 0..40 {
            std::fs::write(d.join(format!("f{k}_{}", "x".repeat(k))), vec![k as u8; k * 700]).expect("write");
        }
        std::os::unix::fs::symlink("t".repeat(30 + i * 40), d.join("link")).expect("symlink");
    }
    let configs: &[&[&str]] = &[
        &["-b", "1024"],
        &["-b", "1024", "-O", "^extents,^64bit,^metadata_csum"],
        &["-b", "1024", "-O", "inline_data"],
    ];
    let (mut runs, mut opened, mut csum_findings, mut op_errors) = (0, 0, 0, 0);
    for (c, opts) in configs.iter().enumerate() {
        let img = tmp.path().join(format!("img{c}"));
        std::fs::File::create(&img).and_then(|f| f.set_len(8 << 20)).expect("create");
        let st = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-N", "512"])
            .args(*opts)
            .arg("-d")
            .arg(&tree)
            .arg(&img)
            .status()
            .expect("run mkfs.ext4");
        assert!(st.success(), "mkfs.ext4 {opts:?}");
        let clean = std::fs::read(&img).expect("read");
        // Where the metadata is: up to the end of the last directory or inode table block the
        // clean image uses (the first 1 MiB holds the group 0 tables and the tree here).
        let span = 1 << 20;
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ c as u64);
        for _ in 0..200 {
            let mut bytes = clean.clone();
            let hits = 1 + rng.next() % 96;
            for _ in 0..hits {
                let at = 1024 + (rng.next() % (span - 1024)) as usize;
                bytes[at] ^= 1 << (rng.next() % 8);
            }
            runs += 1;
            let src: Arc<dyn BlockSource> = Arc::new(MemSource::new(bytes, "damaged"));
            let Ok(fs) = Ext4::open(src) else { continue };
            opened += 1;
            op_errors += exercise(&fs);
            csum_findings += fs.findings().iter().filter(|f| f.message.contains("checksum")).count();
        }
    }
    println!(
        "{runs} damaged images: {opened} opened, {op_errors} operations failed cleanly, {csum_findings} checksum findings"
    );
    assert!(opened > runs / 2, "too few damaged images opened ({opened} of {runs})");
    assert!(
        csum_findings > 50,
        "damage to metadata_csum images produced only {csum_findings} checksum findings"
    );
}

/// Features the reader cannot honour are refused by name; casefold (names stored as given)
/// reads like any other image.
#[test]
fn ext4_feature_refusals() {
    if !common::ready(&["mkfs.ext4"], false) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let tree = tmp.path().join("tree");
    std::fs::create_dir(&tree).expect("mkdir");
    std::fs::write(tree.join("MixedCase.txt"), b"casefold").expect("write");
    let mk = |name: &str, opts: &[&str]| -> Arc<dyn BlockSource> {
        let img = tmp.path().join(name);
        std::fs::File::create(&img).and_then(|f| f.set_len(16 << 20)).expect("create");
        let st = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .args(opts)
            .arg("-d")
            .arg(&tree)
            .arg(&img)
            .status()
            .expect("run mkfs.ext4");
        assert!(st.success(), "mkfs.ext4 {opts:?}");
        Arc::new(MemSource::new(std::fs::read(&img).expect("read"), name))
    };
    match Ext4::open(mk("enc", &["-O", "encrypt"])) {
        Err(daxray::Error::Unsupported(m)) => {
            assert!(m.contains("encrypt"), "refusal does not name the feature: {m}")
        }
        Err(e) => panic!("encrypt: wrong error {e}"),
        Ok(_) => panic!("an encrypt image was accepted"),
    }
    let fs = Ext4::open(mk("cf", &["-O", "casefold"])).expect("casefold opens");
    let names: Vec<String> = fs
        .read_dir(2)
        .expect("read_dir")
        .iter()
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .collect();
    assert!(names.contains(&"MixedCase.txt".to_string()), "casefold names: {names:?}");
    let ino = daxray::fs::lookup(&fs, "/MixedCase.txt").expect("lookup");
    assert_eq!(fs.read(ino, 0, 100).expect("read"), b"casefold");
}
