#![no_main]
//! The fsdax namespace header (`NVDIMM_PFN_INFO` at byte 4096). Inputs of at most one page are
//! placed at byte 4096 (seeds: the kernel-made info blocks in fixtures/pmem/), longer ones are
//! taken as whole images.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() > 4096 {
        let _ = daxray::image::pmem::detect(data);
    } else {
        let mut img = vec![0u8; 8192];
        img[4096..4096 + data.len()].copy_from_slice(data);
        let _ = daxray::image::pmem::detect(&img);
    }
});
