//! The corruption campaign: thousands of corrupted variants of kernel-made ext4 and XFS images
//! (clean and dirty), each run through the built `daxray` binary (`info`, `manifest --hash`,
//! `journal`, `check`) as a subprocess with a 10 s timeout.
//!
//! Asserted for every run: no panic (exit 101) and no signal, no timeout, exit code 0/1/2, peak
//! memory (the child's own `ru_maxrss`) under 512 MiB, a `corrupt ...` error names its block and
//! byte offset, and the variant's bytes are unchanged afterwards.
//!
//! Images: made at test time with the real mkfs, loop-mounted, filled by the seeded oracle
//! workload; the dirty ones are sparse copies taken while mounted (journal/log committed, not
//! checkpointed); the clean ones are the same files after unmount. Metadata blocks are found by
//! the peer tools (`e2image -r`, `xfs_metadump` + `xfs_mdrestore`: the data ranges of their
//! metadata-only images), the ext4 journal with `debugfs`, the XFS log and geometry with `xfs_db`.
//!
//! Mutations (ChaCha8, seed `DAXRAY_CAMPAIGN_SEED`, default 1): random bytes and bit flips in
//! metadata blocks, whole metadata blocks zeroed / 0xff / random, truncation, enormous and
//! boundary values in superblock, group-descriptor, inode, extent-header, journal-superblock,
//! XFS superblock, dinode and log-record fields, extent and btree pointer cycles (ext4 index
//! pointing at itself; XFS bmbt child and sibling pointers at themselves, CRCs recomputed so the
//! reader follows them), a directory entry pointing back at the root, and jbd2 journals whose
//! transactions are copied around the whole ring with consecutive sequences (a journal that
//! wraps), its start near the end, sequence numbers about to overflow.
//!
//! `DAXRAY_CAMPAIGN_VARIANTS` sets the variants per base image (default 340; 6 bases: 2040 variants, 8160 runs).
//! `DAXRAY_CAMPAIGN_KEEP=DIR` keeps failing variants there.

mod common;

use daxray::oracle::{self, WorkloadSpec};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Per-run limits.
const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RSS_KIB: u64 = 512 * 1024;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Ext4,
    Xfs,
}

/// Where things are in a base image (bytes from the start of the file).
#[derive(Debug, Default, Clone)]
struct Layout {
    block_size: u64,
    /// Metadata blocks (in `block_size` units) as the peer tool's metadata image shows them.
    meta: Vec<u64>,
    /// ext4: byte offset and length of the journal (journal superblock first).
    journal: Option<(u64, u64)>,
    /// XFS: byte offset and length of the internal log.
    log: Option<(u64, u64)>,
    /// XFS: geometry for pointer arithmetic.
    agblocks: u64,
    agblklog: u32,
    inode_size: u64,
    ext4_csum: bool,
}

struct Base {
    name: String,
    kind: Kind,
    path: PathBuf,
    claims: PathBuf,
    layout: Layout,
    hash: String,
}

/// One corruption: byte writes, and/or a truncation.
#[derive(Debug, Clone, Default)]
struct Variant {
    what: String,
    writes: Vec<(u64, Vec<u8>)>,
    truncate: Option<u64>,
}

fn ready() -> bool {
    let tools = [
        "mkfs.ext4",
        "mkfs.xfs",
        "e2image",
        "debugfs",
        "xfs_db",
        "xfs_metadump",
        "xfs_mdrestore",
        "losetup",
        "mount",
        "umount",
    ];
    common::ready(&tools, true)
}

/// sha256 over the file's length and its non-zero 4 KiB pieces (offset and bytes), read from its
/// data ranges only: the same as hashing every byte, at a fraction of the cost.
fn hash_sparse(path: &Path) -> String {
    let f = File::open(path).expect("open for hashing");
    let len = f.metadata().expect("stat").len();
    let mut h = Sha256::new();
    h.update(len.to_le_bytes());
    let mut off = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    while off < len {
        let Some(d) = daxray::sys::seek_data(&f, off).expect("SEEK_DATA") else { break };
        if d >= len {
            break;
        }
        let e = daxray::sys::seek_hole(&f, d).expect("SEEK_HOLE").unwrap_or(len).min(len);
        let mut p = d;
        while p < e {
            let n = ((e - p) as usize).min(buf.len());
            let got = f.read_at(&mut buf[..n], p).expect("read");
            assert!(got > 0, "short read hashing {}", path.display());
            // Each non-zero 4 KiB piece with its offset: independent of how the file system
            // happens to allocate the file (extents merge, delayed allocation lands).
            for (k, piece) in buf[..got].chunks(4096).enumerate() {
                if piece.iter().any(|&b| b != 0) {
                    h.update((p + k as u64 * 4096).to_le_bytes());
                    h.update(piece);
                }
            }
            p += got as u64;
        }
        off = e;
    }
    hex::encode(h.finalize())
}

/// Data ranges of a (sparse) file, in `unit`-byte blocks.
fn data_blocks(path: &Path, unit: u64) -> Vec<u64> {
    let f = File::open(path).expect("open metadata image");
    let len = f.metadata().expect("stat").len();
    let mut out = Vec::new();
    let mut off = 0u64;
    let zero = vec![0u8; unit as usize];
    let mut buf = vec![0u8; unit as usize];
    while off < len {
        let Some(d) = daxray::sys::seek_data(&f, off).expect("SEEK_DATA") else { break };
        if d >= len {
            break;
        }
        let e = daxray::sys::seek_hole(&f, d).expect("SEEK_HOLE").unwrap_or(len).min(len);
        let mut b = d / unit;
        while b * unit < e {
            // Skip blocks that are allocated but zero (mkfs writes zeros to the log, for one).
            if f.read_at(&mut buf, b * unit).unwrap_or(0) > 0 && buf != zero {
                out.push(b);
            }
            b += 1;
        }
        off = e;
    }
    out
}

fn run_ok(prog: &str, args: &[&str]) -> String {
    match oracle::run(prog, args, Duration::from_secs(120)) {
        Ok(o) => o.stdout,
        Err(e) => panic!("{e}"),
    }
}

/// The first `claims` regular files under `root`: a claim for their first bytes, read through the
/// kernel (an independent source of truth for `check`).
fn write_claims(root: &Path, out: &Path, max: usize) -> usize {
    let mut lines = String::new();
    let mut n = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        let mut ents: Vec<_> = rd.flatten().collect();
        ents.sort_by_key(|e| e.file_name());
        for e in ents {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() && n < max {
                let data = std::fs::read(e.path()).unwrap_or_default();
                if data.is_empty() {
                    continue;
                }
                let len = data.len().min(4096);
                let rel = e.path().strip_prefix(root).expect("under root").to_string_lossy().into_owned();
                lines += &format!(
                    "{{\"path\":\"/{rel}\",\"offset\":0,\"len\":{len},\"sha256\":\"{}\"}}\n",
                    hex::encode(Sha256::digest(&data[..len]))
                );
                n += 1;
            }
        }
    }
    std::fs::write(out, lines).expect("write claims");
    n
}

