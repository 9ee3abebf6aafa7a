//! The named workloads the guest runs on the DAX-mounted file system.
//!
//! Each store writes a distinct pattern through the mapping (a whole 4 KiB page; with PMD faults
//! the first 4 KiB of each 2 MiB extent), flushes its cache lines (`clflush` + `sfence`), hashes
//! the bytes read back from the mapping, reports a [`Store`] and waits for the host's `Go`.
//! With `Job.sync` the mapping is `MAP_SHARED_VALIDATE | MAP_SYNC`; without, plain `MAP_SHARED`
//! (the control, where the block mapping may not be durable when the store is visible).
//!
//! The `latency-*` scenarios (the fault-latency bench) time each first store instead, with no
//! host round trip per store, and send the times as [`GuestMsg::LatencyRun`] messages.

use super::Link;
use super::proto::{FaultSize, FileExtent, GuestMsg, HostMsg, Job, LatencyConfig, PmdLayout, Store};
use crate::error::{Error, Result};
use crate::sys::{self, RawMap};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Whether the control (plain `MAP_SHARED`) of a scenario can lose a store at all: not when the
/// stores need no block-mapping change (`prealloc-written`: the blocks were written and fsynced
/// before the mapping) or the scenario makes each store durable itself (`msync-after`: msync
/// after every store). Their control runs show no violation by design.
pub fn control_can_lose(scenario: &str) -> bool {
    !matches!(scenario, "prealloc-written" | "msync-after")
}

/// Scenario names with one line each.
pub const SCENARIOS: &[(&str, &str)] = &[
    ("seq-sparse", "first stores to the pages of a sparse file, in order"),
    ("random-sparse", "first stores to the pages of a sparse file, in a seeded random order"),
    ("prealloc-written", "stores into a file written with pwrite and fsynced before it was mapped"),
    ("fallocated-unwritten", "stores into a fallocated (unwritten) file"),
    ("pmd-sparse", "first stores to each 2 MiB extent of a sparse file (PMD faults)"),
    ("multi-file", "first stores spread round-robin over three sparse files"),
    ("background-writer", "seq-sparse while a thread appends to and fsyncs another file"),
    ("msync-after", "seq-sparse with msync after each store and fsync at the end"),
    (
        "soak",
        "background-writer plus a thread that creates, writes, fsyncs, renames, truncates and unlinks small files (replay --soak)",
    ),
    ("latency-empty", "bench: time the first store to each page of a sparse file"),
    ("latency-prealloc", "bench: time the first store to each page of a written, fsynced file"),
    ("latency-empty-load", "bench: latency-empty with a background writer"),
    ("latency-prealloc-load", "bench: latency-prealloc with a background writer"),
    ("latency-all", "bench: all eight latency configurations (Job.sync is ignored)"),
];

/// True for a known scenario name.
pub fn is_known(name: &str) -> bool {
    SCENARIOS.iter().any(|(n, _)| *n == name)
}

/// splitmix64: a small, good mixing function for patterns and orders.
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The bytes of store `seq` under `seed`: an ASCII label, then pseudo-random words.
pub fn pattern(seed: u64, seq: u64, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 8);
    let label = format!("daxray store {seq} seed {seed} ");
    v.extend_from_slice(label.as_bytes());
    let mut i = 0u64;
    while v.len() < len {
        v.extend_from_slice(&splitmix64(seed ^ seq.rotate_left(32) ^ i).to_le_bytes());
        i += 1;
    }
    v.truncate(len);
    v
}

