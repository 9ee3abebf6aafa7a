//! Transaction ids and the revoke test: tids wrap, so order is the sign of their difference
//! (the kernel's `tid_gt` and `tid_geq` in `include/linux/jbd2.h`).

use std::collections::HashMap;

/// `tid_gt`: `x` is after `y`.
pub fn tid_gt(x: u32, y: u32) -> bool {
    (x.wrapping_sub(y) as i32) > 0
}

/// `tid_geq`: `x` is `y` or after it.
pub fn tid_geq(x: u32, y: u32) -> bool {
    (x.wrapping_sub(y) as i32) >= 0
}

/// Whether the revoke table `revoked` (fs block -> latest revoking transaction) revokes the copy
/// of `blk` logged by transaction `seq`: the kernel's `jbd2_journal_test_revoke`.
pub fn is_revoked(revoked: &HashMap<u64, u32>, blk: u64, seq: u32) -> bool {
    // Most logs revoke nothing: do not hash every tag's block for an empty table.
    !revoked.is_empty() && revoked.get(&blk).is_some_and(|&s| !tid_gt(seq, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tids_wrap() {
        assert!(tid_gt(1, u32::MAX));
        assert!(!tid_gt(u32::MAX, 1));
        assert!(tid_geq(7, 7));
        let mut r = HashMap::new();
        r.insert(10u64, 5u32);
        assert!(is_revoked(&r, 10, 5));
        assert!(!is_revoked(&r, 10, 6));
        assert!(!is_revoked(&r, 11, 1));
    }
}
