#![no_main]
//! The XFS log: head/tail search, record and op parsing, transaction reassembly and in-memory
//! recovery, over arbitrary bytes (seeded from real images: see fuzz/README.md).
use daxray::FsKind;
use daxray::image::{BlockSource, MemSource};
use daxray::open::{OpenOptions, open_source};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let src: Arc<dyn BlockSource> = Arc::new(MemSource::new(data.to_vec(), "fuzz"));
    let _ = daxray::xlog::listing(src.clone(), None, true);
    if let Ok(m) = open_source(src, FsKind::Xfs, &OpenOptions::default()) {
        daxray_fuzz::exercise(&*m.fs);
    }
});
