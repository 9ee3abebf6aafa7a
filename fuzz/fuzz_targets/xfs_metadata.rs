#![no_main]
//! XFS metadata over arbitrary bytes (seed the corpus with the start of a real mkfs.xfs image:
//! see fuzz/README.md), opened raw.
use daxray::image::{BlockSource, MemSource};
use daxray::xfs::Xfs;
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let src: Arc<dyn BlockSource> = Arc::new(MemSource::new(data.to_vec(), "fuzz"));
    if let Ok(fs) = Xfs::open(src) {
        daxray_fuzz::exercise(&fs);
    }
});
