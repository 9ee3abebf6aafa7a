//! The public e2fsprogs test images: every one opens or fails cleanly, the manifest walk never
//! panics, and where e2fsck's own output (`expect.1`) names a damaged extent tree, directory
//! block or htree node, daxray reports a finding or error about that same inode (and block).

mod common;

use common::unpack_e2fsprogs_case;
use daxray::FileSystem;
use daxray::ext4::Ext4;
use daxray::image::{BlockSource, MmapSource};
use std::path::PathBuf;
use std::sync::Arc;

/// What e2fsck said is wrong, restricted to the damage kinds daxray checks: (inode, optional
/// block that must be named too, the e2fsck line).
fn expected_problems(expect: &str) -> Vec<(u64, Option<u64>, String)> {
    let mut out = Vec::new();
    let lines: Vec<&str> = expect.lines().collect();
    let num_after = |s: &str, key: &str| -> Option<u64> {
        let i = s.find(key)? + key.len();
        let digits: String = s[i..].chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse().ok()
    };
    for (k, l) in lines.iter().enumerate() {
        let next = lines.get(k + 1).copied().unwrap_or("");
        if l.starts_with("Inode ") {
            let Some(ino) = num_after(l, "Inode ") else { continue };
            if l.contains("extent block passes checks, but checksum does not match")
                || l.contains("has an invalid extent")
                || l.contains("has zero length extent")
                || l.contains("has out of order extents")
                || l.contains("has a duplicate extent mapping")
                || l.contains("extent tree could be more shallow (")
            {
                let blk = num_after(l, "(blk ");
                out.push((ino, blk, format!("{l} {}", next.trim())));
            }
        } else if l.starts_with("Problem in HTREE directory inode ")
            && l.contains("fails checksum")
            && let Some(ino) = num_after(l, "directory inode ")
        {
            out.push((ino, None, l.to_string()));
        } else if l.starts_with("Directory inode ")
            && (l.contains("fails checksum") || l.contains("directory corrupted"))
            && let Some(ino) = num_after(l, "Directory inode ")
        {
            out.push((ino, None, l.to_string()));
        } else if l.starts_with("Interior extent node level ")
            && let Some(ino) = num_after(l, " of inode ")
        {
            out.push((ino, None, format!("{l} {}", next.trim())));
        }
    }
    out
}

/// Mentions of an inode in daxray's messages ("inode 12:" / "inode 12 ").
fn mentions(msg: &str, ino: u64, blk: Option<u64>) -> bool {
    let a = format!("inode {ino}:");
    let b = format!("inode {ino} ");
    let hit = msg.contains(&a) || msg.contains(&b);
    hit && blk.is_none_or(|bl| msg.contains(&format!("block {bl}")) || msg.contains(&format!("block {bl} ")))
}

#[test]
fn e2fsprogs_corpus() {
    let dir = common::e2fsprogs_corpus();
    let mut cases: Vec<PathBuf> =
        std::fs::read_dir(&dir).expect("read corpus").flatten().map(|e| e.path()).collect();
    cases.sort();
    let (mut opened, mut refused, mut checked, mut images) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let tmp = tempfile::tempdir().expect("tempdir");
        let Some((img, _)) = unpack_e2fsprogs_case(case, tmp.path()) else { continue };
        images += 1;
        let src: Arc<dyn BlockSource> = Arc::new(MmapSource::open(&img).expect("map image"));
        let expect = std::fs::read_to_string(case.join("expect.1")).unwrap_or_default();
        let problems = expected_problems(&expect);
        let fs = match Ext4::open(src) {
            Ok(fs) => fs,
            Err(e) => {
                println!("{name}: refused: {e}");
                refused += 1;
                if !problems.is_empty() {
                    failures.push(format!(
                        "{name}: e2fsck found {} problems but daxray refused: {e}",
                        problems.len()
                    ));
                }
                continue;
            }
        };
        opened += 1;
        // Everything the model says, errors included.
        let mut said: Vec<String> = Vec::new();
        let (entries, errs) = daxray::manifest::build(&fs, true).unwrap_or_else(|e| {
            said.push(e.to_string());
            (vec![], vec![])
        });
        said.extend(errs.iter().map(|(p, e)| format!("{p}: {e}")));
        // Every inode in use, through every accessor.
        let count = u64::from(fs.superblock().raw.s_inodes_count.get()).min(1 << 16);
        for ino in 1..=count {
            let Ok(st) = fs.stat(ino) else { continue };
            if st.mode == 0 && st.nlink == 0 {
                continue;
            }
            for r in [
                fs.map(ino).map(|_| ()),
                fs.read(ino, 0, 1 << 20).map(|_| ()),
                match st.file_type {
                    daxray::fs::FileType::Dir => fs.read_dir(ino).map(|_| ()),
                    daxray::fs::FileType::Symlink => fs.read_link(ino).map(|_| ()),
                    _ => Ok(()),
                },
            ] {
                if let Err(e) = r {
                    said.push(format!("inode {ino}: {e}"));
                }
            }
        }
        let info = fs.info();
        assert!(info.get("geometry").is_some(), "{name}: info has no geometry");
        said.extend(fs.findings().iter().map(|f| f.to_string()));
        println!("{name}: {} files, {} messages", entries.len(), said.len());
        for (ino, blk, line) in &problems {
            checked += 1;
            if !said.iter().any(|m| mentions(m, *ino, *blk)) {
                failures.push(format!(
                    "{name}: e2fsck says \"{line}\" but daxray said nothing about inode {ino}: {said:#?}"
                ));
            }
        }
    }
    println!("{images} images: {opened} opened, {refused} refused; {checked} e2fsck problems checked");
    assert!(images >= 40, "only {images} images found in {}", dir.display());
    assert!(checked >= 15, "only {checked} e2fsck problems to compare against");
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}
