//! The e2fsprogs journal test images: daxray's listing and recovery against what e2fsck recorded
//! (`expect*` files), against `debugfs logdump` on the same bytes, and against `e2fsck -E
//! journal_only` replaying a copy.

mod common;

use common::logdump::{ours, parse_logdump, tags_only};
use common::{e2fsprogs_corpus as corpus, unpack_e2fsprogs_case};
use daxray::image::BlockSource;
use daxray::{ext4, jbd2};
use std::path::{Path, PathBuf};
use std::process::Command;

fn require_tools() {
    if let Err(m) = daxray::oracle::require(&["debugfs", "e2fsck", "bzip2", "gzip", "tar"], false) {
        panic!("{m}");
    }
}

fn expect_text(case: &Path) -> String {
    let mut s = String::new();
    for f in ["expect", "expect.0", "expect.1"] {
        if let Ok(t) = std::fs::read_to_string(case.join(f)) {
            s.push_str(&t);
        }
    }
    s
}

fn logdump(img: &Path, jnl: Option<&Path>) -> String {
    let req = match jnl {
        Some(j) => format!("logdump -a -f {}", j.display()),
        None => "logdump -a".to_string(),
    };
    let o = Command::new("debugfs").args(["-c", "-R", &req]).arg(img).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

struct CaseResult {
    name: String,
    transactions: usize,
    replayed_blocks: usize,
    e2fsck_blocks_compared: usize,
}

fn run_case(case: &Path) -> CaseResult {
    let name = case.file_name().unwrap().to_string_lossy().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let (img, jnl) = unpack_e2fsprogs_case(case, tmp.path()).expect("an image in the case");
    let expect = expect_text(case);
    let before = std::fs::read(&img).unwrap();
    let opened = daxray::open::open_image(&img, &Default::default()).expect("an ext4 image");
    let fs = opened.fs_bytes.clone();
    let mut res =
        CaseResult { name: name.clone(), transactions: 0, replayed_blocks: 0, e2fsck_blocks_compared: 0 };

    // 1. Listing vs debugfs logdump (same bytes).
    let listing = daxray::cli::listing::ext4(fs.clone(), jnl.as_deref(), false);
    let dump = logdump(&img, jnl.as_deref());
    // Tags only: some cases corrupt a revoke block on purpose, which logdump and the kernel
    // read differently.
    let theirs = tags_only(parse_logdump(&dump));
    match &listing {
        Ok(l) => {
            let mine = tags_only(ours(&l.json));
            assert_eq!(mine, theirs, "{name}: committed transactions differ from debugfs logdump:\n{dump}");
            res.transactions = mine.len();
            // --all is a superset of the live listing and stays bounded.
            let all = daxray::cli::listing::ext4(fs.clone(), jnl.as_deref(), true).unwrap();
            assert!(
                all.json["transactions"].as_array().unwrap().len()
                    >= l.json["transactions"].as_array().unwrap().len()
            );
            // e2fsprogs recorded logdump output for some cases (expect.0): compare with it too.
            if expect.contains("Journal starts at block") {
                let recorded = tags_only(parse_logdump(&expect));
                assert_eq!(mine, recorded, "{name}: differs from the logdump e2fsprogs recorded");
            }
        }
        Err(e) => {
            // Only acceptable when debugfs also finds no journal to dump.
            assert!(theirs.is_empty(), "{name}: listing failed ({e}) but debugfs lists {theirs:?}");
        }
    }

    // 2. Recovery vs what e2fsck recorded.
    let is_jdev = ext4::journal::fs_journal_info(&*fs).map(|i| i.journal_dev).unwrap_or(false);
    if is_jdev {
        assert!(
            ext4::journal::recover_full(fs.clone(), None).is_err(),
            "{name}: a journal device is not a file system"
        );
        return res;
    }
    let run = ext4::journal::recover_full(fs.clone(), jnl.as_deref()).expect("recovery returns a view");
    let details = &run.report.details;
    if let Some(line) = expect.lines().find(|l| l.contains("was corrupt, replay was aborted")) {
        let n: u32 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert_eq!(run.failed_commit, Some(n), "{name}: e2fsck: {line}; ours: {details}");
        assert_eq!(run.end_transaction, Some(n), "{name}: replay must stop before {n}");
        assert!(run.error.is_none(), "{name}: a bad commit checksum ends recovery without error");
    } else if expect.contains("Journal checksum error found") {
        assert_eq!(
            run.error.map(|e| e.1),
            Some(jbd2::recover::KernelError::BadCrc),
            "{name}: e2fsck found a journal checksum error; ours: {details}"
        );
    } else if expect.contains("Invalid argument while recovering journal") {
        assert_eq!(run.error.map(|e| e.1), Some(jbd2::recover::KernelError::Invalid), "{name}: {details}");
        assert!(run.replayed().is_empty(), "{name}: nothing replays when the revoke pass fails");
    } else if expect.contains("Superblock has an invalid journal")
        || expect.contains("Journal superblock is corrupt")
    {
        assert!(!run.report.applied, "{name}: a journal the kernel rejects is not replayed: {details}");
        assert!(
            run.report.findings.iter().any(|f| f.severity == daxray::error::Severity::Error),
            "{name}: the bad journal must be reported"
        );
    } else if expect.contains("External journal superblock checksum does not match")
        || expect.contains("External journal does not support this filesystem")
    {
        assert!(
            run.report
                .findings
                .iter()
                .any(|f| f.message.contains("external journal") || f.message.contains("journal device UUID")),
            "{name}: the bad external journal must be reported: {:?}",
            run.report.findings
        );
    } else if expect.contains("recovering journal") {
        assert!(run.report.needed, "{name}: e2fsck recovered the journal; ours says not needed: {details}");
        assert!(run.error.is_none(), "{name}: e2fsck recovered cleanly; ours: {details}");
        if jnl.is_none() && !details.get("error").is_some_and(|e| e.is_string()) {
            assert!(
                !run.replayed().is_empty() || run.end_transaction == run.start_transaction,
                "{name}: {details}"
            );
        }
    }
    res.replayed_blocks = run.replayed().len();

    // 3. e2fsck -E journal_only on a copy: every block we replay must hold the same bytes there,
    // and every block e2fsck changed must be one we replayed (or the superblocks and journal).
    let fc_valid = details["fast_commit"]["valid_tags"].as_u64().unwrap_or(0);
    if fc_valid > 0 {
        // e2fsck replays fast commits too: daxray's view (jbd2 then fast-commit replay) must show
        // the same files as daxray reading e2fsck's replayed copy as it is.
        assert_eq!(run.fast_commit.as_ref().map(|f| f.valid_tags as u64), Some(fc_valid), "{name}");
        let opts = daxray::open::OpenOptions { journal_dev: jnl.clone(), ..Default::default() };
        let ours = daxray::open::open_source(fs.clone(), daxray::FsKind::Ext4, &opts).unwrap();
        assert_eq!(ours.recovery.details["fast_commit"]["replay_applied"], true, "{name}");
        let applied: u64 = ours.recovery.details["fast_commit"]["replay"]["applied"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap_or(0))
            .sum();
        assert!(applied > 0, "{name}: no fast-commit tag replayed: {}", ours.recovery.details);
        let copy = tmp.path().join("fc_copy.img");
        std::fs::copy(&img, &copy).unwrap();
        let o = Command::new("e2fsck").args(["-y", "-E", "journal_only"]).arg(&copy).output().unwrap();
        let theirs =
            daxray::open::open(&copy, &daxray::open::OpenOptions { raw: true, ..Default::default() })
                .unwrap();
        let (a, _) = daxray::manifest::build(&*ours.fs, true).unwrap();
        let (b, _) = daxray::manifest::build(&*theirs.fs, true).unwrap();
        let n = daxray::oracle::compare_manifests(&a, &b).unwrap_or_else(|e| {
            panic!(
                "{name}: daxray's fast-commit replay differs from e2fsck's:\n{e}\ne2fsck: {}",
                String::from_utf8_lossy(&o.stdout)
            )
        });
        // Without the replay the view differs (the comparison can fail).
        let jbd2_only = daxray::ext4::Ext4::open(run.view.clone()).unwrap();
        let (c, _) = daxray::manifest::build(&jbd2_only, true).unwrap();
        assert!(daxray::oracle::compare_manifests(&c, &b).is_err(), "{name}: jbd2-only view equals e2fsck's");
        println!(
            "{name}: {applied} fast-commit tags replayed, {n} files equal to e2fsck's fast-commit replay"
        );
    }
    let replay_ran = run.error.is_none_or(|(p, _)| p == jbd2::recover::Pass::Replay);
    let replayed = run.replayed();
    if !replayed.is_empty() && replay_ran && jnl.is_none() && fc_valid == 0 {
        let copy = tmp.path().join("copy.img");
        std::fs::copy(&img, &copy).unwrap();
        let o = Command::new("e2fsck").args(["-y", "-E", "journal_only"]).arg(&copy).output().unwrap();
        let after = std::fs::read(&copy).unwrap();
        let info = ext4::journal::fs_journal_info(&*fs).unwrap();
        let bs = info.block_size as usize;
        let sb_block = 1024 / bs;
        let journal_blocks: std::collections::HashSet<u64> = {
            let e = daxray::ext4::Ext4::open(fs.clone()).unwrap();
            let mut s = std::collections::HashSet::new();
            for x in daxray::fs::FileSystem::map(&e, u64::from(info.journal_inum)).unwrap() {
                for b in x.physical..x.physical + x.length {
                    s.insert(b);
                }
            }
            s
        };
        let mut compared = 0;
        for (&blk, &(seq, jb)) in &replayed {
            if blk as usize == sb_block {
                continue;
            }
            let off = blk as usize * bs;
            let view = run.view.read_at(off as u64, bs).unwrap();
            let theirs = &after[off..off + bs];
            let first_diff = view.iter().zip(theirs).position(|(a, b)| a != b);
            assert!(
                first_diff.is_none(),
                "{name}: fs block {blk} (transaction {seq}, journal block {jb}) differs from e2fsck's replay at byte {first_diff:?}; e2fsck said {}",
                String::from_utf8_lossy(&o.stdout)
            );
            compared += 1;
        }
        let nblocks = before.len() / bs;
        for b in 0..nblocks {
            let r = b * bs..(b + 1) * bs;
            if before[r.clone()] != after[r.clone()] && !replayed.contains_key(&(b as u64)) {
                assert!(
                    b == sb_block || journal_blocks.contains(&(b as u64)),
                    "{name}: e2fsck changed fs block {b} that daxray did not replay"
                );
            }
        }
        assert!(compared > 0, "{name}: nothing compared");
        res.e2fsck_blocks_compared = compared;
    }
    // The input is never written.
    assert_eq!(std::fs::read(&img).unwrap(), before, "{name}: input image changed");
    res
}

#[test]
fn e2fsprogs_journal_images() {
    require_tools();
    let dir = corpus();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("j_") || n.starts_with("f_jnl") || n == "f_ext_journal"
        })
        .collect();
    cases.sort();
    assert!(cases.len() >= 15, "expected the e2fsprogs journal cases in {}", dir.display());
    let mut total_tx = 0;
    let mut total_cmp = 0;
    for c in &cases {
        let r = run_case(c);
        println!(
            "{}: {} committed transactions match logdump, {} blocks replayed, {} compared with e2fsck",
            r.name, r.transactions, r.replayed_blocks, r.e2fsck_blocks_compared
        );
        total_tx += r.transactions;
        total_cmp += r.e2fsck_blocks_compared;
    }
    println!("{} cases, {total_tx} transactions, {total_cmp} replayed blocks equal to e2fsck's", cases.len());
    assert!(total_tx > 10 && total_cmp > 100);
}

