//! Fast-commit replay, in memory, at the level of the file-system model.
//!
//! The kernel replays the tags of the fast-commit area (see [`super::fastcommit`]) after
//! the jbd2 passes, tag by tag, through its ordinary inode, extent-tree and directory code
//! (`ext4_fc_replay` in fs/ext4/fast_commit.c). daxray does not write blocks for this: it keeps a
//! per-inode patch layer ([`FcPatch`]) that [`super::Ext4`] consults on every read:
//!
//! - raw inode bytes: what an INODE tag leaves in the inode table (bytes `0..40` and
//!   `100..len` from the tag, `i_block` kept from the media unless the inode is inline; an
//!   extent inode whose `i_block` has no extent magic gets an empty root), plus the link-count
//!   changes LINK, UNLINK and CREAT make;
//! - extent maps: the media's map (through the jbd2-recovered view) edited in tag order, ADD_RANGE
//!   mapping its range to its blocks with its written/unwritten state whatever was mapped
//!   before, DEL_RANGE punching its range;
//! - directory entry lists: the media's entries with LINK/CREAT additions (unless the name
//!   exists) and UNLINK removals (only when the name points at the tag's inode), and new
//!   directories (CREAT of a directory) that start empty.
//!
//! Why the model level and not blocks: the kernel allocates new blocks while replaying
//! (extent-tree splits, the first block of a new directory) with a replay-time allocator whose
//! choices depend on bitmaps the replay itself rewrites; file contents, sizes and extent maps do
//! not depend on those choices, so the patch layer reproduces what the kernel shows for every
//! regular file without guessing block placement. What is deliberately not emulated is named in
//! [`FcReplay::not_emulated`]: block and inode bitmaps and group counters
//! (`ext4_fc_set_bitmaps_and_counters`), the physical place of new directory blocks and
//! extent-tree blocks, and `i_blocks` (recomputed from the data blocks only). The orphan cleanup
//! that follows is [`super::orphan`]'s.
//!
//! Every loop is bounded by the tags given (themselves bounded by the fast-commit area), and
//! every on-disk value is checked before use: hostile tags give findings, never panics.

use super::Ext4;
use super::fastcommit::{
    FcTag, TAG_ADD_RANGE, TAG_CREAT, TAG_DEL_RANGE, TAG_INODE, TAG_LINK, TAG_UNLINK, tag_name,
};
use super::inode::{EXTENTS_FL, INLINE_DATA_FL, Inode, RawInode};
use crate::fs::{DirEntry, Extent, FileSystem, FileType};
use byteorder::{ByteOrder, LE};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::mem::offset_of;

/// Extent tree magic (`EXT4_EXT_MAGIC`).
const EXT_MAGIC: u16 = 0xF30A;
/// Offset of `i_block` in the raw inode.
const I_BLOCK: usize = offset_of!(RawInode, i_block);
/// Offset of `i_generation`, where the second copied span starts.
const I_GENERATION: usize = offset_of!(RawInode, i_generation);
/// Offset of `i_links_count`.
const I_LINKS: usize = offset_of!(RawInode, i_links_count);
/// Offset of `i_flags`.
const I_FLAGS: usize = offset_of!(RawInode, i_flags);
/// Offset of `i_size_lo`.
const I_SIZE_LO: usize = offset_of!(RawInode, i_size_lo);
/// Offset of `i_size_high`.
const I_SIZE_HI: usize = offset_of!(RawInode, i_size_high);
/// Offset of `i_blocks_lo`.
const I_BLOCKS_LO: usize = offset_of!(RawInode, i_blocks_lo);
/// Offset of `l_i_blocks_high`.
const I_BLOCKS_HI: usize = offset_of!(RawInode, l_i_blocks_high);
/// `EXT_MAX_BLOCKS`: logical blocks at or past it are refused by `ext4_map_blocks`.
const EXT_MAX_BLOCKS: u64 = 0xFFFF_FFFF;
/// Cap on extents one inode's patched map may hold (each tag adds at most two).
const MAX_EXTENTS: usize = 1 << 20;

