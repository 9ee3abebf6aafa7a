//! The README's examples on the committed crash images must be what daxray prints today, so that
//! they never drift from the tool. Each fenced example whose command is `$ daxray ... dirty.img`
//! (fixtures/ext4/kernel-dirty.img.gz) or `$ daxray ... xfs-dirty.img`
//! (fixtures/xfs/kernel-dirty.img.gz) is run, and the lines shown under it (up to a `...` line or
//! the end of the block) must be the first lines of its standard output. The other examples read
//! an image made at run time (random data, timestamps) and are not compared.

mod common;

use std::path::Path;
use std::process::Command;

/// One example: the command's arguments (after `daxray`) and the lines the README shows.
struct Example {
    args: Vec<String>,
    shown: Vec<String>,
}

/// The examples of `readme` that run on one of `images`.
fn examples(readme: &str, images: &[&str]) -> Vec<Example> {
    let mut out = vec![];
    let mut in_block = false;
    let mut current: Option<Example> = None;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
            out.extend(current.take());
            continue;
        }
        if !in_block {
            continue;
        }
        if let Some(cmd) = line.strip_prefix("$ daxray ") {
            out.extend(current.take());
            let args: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
            if args.last().is_some_and(|a| images.contains(&a.as_str())) {
                current = Some(Example { args, shown: vec![] });
            }
        } else if line.starts_with("$ ") {
            out.extend(current.take());
        } else if let Some(ex) = current.as_mut() {
            if line == "..." {
                out.extend(current.take());
            } else {
                ex.shown.push(line.to_string());
            }
        }
    }
    out
}

#[test]
fn readme_examples_on_the_committed_crash_images_match_the_tool() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let fixtures = [("dirty.img", "ext4"), ("xfs-dirty.img", "xfs")];
    let names: Vec<&str> = fixtures.iter().map(|f| f.0).collect();
    let found = examples(&readme, &names);
    // The README shows `info` and `journal` on the ext4 image and `journal` on the XFS one.
    assert!(
        found.len() >= 3,
        "expected at least 3 examples on the committed crash images, found {}",
        found.len()
    );
    let tmp = tempfile::tempdir().expect("temporary folder");
    for (name, dir) in fixtures {
        common::gunzip(&common::fixture(&format!("{dir}/kernel-dirty.img.gz")), &tmp.path().join(name));
    }
    let mut problems = vec![];
    for ex in &found {
        assert!(!ex.shown.is_empty(), "README example `daxray {}` shows no output", ex.args.join(" "));
        let o = Command::new(env!("CARGO_BIN_EXE_daxray"))
            .args(&ex.args)
            .current_dir(tmp.path())
            .output()
            .unwrap_or_else(|e| panic!("run daxray: {e}"));
        assert!(
            o.status.code().is_some_and(|c| c <= 1),
            "daxray {:?}: {}",
            ex.args,
            String::from_utf8_lossy(&o.stderr)
        );
        let stdout = String::from_utf8_lossy(&o.stdout);
        let printed: Vec<&str> = stdout.lines().take(ex.shown.len()).collect();
        for (i, want) in ex.shown.iter().enumerate() {
            let got = printed.get(i).copied().unwrap_or("<no line>");
            if got.trim_end() != want.trim_end() {
                problems.push(format!(
                    "`daxray {}`, line {}:\n  README: {want}\n  prints: {got}",
                    ex.args.join(" "),
                    i + 1
                ));
                break;
            }
        }
    }
    assert!(
        problems.is_empty(),
        "README examples differ from the tool (update README.md):\n{}",
        problems.join("\n")
    );
}
