//! ext4 metadata without recovery: superblock, group descriptors, inodes, extent trees, block
//! maps, inline data, directories (linear and htree), symlinks.
#![no_main]
use daxray::ext4::Ext4;
use daxray_fuzz::{SparseSource, exercise};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = SparseSource::decode(data).arc();
    if let Ok(fs) = Ext4::open(src) {
        exercise(&fs);
        // Inodes the walk may not reach (orphans, the journal inode, reserved ones).
        for ino in 1..=16 {
            if let Ok(i) = fs.inode(ino) {
                let _ = fs.map_inode(&i);
                let _ = fs.inline_data(&i);
            }
        }
    }
});
