//! The streamed XFS log listing keeps its answers (root, kernel-made crash image): `daxray
//! journal` (text and `--json`, with and without `--all`) writes byte for byte what the library's
//! `cli::listing::xfs` produces as a text and as a JSON tree, and the listing is not empty.

mod common;

use common::ready;
use common::{copy_with_flipped_byte, daxray_stdout};
use daxray::oracle::{self, WorkloadSpec};

#[test]
fn streamed_xfs_listing_equals_the_library_listing() {
    if !ready(&["mkfs.xfs", "losetup", "mount", "umount"], true) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base.img");
    let dirty = tmp.path().join("dirty.img");
    oracle::make_image(&base, 320 << 20, &["mkfs.xfs", "-q", "-f", "-m", "reflink=0"]).expect("mkfs.xfs");
    let spec = WorkloadSpec {
        seed: 31,
        files: 200,
        big_dir_entries: 100,
        max_file_bytes: 64 << 10,
        ops: 100,
        fsync: true,
    };
    oracle::crash_copy(&base, "xfs", "", &dirty, |root| oracle::run_workload(root, &spec))
        .expect("workload and crash copy");

    for all in [false, true] {
        let fs = daxray::image::open(&dirty, None).unwrap().fs_bytes.clone();
        let lib = daxray::cli::listing::xfs(fs, &Default::default(), all).unwrap();
        let n = lib.json["transactions"].as_array().unwrap().len();
        assert!(n > 10, "a dirty log after a workload holds transactions: {n}");
        let flags: &[&str] = if all { &["--all"] } else { &[] };
        let mut args = vec!["--json", "journal"];
        args.extend(flags);
        let streamed = daxray_stdout(&args, &dirty);
        let pretty = serde_json::to_string_pretty(&lib.json).unwrap() + "\n";
        assert_eq!(String::from_utf8_lossy(&streamed), pretty, "streamed JSON differs (all: {all})");
        let mut args = vec!["journal"];
        args.extend(flags);
        let text = daxray_stdout(&args, &dirty);
        assert_eq!(String::from_utf8_lossy(&text), lib.text, "streamed text differs (all: {all})");
        let items = lib.text.lines().filter(|l| l.starts_with("  item ")).count();
        assert!(items > n, "every transaction lists its items: {items} items, {n} transactions");
        println!("all={all}: {n} transactions, {items} items, streamed output identical");
        assert_eq!(lib.json["findings"], serde_json::json!(lib.findings), "findings in the JSON tree");
    }

    // A record whose data is damaged: its CRC fails, and the JSON listing (streamed and as a
    // tree) carries that as a top-level finding.
    let fs = daxray::image::open(&dirty, None).unwrap().fs_bytes.clone();
    let lib = daxray::cli::listing::xfs(fs, &Default::default(), false).unwrap();
    let start = lib.json["log_start_byte"].as_u64().unwrap();
    let recs = lib.json["record_list"].as_array().unwrap();
    assert!(recs.len() > 2, "records: {}", recs.len());
    let r = &recs[recs.len() / 2];
    let at = start + (r["block"].as_u64().unwrap() + r["header_blocks"].as_u64().unwrap()) * 512 + 100;
    let bad = tmp.path().join("bad.img");
    copy_with_flipped_byte(&dirty, &bad, at);
    let fs = daxray::image::open(&bad, None).unwrap().fs_bytes.clone();
    let badl = daxray::cli::listing::xfs(fs, &Default::default(), false).unwrap();
    let streamed: serde_json::Value =
        serde_json::from_slice(&daxray_stdout(&["--json", "journal"], &bad)).unwrap();
    let found = streamed["findings"].as_array().expect("a top-level findings array");
    assert_eq!(streamed["findings"], serde_json::json!(badl.findings), "streamed findings differ");
    assert!(
        found.iter().any(|f| f["severity"] == "error" && f["structure"] == "xfs log record"),
        "the damaged record is a finding: {found:?}"
    );
    println!("damaged record at byte {at}: {} findings", found.len());

    // The listing verifies the records' crcs in the same pass that reassembles them, leaving
    // out the tail verification's own pass unless a bad record would move the tail: its bounds
    // must be those of the full head/tail search (`find_bounds`, which runs that pass), on the
    // intact log and with the last record before the head bad (a torn head); with a bad record
    // in the middle, both give the kernel's refusal.
    let last = &recs[recs.len() - 1];
    let at_last =
        start + (last["block"].as_u64().unwrap() + last["header_blocks"].as_u64().unwrap()) * 512 + 100;
    let torn = tmp.path().join("torn.img");
    copy_with_flipped_byte(&dirty, &torn, at_last);
    for img in [&dirty, &bad, &torn] {
        let fs = daxray::image::open(img, None).unwrap().fs_bytes.clone();
        let a = daxray::xlog::analyse(&fs, &Default::default(), false).unwrap();
        let v2 = a.sb.log_version() == 2;
        let dev = daxray::xlog::log::LogDev::new(fs.clone(), a.base, a.bytes, v2).unwrap();
        let got = a.bounds.clone().expect("a log");
        let full = match daxray::xlog::search::find_bounds(&dev) {
            Ok(b) => b.expect("a log"),
            Err(e) => {
                // A record that fails far behind the head (the bad one, 8 or more records
                // before it): the kernel's xlog_verify_tail fails the mount; the listing says so
                // and lists the log up to the head it found.
                assert!(img == &bad, "{}: {e}", img.display());
                assert!(e.to_string().contains("failed to locate log tail"), "{e}");
                let why = a.refused.as_deref().expect("the listing says the kernel refuses");
                assert!(why.contains("EFSBADCRC"), "{why}");
                got.clone()
            }
        };
        assert_eq!(
            (got.head_blk, got.tail_blk, got.torn, got.clean),
            (full.head_blk, full.tail_blk, full.torn, full.clean),
            "{}",
            img.display()
        );
        assert_eq!(a.records.first().map(|r| r.blk), Some(full.tail_blk), "records start at the tail");
        // `daxray journal` writes its text while it reads the log: the same text, the same
        // findings (on standard error, one per line) as the library's listing.
        let lib = daxray::cli::listing::xfs(fs.clone(), &Default::default(), false).unwrap();
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_daxray"))
            .arg("journal")
            .arg(img)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout), lib.text, "{}", img.display());
        let err = String::from_utf8_lossy(&o.stderr);
        for f in &lib.findings {
            assert!(err.contains(&f.message), "{}: finding {f:?} not in {err}", img.display());
        }
        assert_eq!(err.lines().count(), lib.findings.len(), "{}: {err}", img.display());
        assert_eq!(
            o.status.code(),
            Some(if lib.findings.iter().any(|f| f.severity == daxray::error::Severity::Error) {
                1
            } else {
                0
            })
        );
        assert!(!a.parsed.committed.is_empty());
        println!(
            "{}: head {} tail {} torn {:?}: {} records, {} transactions",
            img.display(),
            got.head_blk,
            got.tail_blk,
            got.torn,
            a.records.len(),
            a.parsed.committed.len()
        );
    }
}
