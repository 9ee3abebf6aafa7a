//! The bytes of a freshly made file system, kept by the host so that a later run of the same
//! boot starts from them without running mkfs again under emulation.
//!
//! The guest says `Formatted` after mkfs and waits; the host reads the file system's part of the
//! NVDIMM image (from `dataoff`: the namespace's own blocks before it stay as the kernel keeps
//! them) and keeps every 4 KiB block that is not all zeros. To restore, with nothing mounted in
//! the guest, it punches the whole part out of the image (`FALLOC_FL_PUNCH_HOLE`: the guest then
//! reads zeros there, as QEMU maps the file shared) and writes the kept blocks back. The media is
//! then byte for byte what mkfs left.

use crate::error::{Error, Result};
use byteorder::{LittleEndian, ReadBytesExt, WriteBytesExt};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The magic at the start of a kept snapshot's (gzip) stream.
const MAGIC: &[u8; 8] = b"DXFORMAT";

const BLOCK: usize = 4096;

/// The most bytes of one snapshot held in memory; a file system that made more is formatted anew
/// each time instead.
pub const MAX_SNAPSHOT: u64 = 256 << 20;

/// The non-zero blocks of an image from `start` to `end`.
#[derive(Debug, Clone)]
pub struct Snapshot {
    start: u64,
    end: u64,
    /// (byte offset in the image, bytes), in order, not overlapping.
    extents: Vec<(u64, Vec<u8>)>,
}

impl Snapshot {
    /// Read the image from `start` (a multiple of 4 KiB) to its end. `Ok(None)` when more than
    /// [`MAX_SNAPSHOT`] bytes are not zero.
    pub fn capture(image: &Path, start: u64) -> Result<Option<Snapshot>> {
        let f = File::open(image).map_err(|e| Error::io(image, e))?;
        let end = f.metadata().map_err(|e| Error::io(image, e))?.len();
        if !start.is_multiple_of(BLOCK as u64) || start > end {
            return Err(Error::Usage(format!(
                "a file system start of {start} bytes in an image of {end} bytes: not a 4 KiB boundary inside it"
            )));
        }
        let mut extents: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut kept = 0u64;
        let r = crate::oracle::for_each_nonzero_block(image, &f, start, |off, b| {
            kept += b.len() as u64;
            if kept > MAX_SNAPSHOT {
                return Err(Error::Usage(String::new()));
            }
            match extents.last_mut() {
                Some((o, v)) if *o + v.len() as u64 == off => v.extend_from_slice(b),
                _ => extents.push((off, b.to_vec())),
            }
            Ok(())
        });
        match r {
            Err(_) if kept > MAX_SNAPSHOT => return Ok(None),
            r => r?,
        }
        Ok(Some(Snapshot { start, end, extents }))
    }

    /// Where the file system starts in the image.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Keep the snapshot in `path` (gzip: the magic, start, end, then `offset, length, bytes`
    /// records and a zero length), written to a temporary name and renamed into place.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let io = |e| Error::io(&tmp, e);
        let f = File::create(&tmp).map_err(io)?;
        let mut gz = flate2::write::GzEncoder::new(std::io::BufWriter::new(f), flate2::Compression::fast());
        gz.write_all(MAGIC).map_err(io)?;
        gz.write_u64::<LittleEndian>(self.start).map_err(io)?;
        gz.write_u64::<LittleEndian>(self.end).map_err(io)?;
        for (off, v) in &self.extents {
            gz.write_u64::<LittleEndian>(*off).map_err(io)?;
            gz.write_u64::<LittleEndian>(v.len() as u64).map_err(io)?;
            gz.write_all(v).map_err(io)?;
        }
        gz.write_u64::<LittleEndian>(0).map_err(io)?;
        gz.write_u64::<LittleEndian>(0).map_err(io)?;
        gz.finish().and_then(|mut w| w.flush()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    }

