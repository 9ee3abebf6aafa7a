//! daxray: inspect ext4 and XFS images on fsdax persistent memory, replay their journal or log in
//! memory, check crash images against claims, and drive a real kernel on emulated NVDIMM to test
//! the `MAP_SYNC` guarantee.
//!
//! Data flows one way: bytes ([`image`]) → recovery ([`jbd2`], [`xlog`]) → the file-system model
//! ([`fs`], [`ext4`], [`xfs`]) → verdicts ([`check`]) → front ends (the CLI, [`replay`], [`bench`](mod@bench)).
//! Nothing ever writes to an input image.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod agent;
pub mod bench;
pub mod check;
pub mod cli;
pub mod crc32c;
pub mod error;
pub mod ext4;
pub mod fs;
pub mod image;
pub mod jbd2;
pub mod manifest;
pub mod open;
pub mod oracle;
pub mod owners;
pub mod replay;
pub mod report;
pub mod sys;
pub mod vm;
pub mod xfs;
pub mod xlog;

pub use error::{Error, Finding, Findings, Result};
pub use fs::{FileSystem, FsKind};
/// The cores this process may run on (`available_parallelism`, which reads the cgroup limits:
/// asked once).
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
