//! The checksums jbd2 uses, in the kernel's conventions.
//!
//! The kernel's `crc32c(seed, data)` has no pre- or post-inversion: [`raw`] (from
//! [`crate::crc32c`]).
//! Legacy (compat) transaction checksums use `crc32_be`: the MSB-first CRC-32 with no final xor.

use crc::{CRC_32_MPEG_2, Crc};

pub use crate::crc32c::raw;

/// `raw` over several pieces, as if concatenated.
pub fn raw_parts(seed: u32, parts: &[&[u8]]) -> u32 {
    parts.iter().fold(seed, |s, p| raw(s, p))
}

const CRC32_BE: Crc<u32> = Crc::<u32>::new(&CRC_32_MPEG_2);

/// The kernel's `crc32_be(crc, data)`.
pub fn crc32_be(state: u32, data: &[u8]) -> u32 {
    let mut d = CRC32_BE.digest_with_initial(state);
    d.update(data);
    d.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_standard_check_value() {
        // The standard check value of CRC-32C over "123456789" is 0xE3069283.
        assert_eq!(!raw(!0, b"123456789"), 0xE306_9283);
        assert_eq!(raw_parts(!0, &[b"1234", b"56789"]), raw(!0, b"123456789"));
    }

    #[test]
    fn crc32_be_matches_mpeg2_check() {
        // CRC-32/MPEG-2 check value over "123456789" is 0x0376E6E7.
        assert_eq!(crc32_be(!0, b"123456789"), 0x0376_E6E7);
        assert_eq!(crc32_be(crc32_be(!0, b"1234"), b"56789"), 0x0376_E6E7);
    }
}
