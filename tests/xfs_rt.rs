//! A file system with a realtime device: the reader names it in `info` and findings, and
//! refuses realtime files' data, saying why. (This host's kernel has no CONFIG_XFS_RT and
//! mkfs.xfs cannot put protofile data on the realtime device, so the realtime file is made by
//! mkfs.xfs -r rtdev=... and flagged realtime with `xfs_db -x` on that image.)

mod common;
mod xfs_common;

use daxray::fs::FileSystem;
use daxray::image::MmapSource;
use daxray::xfs::Xfs;
use std::sync::Arc;
use xfs_common::*;

#[test]
fn realtime_files_are_refused_clearly() {
    if !need(&["mkfs.xfs", "xfs_db"], false) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("data.img");
    let rt = dir.path().join("rt.img");
    std::fs::File::create(&rt).expect("rt").set_len(64 << 20).expect("set_len");
    let src = dir.path().join("a");
    std::fs::write(&src, vec![b'x'; 5000]).expect("src");
    let proto = dir.path().join("proto");
    std::fs::write(
        &proto,
        format!(
            "/dev/null\n0 0\nd--755 0 0\nrf ---644 0 0 {}\nplain ---644 0 0 {}\n$\n",
            src.display(),
            src.display()
        ),
    )
    .expect("proto");
    let rts = format!("rtdev={}", rt.display());
    assert!(mkfs_xfs(&img, 320 << 20, &["-r", &rts, "-p", proto.to_str().expect("utf8")]), "mkfs with rtdev");
    let fs = Xfs::open(Arc::new(MmapSource::open(&img).expect("mmap"))).expect("open");
    let rino = daxray::fs::lookup(&fs, "/rf").expect("lookup rf");
    drop(fs);
    let out = std::process::Command::new("xfs_db")
        .args(["-x", "-c", &format!("inode {rino}"), "-c", "write core.realtime 1"])
        .arg(&img)
        .output()
        .expect("xfs_db -x");
    assert!(out.status.success(), "xfs_db -x: {}", String::from_utf8_lossy(&out.stderr));
    let db = xfs_db_print(&img, &[&format!("inode {rino}")]);
    assert_eq!(db["core.realtime"], "1");

    let fs = Xfs::open(Arc::new(MmapSource::open(&img).expect("mmap"))).expect("open");
    let info = fs.info();
    let sbdb = xfs_db_print(&img, &["sb 0"]);
    assert_eq!(info["rblocks"].as_u64(), Some(parse_num(&sbdb["rblocks"])));
    assert!(info["rblocks"].as_u64().unwrap_or(0) > 0, "info does not show the realtime device: {info}");
    assert!(fs.findings().iter().any(|f| f.message.contains("realtime device")), "{:?}", fs.findings());
    let ino = fs.inode(rino).expect("inode");
    assert!(ino.realtime());
    assert_eq!(fs.stat(rino).expect("stat").extra["core.realtime"], 1);
    match fs.map(rino) {
        Err(daxray::Error::Unsupported(m)) => assert!(m.contains("realtime"), "{m}"),
        other => panic!("realtime file mapped: {other:?}"),
    }
    assert!(fs.read(rino, 0, 10).is_err());
    let plain = daxray::fs::lookup(&fs, "/plain").expect("plain");
    assert_eq!(fs.read(plain, 0, 10000).expect("read plain"), vec![b'x'; 5000]);
    let (ours, errs) = daxray::manifest::build(&fs, true).expect("manifest");
    assert_eq!(ours.len(), 1);
    assert!(errs.iter().any(|(p, e)| p == "/rf" && e.to_string().contains("realtime")), "{errs:?}");
}
