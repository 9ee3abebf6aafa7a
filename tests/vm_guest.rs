//! The real kernel under QEMU on an emulated NVDIMM: boot the guest agent, make an fsdax
//! namespace, format, mount -o dax, store through MAP_SYNC (and plain MAP_SHARED, the control)
//! mappings, and check what the guest and the kernel's trace events report, and that every
//! reported store is in the paused image with the reported hash.
//!
//! Needs root, qemu-system-x86_64, a static busybox, mkfs.ext4/mkfs.xfs and the Debian kernel
//! package (fetched by `daxray vm setup`). All guests run in this one test, one at a time, under
//! the cross-process VM lock. Set DAXRAY_SKIP_ROOT_TESTS=1 to skip (it says so).

mod common;

use daxray::agent::proto::{FsChoice, GuestMsg, HostMsg, Job, Store, TraceCounts};
use daxray::agent::scenario;
use daxray::vm::{Vm, VmConfig};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

struct Run {
    ready: daxray::vm::ReadyInfo,
    probe: daxray::agent::probe::ProbeReport,
    stores: Vec<Store>,
    found_in_image: usize,
    header_dataoff: u64,
    trace: TraceCounts,
    done_stores: u64,
}

/// Find the 4 KiB block at or after `dataoff` that starts with store `seq`'s label and return its
/// sha256 (the image is checked in place while the guest is stopped).
fn find_store_in_image(img: &[u8], dataoff: u64, seed: u64, seq: u64) -> Option<String> {
    let label = format!("daxray store {seq} seed {seed} ");
    let mut off = usize::try_from(dataoff).ok()?;
    while off + 4096 <= img.len() {
        if img[off..].starts_with(label.as_bytes()) {
            return Some(hex::encode(Sha256::digest(&img[off..off + 4096])));
        }
        off += 4096;
    }
    None
}

fn run(assets: &daxray::vm::Assets, job: Job) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = VmConfig::new(assets.clone(), dir.path(), job.fs);
    let t0 = Instant::now();
    let mut vm = Vm::boot(&cfg, &job).unwrap_or_else(|e| panic!("boot {job:?}: {e}"));
    let ready = vm.ready().clone();
    let probe = match vm.recv(Duration::from_secs(60)).expect("probe") {
        GuestMsg::Probe(p) => p,
        other => panic!("expected Probe, got {other:?}"),
    };
    let mut stores = Vec::new();
    let mut found = 0;
    let mut header_dataoff = 0;
    let (trace, done_stores) = loop {
        match vm.recv(Duration::from_secs(120)).expect("message") {
            GuestMsg::Store(s) => {
                vm.stop().expect("QMP stop");
                assert_eq!(vm.status().expect("query-status"), "paused");
                let f = std::fs::File::open(vm.image()).expect("image");
                let len = f.metadata().expect("stat").len() as usize;
                let img = daxray::sys::map_readonly(&f, len).expect("map image");
                let info = daxray::image::pmem::detect(&img).expect("pfn header").expect("fsdax namespace");
                header_dataoff = info.dataoff;
                if let Some(h) = find_store_in_image(&img, info.dataoff, job.seed, s.seq) {
                    assert_eq!(
                        h, s.sha256,
                        "store {} bytes in the paused image differ from the report",
                        s.seq
                    );
                    found += 1;
                }
                drop(img);
                vm.cont().expect("QMP cont");
                stores.push(s);
                vm.send(&HostMsg::Go).expect("go");
            }
            GuestMsg::Done { stores, trace, .. } => break (trace, stores),
            other => panic!("unexpected {other:?}"),
        }
    };
    vm.finish(Duration::from_secs(60)).expect("guest powers off");
    eprintln!("vm_guest: {job:?}: {:.1} s, trace {trace:?}", t0.elapsed().as_secs_f64());
    Run { ready, probe, stores, found_in_image: found, header_dataoff, trace, done_stores }
}

fn check_common(r: &Run, job: &Job) {
    assert_eq!(r.ready.fs, job.fs);
    assert!(r.ready.kernel.starts_with("6."), "kernel {}", r.ready.kernel);
    assert_eq!(r.ready.dataoff, r.header_dataoff, "Ready.dataoff vs the NVDIMM_PFN_INFO block in the image");
    let want = if job.fs == FsChoice::Xfs { 10 << 20 } else { 6 << 20 };
    assert_eq!(r.ready.dataoff, want, "dataoff");
    // The probe ran on the DAX-mounted file system.
    assert!(r.probe.map_sync_works, "MAP_SHARED_VALIDATE|MAP_SYNC accepted with sf: {:?}", r.probe);
    assert_eq!(r.probe.validate_sync.vmflags_sf, Some(true));
    assert_eq!(r.probe.validate_unknown.errno.as_deref(), Some("EOPNOTSUPP"));
    assert_eq!(r.probe.statx_dax, Some(true), "statx STATX_ATTR_DAX");
    assert_eq!(r.stores.len(), job.pages as usize);
    assert_eq!(r.done_stores, u64::from(job.pages));
    for (i, s) in r.stores.iter().enumerate() {
        assert_eq!(s.seq, i as u64);
        assert_eq!(s.file, "/f0");
        assert_eq!(s.offset, i as u64 * 4096);
        assert_eq!(s.len, 4096);
        assert_eq!(s.sha256, hex::encode(Sha256::digest(scenario::pattern(job.seed, s.seq, 4096))));
    }
    assert_eq!(r.found_in_image, r.stores.len(), "every store visible in the paused image (share=on)");
    assert!(r.trace.pte_faults >= u64::from(job.pages), "PTE faults traced: {:?}", r.trace);
    assert!(!r.trace.lost_events);
}

