//! `daxray ls --deleted`: the removed entries still in a directory's blocks, compared with
//! debugfs `ls -d` on an image made by mkfs.ext4 whose files the kernel made. Some are removed by
//! the kernel (which wipes a removed entry's bytes, `ext4_generic_delete_entry`: debugfs then
//! shows an entry with inode 0 and no name there) and some by debugfs's own `rm` (`ext2fs_unlink`
//! only grows the previous entry's record over it, so the name stays).
//!
//! Needs root, util-linux (`mount`, `losetup`) and e2fsprogs.

mod common;
mod inspect_common;

use common::ready;
use inspect_common::*;
use std::collections::BTreeSet;

/// debugfs's removed entries in `ls -d` output: `<INODE> (REC_LEN) NAME` (the name may be empty).
fn debugfs_removed(text: &str) -> BTreeSet<(u64, u64, String)> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        let Some((ino, after)) = rest.split_once("> (") else { continue };
        let Some((rec, after)) = after.split_once(") ") else { continue };
        let (Ok(i), Ok(r)) = (ino.parse(), rec.parse()) else { continue };
        let name: String = after.chars().take_while(|c| !c.is_whitespace()).collect();
        out.insert((i, r, name));
    }
    out
}

#[test]
fn removed_entries_equal_debugfs_ls_d() {
    if !ready(&["mkfs.ext4", "debugfs", "mount", "losetup"], true) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let img = mkfs("ext4", tmp.path());
    mounted(&img, "ext4", |root| {
        // One small directory (one block) and one large enough for an htree, each losing
        // every third of its files.
        for (dir, n) in [("small", 30), ("big", 400)] {
            std::fs::create_dir(root.join(dir)).expect("mkdir");
            for i in 0..n {
                std::fs::write(root.join(dir).join(format!("file-{i:04}-{}", "x".repeat(i % 17))), b"data")
                    .expect("write");
            }
            for i in (0..n).step_by(5) {
                std::fs::remove_file(root.join(dir).join(format!("file-{i:04}-{}", "x".repeat(i % 17))))
                    .expect("remove");
            }
        }
    });
    let mut cmds = String::new();
    for (dir, n) in [("small", 30), ("big", 400)] {
        for i in (1..n).step_by(3).filter(|i| i % 5 != 0) {
            cmds += &format!("rm /{dir}/file-{i:04}-{}\n", "x".repeat(i % 17));
        }
    }
    let cmdfile = tmp.path().join("rm.cmds");
    std::fs::write(&cmdfile, cmds).expect("write debugfs commands");
    tool("debugfs", &["-w", "-f", s(&cmdfile), s(&img)]);
    for dir in ["/small", "/big"] {
        let peer = debugfs_removed(&tool("debugfs", &["-c", "-R", &format!("ls -d {dir}"), s(&img)]));
        let r = dx(&["--json", "ls", "--deleted", s(&img), dir]);
        assert_eq!(r.code, 0, "{}", r.err);
        let v: serde_json::Value = serde_json::from_str(&r.out).expect("JSON");
        let ours: BTreeSet<(u64, u64, String)> = v["removed"]
            .as_array()
            .expect("removed")
            .iter()
            .map(|e| {
                (
                    e["ino"].as_u64().expect("ino"),
                    e["rec_len"].as_u64().expect("rec_len"),
                    e["name"].as_str().expect("name").to_string(),
                )
            })
            .collect();
        // Every entry by inode and record length; names where the kernel wrote them ("file-...").
        // Entries found in an htree index block's bytes are garbage names, which debugfs prints
        // escaped: they are compared by inode and record length only.
        let nums = |v: &BTreeSet<(u64, u64, String)>| v.iter().map(|e| (e.0, e.1)).collect::<BTreeSet<_>>();
        let names = |v: &BTreeSet<(u64, u64, String)>| {
            v.iter().filter(|e| e.2.starts_with("file-")).cloned().collect::<BTreeSet<_>>()
        };
        assert_eq!(nums(&ours), nums(&peer), "{dir}: daxray ls --deleted vs debugfs ls -d");
        assert_eq!(names(&ours), names(&peer), "{dir}: daxray ls --deleted vs debugfs ls -d");
        assert!(names(&peer).len() >= 5, "{dir}: too few named removed entries: {peer:?}");
        // The text form names the same entries.
        let t = dx(&["ls", "--deleted", s(&img), dir]);
        assert_eq!(names(&debugfs_removed(&t.out)), names(&peer), "{}", t.out);
    }
    // Not for a file.
    let f = dx(&["ls", "--deleted", s(&img), "/small/file-0002-xx"]);
    assert_eq!(f.code, 2, "{}", f.err);
}
