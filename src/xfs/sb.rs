//! The XFS superblock (`struct xfs_dsb`), versions 4 and 5, and its feature bits.

use super::crc;
use crate::error::{Error, Findings, Result};
use core::mem::offset_of;
use serde::Serialize;
use zerocopy::byteorder::{BE, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, KnownLayout};

/// "XFSB".
pub const XFS_SB_MAGIC: u32 = 0x5846_5342;
/// Offset of `sb_crc` in the superblock.
pub const SB_CRC_OFF: usize = 224;

/// The on-disk superblock, as far as this reader uses it (the first 264 bytes).
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone)]
#[repr(C)]
pub struct DiskSb {
    /// Magic "XFSB".
    pub magicnum: U32<BE>,
    /// Block size in bytes.
    pub blocksize: U32<BE>,
    /// Data blocks.
    pub dblocks: U64<BE>,
    /// Realtime blocks.
    pub rblocks: U64<BE>,
    /// Realtime extents.
    pub rextents: U64<BE>,
    /// File-system uuid.
    pub uuid: [u8; 16],
    /// First block of an internal log (packed fsbno), 0 for an external log.
    pub logstart: U64<BE>,
    /// Root directory inode.
    pub rootino: U64<BE>,
    /// Realtime bitmap inode.
    pub rbmino: U64<BE>,
    /// Realtime summary inode.
    pub rsumino: U64<BE>,
    /// Realtime extent size in blocks.
    pub rextsize: U32<BE>,
    /// Blocks per AG.
    pub agblocks: U32<BE>,
    /// Number of AGs.
    pub agcount: U32<BE>,
    /// Realtime bitmap blocks.
    pub rbmblocks: U32<BE>,
    /// Log blocks.
    pub logblocks: U32<BE>,
    /// Version number and feature bits.
    pub versionnum: U16<BE>,
    /// Sector size.
    pub sectsize: U16<BE>,
    /// Inode size.
    pub inodesize: U16<BE>,
    /// Inodes per block.
    pub inopblock: U16<BE>,
    /// Label.
    pub fname: [u8; 12],
    /// log2 of blocksize.
    pub blocklog: u8,
    /// log2 of sectsize.
    pub sectlog: u8,
    /// log2 of inodesize.
    pub inodelog: u8,
    /// log2 of inopblock.
    pub inopblog: u8,
    /// log2 of agblocks rounded up.
    pub agblklog: u8,
    /// log2 of rextents.
    pub rextslog: u8,
    /// mkfs in progress.
    pub inprogress: u8,
    /// Max % of space for inodes.
    pub imax_pct: u8,
    /// Allocated inodes.
    pub icount: U64<BE>,
    /// Free inodes.
    pub ifree: U64<BE>,
    /// Free data blocks.
    pub fdblocks: U64<BE>,
    /// Free realtime extents.
    pub frextents: U64<BE>,
    /// User quota inode.
    pub uquotino: U64<BE>,
    /// Group quota inode.
    pub gquotino: U64<BE>,
    /// Quota flags.
    pub qflags: U16<BE>,
    /// Misc flags.
    pub flags: u8,
    /// Shared version.
    pub shared_vn: u8,
    /// Inode chunk alignment.
    pub inoalignmt: U32<BE>,
    /// Stripe unit.
    pub unit: U32<BE>,
    /// Stripe width.
    pub width: U32<BE>,
    /// log2 of directory block size in fs blocks.
    pub dirblklog: u8,
    /// log2 of the log sector size.
    pub logsectlog: u8,
    /// Log sector size.
    pub logsectsize: U16<BE>,
    /// Log stripe unit.
    pub logsunit: U32<BE>,
    /// More feature bits.
    pub features2: U32<BE>,
    /// Copy of features2 (old bug).
    pub bad_features2: U32<BE>,
    /// v5 compat features.
    pub features_compat: U32<BE>,
    /// v5 read-only compat features.
    pub features_ro_compat: U32<BE>,
    /// v5 incompat features.
    pub features_incompat: U32<BE>,
    /// v5 log incompat features.
    pub features_log_incompat: U32<BE>,
    /// crc32c (little-endian).
    pub crc: [u8; 4],
    /// Sparse inode chunk alignment.
    pub spino_align: U32<BE>,
    /// Project quota inode.
    pub pquotino: U64<BE>,
    /// Last write LSN.
    pub lsn: U64<BE>,
    /// Metadata uuid (with META_UUID).
    pub meta_uuid: [u8; 16],
}
const _: () = assert!(size_of::<DiskSb>() == 264);
// Offsets of `struct xfs_dsb` (xfs_format.h) that code reads by number.
const _: () = assert!(offset_of!(DiskSb, uuid) == 32);
const _: () = assert!(offset_of!(DiskSb, logstart) == 48);
const _: () = assert!(offset_of!(DiskSb, inoalignmt) == 180);
const _: () = assert!(offset_of!(DiskSb, features_incompat) == 216);
const _: () = assert!(offset_of!(DiskSb, crc) == SB_CRC_OFF);
const _: () = assert!(offset_of!(DiskSb, lsn) == 240);
const _: () = assert!(offset_of!(DiskSb, meta_uuid) == 248);