/// What fast-commit replay changed, consulted by [`Ext4`] reads.
#[derive(Debug, Clone, Default)]
pub struct FcPatch {
    /// Raw inode bytes (the file system's inode size) of inodes the replay rewrote.
    pub inodes: BTreeMap<u64, Vec<u8>>,
    /// Extent maps of inodes the replay touched, sorted by logical block.
    pub maps: BTreeMap<u64, Vec<Extent>>,
    /// Entry lists ("." and ".." left out, as [`FileSystem::read_dir`] does) of directories the
    /// replay changed.
    pub dirs: BTreeMap<u64, Vec<DirEntry>>,
    /// Directories created by the replay (their block is placed by the kernel's replay allocator).
    pub new_dirs: BTreeSet<u64>,
}

/// What the replay did, for reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FcReplay {
    /// Tags replayed with an effect, per tag type.
    pub applied: BTreeMap<&'static str, usize>,
    /// Tags the kernel replays without effect (inode not found, name exists, not an extent
    /// inode...), per tag type.
    pub no_effect: BTreeMap<&'static str, usize>,
    /// Inodes whose inode, extents or entries the replay changed.
    pub inodes_touched: Vec<u64>,
    /// Directories whose entries changed.
    pub dirs_touched: Vec<u64>,
    /// The kernel error that stops the replay (and makes the mount fail), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the kernel does at this point that daxray deliberately does not emulate.
    pub not_emulated: Vec<String>,
    /// Problems met while reading the media for the replay.
    pub problems: Vec<String>,
}

/// The replay state over the jbd2-recovered model `base`.
struct State<'a> {
    base: &'a Ext4,
    patch: FcPatch,
    /// Extent maps being edited, keyed by logical block (range edits in O(log n) each).
    maps: BTreeMap<u64, ExtentMap>,
    /// Directories being edited: name -> (order, entry); the order keeps the media's listing
    /// order, with additions after it.
    dirs: BTreeMap<u64, BTreeMap<Vec<u8>, (u64, DirEntry)>>,
    next_order: u64,
    out: FcReplay,
    touched: BTreeSet<u64>,
    dirs_touched: BTreeSet<u64>,
}

/// An extent map keyed by first logical block; extents never overlap.
type ExtentMap = BTreeMap<u64, Extent>;

/// Replay the valid tags of `tags` (those with `valid` set, in order) over `base`, the model of
/// the jbd2-recovered view. Returns the patch to install with [`Ext4::with_fast_commit`] and the
/// report.
pub fn replay(base: &Ext4, tags: &[FcTag]) -> (FcPatch, FcReplay) {
    let mut st = State {
        base,
        patch: FcPatch::default(),
        maps: BTreeMap::new(),
        dirs: BTreeMap::new(),
        next_order: 0,
        out: FcReplay::default(),
        touched: BTreeSet::new(),
        dirs_touched: BTreeSet::new(),
    };
    for t in tags.iter().filter(|t| t.valid) {
        let r = match t.kind {
            TAG_INODE => st.inode_tag(&t.value),
            TAG_ADD_RANGE => st.add_range(&t.value),
            TAG_DEL_RANGE => st.del_range(&t.value),
            TAG_LINK => st.link_tag(&t.value),
            TAG_UNLINK => st.unlink_tag(&t.value),
            TAG_CREAT => st.creat_tag(&t.value),
            _ => continue,
        };
        let name = tag_name(t.kind);
        match r {
            Ok(true) => *st.out.applied.entry(name).or_default() += 1,
            Ok(false) => *st.out.no_effect.entry(name).or_default() += 1,
            Err(e) => {
                st.out.error =
                    Some(format!("{name} tag at journal block {} +{}: {e}", t.journal_block, t.offset));
                break;
            }
        }
    }
    for (ino, m) in std::mem::take(&mut st.maps) {
        st.patch.maps.insert(ino, m.into_values().collect());
    }
    for (ino, d) in std::mem::take(&mut st.dirs) {
        let mut v: Vec<(u64, DirEntry)> = d.into_values().collect();
        v.sort_by_key(|(o, _)| *o);
        st.patch.dirs.insert(ino, v.into_iter().map(|(_, e)| e).collect());
    }
    st.out.inodes_touched = st.touched.iter().copied().collect();
    st.out.dirs_touched = st.dirs_touched.iter().copied().collect();
    st.out.not_emulated = vec![
        "block and inode bitmaps and group counters (ext4_fc_set_bitmaps_and_counters)".into(),
        "the physical place of blocks the kernel allocates while replaying (new directory blocks, extent-tree blocks)".into(),
        "i_blocks (recomputed from the data blocks, without extent-tree blocks)".into(),
    ];
    if !st.patch.new_dirs.is_empty() {
        st.out.not_emulated.push(format!(
            "the blocks of directories created by fast commits ({}): their entries are listed, their extent maps are empty",
            st.patch.new_dirs.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
        ));
    }
    (st.patch, st.out)
}

