//! daxray's in-memory jbd2 recovery against the kernel's own recovery, on kernel-made crash
//! images (root): for every regular file, size, sha256 and merged extents must be equal.
//!
//! Fast commits: one fast_commit case makes its transactions durable with one syncfs (a full jbd2
//! commit, no fast commits); a second one leaves fast-commit-eligible operations with fsync in the
//! fast-commit area, and daxray's replay of it must equal the kernel's.
//! Without a journal there is no recovery: that case syncs everything before the crash copy (an
//! unsynced copy of a journal-less file system is torn, and the kernel itself fails to read it).

mod common;
mod jbd2_common;

use daxray::open::{OpenOptions, open};
use jbd2_common::{
    Durability, fast_commit_ops, kernel_view, magic_files, make_dirty, make_dirty_mounted_with,
    make_dirty_then, make_wrapped_dirty, prerequisites, revoke_ops,
};

const TOOLS: &[&str] = &["mkfs.ext4", "losetup", "mount", "umount", "sync"];

fn seed() -> u64 {
    std::env::var("DAXRAY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(1)
    })
}

/// Recover `dirty` with daxray, compare with the kernel; returns (files compared, report details).
fn compare(dirty: &std::path::Path) -> (Result<usize, String>, daxray::open::RecoveryReport) {
    let before = std::fs::read(dirty).unwrap();
    let kernel = kernel_view(dirty);
    let opened = open(dirty, &OpenOptions::default()).expect("daxray opens the dirty image");
    let (ours, errs) = daxray::manifest::build(&*opened.fs, true).expect("manifest");
    assert!(errs.is_empty(), "manifest errors: {errs:?}");
    assert_eq!(std::fs::read(dirty).unwrap(), before, "the input image was written");
    (daxray::oracle::compare_manifests(&ours, &kernel), opened.recovery.clone())
}

/// The tools and root these tests need (else the test returns, or fails with what to install),
/// the seed they use (printed: set DAXRAY_SEED to repeat it) and a scratch folder.
fn start() -> Option<(u64, tempfile::TempDir)> {
    if !prerequisites(TOOLS) {
        return None;
    }
    let s = seed();
    println!("seed {s} (set DAXRAY_SEED to repeat)");
    Some((s, tempfile::tempdir().unwrap()))
}

#[test]
fn recovered_view_equals_kernel_recovery() {
    let Some((s, tmp)) = start() else { return };
    for (name, opts, dur) in [
        ("journal", &[][..], Durability::Fsync),
        ("nojournal", &["-O", "^has_journal"][..], Durability::FsyncSyncfs),
        ("fast_commit_syncfs", &["-O", "fast_commit"][..], Durability::Syncfs),
    ] {
        let dirty = make_dirty(tmp.path(), name, opts, s, dur);
        let (res, rep) = compare(&dirty);
        let n = res.unwrap_or_else(|e| {
            panic!("{name} (seed {s}): daxray differs from the kernel:\n{e}\nrecovery: {}", rep.details)
        });
        println!(
            "{name}: {n} files equal; recovery needed {} applied {}: {}",
            rep.needed, rep.applied, rep.details
        );
        assert!(n >= 100, "{name}: only {n} files compared");
        match name {
            "nojournal" => assert_eq!(rep.kind, "none"),
            _ => {
                assert_eq!(rep.kind, "jbd2");
                assert!(rep.needed, "{name}: a copy taken while mounted after commits needs recovery");
                assert!(rep.details["blocks_replayed"].as_u64().unwrap_or(0) > 0, "{name}: nothing replayed");
            }
        }
        let _ = std::fs::remove_file(&dirty);
    }
}

