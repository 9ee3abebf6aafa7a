//! A deterministic corruption campaign: a thousand (or more) corrupted variants of real kernel-made ext4
//! and XFS images (the committed fixtures, clean and dirty), each run through `daxray info`,
//! `daxray manifest --hash` and `daxray journal` as a subprocess, with a 10 s bound and an address
//! space limit. Asserts no panic (exit status 101), no signal, no run over 10 s, no allocation
//! over the limit, and the input image unchanged byte for byte.
//!
//! Environment: `DAXRAY_CORRUPTION_VARIANTS` (default 1000, spread over the five base images; about
//! 5 minutes on 2 cores with `--release`);
//! `DAXRAY_CORRUPTION_ONLY=BASE:INDEX` replays one variant (printed for each failure);
//! `DAXRAY_CORRUPTION_KEEP=DIR` writes each failing variant's image into DIR.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest a single daxray run may take.
const RUN_LIMIT: Duration = Duration::from_secs(10);
/// Address-space limit of each run (the image is mapped, so this includes it).
const AS_LIMIT: u64 = 2 << 30;
/// The base images (fixtures, all made by mkfs and the kernel).
const BASES: [&str; 5] =
    ["ext4/kernel", "ext4/kernel-dirty", "ext4/mkfs-d", "xfs/kernel", "xfs/kernel-dirty"];

