//! A copy-on-read overlay: replacement bytes for some granules of a base source.
//!
//! Journal and log recovery produce the blocks that the kernel would write at mount; they go into
//! an [`Overlay`] in memory, and the file-system model reads through it. The base is never written.

use super::source::{BlockSource, check_range};
use crate::error::{Error, Result};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A replacement granule: owned bytes, or a reference to one granule of another source (a
/// journal block in the mapped image: zero-copy, the last writer wins per granule).
enum Entry {
    /// Bytes assembled in memory (escaped journal blocks, XFS read-modify-write).
    Owned(Box<[u8]>),
    /// `granule` bytes of `src` at byte `offset`, checked to exist when put.
    Ref(Arc<dyn BlockSource>, u64),
}

/// Where the bytes of a replaced granule are.
enum Slot<'a> {
    /// In memory.
    Owned(&'a [u8]),
    /// A granule of another source, at this byte offset.
    Ref(&'a Arc<dyn BlockSource>, u64),
}

impl<'a> Slot<'a> {
    /// `len` bytes of this granule at byte `within` (`within + len <= granule`).
    fn slice(self, within: usize, len: usize) -> Result<Cow<'a, [u8]>> {
        match self {
            Slot::Owned(b) => match b.get(within..within.saturating_add(len)) {
                Some(s) => Ok(Cow::Borrowed(s)),
                // The error is built only on failure (this runs on every read of a granule).
                None => Err(Error::OutOfRange {
                    what: "overlay granule",
                    offset: within as u64,
                    end: (within + len) as u64,
                    len: b.len() as u64,
                }),
            },
            Slot::Ref(src, off) => src.read_at(off.saturating_add(within as u64), len),
        }
    }
}

/// A pending run of a [`BlockSource::read_into`] over the overlay: consecutive bytes from one
/// place, and where in the caller's buffer they go.
enum Run<'a> {
    /// Bytes of the base at this offset.
    Base(u64, usize, usize),
    /// Bytes of a referenced source at this offset.
    Ref(&'a Arc<dyn BlockSource>, u64, usize, usize),
}

/// A base source plus replacement granules (fs blocks for jbd2, 512-byte sectors for the XFS log).
///
/// Replacements are kept in two layers: `refs`, granules of one other source put in bulk and
/// sorted (jbd2 recovery's tens of thousands of replayed blocks: a binary search, no tree, no
/// per-block reference count), and `blocks`, any other replacement, which takes precedence.
pub struct Overlay {
    base: Arc<dyn BlockSource>,
    granule: u32,
    blocks: BTreeMap<u64, Entry>,
    /// (granule index, byte offset in `ref_src`), strictly increasing by index.
    refs: Vec<(u64, u64)>,
    ref_src: Option<Arc<dyn BlockSource>>,
    name: String,
}

impl Overlay {
    /// An empty overlay over `base` with replacement units of `granule` bytes.
    pub fn new(base: Arc<dyn BlockSource>, granule: u32, name: impl Into<String>) -> Result<Self> {
        if granule == 0 || !granule.is_power_of_two() {
            return Err(Error::Usage(format!("overlay granule {granule} is not a power of two")));
        }
        Ok(Self { base, granule, blocks: BTreeMap::new(), refs: vec![], ref_src: None, name: name.into() })
    }

    /// The replacement unit in bytes.
    pub fn granule(&self) -> u32 {
        self.granule
    }

    /// The replaced granule indexes, in order.
    pub fn replaced_indexes(&self) -> impl Iterator<Item = u64> + '_ {
        let mut all: Vec<u64> = self.refs.iter().map(|r| r.0).chain(self.blocks.keys().copied()).collect();
        all.sort_unstable();
        all.dedup();
        all.into_iter()
    }

    /// Number of replaced granules.
    pub fn replaced(&self) -> usize {
        self.replaced_indexes().count()
    }

    /// The replacement of granule `index`, if any.
    fn slot(&self, index: u64) -> Option<Slot<'_>> {
        if let Some(e) = self.blocks.get(&index) {
            return Some(match e {
                Entry::Owned(b) => Slot::Owned(b),
                Entry::Ref(src, off) => Slot::Ref(src, *off),
            });
        }
        bulk_ref(&self.refs, self.ref_src.as_ref(), index).map(|(src, at)| Slot::Ref(src, at))
    }

    /// Whether any granule in `first..=last` is replaced.
    fn any_in(&self, first: u64, last: u64) -> bool {
        if self.blocks.range(first..=last).next().is_some() {
            return true;
        }
        let i = self.refs.partition_point(|r| r.0 < first);
        self.refs.get(i).is_some_and(|r| r.0 <= last)
    }

    /// The current bytes of granule `index` (overlay first, then base).
    pub fn granule_bytes(&self, index: u64) -> Result<Cow<'_, [u8]>> {
        if let Some(s) = self.slot(index) {
            return s.slice(0, self.granule as usize);
        }
        let off = index.checked_mul(u64::from(self.granule)).ok_or(Error::OutOfRange {
            what: "overlay granule",
            offset: u64::MAX,
            end: u64::MAX,
            len: self.base.len(),
        })?;
        self.base.read_at(off, self.granule as usize)
    }

    /// Replace granule `index` with `data` (exactly one granule long).
    pub fn put(&mut self, index: u64, data: Box<[u8]>) -> Result<()> {
        if data.len() != self.granule as usize {
            return Err(Error::Usage(format!(
                "overlay put: {} bytes for a {}-byte granule",
                data.len(),
                self.granule
            )));
        }
        self.check_index(index)?;
        self.blocks.insert(index, Entry::Owned(data));
        Ok(())
    }

    /// Replace many granules by granules of `src`, without copying: reads of them borrow from
    /// `src` (journal blocks in the mapped image). `refs` holds (granule index, byte offset in
    /// `src`); the last one given for an index wins. Entries that do not fit (the granule
    /// outside the base or the bytes outside `src`) are left out and returned with the reason.
    /// Sorted by index, without repeats, into an overlay that has no bulk references yet, they
    /// are kept as they are (one vector, searched); otherwise each is put on its own.
    pub fn put_refs_sorted(
        &mut self,
        src: &Arc<dyn BlockSource>,
        mut refs: Vec<(u64, u64)>,
    ) -> Vec<(u64, Error)> {
        let mut rejected = vec![];
        let src_len = src.len();
        refs.retain(|&(index, offset)| {
            match check_range("overlay reference", offset, self.granule as usize, src_len)
                .and_then(|()| self.check_index(index))
            {
                Ok(()) => true,
                Err(e) => {
                    rejected.push((index, e));
                    false
                }
            }
        });
        let good = refs;
        let sorted = good.windows(2).all(|w| w[0].0 < w[1].0);
        if sorted && self.ref_src.is_none() {
            // Earlier replacements of these granules give way, as a put would replace them.
            for (index, _) in &good {
                self.blocks.remove(index);
            }
            self.refs = good;
            self.ref_src = Some(src.clone());
        } else {
            for (index, offset) in good {
                self.blocks.insert(index, Entry::Ref(src.clone(), offset));
            }
        }
        rejected
    }

    fn check_index(&self, index: u64) -> Result<()> {
        granule_offset(index, self.granule, self.base.len()).map(|_| ())
    }

    /// The bytes of granule `index`, to change in place: copied from the base (or from the
    /// source a reference points to) the first time.
    pub fn granule_mut(&mut self, index: u64) -> Result<&mut [u8]> {
        use std::collections::btree_map::Entry as Place;
        let g = self.granule as usize;
        // One lookup: a granule already in memory is the common case (replay changes the same
        // blocks again and again).
        let e = match self.blocks.entry(index) {
            Place::Occupied(o) => {
                let e = o.into_mut();
                if let Entry::Ref(src, off) = e {
                    let bytes = src.read_at(*off, g)?.into_owned().into_boxed_slice();
                    *e = Entry::Owned(bytes);
                }
                e
            }
            Place::Vacant(v) => {
                // The current bytes: a bulk reference, or the base (as check_index and slot
                // find them, on the fields the entry does not borrow).
                let off = granule_offset(index, self.granule, self.base.len())?;
                let bytes = match bulk_ref(&self.refs, self.ref_src.as_ref(), index) {
                    Some((src, at)) => src.read_at(at, g)?,
                    None => self.base.read_at(off, g)?,
                };
                v.insert(Entry::Owned(bytes.into_owned().into_boxed_slice()))
            }
        };
        match e {
            Entry::Owned(b) => Ok(b),
            // Cannot happen: the entry was made owned above.
            Entry::Ref(..) => Err(Error::Usage(format!("overlay granule {index} is not in memory"))),
        }
    }

    /// Write `data` at byte `offset`, read-modify-write of the granules it touches (a granule
    /// already in memory is changed in place).
    pub fn write_bytes(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        check_range("overlay write", offset, data.len(), self.base.len())?;
        let g = u64::from(self.granule);
        let mut pos = 0usize;
        while pos < data.len() {
            let abs = offset + pos as u64;
            let idx = abs / g;
            let within = (abs % g) as usize;
            let n = (self.granule as usize - within).min(data.len() - pos);
            if n == self.granule as usize {
                // A whole granule: no need to read what it replaces.
                match self.blocks.get_mut(&idx) {
                    Some(Entry::Owned(b)) => b.copy_from_slice(&data[pos..pos + n]),
                    _ => {
                        self.blocks.insert(idx, Entry::Owned(data[pos..pos + n].into()));
                    }
                }
                pos += n;
                continue;
            }
            self.granule_mut(idx)?[within..within + n].copy_from_slice(&data[pos..pos + n]);
            pos += n;
        }
        Ok(())
    }

    /// Read the pending run into `buf`.
    fn flush(&self, run: &mut Option<Run<'_>>, buf: &mut [u8]) -> Result<()> {
        match run.take() {
            Some(Run::Base(at, from, n)) => self.base.read_into(at, &mut buf[from..from + n]),
            Some(Run::Ref(src, at, from, n)) => src.read_into(at, &mut buf[from..from + n]),
            None => Ok(()),
        }
    }
}

