//! Helpers shared by the integration tests (`mod common;`): whether a test may run (tools, root,
//! the guest kernel), where the public corpus and the committed fixtures are, unpacking them, and
//! hashing files.

#![allow(dead_code)]

pub mod logdump;

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A test that cannot run: fails with `why` (what to install or do), or, when
/// `DAXRAY_SKIP_ROOT_TESTS=1` is set, prints that it skipped and returns false (the test then
/// returns).
pub fn cannot_run(why: &str) -> bool {
    if daxray::oracle::tests_may_skip() {
        eprintln!("SKIPPED (DAXRAY_SKIP_ROOT_TESTS=1): {why}");
        false
    } else {
        panic!("{why}")
    }
}

/// True when every tool in `tools` is installed (and we are root, when `root`); otherwise
/// [`cannot_run`] with what to install.
pub fn ready(tools: &[&str], root: bool) -> bool {
    match daxray::oracle::require(tools, root) {
        Ok(()) => true,
        Err(why) => cannot_run(&why),
    }
}

/// The guest kernel assets for the real-VM tests (`daxray vm setup`), after checking root. `None`
/// when `DAXRAY_SKIP_ROOT_TESTS=1` (it prints that `test` skipped); panics naming what to
/// install otherwise.
pub fn vm_assets(test: &str) -> Option<daxray::vm::Assets> {
    if daxray::oracle::tests_may_skip() {
        eprintln!("{test}: SKIPPED (DAXRAY_SKIP_ROOT_TESTS=1): the real-kernel tests did not run");
        return None;
    }
    assert!(daxray::sys::is_root(), "{test} needs root (the VM tests run as root in CI)");
    match daxray::vm::setup(None, None) {
        Ok(a) => Some(a),
        Err(e) => panic!(
            "{test} needs the guest kernel and tools: {e}\n(install: apt-get install qemu-system-x86 \
             busybox-static e2fsprogs xfsprogs; then `daxray vm setup`)"
        ),
    }
}

/// The public corpus folder: `DAXRAY_CORPUS`, else `shared/corpus` beside the crate or beside one
/// of its parent folders (git worktrees sit one level deeper). Panics with what to set when
/// absent.
pub fn corpus() -> PathBuf {
    let p = match std::env::var_os("DAXRAY_CORPUS") {
        Some(c) => PathBuf::from(c),
        None => {
            let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
            crate_dir
                .ancestors()
                .skip(1)
                .map(|a| a.join("shared/corpus"))
                .find(|p| p.is_dir())
                .unwrap_or_else(|| crate_dir.join("../shared/corpus"))
        }
    };
    assert!(p.is_dir(), "corpus not found at {} (set DAXRAY_CORPUS to the corpus folder)", p.display());
    p
}

/// The e2fsprogs test images in the corpus (`<corpus>/e2fsprogs`, one folder a case).
pub fn e2fsprogs_corpus() -> PathBuf {
    let e = corpus().join("e2fsprogs");
    assert!(
        e.is_dir(),
        "e2fsprogs corpus not found at {} (set DAXRAY_CORPUS to the folder holding e2fsprogs/)",
        e.display()
    );
    e
}

/// A committed fixture, `fixtures/<rel>`, which must exist.
pub fn fixture(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel);
    assert!(p.exists(), "fixture {} is missing (it is committed; remake with fixtures/make.sh)", p.display());
    p
}

/// Decompress the gzip file `src` into `dst`.
pub fn gunzip(src: &Path, dst: &Path) {
    let f = std::fs::File::open(src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let mut out = std::fs::File::create(dst).unwrap_or_else(|e| panic!("{}: {e}", dst.display()));
    std::io::copy(&mut flate2::read::GzDecoder::new(f), &mut out)
        .unwrap_or_else(|e| panic!("gunzip {} -> {}: {e}", src.display(), dst.display()));
}

/// Decompress the committed fixture `fixtures/<dir>/<name>.img.gz` into a new temporary folder;
/// returns the folder (removed when dropped) and the image in it.
pub fn unpack_fixture(dir: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
    let src = fixture(&format!("{dir}/{name}.img.gz"));
    let tmp = tempfile::tempdir().expect("temporary folder");
    let img = tmp.path().join(format!("{name}.img"));
    gunzip(&src, &img);
    (tmp, img)
}

/// Unpack one e2fsprogs test case (`image.gz`, `image.bz2` or `image.tar.bz2`) into `tmp`: the
/// image and, when the case ships one, its external journal (`<image>.jnl`). `None` when the
/// case has no image.
pub fn unpack_e2fsprogs_case(case: &Path, tmp: &Path) -> Option<(PathBuf, Option<PathBuf>)> {
    let name = case.file_name()?.to_string_lossy().to_string();
    let img = tmp.join(format!("{name}.img"));
    let run = |cmd: &mut Command| {
        let st =
            cmd.status().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (install gzip, bzip2, tar)"));
        assert!(st.success(), "{cmd:?} failed");
    };
    let plain = |tool: &str, file: &str| {
        let f = std::fs::File::create(&img).expect("create temporary image");
        run(Command::new(tool).arg("-dc").arg(case.join(file)).stdout(f));
    };
    if case.join("image.gz").exists() {
        plain("gzip", "image.gz");
        Some((img, None))
    } else if case.join("image.bz2").exists() {
        plain("bzip2", "image.bz2");
        Some((img, None))
    } else if case.join("image.tar.bz2").exists() {
        let out = tmp.join(format!("{name}.tar"));
        std::fs::create_dir_all(&out).expect("mkdir");
        run(Command::new("tar").arg("-xjf").arg(case.join("image.tar.bz2")).arg("-C").arg(&out));
        let mut imgs: Vec<PathBuf> = std::fs::read_dir(&out)
            .expect("read unpacked tarball")
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "img") || p.file_name().is_some_and(|n| n == "image")
            })
            .collect();
        imgs.sort();
        let i =
            imgs.into_iter().next().unwrap_or_else(|| panic!("{}: no image in the tarball", case.display()));
        let jnl = PathBuf::from(format!("{}.jnl", i.display()));
        let jnl = jnl.exists().then_some(jnl);
        Some((i, jnl))
    } else {
        None
    }
}

/// The sha256 of a file's bytes, as lowercase hex (read in 1 MiB pieces).
pub fn sha256_file(p: &Path) -> String {
    let mut f = std::fs::File::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex::encode(h.finalize())
}

/// A copy of `src` at `dst` with the byte at `at` inverted (a damaged block for a test).
pub fn copy_with_flipped_byte(src: &Path, dst: &Path, at: u64) {
    use std::os::unix::fs::FileExt;
    std::fs::copy(src, dst).unwrap_or_else(|e| panic!("copy {} to {}: {e}", src.display(), dst.display()));
    let f = std::fs::OpenOptions::new().read(true).write(true).open(dst).expect("open the copy");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).expect("read the byte");
    f.write_all_at(&[b[0] ^ 0xFF], at).expect("write the byte");
}

/// Run the daxray binary with `args` and then `img`; its standard output. Fails the test unless
/// it exits 0 or 1 (1: findings).
pub fn daxray_stdout(args: &[&str], img: &Path) -> Vec<u8> {
    let o = Command::new(env!("CARGO_BIN_EXE_daxray"))
        .args(args)
        .arg(img)
        .output()
        .unwrap_or_else(|e| panic!("run daxray: {e}"));
    assert!(
        o.status.code().is_some_and(|c| c <= 1),
        "daxray {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}
