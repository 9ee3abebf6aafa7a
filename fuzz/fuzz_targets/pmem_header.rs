#![no_main]
//! The fsdax namespace header (`NVDIMM_PFN_INFO` at byte 4096) over arbitrary bytes.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = daxray::image::pmem::detect(data);
});