/// Corrupt random bytes of the journal of each recoverable corpus image (in memory): listing and
/// recovery must return (an error or a report), never panic or hang.
#[test]
fn corrupted_journals_never_panic() {
    use daxray::image::MemSource;
    use rand::{RngExt, SeedableRng};
    use std::sync::Arc;
    require_tools();
    let dir = corpus();
    let mut runs = 0;
    for name in [
        "j_recover_csum2_32bit",
        "j_recover_csum3_64bit",
        "f_jnl_64bit",
        "f_jnl_32bit",
        "j_recover_fast_commit",
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let (img, _) = unpack_e2fsprogs_case(&dir.join(name), tmp.path()).expect("an image in the case");
        let bytes = std::fs::read(&img).unwrap();
        let fs: Arc<dyn BlockSource> = Arc::new(MemSource::new(bytes.clone(), name));
        let info = ext4::journal::fs_journal_info(&*fs).unwrap();
        let bs = u64::from(info.block_size);
        let e = daxray::ext4::Ext4::open(fs.clone()).unwrap();
        let jblocks: Vec<u64> = daxray::fs::FileSystem::map(&e, u64::from(info.journal_inum))
            .unwrap()
            .iter()
            .flat_map(|x| x.physical..x.physical + x.length)
            .collect();
        assert!(!jblocks.is_empty());
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x1bd2);
        for _ in 0..40 {
            let mut b = bytes.clone();
            for _ in 0..rng.random_range(1..64) {
                // Mostly the first blocks of the journal (superblock, descriptors, commits).
                let k = rng.random_range(0..jblocks.len().min(64));
                let at = (jblocks[k] * bs) as usize + rng.random_range(0..bs as usize);
                b[at] = rng.random();
            }
            let src: Arc<dyn BlockSource> = Arc::new(MemSource::new(b, "fuzzed"));
            let t = std::time::Instant::now();
            let _ = daxray::cli::listing::ext4(src.clone(), None, true);
            let _ = ext4::journal::recover_full(src, None);
            assert!(t.elapsed().as_secs() < 20, "{name}: too slow on a corrupted journal");
            runs += 1;
        }
    }
    assert_eq!(runs, 200);
}
