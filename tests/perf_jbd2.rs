//! The fast jbd2 paths keep their answers (root, kernel-made `data=journal` crash images):
//! - `daxray journal` without `--verify-data` lists the same transactions and tags as with it
//!   (and as `debugfs logdump`), leaving the data tag checksums unverified (null);
//! - `--verify-data` verifies every live tag (all good in a kernel-written log);
//! - the streamed JSON is byte for byte the pretty print of the library's JSON tree;
//! - the zero-copy recovery overlay reads the same bytes as the kernel's recovery (every file).

mod common;
mod jbd2_common;

use common::{copy_with_flipped_byte, daxray_stdout};
use jbd2_common::{Durability, kernel_view, magic_files, make_dirty_mounted_with, prerequisites};
use std::process::Command;

const TOOLS: &[&str] = &["mkfs.ext4", "debugfs", "losetup", "mount", "umount"];

/// (sequence, fs block, journal block, csum_ok) of every logged block.
fn tags(v: &serde_json::Value) -> Vec<(u64, u64, u64, serde_json::Value)> {
    let mut out = vec![];
    for t in v["transactions"].as_array().unwrap() {
        for b in t["blocks"].as_array().unwrap() {
            out.push((
                t["sequence"].as_u64().unwrap(),
                b["fs_block"].as_u64().unwrap(),
                b["journal_block"].as_u64().unwrap(),
                b["csum_ok"].clone(),
            ));
        }
    }
    out
}

