//! The inspection commands (`cat`, `ls`, `stat`, `info`, `check`) on images made by mkfs and the
//! kernel, each answer compared with an oracle that is not daxray: the kernel through a loop
//! mount (`readlink`, `stat(1)`, `statfs`), `debugfs` and `xfs_db`.
//!
//! Needs root, util-linux (`mount`, `losetup`), e2fsprogs and xfsprogs.

mod common;
mod inspect_common;

use common::ready;
use daxray::oracle::Mount;
use inspect_common::*;
use std::path::PathBuf;

#[test]
fn symlinks_show_their_target_in_cat_ls_and_stat() {
    if !ready(&["mkfs.ext4", "mkfs.xfs", "debugfs", "xfs_db", "readlink", "mount", "losetup"], true) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    for (fs, img, [fast, slow]) in images(tmp.path()) {
        assert_eq!(slow, slow_target(), "{fs}: the kernel's readlink");
        // The oracles agree the fast link is in the inode and the slow one in a block.
        if fs == "ext4" {
            let d = tool("debugfs", &["-R", "stat /fast", s(&img)]);
            assert!(d.contains(&format!("Fast link dest: \"{fast}\"")), "{d}");
            let d = tool("debugfs", &["-R", "stat /slow", s(&img)]);
            assert!(!d.contains("Fast link dest"), "ext4 /slow is not a slow symlink: {d}");
        } else {
            let ino = dx(&["--json", "stat", s(&img), "/slow"]);
            let v: serde_json::Value = serde_json::from_str(&ino.out).expect("stat JSON");
            let db = tool(
                "xfs_db",
                &["-r", "-c", &format!("inode {}", v["ino"]), "-c", "print core.format", s(&img)],
            );
            assert!(db.contains("core.format = 2 (extents)"), "XFS /slow is not a remote symlink: {db}");
        }
        for (link, target) in [("/fast", &fast), ("/slow", &slow)] {
            let r = dx(&["cat", s(&img), link]);
            assert_eq!((r.code, r.out.as_str()), (0, target.as_str()), "{fs} cat {link}: {}", r.err);
            let r = dx(&["stat", s(&img), link]);
            assert!(
                r.out
                    .lines()
                    .any(|l| l.split_once(':').is_some_and(|(k, v)| k == "target" && v.trim() == target)),
                "{fs} stat {link}:\n{}",
                r.out
            );
            let r = dx(&["ls", "-l", s(&img), "/"]);
            let name = &link[1..];
            assert!(
                r.out.lines().any(|l| l.ends_with(&format!(" {name} -> {target}"))),
                "{fs} ls -l:\n{}",
                r.out
            );
            let r = dx(&["--json", "ls", s(&img), "/"]);
            let v: serde_json::Value = serde_json::from_str(&r.out).expect("ls JSON");
            let e = v["entries"].as_array().unwrap().iter().find(|e| e["name"] == name).expect("entry");
            assert_eq!(e["target"].as_str(), Some(target.as_str()), "{fs} ls --json");
        }
    }
}

#[test]
fn cat_refuses_a_directory_and_json() {
    if !ready(&["mkfs.ext4", "mkfs.xfs", "readlink", "mount", "losetup"], true) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    for (fs, img, _) in images(tmp.path()) {
        let r = dx(&["cat", s(&img), "/docs"]);
        assert_eq!(r.code, 2, "{fs}: cat of a directory: {}", r.err);
        assert!(r.out.is_empty(), "{fs}: cat of a directory wrote {} bytes", r.out.len());
        assert!(r.err.contains("/docs: is a directory"), "{fs}: {}", r.err);
        let r = dx(&["--json", "cat", s(&img), "/docs/hello.txt"]);
        assert_eq!(r.code, 2, "{fs}: cat --json: {}", r.out);
        let r = dx(&["cat", s(&img), "/docs/hello.txt"]);
        assert_eq!((r.code, r.out.as_str()), (0, "hello, pmem\n"), "{fs}");
    }
}

