//! Replay of inode items into their cluster buffers (`xlog_recover_inode_commit_pass2`), of
//! icreate items (`xlog_recover_icreate_commit_pass2`), and of the unlinked pointers an inode
//! buffer logs: the inode half of pass two of [`super::Replayer`].

use super::{Geo, Replayer, Stats, chunk_regions, note_written, set_crc};
use crate::error::{Error, Result};
use crate::image::BlockSource;
use crate::xfs::inode::{DINODE_CRC_OFF, DINODE_MAGIC, DiskInode};
use crate::xlog::dinode::{LogDinode, V2_LOG_DINODE, V3_LOG_DINODE, bmbt_to_bmdr, log_dinode_to_disk};
use crate::xlog::format::lsn_cmp;
use crate::xlog::items::*;
use crate::xlog::trans::{Item, Trans};
use byteorder::{BigEndian, ByteOrder};
use core::mem::offset_of;
use std::cmp::Ordering;
use std::collections::HashMap;
use zerocopy::byteorder::LE;

/// NULLAGINO.
const NULL_AGINO: u32 = 0xffff_ffff;
/// Offsets in the on-disk inode (`struct xfs_dinode`).
const DI_VERSION: usize = offset_of!(DiskInode, version);
/// `di_flushiter` of a v2 inode: after the 6 pad bytes of the field v3 names `di_v3_pad`.
const DI_FLUSHITER: usize = offset_of!(DiskInode, big_nextents) + 6;
const DI_FORKOFF: usize = offset_of!(DiskInode, forkoff);
const DI_GEN: usize = offset_of!(DiskInode, gen_);
const DI_NEXT_UNLINKED: usize = offset_of!(DiskInode, next_unlinked);
const DI_LSN: usize = offset_of!(DiskInode, lsn);
const DI_INO: usize = offset_of!(DiskInode, ino);
const DI_UUID: usize = offset_of!(DiskInode, uuid);
const _: () = assert!(DI_FLUSHITER == 30 && DI_FORKOFF == 82 && DI_NEXT_UNLINKED == 96);
const _: () = assert!(DI_LSN == 112 && DI_INO == 152 && DI_UUID == 160 && DI_GEN == 92);
const _: () = assert!(offset_of!(DiskInode, crc) == DINODE_CRC_OFF);
/// `di_flushiter` of a v2 log dinode.
const LDI_FLUSHITER: usize = offset_of!(LogDinode<LE>, big_nextents) + 6;

impl Replayer {
    /// An inode buffer (`XFS_BLF_INODE_BUF`): only the di_next_unlinked fields logged.
    pub(super) fn inode_buffer(&mut self, it: &Item, b: &BufFormat, off: u64, blen: usize) -> Result<()> {
        let isz = self.geo.inodesize;
        let n_inodes = blen / isz;
        // Map each dirty chunk to (region index, offset in region).
        let mut chunk_src: HashMap<usize, (usize, usize)> = HashMap::new();
        let runs = chunk_regions(b, it)
            .map_err(|d| Error::corrupt("xfs log buffer item", b.blkno, b.blkno.saturating_mul(512), d))?;
        for (bit, n, ri) in runs {
            for k in 0..n {
                chunk_src.insert(bit + k, (ri, k * BLF_CHUNK));
            }
        }
        for ino in 0..n_inodes {
            let at_ino = ino * isz + DI_NEXT_UNLINKED;
            let Some(&(ri, ro)) = chunk_src.get(&(at_ino / BLF_CHUNK)) else { continue };
            let at = ro + at_ino % BLF_CHUNK;
            let mut w = [0u8; 4];
            if !it.regions.get(ri).is_some_and(|r| r.copy_to(&*self.log, at, &mut w)) {
                continue;
            }
            self.ov.write_bytes(off + at_ino as u64, &w)?;
            if self.geo.crc {
                let d0 = off + (ino * isz) as u64;
                let mut d = self.ov.read_at(d0, isz)?.into_owned();
                if d.get(4).is_some_and(|v| *v >= 3) {
                    set_crc(&mut d, DINODE_CRC_OFF);
                    self.ov
                        .write_bytes(d0 + DINODE_CRC_OFF as u64, &d[DINODE_CRC_OFF..DINODE_CRC_OFF + 4])?;
                }
            }
        }
        Ok(())
    }

