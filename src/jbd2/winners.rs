//! Which logged copy of each fs block recovery writes: the last one in pass order, found
//! without a comparison sort of tens of thousands of writes (`do_one_pass` writes every copy
//! in order, so the last write of each block is what the media holds after replay).

/// One block written by replay (the last writer of each fs block wins). The bytes are not
/// copied: they are journal block `journal_block`, with the jbd2 magic restored in the first
/// four bytes when `escaped`.
#[derive(Debug, Clone)]
pub struct Write {
    /// Transaction that logged it.
    pub sequence: u32,
    /// Journal block it was read from.
    pub journal_block: u64,
    /// The copy's first four bytes were the jbd2 magic, zeroed in the log (FLAG_ESCAPE).
    pub escaped: bool,
}

/// How many distinct values `blocks` holds: a bitmap when the largest is small next to the count
/// (fs block numbers of one file system), else a sort.
pub(super) fn count_distinct(mut blocks: Vec<u64>) -> usize {
    let max = blocks.iter().copied().max().unwrap_or(0);
    // Bounded: at most 32 bytes of bitmap per value.
    if max / 8 <= (blocks.len() as u64).saturating_mul(32) {
        // OK to cast: max / 64 + 1 <= 4 × len, a usize.
        let mut bits = vec![0u64; (max / 64) as usize + 1];
        let mut n = 0usize;
        for b in blocks {
            let (w, m) = ((b / 64) as usize, 1u64 << (b % 64));
            if let Some(word) = bits.get_mut(w)
                && *word & m == 0
            {
                *word |= m;
                n += 1;
            }
        }
        return n;
    }
    blocks.sort_unstable();
    blocks.dedup();
    blocks.len()
}

/// The last write of each fs block, sorted by fs block, from writes in pass order.
///
/// When the fs block numbers are dense next to the writes (those of one file system), a table
/// indexed by fs block keeps each block's last write, read back in block order. Otherwise the
/// writes' indices are sorted by (fs block, index) and the last of each block's run wins.
pub(super) fn last_writers(pending: Vec<(u64, Write)>) -> Vec<(u64, Write)> {
    let max = pending.iter().map(|w| w.0).max().unwrap_or(0);
    // Bounded: at most 8 slots (32 bytes) per write.
    let dense = max < (pending.len() as u64).saturating_mul(8) && u32::try_from(pending.len()).is_ok();
    if dense {
        // Slot = 1 + index of the block's last write; 0 = not written.
        // OK to cast: max < 8 × len, a usize.
        let mut last = vec![0u32; max as usize + 1];
        for (i, w) in pending.iter().enumerate() {
            if let Some(slot) = last.get_mut(w.0 as usize) {
                // OK to cast: len fits in u32 (checked above).
                *slot = i as u32 + 1;
            }
        }
        // Reserved once (pages never written are never touched): no regrowth copies.
        let mut out: Vec<(u64, Write)> = Vec::with_capacity(pending.len());
        for &i in last.iter().filter(|&&i| i != 0) {
            if let Some(w) = pending.get(i as usize - 1) {
                out.push(w.clone());
            }
        }
        return out;
    }
    let mut order: Vec<(u64, usize)> = pending.iter().enumerate().map(|(i, w)| (w.0, i)).collect();
    radix_sort_stable(&mut order);
    let mut out: Vec<(u64, Write)> = Vec::with_capacity(order.len());
    for run in order.chunk_by(|a, b| a.0 == b.0) {
        if let Some(&(blk, i)) = run.last()
            && let Some(w) = pending.get(i)
        {
            out.push((blk, w.1.clone()));
        }
    }
    out
}

/// Sort by the first field, keeping the order of equal keys (LSD radix sort, one byte a pass;
/// a pass where every key has the same byte is skipped, so fs block numbers below 2^24 take
/// three passes). Linear, unlike a comparison sort of tens of thousands of writes.
fn radix_sort_stable(v: &mut Vec<(u64, usize)>) {
    let mut tmp = vec![(0u64, 0usize); v.len()];
    for shift in (0..64).step_by(8) {
        let digit = |k: u64| ((k >> shift) & 0xFF) as usize;
        let mut counts = [0usize; 256];
        for e in v.iter() {
            counts[digit(e.0)] += 1;
        }
        if counts.contains(&v.len()) {
            continue;
        }
        let mut next = [0usize; 256];
        let mut sum = 0usize;
        for (n, c) in next.iter_mut().zip(counts) {
            *n = sum;
            sum += c;
        }
        for e in v.iter() {
            let d = digit(e.0);
            if let Some(slot) = tmp.get_mut(next[d]) {
                *slot = *e;
            }
            next[d] += 1;
        }
        std::mem::swap(v, &mut tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::{Write, last_writers};
    use std::collections::BTreeMap;

    /// Both ways of finding the last writes (dense table, sort) agree with a map that keeps
    /// the last write of each block.
    #[test]
    fn last_writers_keeps_the_last_write_of_each_block() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Dense block numbers (a table), sparse ones (a sort), and block 0 and u64::MAX.
        for (n, span) in [(5000u64, 2000u64), (3000, 1 << 40), (10, 3)] {
            let mut pending: Vec<(u64, Write)> = (0..n)
                .map(|i| {
                    let blk = next() % span;
                    (blk, Write { sequence: i as u32, journal_block: next() % 100_000, escaped: i % 7 == 0 })
                })
                .collect();
            pending.push((0, Write { sequence: 1, journal_block: 1, escaped: false }));
            if span > 1 << 32 {
                pending.push((u64::MAX, Write { sequence: 2, journal_block: 2, escaped: true }));
            }
            let model: BTreeMap<u64, (u32, u64, bool)> =
                pending.iter().map(|(b, w)| (*b, (w.sequence, w.journal_block, w.escaped))).collect();
            let got: Vec<(u64, (u32, u64, bool))> = last_writers(pending)
                .into_iter()
                .map(|(b, w)| (b, (w.sequence, w.journal_block, w.escaped)))
                .collect();
            assert_eq!(got, model.into_iter().collect::<Vec<_>>(), "{n} writes over {span} blocks");
        }
    }
}
