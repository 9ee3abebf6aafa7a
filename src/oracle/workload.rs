//! A seeded, realistic file-system workload run through the real kernel on a mounted tree.

use crate::error::{Error, Result};
use crate::sys;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// What [`run_workload`] does. The same spec and seed give the same operations.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadSpec {
    /// Seed of the random choices (ChaCha8).
    pub seed: u64,
    /// Regular files created in the first phase (small, large, sparse and fallocated ones).
    pub files: usize,
    /// Entries in the one large directory (`/big`), e.g. thousands for htree/node directories.
    pub big_dir_entries: usize,
    /// Largest size of one file in bytes (large, sparse and fallocated files stay below it).
    pub max_file_bytes: u64,
    /// Random operations after creation: overwrite, append, truncate, unlink, rename, symlink,
    /// hard link, fallocate, punch hole, new file.
    pub ops: usize,
    /// fsync files (now and then during the run, and every file and directory at the end), so
    /// that the journal or log holds committed transactions.
    pub fsync: bool,
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        WorkloadSpec {
            seed: 1,
            files: 200,
            big_dir_entries: 2000,
            max_file_bytes: 4 << 20,
            ops: 500,
            fsync: true,
        }
    }
}

/// Counts of what [`run_workload`] did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct WorkloadStats {
    /// Regular files created (all kinds, including the large directory's entries).
    pub files_created: usize,
    /// Directories created.
    pub dirs_created: usize,
    /// Depth of the deepest directory chain.
    pub max_depth: usize,
    /// Files written whole in chunks (large files).
    pub large_files: usize,
    /// Files written at scattered offsets (sparse files).
    pub sparse_files: usize,
    /// fallocate calls (plain, KEEP_SIZE, punch hole, zero range).
    pub fallocates: usize,
    /// Bytes written with pwrite.
    pub bytes_written: u64,
    /// Overwrites inside a file.
    pub overwrites: usize,
    /// Appends.
    pub appends: usize,
    /// Truncates (shrink or grow).
    pub truncates: usize,
    /// Unlinks.
    pub unlinks: usize,
    /// Renames (files and one directory).
    pub renames: usize,
    /// Symbolic links (short and long targets).
    pub symlinks: usize,
    /// Hard links.
    pub hardlinks: usize,
    /// fsync calls.
    pub fsyncs: usize,
    /// Operations that hit ENOSPC (the file system was full) and were skipped.
    pub enospc: usize,
    /// Regular file names present at the end.
    pub files_at_end: usize,
}

/// The state of a run.
struct Run<'a> {
    root: &'a Path,
    rng: ChaCha8Rng,
    spec: &'a WorkloadSpec,
    st: WorkloadStats,
    /// Live regular files, relative to the root.
    files: Vec<PathBuf>,
    /// Directories (relative; "" is the root), excluding the large one.
    dirs: Vec<PathBuf>,
    names: u64,
}

