//! The committed ext4 fixtures (`fixtures/ext4/`, see `fixtures/README.md`) read by daxray and by
//! independent oracles on the same bytes, at test time: `debugfs -c` (`rdump` for every file's
//! contents, `ex -l` for every extent map) and, for the dirty crash image, the kernel's own
//! journal recovery (loop-mount a copy).

mod common;

use common::{ready, sha256_file, unpack_fixture};
use daxray::fs::{Extent, merge_extents};
use daxray::manifest::{ManifestEntry, ManifestExtent};
use daxray::open::{OpenOptions, open};
use daxray::oracle;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// daxray's manifest of an image, failing on any per-file error.
fn ours(img: &Path, raw: bool) -> Vec<ManifestEntry> {
    let o = open(img, &OpenOptions { raw, ..Default::default() })
        .unwrap_or_else(|e| panic!("open {}: {e}", img.display()));
    let (entries, errors) = daxray::manifest::build(&*o.fs, true).expect("manifest");
    assert!(errors.is_empty(), "per-file errors: {errors:?}");
    // The kind and size `check` asks of every claim are those of the full stat.
    for e in &entries {
        let st = o.fs.stat(e.ino).expect("stat");
        assert_eq!(o.fs.type_and_size(e.ino).expect("type_and_size"), (st.file_type, st.size), "{}", e.path);
    }
    entries
}

/// Regular files under `dir` (as `rdump` wrote them): path from `dir` -> the dumped file.
fn dumped_files(dir: &Path, prefix: &str, out: &mut BTreeMap<String, PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read rdump folder") {
        let e = e.expect("dir entry");
        let md = std::fs::symlink_metadata(e.path()).expect("lstat");
        let rel = format!("{prefix}/{}", e.file_name().to_string_lossy());
        if md.is_dir() {
            dumped_files(&e.path(), &rel, out);
        } else if md.is_file() {
            out.insert(rel, e.path());
        }
    }
}

/// What `debugfs -c` says of one inode: `Size:` from `stat` and the leaf extents from `ex -l`
/// (merged like the manifest).
#[derive(Debug, Default)]
struct DebugfsInode {
    size: Option<u64>,
    extents: Vec<ManifestExtent>,
}

/// Run `stat <INO>` and `ex -l <INO>` for each inode in one `debugfs -c -f` and parse them.
fn debugfs_inodes(img: &Path, inos: &[u64], scratch: &Path) -> BTreeMap<u64, DebugfsInode> {
    let cmds = scratch.join("cmds");
    let text: String = inos.iter().map(|i| format!("stat <{i}>\nex -l <{i}>\n")).collect();
    std::fs::write(&cmds, text).expect("command file");
    let out = oracle::run(
        "debugfs",
        &["-c", "-f", cmds.to_str().expect("UTF-8"), img.to_str().expect("UTF-8")],
        Duration::from_secs(300),
    )
    .expect("debugfs stat/ex");
    let mut raw: BTreeMap<u64, (Option<u64>, Vec<Extent>)> = BTreeMap::new();
    let mut cur: Option<u64> = None;
    let num =
        |s: &str, line: &str| s.parse::<u64>().unwrap_or_else(|_| panic!("bad number {s:?} in {line:?}"));
    for line in out.stdout.lines() {
        if let Some(rest) =
            line.strip_prefix("debugfs: ex -l <").or_else(|| line.strip_prefix("debugfs: stat <"))
        {
            let ino = num(rest.trim_end_matches('>'), line);
            raw.entry(ino).or_default();
            cur = Some(ino);
            continue;
        }
        let Some(ino) = cur else { continue };
        // "User:     0   Group:     0   Project:     0   Size: 14"
        if line.starts_with("User:") {
            let t: Vec<&str> = line.split_whitespace().collect();
            if let Some(i) = t.iter().position(|w| *w == "Size:") {
                raw.entry(ino).or_default().0 = Some(num(t[i + 1], line));
            }
            continue;
        }
        // " 0/ 0   1/  3     0 -    63  2066 -  2129     64 Uninit": glue "0/" to "0".
        let mut t: Vec<String> = Vec::new();
        for w in line.split_whitespace() {
            match t.last_mut() {
                Some(last) if last.ends_with('/') => last.push_str(w),
                _ => t.push(w.to_string()),
            }
        }
        if t.len() < 9 || !t[0].contains('/') || !t[1].contains('/') || t[3] != "-" || t[6] != "-" {
            continue;
        }
        let e = Extent {
            logical: num(&t[2], line),
            physical: num(&t[5], line),
            length: num(&t[8], line),
            unwritten: t.get(9).map(String::as_str) == Some("Uninit"),
        };
        raw.entry(ino).or_default().1.push(e);
    }
    raw.into_iter()
        .map(|(ino, (size, v))| {
            (
                ino,
                DebugfsInode {
                    size,
                    extents: merge_extents(&v).into_iter().map(ManifestExtent::from).collect(),
                },
            )
        })
        .collect()
}

