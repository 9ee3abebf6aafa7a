//! `struct xfs_log_dinode` (`fs/xfs/libxfs/xfs_log_format.h`): the inode core as an inode item
//! logs it, in the byte order of the host that wrote the log, and its conversion into the
//! on-disk `xfs_dinode` (`xfs_log_dinode_to_disk`); with `xfs_bmbt_to_bmdr` for a logged
//! bmbt root.

use super::trans::Native;
use crate::xfs::inode::{DIFLAG2_BIGTIME, DIFLAG2_NREXT64, DiskInode};
use byteorder::{BigEndian, ByteOrder as _};
use core::mem::{offset_of, size_of};
use zerocopy::byteorder::{BE, ByteOrder, LE, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, KnownLayout};

/// `xfs_log_timestamp_t`: a bigtime count (one u64), or the legacy `xfs_log_legacy_timestamp`
/// (seconds, then nanoseconds), in the writer's order.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
pub struct LogTimestamp<O: ByteOrder> {
    /// `t_sec`, or the first half of the bigtime count in memory.
    pub sec: U32<O>,
    /// `t_nsec`, or the second half.
    pub nsec: U32<O>,
}

impl<O: ByteOrder> LogTimestamp<O> {
    /// The timestamp as the on-disk big-endian u64: the bigtime count, or seconds then
    /// nanoseconds.
    fn to_disk(self, bigtime: bool) -> u64 {
        if bigtime {
            let (a, b) = (self.sec.to_bytes(), self.nsec.to_bytes());
            U64::<O>::from_bytes([a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]]).get()
        } else {
            (u64::from(self.sec.get()) << 32) | u64::from(self.nsec.get())
        }
    }
}

/// `struct xfs_log_dinode`, v3 layout (v1/v2 log the first 96 bytes, up to `di_next_unlinked`).
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone)]
#[repr(C)]
pub struct LogDinode<O: ByteOrder> {
    /// `di_magic` ("IN").
    pub magic: U16<O>,
    /// `di_mode`.
    pub mode: U16<O>,
    /// `di_version`.
    pub version: u8,
    /// `di_format`.
    pub format: u8,
    /// `di_pad3` (`di_metatype` on metadir file systems).
    pub pad3: [u8; 2],
    /// `di_uid`.
    pub uid: U32<O>,
    /// `di_gid`.
    pub gid: U32<O>,
    /// `di_nlink`.
    pub nlink: U32<O>,
    /// `di_projid_lo`.
    pub projid_lo: U16<O>,
    /// `di_projid_hi`.
    pub projid_hi: U16<O>,
    /// `di_big_nextents` (nrext64), `di_v3_pad`, or v2 padding and `di_flushiter`.
    pub big_nextents: U64<O>,
    /// `di_atime`.
    pub atime: LogTimestamp<O>,
    /// `di_mtime`.
    pub mtime: LogTimestamp<O>,
    /// `di_ctime`.
    pub ctime: LogTimestamp<O>,
    /// `di_size`.
    pub size: U64<O>,
    /// `di_nblocks`.
    pub nblocks: U64<O>,
    /// `di_extsize`.
    pub extsize: U32<O>,
    /// `di_nextents`, or `di_big_anextents` (nrext64).
    pub nextents: U32<O>,
    /// `di_anextents`, or `di_nrext64_pad`.
    pub anextents: U16<O>,
    /// `di_forkoff`.
    pub forkoff: u8,
    /// `di_aformat`.
    pub aformat: u8,
    /// `di_dmevmask`.
    pub dmevmask: U32<O>,
    /// `di_dmstate`.
    pub dmstate: U16<O>,
    /// `di_flags`.
    pub flags: U16<O>,
    /// `di_gen`.
    pub gen_: U32<O>,
    /// `di_next_unlinked` (not logged: the buffer's value stands).
    pub next_unlinked: U32<O>,
    /// `di_crc`.
    pub crc: U32<O>,
    /// `di_changecount`.
    pub changecount: U64<O>,
    /// `di_lsn`.
    pub lsn: U64<O>,
    /// `di_flags2`.
    pub flags2: U64<O>,
    /// `di_cowextsize`.
    pub cowextsize: U32<O>,
    /// `di_pad2`.
    pub pad2: [u8; 12],
    /// `di_crtime`.
    pub crtime: LogTimestamp<O>,
    /// `di_ino`.
    pub ino: U64<O>,
    /// `di_uuid`.
    pub uuid: [u8; 16],
}
const _: () = assert!(size_of::<LogTimestamp<LE>>() == 8);
const _: () = assert!(size_of::<LogDinode<LE>>() == 176);
const _: () = assert!(offset_of!(LogDinode<LE>, big_nextents) == 24);
const _: () = assert!(offset_of!(LogDinode<LE>, atime) == 32);
const _: () = assert!(offset_of!(LogDinode<LE>, size) == 56);
const _: () = assert!(offset_of!(LogDinode<LE>, nextents) == 76);
const _: () = assert!(offset_of!(LogDinode<LE>, forkoff) == 82);
const _: () = assert!(offset_of!(LogDinode<LE>, gen_) == 92);
const _: () = assert!(offset_of!(LogDinode<LE>, next_unlinked) == V2_LOG_DINODE);
const _: () = assert!(offset_of!(LogDinode<LE>, changecount) == 104);
const _: () = assert!(offset_of!(LogDinode<LE>, lsn) == 112);
const _: () = assert!(offset_of!(LogDinode<LE>, flags2) == 120);
const _: () = assert!(offset_of!(LogDinode<LE>, crtime) == 144);
const _: () = assert!(offset_of!(LogDinode<LE>, ino) == 152);
const _: () = assert!(offset_of!(LogDinode<LE>, uuid) == 160);
const _: () = assert!(size_of::<LogDinode<LE>>() == size_of::<DiskInode>());