#[test]
fn raw_info_says_recovery_is_needed_but_not_applied() {
    if !ready(&["dumpe2fs", "xfs_logprint"], false) {
        return;
    }
    for (fs, name) in
        [("ext4", "kernel-dirty"), ("ext4", "kernel"), ("xfs", "kernel-dirty"), ("xfs", "kernel")]
    {
        let (_t, img) = common::unpack_fixture(fs, name);
        // The peers' word on whether the journal or log holds work to replay.
        let dirty = if fs == "ext4" {
            let h = tool("dumpe2fs", &["-h", s(&img)]);
            field(&h, "Journal start") != 0 && h.contains("needs_recovery")
        } else {
            let t = tool("xfs_logprint", &["-t", s(&img)]);
            assert!(t.contains("state: <DIRTY>") || t.contains("state: <CLEAN>"), "{t}");
            t.contains("state: <DIRTY>")
        };
        assert_eq!(dirty, name == "kernel-dirty", "{fs} {name}: the peer's state");
        let r = dx(&["--raw", "info", s(&img)]);
        let want = if dirty { "(needed; not applied because of --raw)" } else { "(not needed)" };
        assert!(recovery_line(&r.out).ends_with(want), "{fs} {name} --raw: {}", recovery_line(&r.out));
        let r = dx(&["--raw", "--json", "info", s(&img)]);
        let v: serde_json::Value = serde_json::from_str(&r.out).expect("info JSON");
        assert_eq!(
            (v["recovery"]["needed"].as_bool(), v["recovery"]["applied"].as_bool()),
            (Some(dirty), Some(false))
        );
        let r = dx(&["info", s(&img)]);
        let want = if dirty { "(needed; applied in memory)" } else { "(not needed)" };
        assert!(recovery_line(&r.out).ends_with(want), "{fs} {name}: {}", recovery_line(&r.out));
    }
}

#[test]
fn truncated_images_say_recovery_is_impossible_and_show_the_superblock() {
    if !ready(&["debugfs", "dumpe2fs", "xfs_db", "mount", "losetup"], true) {
        return;
    }
    // ext4: cut inside the journal, and before the journal inode's table block.
    let (_t, img) = common::unpack_fixture("ext4", "kernel-dirty");
    let h = tool("dumpe2fs", &["-h", s(&img)]);
    let bs = field(&h, "Block size");
    let uuid = h.lines().find_map(|l| l.strip_prefix("Filesystem UUID:")).expect("uuid").trim().to_string();
    let ex = tool("debugfs", &["-c", "-R", "ex <8>", s(&img)]);
    // "Level Entries Logical Physical Length Flags": the journal's last extent.
    let last: Vec<u64> = ex
        .lines()
        .rfind(|l| l.trim_start().starts_with("0/"))
        .map(|l| l.split_whitespace().filter_map(|w| w.parse().ok()).collect())
        .expect("journal extents");
    let (lstart, pstart) = (last[last.len() - 5], last[last.len() - 3]);
    let cut = (pstart + 10) * bs;
    let short = truncated_copy(&img, cut, "short.img");
    let r = dx(&["info", s(&short)]);
    let line = recovery_line(&r.out);
    let want = format!("journal block {} at block {}", lstart + (cut / bs - pstart), cut / bs);
    assert!(
        line.contains("(needed; impossible: the journal lies past the end of the image")
            && line.contains(&want),
        "ext4: {line}\n(want {want})"
    );
    assert!(r.out.contains(&uuid), "ext4: no superblock facts:\n{}", r.out);
    assert_eq!(r.code, 1, "ext4: {}", r.err);
    // The kernel does not mount it either.
    assert!(
        Mount::attempt(&short, 0, "ext4", "ro").expect("mount attempt").is_err(),
        "the kernel mounted a truncated ext4"
    );
    let tiny = truncated_copy(&img, 16 * bs, "tiny.img");
    let r = dx(&["info", s(&tiny)]);
    assert!(
        recovery_line(&r.out)
            .contains("impossible: the journal lies past the end of the image (its inode 8 at byte"),
        "{}",
        r.out
    );

    // XFS: cut inside the log.
    let (_t, img) = common::unpack_fixture("xfs", "kernel-dirty");
    let db = tool("xfs_db", &["-r", "-c", "sb 0", "-c", "print logstart logblocks blocksize uuid", s(&img)]);
    let (logstart, logblocks, bs) =
        (field(&db, "logstart"), field(&db, "logblocks"), field(&db, "blocksize"));
    let uuid = db.lines().find_map(|l| l.strip_prefix("uuid = ")).expect("uuid").trim().to_string();
    let cut = (logstart + logblocks / 2) * bs;
    let short = truncated_copy(&img, cut, "short-xfs.img");
    for raw in [false, true] {
        let mut args = vec!["info", s(&short)];
        if raw {
            args.insert(0, "--raw");
        }
        let r = dx(&args);
        assert_eq!(r.code, 1, "xfs {args:?}: {}", r.err);
        assert!(r.out.contains(&uuid), "xfs {args:?}: no superblock facts:\n{}", r.out);
        if !raw {
            let line = recovery_line(&r.out);
            let want = format!(
                "impossible: the log lies past the end of the image (log at blocks {logstart}-{}",
                logstart + logblocks - 1
            );
            assert!(line.contains(&want), "xfs: {line}\n(want {want})");
            assert!(r.err.contains("recovery is impossible"), "{}", r.err);
        }
    }
    assert!(
        Mount::attempt(&short, 0, "xfs", "ro,nouuid").expect("mount attempt").is_err(),
        "the kernel mounted a truncated XFS"
    );
}

