//! Whether an image is in use: the mount table (`/proc/self/mountinfo`), the loop devices a
//! file backs (`/sys/block/loop*/loop/backing_file`), a device's holders and exclusive openers.
//! Writers refuse a path in use; readers warn when it is mounted read-write.

use crate::error::{Error, Result};
use std::path::Path;
use std::time::Duration;

/// One line of `/proc/self/mountinfo`: the mounted device and where, read-write or not.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MountLine {
    major: u32,
    minor: u32,
    mount_point: String,
    source: String,
    read_write: bool,
}

/// Parse `/proc/self/mountinfo` text (`id parent major:minor root mountpoint options ... - type
/// source superoptions`); malformed lines are skipped.
fn parse_mountinfo(text: &str) -> Vec<MountLine> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let (major, minor) = f.get(2)?.split_once(':')?;
            let sep = f.iter().position(|w| *w == "-")?;
            Some(MountLine {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                mount_point: unescape_octal(f.get(4)?),
                source: unescape_octal(f.get(sep + 2).copied().unwrap_or("")),
                read_write: f.get(5)?.split(',').any(|o| o == "rw"),
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct =
            b.get(i + 1..i + 4).filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct.and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok()) {
            Some(v) => {
                out.push(v);
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn mounts() -> Vec<MountLine> {
    std::fs::read_to_string("/proc/self/mountinfo").map(|t| parse_mountinfo(&t)).unwrap_or_default()
}

/// Linux's `dev_t` encoding (glibc's `major`/`minor`).
fn dev_major_minor(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (u32::try_from(major).unwrap_or(u32::MAX), u32::try_from(minor).unwrap_or(u32::MAX))
}

/// The loop devices (`loopN`, major:minor) whose backing file is the file `(dev, ino)`.
fn loops_backed_by(dev: u64, ino: u64) -> Vec<(String, u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let Ok(dir) = std::fs::read_dir("/sys/block") else { return vec![] };
    let mut out = Vec::new();
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") {
            continue;
        }
        let Ok(backing) = std::fs::read_to_string(e.path().join("loop/backing_file")) else { continue };
        let Ok(m) = std::fs::metadata(backing.trim_end_matches('\n')) else { continue };
        if m.dev() != dev || m.ino() != ino {
            continue;
        }
        let Some((ma, mi)) = std::fs::read_to_string(e.path().join("dev"))
            .ok()
            .and_then(|s| s.trim().split_once(':').map(|(a, b)| (a.parse().ok(), b.parse().ok())))
            .and_then(|(a, b)| Some((a?, b?)))
        else {
            continue;
        };
        out.push((name, ma, mi));
    }
    out.sort();
    out
}

/// The block devices behind `path`: the device itself, or the loop devices a regular file backs
/// (name, major, minor). Empty for anything else or a path that does not exist.
fn devices_behind(path: &Path) -> Vec<(String, u32, u32)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(m) = std::fs::metadata(path) else { return vec![] };
    if m.file_type().is_block_device() {
        let (ma, mi) = dev_major_minor(m.rdev());
        vec![(path.display().to_string(), ma, mi)]
    } else if m.is_file() {
        loops_backed_by(m.dev(), m.ino())
    } else {
        vec![]
    }
}

/// The partitions of the whole disk `major:minor` (name, major, minor), from sysfs.
fn partitions(major: u32, minor: u32) -> Vec<(String, u32, u32)> {
    let Ok(dir) = std::fs::read_dir(format!("/sys/dev/block/{major}:{minor}")) else { return vec![] };
    dir.flatten()
        .filter(|e| e.path().join("partition").is_file())
        .filter_map(|e| {
            let dev = std::fs::read_to_string(e.path().join("dev")).ok()?;
            let (a, b) = dev.trim().split_once(':')?;
            Some((e.file_name().to_string_lossy().into_owned(), a.parse().ok()?, b.parse().ok()?))
        })
        .collect()
}

