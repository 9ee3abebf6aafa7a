//! The attr fork (`fs/xfs/libxfs/xfs_da_format.h`): short form in the inode, a leaf block, or a
//! dabtree of node blocks over leaves; values local in the leaf or remote in blocks of their own
//! (with a v5 header each). Names get their namespace prefix as the kernel's listxattr gives it
//! (`user.`, `trusted.` for ROOT, `security.` for SECURE; parent pointers are not attributes);
//! POSIX ACLs (`SGI_ACL_FILE`, `SGI_ACL_DEFAULT` in ROOT) also show as `system.posix_acl_*` in
//! the `posix_acl_xattr` form.

use super::Xfs;
use super::blockhdr::{ATTR3_LEAF_MAGIC, DA3_NODE_MAGIC, DiskDa3Blkinfo};
use super::crc;
use super::inode::{FMT_LOCAL, Fork, Inode};
use crate::error::{Error, Result};
use crate::fs::Xattr;
use core::mem::offset_of;
use std::collections::HashSet;
use zerocopy::byteorder::{BE, U16, U32};
use zerocopy::{FromBytes, Immutable, KnownLayout};

/// `XFS_ATTR_LEAF_MAGIC` (v4 leaf).
pub const ATTR_LEAF_MAGIC: u16 = 0xfbee;
/// `XFS_DA_NODE_MAGIC` (v4 node).
pub const DA_NODE_MAGIC: u16 = 0xfebe;
/// `XFS_ATTR3_RMT_MAGIC` ("XARM").
pub const ATTR3_RMT_MAGIC: u32 = 0x5841_524d;
/// Entry flag: the value is in the leaf.
pub const ATTR_LOCAL: u8 = 0x01;
/// Entry flag: `trusted.` namespace.
pub const ATTR_ROOT: u8 = 0x02;
/// Entry flag: `security.` namespace.
pub const ATTR_SECURE: u8 = 0x04;
/// Entry flag: a parent pointer, not an attribute.
pub const ATTR_PARENT: u8 = 0x08;
/// Entry flag: being set or removed.
pub const ATTR_INCOMPLETE: u8 = 0x80;
/// Deepest dabtree followed (`XFS_DA_NODE_MAXDEPTH`).
const MAX_DEPTH: u32 = 5;
/// Largest value (`XATTR_SIZE_MAX`).
const VALUE_MAX: usize = 65536;

/// `struct xfs_attr_sf_hdr`.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
pub struct DiskAttrSfHdr {
    /// Bytes of the short-form area in use.
    pub totsize: U16<BE>,
    /// Entries.
    pub count: u8,
    /// Padding.
    pub padding: u8,
}
const _: () = assert!(size_of::<DiskAttrSfHdr>() == 4);

/// `struct xfs_attr_sf_entry` without its name and value.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
pub struct DiskAttrSfEntry {
    /// Name length.
    pub namelen: u8,
    /// Value length.
    pub valuelen: u8,
    /// `XFS_ATTR_*` flags.
    pub flags: u8,
}
const _: () = assert!(size_of::<DiskAttrSfEntry>() == 3);

/// `struct xfs_da_blkinfo` (v4 dabtree block head).
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
pub struct DiskDaBlkinfo {
    /// Next block at this level.
    pub forw: U32<BE>,
    /// Previous block at this level.
    pub back: U32<BE>,
    /// Magic.
    pub magic: U16<BE>,
    /// Padding.
    pub pad: U16<BE>,
}
const _: () = assert!(size_of::<DiskDaBlkinfo>() == 12);
const _: () = assert!(offset_of!(DiskDaBlkinfo, magic) == offset_of!(DiskDa3Blkinfo, magic));

/// The part of `xfs_attr_leaf_hdr` / `xfs_attr3_leaf_hdr` after the block info.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
pub struct DiskAttrLeafHdr {
    /// Entries.
    pub count: U16<BE>,
    /// Bytes of names and values.
    pub usedbytes: U16<BE>,
    /// First byte of names and values.
    pub firstused: U16<BE>,
    /// Holes in the name area.
    pub holes: u8,
    /// Padding.
    pub pad1: u8,
    /// Free regions (base, size).
    pub freemap: [U16<BE>; 6],
}
const _: () = assert!(size_of::<DiskAttrLeafHdr>() == 20);

