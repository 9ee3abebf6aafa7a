//! The committed man pages (`man/`) must be exactly what the code generates, so that they never
//! drift from the command-line definitions.

use std::collections::BTreeSet;
use std::path::Path;

#[test]
fn committed_man_pages_match_the_code() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let fix = "regenerate them with: cargo run -- man --out man";
    let pages = daxray::cli::man::render_all().expect("rendering the man pages");
    assert!(pages.len() >= 10, "expected a page per subcommand, got {}", pages.len());
    let mut problems = Vec::new();
    let mut expected = BTreeSet::new();
    for (name, bytes) in &pages {
        expected.insert(name.clone());
        match std::fs::read(dir.join(name)) {
            Ok(committed) if &committed == bytes => {}
            Ok(_) => problems.push(format!("man/{name} differs from the generated page")),
            Err(e) => problems.push(format!("man/{name} is missing ({e})")),
        }
    }
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}; {fix}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".1"))
        .collect();
    for stale in on_disk.difference(&expected) {
        problems.push(format!("man/{stale} is not generated any more (delete it)"));
    }
    assert!(problems.is_empty(), "{}\n{fix}", problems.join("\n"));
    for want in
        ["daxray.1", "daxray-info.1", "daxray-manifest.1", "daxray-vm-setup.1", "daxray-bench-faults.1"]
    {
        assert!(expected.contains(want), "no page {want}");
    }
    // Every page documents the exit status, and the inspection pages their JSON shape.
    for (name, bytes) in &pages {
        let text = String::from_utf8_lossy(bytes);
        assert!(text.contains("EXIT STATUS"), "{name} has no EXIT STATUS section");
    }
    for name in [
        "daxray-info.1",
        "daxray-ls.1",
        "daxray-stat.1",
        "daxray-map.1",
        "daxray-manifest.1",
        "daxray-check.1",
    ] {
        let (_, bytes) = pages.iter().find(|(n, _)| n == name).expect("page exists");
        assert!(
            String::from_utf8_lossy(bytes).contains("\"findings\"") || name == "daxray-manifest.1",
            "{name}: no JSON shape"
        );
    }
}
