//! `daxray replay` (being built).

use super::Global;

/// Arguments of `replay`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `replay`.
pub fn run(_a: &Args, _g: &Global) -> crate::Result<i32> {
    Err(crate::Error::Unsupported("`daxray replay` is not built yet".into()))
}
