//! The fs_dax trace counter and the PMD refusal diagnosis on what the guest kernel wrote
//! (fixtures/trace/README.md).

use daxray::agent::proto::{FsChoice, GuestMsg, Job, PmdLayout, TraceCounts};
use daxray::agent::trace::count;

fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/trace").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn done(name: &str) -> (u64, TraceCounts, PmdLayout) {
    match serde_json::from_str::<GuestMsg>(fixture(name).trim()) {
        Ok(GuestMsg::Done { stores, trace, pmd: Some(l) }) => (stores, trace, l),
        other => panic!("{name}: not a Done with a PMD layout: {other:?}"),
    }
}

#[test]
fn counts_real_fs_dax_lines() {
    let text = fixture("fs_dax-pmd-sparse-ext4.txt");
    let c = count(&text);
    assert_eq!(c.pte_faults, 2, "{c:?}");
    assert_eq!(c.pmd_fallbacks, 2, "{c:?}");
    assert_eq!(c.pmd_faults, 0, "{c:?}");
    assert_eq!(c.needdsync, 2, "{c:?}");
    assert_eq!(c.pmd_needdsync, 0, "{c:?}");
    assert_eq!(c.insert_pfn_mkwrite, 2, "{c:?}");
    assert!(!c.lost_events);
    // The buffer header the kernel prints when events were overwritten.
    let lost = format!("# entries-in-buffer/entries-written: 10/12   #P:1\n{text}");
    assert!(count(&lost).lost_events);
}

#[test]
fn real_pmd_faults_are_counted_as_pmd_needdsync() {
    for fs in ["ext4", "xfs"] {
        let c = count(&fixture(&format!("fs_dax-pmd-sparse-{fs}-pmd.txt")));
        // `dax_pmd_fault` (the fault's start) is in the file too and must not count.
        assert_eq!(
            (c.pmd_faults, c.pmd_needdsync, c.pmd_fallbacks, c.pte_faults, c.needdsync, c.insert_pfn_mkwrite),
            (3, 3, 0, 0, 3, 3),
            "{fs}: {c:?}"
        );
        let (stores, trace, l) = done(&format!("done-pmd-sparse-{fs}-pmd.json"));
        assert_eq!((stores, &trace), (3, &c), "{fs}: the counts the guest sent are the file's");
        let job = Job::new(if fs == "xfs" { FsChoice::Xfs } else { FsChoice::Ext4 }, true, "pmd-sparse", 3);
        let file_len = daxray::agent::scenario::layout(&job).expect("layout").file_len;
        assert!(l.refusals(file_len).is_empty(), "{fs}: {:?}", l.refusals(file_len));
    }
}

#[test]
fn real_fallbacks_are_explained_by_the_unaligned_pfn() {
    let c = count(&fixture("fs_dax-pmd-sparse-ext4-unaligned.txt"));
    assert_eq!((c.pmd_faults, c.pmd_fallbacks, c.pte_faults, c.needdsync), (0, 3, 3, 3), "{c:?}");
    let (stores, trace, l) = done("done-pmd-sparse-ext4-unaligned.json");
    assert_eq!((stores, &trace), (3, &c));
    let job = Job::new(FsChoice::Ext4, true, "pmd-sparse", 3);
    let why = daxray::replay::run::pmd_refused(&job, &trace, Some(&l));
    assert!(why[0].starts_with("3 of 3 PMD faults fell back"), "{why:?}");
    assert_eq!(why.len(), 4, "{why:?}");
    assert!(
        why[1..].iter().all(|w| w.contains("dax_iomap_direct_access") && w.contains("not 2 MiB aligned")),
        "{why:?}"
    );
    assert!(why[1].contains("0x1015cb000"), "{why:?}");
}
