//! The fs_dax trace counter on lines the guest kernel wrote (fixtures/trace/README.md).

use daxray::agent::trace::count;

#[test]
fn counts_real_fs_dax_lines() {
    let p =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/trace/fs_dax-pmd-sparse-ext4.txt");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let c = count(&text);
    assert_eq!(c.pte_faults, 2, "{c:?}");
    assert_eq!(c.pmd_fallbacks, 2, "{c:?}");
    assert_eq!(c.pmd_faults, 0, "{c:?}");
    assert_eq!(c.needdsync, 2, "{c:?}");
    assert_eq!(c.insert_pfn_mkwrite, 2, "{c:?}");
    assert!(!c.lost_events);
    // The buffer header the kernel prints when events were overwritten.
    let lost = format!("# entries-in-buffer/entries-written: 10/12   #P:1\n{text}");
    assert!(count(&lost).lost_events);
}
