#![no_main]
//! ext4 metadata: patches over a real `mkfs.ext4 -d` image (fixtures/ext4/mkfs-d.img.gz: inline
//! data, a 300-entry directory, a deep chain, symlinks), opened raw.
use daxray::FsKind;
use daxray::image::BlockSource;
use daxray::open::{OpenOptions, open_source};
use daxray_fuzz::{Patched, exercise, gunzip};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

static BASE: OnceLock<Arc<Vec<u8>>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let base = BASE.get_or_init(|| Arc::new(gunzip(include_bytes!("../../fixtures/ext4/mkfs-d.img.gz"))));
    // Metadata of this small image sits in its first 2 MiB (superblock, group descriptors,
    // bitmaps, inode table, directories); aim the patches there.
    let src: Arc<dyn BlockSource> = Arc::new(Patched::new(base.clone(), data, Some((0, 2 << 20))));
    if let Ok(m) = open_source(src, FsKind::Ext4, &OpenOptions { raw: true, ..Default::default() }) {
        exercise(&*m.fs);
    }
});
