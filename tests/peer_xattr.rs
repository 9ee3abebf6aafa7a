//! `daxray getfattr` against `getfattr -d -m - --absolute-names` on a read-only loop mount of the
//! same image, for every path: images made by mkfs and given extended attributes through the
//! kernel with `setfattr` (see `peer_common::add_xattrs`: in-inode and external-block ext4
//! attributes; XFS short form, leaf, remote values and a node-form attr fork). Default encoding
//! and `-e hex`.

mod peer_common;

use daxray::oracle::Mount;
use peer_common::*;
use std::path::Path;
use std::process::Command;

/// getfattr's output for `mnt` + `path`, with the mount point taken out of `# file:` lines;
/// None when getfattr fails (a dangling symlink).
fn getfattr(mnt: &Path, path: &str, extra: &[&str]) -> Option<String> {
    let full = format!("{}{path}", mnt.display());
    let o = Command::new("getfattr")
        .args(["-d", "-m", "-", "--absolute-names"])
        .args(extra)
        .arg(&full)
        .output()
        .expect("run getfattr (attr)");
    if !o.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    Some(text.replace(&format!("# file: {full}\n"), &format!("# file: {path}\n")))
}

fn compare(img: &Path, fstype: &str, kernel: &[(String, u64)], expect: &[(&str, &str)]) {
    let m = Mount::new(img, 0, fstype, "ro").expect("mount read-only");
    let s = img.to_str().unwrap();
    let mut compared = 0;
    for (path, _) in kernel {
        for extra in [&[][..], &["-e", "hex"][..]] {
            let theirs = getfattr(m.path(), path, extra);
            let mut args = vec!["getfattr", s, path.as_str()];
            args.extend(extra);
            let (code, ours, err) = daxray(&args);
            match theirs {
                Some(t) => {
                    assert_eq!(code, 0, "daxray getfattr {path} {extra:?}: {err}");
                    assert_eq!(ours, t, "getfattr {path} {extra:?}");
                    compared += usize::from(!t.is_empty());
                }
                None => assert_ne!(code, 0, "getfattr fails on {path}, daxray printed {ours}"),
            }
        }
    }
    m.unmount().expect("umount");
    assert!(compared >= 10, "only {compared} files with attributes compared");
    for (path, line) in expect {
        let out = daxray_ok(&["getfattr", s, path]);
        assert!(out.lines().any(|l| l.starts_with(line)), "{path}: no line {line:?} in {out}");
    }
}

#[test]
fn ext4_getfattr_equals_getfattr_on_the_mount() {
    if !ready(&["setfattr", "getfattr", "mkfs.ext4", "debugfs", "mount", "losetup"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary folder");
    let (img, kernel) = ext4_image(tmp.path());
    // The shapes the test means to cover: attributes in an external block.
    let big = kernel.iter().find(|(p, _)| p == "/big").unwrap().1;
    let stat = debugfs(&img, &[format!("stat <{big}>")]).remove(0);
    assert!(!stat.contains("File ACL: 0"), "/big's attributes should need an xattr block: {stat}");
    compare(&img, "ext4", &kernel, &[("/small", "user.bin=0sAAH/f4A="), ("/d/a", "user.large=0sq6ur")]);
}

#[test]
fn xfs_getfattr_equals_getfattr_on_the_mount() {
    if !ready(&["setfattr", "getfattr", "mkfs.xfs", "xfs_db", "mount", "losetup"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary folder");
    let (img, kernel) = xfs_image(tmp.path());
    // The attr fork shapes the test means to cover, as xfs_db sees them.
    let ino = |p: &str| kernel.iter().find(|(q, _)| q == p).unwrap().1;
    let aformat = |p: &str| {
        xfs_fields(&xfs_db(&img, &[&format!("inode {}", ino(p)), "print core.aformat"]))["core.aformat"]
            .clone()
    };
    assert!(aformat("/small").starts_with("1 "), "/small: short form, not {}", aformat("/small"));
    assert!(aformat("/big").starts_with("2 "), "/big: extents (a leaf), not {}", aformat("/big"));
    let frag_root =
        xfs_db(&img, &[&format!("inode {}", ino("/frag")), "ablock 0", "print hdr.info.hdr.magic"]);
    assert!(frag_root.contains("0x3ebe"), "/frag: not a node-form attr fork");
    let leaf = xfs_db(&img, &[&format!("inode {}", ino("/d/sub/deeper/leaf")), "ablock 0", "print"]);
    assert!(leaf.contains("valueblk"), "/d/sub/deeper/leaf: no remote value in its leaf");
    compare(&img, "xfs", &kernel, &[("/small", "user.bin=0sAAH/f4A="), ("/d/a", "user.large=0sq6ur")]);
}
