//! Directories, version 2/3: shortform (in the inode), block, leaf and node forms. Entries live
//! only in the data blocks (directory offsets below 32 GiB); leaf, node and free-index blocks
//! above that offset are skipped, so one reader serves block, leaf and node directories.
//!
//! Entries are parsed with `nom`: shortform and data entries are variable-length (each name's
//! length, the inode number width and the file-type byte decide where the next one starts), which
//! a chain of `take` parsers follows more plainly than fixed structs.

use super::Xfs;
use super::bmap::BmbtRec;
use super::crc;
use super::inode::{FMT_BTREE, FMT_EXTENTS, FMT_LOCAL, Fork, Inode};
use crate::error::{Error, Result};
use crate::fs::{DirEntry, FileType};
use nom::IResult;
use nom::bytes::complete::take;
use nom::number::complete::{be_u8, be_u16, be_u32, be_u64};

/// "XD2B": v4 single-block directory.
pub const XD2B: u32 = 0x5844_3242;
/// "XD2D": v4 data block.
pub const XD2D: u32 = 0x5844_3244;
/// "XDB3": v5 single-block directory.
pub const XDB3: u32 = 0x5844_4233;
/// "XDD3": v5 data block.
pub const XDD3: u32 = 0x5844_4433;
/// Directory offset (bytes) where leaf blocks start.
pub const LEAF_OFFSET: u64 = 32 << 30;
/// Offset of the crc in v5 directory block headers.
pub const DIR3_CRC_OFF: usize = 4;

/// The file type stored in a directory entry.
pub fn ftype(v: u8) -> Option<FileType> {
    FileType::from_dirent(v)
}

struct SfEnt<'a> {
    name: &'a [u8],
    ftype: Option<u8>,
    ino: u64,
}

fn sf_entry(i8: bool, has_ftype: bool) -> impl Fn(&[u8]) -> IResult<&[u8], SfEnt<'_>> {
    move |i| {
        let (i, namelen) = be_u8(i)?;
        let (i, _offset) = be_u16(i)?;
        let (i, name) = take(namelen)(i)?;
        let (i, ft) = if has_ftype { be_u8(i).map(|(i, f)| (i, Some(f)))? } else { (i, None) };
        let (i, ino) = if i8 { be_u64(i)? } else { be_u32(i).map(|(i, v)| (i, u64::from(v)))? };
        Ok((i, SfEnt { name, ftype: ft, ino }))
    }
}

impl Xfs {
    /// Entries of a directory inode (without "." and "..").
    pub fn dir_entries(&self, ino: &Inode) -> Result<Vec<DirEntry>> {
        match ino.core.format {
            FMT_LOCAL => self.sf_dir(ino),
            FMT_EXTENTS | FMT_BTREE => {
                let (recs, _) = self.fork_records(ino, Fork::Data)?;
                self.block_dir(ino, &recs)
            }
            f => Err(Error::corrupt(
                "xfs directory",
                ino.ino,
                ino.offset,
                format!("inode {}: directory with data fork format {f}", ino.ino),
            )),
        }
    }

    fn sf_dir(&self, ino: &Inode) -> Result<Vec<DirEntry>> {
        let bad = |d: String| Error::corrupt("xfs shortform directory", ino.ino, ino.offset, d);
        let fork = ino.fork_bytes(Fork::Data);
        let size = usize::try_from(ino.size()).unwrap_or(usize::MAX);
        let data = fork.get(..size).ok_or_else(|| {
            bad(format!("inode {}: size {size} larger than the {}-byte fork", ino.ino, fork.len()))
        })?;
        let (&count, rest) = data.split_first().ok_or_else(|| bad("empty".into()))?;
        let (&i8count, rest) = rest.split_first().ok_or_else(|| bad("short header".into()))?;
        let i8 = i8count != 0;
        let plen = if i8 { 8 } else { 4 };
        let mut rest = rest.get(plen..).ok_or_else(|| bad("short header".into()))?;
        let n = if i8 { i8count } else { count };
        let parse = sf_entry(i8, self.sb.has_ftype());
        let mut out = Vec::with_capacity(usize::from(n));
        for k in 0..n {
            let (r, e) =
                parse(rest).map_err(|_| bad(format!("inode {}: entry {k} runs off the end", ino.ino)))?;
            rest = r;
            if e.name.is_empty() {
                return Err(bad(format!("inode {}: entry {k} has an empty name", ino.ino)));
            }
            out.push(DirEntry { name: e.name.to_vec(), ino: e.ino, file_type: e.ftype.and_then(ftype) });
        }
        Ok(out)
    }