/// Byte offset of granule `index` (of `granule` bytes) in a base of `len` bytes, when the whole
/// granule lies inside it.
fn granule_offset(index: u64, granule: u32, len: u64) -> Result<u64> {
    let off = index.checked_mul(u64::from(granule));
    match off {
        Some(o) if o.checked_add(u64::from(granule)).is_some_and(|e| e <= len) => Ok(o),
        _ => Err(Error::OutOfRange {
            what: "overlay granule",
            offset: off.unwrap_or(u64::MAX),
            end: u64::MAX,
            len,
        }),
    }
}

/// The bulk reference of granule `index` in `refs` (sorted by index): its source and byte offset
/// there.
fn bulk_ref<'a>(
    refs: &[(u64, u64)],
    src: Option<&'a Arc<dyn BlockSource>>,
    index: u64,
) -> Option<(&'a Arc<dyn BlockSource>, u64)> {
    let src = src?;
    let i = refs.binary_search_by_key(&index, |r| r.0).ok()?;
    refs.get(i).map(|r| (src, r.1))
}

impl BlockSource for Overlay {
    fn len(&self) -> u64 {
        self.base.len()
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        check_range("overlay", offset, len, self.len())?;
        if len == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        let g = u64::from(self.granule);
        let first = offset / g;
        let last = (offset + len as u64 - 1) / g;
        if first == last {
            // One granule: one lookup decides.
            return match self.slot(first) {
                Some(s) => s.slice((offset % g) as usize, len),
                None => self.base.read_at(offset, len),
            };
        }
        if !self.any_in(first, last) {
            return self.base.read_at(offset, len);
        }
        let mut out = vec![0u8; len];
        self.read_into(offset, &mut out)?;
        Ok(Cow::Owned(out))
    }