/// versionnum: low four bits are the version.
pub const VERSION_NUMBITS: u16 = 0x000f;
/// versionnum feature bits and names.
pub const VERSION_BITS: &[(u16, &str)] = &[
    (0x0010, "attr"),
    (0x0020, "nlink"),
    (0x0040, "quota"),
    (0x0080, "align"),
    (0x0100, "dalign"),
    (0x0200, "shared"),
    (0x0400, "logv2"),
    (0x0800, "sector"),
    (0x1000, "extflg"),
    (0x2000, "dirv2"),
    (0x4000, "asciici"),
    (0x8000, "morebits"),
];
/// features2 bits.
pub const FEATURES2_BITS: &[(u32, &str)] = &[
    (0x0002, "lazysbcount"),
    (0x0008, "attr2"),
    (0x0010, "parent"),
    (0x0080, "projid32"),
    (0x0100, "crc"),
    (0x0200, "ftype"),
];
/// ro_compat bits.
pub const RO_COMPAT_BITS: &[(u32, &str)] =
    &[(0x1, "finobt"), (0x2, "rmapbt"), (0x4, "reflink"), (0x8, "inobtcount")];
/// incompat bits.
pub const INCOMPAT_BITS: &[(u32, &str)] = &[
    (0x1, "ftype"),
    (0x2, "sparse_inodes"),
    (0x4, "meta_uuid"),
    (0x8, "bigtime"),
    (0x10, "needsrepair"),
    (0x20, "nrext64"),
    (0x40, "exchrange"),
    (0x80, "parent"),
    (0x100, "metadir"),
    (0x200, "zoned"),
];
/// log incompat bits.
pub const LOG_INCOMPAT_BITS: &[(u32, &str)] = &[(0x1, "log_xattrs")];

/// incompat bits this reader implements (or that do not change what it reads).
pub const INCOMPAT_SUPPORTED: u32 = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20 | 0x40 | 0x80;

/// incompat: the directory entries carry a file type.
pub const INCOMPAT_FTYPE: u32 = 0x1;
/// incompat: META_UUID.
pub const INCOMPAT_META_UUID: u32 = 0x4;
/// incompat: needsrepair.
pub const INCOMPAT_NEEDSREPAIR: u32 = 0x10;
/// features2: ftype on v4.
pub const FEATURES2_FTYPE: u32 = 0x200;
/// features2: crc.
pub const FEATURES2_CRC: u32 = 0x100;
/// versionnum: logv2.
pub const VERSION_LOGV2: u16 = 0x0400;
/// versionnum: morebits (features2 valid).
pub const VERSION_MOREBITS: u16 = 0x8000;
/// versionnum: dirv2.
pub const VERSION_DIRV2: u16 = 0x2000;