/// Why `path` must not be written to or loop-mounted, when it is in use: a block device that
/// is mounted, or one of whose partitions is (`/proc/self/mountinfo`), held by another device
/// (`holders/`) or opened exclusively by someone (`O_EXCL` gives `EBUSY`); a regular file that
/// backs a loop device (`/sys/block/loop*/loop/backing_file`), mounted or not. `None` when it
/// is free (or absent).
pub fn in_use(path: &Path) -> Option<String> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let meta = std::fs::metadata(path).ok()?;
    let all = mounts();
    let mut why = Vec::new();
    for (name, ma, mi) in devices_behind(path) {
        let at: Vec<String> = all
            .iter()
            .filter(|l| l.major == ma && l.minor == mi)
            .map(|l| format!("{} ({})", l.mount_point, if l.read_write { "rw" } else { "ro" }))
            .collect();
        let mounted = if at.is_empty() { String::new() } else { format!(", mounted at {}", at.join(", ")) };
        if meta.is_file() {
            why.push(format!("backs loop device /dev/{name}{mounted}"));
        } else if !at.is_empty() {
            why.push(format!("is mounted at {}", at.join(", ")));
        }
        if meta.file_type().is_block_device() {
            let holders: Vec<String> = std::fs::read_dir(format!("/sys/dev/block/{ma}:{mi}/holders"))
                .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            if !holders.is_empty() {
                why.push(format!("is held by {}", holders.join(", ")));
            }
            for (part, pma, pmi) in partitions(ma, mi) {
                for l in all.iter().filter(|l| l.major == pma && l.minor == pmi) {
                    why.push(format!("has partition {part} mounted at {}", l.mount_point));
                }
            }
        }
    }
    if meta.file_type().is_block_device() && why.is_empty() {
        let r = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_EXCL).open(path);
        if let Err(e) = r
            && e.raw_os_error() == Some(libc::EBUSY)
        {
            why.push("is busy: another program holds it open exclusively (O_EXCL open: EBUSY)".into());
        }
    }
    // A file system mounted straight from the path (e.g. by name in mountinfo's source field).
    let shown = path.display().to_string();
    for l in all.iter().filter(|l| l.source == shown) {
        let s = format!("is mounted at {}", l.mount_point);
        if !why.iter().any(|w| w.contains(&l.mount_point)) {
            why.push(s);
        }
    }
    (!why.is_empty()).then(|| format!("{} {}", path.display(), why.join("; ")))
}

/// Refuse to write to or loop-mount `path` (`what` says for what) while it is in use. A loop
/// device the kernel is still letting go of (detached, not yet cleared) gets two seconds.
pub fn refuse_in_use(path: &Path, what: &str) -> Result<()> {
    let mut reason = in_use(path);
    for _ in 0..20 {
        match &reason {
            Some(r) if r.contains("backs loop device") && !r.contains("mounted at") => {
                std::thread::sleep(Duration::from_millis(100));
                reason = in_use(path);
            }
            _ => break,
        }
    }
    match reason {
        None => Ok(()),
        Some(r) => Err(Error::Usage(format!("refusing to use {} as {what}: {r}", path.display()))),
    }
}

/// Where `path` (a block device, or a file behind a loop device) is mounted read-write, for the
/// warning that inspection commands give: reading a live file system may show a torn view.
pub fn mounted_read_write(path: &Path) -> Option<String> {
    let all = mounts();
    let at: Vec<String> = devices_behind(path)
        .into_iter()
        .flat_map(|(name, ma, mi)| {
            all.iter()
                .filter(move |l| l.major == ma && l.minor == mi && l.read_write)
                .map(move |l| format!("{} (via {name})", l.mount_point))
                .collect::<Vec<_>>()
        })
        .collect();
    (!at.is_empty()).then(|| at.join(", "))
}

#[cfg(test)]
mod in_use_tests {
    use super::*;

    #[test]
    fn mountinfo_lines_parse() {
        let t = "36 35 98:0 /mnt1 /mnt\\0402 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n\
                 37 35 7:3 / /tmp/m ro,relatime shared:7 - xfs /dev/loop3 ro\n\
                 garbage line\n";
        let v = parse_mountinfo(t);
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].major, v[0].minor, v[0].mount_point.as_str()), (98, 0, "/mnt 2"));
        assert!(v[0].read_write && !v[1].read_write);
        assert_eq!(v[1].source, "/dev/loop3");
        assert_eq!(dev_major_minor(0x0703), (7, 3));
        assert_eq!(dev_major_minor((259 << 8) | (1 << 20) | 5), (259, 1 << 8 | 5));
    }

    #[test]
    fn a_fresh_file_is_free() {
        let d = tempfile::tempdir().unwrap(); // OK to unwrap: test
        let f = d.path().join("x.img");
        std::fs::write(&f, b"x").unwrap(); // OK to unwrap: test
        assert_eq!(in_use(&f), None);
        assert_eq!(in_use(&d.path().join("absent")), None);
        assert!(refuse_in_use(&f, "a test").is_ok());
        assert_eq!(mounted_read_write(&f), None);
    }
}
