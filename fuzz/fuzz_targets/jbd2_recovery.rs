#![no_main]
//! jbd2 scan and in-memory recovery: patches over a real crash image made by the kernel
//! (fixtures/ext4/kernel-dirty.img.gz: committed transactions not checkpointed), then the
//! journal listing, recovery and the recovered model.
use daxray::FsKind;
use daxray::image::BlockSource;
use daxray::open::{OpenOptions, open_source};
use daxray_fuzz::{Patched, exercise, gunzip};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

static BASE: OnceLock<(Arc<Vec<u8>>, (u64, u64))> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let (base, region) = BASE.get_or_init(|| {
        let bytes = Arc::new(gunzip(include_bytes!("../../fixtures/ext4/kernel-dirty.img.gz")));
        // Aim at the journal when we can find it (its extents), else anywhere.
        let src: Arc<dyn BlockSource> = Arc::new(daxray::image::MemSource::new(bytes.to_vec(), "base"));
        let region = daxray::ext4::Ext4::open(src)
            .ok()
            .and_then(|fs| {
                let ext = daxray::FileSystem::map(&fs, 8).ok()?;
                let bs = daxray::FileSystem::block_size(&fs) as u64;
                let first = ext.first()?;
                let blocks: u64 = ext.iter().map(|e| e.length).sum();
                Some((first.physical * bs, blocks * bs))
            })
            .unwrap_or((0, bytes.len() as u64));
        (bytes, region)
    });
    // Half the inputs hit the journal, half the whole image (in-place metadata).
    let region = if data.first().is_some_and(|b| b & 1 == 0) { Some(*region) } else { None };
    let src: Arc<dyn BlockSource> =
        Arc::new(Patched::new(base.clone(), data.get(1..).unwrap_or(&[]), region));
    let _ = daxray::cli::listing::ext4(src.clone(), None, true);
    if let Ok(m) = open_source(src, FsKind::Ext4, &OpenOptions::default()) {
        exercise(&*m.fs);
    }
});
