//! `daxray journal`'s listing of either journal kind, as its JSON document and its text at
//! once: what the tests compare with the peers' output.

use super::{jbd2_text, xlog_text};
use crate::error::Result;
use crate::image::BlockSource;
use crate::xlog::LogOptions;
use std::path::Path;
use std::sync::Arc;

/// A journal listing, for either journal kind.
pub struct Listing {
    /// The JSON document (`{"kind":"jbd2",...}` or `{"kind":"xfs-log",...}`).
    pub json: serde_json::Value,
    /// The text form.
    pub text: String,
    /// Problems found (bad checksums, torn records...).
    pub findings: Vec<crate::Finding>,
}

/// Write `doc` to `w` as pretty-printed JSON and a newline.
pub fn write_json(w: &mut dyn std::io::Write, doc: &impl serde::Serialize) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, doc)?;
    w.write_all(b"\n")
}

/// The listing of the jbd2 journal of the ext4 file system in `fs` (or of the journal device
/// `external`); `all` includes checkpointed transactions. Every checksum is verified, the tag
/// checksum of every logged block included.
pub fn ext4(fs: Arc<dyn BlockSource>, external: Option<&Path>, all: bool) -> Result<Listing> {
    ext4_with(fs, external, all, true)
}

/// As [`ext4`]; the tag checksums of the logged blocks are verified only when `verify_data`
/// (see [`crate::ext4::journal::list_journal`]).
pub fn ext4_with(
    fs: Arc<dyn BlockSource>,
    external: Option<&Path>,
    all: bool,
    verify_data: bool,
) -> Result<Listing> {
    let l = crate::ext4::journal::list_journal(fs, external, all, verify_data)?;
    let mut text = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = jbd2_text::write(&mut text, &l);
    Ok(Listing {
        json: l.json_value(),
        text: String::from_utf8_lossy(&text).into_owned(),
        findings: l.findings().to_vec(),
    })
}

/// The listing of the XFS log of the file system in `fs`; `all` includes checkpointed
/// transactions.
pub fn xfs(fs: Arc<dyn BlockSource>, opts: &LogOptions, all: bool) -> Result<Listing> {
    let l = crate::xlog::list_log(fs, opts, all)?;
    let mut text = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = xlog_text::write(&mut text, &l);
    Ok(Listing {
        json: l.json_value(),
        text: String::from_utf8_lossy(&text).into_owned(),
        findings: l.findings(),
    })
}