/// Fast commits: after a syncfs (a full jbd2 commit), fast-commit-eligible operations with
/// fsync (appends, overwrites, truncates, fallocate, punched holes, unlinks, renames, hard links,
/// new files and directories) leave their changes only in the fast-commit area. daxray's view
/// (jbd2 replay, then fast-commit replay) must equal the kernel's recovery for every file, tags
/// of several types must have been replayed, and the jbd2-only view must differ (so the
/// comparison can fail). `DAXRAY_FC_FEATURES` sets the mkfs `-O` list (default `fast_commit`;
/// e.g. `fast_commit,inline_data`).
#[test]
fn fast_commit_replay_equals_kernel_recovery() {
    let Some((s, tmp)) = start() else { return };
    // commit=300: no timer-driven full commit in the middle of the operations.
    let features = std::env::var("DAXRAY_FC_FEATURES").unwrap_or_else(|_| "fast_commit".into());
    let dirty = make_dirty_mounted_with(
        tmp.path(),
        "fast_commit_fsync",
        &["-O", &features],
        "commit=300",
        s,
        Durability::FsyncSyncfs,
        |root| {
            let ops = fast_commit_ops(root, s);
            println!("fast-commit operations: {ops:?}");
            assert!(ops.total() >= 30, "{ops:?}");
        },
    );
    let before = std::fs::read(&dirty).unwrap();
    let kernel = kernel_view(&dirty);
    let opened = open(&dirty, &OpenOptions::default()).expect("daxray opens the dirty image");
    let (ours, errs) = daxray::manifest::build(&*opened.fs, true).expect("manifest");
    assert!(errs.is_empty(), "manifest errors: {errs:?}");
    assert_eq!(std::fs::read(&dirty).unwrap(), before, "the input image was written");
    let rep = opened.recovery.clone();
    let fc = &rep.details["fast_commit"];
    println!("fast commit: {fc}");
    let n = daxray::oracle::compare_manifests(&ours, &kernel).unwrap_or_else(|e| {
        panic!("fast_commit (seed {s}): daxray differs from the kernel:\n{e}\nrecovery: {}", rep.details)
    });
    assert!(n >= 100, "only {n} files compared");
    assert_eq!(fc["replay_applied"], true, "{fc}");
    assert!(
        !rep.findings.iter().any(|f| f.message.contains("does not replay")),
        "no finding may say fast commits are not replayed: {:?}",
        rep.findings
    );
    let applied = &fc["replay"]["applied"];
    let count = |t: &str| applied[t].as_u64().unwrap_or(0);
    let types: Vec<&str> = ["INODE", "ADD_RANGE", "DEL_RANGE", "CREAT", "LINK", "UNLINK"]
        .into_iter()
        .filter(|t| count(t) > 0)
        .collect();
    println!("replayed tag types with an effect: {types:?}; {applied}");
    for t in ["INODE", "ADD_RANGE", "DEL_RANGE", "CREAT"] {
        assert!(count(t) > 0, "no {t} tag was replayed: {fc}");
    }
    assert!(types.len() >= 5, "only {types:?} tag types were replayed: {fc}");
    // Inode fields the fast-commit tags carry or change (mode, owner, links, size, mtime) equal
    // what the kernel shows after its own recovery of another copy, for every file.
    {
        use std::os::unix::fs::MetadataExt;
        let k = dirty.with_extension("kstat.img");
        daxray::oracle::copy_sparse(&dirty, &k).unwrap();
        let m = daxray::oracle::Mount::new(&k, 0, "ext4", "").expect("mount a copy");
        let mut diffs = vec![];
        for e in &kernel {
            let md = std::fs::symlink_metadata(m.path().join(e.path.trim_start_matches('/'))).unwrap();
            let st = opened.fs.stat(e.ino).unwrap();
            let theirs = (md.mode(), md.nlink(), md.uid(), md.gid(), md.size(), md.mtime(), md.mtime_nsec());
            let mine = (
                u32::from(st.mode),
                u64::from(st.nlink),
                st.uid,
                st.gid,
                st.size,
                st.mtime.sec,
                i64::from(st.mtime.nsec),
            );
            if theirs != mine {
                diffs.push(format!(
                    "{}: (mode, nlink, uid, gid, size, mtime) ours {mine:?} kernel {theirs:?}",
                    e.path
                ));
            }
        }
        // Every name of every type (directories, symlinks...) with its inode number.
        fn kernel_names(
            dir: &std::path::Path,
            rel: &str,
            out: &mut std::collections::BTreeSet<(String, u64)>,
        ) {
            use std::os::unix::fs::DirEntryExt;
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let path = format!("{rel}/{}", e.file_name().to_string_lossy());
                out.insert((path.clone(), e.ino()));
                if e.file_type().unwrap().is_dir() {
                    kernel_names(&e.path(), &path, out);
                }
            }
        }
        let mut theirs = std::collections::BTreeSet::new();
        kernel_names(m.path(), "", &mut theirs);
        m.unmount().unwrap();
        let _ = std::fs::remove_file(&k);
        let mut errs = vec![];
        let ours: std::collections::BTreeSet<(String, u64)> = daxray::fs::walk(&*opened.fs, "/", &mut errs)
            .unwrap()
            .into_iter()
            .map(|w| (w.path, w.ino))
            .collect();
        assert!(errs.is_empty(), "{errs:?}");
        let only_ours: Vec<_> = ours.difference(&theirs).collect();
        let only_theirs: Vec<_> = theirs.difference(&ours).collect();
        assert!(
            only_ours.is_empty() && only_theirs.is_empty(),
            "names differ: only in ours {only_ours:?}, only in the kernel's {only_theirs:?}"
        );
        println!("{} names (all types) equal to the kernel's", ours.len());
        assert!(diffs.is_empty(), "{} inodes differ:\n{}", diffs.len(), diffs.join("\n"));
        println!("{} inodes: mode, links, owner, size and mtime equal to the kernel's", kernel.len());
    }
    // The jbd2-only view (no fast-commit replay) differs from the kernel's.
    let image = daxray::image::open(&dirty, None).unwrap();
    let run = daxray::ext4::journal::recover_full(image.fs_bytes.clone(), None).unwrap();
    assert!(run.fast_commit.is_some(), "recover_full must hand over the fast-commit area");
    let jbd2_only = daxray::ext4::Ext4::open(run.view.clone()).unwrap();
    let (theirs, _) = daxray::manifest::build(&jbd2_only, true).unwrap();
    let diff = daxray::oracle::compare_manifests(&theirs, &kernel)
        .expect_err("without fast-commit replay the view must differ from the kernel's");
    println!(
        "{n} files equal to the kernel's; without fast-commit replay: {}",
        diff.lines().next().unwrap_or("")
    );
    // The raw media differs too.
    let raw = open(&dirty, &OpenOptions { raw: true, ..Default::default() }).unwrap();
    let (raw_man, _) = daxray::manifest::build(&*raw.fs, true).unwrap();
    assert!(daxray::oracle::compare_manifests(&raw_man, &kernel).is_err(), "--raw must differ");
}

