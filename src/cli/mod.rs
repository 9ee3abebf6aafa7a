//! The command-line interface: argument definitions (clap derive) and one file per subcommand.
//! Each subcommand parses its arguments, calls the library and prints text or JSON.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

pub mod agent;
pub mod bench;
pub mod cat;
pub mod check;
pub mod info;
pub mod journal;
pub mod ls;
pub mod man;
pub mod manifest;
pub mod map;
pub mod output;
pub mod probe;
pub mod replay;
pub mod stat;
pub mod vm;

/// daxray: ext4 and XFS on fsdax persistent memory: inspect images, replay journals and logs in
/// memory, check crash images, and test the MAP_SYNC guarantee on a real kernel.
#[derive(Debug, Parser)]
#[command(name = "daxray", version, about, long_about = None, max_term_width = 100)]
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
    /// header at byte 4096, else 0).
    #[arg(long, global = true, value_name = "BYTES")]
    pub offset: Option<u64>,
    /// An external ext4 journal device or image.
    #[arg(long, global = true, value_name = "FILE")]
    pub journal_dev: Option<PathBuf>,
    /// An external XFS log device or image.
    #[arg(long, global = true, value_name = "FILE")]
    pub log_dev: Option<PathBuf>,
}

impl Global {
    /// The library's open options for these flags.
    pub fn open_options(&self) -> crate::open::OpenOptions {
        crate::open::OpenOptions {
            offset: self.offset,
            raw: self.raw,
            journal_dev: self.journal_dev.clone(),
            log_dev: self.log_dev.clone(),
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// What the image is, where the file system starts, geometry, features, journal state.
    Info(info::Args),
    /// List a directory.
    Ls(ls::Args),
    /// Show an inode.
    Stat(stat::Args),
    /// Show a file's extent map (logical, physical, length in file-system blocks).
    Map(map::Args),
    /// Write a file's contents to standard output.
    Cat(cat::Args),
    /// One JSON line per regular file: path, inode, size, extents and (with --hash) sha256.
    Manifest(manifest::Args),
    /// List the jbd2 journal's or the XFS log's transactions.
    Journal(journal::Args),
    /// Check claims ("file F held these bytes at offset O") against a crash image.
    Check(check::Args),
    /// Run a MAP_SYNC fault-replay campaign on a real kernel under QEMU.
    Replay(replay::Args),
    /// Report the MAP_SYNC flag semantics of the running kernel on a path.
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