#[test]
fn a_directory_fifo_or_character_device_is_refused_by_name() {
    if !ready(&["mkfifo", "stat"], false) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let fifo = tmp.path().join("fifo");
    tool("mkfifo", &[s(&fifo)]);
    for (p, what) in [
        (tmp.path().to_path_buf(), "a directory"),
        (fifo, "a FIFO"),
        (PathBuf::from("/dev/null"), "a character device"),
    ] {
        // stat(1)'s word on what the path is.
        let kind = tool("stat", &["-c", "%F", s(&p)]);
        assert!(["directory", "fifo", "character special file"].contains(&kind.trim()), "{kind}");
        let claims = tmp.path().join("claims.jsonl");
        std::fs::write(
            &claims,
            format!("{{\"path\":\"/f\",\"offset\":0,\"len\":1,\"sha256\":\"{}\"}}\n", "0".repeat(64)),
        )
        .expect("write claims");
        for args in [vec!["info", s(&p)], vec!["ls", s(&p)], vec!["check", s(&p), "--claims", s(&claims)]] {
            let r = dx(&args);
            assert_eq!(r.code, 2, "{args:?}: {}", r.err);
            assert!(r.err.contains(&format!("{}: is {what}", p.display())), "{args:?}: {}", r.err);
        }
    }
}

#[test]
fn offsets_take_hex_and_units_and_past_the_end_is_a_usage_error() {
    if !ready(&["mkfs.ext4", "dumpe2fs"], false) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let inner = mkfs("ext4", tmp.path());
    let uuid = tool("dumpe2fs", &["-h", s(&inner)])
        .lines()
        .find_map(|l| l.strip_prefix("Filesystem UUID:").map(|u| u.trim().to_string()))
        .expect("uuid");
    // The file system 6 MiB into a larger file.
    let img = tmp.path().join("offset.img");
    let mut bytes = vec![0u8; 6 << 20];
    bytes.extend(std::fs::read(&inner).expect("read image"));
    std::fs::write(&img, &bytes).expect("write image");
    for off in ["6291456", "0x600000", "6M", "6MiB", "6144K", "6144kib"] {
        let r = dx(&["--offset", off, "info", s(&img)]);
        assert_eq!(r.code, 0, "--offset {off}: {}", r.err);
        assert!(r.out.contains("at byte 6291456") && r.out.contains(&uuid), "--offset {off}:\n{}", r.out);
    }
    let len = bytes.len().to_string();
    for off in ["999999999999", len.as_str(), "1T"] {
        let r = dx(&["--offset", off, "info", s(&img)]);
        assert_eq!(r.code, 2, "--offset {off}: {}", r.err);
        assert!(
            r.err.contains("is at or past the end of") && r.err.contains(&format!("({len} bytes)")),
            "{}",
            r.err
        );
    }
    for bad in ["4KB", "six", "0x"] {
        assert_eq!(dx(&["--offset", bad, "info", s(&img)]).code, 2, "--offset {bad}");
    }
    // A wrong offset inside the image is not a file system: also exit 2.
    assert_eq!(dx(&["--offset", "4K", "info", s(&img)]).code, 2);
}

