//! Extended attributes (`fs/ext4/xattr.h`): the entries in the inode after its extra fields, and
//! the external block `i_file_acl` points at (header, entries from byte 32, values from the block's
//! start, crc32c checksum under metadata_csum), with their name prefixes; values kept in an
//! ea_inode are read from it. POSIX ACLs are turned from ext4's compact form into the
//! `posix_acl_xattr` form `getxattr(2)` returns.

use super::Ext4;
use super::csum::crc32c_raw;
use crate::error::{Error, Result};
use crate::fs::Xattr;
use core::mem::offset_of;
use zerocopy::byteorder::{LE, U16, U32};
use zerocopy::{FromBytes, Immutable, KnownLayout};

/// Magic at the start of the in-inode xattr area.
pub const XATTR_MAGIC: u32 = 0xEA02_0000;

/// `struct ext4_xattr_entry` (the name follows, padded to 4 bytes).
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone)]
#[repr(C)]
pub struct XattrEntry {
    /// Name length.
    pub e_name_len: u8,
    /// Namespace index.
    pub e_name_index: u8,
    /// Value offset from the first entry.
    pub e_value_offs: U16<LE>,
    /// Value inode (ea_inode), else 0.
    pub e_value_inum: U32<LE>,
    /// Value size.
    pub e_value_size: U32<LE>,
    /// Hash.
    pub e_hash: U32<LE>,
}
const _: () = assert!(size_of::<XattrEntry>() == 16);

/// `struct ext4_xattr_header`: the head of an external xattr block.
#[derive(FromBytes, KnownLayout, Immutable, Debug, Clone)]
#[repr(C)]
pub struct XattrHeader {
    /// `EXT4_XATTR_MAGIC` (0xEA020000).
    pub h_magic: U32<LE>,
    /// Inodes sharing the block.
    pub h_refcount: U32<LE>,
    /// Blocks used (1).
    pub h_blocks: U32<LE>,
    /// Hash of all attributes.
    pub h_hash: U32<LE>,
    /// crc32c of the block (metadata_csum).
    pub h_checksum: U32<LE>,
    /// Reserved.
    pub h_reserved: [U32<LE>; 3],
}
const _: () = assert!(size_of::<XattrHeader>() == 32);
const _: () = assert!(offset_of!(XattrHeader, h_checksum) == CSUM_AT);
const _: () = assert!(offset_of!(XattrEntry, e_value_offs) == 2);
const _: () = assert!(offset_of!(XattrEntry, e_value_inum) == 4);
const _: () = assert!(offset_of!(XattrEntry, e_value_size) == 8);

/// Offset of `h_checksum` in the block.
const CSUM_AT: usize = 16;
/// Largest value read from an ea_inode (the kernel's `XATTR_SIZE_MAX`).
const VALUE_MAX: u32 = 65536;

/// One entry as stored: namespace index, name without prefix, and the value or where it is.
#[derive(Debug, Clone)]
pub struct RawXattr {
    /// `e_name_index`.
    pub index: u8,
    /// The name after its prefix.
    pub name: Vec<u8>,
    /// The value (empty when it lives in an ea_inode).
    pub value: Vec<u8>,
    /// `e_value_inum`: the inode holding the value, or 0.
    pub value_inum: u32,
    /// `e_value_size`.
    pub value_size: u32,
}

/// Parse the entries at the start of `entries` (ended by four zero bytes or the end); value
/// offsets count from the start of `values`. An error says which entry and byte is bad.
pub fn parse_entries(entries: &[u8], values: &[u8]) -> std::result::Result<Vec<RawXattr>, String> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    // Each entry takes at least 16 bytes, so this bounds the loop.
    while pos + 4 <= entries.len() {
        if entries[pos..pos + 4] == [0, 0, 0, 0] {
            break;
        }
        let (e, _) = XattrEntry::ref_from_prefix(&entries[pos..])
            .map_err(|_| format!("xattr entry at {pos} runs past the area"))?;
        let nlen = usize::from(e.e_name_len);
        let name = entries
            .get(pos + 16..pos + 16 + nlen)
            .ok_or_else(|| format!("xattr name of the entry at {pos} runs past the area"))?;
        let (inum, size) = (e.e_value_inum.get(), e.e_value_size.get());
        let value = if inum != 0 {
            Vec::new()
        } else {
            let vo = usize::from(e.e_value_offs.get());
            values
                .get(vo..vo.saturating_add(size as usize))
                .ok_or_else(|| format!("xattr value {vo}+{size} of the entry at {pos} runs past the area"))?
                .to_vec()
        };
        out.push(RawXattr {
            index: e.e_name_index,
            name: name.to_vec(),
            value,
            value_inum: inum,
            value_size: size,
        });
        pos += (16 + nlen + 3) & !3;
    }
    Ok(out)
}

