//! `daxray map` on XFS in the peers' units: every extent of every file of a mkfs-made image
//! filled through a loop mount (four AGs whose size is not a power of two, so linear block
//! numbers and packed fsbnos differ) against `xfs_db -c 'inode N' -c bmap`: offset, fsbno
//! (the bmbt's startblock), agno/agbno, count and the unwritten flag; the daddr against
//! `xfs_db -c 'convert fsb N daddr'`. The text table's labelled columns carry the same numbers.

mod peer_common;

use peer_common::*;

#[test]
fn xfs_map_gives_xfs_db_bmap_units() {
    if !ready(&["setfattr", "mkfs.xfs", "xfs_db", "xfs_io", "mount", "losetup"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary folder");
    let (img, kernel) = made_image(
        tmp.path(),
        "xfs.img",
        XFS_SIZE,
        &["mkfs.xfs", "-q", "-f", "-m", "reflink=0", "-d", "agcount=4"],
        "xfs",
        |root| {
            populate_files(root);
            // An unwritten extent between written ones.
            let st = std::process::Command::new("xfs_io")
                .args(["-f", "-c", "falloc 0 1m", "-c", "pwrite -S 0xab 256k 64k"])
                .arg(root.join("prealloc"))
                .output()
                .expect("run xfs_io (xfsprogs)");
            assert!(st.status.success(), "xfs_io falloc");
            kernel_inodes(root)
        },
    );
    let s = img.to_str().unwrap();
    let mut extents = 0;
    let mut past_ag0 = false;
    let mut unwritten = false;
    for (path, ino) in &kernel {
        let out = daxray_ok(&["--json", "map", s, path]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("map JSON");
        let ours = v["extents"].as_array().unwrap();
        let theirs: Vec<XfsBmap> = parse_xfs_bmap(&xfs_db(&img, &[&format!("inode {ino}"), "bmap -d"]));
        assert_eq!(ours.len(), theirs.len(), "{path}: extent count");
        let text = daxray_ok(&["map", s, path]);
        let mut lines = text.lines();
        let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(head, ["logical", "physical", "fsbno", "agno/agbno", "daddr", "length", "flags"]);
        for (e, (off, fsbno, (agno, agbno), count, flag)) in ours.iter().zip(&theirs) {
            let n = |k: &str| e[k].as_u64().unwrap();
            assert_eq!(
                (
                    n("logical"),
                    n("fsbno"),
                    n("agno"),
                    n("agbno"),
                    n("length"),
                    e["unwritten"].as_bool().unwrap()
                ),
                (*off, *fsbno, *agno, *agbno, *count, *flag == 1),
                "{path}: extent at {off}"
            );
            let conv = xfs_db(&img, &[&format!("convert fsb {fsbno} daddr")]);
            let daddr = conv
                .split_whitespace()
                .next()
                .and_then(|t| u64::from_str_radix(t.trim_start_matches("0x"), 16).ok());
            assert_eq!(Some(n("daddr")), daddr, "{path}: daddr of fsbno {fsbno} ({conv})");
            let cols: Vec<String> = lines.next().unwrap().split_whitespace().map(String::from).collect();
            let want = [n("logical"), n("physical"), n("fsbno")].map(|x| x.to_string());
            assert_eq!(&cols[..3], &want, "{path}: text row");
            assert_eq!(cols[3], format!("{agno}/{agbno}"));
            assert_eq!(cols[4..6], [n("daddr").to_string(), count.to_string()]);
            extents += 1;
            past_ag0 |= *agno > 0;
            unwritten |= *flag == 1;
        }
    }
    assert!(extents > 300, "only {extents} extents compared");
    assert!(past_ag0 && unwritten, "want extents past AG 0 ({past_ag0}) and unwritten ones ({unwritten})");
}