fn u32_at(v: &[u8], at: usize) -> Option<u32> {
    v.get(at..at + 4).map(LE::read_u32)
}

/// Parent, inode and name of a dentry tag (`struct ext4_fc_dentry_info`).
fn dentry(v: &[u8]) -> Option<(u64, u64, Vec<u8>)> {
    Some((u64::from(u32_at(v, 0)?), u64::from(u32_at(v, 4)?), v.get(8..)?.to_vec()))
}

/// Map `[lblk, lblk + len)` to `to` (physical start, unwritten), or unmap it (`None`).
fn set_range(map: &mut ExtentMap, lblk: u64, len: u64, to: Option<(u64, bool)>) {
    let end = lblk.saturating_add(len);
    let mut hit: Vec<u64> = vec![];
    if let Some((&k, e)) = map.range(..lblk).next_back()
        && e.logical.saturating_add(e.length) > lblk
    {
        hit.push(k);
    }
    hit.extend(map.range(lblk..end).map(|(&k, _)| k));
    for k in hit {
        let Some(e) = map.remove(&k) else { continue };
        let e_end = e.logical.saturating_add(e.length);
        if e.logical < lblk {
            map.insert(e.logical, Extent { length: lblk - e.logical, ..e });
        }
        if e_end > end {
            let skip = end - e.logical;
            let tail = Extent {
                logical: end,
                physical: e.physical.saturating_add(skip),
                length: e_end - end,
                unwritten: e.unwritten,
            };
            map.insert(end, tail);
        }
    }
    if let Some((physical, unwritten)) = to
        && len > 0
    {
        map.insert(lblk, Extent { logical: lblk, physical, length: len, unwritten });
    }
}

