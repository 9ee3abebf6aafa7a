//! Crash images made by the kernel, and the kernel's own recovery of them.

use super::{Mount, copy_sparse, kernel_manifest};
use crate::error::Result;
use crate::manifest::ManifestEntry;
use std::path::Path;

/// Mount `image` (file system `fstype`, options `opts`), run `work` on the mounted tree, then copy
/// the backing file to `dirty` while it is still mounted and unmount. The copy is a crash state:
/// what the kernel committed to the journal or log is there, not yet written back in place.
/// The file system is unmounted also when `work` or the copy fails; the first error is returned.
pub fn crash_copy<T>(
    image: &Path,
    fstype: &str,
    opts: &str,
    dirty: &Path,
    work: impl FnOnce(&Path) -> Result<T>,
) -> Result<T> {
    let m = Mount::new(image, 0, fstype, opts)?;
    let done = work(m.path()).and_then(|t| copy_sparse(image, dirty).map(|()| t));
    let unmounted = m.unmount();
    let t = done?;
    unmounted?;
    Ok(t)
}

/// What the kernel's recovery makes of `dirty`, as a manifest of its files (`hash`: with
/// sha256): `dirty` is copied to `scratch`, the copy mounted with `opts` (the kernel replays the
/// journal or log), listed, unmounted and removed. `dirty` itself is not touched.
pub fn recovered_manifest(
    dirty: &Path,
    fstype: &str,
    opts: &str,
    scratch: &Path,
    hash: bool,
) -> Result<Vec<ManifestEntry>> {
    copy_sparse(dirty, scratch)?;
    let listed = Mount::new(scratch, 0, fstype, opts).and_then(|m| {
        let l = kernel_manifest(m.path(), hash);
        let unmounted = m.unmount();
        let l = l?;
        unmounted?;
        Ok(l)
    });
    let _ = std::fs::remove_file(scratch);
    listed
}
