//! The whole pipeline: find the file system, recover it in memory, build the model, walk it.
#![no_main]
use daxray::open::{OpenOptions, open_source};
use daxray_fuzz::{SparseSource, exercise};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = SparseSource::decode(data).arc();
    let Some(kind) = daxray::open::detect_fs(&*src) else { return };
    for raw in [false, true] {
        let opts = OpenOptions { raw, ..Default::default() };
        if let Ok(m) = open_source(src.clone(), kind, &opts) {
            exercise(&*m.fs);
            let _ = serde_json_len(&m.recovery);
        }
    }
});

fn serde_json_len(r: &daxray::open::RecoveryReport) -> usize {
    r.details.to_string().len() + r.findings.len()
}