impl State<'_> {
    fn inodes_count(&self) -> u64 {
        u64::from(self.base.superblock().raw.s_inodes_count.get())
    }

    fn first_ino(&self) -> u64 {
        let sb = self.base.superblock();
        if sb.raw.s_rev_level.get() == 0 { 11 } else { u64::from(sb.raw.s_first_ino.get()) }
    }

    /// The current raw bytes of inode `ino` (patched, else the media's).
    fn raw(&self, ino: u64) -> Option<Vec<u8>> {
        if let Some(r) = self.patch.inodes.get(&ino) {
            return Some(r.clone());
        }
        self.base.raw_inode_bytes(ino).ok()
    }

    /// Whether the kernel's `ext4_iget(ino, EXT4_IGET_NORMAL)` succeeds: a normal inode number in
    /// range with a link count (inodes without links are "stale" outside orphan processing) and a
    /// known file type; returns the inode's current raw bytes then.
    fn iget(&self, ino: u64) -> Option<Vec<u8>> {
        if ino == 0 || ino > self.inodes_count() || (ino < self.first_ino() && ino != super::ROOT_INO) {
            return None;
        }
        let raw = self.raw(ino)?;
        Self::readable(&raw).then_some(raw)
    }

    /// A link count and a known file type (`ext4_iget` refuses a "bogus i_mode").
    fn readable(raw: &[u8]) -> bool {
        let links = raw.get(I_LINKS..I_LINKS + 2).map(LE::read_u16).unwrap_or(0);
        links != 0 && !matches!(FileType::from_mode(Self::mode(raw)), FileType::Unknown)
    }

    fn flags(raw: &[u8]) -> u32 {
        u32_at(raw, I_FLAGS).unwrap_or(0)
    }

    fn mode(raw: &[u8]) -> u16 {
        raw.get(..2).map(LE::read_u16).unwrap_or(0)
    }

    /// The extent map of `ino` being edited (loaded from the media's through the recovered view
    /// on first use).
    fn map_mut(&mut self, ino: u64) -> &mut ExtentMap {
        if !self.maps.contains_key(&ino) {
            let m = match self.base.inode(ino) {
                Ok(i) => match self.base.map_inode(&i) {
                    Ok(m) => m,
                    Err(e) => {
                        self.out
                            .problems
                            .push(format!("inode {ino}: extent map unreadable, taken as empty: {e}"));
                        vec![]
                    }
                },
                Err(_) => vec![],
            };
            // Overlapping extents (corrupt media) keep the first one per logical block.
            let mut map = ExtentMap::new();
            for e in m {
                map.entry(e.logical).or_insert(e);
            }
            self.maps.insert(ino, map);
        }
        self.touched.insert(ino);
        // OK to unwrap because the map was inserted just above when missing.
        self.maps.get_mut(&ino).unwrap()
    }

    /// Store new raw bytes for `ino` (its map, read from the media first, stays consistent).
    fn set_raw(&mut self, ino: u64, raw: Vec<u8>) {
        self.map_mut(ino);
        self.touched.insert(ino);
        self.patch.inodes.insert(ino, raw);
    }

    /// Set the link count of `ino` in its raw bytes.
    fn set_links(&mut self, ino: u64, mut raw: Vec<u8>, links: u16) {
        if let Some(b) = raw.get_mut(I_LINKS..I_LINKS + 2) {
            LE::write_u16(b, links);
        }
        self.set_raw(ino, raw);
    }

    /// The entries of directory `dir` being edited (loaded from the media on first use).
    fn dir_mut(&mut self, dir: u64) -> &mut BTreeMap<Vec<u8>, (u64, DirEntry)> {
        if !self.dirs.contains_key(&dir) {
            let d = match self.base.read_dir(dir) {
                Ok(d) => d,
                Err(e) => {
                    self.out
                        .problems
                        .push(format!("directory inode {dir}: entries unreadable, taken as empty: {e}"));
                    vec![]
                }
            };
            let mut m = BTreeMap::new();
            for e in d {
                self.next_order += 1;
                m.entry(e.name.clone()).or_insert((self.next_order, e));
            }
            self.dirs.insert(dir, m);
        }
        // OK to unwrap because the directory was inserted just above when missing.
        self.dirs.get_mut(&dir).unwrap()
    }

    fn dir_changed(&mut self, dir: u64) {
        self.dirs_touched.insert(dir);
        self.touched.insert(dir);
    }

    /// `ext4_fc_replay_inode`.
    fn inode_tag(&mut self, v: &[u8]) -> Result<bool, String> {
        let Some(ino) = u32_at(v, 0).map(u64::from) else { return Ok(false) };
        let fc = v.get(4..).unwrap_or(&[]);
        // ext4_get_fc_inode_loc fails for numbers outside the inode tables.
        if ino == 0 || ino > self.inodes_count() {
            return Ok(false);
        }
        let Some(disk) = self.raw(ino) else { return Ok(false) };
        self.map_mut(ino);
        let mut raw = disk;
        let n = fc.len().min(raw.len());
        if n < I_GENERATION {
            return Ok(false);
        }
        raw[..I_BLOCK].copy_from_slice(&fc[..I_BLOCK]);
        raw[I_GENERATION..n].copy_from_slice(&fc[I_GENERATION..n]);
        let flags = Self::flags(&raw);
        if flags & EXTENTS_FL != 0 {
            if LE::read_u16(&raw[I_BLOCK..]) != EXT_MAGIC {
                // An empty extent root: magic, 0 entries, eh_max 4, depth 0.
                raw[I_BLOCK..I_BLOCK + 12].fill(0);
                LE::write_u16(&mut raw[I_BLOCK..], EXT_MAGIC);
                LE::write_u16(&mut raw[I_BLOCK + 4..], 4);
                self.map_mut(ino).clear();
            }
        } else if flags & INLINE_DATA_FL != 0 {
            raw[I_BLOCK..I_GENERATION].copy_from_slice(&fc[I_BLOCK..I_GENERATION]);
            self.map_mut(ino).clear();
        }
        // The kernel reads the inode back; failing that, the replay stops with EFSCORRUPTED.
        if !Self::readable(&raw) || (ino < self.first_ino() && ino != super::ROOT_INO) {
            self.set_raw(ino, raw);
            return Err(format!(
                "inode {ino} cannot be read back after the INODE tag (no links, or no known file type): the kernel's replay fails with EFSCORRUPTED"
            ));
        }
        // i_blocks: the kernel recounts it from the extent tree (ext4_ext_replay_set_iblocks).
        if flags & INLINE_DATA_FL == 0 {
            let data: u64 = self.map_mut(ino).values().map(|e| e.length).sum();
            let bs = u64::from(self.base.superblock().block_size);
            let sectors = data.saturating_mul(bs / 512);
            LE::write_u32(&mut raw[I_BLOCKS_LO..], sectors as u32);
            if let Some(b) = raw.get_mut(I_BLOCKS_HI..I_BLOCKS_HI + 2) {
                LE::write_u16(b, (sectors >> 32) as u16);
            }
        }
        self.set_checksum(ino, &mut raw);
        self.set_raw(ino, raw);
        Ok(true)
    }

    /// Recompute the inode checksum, as the kernel does after replaying an inode.
    fn set_checksum(&self, ino: u64, raw: &mut [u8]) {
        let sb = self.base.superblock();
        if !sb.metadata_csum() {
            return;
        }
        let i = Inode::parse(ino, raw, 0, 0);
        let c = i.computed_checksum(sb);
        if let Some(b) = raw.get_mut(0x7C..0x7E) {
            LE::write_u16(b, c as u16);
        }
        if i.extra_isize() >= 4
            && let Some(b) = raw.get_mut(0x82..0x84)
        {
            LE::write_u16(b, (c >> 16) as u16);
        }
    }

    /// `ext4_fc_replay_add_range`.
    fn add_range(&mut self, v: &[u8]) -> Result<bool, String> {
        let (Some(ino), Some(lblk), Some(raw_len), Some(hi), Some(lo)) = (
            u32_at(v, 0),
            u32_at(v, 4),
            v.get(8..10).map(LE::read_u16),
            v.get(10..12).map(LE::read_u16),
            u32_at(v, 12),
        ) else {
            return Ok(false);
        };
        let ino = u64::from(ino);
        let Some(raw) = self.iget(ino) else { return Ok(false) };
        if Self::flags(&raw) & EXTENTS_FL == 0 {
            // The kernel's extent calls fail on an inode without an extent tree.
            return Ok(false);
        }
        let unwritten = raw_len > 32768;
        let len = u64::from(if unwritten { raw_len - 32768 } else { raw_len });
        let pblk = (u64::from(hi) << 32) | u64::from(lo);
        let start = u64::from(lblk);
        // ext4_map_blocks refuses logical blocks at or past EXT_MAX_BLOCKS.
        let len = len.min(EXT_MAX_BLOCKS.saturating_sub(start));
        if len == 0 {
            return Ok(false);
        }
        let m = self.map_mut(ino);
        if m.len() >= MAX_EXTENTS {
            return Ok(false);
        }
        set_range(m, start, len, Some((pblk, unwritten)));
        Ok(true)
    }

    /// `ext4_fc_replay_del_range`.
    fn del_range(&mut self, v: &[u8]) -> Result<bool, String> {
        let (Some(ino), Some(lblk), Some(len)) = (u32_at(v, 0), u32_at(v, 4), u32_at(v, 8)) else {
            return Ok(false);
        };
        let ino = u64::from(ino);
        let Some(raw) = self.iget(ino) else { return Ok(false) };
        if Self::flags(&raw) & EXTENTS_FL == 0 {
            return Ok(false);
        }
        // ext4_ext_remove_space(lblk, lblk + len - 1), in 32-bit arithmetic like the kernel.
        let last = lblk.wrapping_add(len).wrapping_sub(1);
        if len == 0 || last < lblk {
            return Ok(false);
        }
        set_range(self.map_mut(ino), u64::from(lblk), u64::from(last - lblk) + 1, None);
        Ok(true)
    }

    /// `__ext4_link` during replay: add `name` -> `ino` to `dir` unless the name exists, and count
    /// the link. Returns whether an entry was added.
    fn link(&mut self, dir: u64, name: Vec<u8>, ino: u64) -> bool {
        let Some(draw) = self.iget(dir) else { return false };
        if FileType::from_mode(Self::mode(&draw)) != FileType::Dir {
            return false;
        }
        let Some(raw) = self.iget(ino) else { return false };
        if self.dir_mut(dir).contains_key(&name) {
            return false;
        }
        let ft = self.base.superblock().has_incompat(super::superblock::INCOMPAT_FILETYPE);
        let e = DirEntry {
            name: name.clone(),
            ino,
            file_type: ft.then(|| FileType::from_mode(Self::mode(&raw))),
        };
        self.next_order += 1;
        let order = self.next_order;
        self.dir_mut(dir).insert(name, (order, e));
        self.dir_changed(dir);
        let links = LE::read_u16(&raw[I_LINKS..]);
        self.set_links(ino, raw, links.saturating_add(1));
        true
    }

    /// `ext4_fc_replay_link`.
    fn link_tag(&mut self, v: &[u8]) -> Result<bool, String> {
        let Some((dir, ino, name)) = dentry(v) else { return Ok(false) };
        Ok(self.link(dir, name, ino))
    }

    /// `ext4_fc_replay_unlink` (`__ext4_unlink` without a dentry).
    fn unlink_tag(&mut self, v: &[u8]) -> Result<bool, String> {
        let Some((dir, ino, name)) = dentry(v) else { return Ok(false) };
        let Some(raw) = self.iget(ino) else { return Ok(false) };
        if self.iget(dir).is_none() {
            return Ok(false);
        }
        let d = self.dir_mut(dir);
        let Some((_, e)) = d.get(&name) else { return Ok(false) };
        // A name now pointing at another inode (renamed over) stays; the link is dropped anyway.
        if e.ino == ino {
            d.remove(&name);
            self.dir_changed(dir);
        }
        let links = LE::read_u16(&raw[I_LINKS..]).saturating_sub(1);
        let mut raw = raw;
        if links == 0 {
            // The last link: the inode is evicted and deleted (truncated to nothing).
            LE::write_u32(&mut raw[I_SIZE_LO..], 0);
            if let Some(b) = raw.get_mut(I_SIZE_HI..I_SIZE_HI + 4) {
                LE::write_u32(b, 0);
            }
            self.map_mut(ino).clear();
        }
        self.set_links(ino, raw, links);
        Ok(true)
    }

    /// `ext4_fc_replay_create`.
    fn creat_tag(&mut self, v: &[u8]) -> Result<bool, String> {
        let Some((dir, ino, name)) = dentry(v) else { return Ok(false) };
        // ext4_mark_inode_used fails for numbers outside the inode tables.
        if ino == 0 || ino > self.inodes_count() {
            return Ok(false);
        }
        let Some(raw) = self.iget(ino) else {
            return Err(format!("inode {ino} cannot be read: the kernel's replay fails with EINVAL"));
        };
        if FileType::from_mode(Self::mode(&raw)) == FileType::Dir {
            if self.iget(dir).is_none() {
                return Ok(false);
            }
            // ext4_init_new_dir: a fresh block with "." and ".."; the size is one block.
            let mut raw = raw;
            let bs = u64::from(self.base.superblock().block_size);
            LE::write_u32(&mut raw[I_SIZE_LO..], bs as u32);
            if let Some(b) = raw.get_mut(I_SIZE_HI..I_SIZE_HI + 4) {
                LE::write_u32(b, 0);
            }
            self.map_mut(ino).clear();
            self.set_raw(ino, raw);
            self.dir_mut(ino).clear();
            self.dir_changed(ino);
            self.patch.new_dirs.insert(ino);
        }
        let added = self.link(dir, name, ino);
        if let Some(raw) = self.raw(ino) {
            self.set_links(ino, raw, 1);
        }
        Ok(added)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(l: u64, p: u64, n: u64, u: bool) -> Extent {
        Extent { logical: l, physical: p, length: n, unwritten: u }
    }

    #[test]
    fn set_range_splits_replaces_and_punches() {
        let mut m: ExtentMap = [ex(0, 100, 10, false), ex(20, 300, 5, true)].map(|e| (e.logical, e)).into();
        set_range(&mut m, 5, 17, Some((500, false)));
        let v: Vec<Extent> = m.values().copied().collect();
        assert_eq!(v, vec![ex(0, 100, 5, false), ex(5, 500, 17, false), ex(22, 302, 3, true)]);
        set_range(&mut m, 2, 2, None);
        let v: Vec<Extent> = m.values().copied().collect();
        assert_eq!(v[0], ex(0, 100, 2, false));
        assert_eq!(v[1], ex(4, 104, 1, false));
        set_range(&mut m, 0, u64::MAX, None);
        assert!(m.is_empty());
    }
}
