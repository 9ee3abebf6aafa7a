//! A loop mount that cleans up after itself.

use super::run;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long losetup may take.
const LOSETUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long mount (which may run journal or log recovery) and umount may take.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(300);

/// The kernel refused to mount a file system.
#[derive(Debug, Clone)]
pub struct Refused {
    /// The loop device it was offered on (its lines in the kernel log say why).
    pub device: String,
    /// What `mount` said.
    pub message: String,
}

/// An image attached to a loop device (at a byte offset) and mounted on a fresh temporary folder.
/// Dropping it (also while unwinding from a panic) unmounts, detaches the loop device and removes
/// the folder; [`Mount::unmount`] does the same and reports errors.
#[derive(Debug)]
pub struct Mount {
    dir: PathBuf,
    loopdev: Option<String>,
    mounted: bool,
}

impl Mount {
    /// Attach `image` from byte `offset` (`losetup -o`) and mount it as `fstype` with mount
    /// options `opts` (comma-separated, may be empty) on a unique temporary mount point.
    ///
    /// XFS refuses to mount a second file system with the uuid of one already mounted, which
    /// copies of one image share: pass `nouuid` in `opts` when tests mount copies in parallel.
    pub fn new(image: &Path, offset: u64, fstype: &str, opts: &str) -> Result<Mount> {
        Self::attempt(image, offset, fstype, opts)?.map_err(|r| Error::External(r.message))
    }

    /// [`Mount::new`], telling apart the kernel refusing the file system (`mount(2)` fails:
    /// `mount` exits with 32, "mount failure") from everything else that can go wrong.
    pub fn attempt(
        image: &Path,
        offset: u64,
        fstype: &str,
        opts: &str,
    ) -> Result<std::result::Result<Mount, Refused>> {
        let img = image.to_str().ok_or_else(|| Error::Usage(format!("image path {image:?} is not UTF-8")))?;
        crate::image::refuse_in_use(image, "an image to loop-mount")?;
        let dir = tempfile::Builder::new()
            .prefix("daxray-mnt-")
            .tempdir()
            .map_err(|e| Error::io(std::env::temp_dir(), e))?
            // Keep the folder: we remove it ourselves, and only when it is empty and unmounted,
            // never recursively (that could delete the mounted file system's files).
            .keep();
        let mut m = Mount { dir, loopdev: None, mounted: false };
        let off = offset.to_string();
        let out = run("losetup", &["--find", "--show", "--offset", &off, img], LOSETUP_TIMEOUT)?;
        let dev = out.stdout.trim().to_string();
        if !dev.starts_with("/dev/") {
            return Err(Error::External(format!(
                "losetup printed no loop device for {img}: {:?}",
                out.stdout
            )));
        }
        m.loopdev = Some(dev.clone());
        let d = m
            .dir
            .to_str()
            .ok_or_else(|| Error::Usage("temporary folder path is not UTF-8".into()))?
            .to_string();
        let mut args = vec!["-t", fstype];
        if !opts.is_empty() {
            args.extend(["-o", opts]);
        }
        args.extend([dev.as_str(), d.as_str()]);
        match run("mount", &args, MOUNT_TIMEOUT) {
            Ok(_) => {}
            Err(Error::External(message)) if message.contains("(exit status: 32)") => {
                return Ok(Err(Refused { device: dev, message }));
            }
            Err(e) => return Err(e),
        }
        m.mounted = true;
        Ok(Ok(m))
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The loop device the image is attached to.
    pub fn loop_device(&self) -> Option<&str> {
        self.loopdev.as_deref()
    }

    /// Unmount, detach and remove the mount point, reporting the first failure.
    pub fn unmount(mut self) -> Result<()> {
        self.cleanup()
    }

    fn cleanup(&mut self) -> Result<()> {
        let d = self.dir.to_string_lossy().into_owned();
        if self.mounted {
            let mut last = None;
            for attempt in 0..5 {
                match run("umount", &[&d], MOUNT_TIMEOUT) {
                    Ok(_) => {
                        last = None;
                        break;
                    }
                    Err(e) => {
                        last = Some(e);
                        std::thread::sleep(Duration::from_millis(200 * (attempt + 1)));
                    }
                }
            }
            if let Some(e) = last {
                // Detach lazily so that nothing stays mounted for ever; still report the failure.
                let _ = run("umount", &["-l", &d], MOUNT_TIMEOUT);
                self.mounted = false;
                self.detach();
                return Err(e);
            }
            self.mounted = false;
        }
        self.detach();
        let _ = std::fs::remove_dir(&self.dir);
        Ok(())
    }

    fn detach(&mut self) {
        if let Some(dev) = self.loopdev.take() {
            for attempt in 0..5 {
                if run("losetup", &["-d", &dev], LOSETUP_TIMEOUT).is_ok() {
                    wait_detached(&dev);
                    break;
                }
                std::thread::sleep(Duration::from_millis(200 * (attempt + 1)));
            }
        }
    }
}

/// `losetup -d` on a device the kernel still holds (a umount just finished) only marks it for
/// auto-clear; wait, bounded, until the kernel has really let go of the backing file, so that the
/// next attach or a `losetup -j` sees the device free.
fn wait_detached(dev: &str) {
    let Some(name) = dev.strip_prefix("/dev/") else { return };
    let backing = Path::new("/sys/block").join(name).join("loop/backing_file");
    for _ in 0..50 {
        if !backing.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup() {
            eprintln!("daxray oracle: cleaning up mount {}: {e}", self.dir.display());
        }
    }
}
