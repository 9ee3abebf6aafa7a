//! Claims and verdicts: does a store that a program saw become visible survive a crash?
//!
//! A **claim** says "file `path` held these bytes at `offset`": its length and the SHA-256 of
//! the bytes. Claims are read from a JSON Lines file, one object a line (blank lines and lines
//! starting with `#` are skipped):
//!
//! ```text
//! {"path":"/f0","ino":12,"offset":8192,"len":64,"sha256":"9f86d0..."}
//! ```
//!
//! | field    | required | meaning                                                           |
//! |----------|----------|-------------------------------------------------------------------|
//! | `path`   | yes      | absolute path inside the file system (`file` is accepted too: the replay agent's `Store` event shape) |
//! | `ino`    | no       | the inode number the writer saw (evidence only; the path decides) |
//! | `offset` | yes      | byte offset in the file                                           |
//! | `len`    | yes      | number of bytes                                                   |
//! | `sha256` | yes      | lowercase hex SHA-256 of the `len` bytes                          |
//! | `seq`    | no       | the store's sequence number in a replay run                       |
//!
//! [`check_claims`] gives each claim a [`Verdict`]: its [`Status`] and the evidence behind it
//! (the extents covering the range, the physical blocks, the file size, the recovery that ran).
//! A store survives only if every block of its range maps to a *written* extent, the file size
//! covers the range, and the bytes read there hash to the claimed SHA-256.

mod claims;
mod search;
mod verdict;

pub use claims::{
    Claim, ClaimsFile, parse_claims, parse_claims_lenient, read_claims, read_claims_lenient, write_claims,
};
pub use verdict::{
    Evidence, RecoverySummary, Status, Verdict, check_claims, check_model, mark_lost_by_recovery, summarize,
};
