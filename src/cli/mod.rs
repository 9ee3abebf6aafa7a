//! The command-line interface: argument definitions (clap derive) and one file per subcommand.
//! Each subcommand parses its arguments, calls the library and prints text or JSON.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

pub mod ag;
pub mod agent;
pub mod bd;
pub mod bench;
pub mod cat;
pub mod check;
pub mod claim;
pub mod getfattr;
pub mod groups;
pub mod icheck;
pub mod info;
pub mod jbd2_text;
pub mod journal;
pub mod listing;
pub mod ls;
pub mod man;
pub mod manifest;
pub mod map;
pub mod ncheck;
pub mod output;
pub mod probe;
pub mod replay;
pub mod replay_table;
pub mod stat;
pub mod vm;
pub mod xlog_text;

/// ext4 and XFS on fsdax persistent memory: inspect images, replay journals and logs in memory,
/// check crash images, and test the MAP_SYNC guarantee on a real kernel.
///
/// daxray never writes to an image: it maps it read-only. An image may be a bare file system, a
/// block device, or an fsdax namespace (NVDIMM_PFN_INFO at byte 4096; the file system starts at
/// its dataoff), which is found by itself. Unless --raw is given, the jbd2 journal or XFS log is
/// replayed in memory first, so that every command shows what the kernel would show after
/// mounting a copy of the image. On ext4 with fast commits, the valid fast-commit tags are
/// replayed after the jbd2 passes, as the kernel does at mount.
///
/// JSON output (--json): every inspection command prints one pretty-printed JSON object (manifest
/// prints JSON Lines). Each object carries "findings": a list of problems noticed and skipped,
/// each FINDING being `{"severity":"info|error","structure":"...","block":N|null,"offset":N|null,"message":"..."}`. Block is in the structure's own unit (file-system block, journal block or XFS daddr, as the structure says); offset is the byte offset from the start of the file system. With --json, errors are printed on standard output as `{"error":"...","exit_code":N}`.
#[derive(Debug, Parser)]
#[command(name = "daxray", version, about, max_term_width = 100)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: Global,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Print JSON instead of text (JSON Lines for `manifest`).
    #[arg(long, global = true)]
    pub json: bool,
    /// Show the media as it is: do not replay the journal or log in memory.
    #[arg(long, global = true)]
    pub raw: bool,
    /// Byte offset of the file system in the image (default: found from an fsdax namespace
    /// header at byte 4096, else 0): decimal or 0x hexadecimal, optionally with a unit K, M, G
    /// or T (also KiB, MiB, GiB, TiB; powers of 1024): 4096, 0x1000, 4K and 4KiB are the same.
    /// An offset at or past the end of the image is a usage error (exit status 2).
    #[arg(long, global = true, value_name = "BYTES", value_parser = output::parse_size)]
    pub offset: Option<u64>,
    /// An external ext4 journal device or image.
    #[arg(long, global = true, value_name = "FILE")]
    pub journal_dev: Option<PathBuf>,
    /// An external XFS log device or image.
    #[arg(long, global = true, value_name = "FILE")]
    pub log_dev: Option<PathBuf>,
    /// XFS: find the log head reading exact 512-byte blocks instead of whole log sectors as
    /// the kernel does. On a log with 4 KiB sectors torn by a crash, the kernel's reads cannot
    /// see the newest record and drop it; this shows the view that keeps it.
    #[arg(long, global = true)]
    pub exact_log_head: bool,
    /// XFS: follow the log head search of these kernels where kernels differ: 6.7 (Linux 6.7
    /// and later, the default) or 6.1 (before 6.7, and xfs_logprint before xfsprogs 6.7).
    #[arg(long, global = true, value_name = "KERNEL", default_value = "6.7")]
    pub log_rules: crate::xlog::search::Rules,
}