    /// An inode item (`xlog_recover_inode_commit_pass2`).
    pub(super) fn inode(&mut self, it: &Item, t: &Trans, log: &dyn BlockSource) -> Result<()> {
        let n = t.native;
        let f = InodeFormat::parse(&it.regions[0].bytes(log), n)
            .ok_or_else(|| Error::corrupt("xfs log inode item", 0, 0, "short inode log format"))?;
        let bad = |d: String| Error::corrupt("xfs log inode item", f.ino, f.blkno.saturating_mul(512), d);
        if self.is_cancelled(f.blkno, f.len) {
            self.stats.inodes_cancelled += 1;
            return Ok(());
        }
        let (off, blen) = self.span(f.blkno, u64::from(f.len))?;
        let isz = self.geo.inodesize;
        let bo = f.boffset as usize;
        if bo.checked_add(isz).is_none_or(|e| e > blen) {
            return Err(bad(format!("inode offset {bo} outside its {blen}-byte buffer")));
        }
        let Some(ldr) = it.regions.get(1) else { return Err(bad("no inode core region".into())) };
        // The log dinode (at most 176 bytes) copied to the stack: no allocation when a sector
        // starts inside it.
        let mut ld_buf = [0u8; 256];
        let whole;
        let n = ldr.len();
        let ld: &[u8] = if n <= ld_buf.len() && ldr.copy_to(log, 0, &mut ld_buf[..n]) {
            &ld_buf[..n]
        } else {
            whole = ldr.bytes(log);
            &whole
        };
        // Only the inode changes: it is copied out, changed, and written back when replayed.
        let d0 = off + bo as u64;
        self.settle_range(d0 / 512, (d0 % 512 + isz as u64).div_ceil(512), None)?;
        let mut dipv = std::mem::take(&mut self.scratch);
        dipv.clear();
        let g = u64::from(self.ov.granule());
        let within = (d0 % g) as usize;
        let r = if within + isz <= g as usize {
            // In the one granule that holds the inode (one lookup), changed in the copy and
            // written back only when replayed.
            let slot = &mut self.ov.granule_mut(d0 / g)?[within..within + isz];
            dipv.extend_from_slice(slot);
            let r = Self::inode_core(&self.geo, &mut self.stats, &mut dipv, it, t, &f, ld, log);
            if r.as_ref().is_ok_and(|done| *done) {
                slot.copy_from_slice(&dipv);
            }
            r
        } else {
            dipv.extend_from_slice(&self.ov.read_at(d0, isz)?);
            let r = Self::inode_core(&self.geo, &mut self.stats, &mut dipv, it, t, &f, ld, log);
            if r.as_ref().is_ok_and(|done| *done) {
                self.ov.write_bytes(d0, &dipv)?;
            }
            r
        };
        if r.as_ref().is_ok_and(|done| *done) {
            note_written(&mut self.written, f.blkno, blen);
            self.stats.inodes_replayed += 1;
        }
        self.scratch = dipv;
        r.map(|_| ())
    }

    /// The changes of an inode item to a copy of the inode, `dip`: true when replayed, false
    /// when skipped (the inode on disk is newer).
    #[allow(clippy::too_many_arguments)]
    fn inode_core(
        geo: &Geo,
        stats: &mut Stats,
        dip: &mut [u8],
        it: &Item,
        t: &Trans,
        f: &InodeFormat,
        ld: &[u8],
        log: &dyn BlockSource,
    ) -> Result<bool> {
        let n = t.native;
        let isz = geo.inodesize;
        let bad = |d: String| Error::corrupt("xfs log inode item", f.ino, f.blkno.saturating_mul(512), d);
        if BigEndian::read_u16(dip) != DINODE_MAGIC {
            return Err(bad("no inode magic in the cluster buffer".into()));
        }
        if n.u16(ld, 0) != Some(DINODE_MAGIC) {
            return Err(bad("bad log dinode magic".into()));
        }
        if dip[DI_VERSION] >= 3 {
            let lsn = BigEndian::read_u64(&dip[DI_LSN..DI_LSN + 8]);
            if lsn != 0 && lsn != u64::MAX && lsn_cmp(lsn, t.lsn) == Ordering::Greater {
                stats.inodes_skipped += 1;
                return Ok(false);
            }
        }
        if !geo.crc {
            let ld_fi = n.u16(ld, LDI_FLUSHITER).unwrap_or(0);
            let d_fi = BigEndian::read_u16(&dip[DI_FLUSHITER..DI_FLUSHITER + 2]);
            if ld_fi < d_fi && !(d_fi == 0xffff && ld_fi < 0x7fff) {
                stats.inodes_skipped += 1;
                return Ok(false);
            }
        }
        let isize_log = if geo.crc { V3_LOG_DINODE } else { V2_LOG_DINODE };
        if ld.len() > isize_log || ld.len() < V2_LOG_DINODE {
            return Err(bad(format!("log dinode of {} bytes", ld.len())));
        }
        log_dinode_to_disk(ld, dip, n, t.lsn);
        let version = dip[DI_VERSION];
        let dsz = geo.dinode_size(version);
        let litino = isz.saturating_sub(dsz);
        let forkoff = usize::from(dip[DI_FORKOFF]) * 8;
        if forkoff > litino {
            return Err(bad(format!("fork offset {forkoff} past the literal area")));
        }
        if f.fields & ILOG_DEV != 0 {
            dip[dsz..dsz + 4].copy_from_slice(&f.rdev.to_be_bytes());
        }
        if f.size > 2 {
            let dsize = if forkoff > 0 { forkoff } else { litino };
            if let Some(src) = it.regions.get(2).filter(|_| f.fields & ILOG_DFORK != 0) {
                let src = &src.bytes(log)[..];
                match f.fields & ILOG_DFORK {
                    ILOG_DDATA | ILOG_DEXT => {
                        let Some(dst) = dip.get_mut(dsz..dsz + src.len()) else {
                            return Err(bad(format!("data fork of {} bytes past the inode", src.len())));
                        };
                        dst.copy_from_slice(src);
                    }
                    ILOG_DBROOT => bmbt_to_bmdr(src, &mut dip[dsz..dsz + dsize], geo.crc).map_err(bad)?,
                    x => return Err(bad(format!("data fork fields {x:#x}"))),
                }
            }
            if f.fields & ILOG_AFORK != 0 {
                let ai = if f.fields & ILOG_DFORK != 0 { 3 } else { 2 };
                let Some(src) = it.regions.get(ai) else { return Err(bad("no attr fork region".into())) };
                let src = &src.bytes(log)[..];
                let (ap, asz) = (dsz + forkoff, litino - forkoff);
                match f.fields & ILOG_AFORK {
                    ILOG_ADATA | ILOG_AEXT => {
                        let Some(dst) = dip.get_mut(ap..ap + src.len()) else {
                            return Err(bad(format!("attr fork of {} bytes past the inode", src.len())));
                        };
                        dst.copy_from_slice(src);
                    }
                    ILOG_ABROOT => bmbt_to_bmdr(src, &mut dip[ap..ap + asz], geo.crc).map_err(bad)?,
                    x => return Err(bad(format!("attr fork fields {x:#x}"))),
                }
            }
        }
        if f.fields & (ILOG_DOWNER | ILOG_AOWNER) != 0 {
            stats.owner_changes_not_replayed += 1;
        }
        if version >= 3 {
            set_crc(dip, DINODE_CRC_OFF);
        }
        Ok(true)
    }

