//! daxray's outputs on every committed image fixture, compared with a recorded transcript
//! (`fixtures/outputs/`, see its README): `info`, `info --json`, `journal`, `journal --json`,
//! `manifest --hash` and, where a fixture has claims, `check`. A change to the code's shape must
//! not change what a user reads; a change that means to (a new finding, a fixed bug) records the
//! transcripts again with `DAXRAY_RECORD_OUTPUTS=1` and says why in its commit.
//!
//! The transcripts are not an oracle of truth: the views in them are checked against the kernel,
//! the peers and the public images' recorded outputs by the other tests. They pin behaviour.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// One image fixture: a name, the packed image and the claims beside it (if any).
struct Fixture {
    name: String,
    image: PathBuf,
    claims: Option<PathBuf>,
}

/// Every image fixture: plain gzip images (`*.img.gz`) and packed namespace states
/// (`*/image.dxs.gz`), in a fixed order.
fn fixtures() -> Vec<Fixture> {
    let mut out = vec![];
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root())
        .expect("fixtures/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let group = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for p in entries {
            let file = p.file_name().unwrap().to_string_lossy().into_owned();
            if let Some(stem) = file.strip_suffix(".img.gz") {
                out.push(Fixture { name: format!("{group}-{stem}"), image: p.clone(), claims: None });
            } else if p.join("image.dxs.gz").exists() {
                let claims = p.join("claims.jsonl");
                out.push(Fixture {
                    name: format!("{group}-{file}"),
                    image: p.join("image.dxs.gz"),
                    claims: claims.exists().then_some(claims),
                });
            }
        }
    }
    out
}

/// Unpack a fixture image to `dst` (gzip, or daxray's packed sparse format).
fn unpack(src: &Path, dst: &Path) {
    if src.to_string_lossy().ends_with(".dxs.gz") {
        daxray::replay::sparse::unpack(src, dst).expect("unpack packed image");
    } else {
        let mut gz = flate2::read::GzDecoder::new(std::fs::File::open(src).expect("open fixture"));
        let mut bytes = vec![];
        gz.read_to_end(&mut bytes).expect("gunzip fixture");
        std::fs::write(dst, bytes).expect("write image");
    }
}

/// The transcript of one fixture: each command with its standard output, standard error and
/// exit code, run in `dir` on the image by a relative name (so no machine path shows).
fn transcript(dir: &Path, image: &str, claims: Option<&str>) -> String {
    let mut runs: Vec<Vec<&str>> = vec![
        vec!["info", image],
        vec!["--json", "info", image],
        vec!["journal", image],
        vec!["--json", "journal", image],
        vec!["manifest", "--hash", image],
    ];
    if let Some(c) = claims {
        runs.push(vec!["check", image, "--claims", c]);
        runs.push(vec!["--json", "check", image, "--claims", c]);
    }
    let mut s = String::new();
    for args in runs {
        let out = Command::new(env!("CARGO_BIN_EXE_daxray"))
            .args(&args)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .output()
            .expect("run daxray");
        s.push_str(&format!("$ daxray {}\n", args.join(" ")));
        s.push_str(&String::from_utf8_lossy(&out.stdout));
        let err = String::from_utf8_lossy(&out.stderr);
        if !err.is_empty() {
            s.push_str("[stderr]\n");
            s.push_str(&err);
        }
        s.push_str(&format!("[exit {}]\n\n", out.status.code().map_or("signal".into(), |c| c.to_string())));
    }
    s
}

fn recorded(name: &str) -> PathBuf {
    root().join("outputs").join(format!("{name}.txt.gz"))
}

fn read_gz(p: &Path) -> Option<String> {
    let f = std::fs::File::open(p).ok()?;
    let mut s = String::new();
    flate2::read::GzDecoder::new(f).read_to_string(&mut s).ok()?;
    Some(s)
}

fn write_gz(p: &Path, s: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let mut gz =
        flate2::write::GzEncoder::new(std::fs::File::create(p).unwrap(), flate2::Compression::best());
    gz.write_all(s.as_bytes()).unwrap();
    gz.finish().unwrap();
}

/// The first lines where two transcripts part, for the failure message.
fn first_difference(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let i = w.iter().zip(&g).position(|(a, b)| a != b).unwrap_or(w.len().min(g.len()));
    let cmd = w[..i.min(w.len())].iter().rev().find(|l| l.starts_with("$ daxray")).copied().unwrap_or("");
    let show =
        |v: &[&str]| v.iter().skip(i).take(6).map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n");
    format!("  at line {} (in `{cmd}`)\n  recorded:\n{}\n  now:\n{}", i + 1, show(&w), show(&g))
}

#[test]
fn outputs_on_every_fixture_are_unchanged() {
    let record = std::env::var_os("DAXRAY_RECORD_OUTPUTS").is_some();
    let all = fixtures();
    assert!(all.len() >= 40, "only {} image fixtures found under {}", all.len(), root().display());
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut failures = vec![];
    for f in &all {
        let image = format!("{}.img", f.name);
        unpack(&f.image, &tmp.path().join(&image));
        let claims = f.claims.as_ref().map(|c| {
            let local = format!("{}.claims.jsonl", f.name);
            std::fs::copy(c, tmp.path().join(&local)).expect("copy claims");
            local
        });
        let got = transcript(tmp.path(), &image, claims.as_deref());
        std::fs::remove_file(tmp.path().join(&image)).expect("remove image");
        let p = recorded(&f.name);
        if record {
            write_gz(&p, &got);
            continue;
        }
        match read_gz(&p) {
            None => failures.push(format!("{}: no recorded transcript {}", f.name, p.display())),
            Some(want) if want != got => {
                failures.push(format!("{}: output changed\n{}", f.name, first_difference(&want, &got)))
            }
            Some(_) => {}
        }
    }
    assert!(failures.is_empty(), "{} of {} fixtures:\n{}", failures.len(), all.len(), failures.join("\n\n"));
}
