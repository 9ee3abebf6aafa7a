//! ext4, read-only: superblock, group descriptors, inodes, extent trees and block maps,
//! inline data, linear and htree directories, symlinks, and metadata_csum verification.
//!
//! Damage that does not stop a read (bad checksums, pointers out of range) is recorded as
//! findings; damage that does is an [`Error::Corrupt`] naming the structure, block and byte.

pub mod csum;
pub mod dir;
pub mod extent;
pub mod fastcommit;
pub mod fcreplay;
pub mod group;
pub mod groupview;
pub mod htree;
pub mod icheck;
pub mod indirect;
pub mod inline;
pub mod inode;
pub mod journal;
pub mod orphan;
pub mod superblock;
pub mod xattr;

use crate::error::{Error, Finding, Findings, Result};
use crate::fs::{DirEntry, Extent, FileSystem, FileType, FsKind, Stat, read_by_extents};
use crate::image::BlockSource;
use group::GroupDesc;
use inode::Inode;
use serde_json::json;
use std::sync::Arc;
pub use superblock::Superblock;

/// Root directory inode.
pub const ROOT_INO: u64 = 2;
/// Group flag: inode table not initialised.
const BG_INODE_UNINIT: u16 = 1;

/// An opened ext4 file system.
pub struct Ext4 {
    src: Arc<dyn BlockSource>,
    sb: Superblock,
    groups: Vec<GroupDesc>,
    findings: Findings,
    /// What fast-commit replay changed (inodes, extent maps, directories), read over the media.
    fc: Option<Arc<fcreplay::FcPatch>>,
    /// What the mount's orphan cleanup truncates, applied over the rest.
    orphans: Option<Arc<orphan::OrphanCleanup>>,
}

/// Where one inode lives (see `Ext4::inode_location`).
struct InodeLocation<'a> {
    /// The descriptor of the inode's group.
    group: &'a GroupDesc,
    /// The inode's index within its group.
    index: u64,
    /// The inode table block holding it.
    block: u64,
    /// Its byte offset in the file system.
    offset: u64,
}

impl Ext4 {
    /// Open the file system at byte 0 of `src`.
    pub fn open(src: Arc<dyn BlockSource>) -> Result<Self> {
        let sb = Superblock::read(&*src)?;
        let findings = Findings::new();
        if sb.metadata_csum() {
            if sb.raw.s_checksum_type != 1 {
                findings.error(
                    "ext4 superblock",
                    Some(0),
                    Some(1024),
                    format!("checksum type {} (want 1, crc32c)", sb.raw.s_checksum_type),
                );
            }
            let want = sb.computed_checksum();
            let stored = sb.raw.s_checksum.get();
            if want != stored {
                findings.error(
                    "ext4 superblock",
                    Some(0),
                    Some(1024 + 0x3FC),
                    format!("checksum {stored:#010x} does not match computed {want:#010x}"),
                );
            }
        }
        if sb.raw.s_state.get() & 2 != 0 {
            findings.info("ext4 superblock", Some(0), Some(1024 + 0x3A), "file system state has errors");
        }
        let groups = group::read_all(&*src, &sb, &findings)?;
        group::verify_bitmaps(&*src, &sb, &groups, &findings);
        group::lazy_init_risk(&*src, &sb, &groups, &findings);
        Ok(Self { src, sb, groups, findings, fc: None, orphans: None })
    }

    /// The same model with a fast-commit replay patch layered over the media: inodes, extent
    /// maps and directories the replay changed are read from `patch` (see [`fcreplay`]).
    pub fn with_fast_commit(mut self, patch: fcreplay::FcPatch) -> Self {
        self.fc = Some(Arc::new(patch));
        self
    }

    /// The model after the mount's orphan cleanup ([`orphan::plan`]): orphans with links lose
    /// the blocks past their size. Returns the plan too.
    pub fn with_orphan_cleanup(mut self) -> (Self, orphan::OrphanCleanup) {
        let plan = orphan::plan(&self);
        if !plan.is_empty() {
            self.orphans = Some(Arc::new(plan.clone()));
        }
        (self, plan)
    }