    /// Entries of block/leaf/node directories: every data block the fork maps below 32 GiB.
    fn block_dir(&self, ino: &Inode, recs: &[BmbtRec]) -> Result<Vec<DirEntry>> {
        let bs = u64::from(self.sb.blocksize());
        let fsbs = u64::from(self.sb.dirblkfsbs());
        let dbs = self.sb.dirblksize() as usize;
        let leaf_fsb = LEAF_OFFSET / bs;
        // the dir blocks (first logical fs block) that hold data
        let mut dblocks: Vec<u64> = vec![];
        let cap = self.sb.dblocks();
        for r in recs {
            if r.startoff >= leaf_fsb {
                continue;
            }
            let end = r.startoff.saturating_add(r.blockcount).min(leaf_fsb);
            let mut d = r.startoff - r.startoff % fsbs;
            while d < end {
                if dblocks.last() != Some(&d) {
                    dblocks.push(d);
                }
                if dblocks.len() as u64 > cap {
                    return Err(Error::corrupt(
                        "xfs directory",
                        ino.ino,
                        ino.offset,
                        "more blocks than the fs",
                    ));
                }
                d += fsbs;
            }
        }
        let mut out = vec![];
        for d in dblocks {
            let Some((buf, first)) = self.dir_block_bytes(ino, recs, d, fsbs)? else { continue };
            if buf.len() != dbs {
                continue;
            }
            self.parse_data_block(ino, d, first, &buf, &mut out)?;
        }
        Ok(out)
    }

    /// The bytes of the directory block starting at logical fs block `d`, assembled through the
    /// mapping. `None` (and a finding) when part of it is a hole.
    fn dir_block_bytes(
        &self,
        ino: &Inode,
        recs: &[BmbtRec],
        d: u64,
        fsbs: u64,
    ) -> Result<Option<(Vec<u8>, u64)>> {
        let bs = u64::from(self.sb.blocksize());
        let mut buf = Vec::with_capacity((bs * fsbs) as usize);
        let mut first = 0;
        for l in d..d + fsbs {
            // records are sorted by startoff and do not overlap
            let i = recs.partition_point(|r| r.startoff <= l);
            let hit = i.checked_sub(1).and_then(|i| recs.get(i)).filter(|r| l < r.startoff + r.blockcount);
            let Some(r) = hit else {
                self.findings.error(
                    "xfs directory block",
                    Some(ino.ino),
                    Some(ino.offset),
                    format!("inode {}: directory block at logical {d} is partly a hole", ino.ino),
                );
                return Ok(None);
            };
            let fsb = r.startblock + (l - r.startoff);
            let Some(lin) = self.sb.fsb_to_linear(fsb) else {
                return Err(Error::corrupt(
                    "xfs directory block",
                    fsb,
                    0,
                    format!("inode {}: logical block {l} maps outside the file system ({fsb:#x})", ino.ino),
                ));
            };
            if l == d {
                first = lin;
            }
            buf.extend_from_slice(&self.src.read_at(lin * bs, bs as usize)?);
        }
        Ok(Some((buf, first)))
    }