#[test]
fn check_verdicts_past_eof_bad_lines_empty_files_and_block_ranges() {
    if !ready(&["mkfs.ext4", "mkfs.xfs", "xfs_io", "readlink", "mount", "losetup"], true) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    for fs in ["ext4", "xfs"] {
        let img = mkfs(fs, tmp.path());
        // The kernel writes the file and says where its blocks are (FIEMAP, 512-byte units)
        // and what it reads back.
        let (data, size, first_block) = mounted(&img, fs, |root| {
            let f = root.join("data.bin");
            let bytes: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 251) as u8).collect();
            std::fs::write(&f, &bytes).expect("write");
            // Space past the end of the file, allocated but not in its size.
            tool("xfs_io", &["-c", "falloc -k 1m 64k", "-c", "fsync", s(&f)]);
            let map = tool("xfs_io", &["-r", "-c", "fiemap", s(&f)]);
            let first = map
                .lines()
                .find(|l| l.trim_start().starts_with("0: [0.."))
                .and_then(|l| l.split(':').nth(2))
                .and_then(|r| r.trim().split("..").next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no first extent in:\n{map}"));
            let size: u64 = tool("stat", &["-c", "%s", s(&f)]).trim().parse().expect("size");
            (std::fs::read(&f).expect("read back"), size, first / 8)
        });
        assert_eq!(size, 65536);
        let claims = tmp.path().join(format!("{fs}.jsonl"));
        let zeros = sha256(&[0u8; 4096]);
        let text = [
            claim("/data.bin", 16384, 32768, &sha256(&data[16384..49152])),
            "{\"path\":\"/data.bin\",\"offset\":\n".into(),
            claim("/data.bin", size + 8192, 4096, &zeros),
            claim("/data.bin", 1 << 20, 4096, &zeros),
            claim("/data.bin", 0, 4096, &zeros),
        ]
        .concat();
        std::fs::write(&claims, text).expect("write claims");
        let r = dx(&["check", s(&img), "--claims", s(&claims)]);
        assert_eq!(r.code, 1, "{fs}: {}\n{}", r.out, r.err);
        let verdicts: Vec<&str> =
            r.out.lines().skip(1).take(4).map(|l| l.split_whitespace().nth(4).unwrap_or("")).collect();
        assert_eq!(
            verdicts,
            ["durable", "lost-beyond-eof", "lost-beyond-eof", "data-differs"],
            "{fs}:\n{}",
            r.out
        );
        let want =
            format!("(file blocks 4-11) map to written blocks {}-{}", first_block + 4, first_block + 11);
        assert!(r.out.contains(&want), "{fs}: want {want}:\n{}", r.out);
        assert!(r.out.contains("(file block 0) map to written block "), "{fs}:\n{}", r.out);
        assert!(!r.out.contains("..="), "{fs}: Rust range syntax:\n{}", r.out);
        assert!(
            r.err.contains("claims file: ") && r.err.contains(": line 2: not a claim"),
            "{fs}: {}",
            r.err
        );
        let r = dx(&["--json", "check", s(&img), "--claims", s(&claims)]);
        let v: serde_json::Value = serde_json::from_str(&r.out).expect("check JSON");
        assert_eq!(v["summary"]["claims"], 4);
        assert!(
            v["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["message"].as_str().unwrap().contains("line 2"))
        );
        // Nothing to check is a usage error.
        for (name, text) in
            [("empty.jsonl", ""), ("comments.jsonl", "# nothing\n\n"), ("bad.jsonl", "nope\n")]
        {
            let p = tmp.path().join(name);
            std::fs::write(&p, text).expect("write");
            let r = dx(&["check", s(&img), "--claims", s(&p)]);
            assert_eq!(r.code, 2, "{fs} {name}: {}", r.out);
            assert!(r.err.contains("nothing to check"), "{fs} {name}: {}", r.err);
        }
    }
}

