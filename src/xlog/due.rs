//! A quick "no due crc near here" for log recovery: the buffers whose LSN was stamped and
//! whose crc is not computed yet, counted by their first sector in a fixed hash table, so that
//! most writes need no search of the map of due buffers.

/// Counts of keys of [`super::recover::Replayer`]'s `due` by their first sector, hashed into a fixed table: a
/// count of 0 over a range of sectors means no due buffer starts there (collisions only make
/// the count larger, and the map is searched).
pub(super) struct DueFilter {
    counts: Vec<u32>,
}

impl DueFilter {
    /// Table slots (a power of two).
    const SLOTS: u64 = 1 << 14;
    /// The longest range counted slot by slot (longer ones count as "maybe").
    pub(super) const SPAN: u64 = 256;

    pub(super) fn new() -> Self {
        Self { counts: vec![0; Self::SLOTS as usize] }
    }

    fn slot(&self, daddr: u64) -> usize {
        // Fibonacci hashing: the same block of every AG (a power-of-two distance apart) lands
        // in different slots.
        (daddr.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - Self::SLOTS.trailing_zeros())) as usize
    }

    pub(super) fn add(&mut self, daddr: u64) {
        let s = self.slot(daddr);
        if let Some(c) = self.counts.get_mut(s) {
            *c = c.saturating_add(1);
        }
    }

    pub(super) fn remove(&mut self, daddr: u64) {
        let s = self.slot(daddr);
        if let Some(c) = self.counts.get_mut(s) {
            *c = c.saturating_sub(1);
        }
    }

    /// Keys starting in `from..end` (basic blocks), or more.
    pub(super) fn count(&self, from: u64, end: u64) -> u32 {
        if end <= from {
            return 0;
        }
        if end - from > Self::SPAN {
            return u32::MAX;
        }
        (from..end).fold(0u32, |a, d| a.saturating_add(self.counts.get(self.slot(d)).copied().unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_filter_never_misses_a_key() {
        // Keys at the same block of every AG (a power-of-two distance apart) and neighbours;
        // some removed again. A range with a key starting in it never counts 0.
        let mut f = DueFilter::new();
        let mut keys: Vec<u64> = vec![];
        for ag in 0..8u64 {
            for b in [1u64, 2, 8, 16, 24, 4096, 16383, 16384] {
                keys.push(ag * 524_288 + b);
            }
        }
        for k in &keys {
            f.add(*k);
        }
        for k in keys.iter().step_by(3) {
            f.remove(*k);
        }
        let live: Vec<u64> = keys.iter().enumerate().filter(|(i, _)| i % 3 != 0).map(|(_, k)| *k).collect();
        assert!(!live.is_empty());
        let mut zero = 0;
        for from in (0..8 * 524_288u64).step_by(7).take(200_000) {
            for len in [1u64, 8, 15, 40] {
                let n = f.count(from, from + len);
                let truth = live.iter().filter(|k| (from..from + len).contains(k)).count() as u32;
                assert!(n >= truth, "from {from} len {len}: {n} < {truth}");
                zero += usize::from(n == 0);
            }
        }
        // The filter does tell most empty ranges apart.
        assert!(zero > 100_000, "{zero}");
        assert_eq!(f.count(5, 5), 0);
        assert_eq!(f.count(0, DueFilter::SPAN + 1), u32::MAX);
    }
}
