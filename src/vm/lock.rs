//! The machine-wide VM lock: one guest at a time.

use crate::error::{Error, Result};
use std::fs::File;

/// The process-wide state of the VM lock: how many holders, and the locked file.
static VM_LOCK: std::sync::Mutex<(usize, Option<File>)> = std::sync::Mutex::new((0, None));

/// A hold on the machine-wide VM lock; released when the last hold in this process is dropped.
pub struct VmLock(());

impl Drop for VmLock {
    fn drop(&mut self) {
        let mut g = VM_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        g.0 = g.0.saturating_sub(1);
        if g.0 == 0 {
            g.1 = None;
        }
    }
}

/// Guests run one at a time on a machine (two TCG guests on two cores slow each other down by
/// more than half): [`super::Vm::boot`] holds this lock for the guest's life, and tests or benches may
/// hold it around several boots. It is an exclusive `flock` on `$TMPDIR/daxray-vm.lock`, shared
/// by every daxray process, and re-entrant within one process. Waiting is announced on stderr.
pub fn exclusive_lock() -> Result<VmLock> {
    let mut g = VM_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if g.0 == 0 {
        let p = std::env::temp_dir().join("daxray-vm.lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| Error::io(&p, e))?;
        if !crate::sys::flock_try_exclusive(&f).map_err(|e| Error::io(&p, e))? {
            eprintln!("daxray: waiting for another daxray guest to finish (lock {})", p.display());
            crate::sys::flock_exclusive(&f).map_err(|e| Error::io(&p, e))?;
        }
        g.1 = Some(f);
    }
    g.0 += 1;
    Ok(VmLock(()))
}