/// The in-inode area (the bytes after the extra fields): its entries, or none without the magic.
pub fn parse_ibody(area: &[u8]) -> std::result::Result<Vec<RawXattr>, String> {
    match area.get(..4) {
        Some(m) if u32::from_le_bytes([m[0], m[1], m[2], m[3]]) == XATTR_MAGIC => {
            parse_entries(&area[4..], &area[4..])
        }
        _ => Ok(vec![]),
    }
}

/// The prefix of namespace `index` (`ext4_xattr_handler_map`), or None for an unknown index.
pub fn prefix(index: u8) -> Option<&'static str> {
    Some(match index {
        1 => "user.",
        2 => "system.posix_acl_access",
        3 => "system.posix_acl_default",
        4 => "trusted.",
        6 => "security.",
        7 => "system.",
        8 => "system.richacl",
        _ => return None,
    })
}

/// An ext4 ACL (`ext4_acl_header` version 1, then 4-byte short entries for the owner, group,
/// mask and other and 8-byte entries for named users and groups) in the `posix_acl_xattr` form
/// (version 2, 8-byte entries, id 0xffffffff where ext4 keeps none).
pub fn acl_to_xattr(v: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let rd16 = |at: usize| v.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    if v.get(..4) != Some(&1u32.to_le_bytes()[..]) {
        return Err("ACL header is not version 1".into());
    }
    let mut out = 2u32.to_le_bytes().to_vec();
    let mut at = 4;
    while at < v.len() {
        let (Some(tag), Some(perm)) = (rd16(at), rd16(at + 2)) else {
            return Err(format!("ACL entry at byte {at} is cut short"));
        };
        let id = match tag {
            1 | 4 | 0x10 | 0x20 => {
                at += 4;
                u32::MAX
            }
            2 | 8 => {
                let id =
                    v.get(at + 4..at + 8).ok_or_else(|| format!("ACL entry at byte {at} is cut short"))?;
                at += 8;
                u32::from_le_bytes([id[0], id[1], id[2], id[3]])
            }
            t => return Err(format!("ACL entry at byte {at} has unknown tag {t:#x}")),
        };
        out.extend(tag.to_le_bytes());
        out.extend(perm.to_le_bytes());
        out.extend(id.to_le_bytes());
    }
    Ok(out)
}

impl Ext4 {
    /// Inode `ino`'s extended attributes as `getxattr(2)` would give them: the in-inode ones,
    /// then those of its xattr block. A bad block checksum or an entry of an unknown namespace is
    /// a finding; an area that cannot be parsed is an error naming it.
    pub fn xattrs(&self, ino: u64) -> Result<Vec<Xattr>> {
        let i = self.inode(ino)?;
        let at = i.offset.saturating_add(128).saturating_add(i.extra_isize() as u64);
        let mut raw = parse_ibody(i.xattr_area())
            .map_err(|e| Error::corrupt("ext4 inode xattr", i.block, at, format!("inode {ino}: {e}")))?;
        let blk = i.file_acl();
        if blk != 0 {
            raw.extend(self.xattr_block(ino, blk)?);
        }
        let mut out = Vec::with_capacity(raw.len());
        for r in raw {
            let Some(p) = prefix(r.index) else {
                self.findings.error(
                    "ext4 xattr",
                    Some(i.block),
                    Some(i.offset),
                    format!(
                        "inode {ino}: attribute {:?} in unknown namespace {}",
                        String::from_utf8_lossy(&r.name),
                        r.index
                    ),
                );
                continue;
            };
            let mut value = if r.value_inum != 0 { self.ea_inode_value(ino, &r)? } else { r.value };
            if matches!(r.index, 2 | 3) {
                value = acl_to_xattr(&value).map_err(|e| {
                    Error::corrupt("ext4 xattr", i.block, i.offset, format!("inode {ino}: POSIX ACL: {e}"))
                })?;
            }
            let mut name = p.as_bytes().to_vec();
            name.extend(&r.name);
            out.push(Xattr { name, value });
        }
        Ok(out)
    }

