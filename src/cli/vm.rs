//! `daxray vm ...` (being built).

use super::Global;

/// VM subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum VmCommand {
    /// Fetch the kernel package into the cache and check for QEMU and busybox.
    Setup,
}

/// Run a `vm` subcommand.
pub fn run(_c: &VmCommand, _g: &Global) -> crate::Result<i32> {
    Err(crate::Error::Unsupported("`daxray vm` is not built yet".into()))
}