    fn parse_data_block(
        &self,
        ino: &Inode,
        d: u64,
        blk: u64,
        buf: &[u8],
        out: &mut Vec<DirEntry>,
    ) -> Result<()> {
        let bs = u64::from(self.sb.blocksize());
        let off = blk * bs;
        let bad = |dd: String| {
            Error::corrupt(
                "xfs directory block",
                blk,
                off,
                format!("inode {} dir block at logical {d} (fs block {blk}): {dd}", ino.ino),
            )
        };
        let magic = u32::from_be_bytes(
            buf.get(..4).and_then(|m| m.try_into().ok()).ok_or_else(|| bad("short".into()))?,
        );
        let v5 = self.sb.has_crc();
        let (is_block, hdr) = match (magic, v5) {
            (XD2B, false) => (true, 16usize),
            (XD2D, false) => (false, 16),
            (XDB3, true) => (true, 64),
            (XDD3, true) => (false, 64),
            _ => return Err(bad(format!("bad magic {magic:#010x}"))),
        };
        if v5 {
            match crc::verify(buf, DIR3_CRC_OFF) {
                Some((true, _, _)) => {}
                Some((false, s, c)) => self.findings.error(
                    "xfs directory block",
                    Some(blk),
                    Some(off),
                    format!(
                        "inode {} dir block at logical {d} (AG {} ): crc {s:#010x}, computed {c:#010x}",
                        ino.ino,
                        blk / u64::from(self.sb.agblocks())
                    ),
                ),
                None => return Err(bad("short block".into())),
            }
            let blkno = buf.get(8..16).map(|o| u64::from_be_bytes(o.try_into().unwrap_or([0; 8])));
            if blkno != Some(off / 512) {
                self.findings.error(
                    "xfs directory block",
                    Some(blk),
                    Some(off),
                    format!("inode {}: header says daddr {blkno:?}, the block is at {}", ino.ino, off / 512),
                );
            }
            if buf.get(24..40) != Some(&self.sb.meta_uuid()[..]) {
                self.findings.error(
                    "xfs directory block",
                    Some(blk),
                    Some(off),
                    format!("inode {}: uuid differs from the superblock", ino.ino),
                );
            }
            let owner = buf.get(40..48).map(|o| u64::from_be_bytes(o.try_into().unwrap_or([0; 8])));
            if owner != Some(ino.ino) {
                self.findings.error(
                    "xfs directory block",
                    Some(blk),
                    Some(off),
                    format!("inode {}: block owned by inode {owner:?}", ino.ino),
                );
            }
        }
        let mut end = buf.len();
        if is_block {
            let tail = end.checked_sub(8).ok_or_else(|| bad("short block".into()))?;
            let count = u32::from_be_bytes(buf[tail..tail + 4].try_into().unwrap_or([0; 4])) as usize;
            end = count
                .checked_mul(8)
                .and_then(|l| tail.checked_sub(l))
                .filter(|e| *e >= hdr)
                .ok_or_else(|| bad(format!("leaf count {count} does not fit")))?;
        }
        let ft = self.sb.has_ftype();
        let mut pos = hdr;
        while pos < end {
            let rest = buf.get(pos..end).ok_or_else(|| bad("entry out of range".into()))?;
            if rest.len() < 8 {
                return Err(bad(format!("truncated entry at byte {pos}")));
            }
            if rest[0] == 0xff && rest[1] == 0xff {
                let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
                if len < 8 || len % 8 != 0 || len > rest.len() {
                    return Err(bad(format!("bad free-space length {len} at byte {pos}")));
                }
                pos += len;
                continue;
            }
            let e_ino = u64::from_be_bytes(rest[..8].try_into().unwrap_or([0; 8]));
            let namelen = usize::from(*rest.get(8).ok_or_else(|| bad("truncated entry".into()))?);
            if namelen == 0 {
                return Err(bad(format!("empty name at byte {pos}")));
            }
            let esize = (8 + 1 + namelen + usize::from(ft) + 2).div_ceil(8) * 8;
            if esize > rest.len() {
                return Err(bad(format!("entry at byte {pos} runs past the data area")));
            }
            let name = &rest[9..9 + namelen];
            let ftv = if ft { ftype(rest[9 + namelen]) } else { None };
            let tag = usize::from(u16::from_be_bytes([rest[esize - 2], rest[esize - 1]]));
            if tag != pos {
                self.findings.error(
                    "xfs directory block",
                    Some(blk),
                    Some(off + pos as u64),
                    format!("inode {}: entry tag {tag} at byte {pos}", ino.ino),
                );
            }
            if name != b"." && name != b".." {
                out.push(DirEntry { name: name.to_vec(), ino: e_ino, file_type: ftv });
            }
            pos += esize;
        }
        Ok(())
    }
}

/// Directory offset (bytes) where free-index blocks start (node directories only).
pub const FREE_OFFSET: u64 = 64 << 30;

/// The form of a directory, as the kernel names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DirForm {
    /// Entries in the inode.
    Shortform,
    /// One directory block with its own leaf.
    Block,
    /// Data blocks and one leaf block.
    Leaf,
    /// Data blocks, a dabtree of leaves and free-index blocks.
    Node,
}

impl Xfs {
    /// Which form a directory has, from its data fork's format and mapping.
    pub fn dir_form(&self, ino: &Inode) -> Result<DirForm> {
        if ino.core.format == FMT_LOCAL {
            return Ok(DirForm::Shortform);
        }
        let (recs, _) = self.fork_records(ino, Fork::Data)?;
        let bs = u64::from(self.sb.blocksize());
        let leaf = LEAF_OFFSET / bs;
        let free = FREE_OFFSET / bs;
        let end = |r: &BmbtRec| r.startoff.saturating_add(r.blockcount);
        if recs.iter().any(|r| end(r) > free) {
            Ok(DirForm::Node)
        } else if recs.iter().any(|r| end(r) > leaf) {
            Ok(DirForm::Leaf)
        } else {
            Ok(DirForm::Block)
        }
    }
}