fn is_enospc(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

impl Run<'_> {
    fn abs(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }

    fn fresh_name(&mut self, stem: &str) -> String {
        self.names += 1;
        // Vary name lengths: directory blocks fill differently.
        let pad = self.rng.random_range(0..24usize);
        format!("{stem}{:05}{}", self.names, "x".repeat(pad))
    }

    /// Turn an I/O result into Ok(false) on ENOSPC (counted), Ok(true) on success.
    fn ok(&mut self, r: std::io::Result<()>, what: &str, rel: &Path) -> Result<bool> {
        match r {
            Ok(()) => Ok(true),
            Err(e) if is_enospc(&e) => {
                self.st.enospc += 1;
                Ok(false)
            }
            Err(e) => Err(Error::io(self.abs(rel), std::io::Error::new(e.kind(), format!("{what}: {e}")))),
        }
    }

    fn random_bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        // Some files get runs of zeros or a repeated byte (compressible, realistic), most random.
        match self.rng.random_range(0..8u32) {
            0 => {}
            1 => v.fill(self.rng.random()),
            _ => self.rng.fill(&mut v[..]),
        }
        v
    }

    fn write_at(&mut self, f: &File, rel: &Path, off: u64, len: usize) -> Result<bool> {
        let data = self.random_bytes(len);
        let r = f.write_all_at(&data, off);
        let ok = self.ok(r, "pwrite", rel)?;
        if ok {
            self.st.bytes_written += len as u64;
        }
        Ok(ok)
    }

    fn maybe_fsync(&mut self, f: &File, rel: &Path, p: f64) -> Result<()> {
        if self.spec.fsync && self.rng.random_bool(p) {
            let r = f.sync_all();
            self.ok(r, "fsync", rel)?;
            self.st.fsyncs += 1;
        }
        Ok(())
    }

    fn create(&mut self, rel: &Path) -> Result<File> {
        let p = self.abs(rel);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&p)
            .map_err(|e| Error::io(&p, e))?;
        self.st.files_created += 1;
        Ok(f)
    }

    fn open(&self, rel: &Path) -> Result<File> {
        let p = self.abs(rel);
        OpenOptions::new().read(true).write(true).open(&p).map_err(|e| Error::io(&p, e))
    }

    fn mkdir(&mut self, rel: &Path) -> Result<()> {
        let p = self.abs(rel);
        std::fs::create_dir(&p).map_err(|e| Error::io(&p, e))?;
        self.st.dirs_created += 1;
        Ok(())
    }

    fn random_dir(&mut self) -> PathBuf {
        let i = self.rng.random_range(0..self.dirs.len());
        self.dirs[i].clone()
    }

    fn max(&self) -> u64 {
        self.spec.max_file_bytes.max(4096)
    }

    /// A small file: empty, tiny (fits inline data), or a few blocks.
    fn small_file(&mut self, rel: &Path) -> Result<()> {
        let f = self.create(rel)?;
        let len = match self.rng.random_range(0..4u32) {
            0 => 0,
            1 => self.rng.random_range(1..60usize),
            2 => self.rng.random_range(60..4096usize),
            _ => self.rng.random_range(4096..(32 << 10).min(self.max() as usize).max(4097)),
        };
        if len > 0 {
            self.write_at(&f, rel, 0, len)?;
        }
        self.maybe_fsync(&f, rel, 0.05)
    }

    /// A large file written sequentially in chunks, interleaved with writes to a second file so
    /// that allocations fragment.
    fn large_files(&mut self, a: &Path, b: &Path) -> Result<()> {
        let fa = self.create(a)?;
        let fb = self.create(b)?;
        self.st.large_files += 2;
        let max = self.max();
        let (sa, sb) = (self.rng.random_range(max / 4..=max), self.rng.random_range(max / 4..=max));
        let (mut oa, mut ob) = (0u64, 0u64);
        while oa < sa || ob < sb {
            for (f, rel, off, size) in [(&fa, a, &mut oa, sa), (&fb, b, &mut ob, sb)] {
                if *off < size {
                    let chunk = self.rng.random_range(4096..=(256u64 << 10)).min(size - *off) as usize;
                    if !self.write_at(f, rel, *off, chunk)? {
                        return Ok(());
                    }
                    *off += chunk as u64;
                    self.maybe_fsync(f, rel, 0.02)?;
                }
            }
        }
        Ok(())
    }

    /// A sparse file: pwrite of short runs at random offsets.
    fn sparse_file(&mut self, rel: &Path) -> Result<()> {
        let f = self.create(rel)?;
        self.st.sparse_files += 1;
        let max = self.max();
        for _ in 0..self.rng.random_range(1..24u32) {
            let off = self.rng.random_range(0..max);
            let len = self.rng.random_range(1..=(64u64 << 10)).min(max - off).max(1) as usize;
            if !self.write_at(&f, rel, off, len)? {
                break;
            }
        }
        self.maybe_fsync(&f, rel, 0.1)
    }

    /// A fallocated file: unwritten extents, some parts written (mixed written/unwritten), maybe
    /// KEEP_SIZE space past the end.
    fn fallocated_file(&mut self, rel: &Path) -> Result<()> {
        let f = self.create(rel)?;
        let max = self.max();
        let len = self.rng.random_range(4096..=max);
        let r = sys::fallocate(&f, 0, 0, len);
        self.st.fallocates += 1;
        if !self.ok(r, "fallocate", rel)? {
            return Ok(());
        }
        for _ in 0..self.rng.random_range(0..6u32) {
            let off = self.rng.random_range(0..len);
            let n = self.rng.random_range(1..=(32u64 << 10)).min(len - off).max(1) as usize;
            if !self.write_at(&f, rel, off, n)? {
                break;
            }
        }
        if self.rng.random_bool(0.5) {
            let extra = self.rng.random_range(4096..=(1u64 << 20));
            let r = sys::fallocate(&f, libc::FALLOC_FL_KEEP_SIZE, len, extra);
            self.st.fallocates += 1;
            self.ok(r, "fallocate KEEP_SIZE", rel)?;
        }
        self.maybe_fsync(&f, rel, 0.2)
    }

    fn pick_file(&mut self) -> Option<usize> {
        if self.files.is_empty() { None } else { Some(self.rng.random_range(0..self.files.len())) }
    }

    fn file_len(&self, rel: &Path) -> Result<u64> {
        let p = self.abs(rel);
        Ok(std::fs::symlink_metadata(&p).map_err(|e| Error::io(&p, e))?.len())
    }

    /// One random operation on the existing tree.
    fn op(&mut self) -> Result<()> {
        let Some(i) = self.pick_file() else {
            let d = self.random_dir();
            let rel = d.join(self.fresh_name("f"));
            self.small_file(&rel)?;
            self.files.push(rel);
            return Ok(());
        };
        let rel = self.files[i].clone();
        let max = self.max();
        match self.rng.random_range(0..100u32) {
            // overwrite inside the file
            0..=19 => {
                let f = self.open(&rel)?;
                let len = self.file_len(&rel)?;
                if len > 0 {
                    let off = self.rng.random_range(0..len);
                    let n = self.rng.random_range(1..=(64u64 << 10)).min(len - off).max(1) as usize;
                    self.write_at(&f, &rel, off, n)?;
                    self.st.overwrites += 1;
                }
                self.maybe_fsync(&f, &rel, 0.1)?;
            }
            // append
            20..=34 => {
                let f = self.open(&rel)?;
                let len = self.file_len(&rel)?;
                if len < max {
                    let n = self.rng.random_range(1..=(128u64 << 10)).min(max - len) as usize;
                    self.write_at(&f, &rel, len, n)?;
                    self.st.appends += 1;
                }
                self.maybe_fsync(&f, &rel, 0.1)?;
            }
            // truncate: shrink mostly, grow sometimes
            35..=44 => {
                let f = self.open(&rel)?;
                let len = self.file_len(&rel)?;
                let new = if self.rng.random_bool(0.7) {
                    if len == 0 { 0 } else { self.rng.random_range(0..len) }
                } else {
                    self.rng.random_range(len..=max.max(len))
                };
                let r = f.set_len(new);
                self.ok(r, "truncate", &rel)?;
                self.st.truncates += 1;
                self.maybe_fsync(&f, &rel, 0.1)?;
            }
            // unlink
            45..=54 => {
                let p = self.abs(&rel);
                std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
                self.files.swap_remove(i);
                self.st.unlinks += 1;
            }
            // rename to another directory under a fresh name
            55..=64 => {
                let d = self.random_dir();
                let name = self.fresh_name("r");
                let to = d.join(name);
                let (pf, pt) = (self.abs(&rel), self.abs(&to));
                std::fs::rename(&pf, &pt).map_err(|e| Error::io(&pf, e))?;
                self.files[i] = to;
                self.st.renames += 1;
            }
            // symlink, short (fast) or long (slow) target
            65..=71 => {
                let d = self.random_dir();
                let name = self.fresh_name("s");
                let target = if self.rng.random_bool(0.5) {
                    format!("/{}", rel.display())
                } else {
                    format!("{}/{}", "../".repeat(self.rng.random_range(4..40usize)), rel.display())
                };
                let p = self.abs(&d.join(name));
                let r = std::os::unix::fs::symlink(&target, &p);
                if self.ok(r, "symlink", &d)? {
                    self.st.symlinks += 1;
                }
            }
            // hard link
            72..=77 => {
                let d = self.random_dir();
                let name = self.fresh_name("h");
                let to = d.join(name);
                let (pf, pt) = (self.abs(&rel), self.abs(&to));
                let r = std::fs::hard_link(&pf, &pt);
                if self.ok(r, "link", &rel)? {
                    self.files.push(to);
                    self.st.hardlinks += 1;
                }
            }
            // fallocate: more space, punch a hole, or zero a range
            78..=87 => {
                let f = self.open(&rel)?;
                let len = self.file_len(&rel)?;
                let off = self.rng.random_range(0..max);
                let n = self.rng.random_range(1..=(256u64 << 10)).min(max - off).max(1);
                let mode = match self.rng.random_range(0..4u32) {
                    0 => 0,
                    1 => libc::FALLOC_FL_KEEP_SIZE,
                    2 if len > 0 => libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                    _ => libc::FALLOC_FL_ZERO_RANGE,
                };
                let r = sys::fallocate(&f, mode, off, n);
                match r {
                    // Some file systems refuse a mode; that is not an error of the workload.
                    Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {}
                    r => {
                        self.ok(r, "fallocate", &rel)?;
                        self.st.fallocates += 1;
                    }
                }
                self.maybe_fsync(&f, &rel, 0.1)?;
            }
            // a new file of any kind
            _ => {
                let d = self.random_dir();
                let name = self.fresh_name("n");
                let to = d.join(name);
                match self.rng.random_range(0..3u32) {
                    0 => self.small_file(&to)?,
                    1 => self.sparse_file(&to)?,
                    _ => self.fallocated_file(&to)?,
                }
                self.files.push(to);
            }
        }
        Ok(())
    }
}

