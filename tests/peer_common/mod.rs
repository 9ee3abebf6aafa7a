//! Helpers shared by the peer-command tests (`icheck`, `ncheck`, `bd`, `groups`, `ag`,
//! `getfattr`, `claim`, `map` against debugfs, xfs_db, getfattr and the kernel): images made by
//! mkfs and populated through a loop mount, the peers run on the same bytes, daxray run as a
//! program.
#![allow(dead_code)]

use daxray::oracle::Mount;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Size of the ext4 images.
pub const EXT4_SIZE: u64 = 64 << 20;
/// Size of the XFS images (mkfs.xfs wants 300 MiB at least).
pub const XFS_SIZE: u64 = 320 << 20;

/// Fill `root` (a mounted file system) with files of several kinds: regular files of a few
/// sizes, a sparse file, a file of many one-block extents (its extent tree or bmbt needs blocks
/// of its own), nested directories, hard links, a fast and a slow symlink.
pub fn populate(root: &Path, fstype: &str) {
    populate_files(root);
    add_xattrs(root, fstype);
}

/// The files of [`populate`], without extended attributes.
pub fn populate_files(root: &Path) {
    let w = |p: &str, data: &[u8]| std::fs::write(root.join(p), data).unwrap_or_else(|e| panic!("{p}: {e}"));
    std::fs::create_dir_all(root.join("d/sub/deeper")).expect("mkdir");
    w("empty", b"");
    w("small", b"hello, pmem\n");
    w("d/a", &vec![0xa5; 5000]);
    w("d/sub/deeper/leaf", &(0..70_000u32).map(|i| (i * 7) as u8).collect::<Vec<_>>());
    w("big", &(0..1_500_000u32).map(|i| (i ^ (i >> 8)) as u8).collect::<Vec<_>>());
    let sparse = std::fs::File::create(root.join("sparse")).expect("create sparse");
    for off in [0u64, 1 << 20, 3 << 20] {
        sparse.write_all_at(&[0x5a; 8192], off).expect("write sparse");
    }
    sparse.set_len(5 << 20).expect("truncate sparse");
    // Every other block written: one extent per block, more than fit in the inode.
    let frag = std::fs::File::create(root.join("frag")).expect("create frag");
    for k in 0..300u64 {
        frag.write_all_at(&[k as u8; 4096], k * 8192).expect("write frag");
    }
    frag.sync_all().expect("fsync");
    std::fs::hard_link(root.join("big"), root.join("d/big-link")).expect("hard link");
    std::fs::hard_link(root.join("small"), root.join("d/sub/small-link")).expect("hard link");
    std::os::unix::fs::symlink("d/a", root.join("fast-link")).expect("symlink");
    std::os::unix::fs::symlink("x".repeat(200), root.join("slow-link")).expect("symlink");
}

/// `setfattr -n NAME -v VALUE PATH`.
pub fn setfattr(path: &Path, name: &str, value: &str) {
    let st = Command::new("setfattr")
        .args(["-n", name, "-v", value])
        .arg(path)
        .status()
        .expect("run setfattr (attr)");
    assert!(st.success(), "setfattr -n {name} on {}", path.display());
}

/// Extended attributes through the kernel: a few small ones (in the inode; XFS short form), of
/// every namespace, text and binary; dozens (ext4: past the inode into the xattr block; XFS: a
/// leaf block); a value of 3000 bytes (ext4: in the block; XFS: a remote value); hundreds
/// (XFS: a dabtree of leaves under a node).
pub fn add_xattrs(root: &Path, fstype: &str) {
    let small = root.join("small");
    setfattr(&small, "user.a", "hello");
    setfattr(&small, "user.bin", "0x0001ff7f80");
    setfattr(&small, "trusted.t", "two\nlines \"quoted\" back\\slash");
    setfattr(&small, "security.s", "label");
    setfattr(&root.join("d"), "user.dir", "1");
    for k in 0..30 {
        setfattr(&root.join("big"), &format!("user.k{k:02}"), &format!("{k:02}{}", "v".repeat(98)));
    }
    setfattr(&root.join("d/a"), "user.large", &format!("0x{}", "ab".repeat(3000)));
    setfattr(&root.join("d/a"), "user.after", "short");
    if fstype == "xfs" {
        // Past what a leaf keeps locally: a remote value, in blocks of its own.
        setfattr(&root.join("d/sub/deeper/leaf"), "user.huge", &format!("0x{}", "cd".repeat(20_000)));
    }
    // An ext4 inode's attributes must fit in its one xattr block.
    let many = if fstype == "xfs" { 400 } else { 20 };
    for k in 0..many {
        setfattr(
            &root.join("frag"),
            &format!("user.many.{k:04}"),
            &format!("value-{k}-{}", "z".repeat(k % 40)),
        );
    }
}

