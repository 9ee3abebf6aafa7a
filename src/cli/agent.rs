//! `daxray agent`: the guest side of the replay engine (hidden; runs as PID 1 in the VM).

use super::Global;

/// Arguments of `agent`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `agent`.
pub fn run(_a: &Args, _g: &Global) -> crate::Result<i32> {
    crate::agent::agent_main()
}
