//! `debugfs logdump -a` output and daxray's `journal --json` listing in one shape, to compare
//! them: sequence -> (tags as (fs block, journal block), revoked fs blocks), for the committed
//! transactions of the live log.

use std::collections::BTreeMap;

/// One committed transaction: its tags (fs block, journal block) and its revoked fs blocks.
pub type Tx = (Vec<(u64, u64)>, Vec<u64>);

/// The transactions whose commit block `debugfs -c -R 'logdump -a'` found, from its output.
pub fn parse_logdump(out: &str) -> BTreeMap<u32, Tx> {
    let mut pending: BTreeMap<u32, Tx> = BTreeMap::new();
    let mut committed = BTreeMap::new();
    let mut cur: Option<u32> = None;
    for line in out.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("Found expected sequence ") {
            let seq: u32 = rest.split(',').next().unwrap().parse().unwrap();
            pending.entry(seq).or_default();
            cur = Some(seq);
            if rest.contains("(commit block)") {
                committed.insert(seq, pending.remove(&seq).unwrap_or_default());
                cur = None;
            }
        } else if let Some(seq) = cur {
            if let Some(rest) = l.strip_prefix("FS block ") {
                // "FS block 1090 logged at journal block 2 (flags 0x0)"
                let fs: u64 = rest.split_whitespace().next().unwrap().parse().unwrap();
                let jb: u64 = rest
                    .split("journal block ")
                    .nth(1)
                    .unwrap()
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                pending.entry(seq).or_default().0.push((fs, jb));
            } else if let Some(rest) = l.strip_prefix("Revoke FS block ") {
                let b: u64 = rest.split_whitespace().next().unwrap().parse().unwrap();
                pending.entry(seq).or_default().1.push(b);
            }
        }
    }
    committed
}

/// The live, committed transactions of daxray's `journal --json` listing, as
/// [`parse_logdump`] gives logdump's (logdump prints the low 32 bits of a tag's block number).
pub fn ours(listing: &serde_json::Value) -> BTreeMap<u32, Tx> {
    assert_eq!(listing["kind"], "jbd2");
    let mut m = BTreeMap::new();
    for t in listing["transactions"].as_array().unwrap() {
        if t["live"] == true && t["committed"] == true {
            let tags = t["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| {
                    (b["fs_block"].as_u64().unwrap() & 0xFFFF_FFFF, b["journal_block"].as_u64().unwrap())
                })
                .collect();
            let revokes = t["revokes"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap()).collect();
            m.insert(t["sequence"].as_u64().unwrap() as u32, (tags, revokes));
        }
    }
    m
}

/// The tags alone, for journals whose revoke blocks logdump and the kernel read differently
/// (logdump lists the records of a revoke block whose `r_count` is invalid; the kernel rejects
/// the block and recovery fails).
pub fn tags_only(m: BTreeMap<u32, Tx>) -> BTreeMap<u32, Vec<(u64, u64)>> {
    m.into_iter().map(|(seq, (tags, _))| (seq, tags)).collect()
}
