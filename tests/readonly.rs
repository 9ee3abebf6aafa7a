//! Read-only guarantees: daxray never opens an input for writing, never maps it writable, and
//! leaves every byte of it as it was — also when it replays a journal or log in memory.
//!
//! Inputs are the committed kernel-made crash images (fixtures/ext4/kernel-dirty.img.gz: a jbd2
//! journal to replay; fixtures/xfs/kernel-dirty.img.gz: a dirty XFS log; fixtures/crash/*: whole
//! fsdax namespaces captured from a paused VM). We run as root in CI, where `chmod 0444` (done
//! too) does not stop a write, so the images are also made immutable (`chattr +i`): then even
//! root cannot open them for writing, and any attempt fails the command. Checked:
//! - in process: the image opens while immutable; while it is open (and after the model has read
//!   every file through the recovery overlay) every mapping of it is without `w`
//!   (`/proc/self/maps`) and every descriptor on it, if one is still open, is `O_RDONLY`
//!   (`/proc/self/fdinfo`; daxray closes the descriptor once the file is mapped);
//! - every command, as a subprocess, on the immutable image, plain, `--raw` and `--json`: no
//!   "permission" error, and the image's sha256, size and mtime are the same before and after.

mod common;

use common::{fixture, gunzip, ready, sha256_file};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `chattr +i` on a file for as long as the guard lives (`chattr -i` on drop, also when a test
/// fails, so that the temporary folder can be removed).
struct Immutable(PathBuf);

impl Immutable {
    fn new(p: &Path) -> Immutable {
        let st = Command::new("chattr").arg("+i").arg(p).status();
        assert!(
            matches!(st, Ok(s) if s.success()),
            "chattr +i {} failed ({st:?}): install e2fsprogs (chattr) and run as root on a file system with immutable files (ext4, xfs, tmpfs >= 6.0)",
            p.display()
        );
        // The guard means something: not even root may now open the file for writing.
        let w = std::fs::OpenOptions::new().write(true).open(p);
        assert!(w.is_err(), "{} is immutable, yet opened for writing", p.display());
        Immutable(p.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// A scratch folder on the target directory's file system (which supports `chattr +i`).
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("daxray-readonly-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("tempdir")
}

/// Unpack a committed fixture into `dir`: `.img.gz` (gzip) or a crash state's `image.dxs.gz`.
fn unpack(rel: &str, dir: &Path, name: &str) -> PathBuf {
    let src = fixture(rel);
    let dst = dir.join(name);
    if rel.ends_with(".dxs.gz") {
        daxray::replay::sparse::unpack(&src, &dst).expect("unpack crash fixture");
    } else {
        gunzip(&src, &dst);
    }
    // Read-only for everyone (root still could write: the checks below do not rely on this).
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o444)).expect("chmod 0444");
    dst
}

/// (sha256, size, mtime) of a file.
fn state(p: &Path) -> (String, u64, std::time::SystemTime) {
    let m = std::fs::metadata(p).expect("stat");
    (sha256_file(p), m.len(), m.modified().expect("mtime"))
}

/// File descriptors of this process open on `path`, with their `flags` from fdinfo (octal).
fn fds_on(path: &Path) -> Vec<(String, u32)> {
    let want = std::fs::canonicalize(path).expect("canonical path");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").flatten() {
        let Ok(target) = std::fs::read_link(e.path()) else { continue };
        if target != want {
            continue;
        }
        let fd = e.file_name().to_string_lossy().into_owned();
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap_or_default();
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            .unwrap_or_else(|| panic!("no flags in /proc/self/fdinfo/{fd}: {info}"));
        out.push((fd, flags));
    }
    out
}

/// Permission strings ("r--s") of this process's mappings of `path`.
fn maps_of(path: &Path) -> Vec<String> {
    let want = std::fs::canonicalize(path).expect("canonical path");
    let want = want.to_string_lossy();
    std::fs::read_to_string("/proc/self/maps")
        .expect("/proc/self/maps")
        .lines()
        .filter(|l| l.ends_with(&*want))
        .filter_map(|l| l.split_whitespace().nth(1).map(String::from))
        .collect()
}

const O_ACCMODE: u32 = 0o3;
const O_RDONLY: u32 = 0o0;

fn assert_readonly_handles(img: &Path, when: &str) -> (usize, usize) {
    let fds = fds_on(img);
    let maps = maps_of(img);
    for (fd, flags) in &fds {
        assert_eq!(
            flags & O_ACCMODE,
            O_RDONLY,
            "{when}: fd {fd} on {} has flags {flags:o}: not O_RDONLY",
            img.display()
        );
    }
    assert!(!maps.is_empty(), "{when}: {} is not mapped (daxray maps inputs read-only)", img.display());
    for m in &maps {
        assert!(!m.contains('w'), "{when}: {} is mapped {m}: writable", img.display());
    }
    (fds.len(), maps.len())
}

/// Open each image through the library (recovery applied, then raw), read everything, and check
/// the process's own handles on it.
#[test]
fn library_opens_and_maps_inputs_read_only() {
    if !ready(&["chattr"], true) {
        return;
    }
    let tmp = scratch();
    let cases = [
        ("ext4/kernel-dirty.img.gz", "ext4-dirty.img"),
        ("xfs/kernel-dirty.img.gz", "xfs-dirty.img"),
        ("crash/ext4-sync-seq-sparse-state4/image.dxs.gz", "ext4-namespace.img"),
        ("crash/xfs-sync-seq-sparse-state4/image.dxs.gz", "xfs-namespace.img"),
    ];
    let mut checked = 0;
    for (rel, name) in cases {
        let img = unpack(rel, tmp.path(), name);
        let before = state(&img);
        let _lock = Immutable::new(&img);
        for raw in [false, true] {
            let opts = daxray::open::OpenOptions { raw, ..Default::default() };
            let o = daxray::open::open(&img, &opts).unwrap_or_else(|e| panic!("{rel}: open: {e}"));
            if !raw && rel.contains("dirty") {
                assert!(
                    o.recovery.needed,
                    "{rel}: the fixture should need recovery: {:?}",
                    o.recovery.details
                );
            }
            let (fds, maps) = assert_readonly_handles(&img, &format!("{rel} open (raw={raw})"));
            // Read every file through the model (and the overlay), then look again.
            let (entries, _errors) = daxray::manifest::build(&*o.fs, true).expect("manifest");
            // The raw media of a crash copy may show no files yet (XFS: the log holds them).
            assert!(raw || !entries.is_empty(), "{rel}: no files read through the recovered view");
            assert_readonly_handles(
                &img,
                &format!("{rel} after reading {} files (raw={raw})", entries.len()),
            );
            eprintln!(
                "{rel} raw={raw}: {fds} fd(s) O_RDONLY, {maps} mapping(s) read-only, {} files read",
                entries.len()
            );
            drop(o);
            checked += 1;
        }
        assert_eq!(state(&img), before, "{rel}: the image changed");
    }
    assert_eq!(checked, 8);
}

/// Every command as a subprocess on dirty images (recovery in memory), hashed before and after.
#[test]
fn every_command_leaves_the_image_unchanged() {
    if !ready(&["chattr"], true) {
        return;
    }
    let tmp = scratch();
    let cases = [
        ("ext4/kernel-dirty.img.gz", "ext4-dirty.img", None),
        ("xfs/kernel-dirty.img.gz", "xfs-dirty.img", None),
        (
            "crash/ext4-sync-seq-sparse-state4/image.dxs.gz",
            "ext4-namespace.img",
            Some("crash/ext4-sync-seq-sparse-state4/claims.jsonl"),
        ),
        (
            "crash/xfs-control-seq-sparse-state7/image.dxs.gz",
            "xfs-namespace.img",
            Some("crash/xfs-control-seq-sparse-state7/claims.jsonl"),
        ),
    ];
    let bin = env!("CARGO_BIN_EXE_daxray");
    let mut runs = 0;
    for (rel, name, claims) in cases {
        let img = unpack(rel, tmp.path(), name);
        let p = img.to_str().expect("utf-8 path").to_string();
        // A file to stat/map/cat, and claims: from the fixture, or made from daxray's manifest.
        let man = Command::new(bin).args(["manifest", "--hash", &p]).output().expect("run manifest");
        let first: serde_json::Value = String::from_utf8_lossy(&man.stdout)
            .lines()
            .find_map(|l| {
                serde_json::from_str::<serde_json::Value>(l).ok().filter(|v| v["size"].as_u64() > Some(0))
            })
            .unwrap_or_else(|| {
                panic!("{rel}: manifest listed no non-empty file: {}", String::from_utf8_lossy(&man.stderr))
            });
        let file = first["path"].as_str().expect("path").to_string();
        let claims_path = match claims {
            Some(c) => fixture(c),
            None => {
                let c = tmp.path().join(format!("{name}.claims"));
                let line = serde_json::json!({
                    "path": file, "offset": 0, "len": first["size"], "sha256": first["sha256"],
                });
                std::fs::write(&c, format!("{line}\n")).expect("write claims");
                c
            }
        };
        let cp = claims_path.to_str().expect("utf-8").to_string();
        let before = state(&img);
        let _lock = Immutable::new(&img);
        let dir = Path::new(&file).parent().and_then(|d| d.to_str()).unwrap_or("/").to_string();
        // Each command plain; the recovery-sensitive ones also --raw; the reporting ones --json.
        let cmds: Vec<Vec<&str>> = vec![
            vec!["info", &p],
            vec!["info", "--raw", &p],
            vec!["info", "--json", &p],
            vec!["ls", &p, "/"],
            vec!["ls", "--json", &p, &dir],
            vec!["stat", &p, &file],
            vec!["stat", "--json", "--raw", &p, &file],
            vec!["map", &p, &file],
            vec!["map", "--raw", &p, &file],
            vec!["cat", &p, &file],
            vec!["manifest", "--hash", &p],
            vec!["manifest", "--raw", &p],
            vec!["journal", &p],
            vec!["journal", "--all", "--json", &p],
            vec!["check", &p, "--claims", &cp],
            vec!["check", "--raw", "--json", &p, "--claims", &cp],
        ];
        let t = std::time::Instant::now();
        for args in &cmds {
            let out = Command::new(bin).args(args).output().expect("run daxray");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                matches!(out.status.code(), Some(0..=2)),
                "{rel}: daxray {} ended with {:?}: {err}",
                args.join(" "),
                out.status
            );
            assert!(
                !err.contains("ermission denied") && !err.contains("peration not permitted"),
                "{rel}: daxray {} tried to open the image for writing: {err}",
                args.join(" ")
            );
            runs += 1;
        }
        drop(_lock);
        let after = state(&img);
        assert_eq!(after, before, "{rel}: the image changed after {} commands", cmds.len());
        eprintln!(
            "{rel}: {} commands in {:.1} s on the immutable image, sha256 {} unchanged",
            cmds.len(),
            t.elapsed().as_secs_f64(),
            &after.0[..16]
        );
    }
    assert_eq!(runs, 4 * 16);
}
