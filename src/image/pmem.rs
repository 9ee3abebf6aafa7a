//! The fsdax namespace header (`struct nd_pfn_sb`, kernel `drivers/nvdimm/pfn.h`).
//!
//! A namespace in fsdax ("pmem") mode starts with a 4 KiB info block at byte 4096 whose
//! signature is `NVDIMM_PFN_INFO\0`; the data the block device shows (the file system) starts at
//! `dataoff` bytes from the start of the namespace. The header is little-endian and protected by
//! a Fletcher-64 checksum over its 4096 bytes with the checksum field taken as zero.

use super::source::BlockSource;
use crate::error::{Error, Result};
use serde::Serialize;
use zerocopy::byteorder::{LE, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, KnownLayout};

/// Byte offset of the info block inside the namespace.
pub const PFN_INFO_OFFSET: u64 = 4096;
/// Signature of an fsdax (pfn) namespace.
pub const PFN_SIG: &[u8; 16] = b"NVDIMM_PFN_INFO\0";
/// Signature of a device-dax namespace (no file system on it).
pub const DAX_SIG: &[u8; 16] = b"NVDIMM_DAX_INFO\0";

/// On-disk `struct nd_pfn_sb`.
#[derive(FromBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct NdPfnSb {
    /// `NVDIMM_PFN_INFO\0`.
    pub signature: [u8; 16],
    /// This namespace's uuid.
    pub uuid: [u8; 16],
    /// The parent namespace's uuid.
    pub parent_uuid: [u8; 16],
    /// Flags.
    pub flags: U32<LE>,
    /// Major version (1).
    pub version_major: U16<LE>,
    /// Minor version.
    pub version_minor: U16<LE>,
    /// Where the data starts, from the start of the namespace.
    pub dataoff: U64<LE>,
    /// Number of page frames.
    pub npfns: U64<LE>,
    /// Where struct pages live: 0 none, 1 RAM, 2 PMEM.
    pub mode: U32<LE>,
    /// Padding at the start (minor >= 1).
    pub start_pad: U32<LE>,
    /// Truncation at the end (minor >= 1).
    pub end_trunc: U32<LE>,
    /// Mapping alignment (minor >= 2).
    pub align: U32<LE>,
    /// Page size (minor >= 3).
    pub page_size: U32<LE>,
    /// Size of struct page (minor >= 4).
    pub page_struct_size: U16<LE>,
    /// Zero padding.
    pub padding: [u8; 3994],
    /// Fletcher-64 of the block with this field zero.
    pub checksum: U64<LE>,
}
const _: () = assert!(size_of::<NdPfnSb>() == 4096);

/// What the namespace header says, for reports.
#[derive(Debug, Clone, Serialize)]
pub struct PmemInfo {
    /// "fsdax" or "devdax".
    pub kind: &'static str,
    /// Namespace uuid.
    pub uuid: String,
    /// Parent uuid.
    pub parent_uuid: String,
    /// Version as "major.minor".
    pub version: String,
    /// Where the data (file system) starts, in bytes.
    pub dataoff: u64,
    /// Page frames covered.
    pub npfns: u64,
    /// "none", "ram" or "pmem".
    pub mode: &'static str,
    /// Start padding in bytes.
    pub start_pad: u32,
    /// End truncation in bytes.
    pub end_trunc: u32,
    /// Mapping alignment in bytes (0 when the version predates it).
    pub align: u32,
    /// Page size (0 when the version predates it).
    pub page_size: u32,
    /// Stored checksum.
    pub checksum: String,
}

/// Fletcher-64 as the nvdimm core computes it: 32-bit little-endian words, a 32-bit running sum
/// and a 64-bit sum of sums.
pub fn fletcher64(bytes: &[u8]) -> u64 {
    let mut lo: u32 = 0;
    let mut hi: u64 = 0;
    for w in bytes.chunks_exact(4) {
        // OK to unwrap: chunks_exact(4) yields 4-byte slices.
        lo = lo.wrapping_add(u32::from_le_bytes(w.try_into().unwrap()));
        hi = hi.wrapping_add(u64::from(lo));
    }
    (hi << 32) | u64::from(lo)
}

/// Look for a namespace info block in `image` (the first bytes of a file or device).
/// Returns `Ok(None)` when there is no pfn/dax signature at byte 4096, an error when there is one
/// but the block is invalid (bad version, bad checksum, dataoff out of range).
pub fn detect(image: &[u8]) -> Result<Option<PmemInfo>> {
    let start = PFN_INFO_OFFSET as usize;
    let Some(block) = image.get(start..start + 4096) else {
        return Ok(None);
    };
    parse(block, image.len() as u64)
}

/// [`detect`] over a source, reading just the info block.
pub fn detect_in(image: &dyn BlockSource) -> Result<Option<PmemInfo>> {
    if image.len() < PFN_INFO_OFFSET + 4096 {
        return Ok(None);
    }
    parse(&image.read_at(PFN_INFO_OFFSET, 4096)?, image.len())
}

/// The info block `block` (4096 bytes at byte 4096) of an image of `image_len` bytes.
fn parse(block: &[u8], image_len: u64) -> Result<Option<PmemInfo>> {
    let sig = &block[..16];
    let kind = if sig == PFN_SIG {
        "fsdax"
    } else if sig == DAX_SIG {
        "devdax"
    } else {
        return Ok(None);
    };
    // OK to unwrap: block is exactly 4096 bytes, the size of NdPfnSb (checked at compile time).
    let sb = NdPfnSb::ref_from_bytes(block).unwrap();
    let mut copy = block.to_vec();
    copy[4088..4096].fill(0);
    let want = sb.checksum.get();
    let got = fletcher64(&copy);
    if want != got {
        return Err(Error::corrupt(
            "nvdimm pfn info block",
            PFN_INFO_OFFSET / 4096,
            PFN_INFO_OFFSET + 4088,
            format!("checksum {want:#018x} stored, {got:#018x} computed"),
        ));
    }
    let major = sb.version_major.get();
    if major != 1 {
        return Err(Error::corrupt(
            "nvdimm pfn info block",
            1,
            PFN_INFO_OFFSET + 52,
            format!("version_major {major}, only 1 is defined"),
        ));
    }
    let dataoff = sb.dataoff.get();
    if dataoff < PFN_INFO_OFFSET + 4096 || dataoff > image_len {
        return Err(Error::corrupt(
            "nvdimm pfn info block",
            1,
            PFN_INFO_OFFSET + 56,
            format!("dataoff {dataoff} outside the namespace ({image_len} bytes)"),
        ));
    }
    let minor = sb.version_minor.get();
    let mode = match sb.mode.get() {
        0 => "none",
        1 => "ram",
        2 => "pmem",
        _ => "unknown",
    };
    Ok(Some(PmemInfo {
        kind,
        uuid: uuid_string(&sb.uuid),
        parent_uuid: uuid_string(&sb.parent_uuid),
        version: format!("{major}.{minor}"),
        dataoff,
        npfns: sb.npfns.get(),
        mode,
        start_pad: if minor >= 1 { sb.start_pad.get() } else { 0 },
        end_trunc: if minor >= 1 { sb.end_trunc.get() } else { 0 },
        align: if minor >= 2 { sb.align.get() } else { 0 },
        page_size: if minor >= 3 { sb.page_size.get() } else { 0 },
        checksum: format!("{want:#018x}"),
    }))
}

/// Format 16 bytes as a canonical uuid string.
pub fn uuid_string(u: &[u8; 16]) -> String {
    let h = hex::encode(u);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}
