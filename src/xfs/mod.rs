//! XFS, read-only: superblock, AG headers, inodes, forks and the bmbt, directories, symlinks.
//!
//! Everything on disk is big-endian except v5 crc fields (little-endian crc32c). Extents are
//! reported with `physical` linear from the start of the file system (agno × agblocks + agbno),
//! not as packed fsbnos.

pub mod ag;
pub mod agview;
pub mod attr;
pub mod blockhdr;
pub mod bmap;
pub mod crc;
pub mod dir;
pub mod icheck;
pub mod inobt;
pub mod inode;
pub mod sb;
pub mod symlink;

use crate::error::{Error, Finding, Findings, Result};
use crate::fs::{DirEntry, Extent, FileSystem, FileType, FsKind, Stat};
use crate::image::BlockSource;
use inode::{Fork, Inode};
use std::sync::Arc;

pub use ag::AgSummary;
pub use bmap::{BmbtBlock, BmbtRec};
pub use sb::Superblock;

/// An opened xfs file system.
pub struct Xfs {
    src: Arc<dyn BlockSource>,
    sb: Superblock,
    ags: Vec<AgSummary>,
    findings: Findings,
}

impl Xfs {
    /// Open the file system at byte 0 of `src`: read and check the superblock and every AG's
    /// headers (problems in AG headers are findings).
    pub fn open(src: Arc<dyn BlockSource>) -> Result<Self> {
        let findings = Findings::new();
        let n = src.len().min(32768) as usize;
        let bytes = src.read_at(0, n)?;
        let sb = Superblock::parse(&bytes, &findings)?;
        drop(bytes);
        let need = sb.dblocks().saturating_mul(u64::from(sb.blocksize()));
        if need > src.len() {
            findings.error(
                "xfs superblock",
                Some(0),
                Some(0),
                format!("file system is {need} bytes, the image only {}", src.len()),
            );
        }
        let mut ags = Vec::new();
        let ag_bytes = u64::from(sb.agblocks()).saturating_mul(u64::from(sb.blocksize()));
        for agno in 0..sb.agcount() {
            // AGs that start past the end of the image cannot be read; say so once rather than
            // once per AG (a hostile agcount can be four billion).
            let start = u64::from(agno).saturating_mul(ag_bytes);
            if start >= src.len() {
                findings.error(
                    "xfs superblock",
                    Some(0),
                    Some(0),
                    format!(
                        "AGs {agno}..{} start past the end of the image ({} bytes); not read",
                        sb.agcount(),
                        src.len()
                    ),
                );
                break;
            }
            match ag::read_ag(&*src, &sb, agno, &findings) {
                Ok(s) => ags.push(s),
                Err(e) => findings.error(format!("xfs AG {agno} headers"), None, None, e.to_string()),
            }
        }
        Ok(Self { src, sb, ags, findings })
    }

    /// The primary superblock.
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// AG header summaries.
    pub fn ags(&self) -> &[AgSummary] {
        &self.ags
    }

    /// With lazy superblock counters, the counters the kernel's mount computes from the AG
    /// headers (`xfs_initialize_perag_data`, called by `xfs_check_summary_counts` when the log
    /// was not clean): icount and ifree summed from the AGIs, fdblocks from the AGFs' free,
    /// free-list and btree blocks. On disk these counters are only brought up to date when the
    /// file system is unmounted cleanly. None without lazy counters (the superblock's are kept
    /// by every transaction) or when an AG could not be read.
    pub fn summary_counters(&self) -> Option<(u64, u64, u64)> {
        let f = self.sb.features();
        let lazy = f.version == 5 || f.names.iter().any(|n| n == "lazysbcount");
        if !lazy || self.ags.len() != self.sb.agcount() as usize {
            return None;
        }
        let sum = |g: fn(&AgSummary) -> u32| self.ags.iter().map(|a| u64::from(g(a))).sum::<u64>();
        Some((
            sum(|a| a.icount),
            sum(|a| a.ifree),
            sum(|a| a.freeblks) + sum(|a| a.flcount) + sum(|a| a.btreeblks),
        ))
    }

    /// Read and check an inode.
    pub fn inode(&self, ino: u64) -> Result<Inode> {
        let off = self
            .sb
            .ino_to_byte(ino)
            .ok_or_else(|| Error::NotFound(format!("xfs inode {ino}: outside the file system")))?;
        let size = self.sb.inodesize() as usize;
        let b = self.src.read_at(off, size)?;
        Inode::parse(&self.sb, ino, off, &b, &self.findings)
    }

