#![no_main]
//! The whole-image path over arbitrary bytes: namespace detection, file-system detection,
//! in-memory recovery and the model.
use daxray::image::{BlockSource, MemSource, Window};
use daxray::open::{OpenOptions, open_source};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let start = match daxray::image::pmem::detect(data) {
        Ok(Some(info)) => info.dataoff,
        _ => 0,
    };
    let src = MemSource::new(data.to_vec(), "fuzz");
    let Ok(win) = Window::new(src, start) else { return };
    let raw: Arc<dyn BlockSource> = Arc::new(win);
    let Some(kind) = daxray::open::detect_fs(&*raw) else { return };
    for raw_view in [false, true] {
        if let Ok(m) = open_source(raw.clone(), kind, &OpenOptions { raw: raw_view, ..Default::default() }) {
            daxray_fuzz::exercise(&*m.fs);
        }
    }
});