/// Make a kernel-made image; returns (clean, dirty) bases.
fn make_pair(dir: &Path, name: &str, kind: Kind, size: u64, mkfs: &[&str], seed: u64) -> Vec<Base> {
    let img = dir.join(format!("{name}.img"));
    oracle::make_image(&img, size, mkfs).unwrap_or_else(|e| panic!("{name}: mkfs: {e}"));
    let fstype = if kind == Kind::Ext4 { "ext4" } else { "xfs" };
    let spec = WorkloadSpec {
        seed,
        files: 40,
        big_dir_entries: 400,
        max_file_bytes: 512 << 10,
        ops: 120,
        fsync: true,
    };
    let claims = dir.join(format!("{name}.claims"));
    // A crash copy: committed, not checkpointed.
    let dirty = dir.join(format!("{name}-dirty.img"));
    oracle::crash_copy(&img, fstype, "", &dirty, |root| {
        oracle::run_workload(root, &spec)?;
        let nclaims = write_claims(root, &claims, 24);
        assert!(nclaims > 0, "{name}: the workload left no file to claim");
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{name}: workload and crash copy: {e}"));
    let mut out = Vec::new();
    for (suffix, path) in [("clean", img), ("dirty", dirty)] {
        let layout = match kind {
            Kind::Ext4 => ext4_layout(dir, &path),
            Kind::Xfs => xfs_layout(dir, &path),
        };
        assert!(
            layout.meta.len() > 8,
            "{name}-{suffix}: the peer tool found only {} metadata blocks",
            layout.meta.len()
        );
        let hash = hash_sparse(&path);
        out.push(Base { name: format!("{name}-{suffix}"), kind, path, claims: claims.clone(), layout, hash });
    }
    out
}

fn field_u64(text: &str, key: &str) -> u64 {
    for line in text.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix(key) {
            let v = rest.trim_start_matches([' ', ':', '=']).split_whitespace().next().unwrap_or("");
            if let Ok(n) = v.parse() {
                return n;
            }
        }
    }
    panic!("no {key} in:\n{text}");
}

fn ext4_layout(dir: &Path, img: &Path) -> Layout {
    let p = img.to_str().expect("utf-8 path");
    let sb = run_ok("dumpe2fs", &["-h", p]);
    let bs = field_u64(&sb, "Block size:");
    let ext4_csum = sb.lines().any(|l| l.starts_with("Filesystem features:") && l.contains("metadata_csum"));
    let meta_img = dir.join("e2image.tmp");
    run_ok("e2image", &["-r", p, meta_img.to_str().expect("utf-8")]);
    let meta = data_blocks(&meta_img, bs);
    let _ = std::fs::remove_file(&meta_img);
    // The journal's first block and its length, from debugfs.
    let first = run_ok("debugfs", &["-c", "-R", "bmap <8> 0", p]);
    let first: u64 = first.trim().parse().unwrap_or_else(|_| panic!("debugfs bmap <8> 0 printed {first:?}"));
    let st = run_ok("debugfs", &["-c", "-R", "stat <8>", p]);
    let size = st
        .split_whitespace()
        .skip_while(|w| *w != "Size:")
        .nth(1)
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no journal size in debugfs stat <8>:\n{st}"));
    Layout { block_size: bs, meta, journal: Some((first * bs, size)), ext4_csum, ..Default::default() }
}

fn xfs_layout(dir: &Path, img: &Path) -> Layout {
    let p = img.to_str().expect("utf-8 path");
    let out = run_ok(
        "xfs_db",
        &["-r", "-c", "sb 0", "-c", "p blocksize agblocks agblklog logstart logblocks inodesize", p],
    );
    let bs = field_u64(&out, "blocksize");
    let agblocks = field_u64(&out, "agblocks");
    let agblklog = field_u64(&out, "agblklog") as u32;
    let logstart = field_u64(&out, "logstart");
    let logblocks = field_u64(&out, "logblocks");
    let inode_size = field_u64(&out, "inodesize");
    let dump = dir.join("metadump.tmp");
    let meta_img = dir.join("mdrestore.tmp");
    // -a: whole blocks; -o: names as they are; -g quiet progress off. A dirty log is copied.
    run_ok("xfs_metadump", &["-a", "-o", p, dump.to_str().expect("utf-8")]);
    run_ok("xfs_mdrestore", &[dump.to_str().expect("utf-8"), meta_img.to_str().expect("utf-8")]);
    let meta = data_blocks(&meta_img, bs);
    let _ = std::fs::remove_file(&dump);
    let _ = std::fs::remove_file(&meta_img);
    let log_byte = ((logstart >> agblklog) * agblocks + (logstart & ((1 << agblklog) - 1))) * bs;
    Layout {
        block_size: bs,
        meta,
        log: Some((log_byte, logblocks * bs)),
        agblocks,
        agblklog,
        inode_size,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations

struct Gen<'a> {
    rng: ChaCha8Rng,
    base: &'a Base,
    img: File,
    len: u64,
}

fn le(v: u64, w: usize) -> Vec<u8> {
    v.to_le_bytes()[..w].to_vec()
}
fn be(v: u64, w: usize) -> Vec<u8> {
    v.to_be_bytes()[8 - w..].to_vec()
}

impl Gen<'_> {
    fn bs(&self) -> u64 {
        self.base.layout.block_size
    }
    /// Bytes of the base image (fewer at its end); the image is never held whole in memory, so
    /// that this process's peak RSS (which a child inherits in `ru_maxrss`) stays small.
    fn read(&self, off: u64, len: usize) -> Vec<u8> {
        let n = self.len.saturating_sub(off).min(len as u64) as usize;
        let mut v = vec![0u8; n];
        self.img.read_exact_at(&mut v, off).expect("read base image");
        v
    }
    fn meta_block(&mut self) -> u64 {
        let m = &self.base.layout.meta;
        m[self.rng.random_range(0..m.len())]
    }
    /// Interesting values for a field of `w` bytes.
    fn value(&mut self, w: usize, orig: u64) -> u64 {
        let max = if w == 8 { u64::MAX } else { (1u64 << (8 * w)) - 1 };
        match self.rng.random_range(0..10) {
            0 => 0,
            1 => 1,
            2 => max,
            3 => max >> 1,
            4 => max / 2 + 1,
            5 => orig.wrapping_add(1) & max,
            6 => orig.wrapping_sub(1) & max,
            7 => orig.wrapping_mul(1000) & max,
            _ => self.rng.random::<u64>() & max,
        }
    }
    fn field(&mut self, off: u64, w: usize, big: bool) -> (u64, Vec<u8>) {
        let cur = self.read(off, w);
        let mut b = [0u8; 8];
        let orig = if big {
            b[8 - cur.len()..].copy_from_slice(&cur);
            u64::from_be_bytes(b)
        } else {
            b[..cur.len()].copy_from_slice(&cur);
            u64::from_le_bytes(b)
        };
        let v = self.value(w, orig);
        (off, if big { be(v, w) } else { le(v, w) })
    }

    fn random_bytes(&mut self) -> Variant {
        let b = self.meta_block();
        let bs = self.bs();
        let mut writes = Vec::new();
        let n = self.rng.random_range(1..=24);
        if self.rng.random_bool(0.5) {
            for _ in 0..n {
                writes.push((b * bs + self.rng.random_range(0..bs), vec![self.rng.random()]));
            }
        } else {
            let len = self.rng.random_range(2..=64u64);
            let at = self.rng.random_range(0..bs - len);
            let mut v = vec![0u8; len as usize];
            self.rng.fill_bytes(&mut v);
            writes.push((b * bs + at, v));
        }
        Variant { what: format!("random bytes in block {b}"), writes, truncate: None }
    }

    fn bit_flips(&mut self) -> Variant {
        let b = self.meta_block();
        let bs = self.bs();
        let n = self.rng.random_range(1..=8);
        let mut writes = Vec::new();
        for _ in 0..n {
            let off = b * bs + self.rng.random_range(0..bs);
            let cur = self.read(off, 1).first().copied().unwrap_or(0);
            writes.push((off, vec![cur ^ (1 << self.rng.random_range(0..8))]));
        }
        Variant { what: format!("{n} bit flips in block {b}"), writes, truncate: None }
    }

    fn whole_block(&mut self) -> Variant {
        let b = self.meta_block();
        let bs = self.bs() as usize;
        let (what, v) = match self.rng.random_range(0..3) {
            0 => ("zeroed", vec![0u8; bs]),
            1 => ("0xff", vec![0xffu8; bs]),
            _ => {
                let mut v = vec![0u8; bs];
                self.rng.fill_bytes(&mut v);
                ("random", v)
            }
        };
        Variant { what: format!("block {b} {what}"), writes: vec![(b * bs as u64, v)], truncate: None }
    }

    fn truncation(&mut self) -> Variant {
        let len = self.len;
        let to = match self.rng.random_range(0..4) {
            0 => self.rng.random_range(0..8192),
            1 => self.meta_block() * self.bs() + self.rng.random_range(0..self.bs()),
            2 => self.rng.random_range(0..len) & !511,
            _ => len - self.rng.random_range(1..=4 * self.bs()),
        };
        Variant { what: format!("truncated to {to} bytes"), writes: vec![], truncate: Some(to) }
    }

    fn mutate(&mut self) -> Variant {
        let r = self.rng.random_range(0..100);
        let mut v = match (self.base.kind, r) {
            (_, 0..=19) => self.random_bytes(),
            (_, 20..=34) => self.bit_flips(),
            (_, 35..=41) => self.whole_block(),
            (_, 42..=47) => self.truncation(),
            (Kind::Ext4, _) => self.ext4_structured(),
            (Kind::Xfs, _) => self.xfs_structured(),
        };
        // Now and then, two corruptions at once.
        if self.rng.random_bool(0.1) && v.truncate.is_none() {
            let w = self.random_bytes();
            v.what = format!("{}; {}", v.what, w.what);
            v.writes.extend(w.writes);
        }
        v
    }

    // ---- ext4 ----

    fn ext4_structured(&mut self) -> Variant {
        match self.rng.random_range(0..8) {
            0 | 1 => self.ext4_sb_field(),
            2 => self.ext4_gd_field(),
            3 => self.ext4_extent_games(),
            4 => self.ext4_dir_loop(),
            5 => self.jbd2_sb_field(),
            6 => self.jbd2_wrap(),
            _ => self.jbd2_block_field(),
        }
    }

    fn ext4_sb_field(&mut self) -> Variant {
        // (offset in the superblock, width): counts, sizes, geometry, feature words.
        const F: &[(u64, usize)] = &[
            (0x00, 4),  // s_inodes_count
            (0x04, 4),  // s_blocks_count_lo
            (0x14, 4),  // s_first_data_block
            (0x18, 4),  // s_log_block_size
            (0x1C, 4),  // s_log_cluster_size
            (0x20, 4),  // s_blocks_per_group
            (0x24, 4),  // s_clusters_per_group
            (0x28, 4),  // s_inodes_per_group
            (0x54, 4),  // s_first_ino
            (0x58, 2),  // s_inode_size
            (0x5C, 4),  // s_feature_compat
            (0x60, 4),  // s_feature_incompat
            (0x64, 4),  // s_feature_ro_compat
            (0xCE, 2),  // s_reserved_gdt_blocks
            (0xE0, 4),  // s_journal_inum
            (0xFE, 2),  // s_desc_size
            (0x104, 4), // s_first_meta_bg
            (0x150, 4), // s_blocks_count_hi
            (0x174, 1), // s_log_groups_per_flex
        ];
        let (o, w) = F[self.rng.random_range(0..F.len())];
        let (off, bytes) = self.field(1024 + o, w, false);
        Variant {
            what: format!("ext4 superblock field +{o:#x} = {bytes:02x?}"),
            writes: vec![(off, bytes)],
            truncate: None,
        }
    }

    fn ext4_gd_field(&mut self) -> Variant {
        let bs = self.bs();
        let gdt = if bs == 1024 { 2048 } else { bs };
        let desc = {
            let incompat = u32::from_le_bytes(self.read(1024 + 0x60, 4).try_into().unwrap_or([0; 4]));
            let ds = u16::from_le_bytes(self.read(1024 + 0xFE, 2).try_into().unwrap_or([0; 2]));
            if incompat & 0x80 != 0 && ds >= 64 { u64::from(ds) } else { 32 }
        };
        let g = self.rng.random_range(0..4u64);
        // bg_block_bitmap, bg_inode_bitmap, bg_inode_table, free counts, flags, itable_unused.
        const F: &[(u64, usize)] = &[(0, 4), (4, 4), (8, 4), (12, 2), (14, 2), (18, 2), (28, 2), (0x28, 4)];
        let (o, w) = F[self.rng.random_range(0..F.len())];
        let (off, bytes) = self.field(gdt + g * desc + o, w, false);
        Variant {
            what: format!("ext4 group {g} descriptor +{o:#x} = {bytes:02x?}"),
            writes: vec![(off, bytes)],
            truncate: None,
        }
    }

    /// Extent headers in metadata blocks and in inode tables (i_block at +0x28 of an inode).
    fn extent_headers(&self) -> Vec<(u64, bool)> {
        let bs = self.bs();
        let mut out = Vec::new();
        for &b in &self.base.layout.meta {
            let blk = self.read(b * bs, bs as usize);
            if blk.len() >= 12 && blk[0] == 0x0A && blk[1] == 0xF3 {
                out.push((b * bs, true));
            }
            // Inodes: scan at 256-byte steps for an extent header at +0x28.
            let mut i = 0usize;
            while i + 0x28 + 12 <= blk.len() {
                if blk[i + 0x28] == 0x0A && blk[i + 0x29] == 0xF3 {
                    out.push((b * bs + i as u64 + 0x28, false));
                }
                i += 256;
            }
        }
        out
    }

    fn ext4_extent_games(&mut self) -> Variant {
        let hs = self.extent_headers();
        if hs.is_empty() {
            return self.random_bytes();
        }
        let (at, is_block) = hs[self.rng.random_range(0..hs.len())];
        let depth = u16::from_le_bytes([self.read(at + 6, 1)[0], self.read(at + 7, 1)[0]]);
        let entries = u16::from_le_bytes([self.read(at + 2, 1)[0], self.read(at + 3, 1)[0]]);
        let choice = self.rng.random_range(0..5);
        if choice == 0 && depth > 0 && is_block {
            // Index entry 0 (ei_leaf_lo at +4 of the entry, entry at +12) -> this very block.
            let own = at / self.bs();
            return Variant {
                what: format!("ext4 extent index at byte {at} points at itself (block {own})"),
                writes: vec![(at + 12 + 4, le(own, 4)), (at + 12 + 8, le(own >> 32, 2))],
                truncate: None,
            };
        }
        if choice == 1 && depth > 0 {
            // Every index entry -> the same child (a DAG the walker must not blow up on).
            let first = self.read(at + 12 + 4, 6).to_vec();
            let mut writes = Vec::new();
            for e in 1..u64::from(entries.min(340)) {
                writes.push((at + 12 + e * 12 + 4, first.clone()));
            }
            if !writes.is_empty() {
                return Variant {
                    what: format!("ext4 extent index at byte {at}: all entries share one child"),
                    writes,
                    truncate: None,
                };
            }
        }
        // Header fields: eh_entries (+2), eh_max (+4), eh_depth (+6); or an extent's length/start.
        const F: &[(u64, usize)] = &[(2, 2), (4, 2), (6, 2), (12, 4), (16, 2), (18, 2), (20, 4)];
        let (o, w) = F[self.rng.random_range(0..F.len())];
        let (off, bytes) = self.field(at + o, w, false);
        Variant {
            what: format!("ext4 extent header at byte {at} +{o} = {bytes:02x?}"),
            writes: vec![(off, bytes)],
            truncate: None,
        }
    }

    /// A directory's third entry renamed into a link back to the root directory (inode 2).
    fn ext4_dir_loop(&mut self) -> Variant {
        let bs = self.bs();
        let mut cands = Vec::new();
        for &b in &self.base.layout.meta {
            let blk = self.read(b * bs, 24);
            // "." entry: rec_len 12, name_len 1, type 2, '.'; then ".." with name_len 2.
            if blk.len() == 24 && blk[4..8] == [12, 0, 1, 2] && blk[8] == b'.' && blk[16..20] != [0, 0, 0, 0]
            {
                let dotdot_len = u16::from_le_bytes([blk[16], blk[17]]);
                if u64::from(dotdot_len) + 12 < bs {
                    cands.push(b * bs + 12 + u64::from(dotdot_len));
                }
            }
        }
        if cands.is_empty() {
            return self.random_bytes();
        }
        let at = cands[self.rng.random_range(0..cands.len())];
        Variant {
            what: format!("ext4 directory entry at byte {at} -> root directory"),
            writes: vec![(at, le(2, 4)), (at + 7, vec![2])],
            truncate: None,
        }
    }

    fn journal(&self) -> (u64, u64) {
        self.base.layout.journal.unwrap_or((0, 0))
    }

    fn jbd2_sb_field(&mut self) -> Variant {
        let (j, _) = self.journal();
        // s_blocksize, s_maxlen, s_first, s_sequence, s_start, s_errno, features, nr_users,
        // s_num_fc_blks, s_head.
        const F: &[(u64, usize)] = &[
            (0x0C, 4),
            (0x10, 4),
            (0x14, 4),
            (0x18, 4),
            (0x1C, 4),
            (0x20, 4),
            (0x24, 4),
            (0x28, 4),
            (0x40, 4),
            (0x54, 4),
            (0x58, 4),
        ];
        let mut writes = Vec::new();
        let mut what = Vec::new();
        for _ in 0..self.rng.random_range(1..=3) {
            let (o, w) = F[self.rng.random_range(0..F.len())];
            let (off, bytes) = self.field(j + o, w, true);
            what.push(format!("+{o:#x}={bytes:02x?}"));
            writes.push((off, bytes));
        }
        Variant { what: format!("jbd2 superblock {}", what.join(" ")), writes, truncate: None }
    }

    /// jbd2 blocks (descriptor 1, commit 2, revoke 5): (byte offset, type, sequence).
    fn jbd2_blocks(&self) -> Vec<(u64, u32, u32)> {
        let (j, len) = self.journal();
        let bs = self.bs();
        let mut out = Vec::new();
        let mut o = j + bs;
        while o + 12 <= j + len {
            let h = self.read(o, 12);
            if h.len() == 12 && h[..4] == [0xC0, 0x3B, 0x39, 0x98] {
                let t = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                let s = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
                out.push((o, t, s));
            }
            o += bs;
        }
        out
    }

    fn jbd2_block_field(&mut self) -> Variant {
        let blocks = self.jbd2_blocks();
        if blocks.is_empty() {
            return self.jbd2_sb_field();
        }
        let (at, t, _) = blocks[self.rng.random_range(0..blocks.len())];
        let bs = self.bs();
        let (off, w) = match (t, self.rng.random_range(0..4)) {
            (_, 0) => (at + 4, 4),                                     // block type
            (_, 1) => (at + 8, 4),                                     // sequence
            (5, _) => (at + 12, 4),                                    // revoke r_count
            (1, _) => (at + 12 + self.rng.random_range(0..16) * 4, 4), // tag fields
            _ => (at + self.rng.random_range(12..bs - 4), 4),
        };
        let (o, bytes) = self.field(off, w, true);
        Variant {
            what: format!("jbd2 block type {t} at byte {at}: +{} = {bytes:02x?}", off - at),
            writes: vec![(o, bytes)],
            truncate: None,
        }
    }

    /// A journal that wraps: the transaction that holds the most blocks is copied around the
    /// whole ring with consecutive sequence numbers (optionally about to overflow), and the
    /// superblock starts the log at one of them (often near the end, so the scan wraps).
    fn jbd2_wrap(&mut self) -> Variant {
        let (j, len) = self.journal();
        let bs = self.bs();
        let blocks = self.jbd2_blocks();
        // A descriptor followed (later) by the commit of the same sequence.
        let mut best: Option<(u64, u64, u32)> = None;
        for &(o, t, s) in &blocks {
            if t == 1
                && let Some(&(c, _, _)) = blocks.iter().find(|&&(c, ct, cs)| c > o && ct == 2 && cs == s)
                && best.is_none_or(|(bo, bc, _)| c - o > bc - bo)
                && (c - o) / bs < 64
            {
                best = Some((o, c, s));
            }
        }
        let Some((d, c, _)) = best else { return self.jbd2_sb_field() };
        let txn = self.read(d, (c - d + bs) as usize).to_vec();
        let txn_blocks = txn.len() as u64 / bs;
        let ring = len / bs; // includes the journal superblock at 0
        let first =
            u32::from_be_bytes(self.read(j + 0x14, 4).try_into().unwrap_or([0, 0, 0, 1])).max(1) as u64;
        let copies = ((ring - first) / txn_blocks).clamp(1, 4096);
        let seq0: u32 = if self.rng.random_bool(0.5) {
            u32::MAX - self.rng.random_range(0..8)
        } else {
            self.rng.random()
        };
        let mut writes = Vec::new();
        for k in 0..copies {
            let pos = first + k * txn_blocks;
            let seq = seq0.wrapping_add(k as u32);
            let mut t = txn.clone();
            // Rewrite h_sequence in every jbd2 header block of the copy.
            for b in 0..txn_blocks as usize {
                let h = &mut t[b * bs as usize..];
                if h[..4] == [0xC0, 0x3B, 0x39, 0x98] {
                    h[8..12].copy_from_slice(&seq.to_be_bytes());
                }
            }
            writes.push((j + pos * bs, t));
        }
        let start_k = match self.rng.random_range(0..3) {
            0 => 0,
            1 => copies - 1,
            _ => self.rng.random_range(0..copies),
        };
        let start = first + start_k * txn_blocks;
        writes.push((j + 0x18, (seq0.wrapping_add(start_k as u32)).to_be_bytes().to_vec()));
        writes.push((j + 0x1C, (start as u32).to_be_bytes().to_vec()));
        // The kernel needs the needs_recovery flag to replay at all.
        let incompat = self.read(1024 + 0x60, 4).to_vec();
        if incompat.len() == 4 {
            let v = u32::from_le_bytes(incompat.try_into().unwrap_or([0; 4])) | 0x4;
            writes.push((1024 + 0x60, v.to_le_bytes().to_vec()));
        }
        Variant {
            what: format!(
                "jbd2 ring filled with {copies} copies of a {txn_blocks}-block transaction from seq {seq0:#x}, start at copy {start_k}"
            ),
            writes,
            truncate: None,
        }
    }

    // ---- XFS ----

    fn fsbno_of_daddr(&self, daddr: u64) -> u64 {
        let l = &self.base.layout;
        let byte = daddr * 512;
        let agbytes = l.agblocks * l.block_size;
        let agno = byte / agbytes;
        let agbno = (byte % agbytes) / l.block_size;
        (agno << l.agblklog) | agbno
    }

    /// Recompute the v5 CRC of the structure starting at `at` (after the writes in `v`).
    fn xfs_recrc(&self, v: &mut Variant, at: u64) {
        let mut img_bytes = self.read(at, self.bs() as usize).to_vec();
        if img_bytes.is_empty() {
            return;
        }
        for (o, b) in &v.writes {
            for (i, byte) in b.iter().enumerate() {
                let p = o + i as u64;
                if p >= at && p < at + img_bytes.len() as u64 {
                    img_bytes[(p - at) as usize] = *byte;
                }
            }
        }
        let m4 = &img_bytes[..4];
        let (len, crc_at) = match m4 {
            b"XFSB" | b"XAGF" | b"XAGI" | b"XAFL" => {
                let sect = 512;
                let c = match m4 {
                    b"XFSB" => 224,
                    b"XAGF" => 216,
                    b"XAGI" => 312,
                    _ => 32,
                };
                (sect, c)
            }
            b"BMA3" => (img_bytes.len(), 64),
            b"AB3B" | b"AB3C" | b"IAB3" | b"FIB3" | b"RMB3" => (img_bytes.len(), 52),
            b"XDB3" | b"XDD3" | b"XDF3" => (img_bytes.len(), 4),
            [b'I', b'N', _, 3] => (self.base.layout.inode_size as usize, 100),
            _ => return,
        };
        let mut buf = img_bytes[..len.min(img_bytes.len())].to_vec();
        if buf.len() < crc_at + 4 {
            return;
        }
        buf[crc_at..crc_at + 4].fill(0);
        let crc = crc32c::crc32c(&buf);
        v.writes.push((at + crc_at as u64, crc.to_le_bytes().to_vec()));
    }

    fn xfs_structured(&mut self) -> Variant {
        match self.rng.random_range(0..7) {
            0 | 1 => self.xfs_sb_field(),
            2 => self.xfs_btree_cycle(),
            3 => self.xfs_inode_field(),
            4 | 5 => self.xfs_log_games(),
            _ => {
                // Random bytes in an AG header or a btree block, CRC fixed so the reader goes on.
                let mut v = self.random_bytes();
                let b = v.writes[0].0 / self.bs() * self.bs();
                for s in 0..4 {
                    self.xfs_recrc(&mut v, b + s * 512);
                }
                self.xfs_recrc(&mut v, b);
                v.what += " (CRC recomputed)";
                v
            }
        }
    }

    fn xfs_sb_field(&mut self) -> Variant {
        const F: &[(u64, usize)] = &[
            (4, 4),   // sb_blocksize
            (8, 8),   // sb_dblocks
            (48, 8),  // sb_logstart
            (56, 8),  // sb_rootino
            (84, 4),  // sb_agblocks
            (88, 4),  // sb_agcount
            (96, 4),  // sb_logblocks
            (100, 2), // sb_versionnum
            (102, 2), // sb_sectsize
            (104, 2), // sb_inodesize
            (106, 2), // sb_inopblock
            (120, 1), // sb_blocklog
            (121, 1), // sb_sectlog
            (122, 1), // sb_inodelog
            (123, 1), // sb_inopblog
            (124, 1), // sb_agblklog
            (128, 8), // sb_icount
            (192, 1), // sb_dirblklog
            (208, 4), // sb_features_compat
            (216, 4), // sb_features_incompat
            (220, 4), // sb_features_log_incompat
        ];
        let (o, w) = F[self.rng.random_range(0..F.len())];
        let (off, bytes) = self.field(o, w, true);
        let mut v = Variant {
            what: format!("xfs superblock +{o} = {bytes:02x?}"),
            writes: vec![(off, bytes)],
            truncate: None,
        };
        if self.rng.random_bool(0.8) {
            self.xfs_recrc(&mut v, 0);
            v.what += " (CRC recomputed)";
        }
        v
    }

    fn xfs_btree_cycle(&mut self) -> Variant {
        let bs = self.bs();
        let mut cands = Vec::new();
        for &b in &self.base.layout.meta {
            let m = self.read(b * bs, 4);
            if m == b"BMA3" || m == b"AB3B" || m == b"AB3C" || m == b"IAB3" || m == b"FIB3" {
                cands.push(b);
            }
        }
        if cands.is_empty() {
            return self.xfs_inode_field();
        }
        let b = cands[self.rng.random_range(0..cands.len())];
        let at = b * bs;
        let long = self.read(at, 4) == b"BMA3";
        let level = u16::from_be_bytes([self.read(at + 4, 1)[0], self.read(at + 5, 1)[0]]);
        let mut v = if long {
            let daddr = u64::from_be_bytes(self.read(at + 24, 8).try_into().unwrap_or([0; 8]));
            let own = self.fsbno_of_daddr(daddr);
            if level > 0 && self.rng.random_bool(0.6) {
                let maxrecs = (bs - 72) / 16;
                Variant {
                    what: format!("xfs bmbt node at block {b}: child 0 -> itself"),
                    writes: vec![(at + 72 + maxrecs * 8, be(own, 8))],
                    truncate: None,
                }
            } else {
                Variant {
                    what: format!("xfs bmbt block {b}: right sibling -> itself"),
                    writes: vec![(at + 16, be(own, 8))],
                    truncate: None,
                }
            }
        } else {
            let agbno = b % self.base.layout.agblocks.max(1);
            match self.rng.random_range(0..3) {
                0 => Variant {
                    what: format!("xfs AG btree block {b}: right sibling -> itself"),
                    writes: vec![(at + 12, be(agbno, 4))],
                    truncate: None,
                },
                1 => Variant {
                    what: format!("xfs AG btree block {b}: level 0xffff"),
                    writes: vec![(at + 4, vec![0xff, 0xff])],
                    truncate: None,
                },
                _ => Variant {
                    what: format!("xfs AG btree block {b}: numrecs 0xffff"),
                    writes: vec![(at + 6, vec![0xff, 0xff])],
                    truncate: None,
                },
            }
        };
        self.xfs_recrc(&mut v, at);
        v
    }

    fn xfs_inode_field(&mut self) -> Variant {
        let bs = self.bs();
        let isz = self.base.layout.inode_size.max(256);
        let mut cands = Vec::new();
        for &b in &self.base.layout.meta {
            let mut o = 0;
            while o + isz <= bs {
                if self.read(b * bs + o, 2) == b"IN" {
                    cands.push(b * bs + o);
                }
                o += isz;
            }
        }
        if cands.is_empty() {
            return self.random_bytes();
        }
        let at = cands[self.rng.random_range(0..cands.len())];
        // di_mode, di_format, di_size, di_nblocks, di_extsize, di_nextents, di_anextents,
        // di_forkoff, di_aformat, and the first bytes of the data fork.
        const F: &[(u64, usize)] = &[
            (2, 2),
            (5, 1),
            (56, 8),
            (64, 8),
            (72, 4),
            (76, 4),
            (80, 2),
            (82, 1),
            (83, 1),
            (176, 8),
            (184, 8),
        ];
        let (o, w) = F[self.rng.random_range(0..F.len())];
        let (off, bytes) = self.field(at + o, w, true);
        let mut v = Variant {
            what: format!("xfs inode at byte {at} +{o} = {bytes:02x?}"),
            writes: vec![(off, bytes)],
            truncate: None,
        };
        if self.rng.random_bool(0.8) {
            self.xfs_recrc(&mut v, at);
            v.what += " (CRC recomputed)";
        }
        v
    }

    /// Log record headers: cycle, length, lsn, op count, h_size games.
    fn xfs_log_games(&mut self) -> Variant {
        let Some((lo, llen)) = self.base.layout.log else { return self.random_bytes() };
        let mut recs = Vec::new();
        let mut o = lo;
        while o < lo + llen {
            if self.read(o, 4) == [0xFE, 0xED, 0xBA, 0xBE] {
                recs.push(o);
            }
            o += 512;
        }
        if recs.is_empty() {
            // An empty (clean, zeroed) log: write a record header magic somewhere.
            let at = lo + self.rng.random_range(0..llen / 512) * 512;
            return Variant {
                what: format!("xfs log: record magic at byte {at}"),
                writes: vec![(at, vec![0xFE, 0xED, 0xBA, 0xBE])],
                truncate: None,
            };
        }
        match self.rng.random_range(0..4) {
            0 => {
                // Every record the same cycle (no head), or a big cycle on one.
                let c = self.value(4, 1) as u32;
                let writes = recs.iter().map(|&r| (r + 4, c.to_be_bytes().to_vec())).collect();
                Variant { what: format!("xfs log: every record's cycle = {c:#x}"), writes, truncate: None }
            }
            1 => {
                // Stale cycle stamps in the middle: split the log in two generations.
                let mid = recs[self.rng.random_range(0..recs.len())];
                let writes = recs
                    .iter()
                    .filter(|&&r| r >= mid)
                    .map(|&r| (r + 4, 7u32.to_be_bytes().to_vec()))
                    .collect();
                Variant { what: format!("xfs log: cycle 7 from byte {mid}"), writes, truncate: None }
            }
            _ => {
                let r = recs[self.rng.random_range(0..recs.len())];
                // h_version, h_len, h_lsn, h_tail_lsn, h_prev_block, h_num_logops, h_fmt, h_size.
                const F: &[(u64, usize)] =
                    &[(8, 4), (12, 4), (16, 8), (24, 8), (36, 4), (40, 4), (300, 4), (320, 4)];
                let (f, w) = F[self.rng.random_range(0..F.len())];
                let (off, bytes) = self.field(r + f, w, true);
                Variant {
                    what: format!("xfs log record at byte {r} +{f} = {bytes:02x?}"),
                    writes: vec![(off, bytes)],
                    truncate: None,
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running

#[derive(Debug, Default, Clone)]
struct Tally {
    variants: usize,
    runs: usize,
    clean: usize,
    findings: usize,
    errors: usize,
    max_rss_kib: u64,
    max_ms: u128,
    total_ms: u128,
    failures: Vec<String>,
    error_kinds: BTreeMap<String, usize>,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.variants += o.variants;
        self.runs += o.runs;
        self.clean += o.clean;
        self.findings += o.findings;
        self.errors += o.errors;
        self.max_rss_kib = self.max_rss_kib.max(o.max_rss_kib);
        self.max_ms = self.max_ms.max(o.max_ms);
        self.total_ms += o.total_ms;
        self.failures.extend(o.failures.iter().cloned());
        for (k, v) in &o.error_kinds {
            *self.error_kinds.entry(k.clone()).or_default() += v;
        }
    }
}

/// How a run ended: exit, time, stdout, stderr.
type RunResult = Result<(daxray::sys::ChildExit, Duration, String, String), String>;

/// Run `daxray ARGS` with a timeout.
fn run_daxray(args: &[&str], scratch: &Path) -> RunResult {
    let out = File::create(scratch.join("stdout")).expect("stdout file");
    let err = File::create(scratch.join("stderr")).expect("stderr file");
    let t = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_daxray"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot spawn daxray: {e}"))?;
    let pid = child.id();
    let exit = loop {
        match daxray::sys::wait_child(pid, false) {
            Ok(Some(x)) => break x,
            Ok(None) if t.elapsed() > TIMEOUT => {
                // SIGKILL by pid: this child is ours and not yet reaped.
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                let _ = daxray::sys::wait_child(pid, true);
                return Err(format!("timeout: `daxray {}` ran over {} s", args.join(" "), TIMEOUT.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(format!("wait4: {e}")),
        }
    };
    let elapsed = t.elapsed();
    drop(child);
    let stderr = std::fs::read_to_string(scratch.join("stderr")).unwrap_or_default();
    let stdout = std::fs::read_to_string(scratch.join("stdout")).unwrap_or_default();
    Ok((exit, elapsed, stdout, stderr))
}

/// Judge one run; records into `t`.
fn judge(t: &mut Tally, label: &str, r: RunResult) {
    t.runs += 1;
    let (x, el, stdout, stderr) = match r {
        Ok(v) => v,
        Err(e) => {
            t.failures.push(format!("{label}: {e}"));
            return;
        }
    };
    t.max_rss_kib = t.max_rss_kib.max(x.max_rss_kib);
    t.max_ms = t.max_ms.max(el.as_millis());
    t.total_ms += el.as_millis();
    let first_err = || stderr.lines().take(3).collect::<Vec<_>>().join(" | ");
    if let Some(s) = x.signal {
        t.failures.push(format!("{label}: killed by signal {s}: {}", first_err()));
        return;
    }
    let code = x.code.unwrap_or(-1);
    if code == 101 || stderr.contains("panicked at") {
        t.failures.push(format!("{label}: PANIC (exit {code}): {}", first_err()));
        return;
    }
    if !(0..=2).contains(&code) {
        t.failures.push(format!("{label}: exit code {code}: {}", first_err()));
        return;
    }
    if x.max_rss_kib > MAX_RSS_KIB {
        t.failures.push(format!(
            "{label}: peak memory {} MiB over {} MiB",
            x.max_rss_kib / 1024,
            MAX_RSS_KIB / 1024
        ));
    }
    // Classify: an error line is "daxray: <error>", a finding line is "daxray: error: ..." or
    // "daxray: info: ...".
    let mut fatal = None;
    let mut findings = 0;
    for l in stderr.lines() {
        let Some(m) = l.strip_prefix("daxray: ") else { continue };
        if m.starts_with("error: ") || m.starts_with("info: ") {
            findings += 1;
        } else {
            fatal = Some(m.to_string());
        }
        // Every "corrupt X" must say where.
        if let Some(p) = m.find("corrupt ") {
            let rest = &m[p..];
            if !(rest.contains(" at block ") && rest.contains("byte offset ")) {
                t.failures.push(format!("{label}: corrupt error without block/offset: {m}"));
            }
        }
    }
    match (&fatal, code) {
        (Some(m), _) => {
            t.errors += 1;
            if m.trim().len() < 12 {
                t.failures.push(format!("{label}: error message says nothing: {m:?}"));
            }
            let kind = if m.starts_with("corrupt ") {
                "corrupt".to_string()
            } else if m.starts_with("not a recognised image") {
                "unrecognised".into()
            } else if m.starts_with("unsupported") {
                "unsupported".into()
            } else if m.starts_with("not found") {
                "not found".into()
            } else if m.contains("is outside the image") {
                "out of range".into()
            } else {
                format!("other: {}", m.chars().take(60).collect::<String>())
            };
            *t.error_kinds.entry(kind).or_default() += 1;
        }
        (None, 0) => t.clean += 1,
        (None, 1) => {
            t.findings += 1;
            // `check` exits 1 when claims are lost: its verdicts are on standard output.
            let lost_claims = label.ends_with("daxray check") && stdout.contains(" lost (");
            if findings == 0 && !lost_claims {
                t.failures.push(format!("{label}: exit 1 without a finding or an error on stderr"));
            }
        }
        (None, c) => t.failures.push(format!("{label}: exit {c} without an error message")),
    }
}

/// Copy `src` to `dst` writing only its non-zero 4 KiB pieces (zeros the file system wrote, such
/// as a freshly made log, become holes), optionally cut to `len` bytes: cheap copies, cheap hashes.
fn copy_nonzero(src: &Path, dst: &Path, len: Option<u64>) {
    let s = File::open(src).expect("open base");
    let full = s.metadata().expect("stat").len();
    let len = len.unwrap_or(full).min(full);
    let d = File::create(dst).expect("create copy");
    d.set_len(len).expect("size copy");
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0u64;
    while off < len {
        let Some(a) = daxray::sys::seek_data(&s, off).expect("SEEK_DATA") else { break };
        if a >= len {
            break;
        }
        let e = daxray::sys::seek_hole(&s, a).expect("SEEK_HOLE").unwrap_or(full).min(len);
        let mut p = a;
        while p < e {
            let n = ((e - p) as usize).min(buf.len());
            let got = s.read_at(&mut buf[..n], p).expect("read base");
            if got == 0 {
                break;
            }
            for (k, piece) in buf[..got].chunks(4096).enumerate() {
                if piece.iter().any(|&b| b != 0) {
                    d.write_all_at(piece, p + k as u64 * 4096).expect("write copy");
                }
            }
            p += got as u64;
        }
        off = e;
    }
}

fn apply(path: &Path, writes: &[(u64, Vec<u8>)]) -> Vec<(u64, Vec<u8>)> {
    let f = std::fs::OpenOptions::new().read(true).write(true).open(path).expect("open work copy");
    let len = f.metadata().expect("stat").len();
    let mut undo = Vec::new();
    for (o, b) in writes {
        if *o >= len {
            continue;
        }
        let n = (b.len() as u64).min(len - o) as usize;
        let mut old = vec![0u8; n];
        f.read_exact_at(&mut old, *o).expect("read");
        f.write_all_at(&b[..n], *o).expect("write");
        undo.push((*o, old));
    }
    undo
}

/// Run worker `w`'s share (every other variant) of `n` variants of `base`.
fn campaign_on(base: &Base, g: &mut Gen, n: usize, w: usize, scratch: &Path, keep: Option<&Path>) -> Tally {
    let mut t = Tally::default();
    let work = scratch.join("work.img");
    copy_nonzero(&base.path, &work, None);
    let claims = base.claims.to_str().expect("utf-8").to_string();
    for i in 0..n {
        let v = g.mutate();
        if i % 2 != w {
            continue;
        }
        let (target, undo) = if let Some(to) = v.truncate {
            let tr = scratch.join("trunc.img");
            copy_nonzero(&base.path, &tr, Some(to));
            (tr, vec![])
        } else {
            let undo = apply(&work, &v.writes);
            (work.clone(), undo)
        };
        let before = hash_sparse(&target);
        let p = target.to_str().expect("utf-8").to_string();
        let cmds: [Vec<&str>; 4] = [
            vec!["info", &p],
            vec!["manifest", "--hash", &p],
            vec!["journal", &p],
            vec!["check", &p, "--claims", &claims],
        ];
        let failures_before = t.failures.len();
        for c in &cmds {
            let label = format!("{} variant {i} ({}): daxray {}", base.name, v.what, c[0]);
            judge(&mut t, &label, run_daxray(c, scratch));
        }
        if hash_sparse(&target) != before {
            t.failures.push(format!("{} variant {i} ({}): the input changed", base.name, v.what));
        }
        if t.failures.len() > failures_before
            && let Some(k) = keep
        {
            let dst = k.join(format!("{}-{i}.img", base.name));
            let _ = oracle::copy_sparse(&target, &dst);
        }
        t.variants += 1;
        if v.truncate.is_some() {
            let _ = std::fs::remove_file(&target);
        } else {
            apply(&work, &undo);
        }
    }
    let _ = std::fs::remove_file(&work);
    t
}

#[test]
fn corruption_campaign() {
    if !ready() {
        return;
    }
    let started = Instant::now();
    let per_base: usize =
        std::env::var("DAXRAY_CAMPAIGN_VARIANTS").ok().and_then(|v| v.parse().ok()).unwrap_or(340);
    let seed: u64 = std::env::var("DAXRAY_CAMPAIGN_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let keep = std::env::var_os("DAXRAY_CAMPAIGN_KEEP").map(PathBuf::from);
    let tmp = tempfile::Builder::new().prefix("daxray-corruption-").tempdir().expect("tempdir");
    let dir = tmp.path();

    let mut bases = Vec::new();
    bases.extend(make_pair(dir, "ext4-csum", Kind::Ext4, 48 << 20, &["mkfs.ext4", "-q", "-b", "4096"], seed));
    bases.extend(make_pair(
        dir,
        "ext4-nocsum-1k",
        Kind::Ext4,
        48 << 20,
        &["mkfs.ext4", "-q", "-b", "1024", "-O", "^metadata_csum,^64bit"],
        seed + 1,
    ));
    bases.extend(make_pair(
        dir,
        "xfs",
        Kind::Xfs,
        320 << 20,
        &["mkfs.xfs", "-q", "-f", "-m", "reflink=0"],
        seed + 2,
    ));
    let made = started.elapsed();
    for b in &bases {
        let l = &b.layout;
        eprintln!(
            "base {:<20} {:>4} metadata blocks of {} bytes; journal {:?}; log {:?}; csum {}",
            b.name,
            l.meta.len(),
            l.block_size,
            l.journal,
            l.log,
            l.ext4_csum
        );
    }

    // Variants come from the seed; each worker regenerates the same sequence and takes its
    // share, so that no more than one variant is in memory at a time (this process's peak RSS is
    // inherited by its children's ru_maxrss, which the test bounds).
    let total = Mutex::new(Tally::default());
    let per_base_tally = Mutex::new(vec![Tally::default(); bases.len()]);
    std::thread::scope(|s| {
        for w in 0..2usize {
            let (bases, total, per_base_tally, keep) = (&bases, &total, &per_base_tally, keep.as_deref());
            s.spawn(move || {
                let scratch =
                    tempfile::Builder::new().prefix("daxray-corruption-w").tempdir().expect("tempdir");
                for (bi, b) in bases.iter().enumerate() {
                    let img = File::open(&b.path).expect("open base");
                    let len = img.metadata().expect("stat base").len();
                    let rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1000).wrapping_add(bi as u64));
                    let mut g = Gen { rng, base: b, img, len };
                    let t = campaign_on(b, &mut g, per_base, w, scratch.path(), keep);
                    per_base_tally.lock().expect("lock")[bi].add(&t);
                    total.lock().expect("lock").add(&t);
                }
            });
        }
    });
    let total = total.into_inner().expect("lock");
    let per = per_base_tally.into_inner().expect("lock");

    eprintln!(
        "\ncorruption campaign (seed {seed}, {per_base} variants per base; images made in {:.1} s):",
        made.as_secs_f64()
    );
    eprintln!(
        "{:<22} {:>8} {:>6} {:>6} {:>9} {:>7} {:>9} {:>8} {:>8}",
        "base", "variants", "runs", "clean", "findings", "errors", "failures", "max ms", "max MiB"
    );
    for (b, t) in bases.iter().zip(&per) {
        eprintln!(
            "{:<22} {:>8} {:>6} {:>6} {:>9} {:>7} {:>9} {:>8} {:>8}",
            b.name,
            t.variants,
            t.runs,
            t.clean,
            t.findings,
            t.errors,
            t.failures.len(),
            t.max_ms,
            t.max_rss_kib / 1024
        );
    }
    eprintln!(
        "{:<22} {:>8} {:>6} {:>6} {:>9} {:>7} {:>9} {:>8} {:>8}",
        "total",
        total.variants,
        total.runs,
        total.clean,
        total.findings,
        total.errors,
        total.failures.len(),
        total.max_ms,
        total.max_rss_kib / 1024
    );
    eprintln!("errors by kind: {:?}", total.error_kinds);
    eprintln!(
        "mean run {:.1} ms; whole test {:.1} s",
        total.total_ms as f64 / total.runs.max(1) as f64,
        started.elapsed().as_secs_f64()
    );

    for f in total.failures.iter().take(60) {
        eprintln!("FAILURE {f}");
    }
    // The base images themselves were never written.
    for b in &bases {
        assert_eq!(hash_sparse(&b.path), b.hash, "{}: the base image changed", b.name);
    }
    assert!(total.failures.is_empty(), "{} failures (first ones above)", total.failures.len());
    assert_eq!(total.variants, bases.len() * per_base, "not every variant ran");
    assert_eq!(total.runs, total.variants * 4);
    // The campaign reached the parsers: not everything was rejected at the door, and not
    // everything passed as clean.
    assert!(total.clean + total.findings > 0, "no run got past opening the image");
    assert!(total.findings + total.errors > 0, "no corruption was noticed at all");
}
