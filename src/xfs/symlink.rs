//! Symbolic links: local (target in the inode) and remote (target in blocks; on v5 every
//! mapped extent starts with a `xfs_dsymlink_hdr` with its own crc).

use super::Xfs;
use super::crc;
use super::inode::{FMT_BTREE, FMT_EXTENTS, FMT_LOCAL, Fork, Inode};
use crate::error::{Error, Result};
use core::mem::offset_of;
use zerocopy::byteorder::{BE, U32, U64};
use zerocopy::{FromBytes, Immutable, KnownLayout};

/// "XSLM".
pub const XSLM: u32 = 0x5853_4c4d;
/// Offset of the crc in the remote symlink header.
pub const SYMLINK_CRC_OFF: usize = 12;
/// Longest symlink target.
pub const MAXPATHLEN: u64 = 1024;

/// The v5 remote symlink block header.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone)]
#[repr(C)]
pub struct DiskSymlinkHdr {
    /// "XSLM".
    pub magic: U32<BE>,
    /// Offset of this chunk in the target.
    pub offset: U32<BE>,
    /// Bytes of target in this block.
    pub bytes: U32<BE>,
    /// crc32c (little-endian).
    pub crc: [u8; 4],
    /// uuid.
    pub uuid: [u8; 16],
    /// Owning inode.
    pub owner: U64<BE>,
    /// Disk address (512-byte units).
    pub blkno: U64<BE>,
    /// LSN.
    pub lsn: U64<BE>,
}
const _: () = assert!(size_of::<DiskSymlinkHdr>() == 56);
const _: () = assert!(offset_of!(DiskSymlinkHdr, crc) == SYMLINK_CRC_OFF);
const _: () = assert!(offset_of!(DiskSymlinkHdr, uuid) == 16);
const _: () = assert!(offset_of!(DiskSymlinkHdr, lsn) == 48);

impl Xfs {
    /// The target of a symlink inode.
    pub fn symlink_target(&self, ino: &Inode) -> Result<Vec<u8>> {
        let size = ino.size();
        let bad = |d: String| Error::corrupt("xfs symlink", ino.ino, ino.offset, d);
        if size == 0 || size > MAXPATHLEN {
            return Err(bad(format!("inode {}: target length {size}", ino.ino)));
        }
        let size = size as usize;
        match ino.core.format {
            FMT_LOCAL => {
                let f = ino.fork_bytes(Fork::Data);
                f.get(..size).map(|b| b.to_vec()).ok_or_else(|| bad("target longer than the fork".into()))
            }
            FMT_EXTENTS | FMT_BTREE => {
                let (recs, _) = self.fork_records(ino, Fork::Data)?;
                let bs = u64::from(self.sb.blocksize());
                let v5 = self.sb.has_crc();
                let mut out = Vec::with_capacity(size);
                for r in recs {
                    if out.len() >= size {
                        break;
                    }
                    let lin = self
                        .sb
                        .fsb_to_linear(r.startblock)
                        .filter(|l| l.checked_add(r.blockcount).is_some_and(|e| e <= self.sb.dblocks()))
                        .ok_or_else(|| bad(format!("extent at {:#x} outside the fs", r.startblock)))?;
                    let len = (r.blockcount.min(2) * bs) as usize;
                    let off = lin * bs;
                    let b = self.src.read_at(off, len)?;
                    let mut chunk: &[u8] = &b;
                    if v5 {
                        let blkbad = |d: String| {
                            Error::corrupt(
                                "xfs remote symlink block",
                                lin,
                                off,
                                format!("inode {}: {d}", ino.ino),
                            )
                        };
                        let (h, _) =
                            DiskSymlinkHdr::ref_from_prefix(&b).map_err(|_| blkbad("short".into()))?;
                        if h.magic.get() != XSLM {
                            return Err(blkbad(format!("bad magic {:#010x}", h.magic.get())));
                        }
                        if let Some((false, s, c)) = crc::verify(&b, SYMLINK_CRC_OFF) {
                            self.findings.error(
                                "xfs remote symlink block",
                                Some(lin),
                                Some(off),
                                format!("inode {}: crc {s:#010x}, computed {c:#010x}", ino.ino),
                            );
                        }
                        if h.owner.get() != ino.ino || h.offset.get() as usize != out.len() {
                            self.findings.error(
                                "xfs remote symlink block",
                                Some(lin),
                                Some(off),
                                format!("inode {}: header owner/offset do not match", ino.ino),
                            );
                        }
                        let n = (h.bytes.get() as usize).min(b.len() - 56);
                        chunk = &b[56..56 + n];
                    }
                    let want = size - out.len();
                    out.extend_from_slice(&chunk[..chunk.len().min(want)]);
                }
                if out.len() != size {
                    return Err(bad(format!("target has {} of {size} bytes", out.len())));
                }
                Ok(out)
            }
            f => Err(bad(format!("symlink with data fork format {f}"))),
        }
    }
}
