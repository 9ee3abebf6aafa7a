//! `daxray bench ...`: fault latency with and without MAP_SYNC in the real kernel; parsing
//! speed against the peer tools.

use super::Global;
use super::output;
use super::vm::VmArgs;
use crate::agent::proto::{FaultSize, FsChoice};
use crate::bench::faults;
use crate::error::{Error, Result};
use std::path::PathBuf;

/// Benchmark subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Fault latency with and without MAP_SYNC in the guest (the MAP_SYNC series' table).
    ///
    /// Boots the guest once per file system and repeat; in each boot the agent times the first
    /// store to every page of a fresh file with CLOCK_MONOTONIC for eight configurations: file
    /// preallocated (written and fsynced) or empty (sparse), with or without a background
    /// writer (append + fsync loop), with or without MAP_SYNC. Prints min/avg/max/median beside
    /// the series' numbers, the MAP_SYNC / no MAP_SYNC ratios, power-of-two histograms, and the
    /// kernel's fs_dax counts (NEEDDSYNC, PTE, PMD) that show which fault path ran.
    ///
    /// Under software emulation (TCG) absolute times are not hardware times; ratios carry over.
    /// Use --accel kvm where hardware virtualisation is available.
    ///
    /// JSON output: `{"note":"...","kernel":"...","accel":"tcg","fault_size":"pte","pages":N,"rows":[ROW...],"ratios":[{"fs","file","background_load","avg_ratio","median_ratio","series_avg_ratio"}]}`
    /// where ROW is `{"fs":"ext4|xfs","file":"preallocated|empty","sync":BOOL,"background_load":BOOL,"configuration":"...","min_us","avg_us","max_us","median_us","histogram":{"LO-HI":COUNT},"needdsync_faults","pte_faults","pmd_faults","insert_pfn_mkwrite","samples","repeats","series":{"min_us","avg_us","max_us"}|null}`.
    Faults(FaultsArgs),
    /// daxray against its peers on large kernel-made crash images (needs root).
    ///
    /// Makes ext4 (data=journal, `-J size=JOURNAL`) and XFS images of `--size-mib` with the
    /// kernel (thousands of fragmented files, fsync), copies each while mounted so that the
    /// journal/log holds committed transactions, then times, median of `--runs`, side by side:
    /// `daxray journal` (and on ext4 also `daxray journal --verify-data`, which reads every logged
    /// block to verify its tag checksum) vs `debugfs -c -R 'logdump -a'` / `xfs_logprint -t`; `daxray manifest
    /// --hash` vs copy + loop mount + sha256sum of every file + umount; `daxray manifest` (every
    /// file inode mapped) vs one `debugfs -f` run of `ex <INO>` / one `xfs_db -r` run of `inode
    /// N; bmap`, both on a copy the kernel recovered (the peers do not recover, and the files'
    /// inodes are only in the journal/log of the crash image); `daxray check` of claims vs the kernel oracle (copy + mount + read back), and
    /// the same check in process, as the replay engine runs it on each paused state, vs the
    /// oracle in process. The journal and manifest pairs also run at the `--growth-mib` sizes.
    /// Times are wall times of the command spawned directly; peak RSS is GNU time's `%M` from
    /// one more run of each subprocess under it (n/a for in-process sides).
    ///
    /// Before the images, `daxray --version` and `true` (a process that does nothing) are timed
    /// the same way: the floor under every subprocess row. The journal rows' notes say how many
    /// bytes each side printed.
    ///
    /// JSON output: `{"runs":N,"images":[...],"rows":[ROW...],"growth":[ROW...],"floor":ROW}` where ROW is
    /// `{"fs","size_mib","operation","daxray_cmd","peer_cmd","daxray_ms","peer_ms","ratio","daxray_rss_kib","peer_rss_kib","daxray_runs_ms","peer_runs_ms","note"}`.
    Parse(ParseArgs),
}

/// Arguments of `bench parse`.
#[derive(Debug, clap::Args)]
pub struct ParseArgs {
    /// Size of the main images, MiB.
    #[arg(long, default_value_t = 1024)]
    pub size_mib: u64,
    /// ext4 journal size of the main image, MiB (the XFS log gets half, at most one AG).
    #[arg(long, default_value_t = 256)]
    pub journal_mib: u64,
    /// Timed runs per side (median reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Smaller image sizes for the growth figures, MiB (comma-separated; sizes not below
    /// --size-mib are ignored, so `--growth-mib 99999` runs none).
    #[arg(long, value_delimiter = ',', default_value = "256,512")]
    pub growth_mib: Vec<u64>,
    /// Where to make the images (a unique subfolder is made and removed).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// File system(s) to run: ext4, xfs (repeatable; default both).
    #[arg(long, value_parser = ["ext4", "xfs"])]
    pub fs: Vec<String>,
    /// Keep the crash images and the claims file in the work folder (printed at the end), to
    /// profile on the same bytes again.
    #[arg(long)]
    pub keep_images: bool,
}

