//! The only module with `unsafe`: thin, checked wrappers over system calls that the standard
//! library does not offer (read-only mmap of images; in the guest agent, `MAP_SYNC` mappings,
//! cache-line flushes; on the host, `FS_IOC_FIEMAP`).
//!
//! Each function states why its `unsafe` block is sound. Everything else in daxray is safe Rust.

#![allow(unsafe_code)]

use std::fs::File;

/// Map `len` bytes of `file` read-only and shared.
///
/// The bytes may change under the mapping (a running guest writes its media), so callers treat
/// them as untrusted input and only ever copy them or parse them as plain integers.
pub fn map_readonly(file: &File, len: usize) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: read-only (PROT_READ) shared mapping of a file we opened read-only. memmap2's
    // safety requirement is that the file is not modified while mapped in a way that breaks Rust
    // aliasing assumptions; we only ever read plain bytes (u8), for which any value is valid, and
    // never hand out references into the map that outlive a parse.
    unsafe { memmap2::MmapOptions::new().len(len).map(file) }
}