/// A seeded Fisher–Yates permutation of `0..n`.
pub fn permutation(n: u32, seed: u64) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n).collect();
    let mut s = seed;
    for i in (1..v.len()).rev() {
        s = splitmix64(s);
        let j = (s % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

/// One mapped file of the scenario.
struct Target {
    name: String,
    ino: u64,
    file: File,
    map: RawMap,
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::io(path, e)
}

fn open_target(dir: &Path, name: &str, len: u64, sync: bool, prep: Prep, pmd_hint: bool) -> Result<Target> {
    let path = dir.join(name);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| io(&path, e))?;
    if pmd_hint {
        // XFS honours an extent size hint: 2 MiB-aligned 2 MiB extents make PMD faults possible
        // on a sparse file. Other file systems refuse it; that is not an error.
        if let Err(e) = sys::set_extsize_hint(&file, 2 << 20) {
            eprintln!("daxray-agent: no 2 MiB extent size hint on {}: {e}", path.display());
        }
    }
    match prep {
        Prep::Sparse => file.set_len(len).map_err(|e| io(&path, e))?,
        Prep::Written => {
            let chunk = vec![0x5au8; 1 << 20];
            let mut off = 0u64;
            while off < len {
                let n = (len - off).min(chunk.len() as u64) as usize;
                file.write_all_at(&chunk[..n], off).map_err(|e| io(&path, e))?;
                off += n as u64;
            }
        }
        Prep::Fallocated => sys::fallocate(&file, 0, 0, len).map_err(|e| io(&path, e))?,
    }
    file.sync_all().map_err(|e| io(&path, e))?;
    let flags = if sync { sys::MAP_SHARED_VALIDATE | sys::MAP_SYNC } else { libc::MAP_SHARED };
    let ulen = usize::try_from(len).map_err(|_| Error::Usage("file too large".into()))?;
    let mapped = if pmd_hint {
        sys::map_shared_rw_aligned(&file, ulen, flags, FaultSize::Pmd.bytes() as usize)
    } else {
        sys::map_shared_rw(&file, ulen, flags)
    };
    let map = mapped.map_err(|e| {
        Error::External(format!(
            "mmap {} with {}: {e}",
            path.display(),
            if sync { "MAP_SHARED_VALIDATE|MAP_SYNC" } else { "MAP_SHARED" }
        ))
    })?;
    if !pmd_hint {
        // 4 KiB faults only: no PMD fault attempt may allocate 2 MiB at once.
        map.no_huge_pages().map_err(|e| io(&path, e))?;
    }
    let ino = file.metadata().map_err(|e| io(&path, e))?.ino();
    Ok(Target { name: format!("/{name}"), ino, file, map })
}

#[derive(Clone, Copy)]
enum Prep {
    Sparse,
    Written,
    Fallocated,
}

/// Threads that keep the journal/log busy until stopped: one appends to and fsyncs a file
/// (truncating it at 16 MiB); with `churn`, another creates, writes, fsyncs, renames, truncates
/// and unlinks small files (directory and inode changes: every kind of fast-commit tag, and
/// renames, which make the fast commit ineligible).
struct Background {
    stop: Arc<AtomicBool>,
    handles: Vec<std::thread::JoinHandle<Result<u64>>>,
}

/// Small files the churn thread cycles through.
const CHURN_FILES: u64 = 16;

impl Background {
    fn start(dir: &Path) -> Result<Background> {
        Self::start_with(dir, false)
    }

    fn start_with(dir: &Path, churn: bool) -> Result<Background> {
        let path = dir.join("background");
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let mut handles = vec![std::thread::spawn(move || -> Result<u64> {
            let chunk = vec![0xb6u8; 64 << 10];
            let mut written = 0u64;
            let mut rounds = 0u64;
            while !s2.load(Ordering::Relaxed) {
                f.write_all(&chunk).map_err(|e| io(&path, e))?;
                f.sync_all().map_err(|e| io(&path, e))?;
                written += chunk.len() as u64;
                rounds += 1;
                if written >= 16 << 20 {
                    f.set_len(0).map_err(|e| io(&path, e))?;
                    use std::io::Seek;
                    f.seek(std::io::SeekFrom::Start(0)).map_err(|e| io(&path, e))?;
                    written = 0;
                }
            }
            Ok(rounds)
        })];
        if churn {
            let s3 = stop.clone();
            let dir = dir.to_path_buf();
            handles.push(std::thread::spawn(move || churn_loop(&dir, &s3)));
        }
        Ok(Background { stop, handles })
    }

    fn finish(mut self) -> Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        let mut rounds = 0;
        for h in self.handles.drain(..) {
            match h.join() {
                Ok(r) => rounds += r?,
                Err(_) => return Err(Error::External("a background writer panicked".into())),
            }
        }
        Ok(rounds)
    }
}

