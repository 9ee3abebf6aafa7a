//! The jbd2 journal: parsing, listing and in-memory recovery. (Being built: recovery is not applied yet.)

use crate::error::Result;
use crate::image::BlockSource;
use crate::open::RecoveryReport;
use std::path::Path;
use std::sync::Arc;

/// Recover the jbd2 journal of the file system in `fs` in memory; returns the view to read through
/// (an overlay, or `fs` itself when there is nothing to replay) and what was done.
pub fn recover_view(
    fs: Arc<dyn BlockSource>,
    external: Option<&Path>,
) -> Result<(Arc<dyn BlockSource>, RecoveryReport)> {
    let _ = external;
    Ok((fs, RecoveryReport::none("jbd2 journal recovery not built yet")))
}

/// List the transactions (for `daxray journal`); `all` includes checkpointed ones.
pub fn listing(
    fs: Arc<dyn BlockSource>,
    external: Option<&Path>,
    all: bool,
) -> Result<crate::cli::journal::Listing> {
    let _ = (fs, external, all);
    Err(crate::Error::Unsupported("journal listing not built yet".into()))
}