    /// The entries of xattr block `blk` (of inode `ino`), its header and checksum checked.
    fn xattr_block(&self, ino: u64, blk: u64) -> Result<Vec<RawXattr>> {
        let bs = self.sb.block_size as usize;
        if blk >= self.sb.blocks_count {
            return Err(Error::corrupt(
                "ext4 xattr block",
                blk,
                0,
                format!(
                    "inode {ino}: i_file_acl {blk} is past the file system's {} blocks",
                    self.sb.blocks_count
                ),
            ));
        }
        let off = blk * bs as u64;
        let b = self.src.read_at(off, bs)?;
        let bad = |d: String| Error::corrupt("ext4 xattr block", blk, off, format!("inode {ino}: {d}"));
        let (h, _) = XattrHeader::ref_from_prefix(&b).map_err(|_| bad("short block".into()))?;
        if h.h_magic.get() != XATTR_MAGIC {
            return Err(bad(format!("bad magic {:#010x} (want {XATTR_MAGIC:#010x})", h.h_magic.get())));
        }
        if h.h_blocks.get() != 1 {
            return Err(bad(format!("h_blocks {} (want 1)", h.h_blocks.get())));
        }
        if self.sb.metadata_csum() {
            let mut c = crc32c_raw(self.sb.csum_seed, &blk.to_le_bytes());
            c = crc32c_raw(c, &b[..CSUM_AT]);
            c = crc32c_raw(c, &[0; 4]);
            c = crc32c_raw(c, &b[CSUM_AT + 4..]);
            if c != h.h_checksum.get() {
                self.findings.error(
                    "ext4 xattr block",
                    Some(blk),
                    Some(off + CSUM_AT as u64),
                    format!(
                        "inode {ino}: checksum {:#010x} does not match computed {c:#010x}",
                        h.h_checksum.get()
                    ),
                );
            }
        }
        parse_entries(&b[size_of::<XattrHeader>()..], &b).map_err(bad)
    }

    /// A value kept in an ea_inode: its first `e_value_size` bytes.
    fn ea_inode_value(&self, ino: u64, r: &RawXattr) -> Result<Vec<u8>> {
        if r.value_size > VALUE_MAX {
            return Err(Error::corrupt(
                "ext4 xattr",
                0,
                0,
                format!(
                    "inode {ino}: value in inode {} of {} bytes exceeds {VALUE_MAX}",
                    r.value_inum, r.value_size
                ),
            ));
        }
        let v = crate::fs::FileSystem::read(self, u64::from(r.value_inum), 0, r.value_size as usize)?;
        if v.len() != r.value_size as usize {
            return Err(Error::corrupt(
                "ext4 xattr",
                0,
                0,
                format!(
                    "inode {ino}: value inode {} holds {} of {} bytes",
                    r.value_inum,
                    v.len(),
                    r.value_size
                ),
            ));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random areas and ACLs behind a valid magic never panic; every refusal is an error value.
    #[test]
    fn hostile_areas_do_not_panic() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for round in 0..20_000 {
            let mut b = vec![0u8; 64 + round % 200];
            for v in b.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *v = (x >> 24) as u8;
            }
            b[..4].copy_from_slice(&XATTR_MAGIC.to_le_bytes());
            let _ = parse_ibody(&b);
            let _ = parse_entries(&b[32..], &b);
            b[..4].copy_from_slice(&1u32.to_le_bytes());
            let _ = acl_to_xattr(&b);
            let _ = crate::xfs::attr::acl_to_xattr(&b);
        }
    }

    /// An ACL in ext4's form (owner, named user, group, mask, other) becomes the 8-byte-entry
    /// form with the named user's id kept and the others' ids unset.
    #[test]
    fn acl_in_xattr_form() {
        let mut v = 1u32.to_le_bytes().to_vec();
        v.extend([1, 0, 6, 0]);
        v.extend([2, 0, 4, 0, 0xe8, 3, 0, 0]);
        v.extend([4, 0, 4, 0, 0x10, 0, 4, 0, 0x20, 0, 0, 0]);
        let out = acl_to_xattr(&v).unwrap();
        assert_eq!(out.len(), 4 + 5 * 8);
        assert_eq!(&out[..4], &2u32.to_le_bytes());
        assert_eq!(&out[4..12], &[1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(&out[12..20], &[2, 0, 4, 0, 0xe8, 3, 0, 0]);
        assert!(acl_to_xattr(&v[..9]).is_err());
    }
}
