//! The on-disk inode (`struct xfs_dinode`), versions 1-3, and its fork areas.

use super::crc;
use super::sb::{Superblock, fmt_uuid};
use crate::error::{Error, Findings, Result};
use crate::fs::{FileType, Stat, Timestamp};
use core::mem::offset_of;
use serde_json::{Map, Value, json};
use zerocopy::byteorder::{BE, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// "IN".
pub const DINODE_MAGIC: u16 = 0x494e;
/// Offset of `di_crc`.
pub const DINODE_CRC_OFF: usize = 100;
/// Size of the v1/v2 core.
pub const V2_CORE: usize = 100;
/// Size of the v3 core.
pub const V3_CORE: usize = 176;

/// The on-disk inode core (v3 layout; v1/v2 use the first 100 bytes).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Debug, Clone)]
#[repr(C)]
pub struct DiskInode {
    /// "IN".
    pub magic: U16<BE>,
    /// Mode and type.
    pub mode: U16<BE>,
    /// Inode version (1, 2, 3).
    pub version: u8,
    /// Data fork format.
    pub format: u8,
    /// v1 link count.
    pub onlink: U16<BE>,
    /// Owner.
    pub uid: U32<BE>,
    /// Group.
    pub gid: U32<BE>,
    /// v2+ link count.
    pub nlink: U32<BE>,
    /// Project id, low half.
    pub projid_lo: U16<BE>,
    /// Project id, high half.
    pub projid_hi: U16<BE>,
    /// v2 pad + flushiter, or the 64-bit data extent count (nrext64).
    pub big_nextents: U64<BE>,
    /// Access time.
    pub atime: U64<BE>,
    /// Modification time.
    pub mtime: U64<BE>,
    /// Change time.
    pub ctime: U64<BE>,
    /// Size in bytes.
    pub size: U64<BE>,
    /// Blocks used (data + attr + bmbt).
    pub nblocks: U64<BE>,
    /// Extent size hint.
    pub extsize: U32<BE>,
    /// Data extents (32-bit), or the 32-bit attr extent count (nrext64).
    pub nextents: U32<BE>,
    /// Attr extents (16-bit) when not nrext64.
    pub anextents: U16<BE>,
    /// Attr fork offset in 8-byte units.
    pub forkoff: u8,
    /// Attr fork format.
    pub aformat: u8,
    /// DMAPI event mask.
    pub dmevmask: U32<BE>,
    /// DMAPI state.
    pub dmstate: U16<BE>,
    /// Flags.
    pub flags: U16<BE>,
    /// Generation.
    pub gen_: U32<BE>,
    /// Next inode on the AGI unlinked list.
    pub next_unlinked: U32<BE>,
    /// crc32c (little-endian), v3.
    pub crc: [u8; 4],
    /// Change count, v3.
    pub changecount: U64<BE>,
    /// LSN of the last log write, v3.
    pub lsn: U64<BE>,
    /// More flags, v3.
    pub flags2: U64<BE>,
    /// CoW extent size hint, v3.
    pub cowextsize: U32<BE>,
    /// Padding.
    pub pad2: [u8; 12],
    /// Creation time, v3.
    pub crtime: U64<BE>,
    /// This inode's number, v3.
    pub ino: U64<BE>,
    /// uuid, v3.
    pub uuid: [u8; 16],
}
const _: () = assert!(size_of::<DiskInode>() == 176);
// Offsets of `struct xfs_dinode` (xfs_format.h) that code reads by number.
const _: () = assert!(offset_of!(DiskInode, big_nextents) == 24);
const _: () = assert!(offset_of!(DiskInode, atime) == 32);
const _: () = assert!(offset_of!(DiskInode, nextents) == 76);
const _: () = assert!(offset_of!(DiskInode, forkoff) == 82);
const _: () = assert!(offset_of!(DiskInode, next_unlinked) == 96);
const _: () = assert!(offset_of!(DiskInode, crc) == DINODE_CRC_OFF);
const _: () = assert!(offset_of!(DiskInode, crc) == V2_CORE);
const _: () = assert!(offset_of!(DiskInode, lsn) == 112);
const _: () = assert!(offset_of!(DiskInode, flags2) == 120);
const _: () = assert!(offset_of!(DiskInode, ino) == 152);
const _: () = assert!(offset_of!(DiskInode, uuid) == 160);
const _: () = assert!(size_of::<DiskInode>() == V3_CORE);

/// Fork formats.
pub const FMT_DEV: u8 = 0;
/// Data inline in the inode.
pub const FMT_LOCAL: u8 = 1;
/// Extent list in the inode.
pub const FMT_EXTENTS: u8 = 2;
/// bmbt root in the inode.
pub const FMT_BTREE: u8 = 3;

/// di_flags bits with the names xfs_db prints.
pub const FLAG_NAMES: &[(u16, &str)] = &[
    (0x0004, "newrtbm"),
    (0x0002, "prealloc"),
    (0x0001, "realtime"),
    (0x0008, "immutable"),
    (0x0010, "append"),
    (0x0020, "sync"),
    (0x0040, "noatime"),
    (0x0080, "nodump"),
    (0x0100, "rtinherit"),
    (0x0200, "projinherit"),
    (0x0400, "nosymlinks"),
    (0x0800, "extsz"),
    (0x1000, "extszinherit"),
    (0x2000, "nodefrag"),
    (0x4000, "filestream"),
];
/// di_flags: realtime file.
pub const DIFLAG_REALTIME: u16 = 0x1;
/// flags2 bits with xfs_db names.
pub const FLAG2_NAMES: &[(u64, &str)] =
    &[(0x2, "reflink"), (0x4, "cowextsz"), (0x1, "dax"), (0x8, "bigtime"), (0x10, "nrext64")];
/// flags2: bigtime timestamps.
pub const DIFLAG2_BIGTIME: u64 = 0x8;
/// flags2: 64-bit extent counters.
pub const DIFLAG2_NREXT64: u64 = 0x10;

/// Which fork.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fork {
    /// File data.
    Data,
    /// Extended attributes.
    Attr,
}

