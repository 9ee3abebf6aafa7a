//! `daxray bench parse`: daxray against its peers (debugfs, xfs_logprint, xfs_db, the kernel's
//! own recovery through a loop mount) on the same large, kernel-made crash images.
//!
//! Every image is made by the real mkfs and filled by the real kernel ([`run_workload`] with
//! fsync on a loop mount); the backing file is copied while still mounted, so the journal or log
//! holds committed transactions that were not checkpointed. Each operation is then timed side by
//! side with its peer on the same bytes, alternating which side runs first, and the median of
//! `runs` runs is reported with the peak resident set size of each side (`wait4` rusage of the
//! subprocess, which includes the processes it waited for).

use crate::check::{Claim, write_claims};
use crate::error::{Error, Result};
use crate::oracle::{self, WorkloadSpec, WorkloadStats, crash_copy, make_image, run_workload};
use crate::sys;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// What `bench parse` does.
#[derive(Debug, Clone)]
pub struct Options {
    /// Size of the main images in MiB.
    pub size_mib: u64,
    /// ext4 journal size of the main image in MiB (the XFS log: [`xfs_log_mib`]).
    pub journal_mib: u64,
    /// Timed runs per operation and side (the median is reported).
    pub runs: usize,
    /// Extra (smaller) image sizes in MiB for the growth figures; journals scale with size.
    pub growth_mib: Vec<u64>,
    /// Where images are made (a unique subfolder is created and removed).
    pub work_dir: PathBuf,
    /// The daxray binary to time.
    pub daxray: PathBuf,
    /// File systems to run ("ext4", "xfs").
    pub fs: Vec<&'static str>,
    /// Keep the work folder with the crash images and claims (for profiling on the same bytes).
    pub keep_images: bool,
}

/// The XFS log size used beside an ext4 journal of `journal_mib` on an image of `size_mib`:
/// half the journal, at least the 64 MiB mkfs.xfs demands, and small enough to fit in one of
/// the four allocation groups mkfs makes on small images.
pub fn xfs_log_mib(journal_mib: u64, size_mib: u64) -> u64 {
    (journal_mib / 2).max(64).min((size_mib / 4).saturating_sub(8))
}

/// One image made for the benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct ImageInfo {
    /// "ext4" or "xfs".
    pub fs: String,
    /// Image size in MiB.
    pub size_mib: u64,
    /// Journal (ext4) or log (XFS) size in MiB.
    pub journal_mib: u64,
    /// Bytes of the image file that hold data (not holes).
    pub allocated_bytes: u64,
    /// What the workload did.
    pub workload: WorkloadStats,
    /// Regular files daxray's manifest lists (after in-memory recovery).
    pub manifest_files: usize,
    /// Claims checked in the in-place check row.
    pub claims: usize,
}

/// One measured pair.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// "ext4" or "xfs".
    pub fs: String,
    /// Image size in MiB.
    pub size_mib: u64,
    /// What was timed.
    pub operation: String,
    /// The daxray command (paths shortened to IMG, CLAIMS).
    pub daxray_cmd: String,
    /// The peer command.
    pub peer_cmd: String,
    /// Median wall time of daxray, ms.
    pub daxray_ms: f64,
    /// Median wall time of the peer, ms.
    pub peer_ms: f64,
    /// peer_ms / daxray_ms.
    pub ratio: f64,
    /// Peak RSS of daxray (largest over the runs), KiB; None when it ran in this process.
    pub daxray_rss_kib: Option<u64>,
    /// Peak RSS of the peer, KiB; None when not measurable (in-process or kernel).
    pub peer_rss_kib: Option<u64>,
    /// All daxray times, ms.
    pub daxray_runs_ms: Vec<f64>,
    /// All peer times, ms.
    pub peer_runs_ms: Vec<f64>,
    /// Remarks (exit codes, agreement).
    pub note: String,
}

