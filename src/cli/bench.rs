//! `daxray bench ...` (being built).

use super::Global;

/// Benchmark subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Fault latency with and without MAP_SYNC in the guest.
    Faults,
}

/// Run a `bench` subcommand.
pub fn run(_c: &BenchCommand, _g: &Global) -> crate::Result<i32> {
    Err(crate::Error::Unsupported("`daxray bench` is not built yet".into()))
}