    /// An icreate item (`xlog_recover_icreate_commit_pass2` → `xfs_ialloc_inode_init`).
    pub(super) fn icreate(&mut self, it: &Item) -> Result<()> {
        let c = Icreate::parse(&it.regions[0].bytes(&*self.log))
            .ok_or_else(|| Error::corrupt("xfs log icreate item", 0, 0, "short icreate"))?;
        let g = self.geo;
        let g = &g;
        let bad = |d: String| Error::corrupt("xfs log icreate item", u64::from(c.agbno), 0, d);
        let (agbno, length) = (u64::from(c.agbno), u64::from(c.length));
        // One inode chunk at a time, as the kernel checks (ialloc_inos inodes, whole blocks).
        let max_inos = 64u64.max(g.inopblock);
        let count = u64::from(c.count);
        if length == 0
            || u64::from(c.ag) >= g.agcount
            || agbno + length > g.agblocks
            || c.isize as usize != g.inodesize
            || count == 0
            || count > max_inos
            || count != length * g.inopblock
        {
            return Err(bad(format!("agbno {agbno} length {length} isize {}", c.isize)));
        }
        let bpc = g.blocks_per_cluster;
        let nbufs = length / bpc;
        let bb_per_cluster = bpc * g.blocksize / 512;
        let daddr_of = |b: u64| (u64::from(c.ag) * g.agblocks + b) * (g.blocksize / 512);
        let cancelled = (0..nbufs)
            .filter(|j| self.is_cancelled(daddr_of(agbno + j * bpc), bb_per_cluster as u32))
            .count();
        if cancelled > 0 {
            self.stats.icreates_cancelled += 1;
            return Ok(());
        }
        let version: u8 = if g.crc { 3 } else { 2 };
        let per_cluster = (bpc * g.inopblock) as usize;
        let meta_uuid = g.meta_uuid;
        let isz = g.inodesize;
        for j in 0..nbufs {
            let b = agbno + j * bpc;
            let mut ino = (u64::from(c.ag) << (g.agblklog + g.inopblog)) | (b << g.inopblog);
            let mut buf = vec![0u8; per_cluster * isz];
            for i in 0..per_cluster {
                let d = &mut buf[i * isz..(i + 1) * isz];
                d[0..2].copy_from_slice(&DINODE_MAGIC.to_be_bytes());
                d[DI_VERSION] = version;
                d[DI_GEN..DI_GEN + 4].copy_from_slice(&c.generation.to_be_bytes());
                d[DI_NEXT_UNLINKED..DI_NEXT_UNLINKED + 4].copy_from_slice(&NULL_AGINO.to_be_bytes());
                if version == 3 {
                    d[DI_INO..DI_INO + 8].copy_from_slice(&ino.to_be_bytes());
                    d[DI_UUID..DI_UUID + 16].copy_from_slice(&meta_uuid);
                    ino += 1;
                    set_crc(d, DINODE_CRC_OFF);
                }
            }
            self.settle_range(daddr_of(b), bb_per_cluster, None)?;
            self.write(daddr_of(b), &buf)?;
        }
        self.stats.icreates_replayed += 1;
        Ok(())
    }
}