/// Run a seeded workload under `root` (a mounted file system's root, or any folder):
/// a deep directory chain, a few ordinary directories, one directory `/big` with
/// `spec.big_dir_entries` entries, `spec.files` files (small ones, large ones written in chunks,
/// sparse ones written at scattered offsets, fallocated ones with unwritten ranges and
/// KEEP_SIZE space), then `spec.ops` random operations (overwrite, append, truncate, unlink,
/// rename, symlinks, hard links, fallocate/punch/zero range, new files), then one directory
/// rename; with `spec.fsync`, fsyncs now and then and every file and directory at the end.
/// ENOSPC skips the operation (counted in [`WorkloadStats::enospc`]); other errors stop the run.
pub fn run_workload(root: &Path, spec: &WorkloadSpec) -> Result<WorkloadStats> {
    let mut r = Run {
        root,
        rng: ChaCha8Rng::seed_from_u64(spec.seed),
        spec,
        st: WorkloadStats::default(),
        files: Vec::new(),
        dirs: vec![PathBuf::new()],
        names: 0,
    };
    // Ordinary directories, some nested.
    for i in 0..6 {
        let d = PathBuf::from(format!("d{i}"));
        r.mkdir(&d)?;
        r.dirs.push(d.clone());
        if i % 2 == 0 {
            let s = d.join(format!("sub{i}"));
            r.mkdir(&s)?;
            r.dirs.push(s);
        }
    }
    // A deep chain.
    let depth = r.rng.random_range(16..40usize);
    let mut chain = PathBuf::from("deep");
    r.mkdir(&chain)?;
    for lvl in 0..depth {
        chain = chain.join(format!("level{lvl}"));
        r.mkdir(&chain)?;
        if lvl % 4 == 3 {
            r.dirs.push(chain.clone());
        }
    }
    r.st.max_depth = depth + 1;
    // The large directory: many small entries.
    let big = PathBuf::from("big");
    r.mkdir(&big)?;
    for i in 0..spec.big_dir_entries {
        let pad = r.rng.random_range(0..40usize);
        let rel = big.join(format!("entry{i:06}_{}", "n".repeat(pad)));
        let f = r.create(&rel)?;
        if r.rng.random_bool(0.3) {
            let n = r.rng.random_range(1..200usize);
            r.write_at(&f, &rel, 0, n)?;
        }
        r.files.push(rel);
    }
    // The files.
    let mut i = 0;
    while i < spec.files {
        let d = r.random_dir();
        let kind = r.rng.random_range(0..100u32);
        let rel = d.join(r.fresh_name("f"));
        match kind {
            0..=54 => r.small_file(&rel)?,
            55..=69 if i + 1 < spec.files => {
                let d2 = r.random_dir();
                let rel2 = d2.join(r.fresh_name("L"));
                r.large_files(&rel, &rel2)?;
                r.files.push(rel2);
                i += 1;
            }
            55..=84 => r.sparse_file(&rel)?,
            _ => r.fallocated_file(&rel)?,
        }
        r.files.push(rel);
        i += 1;
    }
    // Random operations.
    for _ in 0..spec.ops {
        r.op()?;
    }
    // Rename one ordinary directory (with everything under it).
    {
        let from = PathBuf::from("d1");
        let to = PathBuf::from("d1-renamed");
        let (pf, pt) = (r.abs(&from), r.abs(&to));
        std::fs::rename(&pf, &pt).map_err(|e| Error::io(&pf, e))?;
        r.st.renames += 1;
        for p in r.files.iter_mut().chain(r.dirs.iter_mut()) {
            if let Ok(rest) = p.strip_prefix(&from) {
                *p = to.join(rest);
            }
        }
    }
    if spec.fsync {
        let files = r.files.clone();
        for rel in &files {
            let f = r.open(rel)?;
            let res = f.sync_all();
            r.ok(res, "fsync", rel)?;
            r.st.fsyncs += 1;
        }
        let mut dirs = r.dirs.clone();
        dirs.push(big);
        dirs.push(PathBuf::from("deep"));
        for rel in &dirs {
            let p = r.abs(rel);
            let f = File::open(&p).map_err(|e| Error::io(&p, e))?;
            let res = f.sync_all();
            r.ok(res, "fsync dir", rel)?;
            r.st.fsyncs += 1;
        }
    }
    r.st.files_at_end = r.files.len();
    Ok(r.st)
}