/// Leaf header sizes: v4 `xfs_attr_leaf_hdr`, v5 `xfs_attr3_leaf_hdr` (with 4 bytes of padding).
const LEAF_HDR_V4: usize = size_of::<DiskDaBlkinfo>() + size_of::<DiskAttrLeafHdr>();
const LEAF_HDR_V5: usize = size_of::<DiskDa3Blkinfo>() + size_of::<DiskAttrLeafHdr>() + 4;
const _: () = assert!(LEAF_HDR_V4 == 32 && LEAF_HDR_V5 == 80);

/// `struct xfs_attr_leaf_entry`.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
pub struct DiskAttrLeafEntry {
    /// Hash of the name.
    pub hashval: U32<BE>,
    /// Offset of the name (and local value) in the block.
    pub nameidx: U16<BE>,
    /// `XFS_ATTR_*` flags.
    pub flags: u8,
    /// Padding.
    pub pad2: u8,
}
const _: () = assert!(size_of::<DiskAttrLeafEntry>() == 8);

/// `struct xfs_attr_leaf_name_local` without the name and value.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C, packed)]
pub struct DiskAttrNameLocal {
    /// Value length.
    pub valuelen: U16<BE>,
    /// Name length.
    pub namelen: u8,
}
const _: () = assert!(size_of::<DiskAttrNameLocal>() == 3);

/// `struct xfs_attr_leaf_name_remote` without the name.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C, packed)]
pub struct DiskAttrNameRemote {
    /// First attr-fork block of the value.
    pub valueblk: U32<BE>,
    /// Value length.
    pub valuelen: U32<BE>,
    /// Name length.
    pub namelen: u8,
}
const _: () = assert!(size_of::<DiskAttrNameRemote>() == 9);
const _: () = assert!(offset_of!(DiskAttrNameRemote, namelen) == 8);

/// `struct xfs_attr3_rmt_hdr`: the head of each v5 remote value block, laid out as the remote
/// symlink block's header (magic, offset, bytes, crc, uuid, owner, blkno, lsn).
pub type DiskAttr3RmtHdr = super::symlink::DiskSymlinkHdr;
const _: () = assert!(size_of::<DiskAttr3RmtHdr>() == 56);
const _: () = assert!(offset_of!(DiskAttr3RmtHdr, crc) == 12);

/// The part of `xfs_da_intnode` / `xfs_da3_intnode` after the block info.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
pub struct DiskDaNodeHdr {
    /// Entries.
    pub count: U16<BE>,
    /// Level (1 above the leaves).
    pub level: U16<BE>,
}
const _: () = assert!(size_of::<DiskDaNodeHdr>() == 4);

/// `struct xfs_da_node_entry`.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
pub struct DiskDaNodeEntry {
    /// Highest hash below.
    pub hashval: U32<BE>,
    /// The child's attr-fork block.
    pub before: U32<BE>,
}
const _: () = assert!(size_of::<DiskDaNodeEntry>() == 8);

/// One attribute as stored: flags, name (no prefix), value.
struct Raw {
    flags: u8,
    name: Vec<u8>,
    value: Vec<u8>,
}

/// An `xfs_acl` (big-endian count and 12-byte entries: tag, id, perm) in the `posix_acl_xattr`
/// form (version 2; 8-byte little-endian entries, id 0xffffffff for the entries without one).
pub fn acl_to_xattr(v: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let be32 = |at: usize| v.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let n = be32(0).ok_or("ACL shorter than its count")? as usize;
    if v.len() != 4 + n.saturating_mul(12) {
        return Err(format!("ACL of {} bytes does not hold its {n} entries", v.len()));
    }
    let mut out = 2u32.to_le_bytes().to_vec();
    for k in 0..n {
        let at = 4 + k * 12;
        let (tag, id) = (be32(at).unwrap_or(0), be32(at + 4).unwrap_or(0));
        let perm = u16::from_be_bytes([v[at + 8], v[at + 9]]);
        let id = if matches!(tag, 2 | 8) { id } else { u32::MAX };
        out.extend((tag as u16).to_le_bytes());
        out.extend(perm.to_le_bytes());
        out.extend(id.to_le_bytes());
    }
    Ok(out)
}

