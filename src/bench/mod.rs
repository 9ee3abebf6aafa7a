//! Benchmarks. [`parse`]: daxray against debugfs, xfs_logprint, xfs_db and the kernel on large
//! kernel-made images. [`faults`]: page-fault latency with and without `MAP_SYNC` in the real kernel on
//! emulated NVDIMM, reproducing the table of the MAP_SYNC patch series (v3, October 2017).

pub mod faults;
pub mod parse;
pub mod svg;