    /// A snapshot kept by [`Snapshot::save`]; a file that is not one, or holds more than
    /// [`MAX_SNAPSHOT`] bytes or extents outside its range, is an error.
    pub fn load(path: &Path) -> Result<Snapshot> {
        let f = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut gz = flate2::read::GzDecoder::new(std::io::BufReader::new(f));
        let bad =
            |d: String| Error::corrupt("kept file system snapshot", 0, 0, format!("{}: {d}", path.display()));
        let io = |e: std::io::Error| bad(e.to_string());
        let mut magic = [0u8; 8];
        gz.read_exact(&mut magic).map_err(io)?;
        if &magic != MAGIC {
            return Err(bad("no DXFORMAT magic".into()));
        }
        let start = gz.read_u64::<LittleEndian>().map_err(io)?;
        let end = gz.read_u64::<LittleEndian>().map_err(io)?;
        if start > end {
            return Err(bad(format!("start {start} past end {end}")));
        }
        let (mut extents, mut kept, mut last) = (Vec::new(), 0u64, start);
        loop {
            let off = gz.read_u64::<LittleEndian>().map_err(io)?;
            let len = gz.read_u64::<LittleEndian>().map_err(io)?;
            if len == 0 {
                break;
            }
            kept = kept.saturating_add(len);
            let past = off.checked_add(len).is_none_or(|e| e > end);
            if kept > MAX_SNAPSHOT || off < last || past {
                return Err(bad(format!(
                    "an extent of {len} bytes at {off} out of order, out of range or over the limit"
                )));
            }
            let mut v = vec![0u8; len as usize];
            gz.read_exact(&mut v).map_err(io)?;
            last = off + len;
            extents.push((off, v));
        }
        Ok(Snapshot { start, end, extents })
    }

    /// Bytes kept.
    pub fn bytes(&self) -> u64 {
        self.extents.iter().map(|(_, v)| v.len() as u64).sum()
    }

    /// Put the kept bytes back: zeros from `start` to the end, then the kept blocks. The guest
    /// must have nothing of the file system mounted.
    pub fn restore(&self, image: &Path) -> Result<()> {
        let f = std::fs::OpenOptions::new().write(true).open(image).map_err(|e| Error::io(image, e))?;
        let len = f.metadata().map_err(|e| Error::io(image, e))?.len();
        if len != self.end {
            return Err(Error::External(format!(
                "{} is {len} bytes, {} when its file system was kept",
                image.display(),
                self.end
            )));
        }
        let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
        crate::sys::fallocate(&f, mode, self.start, self.end - self.start)
            .map_err(|e| Error::io(image, e))?;
        for (off, v) in &self.extents {
            f.write_all_at(v, *off).map_err(|e| Error::io(image, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restores_the_kept_bytes_and_zeros_the_rest() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("img");
        let f = File::create(&p).unwrap();
        f.set_len(64 * 4096).unwrap();
        f.write_all_at(&[1u8; 4096], 0).unwrap(); // before start: not kept, not touched
        f.write_all_at(&[2u8; 8192], 8 * 4096).unwrap();
        f.write_all_at(&[3u8; 10], 20 * 4096 + 5).unwrap();
        let s = Snapshot::capture(&p, 4096).unwrap().unwrap();
        assert_eq!(s.bytes(), 3 * 4096);
        f.write_all_at(&[9u8; 4096], 30 * 4096).unwrap();
        f.write_all_at(&[9u8; 4096], 8 * 4096).unwrap();
        let kept = d.path().join("kept");
        s.save(&kept).unwrap();
        let s = Snapshot::load(&kept).unwrap();
        s.restore(&p).unwrap();
        let all = std::fs::read(&p).unwrap();
        assert_eq!(&all[..4096], &[1u8; 4096][..]);
        assert!(all[8 * 4096..10 * 4096].iter().all(|&b| b == 2));
        assert_eq!(&all[20 * 4096 + 5..20 * 4096 + 15], &[3u8; 10][..]);
        assert!(all[30 * 4096..31 * 4096].iter().all(|&b| b == 0));
        assert_eq!(all.iter().filter(|&&b| b != 0).count(), 4096 + 8192 + 10);
        std::fs::write(&kept, b"not gzip").unwrap();
        assert!(Snapshot::load(&kept).is_err());
    }
}