/// The churn thread of [`Background`]: each round writes a new version of one small file
/// (create `cN.tmp`, write 1-16 KiB, fsync, rename over `cN`), and every few rounds truncates or
/// unlinks another one and fsyncs the folder.
fn churn_loop(dir: &Path, stop: &AtomicBool) -> Result<u64> {
    let mut rounds = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let r = splitmix64(rounds);
        let n = r % CHURN_FILES;
        let tmp = dir.join(format!("c{n}.tmp"));
        let dst = dir.join(format!("c{n}"));
        let len = usize::try_from(1024 + (r >> 8) % (15 << 10)).unwrap_or(4096);
        let data = vec![(r >> 40) as u8 | 1; len];
        let mut f = File::create(&tmp).map_err(|e| io(&tmp, e))?;
        f.write_all(&data).map_err(|e| io(&tmp, e))?;
        f.sync_all().map_err(|e| io(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, &dst).map_err(|e| io(&dst, e))?;
        let other = dir.join(format!("c{}", (n + CHURN_FILES / 2) % CHURN_FILES));
        match rounds % 4 {
            1 => {
                if let Ok(f) = OpenOptions::new().write(true).open(&other) {
                    let half = f.metadata().map(|m| m.len() / 2).unwrap_or(0);
                    f.set_len(half).map_err(|e| io(&other, e))?;
                    f.sync_all().map_err(|e| io(&other, e))?;
                }
            }
            3 => match std::fs::remove_file(&other) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&other, e)),
            },
            _ => {}
        }
        if rounds % 8 == 7 {
            File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io(dir, e))?;
        }
        rounds += 1;
    }
    Ok(rounds)
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Make one store of `len` bytes, flush it, report the `claim` bytes from its start as they
/// read back through the mapping, and wait for `Go`. Returns false on `Abort`.
#[allow(clippy::too_many_arguments)]
fn store(
    link: &mut dyn Link,
    job: &Job,
    t: &Target,
    seq: u64,
    offset: u64,
    len: usize,
    claim: usize,
    msync: bool,
) -> Result<bool> {
    let off = usize::try_from(offset).map_err(|_| Error::Usage("offset too large".into()))?;
    let bytes = pattern(job.seed, seq, len);
    let mp = Path::new(&t.name);
    t.map.store(off, &bytes).map_err(|e| io(mp, e))?;
    t.map.flush(off, len).map_err(|e| io(mp, e))?;
    if msync {
        t.map.msync(off, len).map_err(|e| io(mp, e))?;
    }
    let back = t.map.load(off, claim).map_err(|e| io(mp, e))?;
    let sha256 = hex::encode(Sha256::digest(&back));
    link.send(&GuestMsg::Store(Store {
        seq,
        file: t.name.clone(),
        ino: t.ino,
        offset,
        len: claim as u64,
        sha256,
    }))?;
    match link.recv()? {
        HostMsg::Go => Ok(true),
        HostMsg::Abort => Ok(false),
        HostMsg::Job(_) | HostMsg::Next { .. } => Err(Error::Usage("the host sent a second job".into())),
        HostMsg::PowerOff => {
            Err(Error::Usage("the host asked for power-off in the middle of a scenario".into()))
        }
    }
}

/// Where a (non-bench) scenario stores: the files it makes and the size of each store. The host
/// checks every `Store` the guest reports against this ([`files`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The fault size the stores aim for.
    pub fault: FaultSize,
    /// Bytes between stores in a file (one page, or one 2 MiB extent).
    pub stride: u64,
    /// How many files (`/f0`, `/f1`, ...).
    pub nfiles: u64,
    /// Length of each file.
    pub file_len: u64,
    /// Bytes written by one store.
    pub store_len: u64,
    /// Bytes each `Store` claims from the store's offset: the store itself, or with PMD faults
    /// the whole 2 MiB extent the fault mapped (the store, then the zeros the file system wrote
    /// when it allocated the extent), so that a crash state is checked for the whole mapping.
    pub claim_len: u64,
}

