//! `daxray probe [PATH]` (being built).

use super::Global;

/// Arguments of `probe`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `probe`.
pub fn run(_a: &Args, _g: &Global) -> crate::Result<i32> {
    Err(crate::Error::Unsupported("`daxray probe` is not built yet".into()))
}
