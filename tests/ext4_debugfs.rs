//! daxray against `debugfs -c` on the same bytes: images made by `mkfs.ext4 -d` from a generated
//! tree, with many format options (block maps, inline data, 1 KiB and 64 KiB blocks, 32/64-bit,
//! meta_bg, 128-byte inodes, gdt_csum). For every inode daxray finds: type, mode, links, uid,
//! gid, size, i_blocks, inode checksum; the block map (`ex` for extent trees, the `stat` block
//! list for indirect maps); file contents (`dump`); symlink targets; directory entries (`ls -p`).
//! The walk is also compared with the tree mkfs was given, and a clean image must give no error
//! findings (every checksum verifies).

mod common;

use daxray::FileSystem;
use daxray::ext4::Ext4;
use daxray::fs::{Extent, FileType};
use daxray::image::{BlockSource, MmapSource};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// A small deterministic generator (xorshift64*), so the tree is the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 56) as u8).collect()
    }
}

/// Build the source tree: files of edge-case sizes, sparse files, a large directory, deep
/// directories, fast and slow symlinks, hard links, a FIFO and a socket.
fn make_tree(root: &Path, seed: u64) {
    let mut r = Rng(seed | 1);
    let sizes = [0usize, 1, 59, 60, 61, 100, 1000, 4095, 4096, 4097, 12_293, 70_000, 300_000, 1_500_000];
    for (i, s) in sizes.iter().enumerate() {
        std::fs::write(root.join(format!("size{i}_{s}")), r.bytes(*s)).expect("write");
    }
    // Sparse: data islands with holes between, and a hole at the end.
    for (k, islands) in [[0u64, 1 << 20, 3 << 20], [8192, 600_000, 2_000_000]].iter().enumerate() {
        let p = root.join(format!("sparse{k}"));
        let f = std::fs::File::create(&p).expect("create");
        for off in islands {
            use std::os::unix::fs::FileExt;
            f.write_all_at(&r.bytes(5000), *off).expect("write_at");
        }
        f.set_len(5 << 20).expect("set_len");
    }
    let many = root.join("many");
    std::fs::create_dir(&many).expect("mkdir");
    for i in 0..600 {
        let name = format!("entry{i:04}_{}", "n".repeat((r.next() % 40) as usize));
        let len = (r.next() % 200) as usize;
        std::fs::write(many.join(name), r.bytes(len)).expect("write");
    }
    let mut deep = root.join("deep");
    for d in 0..20 {
        deep = deep.join(format!("d{d}"));
    }
    std::fs::create_dir_all(&deep).expect("mkdir deep");
    std::fs::write(deep.join("leaf"), r.bytes(3000)).expect("write");
    std::fs::create_dir(root.join("empty")).expect("mkdir");
    for (i, n) in [1usize, 20, 59, 60, 61, 200, 1000].iter().enumerate() {
        let target: String = (0..*n).map(|k| (b'a' + (k % 26) as u8) as char).collect();
        std::os::unix::fs::symlink(target, root.join(format!("link{i}_{n}"))).expect("symlink");
    }
    std::fs::hard_link(root.join("size6_1000"), root.join("hardlink")).expect("link");
    // Thousands of long names (hard links to one file): with 1 KiB blocks the htree made by
    // e2fsck -D needs interior index nodes.
    let huge = root.join("huge");
    std::fs::create_dir(&huge).expect("mkdir");
    for i in 0..4000 {
        std::fs::hard_link(root.join("size5_100"), huge.join(format!("{i:05}_{}", "h".repeat(55))))
            .expect("link");
    }
    let st = Command::new("mkfifo").arg(root.join("fifo")).status().expect("run mkfifo (coreutils)");
    assert!(st.success(), "mkfifo failed");
    let _sock = std::os::unix::net::UnixListener::bind(root.join("sock")).expect("bind socket");
}