    /// Whether inode `ino`'s bit is set in its group's inode bitmap (or fast-commit replay
    /// wrote the inode, which sets it: `ext4_fc_set_bitmaps_and_counters`).
    pub fn inode_in_use(&self, ino: u64) -> Result<bool> {
        if self.fc.as_ref().is_some_and(|p| p.inodes.contains_key(&ino)) {
            return Ok(true);
        }
        let loc = self.inode_location(ino)?;
        let bs = u64::from(self.sb.block_size);
        let byte = loc.index / 8;
        let at =
            loc.group.inode_bitmap.checked_mul(bs).and_then(|b| b.checked_add(byte)).ok_or_else(|| {
                Error::corrupt("ext4 inode bitmap", loc.group.inode_bitmap, 0, "block number overflows")
            })?;
        if loc.group.flags & BG_INODE_UNINIT != 0 {
            return Ok(false);
        }
        let b = self.src.read_at(at, 1)?;
        Ok(b.first().is_some_and(|v| v & (1 << (loc.index % 8)) != 0))
    }

    /// The fast-commit replay patch in use, if any.
    pub fn fast_commit_patch(&self) -> Option<&fcreplay::FcPatch> {
        self.fc.as_deref()
    }

    /// The raw bytes of inode `ino` as the media (the view) holds them, ignoring any fast-commit
    /// patch.
    pub fn raw_inode_bytes(&self, ino: u64) -> Result<Vec<u8>> {
        let offset = self.inode_location(ino)?.offset;
        Ok(self.src.read_at(offset, self.sb.inode_size as usize)?.to_vec())
    }

