//! `daxray agent` (being built).

use super::Global;

/// Arguments of `agent`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `agent`.
pub fn run(_a: &Args, _g: &Global) -> crate::Result<i32> {
    Err(crate::Error::Unsupported("`daxray agent` is not built yet".into()))
}
