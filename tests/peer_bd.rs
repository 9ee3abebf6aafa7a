//! `daxray bd`, `groups` and `ag` against the peers on the same bytes: `debugfs -c -R 'bd B'`
//! (the same text), `xfs_db`'s `fsb N; type data; print` (the same bytes), `dumpe2fs`'s group
//! lines and `xfs_db`'s `agf`/`agi`/`agfl` prints; and the recovered view (the default) against
//! the journal or log really replayed: `e2fsck -E journal_only` for jbd2 and the kernel's mount
//! for the XFS log, on copies of the committed crash images.

mod peer_common;

use peer_common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The file-system blocks of `debugfs blocks PATH` (or `<INO>`).
fn debugfs_blocks(img: &Path, what: &str) -> Vec<u64> {
    debugfs(img, &[format!("blocks {what}")])[0].split_whitespace().filter_map(|t| t.parse().ok()).collect()
}

#[test]
fn ext4_bd_prints_what_debugfs_prints() {
    if !ready(&["setfattr", "mkfs.ext4", "debugfs", "mount", "losetup"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary folder");
    let (img, _) = ext4_image(tmp.path());
    let s = img.to_str().unwrap();
    let mut blocks = vec![0u64, 1, 9, 41, (EXT4_SIZE / 4096) - 1];
    for f in ["/big", "/frag", "/d/a", "/small"] {
        blocks.extend(debugfs_blocks(&img, f).into_iter().take(3));
    }
    for b in &blocks {
        let theirs = debugfs(&img, &[format!("bd {b}")]).remove(0);
        assert_eq!(daxray_ok(&["bd", s, &b.to_string()]), theirs, "bd {b}");
        assert_eq!(daxray_ok(&["--raw", "bd", s, &b.to_string()]), theirs, "--raw bd {b} (clean image)");
    }
    // Several blocks: their bytes one after the other.
    let run: Vec<u8> =
        (0..3).flat_map(|k| parse_bd(&debugfs(&img, &[format!("bd {}", blocks[0] + k)])[0], 4096)).collect();
    let ours = parse_bd(&daxray_ok(&["bd", s, &blocks[0].to_string(), "--count", "3"]), 3 * 4096);
    assert_eq!(first_difference(&ours, &run), None, "bd --count 3");
    let (code, _, err) = daxray(&["bd", s, &(EXT4_SIZE / 4096).to_string()]);
    assert_eq!(code, 2, "a block past the end is a usage error: {err}");
}

#[test]
fn ext4_bd_shows_the_journal_replayed() {
    if !ready(&["debugfs", "e2fsck"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary folder");
    let img = unpack_fixture("ext4/kernel-dirty.img.gz", tmp.path(), "dirty.img");
    let replayed = tmp.path().join("replayed.img");
    std::fs::copy(&img, &replayed).expect("copy image");
    let st = Command::new("e2fsck")
        .args(["-E", "journal_only", "-y"])
        .arg(&replayed)
        .status()
        .expect("run e2fsck");
    assert!(st.success() || st.code() == Some(1), "e2fsck -E journal_only failed: {st}");
    // The blocks replay changed; the superblock (needs_recovery cleared) and the journal's own
    // blocks (its superblock) are e2fsck's bookkeeping, which no view of the file system shows.
    let journal = debugfs_blocks(&replayed, "<8>");
    let changed: Vec<u64> = differing_blocks(&img, &replayed, 4096)
        .into_iter()
        .filter(|b| *b != 0 && !journal.contains(b))
        .collect();
    assert!(changed.len() >= 5, "replay changed only {changed:?}");
    let s = img.to_str().unwrap();
    for b in &changed {
        let after = debugfs(&replayed, &[format!("bd {b}")]).remove(0);
        let before = debugfs(&img, &[format!("bd {b}")]).remove(0);
        assert_ne!(after, before);
        assert_eq!(daxray_out(&["bd", s, &b.to_string()]), after, "bd {b}: not the replayed block");
        assert_eq!(daxray_out(&["--raw", "bd", s, &b.to_string()]), before, "--raw bd {b}: not the media");
    }
}

#[test]
fn xfs_bd_holds_the_bytes_xfs_db_shows() {
    if !ready(&["setfattr", "mkfs.xfs", "xfs_db", "mount", "losetup"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary folder");
    let (img, kernel) = xfs_image(tmp.path());
    let s = img.to_str().unwrap();
    let sb = xfs_fields(&xfs_db(&img, &["sb 0", "print agblocks agblklog"]));
    let (agblocks, agblklog): (u64, u64) = (sb["agblocks"].parse().unwrap(), sb["agblklog"].parse().unwrap());
    let big = kernel.iter().find(|(p, _)| p == "/big").expect("/big").1;
    let mut fsbnos: Vec<u64> = vec![0, 1, (1 << agblklog) | 3, (3 << agblklog) | 7];
    for (_, fsbno, _, _, _) in parse_xfs_bmap(&xfs_db(&img, &[&format!("inode {big}"), "bmap"])) {
        fsbnos.push(fsbno);
    }
    for f in &fsbnos {
        let theirs = parse_xfs_data(&xfs_db(&img, &[&format!("fsb {f}"), "type data", "print"]));
        assert_eq!(theirs.len(), 4096);
        let linear = (f >> agblklog) * agblocks + (f & ((1 << agblklog) - 1));
        let by_fsbno = daxray_ok(&["bd", s, "--fsbno", &f.to_string()]);
        assert_eq!(first_difference(&parse_bd(&by_fsbno, 4096), &theirs), None, "bd --fsbno {f}");
        assert_eq!(daxray_ok(&["bd", s, &linear.to_string()]), by_fsbno, "bd {linear} (linear of fsbno {f})");
    }
}

#[test]
fn xfs_bd_shows_the_log_replayed() {
    if !ready(&["xfs_db", "mount", "losetup"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary folder");
    let img = unpack_fixture("xfs/kernel-dirty.img.gz", tmp.path(), "xfs-dirty.img");
    let replayed = tmp.path().join("replayed.img");
    std::fs::copy(&img, &replayed).expect("copy image");
    let m = daxray::oracle::Mount::new(&replayed, 0, "xfs", "").expect("mount a copy (log recovery)");
    m.unmount().expect("umount");
    let sb = xfs_fields(&xfs_db(&img, &["sb 0", "print logstart logblocks agblocks agblklog"]));
    let n = |k: &str| sb[k].parse::<u64>().unwrap();
    assert_eq!(n("agblocks"), 1 << n("agblklog"), "the fixture's internal log start is linear");
    let log = n("logstart")..n("logstart") + n("logblocks");
    // What recovery wrote, less the log itself and the superblock (counters the unmount logs).
    let changed: Vec<u64> =
        differing_blocks(&img, &replayed, 4096).into_iter().filter(|b| *b != 0 && !log.contains(b)).collect();
    assert!(changed.len() >= 20, "recovery changed only {changed:?}");
    let s = img.to_str().unwrap();
    let after_all = std::fs::read(&replayed).expect("read replayed copy");
    let before_all = std::fs::read(&img).expect("read image");
    for b in &changed {
        let at = (*b as usize) * 4096..(*b as usize + 1) * 4096;
        let ours = parse_bd(&daxray_out(&["bd", s, &b.to_string()]), 4096);
        assert_eq!(first_difference(&ours, &after_all[at.clone()]), None, "bd {b}: not the recovered block");
        let raw = parse_bd(&daxray_out(&["--raw", "bd", s, &b.to_string()]), 4096);
        assert_eq!(first_difference(&raw, &before_all[at]), None, "--raw bd {b}: not the media");
    }
    // The same bytes as xfs_db reads them from the kernel's copy, for a few.
    for b in changed.iter().take(5) {
        let theirs = parse_xfs_data(&xfs_db(&replayed, &[&format!("fsb {b}"), "type data", "print"]));
        let ours = parse_bd(&daxray_out(&["bd", s, &b.to_string()]), 4096);
        assert_eq!(first_difference(&ours, &theirs), None, "bd {b} against xfs_db");
    }
}

/// dumpe2fs's per-group facts: group -> field -> value.
fn dumpe2fs_groups(img: &Path) -> BTreeMap<u64, BTreeMap<&'static str, String>> {
    let out = Command::new("dumpe2fs").arg(img).output().expect("run dumpe2fs (e2fsprogs)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut m: BTreeMap<u64, BTreeMap<&'static str, String>> = BTreeMap::new();
    let mut cur = None;
    let num = |s: &str| s.trim_end_matches([',', ')']).to_string();
    for line in text.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        if let Some(rest) =
            line.strip_prefix("Group ").filter(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        {
            let g: u64 = rest.split(':').next().unwrap().parse().unwrap();
            let f = m.entry(g).or_default();
            let (range, after) = rest.split_once("(Blocks ").unwrap().1.split_once(')').unwrap();
            let (a, b) = range.split_once('-').unwrap();
            f.insert("first_block", a.into());
            f.insert("last_block", b.into());
            if let Some(c) = after.split_whitespace().nth(1).filter(|_| after.contains("csum")) {
                f.insert("checksum", c.into());
            }
            let flags =
                after.split_once('[').map(|(_, x)| x.trim_end_matches(']').to_string()).unwrap_or_default();
            f.insert("flags", flags);
            cur = Some(g);
            continue;
        }
        let Some(f) = cur.and_then(|g| m.get_mut(&g)) else { continue };
        if line.contains("Block bitmap at") {
            f.insert("block_bitmap", num(t[3]));
            if let Some(i) = t.iter().position(|x| *x == "csum") {
                f.insert("block_bitmap_csum", t[i + 1].into());
            }
        } else if line.contains("Inode bitmap at") {
            f.insert("inode_bitmap", num(t[3]));
            if let Some(i) = t.iter().position(|x| *x == "csum") {
                f.insert("inode_bitmap_csum", t[i + 1].into());
            }
        } else if line.contains("Inode table at") {
            let (a, b) = t[3].split_once('-').unwrap();
            f.insert("inode_table", a.into());
            f.insert("inode_table_last", b.into());
        } else if line.contains("free blocks,") {
            f.insert("free_blocks_count", t[0].into());
            f.insert("free_inodes_count", t[3].into());
            f.insert("used_dirs_count", t[6].into());
            if let Some(i) = t.iter().position(|x| x.starts_with("unused")) {
                f.insert("itable_unused", t[i - 1].into());
            }
        }
    }
    m
}

#[test]
fn ext4_groups_agree_with_dumpe2fs() {
    if !ready(&["setfattr", "mkfs.ext4", "dumpe2fs", "mount", "losetup"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary folder");
    let (csum_img, _) = ext4_image(tmp.path());
    // Many groups, 1 KiB blocks, gdt_csum (crc16) instead of metadata_csum, uninitialised groups.
    let (old_img, _) = made_image(
        tmp.path(),
        "old.img",
        300 << 20,
        &["mkfs.ext4", "-q", "-b", "1024", "-O", "^metadata_csum,uninit_bg"],
        "ext4",
        populate_files,
    );
    for img in [&csum_img, &old_img] {
        let theirs = dumpe2fs_groups(img);
        let ours: serde_json::Value =
            serde_json::from_str(&daxray_ok(&["--json", "groups", img.to_str().unwrap()])).expect("JSON");
        let groups = ours["groups"].as_array().expect("groups");
        assert_eq!(groups.len(), theirs.len(), "{}: group count", img.display());
        assert!(img == &csum_img || groups.len() > 30, "few groups");
        for g in groups {
            let n = g["group"].as_u64().unwrap();
            let want = &theirs[&n];
            assert!(want.len() >= 10, "group {n}: dumpe2fs gave only {want:?}");
            for (k, v) in want {
                let got = match *k {
                    "flags" => g["flag_names"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_str().unwrap())
                        .collect::<Vec<_>>()
                        .join(", "),
                    "checksum" => format!("{:#06x}", g["checksum"].as_u64().unwrap()),
                    "block_bitmap_csum" | "inode_bitmap_csum" => format!("{:#010x}", g[*k].as_u64().unwrap()),
                    _ => g[*k].to_string(),
                };
                assert_eq!(&got, v, "{}: group {n} {k}", img.display());
            }
            assert_eq!(g["checksum_ok"], serde_json::json!(true), "group {n}");
        }
    }
}

/// `daxray ag`'s sections: header name -> `field = value` pairs.
fn ag_sections(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut m: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut cur = String::new();
    for line in text.lines() {
        if let Some((h, _)) = line.split_once(" (daddr ") {
            cur = h.split_whitespace().next().unwrap().to_string();
        } else if let Some((k, v)) = line.split_once(" = ") {
            m.entry(cur.clone()).or_default().insert(k.into(), v.into());
        }
    }
    m
}

#[test]
fn xfs_ag_headers_agree_with_xfs_db() {
    if !ready(&["setfattr", "mkfs.xfs", "xfs_db", "mount", "losetup"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary folder");
    let (img, _) = xfs_image(tmp.path());
    let dirty = unpack_fixture("xfs/kernel-dirty.img.gz", tmp.path(), "xfs-dirty.img");
    let replayed = tmp.path().join("replayed.img");
    std::fs::copy(&dirty, &replayed).expect("copy image");
    daxray::oracle::Mount::new(&replayed, 0, "xfs", "").expect("mount a copy").unmount().expect("umount");
    // (daxray's image and options, the image xfs_db reads)
    let cases: [(&Path, &[&str], &Path); 3] =
        [(&img, &[], &img), (&dirty, &["--raw"], &dirty), (&dirty, &[], &replayed)];
    for (ours_img, opts, theirs_img) in cases {
        let agcount: u32 =
            xfs_fields(&xfs_db(theirs_img, &["sb 0", "print agcount"]))["agcount"].parse().unwrap();
        for agno in 0..agcount {
            let mut args = opts.to_vec();
            let a = agno.to_string();
            args.extend(["ag", ours_img.to_str().unwrap(), &a]);
            let ours = ag_sections(&daxray_out(&args));
            for h in ["agf", "agi", "agfl"] {
                let theirs = xfs_fields(&xfs_db(theirs_img, &[&format!("{h} {agno}"), "print"]));
                assert_eq!(ours[h], theirs, "{h} {agno} of {} {opts:?}", ours_img.display());
            }
        }
    }
}
