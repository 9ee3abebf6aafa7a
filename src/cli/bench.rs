//! `daxray bench ...`: fault latency with and without MAP_SYNC in the real kernel.

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
    }
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