#[test]
fn fast_listing_and_zero_copy_recovery_keep_their_answers() {
    if !prerequisites(TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dirty = make_dirty_mounted_with(
        tmp.path(),
        "perf_data_journal",
        &["-O", "metadata_csum,64bit"],
        "data=journal",
        23,
        Durability::Fsync,
        |root| assert_eq!(magic_files(root), 4),
    );

    // Streamed JSON == pretty print of the library's tree (same keys, same order, same bytes).
    let fs = daxray::image::open(&dirty, None).unwrap().fs_bytes.clone();
    let lib = daxray::cli::listing::ext4(fs.clone(), None, true).unwrap();
    let streamed = daxray_stdout(&["--json", "journal", "--all", "--verify-data"], &dirty);
    let pretty = serde_json::to_string_pretty(&lib.json).unwrap() + "\n";
    assert_eq!(String::from_utf8_lossy(&streamed), pretty, "streamed JSON differs from the library's tree");
    // And the text form.
    let text = daxray_stdout(&["journal", "--all", "--verify-data"], &dirty);
    assert_eq!(String::from_utf8_lossy(&text), lib.text, "streamed text differs from the library's");

    // Default listing: same tags as --verify-data, data checksums not verified.
    let verified: serde_json::Value =
        serde_json::from_slice(&daxray_stdout(&["--json", "journal", "--verify-data"], &dirty)).unwrap();
    let quick: serde_json::Value =
        serde_json::from_slice(&daxray_stdout(&["--json", "journal"], &dirty)).unwrap();
    let tv = tags(&verified);
    let tq = tags(&quick);
    assert!(tv.len() > 100, "a data=journal log holds many logged blocks: {}", tv.len());
    assert_eq!(
        tv.iter().map(|t| (t.0, t.1, t.2)).collect::<Vec<_>>(),
        tq.iter().map(|t| (t.0, t.1, t.2)).collect::<Vec<_>>(),
        "the quick listing lists other tags"
    );
    // The copy is taken while the file system is mounted, so the journal may be caught in the
    // middle of a commit: the in-flight transaction (the last live one) can have a torn commit
    // block, and the kernel's scan ends recovery there. Every transaction recovery replays must
    // have good tags and a good commit checksum; a bad one is allowed only on the last.
    let txs = verified["transactions"].as_array().unwrap();
    let replayed_seqs: std::collections::HashSet<u64> =
        txs.iter().filter(|t| t["replayed"] == true).map(|t| t["sequence"].as_u64().unwrap()).collect();
    assert!(!replayed_seqs.is_empty(), "the dirty log must have replayed transactions");
    assert!(
        tv.iter().filter(|t| replayed_seqs.contains(&t.0)).all(|t| t.3 == serde_json::Value::Bool(true)),
        "a kernel-written log has good tags in every transaction recovery replays"
    );
    assert!(tq.iter().all(|t| t.3.is_null()), "without --verify-data data tags are not verified");
    assert_eq!(verified["recovery"]["details"]["data_checksums_verified"], true);
    assert_eq!(quick["recovery"]["details"]["data_checksums_verified"], false);
    for k in ["blocks_replayed", "replay_writes", "revoke_hits", "transactions"] {
        assert_eq!(verified["recovery"]["details"][k], quick["recovery"]["details"][k], "{k}");
    }
    // Descriptor and commit checksums are verified either way: good on every replayed
    // transaction; a bad commit checksum only on the last live one (a commit torn by the copy),
    // which recovery then does not replay.
    let qtx = quick["transactions"].as_array().unwrap();
    for (i, t) in qtx.iter().enumerate() {
        // Logged blocks come with descriptor blocks, each with its checksum. A transaction may
        // have none: jbd2 commits transactions that hold only revoke records, or nothing (a
        // handle that changed no buffer).
        let descriptors = t["checksums"]["descriptors"].as_array().unwrap();
        let revokes = t["checksums"]["revokes"].as_array().unwrap();
        assert!(
            t["blocks"].as_array().unwrap().is_empty() || !descriptors.is_empty(),
            "a transaction with logged blocks but no descriptor checksum: {t}"
        );
        assert!(
            descriptors.iter().chain(revokes).all(|c| *c == true) || i + 1 == qtx.len(),
            "a bad descriptor or revoke checksum before the last transaction: {t}"
        );
        if t["checksums"]["commit"] != true {
            assert_eq!(
                i + 1,
                qtx.len(),
                "a bad commit checksum before the last transaction: {}",
                t["sequence"]
            );
            assert_ne!(
                t["replayed"], true,
                "a transaction with a bad commit checksum is replayed: {}",
                t["sequence"]
            );
            eprintln!(
                "note: transaction {} has a torn commit block (copied mid-commit); not replayed",
                t["sequence"]
            );
        } else if t["live"] == true {
            assert_eq!(
                t["replayed"], true,
                "a live, committed transaction is not replayed: {}",
                t["sequence"]
            );
        }
    }

    // debugfs logdump lists the same (fs block, journal block) pairs for the live log.
    let o = Command::new("debugfs").args(["-c", "-R", "logdump -a"]).arg(&dirty).output().unwrap();
    let dump = String::from_utf8_lossy(&o.stdout);
    let theirs: Vec<(u64, u64)> = dump
        .lines()
        .filter_map(|l| {
            let r = l.trim().strip_prefix("FS block ")?;
            let fs: u64 = r.split_whitespace().next()?.parse().ok()?;
            let jb: u64 = r.split("journal block ").nth(1)?.split_whitespace().next()?.parse().ok()?;
            Some((fs, jb))
        })
        .collect();
    let ours: Vec<(u64, u64)> = tq.iter().map(|t| (t.1, t.2)).collect();
    assert_eq!(ours, theirs, "quick listing differs from debugfs logdump");

    // The zero-copy overlay (escaped blocks included) reads what the kernel's recovery shows.
    let opened = daxray::open::open(&dirty, &Default::default()).unwrap();
    assert!(opened.recovery.applied, "{}", opened.recovery.details);
    let (mine, _) = daxray::manifest::build(&*opened.fs, true).unwrap();
    let kernel = kernel_view(&dirty);
    assert!(kernel.len() > 10, "the workload made files: {}", kernel.len());
    let strip = |v: &[daxray::manifest::ManifestEntry]| {
        let mut v: Vec<(String, Option<String>)> =
            v.iter().map(|e| (e.path.clone(), e.sha256.clone())).collect();
        v.sort();
        v
    };
    assert_eq!(strip(&mine), strip(&kernel), "recovered files differ from the kernel's");
    println!("{} logged blocks, {} files equal to the kernel's recovery", tv.len(), kernel.len());

    // A corrupt logged block: recovery (whose tag checksums are verified ahead, in threads, on a
    // log this large) fails in the replay pass with EFSBADCRC and skips exactly that block, and
    // the tag checksums equal those computed one by one by the listing walker.
    let last = tv.iter().rfind(|t| t.3 == serde_json::Value::Bool(true)).unwrap();
    let bad_jb = last.2;
    let e4 = daxray::ext4::Ext4::open(fs.clone()).unwrap();
    use daxray::fs::FileSystem;
    let ext = e4.map(8).unwrap();
    let e = ext.iter().find(|e| e.logical <= bad_jb && bad_jb < e.logical + e.length).unwrap();
    let phys = e.physical + (bad_jb - e.logical);
    let bad = tmp.path().join("bad.img");
    copy_with_flipped_byte(&dirty, &bad, phys * 4096 + 100);
    let bfs = daxray::image::open(&bad, None).unwrap().fs_bytes.clone();
    let run = daxray::ext4::journal::recover_full(bfs.clone(), None).unwrap();
    assert_eq!(
        run.error,
        Some((daxray::jbd2::recover::Pass::Replay, daxray::jbd2::recover::KernelError::BadCrc)),
        "{}",
        run.report.details
    );
    let (j, _) = daxray::ext4::journal::open_journal(&bfs, None).unwrap().unwrap();
    let (one_by_one, _) = daxray::jbd2::list::live(&j);
    let out = daxray::jbd2::recover::recover(&j);
    let mut compared = 0;
    for t in &one_by_one {
        for b in &t.blocks {
            if let Some(r) = out.tag_checks.get(b.journal_block) {
                assert_eq!(Some(r), b.csum_ok, "journal block {}", b.journal_block);
                compared += 1;
            }
        }
    }
    assert!(compared > 100, "recovery verified the tags: {compared}");
    assert_eq!(out.tag_checks.get(bad_jb), Some(false), "the corrupted block {bad_jb} fails its checksum");
    assert!(!run.replayed().values().any(|&(_, jb)| jb == bad_jb), "the corrupt copy is not replayed");

    // The checks left running in the background (as `check` uses them, its claims checked
    // meanwhile): on the clean log they confirm and the model is the verified one, opened once;
    // on the corrupt copy they do not confirm, and the model is opened again with every
    // checksum verified first, so the outcome is the kernel's all the same.
    use daxray::fs::FsKind;
    use daxray::open::{OpenOptions, open_source, open_source_then};
    let pending = daxray::ext4::journal::recover_full_background(fs.clone(), None).unwrap().pending;
    assert!(pending.expect("checks left running on the clean log").confirm(), "clean log: all good");
    let pending = daxray::ext4::journal::recover_full_background(bfs.clone(), None).unwrap().pending;
    assert!(
        !pending.expect("checks left running on the corrupt log").confirm(),
        "corrupt copy: not all good"
    );
    for (src, runs_wanted) in [(&fs, 1), (&bfs, 2)] {
        let mut runs = 0;
        let (m, files) = open_source_then(src.clone(), FsKind::Ext4, &OpenOptions::default(), |m| {
            runs += 1;
            daxray::manifest::build(&*m.fs, true).unwrap().0.len()
        })
        .unwrap();
        assert_eq!(runs, runs_wanted, "how often the model was opened");
        let verified = open_source(src.clone(), FsKind::Ext4, &OpenOptions::default()).unwrap();
        assert_eq!(m.recovery.details, verified.recovery.details, "the report is the verified one");
        assert_eq!(files, daxray::manifest::build(&*verified.fs, true).unwrap().0.len());
        if runs_wanted == 1 {
            assert!(files > 10, "files seen: {files}");
        } else {
            // A logged copy fails its checksum in the replay pass: the kernel's recovery, and
            // the mount, fail, so the view is refused and is the media as it is.
            assert!(m.recovery.details["refused"][0].is_string(), "{}", m.recovery.details);
            let raw =
                open_source(src.clone(), FsKind::Ext4, &OpenOptions { raw: true, ..Default::default() })
                    .unwrap();
            assert_eq!(files, daxray::manifest::build(&*raw.fs, true).unwrap().0.len());
        }
    }

    // The JSON listing carries the findings at the top level (streamed and as a tree), and they
    // are the ones the text form prints: on the clean log none is an error, on the corrupt copy
    // the bad block is one.
    let clean = quick["findings"].as_array().expect("a top-level findings array");
    assert!(clean.iter().all(|f| f["severity"] != "error"), "{clean:?}");
    assert_eq!(lib.json["findings"], serde_json::json!(lib.findings));
    let badl = daxray::cli::listing::ext4(bfs.clone(), None, false).unwrap();
    let streamed: serde_json::Value =
        serde_json::from_slice(&daxray_stdout(&["--json", "journal", "--verify-data"], &bad)).unwrap();
    let found = streamed["findings"].as_array().expect("a top-level findings array");
    assert_eq!(streamed["findings"], serde_json::json!(badl.findings), "streamed findings differ");
    let hit = found
        .iter()
        .filter(|f| f["structure"] == "jbd2 logged block" && f["block"] == serde_json::json!(bad_jb))
        .count();
    assert_eq!(hit, 1, "the corrupt block {bad_jb} is a finding: {found:?}");
}

/// An external journal device whose s_maxlen is far larger than the device (found by the
/// `sparse_jbd2` fuzz target): the kernel refuses it, and `journal --all` must not scan one lap
/// of the corrupt length for old transactions (it took 1.5 s in release builds; bounded by the
/// device's blocks it is immediate).
#[test]
fn corrupt_maxlen_does_not_drive_the_old_transaction_scan() {
    if !common::ready(&["mkfs.ext4"], false) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dev = tmp.path().join("jdev.img");
    std::fs::File::create(&dev).unwrap().set_len(2 << 20).unwrap();
    let o = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-O", "journal_dev", "-b", "1024"])
        .arg(&dev)
        .output()
        .unwrap();
    assert!(o.status.success(), "mkfs.ext4: {}", String::from_utf8_lossy(&o.stderr));
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().read(true).write(true).open(&dev).unwrap();
        let mut magic = [0u8; 4];
        f.read_exact_at(&mut magic, 2048).unwrap();
        assert_eq!(u32::from_be_bytes(magic), 0xC03B_3998, "jbd2 superblock at byte 2048");
        // s_maxlen (byte 16 of the jbd2 superblock), as in the fuzz finding.
        f.write_all_at(&1_560_283_136u32.to_be_bytes(), 2048 + 16).unwrap();
    }
    let fs = daxray::image::open(&dev, None).unwrap().fs_bytes.clone();
    let t = std::time::Instant::now();
    let l = daxray::cli::listing::ext4(fs, None, true).unwrap();
    let took = t.elapsed();
    let refused = l.json["refused"].as_array().unwrap();
    assert!(
        refused.iter().any(|r| r.as_str().unwrap_or("").contains("journal file too short")),
        "the kernel refuses this journal: {refused:?}"
    );
    assert!(took.as_millis() < 500, "listing --all took {took:?}");
    println!("corrupt s_maxlen: refused ({} reasons), listing --all in {took:?}", refused.len());
}