impl Xfs {
    /// Inode `ino`'s extended attributes as `listxattr(2)`/`getxattr(2)` give them to root.
    pub fn xattrs(&self, ino: u64) -> Result<Vec<Xattr>> {
        let i = self.inode(ino)?;
        let raw = match i.fork_format(Fork::Attr) {
            None => vec![],
            Some(FMT_LOCAL) => self.attr_shortform(&i)?,
            Some(_) => self.attr_blocks(&i)?,
        };
        let mut out = vec![];
        for r in raw {
            if r.flags & (ATTR_INCOMPLETE | ATTR_PARENT) != 0 {
                continue;
            }
            let prefix = if r.flags & ATTR_ROOT != 0 {
                "trusted."
            } else if r.flags & ATTR_SECURE != 0 {
                "security."
            } else {
                "user."
            };
            if r.flags & ATTR_ROOT != 0 {
                let acl = match r.name.as_slice() {
                    b"SGI_ACL_FILE" => Some("system.posix_acl_access"),
                    b"SGI_ACL_DEFAULT" => Some("system.posix_acl_default"),
                    _ => None,
                };
                if let Some(name) = acl {
                    let value = acl_to_xattr(&r.value).map_err(|e| {
                        Error::corrupt("xfs attr", ino, i.offset, format!("inode {ino}: POSIX ACL: {e}"))
                    })?;
                    out.push(Xattr { name: name.as_bytes().to_vec(), value });
                }
            }
            let mut name = prefix.as_bytes().to_vec();
            name.extend(&r.name);
            out.push(Xattr { name, value: r.value });
        }
        Ok(out)
    }

    fn attr_shortform(&self, i: &Inode) -> Result<Vec<Raw>> {
        let f = i.fork_bytes(Fork::Attr);
        let bad = |d: String| {
            Error::corrupt("xfs attr short form", i.ino, i.offset, format!("inode {}: {d}", i.ino))
        };
        let (h, _) = DiskAttrSfHdr::ref_from_prefix(f).map_err(|_| bad("fork too small".into()))?;
        let total = usize::from(h.totsize.get()).min(f.len());
        let mut at = size_of::<DiskAttrSfHdr>();
        let mut out = vec![];
        for k in 0..h.count {
            let (e, _) = DiskAttrSfEntry::ref_from_prefix(f.get(at..total).unwrap_or(&[]))
                .map_err(|_| bad(format!("entry {k} at byte {at} runs past totsize {total}")))?;
            let (nl, vl) = (usize::from(e.namelen), usize::from(e.valuelen));
            let start = at + size_of::<DiskAttrSfEntry>();
            let body = f
                .get(start..start + nl + vl)
                .filter(|_| start + nl + vl <= total)
                .ok_or_else(|| bad(format!("entry {k} at byte {at} runs past totsize {total}")))?;
            out.push(Raw { flags: e.flags, name: body[..nl].to_vec(), value: body[nl..].to_vec() });
            at = start + nl + vl;
        }
        Ok(out)
    }

    /// The linear block holding attr-fork block `lblk`, from the fork's extents.
    fn attr_map(recs: &[super::BmbtRec], sb: &super::Superblock, lblk: u64) -> Option<u64> {
        let r = recs.iter().find(|r| r.startoff <= lblk && lblk < r.startoff.saturating_add(r.blockcount))?;
        sb.fsb_to_linear(r.startblock)?.checked_add(lblk - r.startoff)
    }

