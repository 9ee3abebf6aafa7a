//! `daxray icheck` and `ncheck` against `debugfs -c` (ext4) and against `xfs_db` and the kernel
//! (XFS) on the same bytes: images made by mkfs and filled through a loop mount with regular,
//! sparse and many-extent files, directories, hard links and symlinks.
//!
//! ext4: every block `debugfs blocks` lists for every inode the kernel shows (data, extent-tree
//! blocks) plus blocks no file owns is asked of both, and every inode's paths are asked of both.
//! XFS: every block of every file as `xfs_db bmap` maps it (packed fsbno, turned into the linear
//! block number daxray counts in) must be owned by that file's inode, and `ncheck` of every inode
//! must list the paths the kernel's walk found for it.

mod peer_common;

use peer_common::*;
use std::collections::{BTreeMap, BTreeSet};

/// `Block<TAB>Inode number` lines into block -> owner.
fn parse_icheck(text: &str) -> BTreeMap<u64, Option<u64>> {
    let mut m = BTreeMap::new();
    for line in text.lines().skip_while(|l| !l.starts_with("Block")).skip(1) {
        let Some((b, i)) = line.split_once('\t') else { continue };
        let b: u64 = b.trim().parse().unwrap_or_else(|_| panic!("icheck line {line:?}"));
        m.insert(b, i.trim().parse::<u64>().ok());
    }
    m
}

/// `Inode<TAB>Pathname` lines into (inode, path) pairs; debugfs's `//name` for entries of the
/// root is read as `/name`.
fn parse_ncheck(text: &str) -> BTreeSet<(u64, String)> {
    let mut s = BTreeSet::new();
    for line in text.lines().skip_while(|l| !l.starts_with("Inode")).skip(1) {
        let Some((i, p)) = line.split_once('\t') else { continue };
        let p = p.strip_prefix("//").map(|r| format!("/{r}")).unwrap_or_else(|| p.to_string());
        s.insert((i.trim().parse().unwrap_or_else(|_| panic!("ncheck line {line:?}")), p));
    }
    s
}