#[test]
fn paths_walk_dotdot_and_symlinks_as_the_kernel_does_and_ls_lists_a_file() {
    if !ready(&["mkfs.ext4", "mkfs.xfs", "readlink", "mount", "losetup"], true) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let paths = [
        "/docs/hello.txt",
        "/docs/hello.txt/..",
        "/docs/hello.txt/x",
        "/docs/hello.txt/",
        "/docs/hello.txt/.",
        "/docs/../docs/hello.txt",
        "/sub/deep/../../fast",
        "/dlink/../fast",
        "/dlink/hello.txt",
        "/dlink/",
        "/dlink",
        "/sub/up/../docs",
        "/abs/",
        "/loop1/x",
        "/nope",
        "/docs/nope/x",
        "/docs/./hello.txt",
    ];
    for fs in ["ext4", "xfs"] {
        let img = mkfs(fs, tmp.path());
        let kernel: Vec<Result<u64, String>> = mounted(&img, fs, |root| {
            populate(root);
            std::fs::create_dir_all(root.join("sub/deep")).expect("mkdir");
            let link = |t: &str, l: &str| std::os::unix::fs::symlink(t, root.join(l)).expect("symlink");
            link("docs", "dlink");
            link("/docs/hello.txt", "abs");
            link("loop2", "loop1");
            link("loop1", "loop2");
            // A link whose `..` is taken from where it points, not from where it is.
            link("../sub", "sub/deep/up");
            link("../sub/deep", "sub/up");
            paths.iter().map(|p| kernel_lstat(root, p)).collect()
        });
        for (p, want) in paths.iter().zip(kernel) {
            // `stat` resolves like lstat(2).
            let r = dx(&["--json", "stat", s(&img), p]);
            match want {
                Ok(ino) => {
                    let v: serde_json::Value =
                        serde_json::from_str(&r.out).unwrap_or_else(|e| panic!("{fs} {p}: {e}: {}", r.err));
                    assert_eq!(v["ino"].as_u64(), Some(ino), "{fs} stat {p}");
                }
                Err(words) => {
                    let v: serde_json::Value = serde_json::from_str(&r.out).expect("error JSON");
                    let e = v["error"].as_str().unwrap_or_default();
                    assert!(
                        r.code == 2 && e.contains(&words) && e.contains(p),
                        "{fs} stat {p}: kernel says {words}, daxray: {}",
                        r.out
                    );
                }
            }
        }
        // ls of a file lists that file under the name given, as ls(1) does.
        let r = dx(&["ls", s(&img), "/docs/hello.txt"]);
        let ino = dx(&["--json", "stat", s(&img), "/docs/hello.txt"]).out;
        let ino = serde_json::from_str::<serde_json::Value>(&ino).expect("stat")["ino"].clone();
        assert_eq!(
            (r.code, r.out.split_whitespace().collect::<Vec<_>>()),
            (0, vec![ino.to_string().as_str(), "-", "/docs/hello.txt"]),
            "{fs}: {}",
            r.err
        );
        let r = dx(&["ls", "-l", s(&img), "/dlink"]);
        assert!(r.out.trim_end().ends_with("/dlink -> docs"), "{fs}: {}", r.out);
        let r = dx(&["ls", s(&img), "/dlink"]);
        assert!(
            r.out.trim_end().ends_with(" - hello.txt"),
            "{fs}: ls of a link to a directory lists it: {}",
            r.out
        );
        let r = dx(&["ls", s(&img), "/docs/hello.txt/x"]);
        assert!(
            r.code == 2 && r.err.contains("/docs/hello.txt/x: /docs/hello.txt is not a directory"),
            "{fs}: {}",
            r.err
        );
    }
}