/// Compare daxray with debugfs on a clean image: the same regular files with the same sizes
/// and contents (`rdump`), and the same extents (`ex -l`). Returns the number of files.
fn compare_with_debugfs(img: &Path) -> usize {
    let before = sha256_file(img);
    let ours = ours(img, false);
    assert_eq!(sha256_file(img), before, "daxray changed its input image");
    assert!(!ours.is_empty(), "daxray found no files");
    let scratch = tempfile::tempdir().expect("scratch folder");
    let dump = scratch.path().join("rdump");
    std::fs::create_dir(&dump).expect("mkdir");
    oracle::run(
        "debugfs",
        &["-c", "-R", &format!("rdump / {}", dump.display()), img.to_str().expect("UTF-8")],
        Duration::from_secs(300),
    )
    .expect("debugfs rdump");
    let mut theirs = BTreeMap::new();
    dumped_files(&dump, "", &mut theirs);
    let mut inos: Vec<u64> = ours.iter().map(|e| e.ino).collect();
    inos.sort_unstable();
    inos.dedup(); // hard links: one inode, several paths
    let info = debugfs_inodes(img, &inos, scratch.path());
    let mut diffs = Vec::new();
    let mine: BTreeMap<&str, &ManifestEntry> = ours.iter().map(|e| (e.path.as_str(), e)).collect();
    for (path, dumped) in &theirs {
        let Some(e) = mine.get(path.as_str()) else {
            diffs.push(format!("{path}: debugfs dumped it, daxray has no such file"));
            continue;
        };
        let Some(size) = info.get(&e.ino).and_then(|i| i.size) else {
            diffs.push(format!("{path}: debugfs stat <{}> gave no size", e.ino));
            continue;
        };
        if e.size != size {
            diffs.push(format!("{path}: size daxray {} debugfs {size}", e.size));
        }
        // debugfs 1.47 dumps the whole inline-data area (60 bytes and more) of an inline file,
        // not i_size bytes: compare the first `size` bytes and require the rest to be zeros.
        let mut bytes = std::fs::read(dumped).expect("read dumped file");
        if bytes.len() as u64 > size {
            if bytes[size as usize..].iter().any(|&b| b != 0) {
                diffs.push(format!("{path}: debugfs dumped non-zero bytes past i_size {size}"));
            }
            bytes.truncate(size as usize);
        }
        let sha = hex::encode(Sha256::digest(&bytes));
        if e.sha256.as_deref() != Some(sha.as_str()) {
            diffs.push(format!("{path}: contents differ (sha256 daxray {:?} debugfs {sha})", e.sha256));
        }
    }
    for p in mine.keys() {
        if !theirs.contains_key(*p) {
            diffs.push(format!("{p}: daxray lists it, debugfs did not dump it"));
        }
    }
    let mut with_extents = 0;
    for e in &ours {
        let theirs = info.get(&e.ino).map(|i| i.extents.clone()).unwrap_or_default();
        if !theirs.is_empty() {
            with_extents += 1;
        }
        if theirs != e.extents {
            diffs.push(format!(
                "{} (ino {}): extents daxray {:?} debugfs {:?}",
                e.path, e.ino, e.extents, theirs
            ));
        }
    }
    assert!(diffs.is_empty(), "{} differences with debugfs:\n{}", diffs.len(), diffs.join("\n"));
    assert!(with_extents > 0, "no file with extents: the comparison proved nothing");
    ours.len()
}

#[test]
fn mkfs_d_fixture_matches_debugfs() {
    if !ready(&["debugfs"], false) {
        return;
    }
    let (_tmp, img) = unpack_fixture("ext4", "mkfs-d");
    let n = compare_with_debugfs(&img);
    // The source tree holds 1 + 1 + 8 tiny + medium + its hard link + large + sparse + bottom +
    // 300 entries = 315 regular file names.
    assert_eq!(n, 315, "regular files in the mkfs -d fixture");
    eprintln!("mkfs-d fixture: {n} files equal to debugfs (contents and extents)");
}

#[test]
fn kernel_fixture_matches_debugfs() {
    if !ready(&["debugfs"], false) {
        return;
    }
    let (_tmp, img) = unpack_fixture("ext4", "kernel");
    let n = compare_with_debugfs(&img);
    assert!(n > 400, "expected the workload's 400-entry directory and more, got {n}");
    eprintln!("kernel fixture: {n} files equal to debugfs (contents and extents)");
}

#[test]
fn dirty_kernel_fixture_recovers_like_the_kernel() {
    if !ready(&["dumpe2fs", "losetup", "mount", "umount"], true) {
        return;
    }
    let (tmp, img) = unpack_fixture("ext4", "kernel-dirty");
    // Independent evidence that the fixture is a crash state: e2fsprogs sees needs_recovery.
    let h = oracle::run("dumpe2fs", &["-h", img.to_str().expect("UTF-8")], Duration::from_secs(60))
        .expect("dumpe2fs");
    assert!(h.stdout.contains("needs_recovery"), "the dirty fixture does not need recovery:\n{}", h.stdout);
    let before = sha256_file(&img);
    let ours = ours(&img, false);
    assert_eq!(sha256_file(&img), before, "daxray changed its input image");
    // The kernel recovers a copy when mounting it.
    let kernel = oracle::recovered_manifest(&img, "ext4", "", &tmp.path().join("copy.img"), true)
        .expect("the kernel's recovery of a copy");
    let n = oracle::compare_manifests(&ours, &kernel)
        .unwrap_or_else(|e| panic!("daxray's recovered view differs from the kernel's:\n{e}"));
    assert!(n > 400, "compared only {n} files");
    // And the crash state matters: the media as it is (--raw) differs from the recovered view.
    let o = open(&img, &OpenOptions { raw: true, ..Default::default() }).expect("open --raw");
    let (raw, raw_errors) = daxray::manifest::build(&*o.fs, true).expect("raw manifest");
    let raw_diff = oracle::compare_manifests(&raw, &kernel).err();
    assert!(
        raw_diff.is_some() || !raw_errors.is_empty(),
        "the raw media already equals the recovered view: the fixture does not exercise recovery"
    );
    eprintln!(
        "raw view: {} files, {} per-file errors, {} lines of differences from the kernel's recovery",
        raw.len(),
        raw_errors.len(),
        raw_diff.map(|d| d.lines().count()).unwrap_or(0)
    );
    eprintln!("dirty kernel fixture: {n} files equal to the kernel's recovery");
}