/// Recovery of a live log that wraps around the end of the journal equals the kernel's.
#[test]
fn wrapped_log_recovery_equals_kernel() {
    let Some((s, tmp)) = start() else { return };
    let dirty = make_wrapped_dirty(tmp.path(), s, &[]);
    let (res, rep) = compare(&dirty);
    let n = res.unwrap_or_else(|e| {
        panic!("wrapped log (seed {s}): daxray differs from the kernel:\n{e}\n{}", rep.details)
    });
    assert!(rep.needed && rep.details["blocks_replayed"].as_u64().unwrap_or(0) > 0, "{}", rep.details);
    println!("wrapped log: {n} files equal; {}", rep.details);
    assert!(n >= 100);
}

/// `data=journal` with file blocks that start with the jbd2 magic (escaped in the log), and, in
/// ordered mode, removed directories whose journaled blocks are revoked. The recovered view must
/// equal the kernel's in both.
#[test]
fn escapes_and_revokes_equal_kernel() {
    let Some((s, tmp)) = start() else { return };
    // Escapes: data=journal.
    let dirty = make_dirty_mounted_with(
        tmp.path(),
        "data_journal",
        &[],
        "data=journal",
        s,
        Durability::Fsync,
        |root| assert_eq!(magic_files(root), 4),
    );
    let listing =
        daxray::cli::listing::ext4(daxray::image::open(&dirty, None).unwrap().fs_bytes.clone(), None, false)
            .unwrap();
    let escaped = listing.json["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["live"] == true)
        .flat_map(|t| t["blocks"].as_array().unwrap())
        .filter(|b| b["escaped"] == true)
        .count();
    let (res, rep) = compare(&dirty);
    let n = res.unwrap_or_else(|e| {
        panic!("data=journal (seed {s}): daxray differs from the kernel:\n{e}\n{}", rep.details)
    });
    println!("data=journal: {n} files equal; {escaped} escaped blocks in the live log; {}", rep.details);
    assert!(escaped >= 24, "the magic files' 24 blocks must be logged escaped, found {escaped}");
    assert!(n >= 100);
    let _ = std::fs::remove_file(&dirty);
    // Revokes: ordered mode, directories removed after their blocks were journaled.
    let dirty = make_dirty_then(tmp.path(), "revokes", &[], s, Durability::Fsync, revoke_ops);
    let (res, rep) = compare(&dirty);
    let n = res.unwrap_or_else(|e| {
        panic!("revokes (seed {s}): daxray differs from the kernel:\n{e}\n{}", rep.details)
    });
    println!("revokes: {n} files equal; {}", rep.details);
    assert!(
        rep.details["revokes"].as_u64().unwrap_or(0) > 0,
        "removed directories must leave revoke records: {}",
        rep.details
    );
    assert!(n >= 100);
}

/// A loop device attached by this test; detached on drop.
struct Loop(String);
impl Loop {
    fn attach(file: &std::path::Path) -> Loop {
        let o = std::process::Command::new("losetup")
            .args(["--find", "--show"])
            .arg(file)
            .output()
            .expect("losetup");
        let dev = String::from_utf8_lossy(&o.stdout).trim().to_string();
        assert!(
            o.status.success() && dev.starts_with("/dev/"),
            "losetup failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Loop(dev)
    }
}
impl Drop for Loop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// An external journal device (`mkfs.ext4 -O journal_dev`, `-J device=`): the crash copies of the
/// file system and of the journal device, recovered by daxray with `--journal-dev`, equal the
/// kernel's recovery of second copies; the listing equals `debugfs logdump -f`.
#[test]
fn external_journal_recovery_equals_kernel() {
    use daxray::oracle::{self, Mount, WorkloadSpec};
    if !prerequisites(&["mkfs.ext4", "losetup", "mount", "umount", "debugfs"]) {
        return;
    }
    let s = seed();
    println!("seed {s}");
    let tmp = tempfile::tempdir().unwrap();
    let jimg = tmp.path().join("journal.img");
    let fsimg = tmp.path().join("fs.img");
    let jdirty = tmp.path().join("journal.dirty.img");
    let fsdirty = tmp.path().join("fs.dirty.img");
    oracle::make_image(&jimg, 64 << 20, &["mkfs.ext4", "-q", "-F", "-b", "4096", "-O", "journal_dev"])
        .expect("mkfs journal_dev");
    {
        let jl = Loop::attach(&jimg);
        let jopt = format!("device={}", jl.0);
        oracle::make_image(&fsimg, 256 << 20, &["mkfs.ext4", "-q", "-F", "-b", "4096", "-J", &jopt])
            .expect("mkfs -J device");
        let m = Mount::new(&fsimg, 0, "ext4", &format!("journal_path={}", jl.0))
            .expect("mount with external journal");
        let spec = WorkloadSpec {
            seed: s,
            files: 150,
            big_dir_entries: 1500,
            max_file_bytes: 2 << 20,
            ops: 300,
            fsync: true,
        };
        oracle::run_workload(m.path(), &spec).expect("workload");
        oracle::copy_sparse(&fsimg, &fsdirty).expect("copy fs while mounted");
        oracle::copy_sparse(&jimg, &jdirty).expect("copy journal while mounted");
        m.unmount().expect("unmount");
    }
    // The kernel's recovery of second copies.
    let kernel = {
        let jk = tmp.path().join("journal.kernel.img");
        let fk = tmp.path().join("fs.kernel.img");
        oracle::copy_sparse(&jdirty, &jk).unwrap();
        oracle::copy_sparse(&fsdirty, &fk).unwrap();
        let jl = Loop::attach(&jk);
        let m = Mount::new(&fk, 0, "ext4", &format!("journal_path={}", jl.0)).expect("mount second copies");
        let man = oracle::kernel_manifest(m.path(), true).expect("kernel manifest");
        m.unmount().expect("unmount");
        man
    };
    let before = (std::fs::read(&fsdirty).unwrap(), std::fs::read(&jdirty).unwrap());
    let opts = OpenOptions { journal_dev: Some(jdirty.clone()), ..Default::default() };
    let opened = open(&fsdirty, &opts).expect("daxray opens with --journal-dev");
    let (ours, errs) = daxray::manifest::build(&*opened.fs, true).expect("manifest");
    assert!(errs.is_empty(), "{errs:?}");
    let rep = opened.recovery.clone();
    let n = daxray::oracle::compare_manifests(&ours, &kernel).unwrap_or_else(|e| {
        panic!("external journal (seed {s}): daxray differs from the kernel:\n{e}\n{}", rep.details)
    });
    println!("external journal: {n} files equal; {}", rep.details);
    assert!(rep.needed && rep.details["blocks_replayed"].as_u64().unwrap_or(0) > 0, "{}", rep.details);
    assert!(rep.details["journal"].as_str().unwrap_or("").contains("external"), "{}", rep.details);
    assert!(n >= 100);
    assert_eq!((std::fs::read(&fsdirty).unwrap(), std::fs::read(&jdirty).unwrap()), before, "inputs written");
    // Listing with the external journal vs debugfs logdump -f.
    let l = daxray::cli::listing::ext4(
        daxray::image::open(&fsdirty, None).unwrap().fs_bytes.clone(),
        Some(&jdirty),
        false,
    )
    .unwrap();
    let o = std::process::Command::new("debugfs")
        .args(["-c", "-R", &format!("logdump -f {}", jdirty.display())])
        .arg(&fsdirty)
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&o.stdout);
    let theirs: Vec<u64> = dump
        .lines()
        .filter(|l| l.contains("type 2 (commit block)"))
        .map(|l| {
            l.trim()
                .strip_prefix("Found expected sequence ")
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    let mine: Vec<u64> = l.json["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["live"] == true && t["committed"] == true)
        .map(|t| t["sequence"].as_u64().unwrap())
        .collect();
    assert!(!theirs.is_empty());
    assert_eq!(mine, theirs, "committed transactions differ from debugfs logdump -f");
    println!("{} committed transactions equal to logdump -f", mine.len());
}

/// A torn fast-commit area, against the kernel: (a) the last fast commit's TAIL crc broken, so
/// the kernel replays only up to the TAIL before it: daxray's view must equal the kernel's
/// recovery of that copy, with fewer valid tags; (b) the first fast commit's TAIL crc broken, so
/// the kernel's scan fails before any valid tag (EFSBADCRC) and the mount fails: daxray must
/// report that the kernel's recovery fails.
#[test]
fn torn_fast_commit_equals_kernel() {
    use daxray::ext4::fastcommit::TAG_TAIL;
    use std::io::{Seek, SeekFrom, Write};
    let Some((s, tmp)) = start() else { return };
    let dirty = make_dirty_mounted_with(
        tmp.path(),
        "fc_torn",
        &["-O", "fast_commit"],
        "commit=300",
        s,
        Durability::FsyncSyncfs,
        |root| {
            fast_commit_ops(root, s);
        },
    );
    let base: std::sync::Arc<dyn daxray::image::BlockSource> =
        std::sync::Arc::new(daxray::image::MmapSource::open(&dirty).unwrap());
    let (_, info) = daxray::ext4::journal::open_journal(&base, None).unwrap().unwrap();
    let ext4 = daxray::ext4::Ext4::open(base.clone()).unwrap();
    let jmap = daxray::FileSystem::map(&ext4, u64::from(info.journal_inum)).unwrap();
    let bs = u64::from(info.block_size);
    // Byte offset in the image of byte `off` of journal block `n`.
    let at = |n: u64, off: usize| {
        let e = jmap.iter().find(|e| n >= e.logical && n < e.logical + e.length).unwrap();
        (e.physical + (n - e.logical)) * bs + off as u64
    };
    let run = daxray::ext4::journal::recover_full(base.clone(), None).unwrap();
    let fc = run.fast_commit.clone().expect("valid fast commits");
    let tails: Vec<_> = fc.tags.iter().filter(|t| t.valid && t.kind == TAG_TAIL).collect();
    println!("{} valid tags, {} fast commits", fc.valid_tags, tails.len());
    assert!(tails.len() >= 2, "need at least two fast commits");
    drop(ext4);
    drop(run);
    drop(base);
    let break_crc = |src: &std::path::Path, dst: &std::path::Path, tail: &daxray::ext4::fastcommit::FcTag| {
        daxray::oracle::copy_sparse(src, dst).unwrap();
        let mut f = std::fs::OpenOptions::new().write(true).open(dst).unwrap();
        // The crc is the second word of the TAIL's value (after the 4-byte tag header and tid).
        let pos = at(tail.journal_block, tail.offset + 8);
        f.seek(SeekFrom::Start(pos)).unwrap();
        let crc = u32::from_le_bytes(tail.value[4..8].try_into().unwrap());
        f.write_all(&(crc ^ 0x5a5a_5a5a).to_le_bytes()).unwrap();
        f.sync_all().unwrap();
    };
    // (a) The last fast commit torn.
    let torn = tmp.path().join("torn_last.img");
    break_crc(&dirty, &torn, tails.last().unwrap());
    let (res, rep) = compare(&torn);
    let tfc = &rep.details["fast_commit"];
    let n = res
        .unwrap_or_else(|e| panic!("torn last fast commit (seed {s}): differs from the kernel:\n{e}\n{tfc}"));
    let valid = tfc["valid_tags"].as_u64().unwrap();
    assert!(valid > 0 && (valid as usize) < fc.valid_tags, "valid tags {valid}, before {}", fc.valid_tags);
    assert_eq!(tfc["replay_applied"], true);
    println!(
        "torn last fast commit: {n} files equal to the kernel's; {valid} of {} tags valid",
        fc.valid_tags
    );
    let _ = std::fs::remove_file(&torn);
    // (b) The first fast commit torn: the kernel's scan fails, and so does the mount.
    let torn = tmp.path().join("torn_first.img");
    break_crc(&dirty, &torn, tails[0]);
    let opened = open(&torn, &OpenOptions::default()).expect("daxray opens it");
    let tfc = &opened.recovery.details["fast_commit"];
    println!("torn first fast commit: {tfc}");
    assert!(tfc["scan_end"].as_str().unwrap_or("").contains("EFSBADCRC"), "{tfc}");
    assert!(
        opened.recovery.findings.iter().any(|f| f.message.contains("the mount, fail")),
        "{:?}",
        opened.recovery.findings
    );
    let k = tmp.path().join("torn_first.kernel.img");
    daxray::oracle::copy_sparse(&torn, &k).unwrap();
    match daxray::oracle::Mount::new(&k, 0, "ext4", "") {
        Ok(m) => {
            m.unmount().unwrap();
            panic!("the kernel mounted a journal whose first fast commit is torn; daxray said it fails");
        }
        Err(e) => println!("the kernel refuses it too: {e}"),
    }
}
