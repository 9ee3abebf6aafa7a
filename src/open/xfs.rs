//! XFS: the log's recovery, then the model over the recovered view.

use super::{Model, OpenOptions};
use crate::error::Result;
use crate::image::BlockSource;
use std::sync::Arc;

/// The XFS model of `raw`, its log recovered as the kernel's mount would recover it.
///
/// A log too damaged to be read at all (or lying past the end of a truncated image) leaves the media
/// as it is, with the reason in the report, so that what can be read still is.
pub fn model(raw: Arc<dyn BlockSource>, opts: &OpenOptions) -> Result<Model> {
    let (view, recovery) = match crate::xlog::recover_view(raw.clone(), &opts.log_options()) {
        Ok(x) => x,
        Err(e @ (crate::Error::Corrupt { .. } | crate::Error::OutOfRange { .. })) => {
            (raw.clone(), super::unrecovered::unreadable_log(&raw, &e))
        }
        Err(e) => return Err(e),
    };
    let fs = Box::new(crate::xfs::Xfs::open(view.clone())?);
    Ok(Model { view, recovery, fs })
}
