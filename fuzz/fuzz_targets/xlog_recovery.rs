#![no_main]
//! The XFS log: head/tail search, records, op headers, transaction reassembly and in-memory
//! recovery. Patches over a real crash image made by the kernel (fixtures/xfs/kernel-dirty.img.gz:
//! a dirty log), aimed at the log half of the time.
use daxray::FsKind;
use daxray::image::{BlockSource, MemSource};
use daxray::open::{OpenOptions, open_source};
use daxray_fuzz::{Patched, exercise, gunzip};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

static BASE: OnceLock<(Arc<Vec<u8>>, (u64, u64))> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let (base, log) = BASE.get_or_init(|| {
        let bytes = Arc::new(gunzip(include_bytes!("../../fixtures/xfs/kernel-dirty.img.gz")));
        let src: Arc<dyn BlockSource> = Arc::new(MemSource::new(bytes.to_vec(), "base"));
        let log = daxray::xlog::analyse(&src, None, false)
            .map(|a| (a.base, a.bytes))
            .unwrap_or((0, bytes.len() as u64));
        (bytes, log)
    });
    let region = if data.first().is_some_and(|b| b & 1 == 0) { Some(*log) } else { None };
    let src: Arc<dyn BlockSource> = Arc::new(Patched::new(base.clone(), data.get(1..).unwrap_or(&[]), region));
    let _ = daxray::xlog::listing(src.clone(), None, true);
    if let Ok(m) = open_source(src, FsKind::Xfs, &OpenOptions::default()) {
        exercise(&*m.fs);
    }
});
