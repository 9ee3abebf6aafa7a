#![no_main]
//! Claims files (JSON Lines) for `daxray check`: the parser and each claim's validation.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(claims) = daxray::check::parse_claims(&text, "fuzz input") {
        for c in &claims {
            let _ = c.validate();
        }
    }
});