    fn read_into(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range("overlay", offset, buf.len(), self.len())?;
        if buf.is_empty() {
            return Ok(());
        }
        let g = u64::from(self.granule);
        let end = offset + buf.len() as u64;
        let (first, last) = (offset / g, (end - 1) / g);
        if !self.any_in(first, last) {
            return self.base.read_into(offset, buf);
        }
        // Granule by granule, reading consecutive bytes of one place together (one pread for a
        // run of journal blocks that a file's consecutive blocks were logged to).
        let mut run: Option<Run<'_>> = None;
        for idx in first..=last {
            let gstart = idx * g;
            let s = gstart.max(offset);
            let t = (gstart + g).min(end);
            // OK to cast: offsets inside `buf`.
            let (from, n) = ((s - offset) as usize, (t - s) as usize);
            match self.slot(idx) {
                None => match &mut run {
                    Some(Run::Base(at, _, m)) if *at + *m as u64 == s => *m += n,
                    _ => {
                        self.flush(&mut run, buf)?;
                        run = Some(Run::Base(s, from, n));
                    }
                },
                Some(Slot::Ref(src, off)) => {
                    let at = off.saturating_add(s - gstart);
                    match &mut run {
                        Some(Run::Ref(rsrc, rat, _, m))
                            if Arc::ptr_eq(*rsrc, src) && *rat + *m as u64 == at =>
                        {
                            *m += n
                        }
                        _ => {
                            self.flush(&mut run, buf)?;
                            run = Some(Run::Ref(src, at, from, n));
                        }
                    }
                }
                Some(slot) => {
                    self.flush(&mut run, buf)?;
                    buf[from..from + n].copy_from_slice(&slot.slice((s - gstart) as usize, n)?);
                }
            }
        }
        self.flush(&mut run, buf)
    }

