//! The fsdax namespace header (NVDIMM_PFN_INFO at byte 4096).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Inputs shorter than the header are placed at byte 4096 so that mutations reach it.
    if data.len() >= 8192 {
        let _ = daxray::image::pmem::detect(data);
    } else {
        let mut img = vec![0u8; 8192];
        img[4096..4096 + data.len()].copy_from_slice(data);
        let _ = daxray::image::pmem::detect(&img);
    }
});