/// Every path under `root` (a mount point) with its inode number, as the kernel lists them.
pub fn kernel_inodes(root: &Path) -> Vec<(String, u64)> {
    let mut out = vec![];
    let mut stack = vec![PathBuf::from(root)];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir).expect("read_dir").flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).expect("lstat");
            let rel = format!("/{}", p.strip_prefix(root).unwrap().to_string_lossy());
            out.push((rel, md.ino()));
            if md.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

/// A fresh image `dir/NAME` made by `mkfs` (program and options), mounted, filled by `fill`
/// through the kernel, unmounted. Returns the image and what `fill` returned.
pub fn made_image<T>(
    dir: &Path,
    name: &str,
    size: u64,
    mkfs: &[&str],
    fstype: &str,
    fill: impl FnOnce(&Path) -> T,
) -> (PathBuf, T) {
    let img = dir.join(name);
    daxray::oracle::make_image(&img, size, mkfs).unwrap_or_else(|e| panic!("{mkfs:?}: {e}"));
    let m = Mount::new(&img, 0, fstype, "").unwrap_or_else(|e| panic!("mount {}: {e}", img.display()));
    let out = fill(m.path());
    m.unmount().expect("umount");
    (img, out)
}

/// The standard ext4 test image ([`populate`]d, 4 KiB blocks) and the kernel's (path, inode) list.
pub fn ext4_image(dir: &Path) -> (PathBuf, Vec<(String, u64)>) {
    made_image(dir, "ext4.img", EXT4_SIZE, &["mkfs.ext4", "-q", "-b", "4096"], "ext4", |root| {
        populate(root, "ext4");
        kernel_inodes(root)
    })
}

/// The standard XFS test image ([`populate`]d; four AGs of 20480 blocks, so that linear block
/// numbers and packed fsbnos differ) and the kernel's (path, inode) list.
pub fn xfs_image(dir: &Path) -> (PathBuf, Vec<(String, u64)>) {
    made_image(
        dir,
        "xfs.img",
        XFS_SIZE,
        &["mkfs.xfs", "-q", "-f", "-m", "reflink=0", "-d", "agcount=4"],
        "xfs",
        |root| {
            populate(root, "xfs");
            kernel_inodes(root)
        },
    )
}

