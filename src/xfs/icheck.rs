//! Which inode owns a block (like `debugfs icheck`, for XFS): every allocated inode (per the
//! inobt of each AG), its data and attr fork extents and its bmbt blocks. Blocks are linear fs
//! block numbers (agno × agblocks + agbno), the units of `map`'s `physical`.

use super::Xfs;
use super::inode::Fork;
use crate::error::Result;
use crate::owners::BlockOwners;

impl Xfs {
    /// The blocks inode `ino` owns: `(first linear block, count)` runs of both forks' extents
    /// and bmbt blocks. A realtime file's data extents are on the realtime device and not listed.
    pub fn owned_blocks(&self, ino: u64) -> Result<Vec<(u64, u64)>> {
        let i = self.inode(ino)?;
        let mut runs = Vec::new();
        for fork in [Fork::Data, Fork::Attr] {
            let (recs, bmbt) = self.fork_records(&i, fork)?;
            runs.extend(bmbt.iter().map(|b| (b.block, 1)));
            if fork == Fork::Data && i.realtime() {
                continue;
            }
            for r in recs {
                if let Some(lin) = self.sb.fsb_to_linear(r.startblock) {
                    runs.push((lin, r.blockcount));
                }
            }
        }
        Ok(runs)
    }

    /// For each linear block of `blocks`, the first allocated inode (in AG and inode order) that
    /// owns it. Inodes or inobt blocks that cannot be read are findings and are skipped.
    pub fn icheck(&self, blocks: &[u64]) -> Result<Vec<Option<u64>>> {
        let mut owners = BlockOwners::new(blocks);
        for agno in 0..self.sb.agcount() {
            if owners.done() {
                break;
            }
            let inos = match self.allocated_inodes(agno) {
                Ok(v) => v,
                Err(e) => {
                    self.findings.error("xfs icheck", None, None, format!("AG {agno}: {e}"));
                    continue;
                }
            };
            for ino in inos {
                match self.owned_blocks(ino) {
                    Ok(runs) => runs.into_iter().for_each(|(s, n)| owners.claim(ino, s, n)),
                    Err(e) => self.findings.error("xfs icheck", None, None, format!("inode {ino}: {e}")),
                }
            }
        }
        Ok(owners.answers(blocks))
    }
}