    /// Where inode `ino` lives: its group's descriptor, its index in the group, and the inode
    /// table block and byte offset holding it.
    fn inode_location(&self, ino: u64) -> Result<InodeLocation<'_>> {
        let sb = &self.sb;
        let count = u64::from(sb.raw.s_inodes_count.get());
        if ino == 0 || ino > count {
            return Err(Error::NotFound(format!(
                "ext4 inode {ino} (the file system has inodes 1..={count})"
            )));
        }
        let ipg = u64::from(sb.inodes_per_group);
        let g = (ino - 1) / ipg;
        let idx = (ino - 1) % ipg;
        let gd = self.groups.get(g as usize).ok_or_else(|| {
            Error::corrupt("ext4 inode", 0, 0, format!("inode {ino} is in group {g}, beyond the group count"))
        })?;
        let bs = u64::from(sb.block_size);
        let rel = idx * u64::from(sb.inode_size);
        if gd.inode_table == 0 || gd.inode_table >= sb.blocks_count {
            return Err(Error::corrupt(
                "ext4 group descriptor",
                g,
                0,
                format!("group {g}: inode table at block {} is out of range (inode {ino})", gd.inode_table),
            ));
        }
        Ok(InodeLocation {
            group: gd,
            index: idx,
            block: gd.inode_table.saturating_add(rel / bs),
            offset: gd.inode_table.saturating_mul(bs).saturating_add(rel),
        })
    }

    /// Open and return the findings of opening alongside.
    pub fn open_with_findings(src: Arc<dyn BlockSource>) -> Result<(Self, Vec<Finding>)> {
        let fs = Self::open(src)?;
        let f = fs.findings.snapshot();
        Ok((fs, f))
    }

    /// The parsed superblock.
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// The group descriptors.
    pub fn groups(&self) -> &[GroupDesc] {
        &self.groups
    }

    /// Read and decode inode `ino` (checksum verified under metadata_csum; a mismatch is a
    /// finding, not an error).
    pub fn inode(&self, ino: u64) -> Result<Inode> {
        let sb = &self.sb;
        let InodeLocation { group: gd, index: idx, block, offset } = self.inode_location(ino)?;
        let ipg = u64::from(sb.inodes_per_group);
        let isz = u64::from(sb.inode_size);
        if let Some(raw) = self.fc.as_ref().and_then(|p| p.inodes.get(&ino)) {
            // Rewritten by fast-commit replay, which also recomputed its checksum.
            return Ok(Inode::parse(ino, raw, block, offset));
        }
        let csums = sb.metadata_csum() || sb.has_ro_compat(superblock::RO_COMPAT_GDT_CSUM);
        let unused = csums
            && (gd.flags & BG_INODE_UNINIT != 0 || idx >= ipg.saturating_sub(u64::from(gd.itable_unused)));
        // Inodes in a group's never-used tail may hold stale bytes: read them as they are (as
        // debugfs and the kernel do) but do not report their checksums.
        let bytes = self.src.read_at(offset, isz as usize)?;
        let inode = Inode::parse(ino, &bytes, block, offset);
        if sb.metadata_csum() && !unused {
            let stored = inode.stored_checksum();
            let want = inode.computed_checksum(sb);
            if stored != want && bytes.iter().any(|b| *b != 0) {
                self.findings.error(
                    "ext4 inode",
                    Some(block),
                    Some(offset),
                    format!("inode {ino}: checksum {stored:#010x} does not match computed {want:#010x}"),
                );
            }
        }
        Ok(inode)
    }

    pub(crate) fn is_fast_symlink(&self, i: &Inode) -> bool {
        if FileType::from_mode(i.mode()) != FileType::Symlink || i.has_flag(inode::INLINE_DATA_FL) {
            return false;
        }
        let ea = if i.file_acl() != 0 { u64::from(self.sb.block_size / 512) } else { 0 };
        i.size() < 60 && i.blocks_512(&self.sb).saturating_sub(ea) == 0
    }

    /// Extents of a decoded inode (empty for inline data and fast symlinks).
    pub fn map_inode(&self, i: &Inode) -> Result<Vec<Extent>> {
        if i.has_flag(inode::INLINE_DATA_FL) || self.is_fast_symlink(i) {
            return Ok(vec![]);
        }
        let ft = FileType::from_mode(i.mode());
        if matches!(ft, FileType::Char | FileType::Block | FileType::Fifo | FileType::Socket) {
            return Ok(vec![]);
        }
        let mapped = self.map_unpruned(i)?;
        Ok(match &self.orphans {
            Some(o) => o.trim(i.ino, mapped),
            None => mapped,
        })
    }

    /// The extent-tree walker of inode `i`, reporting into `findings`.
    fn extent_walker<'a>(&'a self, i: &Inode, findings: &'a Findings) -> extent::Walker<'a> {
        extent::Walker {
            src: &*self.src,
            block_size: self.sb.block_size,
            blocks_count: self.sb.blocks_count,
            csum_seed: self.sb.metadata_csum().then(|| i.csum_seed(&self.sb)),
            findings,
            ino: i.ino,
        }
    }

    /// [`Ext4::map_inode`] before the orphan cleanup.
    fn map_unpruned(&self, i: &Inode) -> Result<Vec<Extent>> {
        if let Some(m) = self.fc.as_ref().and_then(|p| p.maps.get(&i.ino)) {
            return Ok(m.clone());
        }
        if i.has_flag(inode::EXTENTS_FL) {
            self.extent_walker(i, &self.findings).walk(&i.raw.i_block, i.block, i.offset)
        } else {
            let bs = u64::from(self.sb.block_size);
            let m = indirect::Mapper {
                src: &*self.src,
                block_size: self.sb.block_size,
                blocks_count: self.sb.blocks_count,
                findings: &self.findings,
                ino: i.ino,
                limit: i.size().div_ceil(bs),
            };
            m.map(&i.raw.i_block)
        }
    }

    /// The inline data of an inode: i_block followed by the `system.data` xattr value.
    pub fn inline_data(&self, i: &Inode) -> Vec<u8> {
        let mut out = i.raw.i_block.to_vec();
        match inline::parse_ibody(i.xattr_area()) {
            Ok(attrs) => out.extend(inline::system_data(&attrs)),
            Err(e) => self.findings.error(
                "ext4 inode xattr",
                Some(i.block),
                Some(i.offset + 128 + i.extra_isize() as u64),
                format!("inode {}: {e}", i.ino),
            ),
        }
        out
    }

    fn filetype(&self) -> bool {
        self.sb.has_incompat(superblock::INCOMPAT_FILETYPE)
    }

    fn read_dir_inode(&self, i: &Inode) -> Result<Vec<DirEntry>> {
        if let Some(d) = self.fc.as_ref().and_then(|p| p.dirs.get(&i.ino)) {
            return Ok(d.clone());
        }
        let mut out = Vec::new();
        let bs = self.sb.block_size as usize;
        if i.has_flag(inode::INLINE_DATA_FL) {
            let data = self.inline_data(i);
            let at = dir::Place { ino: i.ino, block: i.block, offset: i.offset + 0x28 + 4 };
            let ib = data.get(4..60).unwrap_or(&[]);
            dir::parse_entries(ib, self.filetype(), bs, at, &self.findings, &mut out);
            if let Some(rest) = data.get(60..)
                && !rest.is_empty()
            {
                let at = dir::Place { ino: i.ino, block: i.block, offset: i.offset };
                dir::parse_entries(rest, self.filetype(), bs, at, &self.findings, &mut out);
            }
            return Ok(out);
        }
        let csum = self.sb.metadata_csum();
        let seed = i.csum_seed(&self.sb);
        let htree = i.has_flag(inode::INDEX_FL);
        self.for_each_dir_block(i, |lblk, pblk, off, data| {
            let at = dir::Place { ino: i.ino, block: pblk, offset: off };
            if htree && lblk == 0 {
                htree::check_index(data, true, csum.then_some(seed), at, &self.findings);
                // The root's "." and ".." are real entries; the index is hidden in "..".
            } else if htree && dir::is_dx_node(data) {
                htree::check_index(data, false, csum.then_some(seed), at, &self.findings);
                return;
            } else if csum {
                dir::verify_leaf_tail(data, seed, at, &self.findings);
            }
            dir::parse_entries(data, self.filetype(), bs, at, &self.findings, &mut out);
        })?;
        Ok(out)
    }

    /// Every written block of directory `i` within its size: (logical block, physical block,
    /// byte offset, bytes). A block that cannot be read is a finding and is skipped.
    fn for_each_dir_block(&self, i: &Inode, mut visit: impl FnMut(u64, u64, u64, &[u8])) -> Result<()> {
        let bs = self.sb.block_size as usize;
        let nblocks = i.size().div_ceil(bs as u64);
        for e in &self.map_inode(i)? {
            if e.unwritten {
                continue;
            }
            for k in 0..e.length {
                let lblk = e.logical + k;
                if lblk >= nblocks {
                    break;
                }
                let pblk = e.physical + k;
                let off = pblk.saturating_mul(bs as u64);
                match self.src.read_at(off, bs) {
                    Ok(d) => visit(lblk, pblk, off, &d),
                    Err(err) => {
                        self.findings.error("ext4 directory block", Some(pblk), Some(off), err.to_string())
                    }
                }
            }
        }
        Ok(())
    }

    /// The first leaf block of directory `i` whose checksum tail fails (metadata_csum), if any:
    /// the kernel's readdir and lookups in that directory then fail with EFSBADCRC
    /// (`ext4_dirblock_csum_verify` in `htree_dirblock_to_tree` and `__ext4_find_entry`).
    fn failing_dir_block(&self, i: &Inode) -> Result<Option<u64>> {
        if !self.sb.metadata_csum()
            || i.has_flag(inode::INLINE_DATA_FL)
            || self.fc.as_ref().is_some_and(|p| p.dirs.contains_key(&i.ino))
        {
            return Ok(None);
        }
        let seed = i.csum_seed(&self.sb);
        let htree = i.has_flag(inode::INDEX_FL);
        let mut bad = None;
        self.for_each_dir_block(i, |lblk, pblk, _, data| {
            let index = htree && (lblk == 0 || dir::is_dx_node(data));
            if bad.is_none() && !index && !dir::leaf_tail_ok(data, seed) {
                bad = Some(pblk);
            }
        })?;
        Ok(bad)
    }

    fn info_json(&self) -> serde_json::Value {
        let sb = &self.sb;
        let r = &sb.raw;
        let state = r.s_state.get();
        let uuid = fmt_uuid(&r.s_uuid);
        json!({
            "fs": "ext4",
            "uuid": uuid,
            "label": sb.label(),
            "last_mounted": superblock::cstr(&r.s_last_mounted),
            "geometry": {
                "block_size": sb.block_size,
                "blocks_count": sb.blocks_count,
                "inodes_count": r.s_inodes_count.get(),
                "groups_count": sb.groups_count,
                "blocks_per_group": sb.blocks_per_group,
                "inodes_per_group": sb.inodes_per_group,
                "first_data_block": sb.first_data_block,
                "inode_size": sb.inode_size,
                "desc_size": sb.desc_size,
                "first_ino": r.s_first_ino.get(),
                "rev_level": r.s_rev_level.get(),
                "log_groups_per_flex": r.s_log_groups_per_flex,
                "reserved_gdt_blocks": r.s_reserved_gdt_blocks.get(),
                "first_meta_bg": r.s_first_meta_bg.get(),
            },
            "free": {
                "blocks": u64::from(r.s_free_blocks_count_lo.get()) | if sb.has_incompat(superblock::INCOMPAT_64BIT) { u64::from(r.s_free_blocks_count_hi.get()) << 32 } else { 0 },
                "inodes": r.s_free_inodes_count.get(),
            },
            "features": {
                "compat": superblock::feature_names(sb.compat(), superblock::COMPAT_NAMES),
                "incompat": superblock::feature_names(sb.incompat(), superblock::INCOMPAT_NAMES),
                "ro_compat": superblock::feature_names(sb.ro_compat(), superblock::RO_COMPAT_NAMES),
            },
            "state": if state & 2 != 0 { "errors" } else if state & 1 != 0 { "clean" } else { "not clean" },
            "state_raw": state,
            "journal": {
                "has_journal": sb.has_journal(),
                "inode": sb.journal_inum(),
                "device": sb.journal_dev(),
                "uuid": fmt_uuid(&r.s_journal_uuid),
                "needs_recovery": sb.needs_recovery(),
            },
            "mounts": {
                "mount_count": r.s_mnt_count.get(),
                "max_mount_count": r.s_max_mnt_count.get() as i16,
                "mtime": time_hi(r.s_mtime.get(), r.s_mtime_hi),
                "wtime": time_hi(r.s_wtime.get(), r.s_wtime_hi),
                "mkfs_time": time_hi(r.s_mkfs_time.get(), r.s_mkfs_time_hi),
                "lastcheck": time_hi(r.s_lastcheck.get(), r.s_lastcheck_hi),
            },
            "checksum": {
                "metadata_csum": sb.metadata_csum(),
                "seed": format!("{:#010x}", sb.csum_seed),
                "stored": format!("{:#010x}", r.s_checksum.get()),
            },
            "errors": {
                "count": r.s_error_count.get(),
                "first_ino": r.s_first_error_ino.get(),
                "first_block": r.s_first_error_block.get(),
                "last_ino": r.s_last_error_ino.get(),
                "last_block": r.s_last_error_block.get(),
            },
        })
    }
}

