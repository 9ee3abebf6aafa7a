//! CRC-32C (Castagnoli), the checksum of ext4 `metadata_csum`, jbd2 v2/v3 and XFS v5.
//!
//! Computed by the `crc-fast` crate, which folds with carry-less multiplication (PCLMULQDQ, and
//! VPCLMULQDQ/AVX-512 where the CPU has them) and falls back to tables elsewhere. On 4 KiB
//! blocks it runs at about twice the speed of the SSE4.2 `crc32` instruction loop, and most of a
//! recovery's work is checksumming logged blocks.
//!
//! Two conventions are in use:
//! - [`raw`]: the kernel's `crc32c(seed, data)`, no inversion on entry or exit (ext4, jbd2);
//! - [`append`]: the usual one (inverted on entry and exit), for XFS's `crc32c(~0, ...)` style.

use crc_fast::{CrcAlgorithm, Digest};

/// The kernel's `crc32c(seed, data)`: CRC-32C with running value `seed`, no final inversion.
pub fn raw(seed: u32, data: &[u8]) -> u32 {
    let mut d = Digest::new_with_init_state(CrcAlgorithm::Crc32Iscsi, u64::from(seed));
    d.update(data);
    // finalize() applies CRC-32/ISCSI's xorout (all ones): undo it. The value fits 32 bits.
    (d.finalize() as u32) ^ !0
}

/// CRC-32C of `data` continuing from the finished checksum `crc` (inverted on entry and exit):
/// `append(append(0, a), b)` is the CRC-32C of `a` then `b`.
pub fn append(crc: u32, data: &[u8]) -> u32 {
    !raw(!crc, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_check_value() {
        // The standard check value of CRC-32C over "123456789" is 0xE3069283.
        assert_eq!(append(0, b"123456789"), 0xE306_9283);
        assert_eq!(!raw(!0, b"123456789"), 0xE306_9283);
        assert_eq!(append(append(0, b"1234"), b"56789"), 0xE306_9283);
    }

    #[test]
    fn agrees_with_the_bitwise_definition_at_every_length() {
        // Reflected polynomial 0x82F63B78, one bit at a time: the definition, not a table.
        fn slow(mut c: u32, data: &[u8]) -> u32 {
            for &b in data {
                c ^= u32::from(b);
                for _ in 0..8 {
                    c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
                }
            }
            c
        }
        let data: Vec<u8> = (0..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        for len in (0..300).chain([511, 512, 513, 1024, 4095, 4096, 4097, 5000]) {
            for seed in [0u32, !0, 0x1234_5678] {
                assert_eq!(raw(seed, &data[..len]), slow(seed, &data[..len]), "len {len} seed {seed:#x}");
            }
            // And against an independent implementation (the crc32c crate's instruction loop).
            assert_eq!(append(0x9E37_79B9, &data[..len]), crc32c::crc32c_append(0x9E37_79B9, &data[..len]));
        }
    }
}
