//! Which inode owns a block (`debugfs icheck`): every in-use inode's blocks, data and metadata.
//!
//! The scan follows `debugfs icheck` (e2fsprogs `debugfs/icheck.c`): inodes in number order,
//! groups whose inode table is not initialised skipped and, with group descriptor checksums, the
//! unused tail of each table (`bg_itable_unused`) too; an inode counts when its link count is not
//! zero. Its blocks are its extended attribute block (`i_file_acl`), then, unless it has a
//! deletion time or no blocks (fast symlinks, inline data, devices, FIFOs, sockets), the nodes
//! of its extent tree or its indirect blocks and its data blocks, unwritten extents included.
//! The first inode found owning a block is its owner.

use super::{BG_INODE_UNINIT, Ext4, inode};
use crate::error::{Findings, Result};
use crate::fs::{Extent, FileType};
use crate::owners::BlockOwners;

/// Blocks one inode owns: runs of `(first block, count)`.
pub type Runs = Vec<(u64, u64)>;

impl Ext4 {
    /// The inodes a scan like `debugfs icheck`'s visits: in-use candidates in number order.
    fn scanned_inodes(&self) -> impl Iterator<Item = u64> + '_ {
        let sb = &self.sb;
        let csums = sb.metadata_csum() || sb.has_ro_compat(super::superblock::RO_COMPAT_GDT_CSUM);
        let ipg = u64::from(sb.inodes_per_group);
        self.groups.iter().enumerate().flat_map(move |(g, gd)| {
            let skip_all = csums && gd.flags & BG_INODE_UNINIT != 0;
            let used = if skip_all {
                0
            } else if csums {
                ipg.saturating_sub(u64::from(gd.itable_unused))
            } else {
                ipg
            };
            let first = (g as u64).saturating_mul(ipg).saturating_add(1);
            (0..used).map(move |k| first + k)
        })
    }

    /// The blocks inode `ino` owns as `debugfs icheck` counts them (see the module doc), or
    /// `None` when the inode is not in use (no links).
    pub fn owned_blocks(&self, ino: u64) -> Result<Option<Runs>> {
        let i = self.inode(ino)?;
        if i.links() == 0 {
            return Ok(None);
        }
        let mut runs = Runs::new();
        if i.file_acl() != 0 {
            runs.push((i.file_acl(), 1));
        }
        if i.raw.i_dtime.get() != 0 {
            return Ok(Some(runs));
        }
        let ft = FileType::from_mode(i.mode());
        if !matches!(ft, FileType::File | FileType::Dir | FileType::Symlink)
            || i.has_flag(inode::INLINE_DATA_FL)
            || self.is_fast_symlink(&i)
        {
            return Ok(Some(runs));
        }
        let data = self.map_inode(&i)?;
        // The tree's own blocks, read again without reporting: the map above reported already.
        let quiet = Findings::new();
        let meta = if i.has_flag(inode::EXTENTS_FL) {
            self.extent_walker(&i, &quiet).walk_with_nodes(&i.raw.i_block, i.block, i.offset)?.1
        } else {
            let bs = u64::from(self.sb.block_size);
            let m = super::indirect::Mapper {
                src: &*self.src,
                block_size: self.sb.block_size,
                blocks_count: self.sb.blocks_count,
                findings: &quiet,
                ino,
                limit: i.size().div_ceil(bs),
            };
            m.map_with_meta(&i.raw.i_block)?.1
        };
        runs.extend(meta.into_iter().map(|b| (b, 1)));
        runs.extend(data.iter().map(|e: &Extent| (e.physical, e.length)));
        Ok(Some(runs))
    }

    /// For each block of `blocks`, the first inode (in number order) that owns it, as
    /// `debugfs icheck` answers. Inodes that cannot be read are skipped (their errors are
    /// findings).
    pub fn icheck(&self, blocks: &[u64]) -> Result<Vec<Option<u64>>> {
        let mut owners = BlockOwners::new(blocks);
        for ino in self.scanned_inodes() {
            if owners.done() {
                break;
            }
            match self.owned_blocks(ino) {
                Ok(Some(runs)) => runs.into_iter().for_each(|(s, n)| owners.claim(ino, s, n)),
                Ok(None) => {}
                Err(e) => self.findings.error("ext4 icheck", None, None, format!("inode {ino}: {e}")),
            }
        }
        Ok(owners.answers(blocks))
    }
}
