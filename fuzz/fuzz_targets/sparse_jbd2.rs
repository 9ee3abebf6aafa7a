//! jbd2: open the journal, the three recovery passes into an overlay, and the listing
//! (live and old transactions, fast commits).
#![no_main]
use daxray_fuzz::SparseSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = SparseSource::decode(data).arc();
    if let Ok(run) = daxray::ext4::journal::recover_full(src.clone(), None) {
        // Read back every replayed block through the overlay.
        for &blk in run.replayed().keys().take(256) {
            let _ = run.view.read_at(blk.saturating_mul(1024), 1024);
        }
    }
    for all in [false, true] {
        let _ = daxray::cli::listing::ext4(src.clone(), None, all);
    }
});
