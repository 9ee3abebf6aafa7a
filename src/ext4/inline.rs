//! In-inode extended attributes, as far as inline data needs them: the `system.data` value
//! holds the part of an inline file or directory that does not fit in i_block.

/// Name index of the `system.` namespace.
const INDEX_SYSTEM: u8 = 7;

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
    let raw = super::xattr::parse_ibody(area)?;
    Ok(raw.into_iter().map(|r| Xattr { index: r.index, name: r.name, value: r.value }).collect())
}

/// The `system.data` value among `attrs` (empty when absent).
pub fn system_data(attrs: &[Xattr]) -> Vec<u8> {
    attrs
        .iter()
        .find(|a| a.index == INDEX_SYSTEM && a.name == b"data")
        .map(|a| a.value.clone())
        .unwrap_or_default()
}
