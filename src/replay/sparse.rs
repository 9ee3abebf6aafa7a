//! A compressed sparse image: only the non-zero 4 KiB blocks, gzip-compressed. Fixtures of
//! 256–512 MiB crash images shrink to a few hundred KiB and unpack into sparse files.
//!
//! Layout (inside the gzip stream): the magic `DXSPARSE`, the image size (u64 LE), the block
//! size (u32 LE, 4096), then records of `block index (u64 LE)` followed by one block of bytes,
//! ending with the index `u64::MAX`.

use crate::error::{Error, Result};
use byteorder::{LittleEndian, ReadBytesExt, WriteBytesExt};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The magic at the start of the stream.
const MAGIC: &[u8; 8] = b"DXSPARSE";
/// Block size of the records.
const BLOCK: u32 = 4096;
/// Largest image size accepted when unpacking (bounds a hostile header).
const MAX_IMAGE: u64 = 64 << 30;

/// Pack the image at `src` into `dst` (gzip). Returns (blocks stored, image size).
pub fn pack(src: &Path, dst: &Path) -> Result<(u64, u64)> {
    let f = std::fs::File::open(src).map_err(|e| Error::io(src, e))?;
    let size = f.metadata().map_err(|e| Error::io(src, e))?.len();
    let out = std::fs::File::create(dst).map_err(|e| Error::io(dst, e))?;
    let mut gz = flate2::write::GzEncoder::new(std::io::BufWriter::new(out), flate2::Compression::best());
    let io = |e| Error::io(dst, e);
    gz.write_all(MAGIC).map_err(io)?;
    gz.write_u64::<LittleEndian>(size).map_err(io)?;
    gz.write_u32::<LittleEndian>(BLOCK).map_err(io)?;
    let mut buf = vec![0u8; BLOCK as usize];
    let mut stored = 0u64;
    let nblocks = size.div_ceil(u64::from(BLOCK));
    for b in 0..nblocks {
        buf.fill(0);
        let off = b * u64::from(BLOCK);
        // A short read at the end leaves zeros after it; that is what the sparse tail reads as.
        let want = (size - off).min(u64::from(BLOCK)) as usize;
        f.read_exact_at(&mut buf[..want], off).map_err(|e| Error::io(src, e))?;
        if buf.iter().all(|&x| x == 0) {
            continue;
        }
        gz.write_u64::<LittleEndian>(b).map_err(io)?;
        gz.write_all(&buf).map_err(io)?;
        stored += 1;
    }
    gz.write_u64::<LittleEndian>(u64::MAX).map_err(io)?;
    gz.finish().and_then(|mut w| w.flush()).map_err(io)?;
    Ok((stored, size))
}

pub use crate::oracle::copy_compact;

/// Unpack `src` (made by [`pack`]) into the sparse file `dst`. Returns the image size.
pub fn unpack(src: &Path, dst: &Path) -> Result<u64> {
    let f = std::fs::File::open(src).map_err(|e| Error::io(src, e))?;
    let mut gz = flate2::read::GzDecoder::new(std::io::BufReader::new(f));
    let bad = |d: String| Error::corrupt("sparse image", 0, 0, d);
    let io = |e: std::io::Error| bad(format!("{}: {e}", src.display()));
    let mut magic = [0u8; 8];
    gz.read_exact(&mut magic).map_err(io)?;
    if &magic != MAGIC {
        return Err(bad(format!("{}: no DXSPARSE magic", src.display())));
    }
    let size = gz.read_u64::<LittleEndian>().map_err(io)?;
    let bs = gz.read_u32::<LittleEndian>().map_err(io)?;
    if size > MAX_IMAGE || bs != BLOCK {
        return Err(bad(format!("{}: image size {size} / block size {bs} not accepted", src.display())));
    }
    let out = std::fs::File::create(dst).map_err(|e| Error::io(dst, e))?;
    out.set_len(size).map_err(|e| Error::io(dst, e))?;
    let nblocks = size.div_ceil(u64::from(BLOCK));
    let mut buf = vec![0u8; BLOCK as usize];
    loop {
        let b = gz.read_u64::<LittleEndian>().map_err(io)?;
        if b == u64::MAX {
            break;
        }
        if b >= nblocks {
            return Err(bad(format!("{}: block {b} beyond the image ({nblocks} blocks)", src.display())));
        }
        gz.read_exact(&mut buf).map_err(io)?;
        let off = b * u64::from(BLOCK);
        let want = (size - off).min(u64::from(BLOCK)) as usize;
        out.write_all_at(&buf[..want], off).map_err(|e| Error::io(dst, e))?;
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_bytes_and_holes() {
        let d = tempfile::tempdir().expect("tempdir");
        let a = d.path().join("a");
        let f = std::fs::File::create(&a).expect("create");
        f.set_len(10 * 4096 + 100).expect("len");
        f.write_all_at(b"hello", 4096 * 3 + 7).expect("write");
        f.write_all_at(b"tail", 10 * 4096 + 10).expect("write");
        drop(f);
        let (stored, size) = pack(&a, &d.path().join("a.gz")).expect("pack");
        assert_eq!((stored, size), (2, 10 * 4096 + 100));
        unpack(&d.path().join("a.gz"), &d.path().join("b")).expect("unpack");
        assert_eq!(std::fs::read(&a).expect("a"), std::fs::read(d.path().join("b")).expect("b"));
        copy_compact(&a, &d.path().join("c")).expect("copy");
        assert_eq!(std::fs::read(&a).expect("a"), std::fs::read(d.path().join("c")).expect("c"));
        std::fs::write(d.path().join("bad.gz"), b"not gzip").expect("write");
        assert!(unpack(&d.path().join("bad.gz"), &d.path().join("c")).is_err());
    }
}
