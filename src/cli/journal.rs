//! `daxray journal IMAGE [--all]`: the jbd2 journal's or the XFS log's transactions.

use super::{Global, output};
use crate::fs::FsKind;
use std::path::PathBuf;

/// Arguments of `journal`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image file or block device.
    pub image: PathBuf,
    /// Also list old, checkpointed transactions still in the journal/log.
    #[arg(long)]
    pub all: bool,
}

/// What a journal listing produces, for either journal kind.
pub struct Listing {
    /// The JSON document (`{"kind":"jbd2",...}` or `{"kind":"xfs-log",...}`).
    pub json: serde_json::Value,
    /// The text form.
    pub text: String,
    /// Problems found (bad checksums, torn records...).
    pub findings: Vec<crate::Finding>,
}

/// Run `journal`.
pub fn run(a: &Args, g: &Global) -> crate::Result<i32> {
    let img = crate::image::open(&a.image, g.offset)?;
    let listing = match img.placement.fs {
        FsKind::Ext4 => crate::jbd2::listing(img.fs_bytes.clone(), g.journal_dev.as_deref(), a.all)?,
        FsKind::Xfs => crate::xlog::listing(img.fs_bytes.clone(), g.log_dev.as_deref(), a.all)?,
    };
    if g.json {
        output::print_json(&listing.json)?;
    } else {
        output::write_stdout(listing.text.as_bytes())?;
        output::print_findings(&listing.findings);
    }
    Ok(output::exit_code(&listing.findings))
}