fn gunzip(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(format!("{name}.img.gz"));
    let f = std::fs::File::open(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (remake with fixtures/make.sh)", p.display()));
    let mut v = Vec::new();
    flate2::read::GzDecoder::new(f).read_to_end(&mut v).expect("gunzip fixture");
    v
}

/// Byte ranges of the base image's metadata: every non-zero block that holds no file data
/// (file data found through daxray's own raw view of the uncorrupted image; this only chooses
/// where to corrupt).
fn metadata_blocks(img: &Path, bytes: &[u8]) -> (u64, Vec<u64>) {
    let o = daxray::open::open(img, &daxray::open::OpenOptions { raw: true, ..Default::default() })
        .unwrap_or_else(|e| panic!("open base {}: {e}", img.display()));
    let bs = u64::from(o.fs.block_size());
    let (entries, _) = daxray::manifest::build(&*o.fs, false).expect("manifest of the base");
    let mut data = HashSet::new();
    for e in &entries {
        for x in &e.extents {
            for b in x.physical..x.physical + x.length {
                data.insert(b);
            }
        }
    }
    let blocks = (bytes.len() as u64 / bs).min(1 << 24);
    let meta: Vec<u64> = (0..blocks)
        .filter(|b| !data.contains(b))
        .filter(|b| {
            let s = (b * bs) as usize;
            bytes[s..s + bs as usize].iter().any(|&x| x != 0)
        })
        .collect();
    (bs, meta)
}

/// One corruption: bytes written at an offset, or a truncation.
#[derive(Debug, Clone)]
enum Mutation {
    Write { offset: u64, bytes: Vec<u8> },
    Truncate { len: u64 },
}

/// The mutations of variant `index` of base `b` (deterministic).
fn variant(b: usize, index: usize, base: &[u8], bs: u64, meta: &[u64]) -> Vec<Mutation> {
    let mut rng = ChaCha8Rng::seed_from_u64(((b as u64) << 32) ^ index as u64 ^ 0x0da7_a7a7);
    let mut out = Vec::new();
    if rng.random_bool(0.05) {
        let len = rng.random_range(0..base.len() as u64);
        out.push(Mutation::Truncate { len });
        return out;
    }
    let n = rng.random_range(1..=3usize);
    for _ in 0..n {
        let blk = meta[rng.random_range(0..meta.len())];
        let start = blk * bs;
        let block = &base[start as usize..(start + bs) as usize];
        let m = match rng.random_range(0..100u32) {
            // random bytes
            0..=29 => {
                let len = rng.random_range(1..=64u64).min(bs);
                let off = rng.random_range(0..=bs - len);
                let mut v = vec![0u8; len as usize];
                rng.fill(&mut v[..]);
                Mutation::Write { offset: start + off, bytes: v }
            }
            // bit flips
            30..=59 => {
                let mut v = block.to_vec();
                for _ in 0..rng.random_range(1..=8u32) {
                    let i = rng.random_range(0..v.len());
                    v[i] ^= 1 << rng.random_range(0..8u32);
                }
                Mutation::Write { offset: start, bytes: v }
            }
            // enormous or sign-flipped counts at an aligned field
            60..=79 => {
                let vals: [[u8; 4]; 5] = [
                    [0xff; 4],
                    [0x7f, 0xff, 0xff, 0xff],
                    [0xff, 0xff, 0xff, 0x7f],
                    [0x80, 0, 0, 0],
                    [0, 0, 0, 0x80],
                ];
                let off = rng.random_range(0..bs / 4) * 4;
                Mutation::Write { offset: start + off, bytes: vals[rng.random_range(0..vals.len())].to_vec() }
            }
            // a whole block: zeros, ones, random, or a copy of another metadata block (aliasing,
            // which makes pointer cycles and duplicated headers)
            _ => {
                let v = match rng.random_range(0..4u32) {
                    0 => vec![0u8; bs as usize],
                    1 => vec![0xffu8; bs as usize],
                    2 => {
                        let mut v = vec![0u8; bs as usize];
                        rng.fill(&mut v[..]);
                        v
                    }
                    _ => {
                        let other = meta[rng.random_range(0..meta.len())] * bs;
                        base[other as usize..(other + bs) as usize].to_vec()
                    }
                };
                Mutation::Write { offset: start, bytes: v }
            }
        };
        out.push(m);
    }
    out
}

/// How one run ended.
fn run_daxray(args: &[&str], img: &Path) -> Result<(i32, Duration), String> {
    let bin = env!("CARGO_BIN_EXE_daxray");
    let mut cmd = if daxray::oracle::find_tool("prlimit").is_some() {
        let mut c = Command::new("prlimit");
        c.arg(format!("--as={AS_LIMIT}")).arg("--").arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(args).arg(img).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("cannot run daxray: {e}"))?;
    let mut err = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if start.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("ran over {} s (killed)", RUN_LIMIT.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let took = start.elapsed();
    let stderr = reader.join().unwrap_or_default();
    let tail: String = stderr.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
    match status.code() {
        Some(c @ 0..=2) if !stderr.contains("panicked at") => Ok((c, took)),
        Some(101) => Err(format!("panicked: {tail}")),
        Some(c) => Err(format!("exit status {c}: {tail}")),
        None => {
            Err(format!("killed by a signal ({status}; memory over {} GiB aborts): {tail}", AS_LIMIT >> 30))
        }
    }
}

/// Apply, run the three commands, check the input, restore. Returns failures and counts.
struct Work<'a> {
    base: &'a [u8],
    img: PathBuf,
    file: std::fs::File,
}

impl Work<'_> {
    fn apply(&self, ms: &[Mutation]) {
        for m in ms {
            match m {
                Mutation::Write { offset, bytes } => self.file.write_all_at(bytes, *offset).expect("patch"),
                Mutation::Truncate { len } => self.file.set_len(*len).expect("truncate"),
            }
        }
    }

    fn expected(&self, ms: &[Mutation]) -> Vec<u8> {
        let mut v = self.base.to_vec();
        for m in ms {
            match m {
                Mutation::Write { offset, bytes } => {
                    v[*offset as usize..*offset as usize + bytes.len()].copy_from_slice(bytes);
                }
                Mutation::Truncate { len } => v.truncate(*len as usize),
            }
        }
        v
    }

    fn restore(&self, ms: &[Mutation]) {
        for m in ms {
            match m {
                Mutation::Write { offset, bytes } => {
                    let o = *offset as usize;
                    self.file.write_all_at(&self.base[o..o + bytes.len()], *offset).expect("restore");
                }
                Mutation::Truncate { len } => {
                    self.file.set_len(self.base.len() as u64).expect("restore length");
                    self.file.write_all_at(&self.base[*len as usize..], *len).expect("restore tail");
                }
            }
        }
    }
}

#[derive(Default)]
struct Tally {
    runs: usize,
    by_code: [usize; 3],
    slowest: Duration,
    failures: Vec<String>,
}