/// The layout of a store scenario's files (not the `latency-*` benches, which report no stores).
pub fn layout(job: &Job) -> Result<Layout> {
    if job.scenario.starts_with("latency-") {
        return Err(Error::Usage(format!("scenario {:?} makes no stores", job.scenario)));
    }
    let fault = job.fault();
    if fault == FaultSize::Pmd && job.namespace_align < (2 << 20) {
        return Err(Error::Usage("PMD faults need a namespace align of 2 MiB".into()));
    }
    let stride = fault.bytes();
    let nfiles: u64 = if job.scenario == "multi-file" { 3 } else { 1 };
    let per_file = u64::from(job.pages).div_ceil(nfiles);
    let file_len = per_file.checked_mul(stride).ok_or_else(|| Error::Usage("too many pages".into()))?;
    let claim_len = if fault == FaultSize::Pmd { stride } else { 4096 };
    Ok(Layout { fault, stride, nfiles, file_len, store_len: 4096, claim_len })
}

/// The absolute names (`/f0`, ...) of the files a store scenario maps.
pub fn files(job: &Job) -> Result<Vec<String>> {
    let l = layout(job)?;
    Ok((0..l.nfiles).map(|i| format!("/f{i}")).collect())
}

/// What a scenario run made.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Number of stores made.
    pub stores: u64,
    /// With PMD faults: the mappings' addresses and the files' extents after the stores
    /// (`data_phys` left 0 for the caller, who knows the namespace).
    pub pmd: Option<PmdLayout>,
}

/// The extents of `file` (named `name` in the report), from `FS_IOC_FIEMAP`.
fn extents_of(name: &str, file: &File) -> Result<Vec<FileExtent>> {
    const FIEMAP_EXTENT_LAST: u32 = 0x1;
    /// A bound on the calls (each returns up to 256 extents).
    const MAX_CALLS: usize = 64;
    let mut out = Vec::new();
    let mut start = 0u64;
    for _ in 0..MAX_CALLS {
        let batch = sys::fiemap(file, start, u64::MAX - start, 0).map_err(|e| io(Path::new(name), e))?;
        let Some(last) = batch.last() else { return Ok(out) };
        let done = last.fe_flags & FIEMAP_EXTENT_LAST != 0;
        start = last.fe_logical.saturating_add(last.fe_length);
        out.extend(batch.iter().map(|e| FileExtent {
            file: name.to_string(),
            logical: e.fe_logical,
            physical: e.fe_physical,
            length: e.fe_length,
            flags: e.fe_flags,
        }));
        if done {
            return Ok(out);
        }
    }
    Err(Error::External(format!("{name}: more than {MAX_CALLS} FIEMAP calls")))
}

/// Run the job's scenario in `dir`.
pub fn run(job: &Job, dir: &Path, link: &mut dyn Link) -> Result<Outcome> {
    if !is_known(&job.scenario) {
        let names: Vec<&str> = SCENARIOS.iter().map(|(n, _)| *n).collect();
        return Err(Error::Usage(format!(
            "unknown scenario {:?}; known: {}",
            job.scenario,
            names.join(", ")
        )));
    }
    if job.pages == 0 {
        return Err(Error::Usage("pages must be at least 1".into()));
    }
    if job.scenario.starts_with("latency-") {
        return Ok(Outcome { stores: latency(job, dir, link)?, pmd: None });
    }
    let Layout { fault, stride, nfiles, file_len, store_len, claim_len } = layout(job)?;
    let len = usize::try_from(store_len).map_err(|_| Error::Usage("store too large".into()))?;
    let claim = usize::try_from(claim_len).map_err(|_| Error::Usage("claim too large".into()))?;
    let pages = u64::from(job.pages);
    let msync = job.scenario == "msync-after";
    let prep = match job.scenario.as_str() {
        "prealloc-written" => Prep::Written,
        "fallocated-unwritten" => Prep::Fallocated,
        _ => Prep::Sparse,
    };
    let mut targets = Vec::new();
    for i in 0..nfiles {
        targets.push(open_target(dir, &format!("f{i}"), file_len, job.sync, prep, fault == FaultSize::Pmd)?);
    }
    let bg = match job.scenario.as_str() {
        "background-writer" => Some(Background::start(dir)?),
        "soak" => Some(Background::start_with(dir, true)?),
        _ => None,
    };
    let order: Vec<u64> = if job.scenario == "random-sparse" {
        permutation(job.pages, job.seed).into_iter().map(u64::from).collect()
    } else {
        (0..pages).collect()
    };
    let mut seq = 0u64;
    for &p in &order {
        let Some(t) = usize::try_from(p % nfiles).ok().and_then(|i| targets.get(i)) else {
            return Err(Error::Usage("file index out of range".into()));
        };
        let offset = (p / nfiles) * stride;
        let go_on = store(link, job, t, seq, offset, len, claim, msync)?;
        seq += 1;
        if !go_on {
            break;
        }
    }
    if let Some(b) = bg {
        b.finish()?;
    }
    if msync {
        for t in &targets {
            t.file.sync_all().map_err(|e| io(Path::new(&t.name), e))?;
        }
    }
    let pmd = if fault == FaultSize::Pmd {
        let mut l = PmdLayout::default();
        for t in &targets {
            l.map_addrs.push(t.map.addr() as u64);
            l.extents.extend(extents_of(&t.name, &t.file)?);
        }
        Some(l)
    } else {
        None
    };
    Ok(Outcome { stores: seq, pmd })
}

