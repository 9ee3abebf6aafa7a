//! XFS: the log's recovery, then the model over the recovered view.

use super::{Model, OpenOptions};
use crate::error::Result;
use crate::image::BlockSource;
use std::sync::Arc;

/// The XFS model of `raw`, its log recovered as the kernel's mount would recover it.
pub fn model(raw: Arc<dyn BlockSource>, opts: &OpenOptions) -> Result<Model> {
    let (view, recovery) = crate::xlog::recover_view(raw, &opts.log_options())?;
    let fs = Box::new(crate::xfs::Xfs::open(view.clone())?);
    Ok(Model { view, recovery, fs })
}
