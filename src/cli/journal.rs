//! `daxray journal IMAGE [--all]` (being built).

use super::Global;

/// Arguments of `journal`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `journal`.
pub fn run(_a: &Args, _g: &Global) -> crate::Result<i32> {
    Err(crate::Error::Unsupported("`daxray journal` is not built yet".into()))
}
