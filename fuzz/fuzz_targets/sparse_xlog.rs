//! The XFS log: head/tail search, record and transaction parsing, in-memory recovery, listing.
#![no_main]
use daxray_fuzz::SparseSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = SparseSource::decode(data).arc();
    if let Ok((view, report)) = daxray::xlog::recover_view(src.clone(), &Default::default()) {
        let _ = view.read_at(0, 512);
        let _ = report.details.to_string();
    }
    for all in [false, true] {
        let _ = daxray::cli::listing::xfs(src.clone(), &Default::default(), all);
    }
});