/// The fault-latency bench: the configurations a `latency-*` scenario names.
fn latency(job: &Job, dir: &Path, link: &mut dyn Link) -> Result<u64> {
    let configs = if job.scenario == "latency-all" {
        LatencyConfig::all()
    } else {
        vec![LatencyConfig {
            preallocated: job.scenario.starts_with("latency-prealloc"),
            background_load: job.scenario.ends_with("-load"),
            sync: job.sync,
        }]
    };
    // Warm-up, not reported: under emulation the first run of each kernel path pays for
    // translating its code, which would land on whichever configuration comes first.
    let warm = Job { pages: job.pages.min(32), ..job.clone() };
    for c in LatencyConfig::all().into_iter().filter(|c| !c.background_load) {
        latency_one(&warm, c, dir, None)?;
    }
    let mut n = 0;
    for c in configs {
        n += latency_one(job, c, dir, Some(&mut *link))?;
    }
    Ok(n)
}

/// Time the first 8-byte store to each page (each 2 MiB extent with PMD faults) of a fresh file
/// in one configuration, and send the times with this configuration's trace counts (when a link
/// is given).
fn latency_one(job: &Job, c: LatencyConfig, dir: &Path, link: Option<&mut dyn Link>) -> Result<u64> {
    let stride = job.fault_size.bytes();
    let pages = u64::from(job.pages);
    let file_len = pages.checked_mul(stride).ok_or_else(|| Error::Usage("too many pages".into()))?;
    let prep = if c.preallocated { Prep::Written } else { Prep::Sparse };
    let t = open_target(dir, "latency", file_len, c.sync, prep, job.fault_size == FaultSize::Pmd)?;
    let bg = if c.background_load { Some(Background::start(dir)?) } else { None };
    if bg.is_some() {
        // Let the writer get going before timing.
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let tracer = super::trace::Tracer::start().ok();
    let mut ns = Vec::with_capacity(job.pages as usize);
    for p in 0..pages {
        let off = usize::try_from(p * stride).map_err(|_| Error::Usage("offset too large".into()))?;
        let word = splitmix64(job.seed ^ p).to_le_bytes();
        let t0 = Instant::now();
        t.map.store(off, &word).map_err(|e| io(Path::new(&t.name), e))?;
        ns.push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    let trace = match tracer {
        Some(tr) => tr.finish()?,
        None => Default::default(),
    };
    if let Some(b) = bg {
        b.finish()?;
    }
    drop(t);
    let _ = std::fs::remove_file(dir.join("latency"));
    let _ = std::fs::remove_file(dir.join("background"));
    super::run_cmd("/bin/sync", &[])?;
    if let Some(link) = link {
        link.send(&GuestMsg::LatencyRun { config: c, ns, trace })?;
    }
    Ok(pages)
}
