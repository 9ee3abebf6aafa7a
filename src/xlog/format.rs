//! XFS log on-disk formats: record headers, extended headers, op headers and their constants
//! (`fs/xfs/libxfs/xfs_log_format.h`). Everything here is big-endian except `h_crc`.
//!
//! The fixed headers are zerocopy structs with their offsets asserted; the op header alone is
//! still read with `nom` ([`op_header`]): a 12-byte parse whose error is the short-buffer case
//! its two callers (reassembly and the head search) test for, kept as it was.

use core::mem::offset_of;
use nom::IResult;
use nom::number::complete::{be_u16, be_u32, u8 as nom_u8};
use zerocopy::byteorder::{BE, LE, U32, U64};
use zerocopy::{FromBytes, Immutable, KnownLayout};

/// Basic block size: cycle numbers, daddrs and log block numbers count in these.
pub const BBSIZE: usize = 512;
/// `XLOG_HEADER_MAGIC_NUM`.
pub const HEADER_MAGIC: u32 = 0xFEED_BABE;
/// Bytes of a record covered by one header's cycle data (`XLOG_HEADER_CYCLE_SIZE`).
pub const HEADER_CYCLE_SIZE: usize = 32 * 1024;
/// Cycle words per header (`XLOG_HEADER_CYCLE_SIZE / BBSIZE`).
pub const CYCLE_WORDS: usize = HEADER_CYCLE_SIZE / BBSIZE;
/// Largest v2 record (`XLOG_MAX_RECORD_BSIZE`).
pub const MAX_RECORD_BSIZE: usize = 256 * 1024;
/// Most iclogs in flight (`XLOG_MAX_ICLOGS`).
pub const MAX_ICLOGS: u64 = 8;
/// Log version 2 bit in `h_version`.
pub const VERSION_2: u32 = 2;

/// Op header flag: start of a transaction.
pub const OP_START: u8 = 0x01;
/// Op header flag: commit record.
pub const OP_COMMIT: u8 = 0x02;
/// Op header flag: the region continues in the next op.
pub const OP_CONTINUE: u8 = 0x04;
/// Op header flag: the region continues an earlier op.
pub const OP_WAS_CONT: u8 = 0x08;
/// Op header flag: end of a transaction (obsolete).
pub const OP_END: u8 = 0x10;
/// Op header flag: unmount record.
pub const OP_UNMOUNT: u8 = 0x20;

/// Client id of transactions.
pub const CLIENT_TRANSACTION: u8 = 0x69;
/// Client id of log-internal records (unmount).
pub const CLIENT_LOG: u8 = 0xaa;

/// `XFS_TRANS_HEADER_MAGIC` ("TRAN"), in the writer's native order.
pub const TRANS_HEADER_MAGIC: u32 = 0x5452_414e;
/// Size of `xfs_trans_header`.
pub const TRANS_HEADER_SIZE: usize = 16;

/// `struct xlog_rec_header` (the first 324 bytes of a 512-byte header block).
#[derive(FromBytes, KnownLayout, Immutable, Debug)]
#[repr(C)]
pub struct RecHeader {
    /// `XLOG_HEADER_MAGIC_NUM`.
    pub magicno: U32<BE>,
    /// Cycle number of the record.
    pub cycle: U32<BE>,
    /// Log version (1 or 2).
    pub version: U32<BE>,
    /// Bytes of data in the record.
    pub len: U32<BE>,
    /// LSN of this record.
    pub lsn: U64<BE>,
    /// LSN of the log tail when this record was written.
    pub tail_lsn: U64<BE>,
    /// crc32c of header and data (little-endian).
    pub crc: U32<LE>,
    /// Block number of the previous record.
    pub prev_block: U32<BE>,
    /// Number of op headers in the record.
    pub num_logops: U32<BE>,
    /// The first word of each data sector, replaced on disk by the cycle number.
    pub cycle_data: [U32<BE>; CYCLE_WORDS],
    /// Format (1: little-endian Linux, 2: big-endian Linux, 3: IRIX).
    pub fmt: U32<BE>,
    /// File-system uuid.
    pub fs_uuid: [u8; 16],
    /// iclog buffer size (v2).
    pub size: U32<BE>,
}
const _: () = assert!(size_of::<RecHeader>() == 324);
// Offsets as `xfs_ondisk.h` would check them (`XFS_CHECK_OFFSET(struct xlog_rec_header, ..)`).
const _: () = assert!(offset_of!(RecHeader, cycle) == 4);
const _: () = assert!(offset_of!(RecHeader, version) == 8);
const _: () = assert!(offset_of!(RecHeader, len) == 12);
const _: () = assert!(offset_of!(RecHeader, lsn) == 16);
const _: () = assert!(offset_of!(RecHeader, tail_lsn) == 24);
const _: () = assert!(offset_of!(RecHeader, crc) == 32);
const _: () = assert!(offset_of!(RecHeader, prev_block) == 36);
const _: () = assert!(offset_of!(RecHeader, num_logops) == 40);
const _: () = assert!(offset_of!(RecHeader, cycle_data) == 44);
const _: () = assert!(offset_of!(RecHeader, fmt) == 300);
const _: () = assert!(offset_of!(RecHeader, fs_uuid) == 304);
const _: () = assert!(offset_of!(RecHeader, size) == 320);