impl Global {
    /// The library's open options for these flags.
    pub fn open_options(&self) -> crate::open::OpenOptions {
        crate::open::OpenOptions {
            offset: self.offset,
            raw: self.raw,
            journal_dev: self.journal_dev.clone(),
            log_dev: self.log_dev.clone(),
            exact_log_head: self.exact_log_head,
            log_rules: self.log_rules,
            access: crate::open::Access::Map,
            in_use: crate::open::InUse::Warn,
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// What the image is, where the file system starts, geometry, features, journal state.
    ///
    /// JSON output: `{"image":PLACEMENT,"filesystem":{...},"recovery":RECOVERY,"findings":[FINDING...]}`.
    /// PLACEMENT is `{"path":"...","image_bytes":N,"fs_offset":N,"found_by":"bare|fsdax namespace|--offset","pmem":null|{"kind":"fsdax|devdax","uuid","parent_uuid","version":"major.minor","dataoff","npfns","mode":"none|ram|pmem","start_pad","end_trunc","align","page_size","checksum"},"fs":"ext4|xfs"}`.
    /// "filesystem" holds the superblock facts of the file system found: "fs", "uuid", "label",
    /// "state", "features", "geometry" (block size, counts, group or AG layout), "journal" or
    /// "log", free counts, checksum state. On XFS with lazy superblock counters (every v5 file
    /// system), "icount", "ifree" and "fdblocks" are the counters the kernel's mount computes
    /// from the AG headers (xfs_initialize_perag_data: the AGIs' inode counts, the AGFs' free,
    /// free-list and btree blocks), and `"counters_on_disk":{"lazy":true,"icount":N,"ifree":N,"fdblocks":N}`
    /// the superblock's own, brought up to date only by a clean unmount. RECOVERY is
    /// `{"kind":"jbd2|xfs-log|none","needed":BOOL,"applied":BOOL,"details":{...},"findings":[FINDING...]}`,
    /// where needed is true when the journal or log holds work the kernel would replay at mount;
    /// applied is true when the view includes it (false with --raw). For jbd2 with fast commits,
    /// details has `"fast_commit":{"tags":N,"valid_tags":N,"expected_tid":N,"scan_end":"...","replay_applied":BOOL,"replay":{"applied":{"INODE":N,...},"no_effect":{...},"inodes_touched":[N...],"dirs_touched":[N...],"not_emulated":["..."],"problems":["..."]}}`
    /// (replay_applied false and no "replay" when no valid tag exists or the kernel's scan fails).
    Info(info::Args),
    /// List a directory.
    ///
    /// Text output: inode, type letter (as ls -l shows it) and name, one entry a line; with -R
    /// the full path of every entry under PATH; with -l the type letter and mode, links, owner,
    /// group, size (a device's "major, minor"), modification time (UTC, to the second), inode
    /// and name, with "-> target" for a symbolic link. PATH naming a file lists that file.
    ///
    /// JSON output: `{"path":"/","entries":[{"name":"...","ino":N,"type":"file|dir|symlink|char|block|fifo|socket|unknown","mode":"644"|null,"size":N|null,"nlink":N|null,"mtime":{"sec":N,"nsec":N}|null,"device":{"major":N,"minor":N}|null,"target":"..."|null}],"findings":[FINDING...]}`
    /// (mode in octal without the type bits; null when the inode cannot be read; target: a
    /// symbolic link's target, else null). With -R, "name" is the full path.
    Ls(ls::Args),
    /// Show an inode.
    ///
    /// JSON output: `{"ino":N,"file_type":"file|dir|symlink|...","mode":N,"nlink":N,"uid":N,"gid":N,"size":N,"blocks_512":N,"atime":{"sec":N,"nsec":N},"mtime":{...},"ctime":{...},"crtime":{...}|null,"generation":N,"flags":N,"rdev":N|null,"device":{"major":N,"minor":N}|null,"extra":{...},"target":"..."|null,"findings":[FINDING...]}`.
    /// mode is the full mode including the type bits, as a decimal number; rdev is the device
    /// number as stored, device its major and minor numbers as the kernel decodes them. Text
    /// output prints each time as seconds.nanoseconds and in UTC as stat(1) does. "extra" holds the
    /// fields specific to the file system, named as `debugfs stat` (ext4) or
    /// `xfs_db -c "inode N" -c print` (XFS) names them.
    Stat(stat::Args),
    /// Show a file's extent map (logical, physical, length in file-system blocks).
    ///
    /// physical counts file-system blocks from the start of the file system (for XFS:
    /// agno * agblocks + agbno, not the packed fsbno). Unwritten extents read as zeros. On XFS
    /// the table also gives each extent in the peers' units: `fsbno` (agno << agblklog | agbno,
    /// the bmbt's startblock, as `xfs_db -c 'inode N' -c bmap` prints it), `agno/agbno`, and
    /// `daddr` (the 512-byte sector of its first block).
    ///
    /// JSON output: `{"ino":N,"block_size":N,"extents":[{"logical":N,"physical":N,"length":N,"unwritten":BOOL}],"findings":[FINDING...]}`;
    /// on XFS each extent also has `"fsbno":N,"agno":N,"agbno":N,"daddr":N`.
    Map(map::Args),
    /// Write a file's contents to standard output.
    ///
    /// Holes and unwritten extents read as zeros; the output is exactly the file's size. A
    /// symbolic link (fast or slow) prints its target, without a newline, as readlink(2) gives
    /// it. A directory is refused (exit status 2: use `ls`). There is no JSON form: --json is
    /// refused, and findings go to standard error.
    Cat(cat::Args),
    /// One JSON line per regular file: path, inode, size, extents and (with --hash) sha256.
    ///
    /// Output (always JSON Lines; --json changes nothing), one line per regular file in walk
    /// order: `{"path":"/a/b","ino":N,"size":BYTES,"block_size":B,"extents":[{"logical":L,"physical":P,"length":N,"unwritten":false}],"sha256":"..."}`.
    /// logical, physical and length are in file-system blocks; physical counts from the start of
    /// the file system (XFS: agno * agblocks + agbno); adjacent extents (contiguous logically and
    /// physically, same written state) are merged, as FIEMAP shows them; inline data has no
    /// extents; sha256 is present only with --hash. Per-file errors and findings go to standard
    /// error.
    Manifest(manifest::Args),
    /// List the jbd2 journal's or the XFS log's transactions.
    ///
    /// Reads the journal (ext4: internal inode or --journal-dev) or the log (XFS: internal or
    /// --log-dev) as it is on the media and lists what recovery would see, verifying every
    /// checksum of the log's own structures. ext4: superblock, descriptor, revoke and commit
    /// checksums always; the tag checksum of every logged data block (csum v2/v3, which means
    /// reading the whole log) only with --verify-data, else the tag's `csum_ok` is null and the
    /// recovery details say `"data_checksums_verified":false`. --verify-data is refused on XFS.
    /// Recovery is not applied: the listing is of the journal or log as it is on the media,
    /// with or without --raw (which changes nothing here).
    ///
    /// JSON output for ext4: `{"kind":"jbd2",...}` with the journal superblock (start, sequence,
    /// features, checksum type), the transactions found from the start (sequence, blocks,
    /// descriptor, revoke and commit blocks, tags with their target blocks) and the status of
    /// each checksum, the fast-commit area (`"fast_commit":{"tags":[{"tag":"INODE|ADD_RANGE|...","valid":BOOL,...}],"valid_tags":N,"expected_tid":N,"scan_end":"..."}`)
    /// and the recovery report, which says what the fast-commit replay applied (as in `info`).
    /// For XFS: `{"kind":"xfs-log","head":...,"tail":...,"transactions":[...]}`
    /// with the records, their CRC status, and each transaction's items, the way
    /// `xfs_logprint -t` shows them. Both carry "findings".
    Journal(journal::Args),
    /// Check claims ("file F held these bytes at offset O") against a crash image.
    ///
    /// Opens the image (finding the fsdax window), recovers the journal or log in memory
    /// (unless --raw), and gives each claim a verdict with evidence. Exit status 1 when any claim
    /// is lost or a line of the claims file is not a claim (an error finding naming the line;
    /// the other lines are checked); 2 when the claims file holds no claim at all.
    ///
    /// Claims file: JSON Lines, one `{"path":"/f","offset":N,"len":N,"sha256":"..."}` a line,
    /// optionally with "ino" and "seq"; blank lines and lines starting with # are skipped.
    ///
    /// Verdicts: durable (every block of the range maps to a written extent inside the file
    /// size and the bytes hash to the claim); lost-beyond-eof (the file size does not cover the
    /// range, whatever its blocks map to); lost-hole (part of the range maps to no extent);
    /// lost-unwritten (part of it maps to an unwritten extent, which reads as zeros);
    /// lost-uncommitted (a hole, unwritten or past the end of the file, while the claimed bytes
    /// sit in a block recovery does not map there: the mapping was in memory or in an
    /// uncommitted transaction); data-differs (mapped and written, other bytes);
    /// lost-by-recovery (lost only because the kernel's log search drops a complete record at a
    /// torn log sector; durable with --exact-log-head); missing-file (no such path, or not a
    /// regular file); unreadable (a damaged structure stopped the check; see the evidence).
    ///
    /// JSON output: `{"image":PLACEMENT,"recovery":RECOVERY,"verdicts":[{"claim":{...},"verdict":"durable|lost-hole|lost-unwritten|lost-uncommitted|lost-beyond-eof|data-differs|lost-by-recovery|missing-file|unreadable","evidence":{...}}],"summary":{"claims":N,"durable":N,"lost":N,"by_verdict":{...}},"findings":[FINDING...]}`
    /// (PLACEMENT and RECOVERY as in daxray-info(1)).
    Check(check::Args),
    /// Which inode owns each block, like `debugfs -c -R 'icheck BLOCK...'`.
    ///
    /// Scans every inode in use (ext4: inode tables, as debugfs does; XFS: the inobt of each AG)
    /// and lists the owner of each block: data, extent-tree, indirect or bmbt, and xattr blocks.
    /// Blocks: ext4 file-system blocks; XFS linear blocks (agno * agblocks + agbno, the
    /// `physical` column of `map`, not the packed fsbno). Text output: `Block<TAB>Inode number`,
    /// then one line a block, `<block not found>` when no inode owns it.
    ///
    /// JSON output: `{"blocks":[{"block":N,"ino":N|null}],"findings":[FINDING...]}`.
    Icheck(icheck::Args),
    /// The paths naming each inode, like `debugfs -c -R 'ncheck INO...'`.
    ///
    /// Walks the tree from the root; every directory entry naming an inode gives a path (hard
    /// links several; the root, named only by "." and "..", none). Text output:
    /// `Inode<TAB>Pathname`, then one line a path (debugfs writes the root's entries as `//name`;
    /// daxray as `/name`).
    ///
    /// JSON output: `{"inodes":[{"ino":N,"paths":["/a/b",...]}],"findings":[FINDING...]}`.
    Ncheck(ncheck::Args),
    /// Hexdump blocks as the view holds them, in the layout of `debugfs bd`.
    ///
    /// The recovered view by default (the journal or log replayed in memory), the media as it is
    /// with --raw. Text output, as `debugfs -c -R 'bd BLOCK'` prints it: the byte offset from
    /// the first block in octal, 16 bytes in hex in groups of two, the printable characters, a
    /// `*` line for lines equal to the one before, and an empty line at the end. ext4 blocks
    /// are file-system blocks; XFS blocks are linear (agno * agblocks + agbno), or packed fsbnos
    /// with --fsbno (xfs_db's `fsb`).
    ///
    /// JSON output: `{"block":N,"count":N,"block_size":N,"offset":BYTES,"hex":"...","findings":[FINDING...]}`
    /// (block linear; offset in bytes from the start of the file system; hex holds every byte).
    Bd(bd::Args),
    /// ext4 group descriptors field by field (the facts `dumpe2fs` prints per group).
    ///
    /// Each descriptor as the view holds it (recovered unless --raw): the blocks its group
    /// covers, where the descriptor lives, every field of `struct ext4_group_desc` (low and high
    /// halves joined; the checksums of bitmaps hold 16 bits with 32-byte descriptors) and
    /// whether `bg_checksum` is correct (metadata_csum or gdt_csum).
    ///
    /// JSON output: `{"groups":[{"group":N,"first_block":N,"last_block":N,"desc_block":N,"desc_offset":BYTES,"block_bitmap":N,"inode_bitmap":N,"inode_table":N,"inode_table_last":N,"free_blocks_count":N,"free_inodes_count":N,"used_dirs_count":N,"flags":N,"flag_names":["INODE_UNINIT|BLOCK_UNINIT|ITABLE_ZEROED"...],"exclude_bitmap":N,"block_bitmap_csum":N,"inode_bitmap_csum":N,"itable_unused":N,"checksum":N,"checksum_ok":BOOL|null}],"findings":[FINDING...]}`.
    Groups(groups::Args),
    /// An XFS AG's headers (AGF, AGI, AGFL) field by field, as `xfs_db -r -c 'agf N' -c print`
    /// (and `agi`, `agfl`) names and prints them.
    ///
    /// The headers as the view holds them (recovered unless --raw). Text output: for each
    /// header a line `agf|agi|agfl N (daddr D):` then `field = value` lines in xfs_db's notation
    /// (`null` for an unset pointer, `crc = 0x... (correct|bad)`, the AGFL's `bno[0-N]` as
    /// `index:block` pairs, fields of features the file system lacks left out as xfs_db does).
    ///
    /// JSON output: `{"headers":[{"header":"agf|agi|agfl","agno":N,"daddr":N,"fields":{"magicnum":"0x58414746",...}}],"findings":[FINDING...]}`
    /// (values as the text shows them).
    Ag(ag::Args),
    /// A file's extended attributes, as `getfattr -d -m - --absolute-names PATH` prints them.
    ///
    /// ext4: the attributes in the inode (after its extra fields) and in its xattr block (whose
    /// checksum is verified under metadata_csum), values in ea_inodes too. XFS: the attr fork in
    /// short form, leaf or node (dabtree) form, with remote values. Names carry their namespace
    /// prefix (user., trusted., security., system.); POSIX ACLs are shown in the form
    /// getxattr(2) returns. A symbolic link at PATH is followed unless -h. Text output, as
    /// getfattr's: `# file: PATH`, then `name=value` lines sorted by name, then an empty line;
    /// nothing for a file without attributes. Values: text in double quotes (NUL, newline and
    /// carriage return as \ooo; backslash and quote escaped) when at most one byte in eight is
    /// not printable, else base64 (`0s...`); -e hex gives `0x...`.
    ///
    /// JSON output: `{"path":"...","ino":N,"xattrs":[{"name":"user.a","value":"HEX"}],"findings":[FINDING...]}`
    /// (values in hex, in the order they are stored).
    Getfattr(getfattr::Args),
    /// The claims line for bytes of a file, as `daxray check --claims` reads it.
    ///
    /// Hashes (sha256) the LEN bytes at OFFSET of the file at PATH as the view holds them
    /// (recovered unless --raw; holes and unwritten extents read as zeros) and prints one line
    /// `{"path":"...","ino":N,"offset":N,"len":N,"sha256":"..."}`. The range must lie within the
    /// file's size. Output is always that JSON line (--json changes nothing); findings go to
    /// standard error.
    Claim(claim::Args),
    /// Run a MAP_SYNC fault-replay campaign on a real kernel under QEMU.
    Replay(replay::Args),
    /// Report the MAP_SYNC flag semantics of the running kernel on a path.
    ///
    /// Maps one page of the file (or of a scratch file made in a directory) four ways and reports
    /// what the kernel did: MAP_SHARED_VALIDATE|MAP_SYNC (accepted with `sf` in the mapping's
    /// smaps VmFlags on a DAX file; EOPNOTSUPP elsewhere), MAP_SHARED|MAP_SYNC (the series says the
    /// flag is silently ignored), MAP_SHARED_VALIDATE with an undefined flag bit (EOPNOTSUPP), and
    /// MAP_SHARED_VALIDATE alone (EINVAL on kernels before 4.15); plus statx's STATX_ATTR_DAX.
    /// Each expectation of the MAP_SYNC series is listed as ok or FAIL; exit status 1 when one
    /// fails. The replay guest runs the same probe on its DAX mount.
    ///
    /// JSON output: `{"path":"...","kernel":"...","statx_dax_known":BOOL,"statx_dax":BOOL|null,"validate_sync":MAP,"shared_sync":MAP,"validate_unknown":MAP,"validate_plain":MAP,"map_sync_works":BOOL,"checks":[["statement",BOOL]...]}`
    /// where MAP is `{"flags":"...","accepted":BOOL,"errno":"EOPNOTSUPP"|null,"vmflags_sf":BOOL|null,"vmflags":"rd wr sh ..."|null}`.
    Probe(probe::Args),
    /// Kernel assets and the guest VM.
    #[command(subcommand)]
    Vm(vm::VmCommand),
    /// Benchmarks: fault latency in the guest, parsing against the peer tools.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Write the man pages (generated from this command-line definition).
    #[command(hide = true)]
    Man(man::Args),
    /// The guest side of the replay engine (runs inside the VM).
    #[command(hide = true)]
    Agent(agent::Args),
}

/// Parse the command line, run, and return the exit code (0 clean, 1 findings, 2 error).
pub fn main() -> i32 {
    let cli = Cli::parse();
    let g = &cli.global;
    let r = match &cli.command {
        Command::Info(a) => info::run(a, g),
        Command::Ls(a) => ls::run(a, g),
        Command::Stat(a) => stat::run(a, g),
        Command::Map(a) => map::run(a, g),
        Command::Cat(a) => cat::run(a, g),
        Command::Manifest(a) => manifest::run(a, g),
        Command::Journal(a) => journal::run(a, g),
        Command::Check(a) => check::run(a, g),
        Command::Bd(a) => bd::run(a, g),
        Command::Claim(a) => claim::run(a, g),
        Command::Getfattr(a) => getfattr::run(a, g),
        Command::Groups(a) => groups::run(a, g),
        Command::Ag(a) => ag::run(a, g),
        Command::Icheck(a) => icheck::run(a, g),
        Command::Ncheck(a) => ncheck::run(a, g),
        Command::Replay(a) => replay::run(a, g),
        Command::Probe(a) => probe::run(a, g),
        Command::Vm(c) => vm::run(c, g),
        Command::Bench(c) => bench::run(c, g),
        Command::Man(a) => man::run(a, g),
        Command::Agent(a) => agent::run(a, g),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            output::print_error(&e, g.json);
            e.exit_code()
        }
    }
}