/// The whole result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Runs per side.
    pub runs: usize,
    /// Images made.
    pub images: Vec<ImageInfo>,
    /// Pairs on the main images.
    pub rows: Vec<Row>,
    /// journal and manifest --hash pairs at every size (growth).
    pub growth: Vec<Row>,
    /// The floor under every subprocess row: `daxray --version` against `true`, a process that
    /// does nothing, timed the same way.
    pub floor: Option<Row>,
}

/// One side of a pair: a subprocess or an in-process closure.
enum Side<'a> {
    Proc(Vec<std::ffi::OsString>),
    InProc(Box<dyn FnMut() -> Result<()> + 'a>),
}

/// GNU time, which reports its child's peak RSS. The RSS cannot come from our own `wait4`: a
/// child started by vfork/exec from this (large) process inherits our high-water mark as its
/// `ru_maxrss`. GNU time is small, so the child it starts reports only its own peak. GNU time's
/// own start would add a millisecond to every run, so the times come from runs without it and
/// the peak RSS from one more run under it.
const GNU_TIME: &str = "/usr/bin/time";

/// Run `cmd` with stdin empty, stdout to /dev/null and stderr to `scratch/stderr.log`; wall time
/// in ms (from just before the spawn to the end of the wait) and exit code. A command killed by
/// a signal is an error that quotes the end of its standard error.
fn run_timed(mut cmd: Command, scratch: &Path) -> Result<(f64, i32)> {
    let errlog = scratch.join("stderr.log");
    let null = std::fs::File::create("/dev/null").map_err(|e| Error::io("/dev/null", e))?;
    let err = std::fs::File::create(&errlog).map_err(|e| Error::io(&errlog, e))?;
    let t = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(null)
        .stderr(err)
        .spawn()
        .map_err(|e| Error::External(format!("cannot run {cmd:?}: {e}")))?;
    let exit = sys::wait_child(child.id(), true)
        .map_err(|e| Error::External(format!("waiting for {cmd:?}: {e}")))?
        .ok_or_else(|| Error::External(format!("{cmd:?}: wait4 returned no status")))?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    match (exit.code, exit.signal) {
        (Some(c), _) => Ok((ms, c)),
        (_, s) => {
            let mut tail = String::new();
            let _ = std::fs::File::open(&errlog).and_then(|mut f| f.read_to_string(&mut tail));
            Err(Error::External(format!("{cmd:?} killed by signal {s:?}: {}", tail.trim())))
        }
    }
}

/// One timed run of `argv`: wall time in ms and exit code.
fn time_proc(argv: &[std::ffi::OsString], scratch: &Path) -> Result<(f64, i32)> {
    let (prog, args) = argv.split_first().ok_or_else(|| Error::Usage("empty command".into()))?;
    let mut cmd = Command::new(prog);
    cmd.args(args);
    run_timed(cmd, scratch)
}

/// The peak RSS of one run of `argv`, KiB (GNU time's `%M`).
fn rss_proc(argv: &[std::ffi::OsString], scratch: &Path) -> Result<u64> {
    if !Path::new(GNU_TIME).is_file() {
        return Err(Error::External(format!("{GNU_TIME} not found (install the `time` package)")));
    }
    let rsslog = scratch.join("rss.txt");
    let mut cmd = Command::new(GNU_TIME);
    cmd.arg("-f").arg("%M").arg("-o").arg(&rsslog).args(argv);
    run_timed(cmd, scratch)?;
    Ok(std::fs::read_to_string(&rsslog)
        .ok()
        .and_then(|t| t.lines().rev().find_map(|l| l.trim().parse::<u64>().ok()))
        .unwrap_or(0))
}

/// How many bytes `argv` writes to its standard output (one more run, not timed).
fn output_bytes(argv: &[std::ffi::OsString]) -> Result<u64> {
    let (prog, args) = argv.split_first().ok_or_else(|| Error::Usage("empty command".into()))?;
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::External(format!("cannot run {prog:?}: {e}")))?;
    // OK to unwrap: stdout was piped just above.
    let mut out = child.stdout.take().expect("piped stdout");
    let n = std::io::copy(&mut out, &mut std::io::sink()).map_err(|e| Error::io("<pipe>", e))?;
    child.wait().map_err(|e| Error::External(format!("waiting for {prog:?}: {e}")))?;
    Ok(n)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