/// Arguments of `bench faults`.
#[derive(Debug, clap::Args)]
pub struct FaultsArgs {
    /// File system(s): ext4 or xfs (repeatable; default both).
    #[arg(long, value_parser = ["ext4", "xfs", "ext4-nojournal"])]
    pub fs: Vec<String>,
    /// Pages faulted per configuration.
    #[arg(long, default_value_t = 512)]
    pub pages: u32,
    /// Boots per file system; min/avg/max are medians over them.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// pte (4 KiB) or pmd (2 MiB) faults.
    #[arg(long, default_value = "pte", value_parser = ["pte", "pmd"])]
    pub fault_size: String,
    /// Write an SVG plot of the histograms here.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Kernel and QEMU options.
    #[command(flatten)]
    pub vm: VmArgs,
}

/// Run a `bench` subcommand.
pub fn run(c: &BenchCommand, g: &Global) -> Result<i32> {
    match c {
        BenchCommand::Faults(a) => run_faults(a, g),
        BenchCommand::Parse(a) => run_parse(a, g),
    }
}

fn run_parse(a: &ParseArgs, g: &Global) -> Result<i32> {
    if a.size_mib < 64 || a.journal_mib < 4 || a.journal_mib >= a.size_mib {
        return Err(Error::Usage("--size-mib must be >= 64 and --journal-mib between 4 and the size".into()));
    }
    let opts = crate::bench::parse::Options {
        size_mib: a.size_mib,
        journal_mib: a.journal_mib,
        runs: a.runs.max(1),
        growth_mib: a.growth_mib.iter().copied().filter(|&s| s >= 64).collect(),
        work_dir: a.work_dir.clone().unwrap_or_else(std::env::temp_dir),
        fs: if a.fs.is_empty() {
            vec!["ext4", "xfs"]
        } else {
            a.fs.iter().map(|f| if f == "xfs" { "xfs" } else { "ext4" }).collect()
        },
        keep_images: a.keep_images,
        daxray: std::env::current_exe().map_err(|e| Error::External(format!("current_exe: {e}")))?,
    };
    let report = crate::bench::parse::run(&opts, &mut |m| eprintln!("daxray: {m}"))?;
    if g.json {
        output::print_json(&report)?;
    } else {
        output::write_stdout(crate::bench::parse::render_text(&report).as_bytes())?;
    }
    Ok(0)
}

fn run_faults(a: &FaultsArgs, g: &Global) -> Result<i32> {
    let fs: Vec<FsChoice> = if a.fs.is_empty() {
        vec![FsChoice::Ext4, FsChoice::Xfs]
    } else {
        a.fs.iter()
            .map(|f| FsChoice::parse(f).ok_or_else(|| Error::Usage(format!("--fs {f}"))))
            .collect::<Result<_>>()?
    };
    let opts = faults::Options {
        fs,
        pages: a.pages,
        repeat: a.repeat,
        fault_size: if a.fault_size == "pmd" { FaultSize::Pmd } else { FaultSize::Pte },
        assets: a.vm.assets()?,
        accel: a.vm.accel.clone(),
        mem_mb: a.vm.mem_mb,
    };
    let boots = (opts.fs.len() as u64) * u64::from(opts.repeat);
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let b = indicatif::ProgressBar::new(boots);
        b.set_style(
            indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} boots {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let report = faults::run(&opts, &mut |m| {
        if m.ends_with("done") {
            bar.inc(1);
            bar.set_message(m.to_string());
        } else {
            bar.suspend(|| eprintln!("daxray: {m}"));
        }
    })?;
    bar.finish_and_clear();
    if let Some(p) = &a.plot {
        std::fs::write(p, crate::bench::svg::histograms(&report)).map_err(|e| Error::io(p, e))?;
    }
    if g.json {
        output::print_json(&report)?;
    } else {
        output::write_stdout(faults::render_text(&report).as_bytes())?;
    }
    Ok(0)
}
