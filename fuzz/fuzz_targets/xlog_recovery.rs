#![no_main]
//! The XFS log: patches over a real crash copy (fixtures/xfs/kernel-dirty.img.gz: a log the
//! kernel would replay), aimed at the log half the time: head/tail search, records, ops,
//! transaction reassembly, in-memory recovery, the listing and the recovered model.
use daxray::FsKind;
use daxray::image::BlockSource;
use daxray::open::{OpenOptions, open_source};
use daxray_fuzz::{Patched, exercise, gunzip};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

static BASE: OnceLock<(Arc<Vec<u8>>, (u64, u64))> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let (base, log) = BASE.get_or_init(|| {
        let bytes = Arc::new(gunzip(include_bytes!("../../fixtures/xfs/kernel-dirty.img.gz")));
        // The internal log from the superblock (big-endian): sb_logstart at 48, sb_blocksize at 4,
        // sb_agblocks at 84, sb_logblocks at 96, sb_agblklog at 124.
        let be32 = |o: usize| u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as u64;
        let logstart = (be32(48) << 32) | be32(52);
        let (bs, agblocks, logblocks, agblklog) = (be32(4), be32(84), be32(96), u64::from(bytes[124]));
        let byte = ((logstart >> agblklog) * agblocks + (logstart & ((1 << agblklog) - 1))) * bs;
        let region = if byte < bytes.len() as u64 && logblocks > 0 {
            (byte, (logblocks * bs).min(bytes.len() as u64 - byte))
        } else {
            (0, bytes.len() as u64)
        };
        (bytes, region)
    });
    let region = if data.first().is_some_and(|b| b & 1 == 0) { Some(*log) } else { None };
    let src: Arc<dyn BlockSource> =
        Arc::new(Patched::new(base.clone(), data.get(1..).unwrap_or(&[]), region));
    let _ = daxray::cli::listing::xfs(src.clone(), &Default::default(), true);
    if let Ok(m) = open_source(src, FsKind::Xfs, &OpenOptions::default()) {
        exercise(&*m.fs);
    }
});