/// Bytes of a v1/v2 log dinode (`xfs_log_dinode_size`: up to `di_next_unlinked`).
pub const V2_LOG_DINODE: usize = 96;
/// Bytes of a v3 log dinode.
pub const V3_LOG_DINODE: usize = size_of::<LogDinode<LE>>();

/// `xfs_log_dinode_to_disk`: the logged core `ld` (in order `n`, 96 to 176 bytes) into the
/// on-disk inode `d` (at least the 176 bytes of a core), with `di_lsn` set to `lsn` on v3.
/// Fields past the end of a short `ld` count as zero; a v3 core is converted only whole.
pub fn log_dinode_to_disk(ld: &[u8], d: &mut [u8], n: Native, lsn: u64) {
    let mut whole = [0u8; V3_LOG_DINODE];
    let k = ld.len().min(V3_LOG_DINODE);
    whole[..k].copy_from_slice(&ld[..k]);
    let Ok((disk, _)) = DiskInode::mut_from_prefix(d) else { return };
    match n {
        Native::Little => {
            if let Ok(l) = LogDinode::<LE>::ref_from_bytes(&whole) {
                to_disk(l, k, disk, lsn);
            }
        }
        Native::Big => {
            if let Ok(l) = LogDinode::<BE>::ref_from_bytes(&whole) {
                to_disk(l, k, disk, lsn);
            }
        }
    }
}

/// [`log_dinode_to_disk`] of a log dinode of `len` bytes read in order `O`.
fn to_disk<O: ByteOrder>(l: &LogDinode<O>, len: usize, d: &mut DiskInode, lsn: u64) {
    let version = l.version;
    // di_flags2 is there only when the log dinode reaches past it.
    let flags2_end = offset_of!(LogDinode<LE>, flags2) + 8;
    let flags2 = if version >= 3 && len >= flags2_end { l.flags2.get() } else { 0 };
    let bigtime = version >= 3 && flags2 & DIFLAG2_BIGTIME != 0;
    let nrext64 = version >= 3 && flags2 & DIFLAG2_NREXT64 != 0;
    d.magic.set(l.magic.get());
    d.mode.set(l.mode.get());
    d.version = version;
    d.format = l.format;
    d.onlink.set(0);
    d.uid.set(l.uid.get());
    d.gid.set(l.gid.get());
    d.nlink.set(l.nlink.get());
    d.projid_lo.set(l.projid_lo.get());
    d.projid_hi.set(l.projid_hi.get());
    d.atime.set(l.atime.to_disk(bigtime));
    d.mtime.set(l.mtime.to_disk(bigtime));
    d.ctime.set(l.ctime.to_disk(bigtime));
    d.size.set(l.size.get());
    d.nblocks.set(l.nblocks.get());
    d.extsize.set(l.extsize.get());
    d.forkoff = l.forkoff;
    d.aformat = l.aformat;
    d.dmevmask.set(l.dmevmask.get());
    d.dmstate.set(l.dmstate.get());
    d.flags.set(l.flags.get());
    d.gen_.set(l.gen_.get());
    if version == 3 && len >= V3_LOG_DINODE {
        d.changecount.set(l.changecount.get());
        d.crtime.set(l.crtime.to_disk(bigtime));
        d.flags2.set(flags2);
        d.cowextsize.set(l.cowextsize.get());
        d.ino.set(l.ino.get());
        d.lsn.set(lsn);
        d.pad2 = [0; 12];
        d.uuid = l.uuid;
    }
    // di_v3_pad is zero; on v2 the pad and di_flushiter too (xlog_recover_inode_commit_pass2
    // resets the flush count before the copy). With nrext64 the field is the extent count.
    d.big_nextents.set(if nrext64 { l.big_nextents.get() } else { 0 });
    d.nextents.set(l.nextents.get());
    d.anextents.set(l.anextents.get());
}