#[test]
fn the_recovery_notice_is_given_once_and_only_for_raw() {
    if !ready(&["dumpe2fs", "xfs_logprint"], false) {
        return;
    }
    for fs in ["ext4", "xfs"] {
        let (_t, img) = common::unpack_fixture(fs, "kernel-dirty");
        // The peers' numbers: where recovery starts and (XFS) where the log ends.
        let want = if fs == "ext4" {
            let h = tool("dumpe2fs", &["-h", s(&img)]);
            let seq = h.lines().find_map(|l| l.strip_prefix("Journal sequence:")).expect("sequence").trim();
            let seq = u64::from_str_radix(seq.trim_start_matches("0x"), 16).expect("hex sequence");
            format!("from sequence {seq} at journal block {}", field(&h, "Journal start"))
        } else {
            let t = tool("xfs_logprint", &["-t", s(&img)]);
            let l = t.lines().find(|l| l.contains("log tail:")).expect("log tail line");
            let w: Vec<&str> = l.split_whitespace().collect();
            format!("from the tail at block {} to the head at block {}", w[2], w[4])
        };
        for cmd in [vec!["ls", s(&img), "/"], vec!["stat", s(&img), "/"], vec!["info", s(&img)]] {
            let r = dx(&cmd);
            assert!(
                !r.err.contains("needs recovery"),
                "{fs} {cmd:?}: the recovered view is shown, yet: {}",
                r.err
            );
            let mut raw = vec!["--raw"];
            raw.extend(&cmd);
            let r = dx(&raw);
            let notices: Vec<&str> = r.err.lines().filter(|l| l.contains("needs recovery")).collect();
            assert_eq!(notices.len(), 1, "{fs} {raw:?}: {}", r.err);
            assert!(
                notices[0].contains(&want) && notices[0].contains("--raw"),
                "{fs}: {} (want {want})",
                notices[0]
            );
        }
    }
}

#[test]
fn xfs_counters_are_the_ones_the_kernel_computes_at_mount() {
    if !ready(&["xfs_db", "mount", "losetup"], true) {
        return;
    }
    let (_t, img) = common::unpack_fixture("xfs", "kernel-dirty");
    let on_disk = xfs_db_counters(&img);
    let r = dx(&["--json", "info", s(&img)]);
    let v: serde_json::Value = serde_json::from_str(&r.out).expect("info JSON");
    let f = &v["filesystem"];
    let ours = ["icount", "ifree", "fdblocks"].map(|k| f[k].as_u64().expect(k));
    // The superblock's own (lazy) counters, on the media as it is, are xfs_db's.
    let raw = dx(&["--raw", "--json", "info", s(&img)]);
    let raw: serde_json::Value = serde_json::from_str(&raw.out).expect("info JSON");
    let ours_disk =
        ["icount", "ifree", "fdblocks"].map(|k| raw["filesystem"]["counters_on_disk"][k].as_u64().expect(k));
    assert_eq!(ours_disk, on_disk, "the on-disk (lazy) counters are xfs_db's");
    // The kernel: mount a copy (it replays the log and recomputes the counters from the AG
    // headers), read statfs, unmount cleanly (which writes the counters), read them back.
    let copy = img.with_file_name("copy.img");
    std::fs::copy(&img, &copy).expect("copy");
    let m = Mount::new(&copy, 0, "xfs", "nouuid").expect("mount");
    let st = nix_statvfs(m.path());
    m.unmount().expect("unmount");
    let kernel = xfs_db_counters(&copy);
    assert_ne!(
        kernel, on_disk,
        "the fixture's lazy counters are already up to date: the test proves nothing"
    );
    assert_eq!(ours, kernel, "daxray's counters against the kernel's after its mount");
    assert_eq!(ours[0] - ours[1], st.0 - st.1, "inodes in use against statfs (f_files - f_ffree)");
    // Each AG's row sums to the counters.
    let ags = f["ags"].as_array().expect("ags");
    let sum = |k: &str| ags.iter().map(|a| a[k].as_u64().expect(k)).sum::<u64>();
    assert_eq!(sum("freeblks") + sum("flcount") + sum("btreeblks"), ours[2]);
}