/// `struct xlog_rec_ext_header`: cycle data for each further 32 KiB of a big record.
#[derive(FromBytes, KnownLayout, Immutable, Debug)]
#[repr(C)]
pub struct ExtHeader {
    /// Cycle number.
    pub cycle: U32<BE>,
    /// Saved first words.
    pub cycle_data: [U32<BE>; CYCLE_WORDS],
}
const _: () = assert!(size_of::<ExtHeader>() == 260);
const _: () = assert!(offset_of!(ExtHeader, cycle_data) == 4);

/// Bytes of the record header that the crc covers: the C struct with its trailing alignment
/// padding on 64-bit hosts (328), or without it (324, i386 writers).
pub const REC_CRC_SIZES: [usize; 2] = [328, 324];
/// Offset of `h_crc` in the header.
pub const REC_CRC_OFF: usize = offset_of!(RecHeader, crc);

/// `struct xlog_op_header`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpHeader {
    /// Transaction id.
    pub tid: u32,
    /// Bytes of the region that follows.
    pub len: u32,
    /// Who wrote it.
    pub clientid: u8,
    /// START/COMMIT/CONTINUE/WAS_CONT/END/UNMOUNT.
    pub flags: u8,
}

/// Size of an op header.
pub const OP_HEADER_SIZE: usize = 12;

/// Parse one op header.
pub fn op_header(i: &[u8]) -> IResult<&[u8], OpHeader> {
    let (i, tid) = be_u32(i)?;
    let (i, len) = be_u32(i)?;
    let (i, clientid) = nom_u8(i)?;
    let (i, flags) = nom_u8(i)?;
    let (i, _res2) = be_u16(i)?;
    Ok((i, OpHeader { tid, len, clientid, flags }))
}

/// Names of the op flags set in `f`.
pub fn op_flag_names(f: u8) -> Vec<&'static str> {
    let mut v = vec![];
    for (bit, n) in [
        (OP_START, "START"),
        (OP_COMMIT, "COMMIT"),
        (OP_CONTINUE, "CONTINUE"),
        (OP_WAS_CONT, "WAS_CONT"),
        (OP_END, "END"),
        (OP_UNMOUNT, "UNMOUNT"),
    ] {
        if f & bit != 0 {
            v.push(n);
        }
    }
    v
}

/// Cycle part of an LSN.
pub fn lsn_cycle(lsn: u64) -> u32 {
    (lsn >> 32) as u32
}

/// Block part of an LSN.
pub fn lsn_block(lsn: u64) -> u32 {
    (lsn & 0xffff_ffff) as u32
}

/// Compare LSNs like `XFS_LSN_CMP` (cycle first, then block).
pub fn lsn_cmp(a: u64, b: u64) -> std::cmp::Ordering {
    (lsn_cycle(a), lsn_block(a)).cmp(&(lsn_cycle(b), lsn_block(b)))
}

/// "cycle:block" form of an LSN.
pub fn lsn_str(lsn: u64) -> String {
    format!("{}:{}", lsn_cycle(lsn), lsn_block(lsn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_header_parses_big_endian() {
        let b = [0x12, 0x34, 0x56, 0x78, 0, 0, 0, 16, CLIENT_TRANSACTION, OP_START | OP_COMMIT, 0, 0, 0xff];
        let (rest, h) = op_header(&b).unwrap(); // OK to unwrap because the buffer holds 12 bytes
        assert_eq!(h, OpHeader { tid: 0x1234_5678, len: 16, clientid: CLIENT_TRANSACTION, flags: 3 });
        assert_eq!(rest, &[0xff]);
        assert!(op_header(&b[..11]).is_err());
        assert_eq!(op_flag_names(h.flags), vec!["START", "COMMIT"]);
    }

    #[test]
    fn lsn_order_is_cycle_then_block() {
        let a = (1u64 << 32) | 900;
        let b = 2u64 << 32;
        assert_eq!(lsn_cmp(a, b), std::cmp::Ordering::Less);
        assert_eq!(lsn_cmp(b, a), std::cmp::Ordering::Greater);
        assert_eq!(lsn_str(a), "1:900");
    }
}