/// A read inode: the raw bytes and the decoded core.
#[derive(Debug, Clone)]
pub struct Inode {
    /// Inode number.
    pub ino: u64,
    /// Byte offset of the inode from the fs start.
    pub offset: u64,
    /// All `inodesize` bytes.
    pub bytes: Vec<u8>,
    /// The core.
    pub core: DiskInode,
    /// Whether the v3 crc matched (true for v1/v2).
    pub crc_ok: bool,
}

fn fmt_name(f: u8) -> &'static str {
    match f {
        0 => "dev",
        1 => "local",
        2 => "extents",
        3 => "btree",
        4 => "uuid",
        5 => "rmap",
        _ => "unknown",
    }
}

impl Inode {
    /// Read inode `ino` from `bytes` (its `inodesize` bytes at `offset`). Bad magic, version or
    /// fork layout is an error naming the inode; a crc mismatch is a finding.
    pub fn parse(sb: &Superblock, ino: u64, offset: u64, bytes: &[u8], findings: &Findings) -> Result<Self> {
        let bad = |d: String| Error::corrupt("xfs inode", ino, offset, d);
        let (core, _) = DiskInode::read_from_prefix(bytes).map_err(|_| bad("short inode".into()))?;
        if core.magic.get() != DINODE_MAGIC {
            return Err(bad(format!("bad magic {:#06x} (not an inode)", core.magic.get())));
        }
        let v = core.version;
        if !(1..=3).contains(&v) || (v == 3) != sb.has_crc() {
            return Err(bad(format!("inode version {v} on a v{} file system", sb.version())));
        }
        let mut crc_ok = true;
        if v == 3 {
            match crc::verify(bytes, DINODE_CRC_OFF) {
                Some((true, _, _)) => {}
                Some((false, stored, calc)) => {
                    crc_ok = false;
                    findings.error(
                        "xfs inode",
                        Some(ino),
                        Some(offset),
                        format!("inode {ino}: crc {stored:#010x}, computed {calc:#010x}"),
                    );
                }
                None => return Err(bad("inode too small for its crc".into())),
            }
            if core.ino.get() != ino {
                findings.error(
                    "xfs inode",
                    Some(ino),
                    Some(offset),
                    format!("inode {ino} says it is inode {}", core.ino.get()),
                );
            }
            if core.uuid != sb.meta_uuid() {
                findings.error("xfs inode", Some(ino), Some(offset), format!("inode {ino}: uuid mismatch"));
            }
        }
        let me = Self { ino, offset, bytes: bytes.to_vec(), core, crc_ok };
        let lit = me.literal_size();
        let fo = usize::from(me.core.forkoff) * 8;
        if fo > lit {
            return Err(bad(format!("attr fork offset {fo} beyond the literal area ({lit} bytes)")));
        }
        Ok(me)
    }