fn campaign(b: usize, indexes: &[usize], tmp: &Path) -> Tally {
    let base = gunzip(BASES[b]);
    let img =
        tmp.join(format!("{}-{}.img", BASES[b].replace('/', "-"), indexes.first().copied().unwrap_or(0)));
    std::fs::write(&img, &base).expect("working copy");
    let (bs, meta) = metadata_blocks(&img, &base);
    assert!(meta.len() > 10, "{}: only {} metadata blocks found", BASES[b], meta.len());
    let file = std::fs::OpenOptions::new().write(true).open(&img).expect("open working copy");
    let w = Work { base: &base, img: img.clone(), file };
    let mut t = Tally::default();
    for &i in indexes {
        let ms = variant(b, i, &base, bs, &meta);
        w.apply(&ms);
        let expected = w.expected(&ms);
        for args in [&["info"][..], &["manifest", "--hash"][..], &["journal"][..]] {
            t.runs += 1;
            match run_daxray(args, &w.img) {
                Ok((code, took)) => {
                    t.by_code[code as usize] += 1;
                    t.slowest = t.slowest.max(took);
                }
                Err(why) => {
                    if let Ok(dir) = std::env::var("DAXRAY_CORRUPTION_KEEP") {
                        let _ = std::fs::write(
                            Path::new(&dir).join(format!("{}-{i}.img", BASES[b].replace('/', "-"))),
                            &expected,
                        );
                    }
                    t.failures.push(format!(
                        "{}:{i} `daxray {}`: {why} (replay with DAXRAY_CORRUPTION_ONLY={}:{i})",
                        BASES[b],
                        args.join(" "),
                        BASES[b]
                    ))
                }
            }
            let now = std::fs::read(&w.img).expect("read working copy");
            if now != expected {
                t.failures.push(format!(
                    "{}:{i} `daxray {}` changed its input image",
                    BASES[b],
                    args.join(" ")
                ));
            }
        }
        w.restore(&ms);
    }
    t
}

#[test]
fn corrupted_kernel_images_never_panic_hang_or_write() {
    let total: usize =
        std::env::var("DAXRAY_CORRUPTION_VARIANTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let only: Option<(usize, usize)> = std::env::var("DAXRAY_CORRUPTION_ONLY").ok().map(|v| {
        let (b, i) = v.rsplit_once(':').expect("BASE:INDEX");
        let b = BASES.iter().position(|x| *x == b).expect("a base name from BASES");
        (b, i.parse().expect("variant index"))
    });
    let tmp = tempfile::tempdir().expect("temporary folder");
    // Jobs: (base, variant indexes), split in two halves per base for the two cores.
    let mut jobs: Vec<(usize, Vec<usize>)> = Vec::new();
    if let Some((b, i)) = only {
        jobs.push((b, vec![i]));
    } else {
        let per = total.div_ceil(BASES.len());
        for b in 0..BASES.len() {
            let all: Vec<usize> = (0..per).collect();
            let (x, y) = all.split_at(per / 2);
            jobs.push((b, x.to_vec()));
            jobs.push((b, y.to_vec()));
        }
    }
    let start = Instant::now();
    let jobs = std::sync::Mutex::new(jobs);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let job = jobs.lock().expect("job list").pop();
                    let Some((b, idx)) = job else { break };
                    let t = campaign(b, &idx, tmp.path());
                    results.lock().expect("results").push((b, idx.len(), t));
                }
            });
        }
    });
    let results = results.into_inner().expect("results");
    let mut variants = 0;
    let mut all = Tally::default();
    for (_, n, t) in &results {
        variants += n;
        all.runs += t.runs;
        for c in 0..3 {
            all.by_code[c] += t.by_code[c];
        }
        all.slowest = all.slowest.max(t.slowest);
        all.failures.extend(t.failures.iter().cloned());
    }
    eprintln!(
        "corruption campaign: {variants} variants of {} kernel-made images, {} daxray runs in {:.0} s: \
         exit 0: {}, exit 1 (findings): {}, exit 2 (errors): {}, slowest run {:.2} s, failures {}",
        BASES.len(),
        all.runs,
        start.elapsed().as_secs_f64(),
        all.by_code[0],
        all.by_code[1],
        all.by_code[2],
        all.slowest.as_secs_f64(),
        all.failures.len()
    );
    assert!(all.runs >= variants * 3 && variants > 0, "nothing ran");
    assert!(
        all.by_code[1] + all.by_code[2] > 0,
        "no variant was noticed as damaged: the corruption did nothing"
    );
    assert!(
        all.failures.is_empty(),
        "{} failures:\n{}",
        all.failures.len(),
        all.failures.iter().take(50).cloned().collect::<Vec<_>>().join("\n")
    );
}
