//! XFS metadata without log recovery: superblock, AG headers, inodes, forks, bmbt, directories.
#![no_main]
use daxray::xfs::Xfs;
use daxray_fuzz::{SparseSource, exercise};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = SparseSource::decode(data).arc();
    if let Ok(fs) = Xfs::open(src) {
        exercise(&fs);
    }
});