/// Run daxray with `args`; (exit code, stdout, stderr).
pub fn daxray(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_daxray")).args(args).output().expect("run daxray");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// [`daxray`], which must exit 0; its stdout.
pub fn daxray_ok(args: &[&str]) -> String {
    let (code, out, err) = daxray(args);
    assert_eq!(code, 0, "daxray {args:?} exited {code}: {err}");
    out
}

/// Run `debugfs -c` on `img` with the commands `cmds` (one a line, from a command file); the
/// output of each command, in order (debugfs echoes each as `debugfs: CMD`).
pub fn debugfs(img: &Path, cmds: &[String]) -> Vec<String> {
    let cf = tempfile::NamedTempFile::new().expect("temporary file");
    cf.as_file().write_all(cmds.join("\n").as_bytes()).expect("write debugfs commands");
    let out = Command::new("debugfs")
        .arg("-c")
        .arg("-f")
        .arg(cf.path())
        .arg(img)
        .output()
        .expect("run debugfs (e2fsprogs)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut outs: Vec<String> = vec![];
    for line in text.split_inclusive('\n') {
        if line.starts_with("debugfs: ") {
            outs.push(String::new());
        } else if let Some(o) = outs.last_mut() {
            o.push_str(line);
        }
    }
    assert_eq!(outs.len(), cmds.len(), "debugfs answered {} of {} commands: {text}", outs.len(), cmds.len());
    outs
}

/// Run `xfs_db -r` on `img` with the commands `cmds`; its stdout.
pub fn xfs_db(img: &Path, cmds: &[&str]) -> String {
    let mut c = Command::new("xfs_db");
    c.arg("-r");
    for cmd in cmds {
        c.arg("-c").arg(cmd);
    }
    let out = c.arg(img).output().expect("run xfs_db (xfsprogs)");
    assert!(out.status.success(), "xfs_db {cmds:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `key = value` lines of xfs_db's `print`.
pub fn xfs_fields(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(" = ").map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect()
}

/// One extent of `xfs_db -c 'inode N' -c bmap`: `(offset, packed fsbno, (agno, agbno), count, flag)`.
pub type XfsBmap = (u64, u64, (u64, u64), u64, u64);

/// Parse `xfs_db bmap` lines: `data offset 0 startblock 24 (0/24) count 1 flag 0`.
pub fn parse_xfs_bmap(text: &str) -> Vec<XfsBmap> {
    let mut out = vec![];
    for line in text.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.len() < 10 || t[1] != "offset" || t[3] != "startblock" {
            continue;
        }
        let n = |s: &str| s.parse::<u64>().unwrap_or_else(|_| panic!("xfs_db bmap: {line}"));
        let ag = t[5].trim_matches(|c| c == '(' || c == ')');
        let (agno, agbno) = ag.split_once('/').unwrap_or_else(|| panic!("xfs_db bmap: {line}"));
        out.push((n(t[2]), n(t[4]), (n(agno), n(agbno)), n(t[7]), n(t[9])));
    }
    out
}

/// The peers a test needs, and root (loop mounts): false (skip) only when
/// `DAXRAY_SKIP_ROOT_TESTS=1`, else a failure naming what to install.
pub fn ready(tools: &[&str]) -> bool {
    match daxray::oracle::require(tools, true) {
        Ok(()) => true,
        Err(why) if daxray::oracle::tests_may_skip() => {
            eprintln!("SKIPPED (DAXRAY_SKIP_ROOT_TESTS=1): {why}");
            false
        }
        Err(why) => panic!("{why}"),
    }
}

/// The committed fixture `fixtures/<rel>` (gzip) unpacked into `dir` as `name`.
pub fn unpack_fixture(rel: &str, dir: &Path, name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel);
    let f =
        std::fs::File::open(&src).unwrap_or_else(|e| panic!("{}: {e} (a committed fixture)", src.display()));
    let dst = dir.join(name);
    let mut out = std::fs::File::create(&dst).expect("create unpacked fixture");
    std::io::copy(&mut flate2::read::GzDecoder::new(f), &mut out).expect("gunzip fixture");
    dst
}

/// The `len` bytes of a hexdump in `debugfs bd` layout (octal offsets, `*` for repeated lines,
/// which at the end repeat up to `len`).
pub fn parse_bd(text: &str, len: usize) -> Vec<u8> {
    let mut out: Vec<u8> = vec![];
    let mut last: Vec<u8> = vec![];
    let mut folded = false;
    for line in text.lines() {
        if line == "*" {
            folded = true;
            continue;
        }
        let Some((off, rest)) = line.split_once("  ") else { continue };
        let Ok(off) = usize::from_str_radix(off, 8) else { continue };
        if folded {
            while out.len() < off {
                out.extend_from_slice(&last);
            }
            folded = false;
        }
        let hex: String = rest.chars().take(40).filter(|c| !c.is_whitespace()).collect();
        let bytes = hex::decode(&hex).unwrap_or_else(|e| panic!("bd line {line:?}: {e}"));
        assert_eq!(out.len(), off, "bd line {line:?} at the wrong offset");
        out.extend_from_slice(&bytes);
        last = bytes;
    }
    while folded && out.len() < len && !last.is_empty() {
        out.extend_from_slice(&last);
    }
    assert_eq!(out.len(), len, "the dump holds {} bytes, not {len}", out.len());
    out
}

/// Where two byte strings first differ (None: equal), for messages that do not print them.
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    (a != b).then(|| a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len())))
}

/// [`daxray`], which must exit 0 or 1 (1: the image has findings); its stdout.
pub fn daxray_out(args: &[&str]) -> String {
    let (code, out, err) = daxray(args);
    assert!(code == 0 || code == 1, "daxray {args:?} exited {code}: {err}");
    out
}

/// The bytes of `xfs_db`'s `type data` print (`000: 58465342 00001000 ...`).
pub fn parse_xfs_data(text: &str) -> Vec<u8> {
    let mut out = vec![];
    for line in text.lines() {
        let Some((off, words)) = line.split_once(": ") else { continue };
        let off = usize::from_str_radix(off.trim(), 16).unwrap_or_else(|_| panic!("xfs_db line {line:?}"));
        assert_eq!(out.len(), off, "xfs_db line {line:?} at the wrong offset");
        let hex: String = words.split_whitespace().collect();
        out.extend(hex::decode(&hex).unwrap_or_else(|e| panic!("xfs_db line {line:?}: {e}")));
    }
    out
}

/// Blocks of `block_size` bytes in which files `a` and `b` (same length) differ.
pub fn differing_blocks(a: &Path, b: &Path, block_size: usize) -> Vec<u64> {
    let (x, y) = (std::fs::read(a).expect("read image"), std::fs::read(b).expect("read image"));
    assert_eq!(x.len(), y.len(), "images of different sizes");
    x.chunks(block_size)
        .zip(y.chunks(block_size))
        .enumerate()
        .filter(|(_, (p, q))| p != q)
        .map(|(i, _)| i as u64)
        .collect()
}