#[test]
fn stat_and_ls_show_times_in_utc_and_device_numbers_as_stat1_does() {
    if !ready(&["mkfs.ext4", "mkfs.xfs", "stat", "touch", "mknod", "mount", "losetup"], true) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let nodes = ["/old", "/c-small", "/c-big", "/b-dev", "/docs/hello.txt"];
    for fs in ["ext4", "xfs"] {
        let img = mkfs(fs, tmp.path());
        // stat(1) in UTC on the kernel's mount: %x %y %z %w and the device's %t %T (hex).
        let kernel: Vec<Vec<String>> = mounted(&img, fs, |root| {
            populate(root);
            let p = |n: &str| format!("{}{n}", root.display());
            std::fs::write(p("/old"), b"x").expect("write");
            tool("touch", &["-d", "1999-12-31 23:59:58.123456789", &p("/old")]);
            tool("mknod", &[&p("/c-small"), "c", "4", "5"]);
            // Numbers too big for the old 16-bit encoding (ext4 keeps them in i_block[1]).
            tool("mknod", &[&p("/c-big"), "c", "300", "70000"]);
            tool("mknod", &[&p("/b-dev"), "b", "259", "1"]);
            nodes
                .iter()
                .map(|n| {
                    tool("stat", &["-c", "%x|%y|%z|%w|%t|%T", &p(n)])
                        .trim()
                        .split('|')
                        .map(String::from)
                        .collect()
                })
                .collect()
        });
        let ls = dx(&["ls", "-l", s(&img), "/"]);
        for (n, k) in nodes.iter().zip(&kernel) {
            let r = dx(&["stat", s(&img), n]);
            assert_eq!(r.code, 0, "{fs} stat {n}: {}", r.err);
            for (key, want) in ["atime", "mtime", "ctime", "crtime"].iter().zip(k) {
                let v = line_value(&r.out, key);
                assert!(v.ends_with(&format!("({want})")), "{fs} {n} {key}: {v}, stat(1) says {want}");
            }
            let dev =
                (u32::from_str_radix(&k[4], 16).expect("hex"), u32::from_str_radix(&k[5], 16).expect("hex"));
            let is_dev = n.starts_with("/c-") || n.starts_with("/b-");
            if is_dev {
                assert_eq!(line_value(&r.out, "device"), format!("{}, {}", dev.0, dev.1), "{fs} {n}");
            } else {
                assert!(!r.out.lines().any(|l| l.starts_with("device:")), "{fs} {n}: {}", r.out);
            }
            if let Some(name) = n.strip_prefix('/').filter(|n| !n.contains('/')) {
                let row = ls
                    .out
                    .lines()
                    .find(|l| l.ends_with(&format!(" {name}")))
                    .unwrap_or_else(|| panic!("{fs}: no {name} in ls -l:\n{}", ls.out));
                assert!(
                    row.contains(&format!(" {} ", &k[1][..19])),
                    "{fs}: ls -l mtime of {name}: {row} (stat(1): {})",
                    k[1]
                );
                if is_dev {
                    assert!(
                        row.contains(&format!(" {}, {} ", dev.0, dev.1)),
                        "{fs}: ls -l device {name}: {row}"
                    );
                }
            }
        }
    }
}