/// `xfs_bmbt_to_bmdr`: an in-memory bmbt root block (long header) into the on-disk root.
pub fn bmbt_to_bmdr(src: &[u8], dst: &mut [u8], crc: bool) -> std::result::Result<(), String> {
    let hdr = if crc { 72 } else { 24 };
    if src.len() < hdr || dst.len() < 4 {
        return Err(format!("bmbt root of {} bytes", src.len()));
    }
    let level = BigEndian::read_u16(&src[4..6]);
    let numrecs = usize::from(BigEndian::read_u16(&src[6..8]));
    let mxr = (src.len() - hdr) / 16;
    let dmxr = (dst.len() - 4) / 16;
    if numrecs > mxr || numrecs > dmxr {
        return Err(format!("bmbt root with {numrecs} records (room for {mxr}/{dmxr})"));
    }
    dst[0..2].copy_from_slice(&level.to_be_bytes());
    dst[2..4].copy_from_slice(&(numrecs as u16).to_be_bytes());
    let keys = numrecs * 8;
    dst[4..4 + keys].copy_from_slice(&src[hdr..hdr + keys]);
    let sp = hdr + mxr * 8;
    let dp = 4 + dmxr * 8;
    dst[dp..dp + keys].copy_from_slice(&src[sp..sp + keys]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xfs::inode::DINODE_MAGIC;

    #[test]
    fn bmbt_root_moves_pointers() {
        // A crc bmbt root (72-byte header) with room for 2 records, holding 1, into a 36-byte bmdr.
        let mut src = vec![0u8; 72 + 32];
        src[4..6].copy_from_slice(&1u16.to_be_bytes());
        src[6..8].copy_from_slice(&1u16.to_be_bytes());
        src[72..80].copy_from_slice(&7u64.to_be_bytes()); // key 0
        src[72 + 16..72 + 24].copy_from_slice(&99u64.to_be_bytes()); // ptr 0 after 2 key slots
        let mut dst = vec![0u8; 36];
        bmbt_to_bmdr(&src, &mut dst, true).unwrap(); // OK to unwrap: sizes are consistent
        assert_eq!(&dst[0..4], &[0, 1, 0, 1]);
        assert_eq!(BigEndian::read_u64(&dst[4..12]), 7);
        assert_eq!(BigEndian::read_u64(&dst[20..28]), 99); // dmxr = 2: ptrs at 4 + 16
        let mut tiny = vec![0u8; 3];
        assert!(bmbt_to_bmdr(&src, &mut tiny, true).is_err());
    }

    #[test]
    fn log_dinode_converts_to_big_endian() {
        let mut ld = vec![0u8; 176];
        ld[0..2].copy_from_slice(&DINODE_MAGIC.to_le_bytes());
        ld[2..4].copy_from_slice(&0o100644u16.to_le_bytes());
        ld[4] = 3;
        ld[5] = 2;
        ld[56..64].copy_from_slice(&12345u64.to_le_bytes());
        ld[32..36].copy_from_slice(&10u32.to_le_bytes()); // legacy timestamp: sec
        ld[36..40].copy_from_slice(&20u32.to_le_bytes()); // nsec
        ld[152..160].copy_from_slice(&131u64.to_le_bytes());
        let mut d = vec![0u8; 512];
        log_dinode_to_disk(&ld, &mut d, Native::Little, 0x0000_0002_0000_0010);
        assert_eq!(BigEndian::read_u16(&d[0..2]), DINODE_MAGIC);
        assert_eq!(BigEndian::read_u16(&d[2..4]), 0o100644);
        assert_eq!(BigEndian::read_u64(&d[56..64]), 12345);
        assert_eq!(BigEndian::read_u32(&d[32..36]), 10);
        assert_eq!(BigEndian::read_u32(&d[36..40]), 20);
        assert_eq!(BigEndian::read_u64(&d[152..160]), 131);
        assert_eq!(BigEndian::read_u64(&d[112..120]), 0x0000_0002_0000_0010);
    }
}