fn time_hi(lo: u32, hi: u8) -> u64 {
    u64::from(lo) | (u64::from(hi) << 32)
}

/// A UUID in the usual 8-4-4-4-12 form.
pub fn fmt_uuid(u: &[u8; 16]) -> String {
    let h = hex::encode(u);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

impl FileSystem for Ext4 {
    fn kind(&self) -> FsKind {
        FsKind::Ext4
    }
    fn block_size(&self) -> u32 {
        self.sb.block_size
    }
    fn root_ino(&self) -> u64 {
        ROOT_INO
    }
    fn source(&self) -> &dyn BlockSource {
        &*self.src
    }
    fn info(&self) -> serde_json::Value {
        self.info_json()
    }
    fn type_and_size(&self, ino: u64) -> Result<(FileType, u64)> {
        let i = self.inode(ino)?;
        Ok((FileType::from_mode(i.mode()), i.size()))
    }
    fn stat(&self, ino: u64) -> Result<Stat> {
        let i = self.inode(ino)?;
        let sb = &self.sb;
        let mode = i.mode();
        let ft = FileType::from_mode(mode);
        let (rdev, device) = if matches!(ft, FileType::Char | FileType::Block) {
            let b = &i.raw.i_block;
            let old = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let new = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            // ext4_iget: old_decode_dev(i_block[0]) when it is set, else
            // new_decode_dev(i_block[1]).
            let (major, minor) = if old != 0 {
                ((old >> 8) & 0xff, old & 0xff)
            } else {
                ((new & 0xfff00) >> 8, (new & 0xff) | ((new >> 12) & 0xfff00))
            };
            (
                Some(u64::from(if old != 0 { old } else { new })),
                Some(crate::fs::DeviceNumber { major, minor }),
            )
        } else {
            (None, None)
        };
        let mut extra = serde_json::Map::new();
        extra.insert("flags_names".into(), json!(i.flag_names()));
        extra.insert("file_acl".into(), json!(i.file_acl()));
        extra.insert("dtime".into(), json!(i.raw.i_dtime.get()));
        extra.insert("extra_isize".into(), json!(i.extra_isize()));
        extra.insert("checksum".into(), json!(format!("{:#010x}", i.stored_checksum())));
        extra.insert("version".into(), json!(i.raw.i_version.get()));
        extra.insert("inode_block".into(), json!(i.block));
        extra.insert("inode_offset".into(), json!(i.offset));
        if i.has_flag(inode::INLINE_DATA_FL) {
            extra.insert("inline_size".into(), json!(self.inline_data(&i).len()));
        }
        if let Some(p) = i.projid() {
            extra.insert("projid".into(), json!(p));
        }
        Ok(Stat {
            ino,
            file_type: ft,
            mode,
            nlink: i.links(),
            uid: i.uid(),
            gid: i.gid(),
            size: i.size(),
            blocks_512: i.blocks_512(sb),
            atime: i.atime(),
            mtime: i.mtime(),
            ctime: i.ctime(),
            crtime: i.crtime(),
            generation: i.generation(),
            flags: u64::from(i.flags()),
            rdev,
            device,
            extra,
        })
    }
    fn map(&self, ino: u64) -> Result<Vec<Extent>> {
        let i = self.inode(ino)?;
        self.map_inode(&i)
    }
    fn read_dir(&self, ino: u64) -> Result<Vec<DirEntry>> {
        let i = self.inode(ino)?;
        if FileType::from_mode(i.mode()) != FileType::Dir {
            return Err(Error::Usage(format!("inode {ino} is not a directory")));
        }
        self.read_dir_inode(&i)
    }
    fn removed_entries(&self, ino: u64) -> Result<Vec<crate::fs::RemovedDirEntry>> {
        let i = self.inode(ino)?;
        if FileType::from_mode(i.mode()) != FileType::Dir {
            return Err(Error::Usage(format!("inode {ino} is not a directory")));
        }
        let mut out = Vec::new();
        // Inline directories have no slack debugfs searches (it lists only their live entries).
        if i.has_flag(inode::INLINE_DATA_FL) {
            return Ok(out);
        }
        self.for_each_dir_block(&i, |_, pblk, _, data| {
            for r in dir::removed_entries(data, self.filetype()) {
                out.push(crate::fs::RemovedDirEntry {
                    name: r.name,
                    ino: u64::from(r.inode),
                    rec_len: r.rec_len as u64,
                    block: pblk,
                    offset: r.offset as u64,
                });
            }
        })?;
        Ok(out)
    }
    fn read_link(&self, ino: u64) -> Result<Vec<u8>> {
        let i = self.inode(ino)?;
        if FileType::from_mode(i.mode()) != FileType::Symlink {
            return Err(Error::Usage(format!("inode {ino} is not a symbolic link")));
        }
        let size = i.size();
        if size > u64::from(self.sb.block_size) {
            return Err(Error::corrupt(
                "ext4 symlink",
                i.block,
                i.offset,
                format!("inode {ino}: target length {size} exceeds a block"),
            ));
        }
        if self.is_fast_symlink(&i) {
            return Ok(i.raw.i_block[..size as usize].to_vec());
        }
        if i.has_flag(inode::INLINE_DATA_FL) {
            let d = self.inline_data(&i);
            return Ok(d.get(..size as usize).unwrap_or(&d).to_vec());
        }
        let ext = self.map_inode(&i)?;
        read_by_extents(&*self.src, self.sb.block_size, size, &ext, 0, size as usize)
    }
    fn read(&self, ino: u64, offset: u64, len: usize) -> Result<Vec<u8>> {
        let i = self.inode(ino)?;
        let size = i.size();
        if i.has_flag(inode::INLINE_DATA_FL) {
            let d = self.inline_data(&i);
            if offset >= size {
                return Ok(vec![]);
            }
            let end = (offset.saturating_add(len as u64)).min(size);
            let mut out = vec![0u8; (end - offset) as usize];
            for (k, b) in out.iter_mut().enumerate() {
                *b = d.get(offset as usize + k).copied().unwrap_or(0);
            }
            return Ok(out);
        }
        let ext = self.map_inode(&i)?;
        read_by_extents(&*self.src, self.sb.block_size, size, &ext, offset, len)
    }
    fn findings(&self) -> Vec<Finding> {
        self.findings.snapshot()
    }
    fn icheck(&self, blocks: &[u64]) -> Result<Vec<Option<u64>>> {
        Ext4::icheck(self, blocks)
    }
    fn xattrs(&self, ino: u64) -> Result<Vec<crate::fs::Xattr>> {
        Ext4::xattrs(self, ino)
    }
    /// `ext4_lookup` then `__ext4_iget` (EXT4_IGET_NORMAL): a bad inode number, an inode without
    /// links ("deleted inode referenced", EFSCORRUPTED), or one whose checksum fails ("iget:
    /// checksum invalid", EFSBADCRC) cannot be looked up.
    fn lookup_check(&self, ino: u64) -> Result<()> {
        let sb = &self.sb;
        let first = u64::from(sb.raw.s_first_ino.get());
        let count = u64::from(sb.raw.s_inodes_count.get());
        if !(ino == ROOT_INO || (first..=count).contains(&ino)) {
            return Err(Error::corrupt(
                "ext4 directory entry",
                0,
                0,
                format!("bad inode number: {ino} (ext4_lookup, EFSCORRUPTED)"),
            ));
        }
        let i = self.inode(ino)?;
        if i.links() == 0 {
            return Err(Error::corrupt(
                "ext4 inode",
                i.block,
                i.offset,
                format!(
                    "deleted inode referenced: {ino} (ext4_lookup: __ext4_iget finds no links, EFSCORRUPTED)"
                ),
            ));
        }
        let patched = self.fc.as_ref().is_some_and(|p| p.inodes.contains_key(&ino));
        if sb.metadata_csum() && !patched && i.stored_checksum() != i.computed_checksum(sb) {
            return Err(Error::corrupt(
                "ext4 inode",
                i.block,
                i.offset,
                format!("inode {ino}: iget: checksum invalid (__ext4_iget, EFSBADCRC)"),
            ));
        }
        Ok(())
    }

    /// `ext4_find_extent` checks every extent-tree node it reads (`__ext4_ext_check`: magic,
    /// counts, depth, checksum): a node that fails makes reads and FIEMAP of the file fail with
    /// EFSCORRUPTED or EFSBADCRC, where this model skips the node with a finding.
    fn read_check(&self, ino: u64) -> Result<()> {
        let i = self.inode(ino)?;
        if !i.has_flag(inode::EXTENTS_FL)
            || i.has_flag(inode::INLINE_DATA_FL)
            || self.fc.as_ref().is_some_and(|p| p.maps.contains_key(&ino))
        {
            return Ok(());
        }
        let local = Findings::new();
        self.extent_walker(&i, &local).walk(&i.raw.i_block, i.block, i.offset)?;
        match local.snapshot().into_iter().find(|f| f.severity == crate::error::Severity::Error) {
            None => Ok(()),
            Some(f) => Err(Error::corrupt(
                "ext4 extent tree",
                f.block.unwrap_or(i.block),
                f.offset.unwrap_or(i.offset),
                format!("inode {ino}: {} (ext4_find_extent fails the read)", f.message),
            )),
        }
    }

    fn readdir_check(&self, ino: u64) -> Result<()> {
        let i = self.inode(ino)?;
        match self.failing_dir_block(&i)? {
            None => Ok(()),
            Some(b) => Err(Error::corrupt(
                "ext4 directory block",
                b,
                b.saturating_mul(u64::from(self.sb.block_size)),
                format!(
                    "directory inode {ino}: Directory block failed checksum (htree_dirblock_to_tree, EFSBADCRC)"
                ),
            )),
        }
    }
}