struct Pair<'a> {
    fs: &'a str,
    size_mib: u64,
    operation: &'a str,
    daxray_cmd: String,
    peer_cmd: String,
}

/// Time `ours` and `peer` `runs` times each, alternating which goes first.
fn measure<'s>(
    p: Pair<'_>,
    mut ours: Side<'s>,
    mut peer: Side<'s>,
    runs: usize,
    scratch: &Path,
) -> Result<Row> {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let (mut ra, mut rb) = (None::<u64>, None::<u64>);
    let mut codes = (Vec::new(), Vec::new());
    let errlog = scratch.join("stderr.log");
    // GNU time exits with the child's code, or its own error.
    for i in 0..runs.max(1) {
        for which in if i % 2 == 0 { [0, 1] } else { [1, 0] } {
            let (side, times, rss, code) = if which == 0 {
                (&mut ours, &mut a, &mut ra, &mut codes.0)
            } else {
                (&mut peer, &mut b, &mut rb, &mut codes.1)
            };
            match side {
                Side::Proc(argv) => {
                    let (ms, c) = time_proc(argv, scratch)?;
                    if which == 0 && c > 1 {
                        let mut tail = String::new();
                        let _ = std::fs::File::open(&errlog).and_then(|mut f| f.read_to_string(&mut tail));
                        return Err(Error::External(format!(
                            "{} failed (exit {c}): {}",
                            p.daxray_cmd,
                            tail.trim()
                        )));
                    }
                    times.push(ms);
                    if rss.is_none() {
                        *rss = Some(rss_proc(argv, scratch)?);
                    }
                    if !code.contains(&c) {
                        code.push(c);
                    }
                }
                Side::InProc(f) => {
                    let t = Instant::now();
                    f()?;
                    times.push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
        }
    }
    let (dm, pm) = (median(&a), median(&b));
    let mut note = String::new();
    if codes.0.iter().any(|&c| c != 0) {
        note += &format!("daxray exit codes {:?} (1 = findings reported); ", codes.0);
    }
    if codes.1.iter().any(|&c| c != 0) {
        note += &format!("peer exit codes {:?}; ", codes.1);
    }
    Ok(Row {
        fs: p.fs.to_string(),
        size_mib: p.size_mib,
        operation: p.operation.to_string(),
        daxray_cmd: p.daxray_cmd,
        peer_cmd: p.peer_cmd,
        daxray_ms: dm,
        peer_ms: pm,
        ratio: pm / dm,
        daxray_rss_kib: ra,
        peer_rss_kib: rb,
        daxray_runs_ms: a,
        peer_runs_ms: b,
        note: note.trim_end_matches("; ").to_string(),
    })
}

/// A crash image and what was learnt while making it.
struct Built {
    fs: &'static str,
    image: PathBuf,
    claims: Vec<Claim>,
    info: ImageInfo,
}

/// FIEMAP_EXTENT_UNWRITTEN | FIEMAP_EXTENT_DATA_INLINE | FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC.
const FIEMAP_UNWRITTEN_OR_INLINE: u32 = 0x800 | 0x200 | 0x2 | 0x4;

/// Collect up to `max` claims (up to 16 KiB of the first written extent of each non-empty regular file) through the mount.
fn collect_claims(root: &Path, max: usize) -> Result<Vec<Claim>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    let mut visited = 0usize;
    while let Some(rel) = stack.pop() {
        visited += 1;
        if out.len() >= max || visited > 1_000_000 {
            break;
        }
        let dir = root.join(&rel);
        let rd = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut names: Vec<_> = rd.filter_map(|e| e.ok()).collect();
        names.sort_by_key(|e| e.file_name());
        for e in names {
            let Ok(ft) = e.file_type() else { continue };
            let r = rel.join(e.file_name());
            if ft.is_dir() {
                stack.push(r);
            } else if ft.is_file() && out.len() < max {
                let p = root.join(&r);
                let Ok(f) = std::fs::File::open(&p) else { continue };
                let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                // Claim bytes of the first written extent (not a hole, not unwritten space):
                // a store the writer made, which is what the check judges.
                let Ok(exts) = sys::fiemap(&f, 0, size.max(1), sys::FIEMAP_FLAG_SYNC) else { continue };
                let Some(e) =
                    exts.iter().find(|e| e.fe_flags & FIEMAP_UNWRITTEN_OR_INLINE == 0 && e.fe_logical < size)
                else {
                    continue;
                };
                let n = e.fe_length.min(size - e.fe_logical).min(16 << 10) as usize;
                let mut buf = vec![0u8; n];
                if n == 0 || std::os::unix::fs::FileExt::read_exact_at(&f, &mut buf, e.fe_logical).is_err() {
                    continue;
                }
                out.push(Claim {
                    path: format!("/{}", r.display()),
                    ino: None,
                    offset: e.fe_logical,
                    len: n as u64,
                    sha256: hex::encode(Sha256::digest(&buf)),
                    seq: None,
                });
            }
        }
    }
    Ok(out)
}

fn allocated(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map(|m| m.blocks() * 512).unwrap_or(0)
}

/// Make a crash image of `fs` ("ext4"/"xfs") of `size_mib` with journal `journal_mib`.
fn build(
    fs: &'static str,
    size_mib: u64,
    journal_mib: u64,
    dir: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<Built> {
    let live = dir.join(format!("{fs}-{size_mib}-live.img"));
    let crash = dir.join(format!("{fs}-{size_mib}.img"));
    let j = format!("size={journal_mib}");
    let l = format!("size={journal_mib}m");
    let (mkfs, mount_opts): (Vec<&str>, &str) = if fs == "ext4" {
        (vec!["mkfs.ext4", "-q", "-F", "-b", "4096", "-J", &j], "data=journal")
    } else {
        (vec!["mkfs.xfs", "-q", "-f", "-m", "reflink=0", "-l", &l], "")
    };
    log(&format!("making {fs} {size_mib} MiB, journal/log {journal_mib} MiB"));
    make_image(&live, size_mib << 20, &mkfs)?;
    let spec = WorkloadSpec {
        seed: size_mib,
        files: (size_mib * 3) as usize,
        big_dir_entries: (size_mib * 2) as usize,
        max_file_bytes: 512 << 10,
        ops: (size_mib * 2) as usize,
        fsync: true,
    };
    let r = crash_copy(&live, fs, mount_opts, &crash, |root| {
        Ok((run_workload(root, &spec)?, collect_claims(root, 256)?))
    });
    let _ = std::fs::remove_file(&live);
    let (st, claims) = r?;
    let opened = crate::open::open(&crash, &crate::open::OpenOptions::default())?;
    let (entries, _) = crate::manifest::build(&*opened.fs, false)?;
    log(&format!(
        "{fs} {size_mib} MiB: {} files created, {} at end, {} fsyncs, {} MiB written; daxray lists {} files",
        st.files_created,
        st.files_at_end,
        st.fsyncs,
        st.bytes_written >> 20,
        entries.len()
    ));
    let info = ImageInfo {
        fs: fs.to_string(),
        size_mib,
        journal_mib,
        allocated_bytes: allocated(&crash),
        workload: st,
        manifest_files: entries.len(),
        claims: claims.len(),
    };
    Ok(Built { fs, image: crash, claims, info })
}

fn cmd(prog: &Path, args: &[&str]) -> Vec<std::ffi::OsString> {
    std::iter::once(prog.as_os_str().to_owned()).chain(args.iter().map(std::ffi::OsString::from)).collect()
}

fn tool(name: &str) -> Result<PathBuf> {
    oracle::find_tool(name).ok_or_else(|| Error::External(format!("{name} is not installed")))
}

/// The kernel route to `manifest --hash`: copy, loop-mount (recovery), sha256 every file, unmount.
const KERNEL_HASH_SCRIPT: &str = r#"set -e
trap 'umount "$4" 2>/dev/null || true; rm -f "$2"' EXIT
cp --sparse=always "$1" "$2"
mount -t "$3" -o loop "$2" "$4"
find "$4" -type f -print0 | xargs -0 -r sha256sum >/dev/null
umount "$4"
"#;

/// The journal and manifest pairs on one image.
fn journal_and_manifest(b: &Built, o: &Options, scratch: &Path) -> Result<Vec<Row>> {
    let img = b.image.to_str().ok_or_else(|| Error::Usage("work dir path is not UTF-8".into()))?;
    let mut rows = Vec::new();
    let peer = if b.fs == "ext4" {
        (cmd(&tool("debugfs")?, &["-c", "-R", "logdump -a", img]), "debugfs -c -R 'logdump -a' IMG")
    } else {
        (cmd(&tool("xfs_logprint")?, &["-t", img]), "xfs_logprint -t IMG")
    };
    let mut row = measure(
        Pair {
            fs: b.fs,
            size_mib: b.info.size_mib,
            operation: "journal",
            daxray_cmd: "daxray journal IMG".into(),
            peer_cmd: peer.1.into(),
        },
        Side::Proc(cmd(&o.daxray, &["journal", img])),
        Side::Proc(peer.0.clone()),
        o.runs,
        scratch,
    )?;
    // Both sides mostly format text: how much each prints says what the time goes to.
    let printed = (output_bytes(&cmd(&o.daxray, &["journal", img]))?, output_bytes(&peer.0)?);
    let sep = if row.note.is_empty() { "" } else { "; " };
    row.note = format!("{}{sep}printed: daxray {} bytes, peer {} bytes", row.note, printed.0, printed.1);
    rows.push(row);
    if b.fs == "ext4" {
        // Also every logged block's tag checksum (the whole journal read), which logdump skips.
        rows.push(measure(
            Pair {
                fs: b.fs,
                size_mib: b.info.size_mib,
                operation: "journal --verify-data",
                daxray_cmd: "daxray journal --verify-data IMG".into(),
                peer_cmd: peer.1.into(),
            },
            Side::Proc(cmd(&o.daxray, &["journal", "--verify-data", img])),
            Side::Proc(peer.0),
            o.runs,
            scratch,
        )?);
    }
    let copy = scratch.join("kernel-route.img");
    let mnt = scratch.join("mnt");
    std::fs::create_dir_all(&mnt).map_err(|e| Error::io(&mnt, e))?;
    let k: Vec<std::ffi::OsString> = vec![
        "sh".into(),
        "-c".into(),
        KERNEL_HASH_SCRIPT.into(),
        "sh".into(),
        img.into(),
        copy.into_os_string(),
        b.fs.into(),
        mnt.into_os_string(),
    ];
    rows.push(measure(
        Pair {
            fs: b.fs,
            size_mib: b.info.size_mib,
            operation: "manifest --hash",
            daxray_cmd: "daxray manifest --hash IMG".into(),
            peer_cmd: "cp --sparse=always IMG COPY; mount -o loop COPY MNT; find MNT -type f | xargs sha256sum; umount MNT".into(),
        },
        Side::Proc(cmd(&o.daxray, &["manifest", "--hash", img])),
        Side::Proc(k),
        o.runs,
        scratch,
    )?);
    Ok(rows)
}

/// The map-every-inode pair and the in-place check pair on a main image.
fn map_and_check(b: &Built, o: &Options, scratch: &Path) -> Result<Vec<Row>> {
    let img = b.image.to_str().ok_or_else(|| Error::Usage("work dir path is not UTF-8".into()))?;
    let mut rows = Vec::new();
    // The peers do not recover the journal or log, and most of the files live in it: on the
    // crash image their inodes are not even on disk (debugfs: "does not use extent block
    // maps"; xfs_db: CRC errors). Both sides map the files of a copy the kernel recovered
    // (mounted and unmounted), where every inode is in place.
    let rec_path = scratch.join(format!("recovered-{}-{}.img", b.fs, b.info.size_mib));
    crate::oracle::copy_sparse(&b.image, &rec_path)?;
    crate::oracle::Mount::new(&rec_path, 0, b.fs, "")?.unmount()?;
    let rec = rec_path.to_str().ok_or_else(|| Error::Usage("work dir path is not UTF-8".into()))?;
    // The inodes daxray lists (regular files) are the ones both sides map.
    let opened = crate::open::open(&rec_path, &crate::open::OpenOptions::default())?;
    let (entries, _) = crate::manifest::build(&*opened.fs, false)?;
    let mut inos: Vec<u64> = entries.iter().map(|e| e.ino).collect();
    inos.sort_unstable();
    inos.dedup();
    let cmdfile = scratch.join("peer-commands.txt");
    let (peer, shown) = if b.fs == "ext4" {
        let text: String = inos.iter().map(|i| format!("ex <{i}>\n")).collect();
        std::fs::write(&cmdfile, text).map_err(|e| Error::io(&cmdfile, e))?;
        let f = cmdfile.to_str().unwrap_or_default().to_string();
        (
            cmd(&tool("debugfs")?, &["-c", "-f", &f, rec]),
            "debugfs -c -f CMDS REC (CMDS: `ex <INO>` per inode)",
        )
    } else {
        let text: String = inos.iter().map(|i| format!("inode {i}\nbmap\n")).collect();
        std::fs::write(&cmdfile, text).map_err(|e| Error::io(&cmdfile, e))?;
        let c: Vec<std::ffi::OsString> = vec![
            "sh".into(),
            "-c".into(),
            "exec xfs_db -r -f \"$1\" < \"$2\"".into(),
            "sh".into(),
            rec.into(),
            cmdfile.clone().into_os_string(),
        ];
        (c, "xfs_db -r -f REC < CMDS (CMDS: `inode INO`, `bmap` per inode)")
    };
    let mut row = measure(
        Pair {
            fs: b.fs,
            size_mib: b.info.size_mib,
            operation: "map every file inode",
            daxray_cmd: "daxray manifest REC (walk + extents of every regular file, no hash; REC: IMG recovered by the kernel)".into(),
            peer_cmd: shown.into(),
        },
        Side::Proc(cmd(&o.daxray, &["manifest", rec])),
        Side::Proc(peer),
        o.runs,
        scratch,
    )?;
    row.note = format!("{} inodes; {}", inos.len(), row.note).trim_end_matches("; ").to_string();
    rows.push(row);
    drop(opened);
    if !o.keep_images {
        let _ = std::fs::remove_file(&rec_path);
    }

    // The in-place check vs the kernel oracle, on the same claims.
    let claims_path = scratch.join(format!("claims-{}-{}.jsonl", b.fs, b.info.size_mib));
    write_claims(&claims_path, &b.claims)?;
    let cp = claims_path.to_str().unwrap_or_default().to_string();
    let fstype = b.fs;
    let image = b.image.clone();
    let claims = b.claims.clone();
    let oracle_scratch = scratch.to_path_buf();
    let mut row = measure(
        Pair {
            fs: b.fs,
            size_mib: b.info.size_mib,
            operation: "check paused state",
            daxray_cmd: "daxray check IMG --claims CLAIMS".into(),
            peer_cmd: "oracle::kernel_check (copy + loop mount + read claims back + unmount), in process"
                .into(),
        },
        Side::Proc(cmd(&o.daxray, &["check", img, "--claims", &cp])),
        Side::InProc(Box::new(move || {
            crate::oracle::kernel_check(&image, 0, fstype, &claims, &oracle_scratch, false).map(|_| ())
        })),
        o.runs,
        scratch,
    )?;
    // The same check as the replay engine runs it on every paused state: in process, as the
    // oracle side is (no process start, no argument parsing, no output).
    let (image, claims, oracle_scratch) = (b.image.clone(), b.claims.clone(), scratch.to_path_buf());
    let (image2, claims2) = (b.image.clone(), b.claims.clone());
    let lib_row = measure(
        Pair {
            fs: b.fs,
            size_mib: b.info.size_mib,
            operation: "check paused state, in process",
            daxray_cmd:
                "replay::state::check_in_place (the replay engine's check of each paused state), in process"
                    .into(),
            peer_cmd: "oracle::kernel_check (copy + loop mount + read claims back + unmount), in process"
                .into(),
        },
        Side::InProc(Box::new(move || {
            crate::replay::state::check_in_place(&image2, &claims2, false).map(|_| ())
        })),
        Side::InProc(Box::new(move || {
            crate::oracle::kernel_check(&image, 0, fstype, &claims, &oracle_scratch, false).map(|_| ())
        })),
        o.runs,
        scratch,
    )?;
    // Agreement, once.
    let ours = crate::replay::state::check_in_place(&b.image, &b.claims, false)?;
    let kernel = crate::oracle::kernel_check(&b.image, ours.dataoff, fstype, &b.claims, scratch, false)?;
    let dis = crate::replay::state::disagreements(&ours.verdicts, &kernel);
    let durable = kernel.durable.iter().filter(|d| **d).count();
    row.note = format!(
        "{} claims, kernel finds {durable} durable, daxray and kernel disagree on {}; library in-place check {:.1} ms; {}",
        b.claims.len(),
        dis.len(),
        ours.ms,
        row.note
    )
    .trim_end_matches("; ")
    .to_string();
    rows.push(row);
    rows.push(lib_row);
    Ok(rows)
}

/// Smallest XFS image mkfs.xfs accepts, MiB (it refuses below 300 MB).
const XFS_MIN_MIB: u64 = 320;

/// Run the whole benchmark. `log` gets progress lines.
pub fn run(o: &Options, log: &mut dyn FnMut(&str)) -> Result<Report> {
    oracle::require(
        &["mkfs.ext4", "mkfs.xfs", "debugfs", "xfs_logprint", "xfs_db", "mount", "losetup"],
        true,
    )
    .map_err(Error::External)?;
    std::fs::create_dir_all(&o.work_dir).map_err(|e| Error::io(&o.work_dir, e))?;
    let dir = tempfile::Builder::new()
        .prefix("daxray-bench-parse-")
        .tempdir_in(&o.work_dir)
        .map_err(|e| Error::io(&o.work_dir, e))?;
    let mut report =
        Report { runs: o.runs, images: Vec::new(), rows: Vec::new(), growth: Vec::new(), floor: None };
    log("timing the process start: daxray --version, true");
    report.floor = Some(measure(
        Pair {
            fs: "-",
            size_mib: 0,
            operation: "process start",
            daxray_cmd: "daxray --version".into(),
            peer_cmd: "true".into(),
        },
        Side::Proc(cmd(&o.daxray, &["--version"])),
        Side::Proc(cmd(&tool("true")?, &[])),
        o.runs.max(10),
        dir.path(),
    )?);
    let mut sizes: Vec<u64> = o.growth_mib.iter().copied().filter(|&s| s < o.size_mib).collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes.push(o.size_mib);
    for fs in o.fs.iter().copied() {
        // mkfs.xfs refuses file systems below 300 MB.
        let mut fs_sizes: Vec<u64> =
            sizes.iter().map(|&s| if fs == "xfs" { s.max(XFS_MIN_MIB) } else { s }).collect();
        fs_sizes.dedup();
        for &s in &fs_sizes {
            let jm = (o.journal_mib * s / o.size_mib).max(16);
            let jm = if fs == "xfs" { xfs_log_mib(jm, s) } else { jm };
            let b = build(fs, s, jm, dir.path(), log)?;
            report.images.push(b.info.clone());
            log(&format!("timing {fs} {s} MiB: journal, manifest --hash"));
            let rows = journal_and_manifest(&b, o, dir.path())?;
            if s == *fs_sizes.last().unwrap_or(&s) {
                report.rows.extend(rows.iter().cloned());
                log(&format!("timing {fs} {s} MiB: map every inode, check paused state"));
                report.rows.extend(map_and_check(&b, o, dir.path())?);
            }
            report.growth.extend(rows);
            if o.keep_images {
                log(&format!("kept {}", b.image.display()));
            } else {
                let _ = std::fs::remove_file(&b.image);
            }
        }
    }
    if o.keep_images {
        let kept = dir.keep();
        log(&format!("images and claims kept in {}", kept.display()));
    }
    Ok(report)
}

fn kib(v: Option<u64>) -> String {
    v.map(|k| format!("{:.1} MiB", k as f64 / 1024.0)).unwrap_or_else(|| "n/a".into())
}

/// The text form: the table, then growth.
pub fn render_text(r: &Report) -> String {
    let mut s = format!("daxray bench parse: medians of {} runs, side by side on the same bytes\n\n", r.runs);
    s += "images:\n";
    for i in &r.images {
        s += &format!(
            "  {} {} MiB, journal/log {} MiB: {} MiB allocated, {} files created, {} fsyncs, {} files listed\n",
            i.fs,
            i.size_mib,
            i.journal_mib,
            i.allocated_bytes >> 20,
            i.workload.files_created,
            i.workload.fsyncs,
            i.manifest_files
        );
    }
    if let Some(f) = &r.floor {
        s += &format!(
            "\nprocess start (under every subprocess row): {} {:.2} ms, {} {:.2} ms\n",
            f.daxray_cmd, f.daxray_ms, f.peer_cmd, f.peer_ms
        );
    }
    s += &format!(
        "\n{:<5} {:<22} {:>12} {:>12} {:>8} {:>12} {:>12}\n",
        "fs", "operation", "daxray ms", "peer ms", "ratio", "daxray RSS", "peer RSS"
    );
    for x in &r.rows {
        s += &format!(
            "{:<5} {:<22} {:>12.1} {:>12.1} {:>7.1}x {:>12} {:>12}\n",
            x.fs,
            x.operation,
            x.daxray_ms,
            x.peer_ms,
            x.ratio,
            kib(x.daxray_rss_kib),
            kib(x.peer_rss_kib)
        );
    }
    s += "\npeers:\n";
    for x in &r.rows {
        s += &format!("  {} {}: {}  vs  {}", x.fs, x.operation, x.daxray_cmd, x.peer_cmd);
        if !x.note.is_empty() {
            s += &format!("  [{}]", x.note);
        }
        s.push('\n');
    }
    s += &format!(
        "\ngrowth:\n{:<5} {:>8} {:<18} {:>12} {:>12} {:>8} {:>12}\n",
        "fs", "MiB", "operation", "daxray ms", "peer ms", "ratio", "daxray RSS"
    );
    for x in &r.growth {
        s += &format!(
            "{:<5} {:>8} {:<18} {:>12.1} {:>12.1} {:>7.1}x {:>12}\n",
            x.fs,
            x.size_mib,
            x.operation,
            x.daxray_ms,
            x.peer_ms,
            x.ratio,
            kib(x.daxray_rss_kib)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<std::ffi::OsString> {
        v.iter().map(Into::into).collect()
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn timed_runs_give_exit_codes_and_output_sizes() {
        let tmp = tempfile::tempdir().expect("temporary folder");
        let (ms, code) = time_proc(&argv(&["sh", "-c", "exit 3"]), tmp.path()).expect("sh runs");
        assert_eq!(code, 3);
        assert!(ms > 0.0);
        assert_eq!(output_bytes(&argv(&["printf", "%s", "twelve bytes"])).expect("printf runs"), 12);
        // A command killed by a signal is an error naming what it wrote on standard error.
        let e =
            time_proc(&argv(&["sh", "-c", "echo dying >&2; kill -9 $$"]), tmp.path()).expect_err("killed");
        assert!(e.to_string().contains("dying"), "{e}");
    }
}
