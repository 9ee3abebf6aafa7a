#![no_main]
//! XFS metadata: patches over a real kernel-made image (fixtures/xfs/kernel.img.gz), opened raw:
//! superblock, AG headers, inodes, forks, bmbt, directories, symlinks.
use daxray::image::BlockSource;
use daxray::xfs::Xfs;
use daxray_fuzz::{Patched, exercise, gunzip};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

static BASE: OnceLock<Arc<Vec<u8>>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let base = BASE.get_or_init(|| Arc::new(gunzip(include_bytes!("../../fixtures/xfs/kernel.img.gz"))));
    // Half the inputs aim at the first AG's headers and inode chunks (the first 2 MiB).
    let region = if data.first().is_some_and(|b| b & 1 == 0) { Some((0, 2 << 20)) } else { None };
    let src: Arc<dyn BlockSource> =
        Arc::new(Patched::new(base.clone(), data.get(1..).unwrap_or(&[]), region));
    if let Ok(fs) = Xfs::open(src) {
        exercise(&fs);
    }
});
