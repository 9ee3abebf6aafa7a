#![no_main]
//! Claims files (JSON Lines) for `daxray check`, read through the public reader.
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static DIR: OnceLock<tempfile_dir::Dir> = OnceLock::new();

mod tempfile_dir {
    /// A per-process scratch folder, removed at exit by the OS temp cleaner at worst.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Self {
            let p = std::env::temp_dir().join(format!("daxray-fuzz-claims-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&p);
            Dir(p)
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(tempfile_dir::Dir::new);
    let p = dir.0.join("claims.jsonl");
    if std::fs::write(&p, data).is_ok() {
        let _ = daxray::check::read_claims(&p);
    }
});
