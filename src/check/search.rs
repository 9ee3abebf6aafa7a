//! Find claimed bytes anywhere on the media: evidence that data reached a block whose mapping
//! did not survive recovery.

use crate::image::BlockSource;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};

/// For each wanted `(claim index, offset in block, len, sha256)`, the physical blocks of `src`
/// whose bytes at that in-block offset hash to the sha256: the first such block found for each.
/// One pass over the media from its start, ending as soon as every claim has been found;
/// all-zero blocks are skipped (a claim of zeros is never searched for).
pub fn find_data(
    src: &dyn BlockSource,
    block_size: u32,
    wanted: &[(usize, u64, u64, String)],
) -> BTreeMap<usize, Vec<u64>> {
    let mut out: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    let bs = u64::from(block_size);
    if bs == 0 || wanted.is_empty() {
        return out;
    }
    // (offset in block, len) -> sha256 -> claim indexes
    let mut by_shape: HashMap<(u64, u64), HashMap<&str, Vec<usize>>> = HashMap::new();
    for (i, off, len, sha) in wanted {
        // OK to cast: callers pass off + len <= block_size (a u32).
        let zero = hex::encode(Sha256::digest(vec![0u8; *len as usize]));
        if *sha == zero || off + len > bs {
            continue;
        }
        by_shape.entry((*off, *len)).or_default().entry(sha.as_str()).or_default().push(*i);
    }
    if by_shape.is_empty() {
        return out;
    }
    let searched: usize = by_shape.values().flat_map(|m| m.values()).map(Vec::len).sum();
    let zero_block = vec![0u8; block_size as usize];
    let nblocks = src.len() / bs;
    for b in 0..nblocks {
        let Ok(data) = src.read_at(b * bs, block_size as usize) else {
            break;
        };
        if data[..] == zero_block[..] {
            continue;
        }
        for (&(off, len), shas) in &by_shape {
            // OK to index: off + len <= bs was checked above, and data is bs bytes long.
            let h = hex::encode(Sha256::digest(&data[off as usize..(off + len) as usize]));
            if let Some(idx) = shas.get(h.as_str()) {
                for &i in idx {
                    out.entry(i).or_insert_with(|| vec![b]);
                }
            }
        }
        if out.len() >= searched {
            break;
        }
    }
    out
}
