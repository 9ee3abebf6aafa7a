//! XFS v5 metadata checksums: crc32c over the structure with its 4-byte crc field taken as
//! zero, stored little-endian.

/// The crc32c of `buf` with the four bytes at `crc_off` treated as zero.
pub fn crc_with_hole(buf: &[u8], crc_off: usize) -> Option<u32> {
    let end = crc_off.checked_add(4)?;
    let before = buf.get(..crc_off)?;
    let after = buf.get(end..)?;
    let c = crate::crc32c::append(0, before);
    let c = crate::crc32c::append(c, &[0u8; 4]);
    Some(crate::crc32c::append(c, after))
}

/// The stored crc (little-endian) at `crc_off`.
pub fn stored_crc(buf: &[u8], crc_off: usize) -> Option<u32> {
    let b = buf.get(crc_off..crc_off.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// True when the crc stored at `crc_off` matches the contents. `None` when the buffer is too
/// short to hold the field.
pub fn verify(buf: &[u8], crc_off: usize) -> Option<(bool, u32, u32)> {
    let stored = stored_crc(buf, crc_off)?;
    let calc = crc_with_hole(buf, crc_off)?;
    Some((stored == calc, stored, calc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hole_is_zeroed() {
        let mut a = vec![1u8, 2, 3, 4, 9, 9, 9, 9, 5, 6];
        let c1 = crc_with_hole(&a, 4).unwrap(); // OK to unwrap because the buffer holds the field
        a[4..8].copy_from_slice(&[0, 0, 0, 0]);
        assert_eq!(c1, crc32c::crc32c(&a));
        a[4..8].copy_from_slice(&c1.to_le_bytes());
        assert!(verify(&a, 4).unwrap().0); // OK to unwrap because the buffer holds the field
        assert!(verify(&a, 7).is_none());
    }
}