#[test]
fn ext4_icheck_and_ncheck_equal_debugfs() {
    if !ready(&["setfattr", "mkfs.ext4", "debugfs", "mount", "losetup"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary folder");
    let (img, kernel) = ext4_image(tmp.path());
    let img_s = img.to_str().unwrap();
    let mut inos: Vec<u64> = kernel.iter().map(|(_, i)| *i).collect();
    inos.extend([2, 7, 8, 11]);
    inos.sort_unstable();
    inos.dedup();

    // ncheck of every inode.
    let args: Vec<String> = inos.iter().map(u64::to_string).collect();
    let theirs = parse_ncheck(&debugfs(&img, &[format!("ncheck {}", args.join(" "))])[0]);
    let mut cmd = vec!["ncheck", img_s];
    cmd.extend(args.iter().map(String::as_str));
    let ours = parse_ncheck(&daxray_ok(&cmd));
    assert_eq!(ours, theirs, "ncheck differs from debugfs");
    // And what the kernel's walk saw (hard links: both names).
    let kernel_set: BTreeSet<(u64, String)> = kernel.iter().map(|(p, i)| (*i, p.clone())).collect();
    assert_eq!(ours, kernel_set, "ncheck differs from the kernel's tree");
    assert!(ours.iter().filter(|(i, _)| ours.iter().filter(|(j, _)| j == i).count() > 1).count() >= 4);

    // icheck of every block of every inode, and some blocks no inode owns.
    let lists = debugfs(&img, &inos.iter().map(|i| format!("blocks <{i}>")).collect::<Vec<_>>());
    let mut blocks: BTreeSet<u64> = BTreeSet::new();
    for l in &lists {
        blocks.extend(l.split_whitespace().filter_map(|t| t.parse::<u64>().ok()));
    }
    // The xattr blocks (`File ACL:` in debugfs stat) too.
    let mut acl_blocks = 0;
    for st in debugfs(&img, &inos.iter().map(|i| format!("stat <{i}>")).collect::<Vec<_>>()) {
        let acl =
            st.split("File ACL: ").nth(1).and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok());
        if let Some(b) = acl.filter(|b| *b != 0) {
            blocks.insert(b);
            acl_blocks += 1;
        }
    }
    assert!(acl_blocks >= 2, "only {acl_blocks} files with an xattr block");
    blocks.extend([0, 1, 2, 3, 9, 10, (EXT4_SIZE / 4096) - 1]);
    assert!(blocks.len() > 1000, "only {} blocks", blocks.len());
    let blocks: Vec<String> = blocks.iter().map(u64::to_string).collect();
    let mut theirs = BTreeMap::new();
    let mut ours = BTreeMap::new();
    for chunk in blocks.chunks(500) {
        theirs.extend(parse_icheck(&debugfs(&img, &[format!("icheck {}", chunk.join(" "))])[0]));
        let mut cmd = vec!["icheck", img_s];
        cmd.extend(chunk.iter().map(String::as_str));
        ours.extend(parse_icheck(&daxray_ok(&cmd)));
    }
    assert_eq!(ours.len(), blocks.len());
    let diff: Vec<_> = ours.iter().filter(|(b, o)| theirs.get(b) != Some(o)).take(10).collect();
    assert!(
        diff.is_empty(),
        "icheck differs from debugfs on {diff:?} (debugfs: {:?})",
        diff.iter().map(|(b, _)| theirs.get(b)).collect::<Vec<_>>()
    );
    let owned = ours.values().filter(|o| o.is_some()).count();
    assert!(owned > 1000 && owned < ours.len(), "{owned} of {} blocks owned", ours.len());
}

#[test]
fn xfs_icheck_and_ncheck_equal_xfs_db_and_the_kernel() {
    if !ready(&["setfattr", "mkfs.xfs", "xfs_db", "mount", "losetup"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary folder");
    let (img, kernel) = xfs_image(tmp.path());
    let img_s = img.to_str().unwrap();
    let sb = xfs_fields(&xfs_db(&img, &["sb 0", "print agblocks agblklog"]));
    let agblocks: u64 = sb["agblocks"].parse().unwrap();
    let agblklog: u64 = sb["agblklog"].parse().unwrap();
    assert_ne!(agblocks, 1 << agblklog, "the test wants AGs whose size is not a power of two");

    let mut inos: Vec<u64> = kernel.iter().map(|(_, i)| *i).collect();
    inos.sort_unstable();
    inos.dedup();
    let args: Vec<String> = inos.iter().map(u64::to_string).collect();
    let mut cmd = vec!["ncheck", img_s];
    cmd.extend(args.iter().map(String::as_str));
    let ours = parse_ncheck(&daxray_ok(&cmd));
    let kernel_set: BTreeSet<(u64, String)> = kernel.iter().map(|(p, i)| (*i, p.clone())).collect();
    assert_eq!(ours, kernel_set, "ncheck differs from the kernel's tree");

    let mut want: BTreeMap<u64, u64> = BTreeMap::new();
    for ino in &inos {
        let bmap = parse_xfs_bmap(&xfs_db(&img, &[&format!("inode {ino}"), "bmap"]));
        for (_, fsbno, (agno, agbno), count, _) in bmap {
            assert_eq!(fsbno, (agno << agblklog) | agbno, "xfs_db's fsbno packs agno/agbno");
            for k in 0..count {
                want.insert(agno * agblocks + agbno + k, *ino);
            }
        }
    }
    assert!(want.len() > 500, "only {} blocks mapped", want.len());
    assert!(want.keys().any(|b| *b >= agblocks), "no file in an AG past the first");
    let mut blocks: Vec<String> = want.keys().map(u64::to_string).collect();
    blocks.extend(["0", "1", "2", "3"].map(String::from));
    let mut ours = BTreeMap::new();
    for chunk in blocks.chunks(500) {
        let mut cmd = vec!["icheck", img_s];
        cmd.extend(chunk.iter().map(String::as_str));
        ours.extend(parse_icheck(&daxray_ok(&cmd)));
    }
    for (b, ino) in &want {
        assert_eq!(ours.get(b), Some(&Some(*ino)), "block {b}: xfs_db bmap says inode {ino}");
    }
    for b in 0..4 {
        assert_eq!(ours.get(&b), Some(&None), "block {b} holds AG headers, no inode's");
    }
}