#[test]
fn vm_guest_runs() {
    let Some(assets) = common::vm_assets("vm_guest") else { return };
    let _lock = daxray::vm::exclusive_lock().expect("VM lock");
    let t0 = Instant::now();

    // ext4 with MAP_SYNC: the synchronous-fault path must run.
    let job = Job::new(FsChoice::Ext4, true, "seq-sparse", 4);
    let r = run(&assets, job.clone());
    check_common(&r, &job);
    assert!(r.trace.needdsync > 0, "NEEDDSYNC faults with MAP_SYNC: {:?}", r.trace);
    assert!(r.trace.insert_pfn_mkwrite > 0, "{:?}", r.trace);

    // ext4 without MAP_SYNC (the control): no synchronous faults.
    let job = Job::new(FsChoice::Ext4, false, "seq-sparse", 4);
    let r = run(&assets, job.clone());
    check_common(&r, &job);
    assert_eq!(r.trace.needdsync, 0, "{:?}", r.trace);
    assert_eq!(r.trace.insert_pfn_mkwrite, 0, "{:?}", r.trace);

    // XFS with MAP_SYNC (512 MiB namespace), with the kernel named explicitly as a user's
    // `--kernel FILE --modules DIR` would (the release comes from the bzImage header).
    let named = daxray::vm::Assets::from_paths(&assets.kernel, &assets.modules).expect("--kernel/--modules");
    assert_eq!(named.version, assets.version, "release read from the bzImage header");
    let job = Job::new(FsChoice::Xfs, true, "seq-sparse", 4);
    let r = run(&named, job.clone());
    assert_eq!(r.ready.kernel, assets.version, "the guest runs the kernel it was given");
    check_common(&r, &job);
    assert!(r.trace.needdsync > 0, "NEEDDSYNC faults with MAP_SYNC on XFS: {:?}", r.trace);

    // A job the agent refuses: the guest reports an Error and still powers off.
    let dir = tempfile::tempdir().expect("tempdir");
    let job = Job::new(FsChoice::Ext4NoJournal, true, "no-such-scenario", 1);
    let cfg = VmConfig::new(assets.clone(), dir.path(), job.fs);
    let mut vm = Vm::boot(&cfg, &job).expect("boot");
    assert!(matches!(vm.recv(Duration::from_secs(60)).expect("probe"), GuestMsg::Probe(_)));
    match vm.recv(Duration::from_secs(60)).expect("error message") {
        GuestMsg::Error { message } => assert!(message.contains("no-such-scenario"), "{message}"),
        other => panic!("expected Error, got {other:?}"),
    }
    vm.finish(Duration::from_secs(60)).expect("guest powers off after an error");

    // The fault-latency bench, small: all eight configurations in one ext4 boot.
    let opts = daxray::bench::faults::Options {
        fs: vec![FsChoice::Ext4],
        pages: 16,
        repeat: 1,
        fault_size: daxray::agent::proto::FaultSize::Pte,
        assets: assets.clone(),
        accel: "tcg".into(),
        mem_mb: 512,
    };
    let rep = daxray::bench::faults::run(&opts, &mut |_| {}).expect("bench faults");
    assert_eq!(rep.rows.len(), 8, "eight configurations");
    for row in &rep.rows {
        assert_eq!(row.samples, 16, "{}", row.configuration);
        assert!(row.min_us > 0.0 && row.min_us <= row.median_us && row.median_us <= row.max_us, "{row:?}");
        assert_eq!(row.pte_faults, 16, "one PTE fault per page: {row:?}");
        assert_eq!(row.histogram.values().sum::<u64>(), 16);
        if !row.sync {
            assert_eq!(row.needdsync_faults, 0, "no MAP_SYNC, no synchronous faults: {row:?}");
        } else if row.file == "empty" {
            assert_eq!(
                row.needdsync_faults, 16,
                "MAP_SYNC on an empty file: every fault synchronous: {row:?}"
            );
        } else {
            assert_eq!(row.needdsync_faults, 0, "MAP_SYNC on a written file: no metadata to sync: {row:?}");
        }
    }
    assert_eq!(rep.ratios.len(), 4);

    eprintln!("vm_guest: all guests in {:.1} s", t0.elapsed().as_secs_f64());
}