    /// Attr-fork block `lblk` of `i`: its bytes and linear block; the v5 crc is checked.
    fn attr_block(
        &self,
        i: &Inode,
        recs: &[super::BmbtRec],
        lblk: u64,
        what: &str,
    ) -> Result<(Vec<u8>, u64)> {
        let lin = Self::attr_map(recs, &self.sb, lblk).ok_or_else(|| {
            Error::corrupt(
                "xfs attr block",
                i.ino,
                i.offset,
                format!("inode {}: {what} attr block {lblk} is not mapped", i.ino),
            )
        })?;
        let bs = self.sb.blocksize() as usize;
        let b = self.src.read_at(lin * bs as u64, bs)?.to_vec();
        Ok((b, lin))
    }

    fn check_crc(&self, i: &Inode, b: &[u8], off: usize, lin: u64, what: &str) {
        if let Some((false, s, c)) = crc::verify(b, off) {
            self.findings.error(
                format!("xfs attr {what}"),
                Some(lin),
                Some(lin * u64::from(self.sb.blocksize())),
                format!("inode {}: crc {s:#010x}, computed {c:#010x}", i.ino),
            );
        }
    }

    fn attr_blocks(&self, i: &Inode) -> Result<Vec<Raw>> {
        let (recs, _) = self.fork_records(i, Fork::Attr)?;
        let mut out = vec![];
        // An attr fork in extents form with no extents holds no attributes.
        if recs.is_empty() {
            return Ok(out);
        }
        let mut seen = HashSet::new();
        self.attr_node(i, &recs, 0, 0, &mut seen, &mut out)?;
        Ok(out)
    }

    /// Attr-fork block `lblk`, a leaf or a node (then its children, depth first).
    fn attr_node(
        &self,
        i: &Inode,
        recs: &[super::BmbtRec],
        lblk: u64,
        depth: u32,
        seen: &mut HashSet<u64>,
        out: &mut Vec<Raw>,
    ) -> Result<()> {
        let bad = |lin: u64, d: String| {
            Error::corrupt(
                "xfs attr block",
                lin,
                lin * u64::from(self.sb.blocksize()),
                format!("inode {}: {d}", i.ino),
            )
        };
        if depth > MAX_DEPTH || !seen.insert(lblk) {
            return Err(bad(0, format!("attr block {lblk}: dabtree deeper than {MAX_DEPTH} or looping")));
        }
        let (b, lin) = self.attr_block(i, recs, lblk, "block")?;
        let v5 = self.sb.has_crc();
        let magic = u16::from_be_bytes([b[8], b[9]]);
        let info = if v5 { size_of::<DiskDa3Blkinfo>() } else { size_of::<DiskDaBlkinfo>() };
        match (magic, v5) {
            (ATTR3_LEAF_MAGIC, true) | (ATTR_LEAF_MAGIC, false) => {
                if v5 {
                    self.check_crc(i, &b, offset_of!(DiskDa3Blkinfo, crc), lin, "leaf");
                }
                self.attr_leaf(i, recs, &b, lin, info, out)
            }
            (DA3_NODE_MAGIC, true) | (DA_NODE_MAGIC, false) => {
                if v5 {
                    self.check_crc(i, &b, offset_of!(DiskDa3Blkinfo, crc), lin, "node");
                }
                let (h, rest) =
                    DiskDaNodeHdr::ref_from_prefix(&b[info..]).map_err(|_| bad(lin, "short node".into()))?;
                let ents = if v5 { &rest[4..] } else { rest };
                let (e, _) =
                    <[DiskDaNodeEntry]>::ref_from_prefix_with_elems(ents, usize::from(h.count.get()))
                        .map_err(|_| {
                            bad(lin, format!("{} node entries do not fit the block", h.count.get()))
                        })?;
                for child in e.iter().map(|x| u64::from(x.before.get())).collect::<Vec<_>>() {
                    self.attr_node(i, recs, child, depth + 1, seen, out)?;
                }
                Ok(())
            }
            _ => Err(bad(lin, format!("attr block {lblk}: magic {magic:#06x} is neither a leaf nor a node"))),
        }
    }