/// Run debugfs read-only with a command file; returns each command's output keyed by the
/// command as echoed.
fn debugfs(img: &Path, cmds: &[String], dir: &Path) -> BTreeMap<String, String> {
    let cf = dir.join("cmds");
    std::fs::File::create(&cf).and_then(|mut f| f.write_all(cmds.join("\n").as_bytes())).expect("write cmds");
    let out = Command::new("debugfs")
        .arg("-c")
        .arg("-f")
        .arg(&cf)
        .arg(img)
        .output()
        .expect("run debugfs (e2fsprogs)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut map = BTreeMap::new();
    let mut cur: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(cmd) = line.strip_prefix("debugfs: ") {
            if let Some((c, o)) = cur.take() {
                map.insert(c, o);
            }
            cur = Some((cmd.to_string(), String::new()));
        } else if let Some((_, o)) = cur.as_mut() {
            o.push_str(line);
            o.push('\n');
        }
    }
    if let Some((c, o)) = cur {
        map.insert(c, o);
    }
    map
}

/// A `Key: value` number from debugfs stat output.
fn field(stat: &str, key: &str) -> Option<u64> {
    let i = stat.find(key)? + key.len();
    let s = stat[i..].trim_start();
    if let Some(h) = s.strip_prefix("0x") {
        let d: String = h.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        return u64::from_str_radix(&d, 16).ok();
    }
    let d: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    d.parse().ok()
}

/// Leaf extents from `ex` output.
fn parse_ex(out: &str) -> Vec<Extent> {
    let mut v = Vec::new();
    for line in out.lines().skip(1) {
        let mut l = line.to_string();
        while l.contains("/ ") {
            l = l.replace("/ ", "/");
        }
        let t: Vec<&str> = l.split_whitespace().collect();
        if t.len() < 9 {
            continue;
        }
        let Some((lv, mx)) = t[0].split_once('/') else { continue };
        if lv != mx {
            continue;
        }
        let n = |s: &str| s.parse::<u64>().unwrap_or(u64::MAX);
        v.push(Extent {
            logical: n(t[2]),
            physical: n(t[5]),
            length: n(t[8]),
            unwritten: t.get(9).is_some_and(|f| f.contains("Uninit")),
        });
    }
    v
}

/// Data block ranges from the block list in `stat` output ("(0-11):100-111, (IND):112, ...").
fn parse_stat_blocks(stat: &str) -> Vec<Extent> {
    let mut v = Vec::new();
    let Some(i) = stat.find("BLOCKS:\n").map(|i| i + 8).or_else(|| stat.find("EXTENTS:\n").map(|i| i + 9))
    else {
        return v;
    };
    for item in stat[i..].split([',', '\n']) {
        let item = item.trim().replace("[u]", "");
        let Some(rest) = item.strip_prefix('(') else { continue };
        let Some((lr, pr)) = rest.split_once("):") else { continue };
        if !lr.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let range = |s: &str| -> (u64, u64) {
            match s.split_once('-') {
                Some((a, b)) => (a.parse().unwrap_or(u64::MAX), b.parse().unwrap_or(u64::MAX)),
                None => (s.parse().unwrap_or(u64::MAX), s.parse().unwrap_or(u64::MAX)),
            }
        };
        let (l0, l1) = range(lr);
        let (p0, _) = range(pr);
        v.push(Extent { logical: l0, physical: p0, length: l1 - l0 + 1, unwritten: false });
    }
    v
}

/// Split extents into single blocks so different groupings compare equal.
fn blocks_of(ext: &[Extent]) -> BTreeSet<(u64, u64, bool)> {
    ext.iter()
        .flat_map(|e| (0..e.length.min(1 << 24)).map(move |k| (e.logical + k, e.physical + k, e.unwritten)))
        .collect()
}

fn type_name(t: FileType) -> &'static str {
    match t {
        FileType::File => "regular",
        FileType::Dir => "directory",
        FileType::Symlink => "symlink",
        FileType::Char => "character special",
        FileType::Block => "block special",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::Unknown => "bad type",
    }
}