    /// Extents of a fork with `physical` linear from the fs start. Realtime files are refused.
    pub fn fork_extents(&self, ino: &Inode, fork: Fork) -> Result<Vec<Extent>> {
        if fork == Fork::Data && ino.realtime() {
            return Err(Error::Unsupported(format!(
                "xfs inode {}: realtime file, its data is on the realtime device, which is not read",
                ino.ino
            )));
        }
        let (recs, _) = self.fork_records(ino, fork)?;
        let mut out = Vec::with_capacity(recs.len());
        for r in recs {
            let lin = self.sb.fsb_to_linear(r.startblock);
            let (agno, agbno) = self.sb.fsb_split(r.startblock);
            let ok = lin.is_some()
                && agbno.checked_add(r.blockcount).is_some_and(|e| e <= u64::from(self.sb.agblocks()));
            let Some(lin) = lin.filter(|_| ok) else {
                self.findings.error(
                    "xfs bmbt",
                    Some(ino.ino),
                    Some(ino.offset),
                    format!(
                        "inode {}: extent at logical {} maps to AG {agno} agbno {agbno} +{}, outside the fs; skipped",
                        ino.ino, r.startoff, r.blockcount
                    ),
                );
                continue;
            };
            out.push(Extent {
                logical: r.startoff,
                physical: lin,
                length: r.blockcount,
                unwritten: r.unwritten,
            });
        }
        Ok(out)
    }
}

impl FileSystem for Xfs {
    fn kind(&self) -> FsKind {
        FsKind::Xfs
    }
    fn block_size(&self) -> u32 {
        self.sb.blocksize()
    }
    fn root_ino(&self) -> u64 {
        self.sb.rootino()
    }
    fn source(&self) -> &dyn BlockSource {
        &*self.src
    }
    fn info(&self) -> serde_json::Value {
        let mut v = self.sb.to_json();
        if let Some(o) = v.as_object_mut() {
            o.insert("fs".into(), serde_json::json!("xfs"));
            o.insert("ags".into(), serde_json::to_value(&self.ags).unwrap_or_default());
            let unlinked: u32 = self.ags.iter().map(|a| a.unlinked_buckets_used).sum();
            o.insert("unlinked_buckets_used".into(), serde_json::json!(unlinked));
            if let Some((icount, ifree, fdblocks)) = self.summary_counters() {
                let r = self.sb.raw();
                o.insert(
                    "counters_on_disk".into(),
                    serde_json::json!({
                        "lazy": true,
                        "icount": r.icount.get(),
                        "ifree": r.ifree.get(),
                        "fdblocks": r.fdblocks.get(),
                    }),
                );
                o.insert("icount".into(), serde_json::json!(icount));
                o.insert("ifree".into(), serde_json::json!(ifree));
                o.insert("fdblocks".into(), serde_json::json!(fdblocks));
            }
        }
        v
    }
    fn stat(&self, ino: u64) -> Result<Stat> {
        Ok(self.inode(ino)?.to_stat(self.sb.blocksize()))
    }
    fn file_type(&self, ino: u64) -> Result<FileType> {
        Ok(self.inode(ino)?.file_type())
    }
    fn type_and_size(&self, ino: u64) -> Result<(FileType, u64)> {
        let i = self.inode(ino)?;
        Ok((i.file_type(), i.size()))
    }
    fn map(&self, ino: u64) -> Result<Vec<Extent>> {
        let i = self.inode(ino)?;
        self.fork_extents(&i, Fork::Data)
    }
    fn read_dir(&self, ino: u64) -> Result<Vec<DirEntry>> {
        let i = self.inode(ino)?;
        if i.file_type() != FileType::Dir {
            return Err(Error::Usage(format!("xfs inode {ino} is not a directory")));
        }
        self.dir_entries(&i)
    }
    fn read_link(&self, ino: u64) -> Result<Vec<u8>> {
        let i = self.inode(ino)?;
        if i.file_type() != FileType::Symlink {
            return Err(Error::Usage(format!("xfs inode {ino} is not a symbolic link")));
        }
        self.symlink_target(&i)
    }
    fn read(&self, ino: u64, offset: u64, len: usize) -> Result<Vec<u8>> {
        let i = self.inode(ino)?;
        let size = i.size();
        if i.core.format == inode::FMT_LOCAL {
            let f = i.fork_bytes(Fork::Data);
            let s = usize::try_from(offset.min(size)).unwrap_or(usize::MAX).min(f.len());
            let e = usize::try_from(size.min(offset.saturating_add(len as u64)))
                .unwrap_or(usize::MAX)
                .min(f.len());
            return Ok(f.get(s..e).unwrap_or(&[]).to_vec());
        }
        let ext = self.fork_extents(&i, Fork::Data)?;
        crate::fs::read_by_extents(&*self.src, self.sb.blocksize(), size, &ext, offset, len)
    }
    fn findings(&self) -> Vec<Finding> {
        self.findings.snapshot()
    }
    fn icheck(&self, blocks: &[u64]) -> Result<Vec<Option<u64>>> {
        Xfs::icheck(self, blocks)
    }
    fn xattrs(&self, ino: u64) -> Result<Vec<crate::fs::Xattr>> {
        Xfs::xattrs(self, ino)
    }
}
