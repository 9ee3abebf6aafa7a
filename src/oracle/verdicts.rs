//! The kernel's verdict on claims: a compact copy of the image loop-mounted (the mount runs the
//! kernel's own journal or log recovery), every claim read back through the mount (and with the
//! whole view every file listed), the copy unmounted and deleted.

use crate::check::Claim;
use crate::error::{Error, Result};
use crate::manifest::Listed;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Instant;

/// What the kernel's recovery says about each claim (and, with the whole view, every file).
#[derive(Debug, Clone, Serialize)]
pub struct KernelVerdicts {
    /// Per claim: the file exists and holds the claimed bytes at the offset after the kernel
    /// mounted (and so recovered) a copy.
    pub durable: Vec<bool>,
    /// With the whole view: every regular file the kernel shows, with its sha256, and the paths
    /// it refuses to read ([`super::kernel_manifest_with_errors`]).
    pub manifest: Option<Listed>,
    /// The loop device the copy was mounted on (its lines in the kernel log are the kernel's
    /// account of the recovery).
    pub loop_device: Option<String>,
    /// The kernel refused to mount the copy: what `mount` and the kernel log said.
    pub refused: Option<String>,
    /// Copy + mount + read + unmount, in milliseconds.
    pub ms: f64,
}

/// Read one claim back through a mounted file system: true when the bytes are there.
fn read_back(root: &Path, c: &Claim) -> bool {
    let p = root.join(c.path.trim_start_matches('/'));
    let Ok(mut f) = std::fs::File::open(&p) else {
        return false;
    };
    let Ok(len) = usize::try_from(c.len) else {
        return false;
    };
    let mut buf = vec![0u8; len];
    if f.seek(SeekFrom::Start(c.offset)).is_err() || f.read_exact(&mut buf).is_err() {
        return false;
    }
    hex::encode(Sha256::digest(&buf)) == c.sha256
}

/// The kernel oracle: copy `image` (sparse) into `scratch`, loop-mount the copy at `dataoff`
/// (the kernel replays the journal/log), read every claim back (and with `whole` list every
/// file with its sha256), unmount, delete the copy.
pub fn kernel_check(
    image: &Path,
    dataoff: u64,
    fstype: &str,
    claims: &[Claim],
    scratch: &Path,
    whole: bool,
) -> Result<KernelVerdicts> {
    let t = Instant::now();
    let copy = scratch.join("oracle-copy.img");
    crate::image::refuse_in_use(&copy, "the oracle's copy")?;
    super::copy_compact(image, &copy)?;
    let r = kernel_check_copy(&copy, dataoff, fstype, claims, whole);
    let _ = std::fs::remove_file(&copy);
    let mut kv = r?;
    kv.ms = t.elapsed().as_secs_f64() * 1e3;
    Ok(kv)
}

/// The kernel oracle on a copy made already (it is neither changed on purpose nor deleted; the
/// mount's recovery writes it): loop-mount it at `dataoff`, read every claim back (and with
/// `whole` list every file with its sha256), unmount. `ms` is the mount, read and unmount time.
pub fn kernel_check_copy(
    copy: &Path,
    dataoff: u64,
    fstype: &str,
    claims: &[Claim],
    whole: bool,
) -> Result<KernelVerdicts> {
    let t = Instant::now();
    let copy = copy.to_path_buf();
    let r = (|| {
        // ext4: no lazy inode-table init, whose background zeroing (ext4_init_inode_table) would
        // make the kernel's view depend on when it runs; daxray reports that risk as a finding.
        let opts = if fstype == "ext4" { "noinit_itable" } else { "" };
        let m = match super::Mount::attempt(&copy, dataoff, fstype, opts)? {
            Ok(m) => m,
            Err(refused) => {
                let log = kernel_log(&refused.device, 8);
                let why = if log.is_empty() { refused.message } else { log.join(" | ") };
                return Ok((vec![false; claims.len()], None, Some(refused.device), Some(why)));
            }
        };
        let loop_device = m.loop_device().map(String::from);
        let durable = claims.iter().map(|c| read_back(m.path(), c)).collect();
        let listed = if whole {
            super::kernel_manifest_with_errors(m.path(), true)
                .map(|(entries, errors)| Some(Listed { entries, errors }))
        } else {
            Ok(None)
        };
        let unmounted = m.unmount();
        let listed = listed?;
        unmounted?;
        Ok::<_, Error>((durable, listed, loop_device, None))
    })();
    let (durable, manifest, loop_device, refused) = r?;
    Ok(KernelVerdicts { durable, manifest, loop_device, refused, ms: t.elapsed().as_secs_f64() * 1e3 })
}

/// The kernel log's lines about `device` (e.g. `loop3`) since it was last attached (its last
/// "detected capacity change"), the last `max` of them: what the kernel said while it recovered
/// the oracle's copy. Empty when the log cannot be read.
pub fn kernel_log(device: &str, max: usize) -> Vec<String> {
    let name = device.trim_start_matches("/dev/");
    let Ok(out) = super::run("dmesg", &[], std::time::Duration::from_secs(10)) else {
        return vec![];
    };
    let keys = [format!("({name})"), format!(" {name}:"), format!("(device {name})")];
    let lines: Vec<&str> =
        out.stdout.lines().filter(|l| keys.iter().any(|k| l.contains(k.as_str()))).collect();
    let start = lines.iter().rposition(|l| l.contains("detected capacity change")).unwrap_or(0);
    let lines = &lines[start..];
    lines[lines.len().saturating_sub(max)..].iter().map(|l| l.to_string()).collect()
}