fn names<T: Copy + Into<u64>>(v: T, table: &[(T, &'static str)]) -> (Vec<String>, u64) {
    let v: u64 = v.into();
    let mut out = vec![];
    let mut known = 0u64;
    for (bit, name) in table {
        let b: u64 = (*bit).into();
        known |= b;
        if v & b != 0 {
            out.push((*name).to_string());
        }
    }
    (out, v & !known)
}

/// The feature set, decoded.
#[derive(Debug, Clone, Serialize)]
pub struct Features {
    /// Superblock version (4 or 5).
    pub version: u16,
    /// Raw fields.
    pub versionnum: u16,
    /// features2.
    pub features2: u32,
    /// v5 compat.
    pub compat: u32,
    /// v5 ro_compat.
    pub ro_compat: u32,
    /// v5 incompat.
    pub incompat: u32,
    /// v5 log incompat.
    pub log_incompat: u32,
    /// Every named feature that is set.
    pub names: Vec<String>,
    /// Metadata CRCs (v5).
    pub crc: bool,
    /// ftype in directory entries.
    pub ftype: bool,
    /// Sparse inode chunks.
    pub sparse_inodes: bool,
    /// Free inode btree.
    pub finobt: bool,
    /// Reflink.
    pub reflink: bool,
    /// Reverse mapping btree.
    pub rmapbt: bool,
    /// Timestamps beyond 2038.
    pub bigtime: bool,
    /// Counts of inobt blocks in the AGI.
    pub inobtcount: bool,
    /// 64-bit extent counters.
    pub nrext64: bool,
    /// xfs_repair must run before mounting.
    pub needsrepair: bool,
    /// Separate metadata uuid.
    pub meta_uuid: bool,
    /// Version 2 log.
    pub logv2: bool,
}

/// The superblock, decoded and checked.
#[derive(Debug, Clone)]
pub struct Superblock {
    raw: DiskSb,
    features: Features,
    /// Whether the superblock crc matched (v5 only; true on v4).
    pub crc_ok: bool,
}

impl Superblock {
    /// Parse the primary superblock from the first sector. Refuses what the reader cannot read
    /// (unknown incompat bits, metadir, zoned, bad geometry), naming it. A crc mismatch is a
    /// finding, not an error.
    pub fn parse(bytes: &[u8], findings: &Findings) -> Result<Self> {
        let (raw, _) = DiskSb::read_from_prefix(bytes)
            .map_err(|_| Error::Unrecognised("xfs: image shorter than a superblock".into()))?;
        if raw.magicnum.get() != XFS_SB_MAGIC {
            return Err(Error::Unrecognised(format!(
                "xfs: bad superblock magic {:#010x}",
                raw.magicnum.get()
            )));
        }
        let vn = raw.versionnum.get();
        let version = vn & VERSION_NUMBITS;
        if version != 4 && version != 5 {
            return Err(Error::Unsupported(format!("xfs superblock version {version}")));
        }
        let bad = |d: String| Error::corrupt("xfs superblock", 0, 0, d);
        let blocksize = raw.blocksize.get();
        if !(512..=65536).contains(&blocksize)
            || !blocksize.is_power_of_two()
            || u32::from(raw.blocklog) >= 32
            || 1u32 << raw.blocklog != blocksize
        {
            return Err(bad(format!("block size {blocksize} / blocklog {}", raw.blocklog)));
        }
        let sectsize = u32::from(raw.sectsize.get());
        if !(512..=32768).contains(&sectsize)
            || !sectsize.is_power_of_two()
            || u32::from(raw.sectlog) >= 32
            || 1u32 << raw.sectlog != sectsize
        {
            return Err(bad(format!("sector size {sectsize}")));
        }
        let inodesize = u32::from(raw.inodesize.get());
        if !(256..=2048).contains(&inodesize)
            || !inodesize.is_power_of_two()
            || u32::from(raw.inodelog) >= 32
            || 1u32 << raw.inodelog != inodesize
            || inodesize > blocksize
        {
            return Err(bad(format!("inode size {inodesize}")));
        }
        let inopblock = u32::from(raw.inopblock.get());
        if inopblock != blocksize / inodesize
            || u32::from(raw.inopblog) != raw.blocklog as u32 - raw.inodelog as u32
        {
            return Err(bad(format!("inodes per block {inopblock} / inopblog {}", raw.inopblog)));
        }
        let agblocks = raw.agblocks.get();
        if agblocks < 2 || raw.agblklog >= 32 || (1u64 << raw.agblklog) < u64::from(agblocks) {
            return Err(bad(format!("AG size {agblocks} / agblklog {}", raw.agblklog)));
        }
        if u32::from(raw.agblklog) + u32::from(raw.inopblog) >= 56 {
            return Err(bad("agblklog + inopblog too large for inode numbers".into()));
        }
        let agcount = raw.agcount.get();
        // As the kernel's xfs_validate_sb_common: the last AG holds at least 64 blocks, so
        // dblocks >= (agcount - 1) * agblocks + 64; this also bounds loops over the AGs.
        let min_dblocks = u64::from(agcount.saturating_sub(1)) * u64::from(agblocks) + 64;
        if agcount == 0
            || u64::from(agcount) * u64::from(agblocks) < raw.dblocks.get()
            || raw.dblocks.get() < min_dblocks
        {
            return Err(bad(format!(
                "{agcount} AGs of {agblocks} blocks cannot hold {} blocks",
                raw.dblocks.get()
            )));
        }
        if raw.dirblklog > 8 || (blocksize as u64) << raw.dirblklog > 65536 {
            return Err(bad(format!("directory block log {}", raw.dirblklog)));
        }
        if raw.inprogress != 0 {
            return Err(Error::Unsupported("xfs: mkfs did not finish (sb_inprogress set)".into()));
        }

        let morebits = vn & VERSION_MOREBITS != 0;
        let f2 = if morebits { raw.features2.get() } else { 0 };
        let (compat, ro, inc, logi) = if version == 5 {
            (
                raw.features_compat.get(),
                raw.features_ro_compat.get(),
                raw.features_incompat.get(),
                raw.features_log_incompat.get(),
            )
        } else {
            (0, 0, 0, 0)
        };
        let mut all = vec![format!("v{version}")];
        let (n, unknown_vn) = names(vn & !VERSION_NUMBITS, VERSION_BITS);
        all.extend(n);
        let _ = unknown_vn;
        let (n, _) = names(f2, FEATURES2_BITS);
        all.extend(n);
        let (n, unknown_ro) = names(ro, RO_COMPAT_BITS);
        all.extend(n);
        let (n, unknown_inc) = names(inc, INCOMPAT_BITS);
        all.extend(n);
        let (n, unknown_log) = names(logi, LOG_INCOMPAT_BITS);
        all.extend(n);
        all.sort();
        all.dedup();
        if version == 4 && vn & VERSION_DIRV2 == 0 {
            return Err(Error::Unsupported("xfs: version 1 directories (no dirv2 bit)".into()));
        }
        if unknown_inc != 0 {
            return Err(Error::Unsupported(format!("xfs: unknown incompat features {unknown_inc:#x}")));
        }
        if inc & !INCOMPAT_SUPPORTED != 0 {
            let (n, _) = names(inc & !INCOMPAT_SUPPORTED, INCOMPAT_BITS);
            return Err(Error::Unsupported(format!("xfs incompat feature(s) {}", n.join(", "))));
        }
        if unknown_ro != 0 {
            findings.info(
                "xfs superblock",
                Some(0),
                Some(0),
                format!("unknown read-only compat features {unknown_ro:#x} (read through)"),
            );
        }
        if unknown_log != 0 {
            findings.info(
                "xfs superblock",
                Some(0),
                Some(0),
                format!("unknown log incompat features {unknown_log:#x}"),
            );
        }
        if inc & INCOMPAT_NEEDSREPAIR != 0 {
            findings.error(
                "xfs superblock",
                Some(0),
                Some(0),
                "needsrepair is set: the kernel will not mount this until xfs_repair runs",
            );
        }
        if rawblocks_rt(&raw) {
            findings.info(
                "xfs superblock",
                Some(0),
                Some(0),
                format!(
                    "realtime device present ({} blocks): realtime file data is not read",
                    raw.rblocks.get()
                ),
            );
        }
        let crcfeat = version == 5;
        let mut crc_ok = true;
        if crcfeat {
            let sect = bytes.get(..sectsize as usize).ok_or_else(|| bad("sector past image end".into()))?;
            // OK to unwrap because the sector is at least 512 bytes, past the crc field.
            let (ok, stored, calc) = crc::verify(sect, SB_CRC_OFF).unwrap_or((false, 0, 0));
            crc_ok = ok;
            if !ok {
                findings.error(
                    "xfs superblock",
                    Some(0),
                    Some(0),
                    format!("AG 0 superblock crc {stored:#010x}, computed {calc:#010x}"),
                );
            }
        }
        let features = Features {
            version,
            versionnum: vn,
            features2: f2,
            compat,
            ro_compat: ro,
            incompat: inc,
            log_incompat: logi,
            names: all,
            crc: crcfeat,
            ftype: if crcfeat { inc & INCOMPAT_FTYPE != 0 } else { f2 & FEATURES2_FTYPE != 0 },
            sparse_inodes: inc & 0x2 != 0,
            finobt: ro & 0x1 != 0,
            reflink: ro & 0x4 != 0,
            rmapbt: ro & 0x2 != 0,
            bigtime: inc & 0x8 != 0,
            inobtcount: ro & 0x8 != 0,
            nrext64: inc & 0x20 != 0,
            needsrepair: inc & INCOMPAT_NEEDSREPAIR != 0,
            meta_uuid: inc & INCOMPAT_META_UUID != 0,
            logv2: vn & VERSION_LOGV2 != 0,
        };
        Ok(Self { raw, features, crc_ok })
    }

    /// The raw on-disk fields.
    pub fn raw(&self) -> &DiskSb {
        &self.raw
    }
    /// Decoded features.
    pub fn features(&self) -> &Features {
        &self.features
    }
    /// Superblock version (4 or 5).
    pub fn version(&self) -> u16 {
        self.features.version
    }
    /// True on v5 (metadata CRCs, self-describing headers).
    pub fn has_crc(&self) -> bool {
        self.features.crc
    }
    /// Block size in bytes.
    pub fn blocksize(&self) -> u32 {
        self.raw.blocksize.get()
    }
    /// log2 of the block size.
    pub fn blocklog(&self) -> u8 {
        self.raw.blocklog
    }
    /// Sector size in bytes.
    pub fn sectsize(&self) -> u32 {
        u32::from(self.raw.sectsize.get())
    }
    /// Blocks in the data device.
    pub fn dblocks(&self) -> u64 {
        self.raw.dblocks.get()
    }
    /// Blocks per AG.
    pub fn agblocks(&self) -> u32 {
        self.raw.agblocks.get()
    }
    /// log2 of agblocks, rounded up (the width of the agbno in packed block numbers).
    pub fn agblklog(&self) -> u8 {
        self.raw.agblklog
    }
    /// Number of AGs.
    pub fn agcount(&self) -> u32 {
        self.raw.agcount.get()
    }
    /// Inode size in bytes.
    pub fn inodesize(&self) -> u32 {
        u32::from(self.raw.inodesize.get())
    }
    /// Inodes per block.
    pub fn inopblock(&self) -> u32 {
        u32::from(self.raw.inopblock.get())
    }
    /// log2 of inodes per block.
    pub fn inopblog(&self) -> u8 {
        self.raw.inopblog
    }
    /// First block of the internal log as a packed fsbno (0: external log).
    pub fn logstart(&self) -> u64 {
        self.raw.logstart.get()
    }
    /// The internal log's first block, linear from the fs start (agno × agblocks + agbno).
    pub fn logstart_linear(&self) -> Option<u64> {
        let l = self.logstart();
        if l == 0 { None } else { self.fsb_to_linear(l) }
    }
    /// True when the log lives on a separate device.
    pub fn external_log(&self) -> bool {
        self.logstart() == 0
    }
    /// Log size in blocks.
    pub fn logblocks(&self) -> u32 {
        self.raw.logblocks.get()
    }
    /// Log sector size in bytes (0 or 512 means 512-byte log sectors).
    pub fn logsectsize(&self) -> u16 {
        self.raw.logsectsize.get()
    }
    /// log2 of the log sector size (0 means 9).
    pub fn logsectlog(&self) -> u8 {
        self.raw.logsectlog
    }
    /// Log stripe unit in bytes.
    pub fn logsunit(&self) -> u32 {
        self.raw.logsunit.get()
    }
    /// Log version: 2 when the logv2 bit is set, else 1.
    pub fn log_version(&self) -> u32 {
        if self.features.logv2 { 2 } else { 1 }
    }
    /// The versionnum field (version and feature bits).
    pub fn versionnum(&self) -> u16 {
        self.raw.versionnum.get()
    }
    /// File-system uuid.
    pub fn uuid(&self) -> [u8; 16] {
        self.raw.uuid
    }
    /// The uuid stamped in metadata: meta_uuid with META_UUID, else uuid.
    pub fn meta_uuid(&self) -> [u8; 16] {
        if self.features.meta_uuid { self.raw.meta_uuid } else { self.raw.uuid }
    }
    /// Root directory inode.
    pub fn rootino(&self) -> u64 {
        self.raw.rootino.get()
    }
    /// Directory block size in bytes.
    pub fn dirblksize(&self) -> u32 {
        self.blocksize() << self.raw.dirblklog
    }
    /// Directory block size in fs blocks.
    pub fn dirblkfsbs(&self) -> u32 {
        1 << self.raw.dirblklog
    }
    /// ftype in directory entries.
    pub fn has_ftype(&self) -> bool {
        self.features.ftype
    }
    /// The label.
    pub fn label(&self) -> String {
        let end = self.raw.fname.iter().position(|c| *c == 0).unwrap_or(12);
        String::from_utf8_lossy(&self.raw.fname[..end]).into_owned()
    }
    /// Realtime blocks (0: no realtime device).
    pub fn rblocks(&self) -> u64 {
        self.raw.rblocks.get()
    }
    /// Superblock LSN (v5).
    pub fn lsn(&self) -> u64 {
        self.raw.lsn.get()
    }
    /// Packed fsbno → (agno, agbno).
    pub fn fsb_split(&self, fsbno: u64) -> (u64, u64) {
        let l = self.raw.agblklog;
        (fsbno >> l, fsbno & ((1u64 << l) - 1))
    }
    /// Packed fsbno → linear block from the fs start, if it lies in the data device.
    pub fn fsb_to_linear(&self, fsbno: u64) -> Option<u64> {
        let (agno, agbno) = self.fsb_split(fsbno);
        if agno >= u64::from(self.agcount()) || agbno >= u64::from(self.agblocks()) {
            return None;
        }
        let lin = agno.checked_mul(u64::from(self.agblocks()))?.checked_add(agbno)?;
        if lin >= self.dblocks() { None } else { Some(lin) }
    }
    /// Byte offset of a linear block.
    pub fn linear_to_byte(&self, lin: u64) -> Option<u64> {
        lin.checked_mul(u64::from(self.blocksize()))
    }
    /// Inode number → (agno, agbno, index in block).
    pub fn ino_split(&self, ino: u64) -> (u64, u64, u64) {
        let ib = self.raw.inopblog;
        let shift = u32::from(self.raw.agblklog) + u32::from(ib);
        let agno = ino >> shift;
        let agino = ino & ((1u64 << shift) - 1);
        (agno, agino >> ib, agino & ((1u64 << ib) - 1))
    }
    /// Inode number → byte offset of the inode, when it lies inside the data device.
    pub fn ino_to_byte(&self, ino: u64) -> Option<u64> {
        let (agno, agbno, idx) = self.ino_split(ino);
        if agno >= u64::from(self.agcount()) || agbno >= u64::from(self.agblocks()) {
            return None;
        }
        let lin = agno * u64::from(self.agblocks()) + agbno;
        if lin >= self.dblocks() {
            return None;
        }
        lin.checked_mul(u64::from(self.blocksize()))?.checked_add(idx * u64::from(self.inodesize()))
    }
    /// Everything `info` shows about the superblock.
    pub fn to_json(&self) -> serde_json::Value {
        let r = &self.raw;
        serde_json::json!({
            "version": self.version(),
            "versionnum": format!("{:#06x}", r.versionnum.get()),
            "uuid": fmt_uuid(&r.uuid),
            "meta_uuid": fmt_uuid(&self.meta_uuid()),
            "label": self.label(),
            "blocksize": self.blocksize(),
            "sectsize": self.sectsize(),
            "dblocks": self.dblocks(),
            "agblocks": self.agblocks(),
            "agblklog": r.agblklog,
            "agcount": self.agcount(),
            "inodesize": self.inodesize(),
            "inopblock": self.inopblock(),
            "inopblog": self.inopblog(),
            "dirblksize": self.dirblksize(),
            "rootino": self.rootino(),
            "rblocks": r.rblocks.get(),
            "rextents": r.rextents.get(),
            "rextsize": r.rextsize.get(),
            "rbmino": r.rbmino.get(),
            "rsumino": r.rsumino.get(),
            "icount": r.icount.get(),
            "ifree": r.ifree.get(),
            "fdblocks": r.fdblocks.get(),
            "imax_pct": r.imax_pct,
            "inoalignmt": r.inoalignmt.get(),
            "unit": r.unit.get(),
            "width": r.width.get(),
            "spino_align": r.spino_align.get(),
            "lsn": self.lsn(),
            "crc_ok": self.crc_ok,
            "features": self.features,
            "log": {
                "internal": !self.external_log(),
                "logstart_fsbno": self.logstart(),
                "logstart_linear": self.logstart_linear(),
                "logblocks": self.logblocks(),
                "logsectsize": self.logsectsize(),
                "logsectlog": self.logsectlog(),
                "logsunit": self.logsunit(),
                "version": self.log_version(),
            },
        })
    }
}

fn rawblocks_rt(raw: &DiskSb) -> bool {
    raw.rblocks.get() != 0
}

/// A uuid in the usual 8-4-4-4-12 form.
pub fn fmt_uuid(u: &[u8; 16]) -> String {
    let h = hex::encode(u);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hostile superblocks: random field values behind a valid magic never panic, and every
    /// refusal is an error value.
    #[test]
    fn random_superblocks_do_not_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut accepted = 0;
        for round in 0..20_000 {
            let mut b = vec![0u8; 4096];
            for chunk in b[..512].chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let v = x.to_le_bytes();
                chunk.copy_from_slice(&v[..chunk.len()]);
            }
            b[..4].copy_from_slice(&XFS_SB_MAGIC.to_be_bytes());
            if round % 2 == 0 {
                // plausible geometry so that later checks are reached too
                b[4..8].copy_from_slice(&4096u32.to_be_bytes());
                b[120] = 12;
                b[102..104].copy_from_slice(&512u16.to_be_bytes());
                b[121] = 9;
                b[104..106].copy_from_slice(&512u16.to_be_bytes());
                b[122] = 9;
                b[106..108].copy_from_slice(&8u16.to_be_bytes());
                b[123] = 3;
                b[100..102]
                    .copy_from_slice(&(0xb4a5u16 & 0xfff0 | (4 + (round as u16 / 2) % 2)).to_be_bytes());
                b[126] = 0;
            }
            let f = Findings::new();
            if let Ok(sb) = Superblock::parse(&b, &f) {
                accepted += 1;
                let _ = sb.to_json();
                for v in [0u64, 1, u64::MAX, x] {
                    let _ = sb.ino_to_byte(v);
                    let _ = sb.fsb_to_linear(v);
                }
            }
        }
        let _ = accepted;
    }
}
