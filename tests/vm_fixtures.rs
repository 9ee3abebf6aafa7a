//! The committed fsdax namespace headers (made by the guest kernel; see fixtures/pmem/README.md)
//! parse with daxray's pmem reader, with the dataoff the guest reported.

use daxray::image::pmem;
use std::path::PathBuf;

fn header(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/pmem").join(name);
    let block = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(block.len(), 4096, "{} must be one 4 KiB block", p.display());
    block
}

fn wrapped(block: &[u8], size: usize) -> Vec<u8> {
    let mut img = vec![0u8; size];
    img[4096..8192].copy_from_slice(block);
    img
}

#[test]
fn kernel_made_pfn_headers_parse() {
    for (name, size, dataoff, npfns) in [
        ("pfn-info-256M.bin", 256usize << 20, 6u64 << 20, 64000u64),
        ("pfn-info-512M.bin", 512 << 20, 10 << 20, 128512),
    ] {
        let img = wrapped(&header(name), size);
        let info = pmem::detect(&img).expect("valid header").expect("a pfn signature");
        assert_eq!(info.kind, "fsdax", "{name}");
        assert_eq!(info.dataoff, dataoff, "{name}");
        assert_eq!(info.npfns, npfns, "{name}");
        assert_eq!(info.align, 2 << 20, "{name}");
        // One flipped bit must break the kernel's Fletcher-64 checksum.
        let mut bad = img.clone();
        bad[4096 + 60] ^= 1;
        assert!(pmem::detect(&bad).is_err(), "{name}: corrupted header accepted");
    }
}