    fn describe(&self) -> String {
        format!("{} over {}", self.name, self.base.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::MemSource;

    fn bytes(n: usize, salt: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt) ^ (i >> 9) as u8).collect()
    }

    /// Every way of reading the overlay gives the bytes of a plain model: the base with the
    /// replacements written over it in order (bulk references, owned puts, partial writes).
    #[test]
    fn read_at_and_read_into_agree_with_a_model() {
        let g = 512usize;
        let base: Arc<dyn BlockSource> = Arc::new(MemSource::new(bytes(64 * g, 1), "base"));
        let log: Arc<dyn BlockSource> = Arc::new(MemSource::new(bytes(32 * g, 77), "log"));
        let mut ov = Overlay::new(base.clone(), g as u32, "test").unwrap();
        let mut model = base.read_at(0, 64 * g).unwrap().into_owned();
        let log_bytes = log.read_at(0, 32 * g).unwrap().into_owned();
        // Granule 63 of the base cannot take a reference past the log's end: rejected.
        let refs: Vec<(u64, u64)> = vec![
            (2, 0),
            (3, g as u64),
            (4, 2 * g as u64),
            (10, 9 * g as u64),
            (11, 31 * g as u64),
            (63, 40 * g as u64),
        ];
        let rejected = ov.put_refs_sorted(&log, refs.clone());
        assert_eq!(rejected.iter().map(|r| r.0).collect::<Vec<_>>(), vec![63]);
        for &(i, off) in &refs[..5] {
            let (i, off) = (i as usize, off as usize);
            model[i * g..(i + 1) * g].copy_from_slice(&log_bytes[off..off + g]);
        }
        // An owned granule over a reference, and partial writes over both kinds.
        let own = bytes(g, 200);
        ov.put(3, own.clone().into_boxed_slice()).unwrap();
        model[3 * g..4 * g].copy_from_slice(&own);
        for (at, len, salt) in [(10 * g + 100, 50, 9u8), (20 * g - 7, 30, 10), (4 * g + 500, 40, 11)] {
            let d = bytes(len, salt);
            ov.write_bytes(at as u64, &d).unwrap();
            model[at..at + len].copy_from_slice(&d);
        }
        // Five references, and the partial writes add granules 5, 19 and 20.
        assert_eq!(ov.replaced(), 8);
        for start in (0..64 * g).step_by(97) {
            for len in [0usize, 1, 7, g - 1, g, g + 1, 3 * g + 5, 9 * g] {
                if start + len > 64 * g {
                    continue;
                }
                let want = &model[start..start + len];
                assert_eq!(&ov.read_at(start as u64, len).unwrap()[..], want, "read_at {start}+{len}");
                let mut buf = vec![0xAA; len];
                ov.read_into(start as u64, &mut buf).unwrap();
                assert_eq!(&buf[..], want, "read_into {start}+{len}");
            }
        }
        assert!(ov.read_at(64 * g as u64 - 1, 2).is_err());
        assert!(ov.read_into(64 * g as u64, &mut [0u8; 1]).is_err());
    }
}
