//! ext4 metadata checksums: crc32c as the kernel computes it (no final inversion) and the
//! crc16 of the older `gdt_csum` feature.

/// The kernel's `crc32c(seed, data)`: CRC-32C with the given running value and no final
/// inversion.
pub use crate::crc32c::raw as crc32c_raw;

/// The per-inode checksum seed: crc32c over the inode number and generation.
pub fn inode_seed(fs_seed: u32, ino: u32, generation: u32) -> u32 {
    let c = crc32c_raw(fs_seed, &ino.to_le_bytes());
    crc32c_raw(c, &generation.to_le_bytes())
}

/// CRC-16 as e2fsprogs' `ext2fs_crc16` (reflected poly 0x8005), continuing from `crc`.
pub fn crc16(mut crc: u16, data: &[u8]) -> u16 {
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xA001 } else { crc >> 1 };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_standard_check_value() {
        // The standard CRC-32C check value of "123456789" is 0xE3069283; the raw form
        // starts from !0 and skips the final inversion.
        assert_eq!(!crc32c_raw(!0, b"123456789"), 0xE306_9283);
    }

    #[test]
    fn crc16_matches_modbus_check_value() {
        // CRC-16/MODBUS (init 0xffff, reflected 0x8005) check value.
        assert_eq!(crc16(0xFFFF, b"123456789"), 0x4B37);
    }
}