/// Paths under `root` as mkfs saw them (relative, "/" separated).
fn source_paths(root: &Path, prefix: &str, out: &mut BTreeSet<String>) {
    for e in std::fs::read_dir(root).expect("read_dir").flatten() {
        let p = format!("{prefix}/{}", e.file_name().to_string_lossy());
        out.insert(p.clone());
        if e.file_type().expect("file_type").is_dir() {
            source_paths(&e.path(), &p, out);
        }
    }
}

/// `info()` against `dumpe2fs -h`: geometry, features, uuid, label, state, journal inode.
fn check_info(name: &str, fs: &Ext4, img: &Path) {
    let out = Command::new("dumpe2fs").arg("-h").arg(img).output().expect("run dumpe2fs (e2fsprogs)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let get = |k: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix(':')))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let info = fs.info();
    let g = &info["geometry"];
    let pairs = [
        ("Block size", g["block_size"].to_string()),
        ("Block count", g["blocks_count"].to_string()),
        ("Inode count", g["inodes_count"].to_string()),
        ("Inodes per group", g["inodes_per_group"].to_string()),
        ("Blocks per group", g["blocks_per_group"].to_string()),
        ("First block", g["first_data_block"].to_string()),
        ("Inode size", g["inode_size"].to_string()),
        ("Filesystem UUID", info["uuid"].as_str().unwrap_or("").to_string()),
        ("Filesystem state", info["state"].as_str().unwrap_or("").to_string()),
        ("Mount count", info["mounts"]["mount_count"].to_string()),
    ];
    for (k, ours) in pairs {
        assert_eq!(ours, get(k), "{name}: info {k} differs from dumpe2fs");
    }
    let label = info["label"].as_str().unwrap_or("");
    assert_eq!(
        if label.is_empty() { "<none>" } else { label },
        get("Filesystem volume name"),
        "{name}: label"
    );
    if fs.superblock().has_incompat(0x80) {
        assert_eq!(g["desc_size"].to_string(), get("Group descriptor size"), "{name}: desc size");
    }
    if fs.superblock().has_journal() {
        assert_eq!(info["journal"]["inode"].to_string(), get("Journal inode"), "{name}: journal inode");
    }
    let theirs: BTreeSet<String> = get("Filesystem features").split_whitespace().map(String::from).collect();
    let f = &info["features"];
    let ours: BTreeSet<String> = ["compat", "incompat", "ro_compat"]
        .iter()
        .flat_map(|k| f[*k].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    assert_eq!(ours, theirs, "{name}: feature names differ from dumpe2fs");
}

/// Compare one image with debugfs; returns (inodes compared, data bytes compared).
fn check_image(name: &str, img: &Path, tree: &Path, work: &Path) -> (usize, u64) {
    let src: Arc<dyn BlockSource> = Arc::new(MmapSource::open(img).expect("map"));
    let fs = Ext4::open(src).unwrap_or_else(|e| panic!("{name}: open: {e}"));
    let mut errs = Vec::new();
    let walk = daxray::fs::walk(&fs, "/", &mut errs).expect("walk");
    assert!(errs.is_empty(), "{name}: walk errors {errs:?}");
    let ours: BTreeSet<String> = walk.iter().map(|w| w.path.clone()).filter(|p| p != "/lost+found").collect();
    let mut want = BTreeSet::new();
    source_paths(tree, "", &mut want);
    assert_eq!(ours, want, "{name}: the walk differs from the tree given to mkfs");

    let paths: BTreeMap<u64, String> = walk.iter().map(|w| (w.ino, w.path.clone())).collect();
    check_info(name, &fs, img);
    let mut inodes: BTreeMap<u64, FileType> = walk.iter().map(|w| (w.ino, w.file_type)).collect();
    inodes.insert(2, FileType::Dir);
    // The journal inode (the jbd2 reader maps it through this model) and the resize inode:
    // stat and block map only (the resize inode's size is huge; never dump it).
    let mut meta = BTreeSet::new();
    if fs.superblock().has_journal() {
        meta.insert(u64::from(fs.superblock().journal_inum()));
    }
    if fs.superblock().compat() & 0x10 != 0 {
        meta.insert(7u64);
    }
    for m in &meta {
        inodes.insert(*m, FileType::File);
    }
    let dumps = work.join("dumps");
    std::fs::create_dir_all(&dumps).expect("mkdir");
    let mut cmds = Vec::new();
    for (ino, ft) in &inodes {
        cmds.push(format!("stat <{ino}>"));
        match ft {
            FileType::File => {
                cmds.push(format!("ex <{ino}>"));
                if !meta.contains(ino) {
                    cmds.push(format!("dump <{ino}> {}/{ino}", dumps.display()));
                }
            }
            FileType::Dir => cmds.push(format!("ls -p <{ino}>")),
            FileType::Symlink => cmds.push(format!("dump <{ino}> {}/{ino}", dumps.display())),
            _ => {}
        }
    }
    let out = debugfs(img, &cmds, work);
    let metadata_csum = fs.superblock().metadata_csum();
    let mut diffs = Vec::new();
    let mut bytes = 0u64;
    for (ino, ft) in &inodes {
        let ino = *ino;
        let stat =
            out.get(&format!("stat <{ino}>")).unwrap_or_else(|| panic!("{name}: no debugfs stat for {ino}"));
        let st = fs.stat(ino).expect("stat");
        let mut d = |what: &str, a: String, b: String| {
            if a != b {
                diffs.push(format!("{name}: inode {ino} {what}: daxray {a} debugfs {b}"));
            }
        };
        let ty =
            stat.split("Type: ").nth(1).and_then(|s| s.split("  ").next()).unwrap_or("").trim().to_string();
        d("type", type_name(st.file_type).into(), ty);
        d(
            "mode",
            format!("{:o}", st.mode & 0o7777),
            format!(
                "{:o}",
                field(stat, "Mode:")
                    .map(|m| m.to_string())
                    .and_then(|s| u64::from_str_radix(&s, 8).ok())
                    .unwrap_or(0)
            ),
        );
        d("links", st.nlink.to_string(), field(stat, "Links:").unwrap_or(0).to_string());
        d("uid", st.uid.to_string(), field(stat, "User:").unwrap_or(0).to_string());
        d("gid", st.gid.to_string(), field(stat, "Group:").unwrap_or(0).to_string());
        d("size", st.size.to_string(), field(stat, "Size:").unwrap_or(0).to_string());
        d("i_blocks", st.blocks_512.to_string(), field(stat, "Blockcount:").unwrap_or(0).to_string());
        if metadata_csum {
            let ours = st.extra.get("checksum").and_then(|v| v.as_str()).unwrap_or("").to_string();
            d("checksum", ours, format!("{:#010x}", field(stat, "Inode checksum:").unwrap_or(0)));
        }
        if let Some(n) = field(stat, "Size of inline data:") {
            d(
                "inline size",
                st.extra.get("inline_size").map(|v| v.to_string()).unwrap_or_default(),
                n.to_string(),
            );
        }
        let ext = fs.map(ino).expect("map");
        let extent_fl = st.flags & 0x80000 != 0;
        let theirs = if extent_fl && *ft == FileType::File {
            parse_ex(out.get(&format!("ex <{ino}>")).map(String::as_str).unwrap_or(""))
        } else {
            parse_stat_blocks(stat)
        };
        if *ft != FileType::Symlink || !ext.is_empty() {
            d(
                "blocks",
                format!("{:?}", daxray::fs::merge_extents(&ext)),
                format!("{:?}", daxray::fs::merge_extents(&theirs)),
            );
            if blocks_of(&ext) != blocks_of(&theirs) {
                diffs.push(format!("{name}: inode {ino}: block sets differ"));
            }
        }
        match ft {
            FileType::File if meta.contains(&ino) => {}
            FileType::File => {
                let mut want = std::fs::read(dumps.join(ino.to_string())).expect("debugfs dump");
                // debugfs 1.47.0 dumps the whole 60-byte i_block of an inline file shorter than
                // that; its own stat gives the size.
                if stat.contains("Size of inline data:") && want.len() as u64 > st.size {
                    want.truncate(st.size as usize);
                }
                let got = fs.read(ino, 0, st.size as usize).expect("read");
                // And the bytes mkfs was given.
                if let Some(path) = paths.get(&ino) {
                    let mut src =
                        std::fs::read(tree.join(path.trim_start_matches('/'))).expect("read source");
                    // mkfs.ext4 1.47.0 -O inline_data drops a trailing hole from the size of
                    // sparse files (debugfs agrees with daxray there): compare what was kept.
                    if src.len() > got.len() && src[got.len()..].iter().all(|b| *b == 0) {
                        src.truncate(got.len());
                    }
                    if got != src {
                        diffs.push(format!("{name}: {path}: contents differ from the source file"));
                    }
                }
                if got != want {
                    diffs.push(format!(
                        "{name}: inode {ino}: contents differ ({} vs {} bytes)",
                        got.len(),
                        want.len()
                    ));
                }
                bytes += got.len() as u64;
            }
            FileType::Symlink => {
                // Fast links: the target debugfs prints; others: the bytes it dumps.
                let want = match stat.split("Fast link dest: \"").nth(1).and_then(|s| s.rsplit_once('"')) {
                    Some((t, _)) => t.as_bytes().to_vec(),
                    None => std::fs::read(dumps.join(ino.to_string())).expect("debugfs dump"),
                };
                let got = fs.read_link(ino).expect("read_link");
                if got != want {
                    diffs.push(format!(
                        "{name}: inode {ino}: symlink {:?} vs {:?}",
                        String::from_utf8_lossy(&got),
                        String::from_utf8_lossy(&want)
                    ));
                }
            }
            FileType::Dir => {
                let ls = out.get(&format!("ls -p <{ino}>")).map(String::as_str).unwrap_or("");
                let theirs: BTreeSet<(String, u64)> = ls
                    .lines()
                    .filter_map(|l| {
                        let f: Vec<&str> = l.split('/').collect();
                        (f.len() >= 7).then(|| (f[5].to_string(), f[1].parse().unwrap_or(0)))
                    })
                    .filter(|(n, i)| n != "." && n != ".." && *i != 0)
                    .collect();
                let ours: BTreeSet<(String, u64)> = fs
                    .read_dir(ino)
                    .expect("read_dir")
                    .into_iter()
                    .map(|e| (String::from_utf8_lossy(&e.name).into_owned(), e.ino))
                    .collect();
                if ours != theirs {
                    diffs.push(format!(
                        "{name}: directory {ino}: {} entries vs debugfs {}",
                        ours.len(),
                        theirs.len()
                    ));
                }
            }
            _ => {}
        }
    }
    let bad: Vec<_> =
        fs.findings().into_iter().filter(|f| f.severity == daxray::error::Severity::Error).collect();
    assert!(bad.is_empty(), "{name}: error findings on a clean mkfs image: {bad:#?}");
    assert!(diffs.is_empty(), "{} differences:\n{}", diffs.len(), diffs.join("\n"));
    (inodes.len(), bytes)
}

#[test]
fn ext4_against_debugfs() {
    if !common::ready(&["mkfs.ext4", "debugfs", "mkfifo"], false) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let tree = tmp.path().join("tree");
    std::fs::create_dir(&tree).expect("mkdir");
    make_tree(&tree, 0x5eed);
    // Images under 512 MiB get 1 KiB blocks from mke2fs.conf unless told otherwise.
    let configs: &[(&str, &[&str])] = &[
        ("default-4k", &["-b", "4096", "-L", "daxray-test"]),
        ("default-1k", &[]),
        ("indirect-1k", &["-O", "^extents,^64bit", "-b", "1024"]),
        ("indirect-4k-ext3", &["-t", "ext3", "-b", "4096"]),
        ("inline_data-4k", &["-b", "4096", "-O", "inline_data"]),
        ("inline_data-1k-512", &["-b", "1024", "-I", "512", "-O", "inline_data"]),
        ("htree-4k", &["-b", "4096"]),
        ("htree-1k", &["-b", "1024"]),
        ("htree-1k-nocsum", &["-b", "1024", "-O", "^metadata_csum"]),
        ("64k", &["-b", "65536", "-O", "^has_journal"]),
        ("32bit-4k", &["-b", "4096", "-O", "^64bit"]),
        ("meta_bg-4k", &["-b", "4096", "-O", "64bit,meta_bg,^resize_inode"]),
        ("meta_bg-1k-32bit", &["-b", "1024", "-O", "^64bit,meta_bg,^resize_inode"]),
        ("inode128", &["-I", "128", "-O", "^64bit"]),
        ("gdt_csum-4k", &["-b", "4096", "-O", "^metadata_csum,uninit_bg"]),
        ("csum_seed", &["-O", "metadata_csum_seed"]),
        ("bigalloc-4k", &["-b", "4096", "-O", "bigalloc", "-C", "16384"]),
    ];
    let (mut inodes, mut bytes) = (0, 0);
    for (name, opts) in configs {
        let work = tmp.path().join(name);
        std::fs::create_dir(&work).expect("mkdir");
        let img: PathBuf = work.join("fs.img");
        let f = std::fs::File::create(&img).expect("create");
        f.set_len(64 << 20).expect("set_len");
        let st = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-E", "root_owner=1234:5678"])
            .args(*opts)
            .arg("-d")
            .arg(&tree)
            .arg(&img)
            .status()
            .expect("run mkfs.ext4");
        assert!(st.success(), "mkfs.ext4 {opts:?} failed");
        // mkfs -d writes linear directories; e2fsck -D re-indexes them as htrees (on our own
        // scratch copy), so the htree reader and its checksums meet e2fsprogs-made indexes.
        let htree = name.contains("htree");
        if htree {
            let st = Command::new("e2fsck")
                .args(["-f", "-y", "-D"])
                .arg(&img)
                .stdout(std::process::Stdio::null())
                .status()
                .expect("run e2fsck");
            assert!(st.code().is_some_and(|c| c <= 1), "e2fsck -fyD failed: {st}");
            let src: Arc<dyn BlockSource> = Arc::new(MmapSource::open(&img).expect("map"));
            let fs = Ext4::open(src).expect("open");
            let many = daxray::fs::lookup(&fs, "/many").expect("lookup /many");
            assert!(
                fs.stat(many).expect("stat").flags & 0x1000 != 0,
                "{name}: /many is not an htree after e2fsck -D"
            );
            if name.contains("-1k") {
                // Block 0 is the root; its indirect_levels byte (offset 30) must be 1 here.
                let huge = daxray::fs::lookup(&fs, "/huge").expect("lookup /huge");
                let root = fs.map(huge).expect("map")[0].physical;
                let levels = fs.source().read_at(root * 1024 + 30, 1).expect("read")[0];
                assert_eq!(levels, 1, "{name}: /huge htree has {levels} index levels below the root");
            }
        }
        let (n, b) = check_image(name, &img, &tree, &work);
        println!("{name}: {n} inodes and {b} bytes equal to debugfs");
        inodes += n;
        bytes += b;
        std::fs::remove_dir_all(&work).ok();
    }
    assert!(inodes > 5000 && bytes > 10 << 20, "compared only {inodes} inodes, {bytes} bytes");
}
