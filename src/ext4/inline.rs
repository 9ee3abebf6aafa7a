//! In-inode extended attributes, as far as inline data needs them: the `system.data` value
//! holds the part of an inline file or directory that does not fit in i_block.

use zerocopy::byteorder::{LE, U16, U32};
use zerocopy::{FromBytes, Immutable, KnownLayout};

/// Magic at the start of the in-inode xattr area.
pub const XATTR_MAGIC: u32 = 0xEA02_0000;
/// Name index of the `system.` namespace.
const INDEX_SYSTEM: u8 = 7;

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

/// One in-inode extended attribute.
#[derive(Debug, Clone)]
pub struct Xattr {
    /// Namespace index.
    pub index: u8,
    /// Name without its namespace prefix.
    pub name: Vec<u8>,
    /// Value (empty when stored in another inode).
    pub value: Vec<u8>,
}

/// Parse the in-inode xattr area (the bytes after the inode's extra fields). Returns `Err`
/// with a description when the area is malformed.
pub fn parse_ibody(area: &[u8]) -> Result<Vec<Xattr>, String> {
    let Some(m) = area.get(..4) else { return Ok(vec![]) };
    if u32::from_le_bytes([m[0], m[1], m[2], m[3]]) != XATTR_MAGIC {
        return Ok(vec![]);
    }
    let entries = &area[4..];
    let mut out = Vec::new();
    let mut pos = 0usize;
    // Each entry takes at least 16 bytes, so this bounds the loop.
    while pos + 4 <= entries.len() {
        if entries[pos..pos + 4] == [0, 0, 0, 0] {
            return Ok(out);
        }
        let (e, _) = XattrEntry::ref_from_prefix(&entries[pos..])
            .map_err(|_| format!("xattr entry at {pos} runs past the inode"))?;
        let nlen = usize::from(e.e_name_len);
        let name = entries
            .get(pos + 16..pos + 16 + nlen)
            .ok_or_else(|| format!("xattr name at {pos} runs past the inode"))?;
        let value = if e.e_value_inum.get() != 0 {
            Vec::new()
        } else {
            let vo = usize::from(e.e_value_offs.get());
            let vs = e.e_value_size.get() as usize;
            entries
                .get(vo..vo.saturating_add(vs))
                .ok_or_else(|| format!("xattr value {vo}+{vs} runs past the inode"))?
                .to_vec()
        };
        out.push(Xattr { index: e.e_name_index, name: name.to_vec(), value });
        pos += (16 + nlen + 3) & !3;
    }
    Ok(out)
}

/// The `system.data` value among `attrs` (empty when absent).
pub fn system_data(attrs: &[Xattr]) -> Vec<u8> {
    attrs
        .iter()
        .find(|a| a.index == INDEX_SYSTEM && a.name == b"data")
        .map(|a| a.value.clone())
        .unwrap_or_default()
}