    fn attr_leaf(
        &self,
        i: &Inode,
        recs: &[super::BmbtRec],
        b: &[u8],
        lin: u64,
        info: usize,
        out: &mut Vec<Raw>,
    ) -> Result<()> {
        let bad = |d: String| {
            Error::corrupt(
                "xfs attr leaf",
                lin,
                lin * u64::from(self.sb.blocksize()),
                format!("inode {}: {d}", i.ino),
            )
        };
        let (h, _) = DiskAttrLeafHdr::ref_from_prefix(&b[info..]).map_err(|_| bad("short leaf".into()))?;
        let hdr = if self.sb.has_crc() { LEAF_HDR_V5 } else { LEAF_HDR_V4 };
        let n = usize::from(h.count.get());
        let (ents, _) = <[DiskAttrLeafEntry]>::ref_from_prefix_with_elems(&b[hdr..], n)
            .map_err(|_| bad(format!("{n} entries do not fit the block")))?;
        for (k, e) in ents.iter().enumerate() {
            let at = usize::from(e.nameidx.get());
            let tail = b.get(at..).unwrap_or(&[]);
            let cut = || bad(format!("entry {k}: name at byte {at} runs past the block"));
            if e.flags & ATTR_LOCAL != 0 {
                let (l, rest) = DiskAttrNameLocal::ref_from_prefix(tail).map_err(|_| cut())?;
                let (nl, vl) = (usize::from(l.namelen), usize::from(l.valuelen.get()));
                let body = rest.get(..nl + vl).ok_or_else(cut)?;
                out.push(Raw { flags: e.flags, name: body[..nl].to_vec(), value: body[nl..].to_vec() });
            } else {
                let (r, rest) = DiskAttrNameRemote::ref_from_prefix(tail).map_err(|_| cut())?;
                let name = rest.get(..usize::from(r.namelen)).ok_or_else(cut)?.to_vec();
                if e.flags & ATTR_INCOMPLETE != 0 {
                    continue;
                }
                let value =
                    self.attr_remote(i, recs, u64::from(r.valueblk.get()), r.valuelen.get() as usize)?;
                out.push(Raw { flags: e.flags, name, value });
            }
        }
        Ok(())
    }

    /// A remote value of `len` bytes from attr-fork block `first` on.
    fn attr_remote(&self, i: &Inode, recs: &[super::BmbtRec], first: u64, len: usize) -> Result<Vec<u8>> {
        if len > VALUE_MAX {
            return Err(Error::corrupt(
                "xfs attr remote value",
                i.ino,
                i.offset,
                format!("inode {}: value of {len} bytes exceeds {VALUE_MAX}", i.ino),
            ));
        }
        let v5 = self.sb.has_crc();
        let bs = self.sb.blocksize() as usize;
        let per = if v5 { bs - size_of::<DiskAttr3RmtHdr>() } else { bs };
        let mut out = Vec::with_capacity(len);
        let mut lblk = first;
        while out.len() < len {
            let (b, lin) = self.attr_block(i, recs, lblk, "remote value")?;
            let want = per.min(len - out.len());
            if v5 {
                let (h, data) = DiskAttr3RmtHdr::ref_from_prefix(&b).map_err(|_| {
                    Error::corrupt("xfs attr remote value", lin, lin * bs as u64, "short block")
                })?;
                if h.magic.get() != ATTR3_RMT_MAGIC
                    || h.offset.get() as usize != out.len()
                    || h.bytes.get() as usize != want
                {
                    return Err(Error::corrupt(
                        "xfs attr remote value",
                        lin,
                        lin * bs as u64,
                        format!(
                            "inode {}: header magic {:#010x} offset {} bytes {} (want XARM, {}, {want})",
                            i.ino,
                            h.magic.get(),
                            h.offset.get(),
                            h.bytes.get(),
                            out.len()
                        ),
                    ));
                }
                self.check_crc(i, &b, offset_of!(DiskAttr3RmtHdr, crc), lin, "remote value");
                out.extend(&data[..want]);
            } else {
                out.extend(&b[..want]);
            }
            lblk += 1;
        }
        Ok(out)
    }
}