#[test]
fn journal_refuses_verify_data_on_xfs_and_raw_changes_nothing() {
    if !ready(&["xfs_logprint"], false) {
        return;
    }
    for fs in ["ext4", "xfs"] {
        let (_t, img) = common::unpack_fixture(fs, "kernel-dirty");
        let r = dx(&["journal", "--verify-data", s(&img)]);
        if fs == "xfs" {
            assert_eq!(r.code, 2, "{}", r.err);
            assert!(r.err.contains("--verify-data is for ext4 journals"), "{}", r.err);
            // The listing's head and tail are xfs_logprint's.
            let t = tool("xfs_logprint", &["-t", s(&img)]);
            let w: Vec<String> = t
                .lines()
                .find(|l| l.contains("log tail:"))
                .expect("tail")
                .split_whitespace()
                .map(String::from)
                .collect();
            let head = dx(&["journal", s(&img)]).out;
            assert!(
                head.contains(&format!("head: block {} ", w[4]))
                    && head.contains(&format!("tail: block {} ", w[2])),
                "{head}"
            );
        } else {
            assert!(r.code <= 1 && r.out.contains("csum ok"), "{}", r.err);
        }
        assert_eq!(
            dx(&["--raw", "journal", s(&img)]).out,
            dx(&["journal", s(&img)]).out,
            "{fs}: --raw changed the listing"
        );
    }
}

#[test]
fn info_text_is_aligned_key_value_lines_with_times_in_utc_on_both_file_systems() {
    if !ready(&["dumpe2fs", "xfs_db", "date"], false) {
        return;
    }
    let mut layouts = vec![];
    for fs in ["ext4", "xfs"] {
        let (_t, img) = common::unpack_fixture(fs, "kernel-dirty");
        let r = dx(&["info", s(&img)]);
        assert!(r.code <= 1, "{fs}: {}", r.err);
        assert!(!r.out.contains("{\"") && !r.out.contains("[{"), "{fs}: a JSON blob in the text:\n{}", r.out);
        let first = r.out.lines().next().expect("image line");
        let col = first.len() - first["image:".len()..].trim_start().len();
        for l in r.out.lines() {
            let (k, v) = l.split_once(':').unwrap_or_else(|| panic!("{fs}: not a key: value line: {l}"));
            assert!(!k.trim().is_empty(), "{fs}: {l}");
            if !v.trim().is_empty() {
                assert_eq!(l.len() - v.trim_start().len(), col, "{fs}: value out of column: {l}");
            }
        }
        let keys: Vec<String> = r
            .out
            .lines()
            .filter(|l| !l.starts_with(' '))
            .map(|l| l.split(':').next().unwrap().to_string())
            .collect();
        layouts.push(keys[..7].to_vec());
        if fs == "ext4" {
            // dumpe2fs's "Filesystem created:" in UTC, as date(1) reads it back.
            let h = tool("dumpe2fs", &["-h", s(&img)]);
            let created =
                h.lines().find_map(|l| l.strip_prefix("Filesystem created:")).expect("created").trim();
            let want = tool("date", &["-u", "-d", created, "+%Y-%m-%d %H:%M:%S"]);
            let got = line_value(&r.out, "  mkfs_time");
            assert!(
                got.ends_with(&format!("({} +0000)", want.trim())),
                "mkfs_time {got}, dumpe2fs {created}"
            );
        } else {
            // Under --raw the superblock's own counters are xfs_db's, under their label.
            let r = dx(&["--raw", "info", s(&img)]);
            let at = r.out.find("counters on disk (lazy):").expect("the lazy counters, labelled");
            let below: Vec<&str> = r.out[at..].lines().skip(1).take(3).collect();
            for (k, v) in ["icount", "ifree", "fdblocks"].iter().zip(xfs_db_counters(&img)) {
                let row = below
                    .iter()
                    .find(|l| l.trim_start().starts_with(&format!("{k}:")))
                    .unwrap_or_else(|| panic!("{k}: {below:?}"));
                assert_eq!(row.split_whitespace().last(), Some(v.to_string().as_str()), "{row}");
            }
        }
    }
    assert_eq!(layouts[0], ["image", "namespace", "file system", "recovery", "fs", "uuid", "label"]);
    assert_eq!(layouts[0], layouts[1], "ext4 and XFS info begin alike");
}