    /// Core size for this inode's version.
    pub fn core_size(&self) -> usize {
        if self.core.version == 3 { V3_CORE } else { V2_CORE }
    }
    /// Bytes after the core.
    pub fn literal_size(&self) -> usize {
        self.bytes.len().saturating_sub(self.core_size())
    }
    /// The bytes of a fork (empty when the inode has no attr fork).
    pub fn fork_bytes(&self, fork: Fork) -> &[u8] {
        let start = self.core_size();
        let fo = usize::from(self.core.forkoff) * 8;
        let lit = self.literal_size();
        let (s, len) = match fork {
            Fork::Data => (start, if fo == 0 { lit } else { fo }),
            Fork::Attr => {
                if fo == 0 {
                    return &[];
                }
                (start + fo, lit.saturating_sub(fo))
            }
        };
        self.bytes.get(s..s + len).unwrap_or(&[])
    }
    /// A fork's format (attr: None when there is no attr fork).
    pub fn fork_format(&self, fork: Fork) -> Option<u8> {
        match fork {
            Fork::Data => Some(self.core.format),
            Fork::Attr => (self.core.forkoff != 0).then_some(self.core.aformat),
        }
    }
    /// True with 64-bit extent counters.
    pub fn nrext64(&self) -> bool {
        self.core.version == 3 && self.core.flags2.get() & DIFLAG2_NREXT64 != 0
    }
    /// Data fork extent count.
    pub fn nextents(&self) -> u64 {
        if self.nrext64() { self.core.big_nextents.get() } else { u64::from(self.core.nextents.get()) }
    }
    /// Attr fork extent count.
    pub fn anextents(&self) -> u64 {
        if self.nrext64() {
            u64::from(self.core.nextents.get())
        } else {
            u64::from(self.core.anextents.get())
        }
    }
    /// Extent count of a fork.
    pub fn fork_nextents(&self, fork: Fork) -> u64 {
        match fork {
            Fork::Data => self.nextents(),
            Fork::Attr => self.anextents(),
        }
    }
    /// The mode.
    pub fn mode(&self) -> u16 {
        self.core.mode.get()
    }
    /// The file type.
    pub fn file_type(&self) -> FileType {
        FileType::from_mode(self.mode())
    }
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.core.size.get()
    }
    /// A realtime file.
    pub fn realtime(&self) -> bool {
        self.core.flags.get() & DIFLAG_REALTIME != 0
    }
    /// Link count.
    pub fn nlink(&self) -> u32 {
        if self.core.version == 1 { u32::from(self.core.onlink.get()) } else { self.core.nlink.get() }
    }
    fn bigtime(&self) -> bool {
        self.core.version == 3 && self.core.flags2.get() & DIFLAG2_BIGTIME != 0
    }
    /// Decode a timestamp field.
    pub fn timestamp(&self, raw: u64) -> Timestamp {
        if self.bigtime() {
            const NS: u64 = 1_000_000_000;
            Timestamp { sec: (raw / NS) as i64 - (1i64 << 31), nsec: (raw % NS) as u32 }
        } else {
            Timestamp { sec: i64::from((raw >> 32) as u32 as i32), nsec: raw as u32 }
        }
    }

    /// The common stat, with every core field in `extra` under the names xfs_db prints.
    pub fn to_stat(&self, blocksize: u32) -> Stat {
        let c = &self.core;
        let mut x = Map::new();
        // Keys are made once: a literal's copy, or the format!'s own string.
        let mut put = |k: String, v: Value| {
            x.insert(k, v);
        };
        put("core.magic".into(), json!(c.magic.get()));
        put("core.mode".into(), json!(c.mode.get()));
        put("core.version".into(), json!(c.version));
        put("core.format".into(), json!(c.format));
        put("core.format.name".into(), json!(fmt_name(c.format)));
        put("core.onlink".into(), json!(c.onlink.get()));
        put("core.uid".into(), json!(c.uid.get()));
        put("core.gid".into(), json!(c.gid.get()));
        if c.version >= 2 {
            put("core.nlinkv2".into(), json!(c.nlink.get()));
        }
        put("core.projid_lo".into(), json!(c.projid_lo.get()));
        put("core.projid_hi".into(), json!(c.projid_hi.get()));
        if !self.nrext64() && c.version < 3 {
            put("core.flushiter".into(), json!(c.big_nextents.get() & 0xffff));
        }
        for (name, raw) in [("atime", c.atime.get()), ("mtime", c.mtime.get()), ("ctime", c.ctime.get())] {
            let t = self.timestamp(raw);
            put(format!("core.{name}.sec"), json!(t.sec));
            put(format!("core.{name}.nsec"), json!(t.nsec));
        }
        put("core.size".into(), json!(c.size.get()));
        put("core.nblocks".into(), json!(c.nblocks.get()));
        put("core.extsize".into(), json!(c.extsize.get()));
        // xfs_db prints the counts under these names whether or not they are 64-bit
        put("core.nextents".into(), json!(self.nextents()));
        put("core.naextents".into(), json!(self.anextents()));
        put("core.forkoff".into(), json!(c.forkoff));
        put("core.aformat".into(), json!(c.aformat));
        put("core.aformat.name".into(), json!(fmt_name(c.aformat)));
        put("core.dmevmask".into(), json!(c.dmevmask.get()));
        put("core.dmstate".into(), json!(c.dmstate.get()));
        let fl = c.flags.get();
        for (bit, name) in FLAG_NAMES {
            put(format!("core.{name}"), json!(u8::from(fl & bit != 0)));
        }
        put("core.gen".into(), json!(c.gen_.get()));
        put("next_unlinked".into(), json!(c.next_unlinked.get()));
        if c.version == 3 {
            // shown as xfs_db shows it: the four stored bytes read big-endian
            put("v3.crc".into(), json!(u32::from_be_bytes(c.crc)));
            put("v3.crc_ok".into(), json!(self.crc_ok));
            put("v3.change_count".into(), json!(c.changecount.get()));
            put("v3.lsn".into(), json!(c.lsn.get()));
            put("v3.flags2".into(), json!(c.flags2.get()));
            put("v3.cowextsize".into(), json!(c.cowextsize.get()));
            let t = self.timestamp(c.crtime.get());
            put("v3.crtime.sec".into(), json!(t.sec));
            put("v3.crtime.nsec".into(), json!(t.nsec));
            put("v3.inumber".into(), json!(c.ino.get()));
            put("v3.uuid".into(), json!(fmt_uuid(&c.uuid)));
            let f2 = c.flags2.get();
            for (bit, name) in FLAG2_NAMES {
                put(format!("v3.{name}"), json!(u8::from(f2 & bit != 0)));
            }
        }
        // the data fork's header fields, named as xfs_db prints them ("u3." on v3, "u." before)
        let u = if c.version == 3 { "u3" } else { "u" };
        if c.format == FMT_BTREE
            && let Some(h) = self.fork_bytes(Fork::Data).get(..4)
        {
            x.insert(format!("{u}.bmbt.level"), json!(u16::from_be_bytes([h[0], h[1]])));
            x.insert(format!("{u}.bmbt.numrecs"), json!(u16::from_be_bytes([h[2], h[3]])));
        }
        let ft = self.file_type();
        let rdev = if matches!(ft, FileType::Char | FileType::Block) && c.format == FMT_DEV {
            self.fork_bytes(Fork::Data).get(..4).map(|b| {
                let d = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                let (maj, min) = (d >> 18, d & 0x3ffff);
                x.insert(format!("{u}.dev"), json!(d));
                x.insert("u.dev.major".into(), json!(maj));
                x.insert("u.dev.minor".into(), json!(min));
                u64::from(d)
            })
        } else {
            None
        };
        Stat {
            ino: self.ino,
            file_type: ft,
            mode: c.mode.get(),
            nlink: self.nlink(),
            uid: c.uid.get(),
            gid: c.gid.get(),
            size: c.size.get(),
            blocks_512: c.nblocks.get().saturating_mul(u64::from(blocksize / 512)),
            atime: self.timestamp(c.atime.get()),
            mtime: self.timestamp(c.mtime.get()),
            ctime: self.timestamp(c.ctime.get()),
            crtime: (c.version == 3).then(|| self.timestamp(c.crtime.get())),
            generation: c.gen_.get(),
            flags: u64::from(c.flags.get()) | (if c.version == 3 { c.flags2.get() << 16 } else { 0 }),
            // xfs_to_linux_dev_t: MKDEV(sysv_major(dev) & 0x1ff, sysv_minor(dev)).
            device: rdev.map(|d| crate::fs::DeviceNumber {
                major: (d >> 18) as u32 & 0x1ff,
                minor: d as u32 & 0x3ffff,
            }),
            rdev,
            extra: x,
        }
    }
}
