//! `daxray check IMAGE --claims FILE` (being built).

use super::Global;

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `check`.
pub fn run(_a: &Args, _g: &Global) -> crate::Result<i32> {
    Err(crate::Error::Unsupported("`daxray check` is not built yet".into()))
}
