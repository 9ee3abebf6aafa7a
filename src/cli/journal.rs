//! `daxray journal IMAGE [--all]`: the jbd2 journal's or the XFS log's transactions.

use super::{Global, jbd2_text, listing, output, xlog_text};
use crate::fs::FsKind;
use crate::open::{Access, OpenOptions, open_image};
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `journal`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image file or block device.
    pub image: PathBuf,
    /// Also list old, checkpointed transactions still in the journal/log.
    #[arg(long)]
    pub all: bool,
    /// ext4 only: also read every logged block and verify its tag checksum (jbd2 csum v2/v3),
    /// as the kernel's replay pass does. Without it the superblock, descriptor, revoke and
    /// commit checksums are verified and logged blocks are not read (`csum_ok` is null), like
    /// `debugfs logdump`, which verifies none. Refused on XFS, whose listing verifies every
    /// record's crc, data included, always.
    #[arg(long)]
    pub verify_data: bool,
}

/// Run `journal`.
pub fn run(a: &Args, g: &Global) -> crate::Result<i32> {
    // Without --verify-data an ext4 listing reads only the journal's descriptor, revoke and
    // commit blocks: positioned reads of those beat faulting them in through the mapping (with
    // fault-around mapping their neighbours: 82 MiB resident against 8 MiB on a 256 MiB
    // journal). XFS reads the whole active log, through the mapping.
    let access = if a.verify_data { Access::Map } else { Access::Pread };
    let img = open_image(&a.image, &OpenOptions { access, ..g.open_options() })?;
    let img = if img.placement.fs == FsKind::Xfs && access == Access::Pread {
        img.with_access(Access::Map)?
    } else {
        img
    };
    if a.verify_data && img.placement.fs == FsKind::Xfs {
        return Err(crate::Error::Usage(format!(
            "{}: --verify-data is for ext4 journals (jbd2 tag checksums); an XFS log listing always verifies each record's crc over its data",
            a.image.display()
        )));
    }
    if let Some(at) = &img.mounted_read_write {
        // On standard error, so that the JSON stream stays one document.
        eprintln!("info: image: mounted read-write at {at}: the view may be inconsistent");
    }
    if img.placement.fs == FsKind::Ext4 {
        // Written straight to standard output: no JSON tree or text copy of thousands of tags.
        let l = crate::ext4::journal::list_journal(
            img.fs_bytes.clone(),
            g.journal_dev.as_deref(),
            a.all,
            a.verify_data,
        )?;
        stream(|w| if g.json { listing::write_json(w, &l) } else { jbd2_text::write(w, &l) })?;
        if !g.json {
            output::print_findings(l.findings());
        }
        let code = output::exit_code(l.findings());
        // The process ends here: freeing tens of thousands of tags one by one is wasted work.
        std::mem::forget(l);
        return Ok(code);
    }
    if !g.json {
        // Written while the log is read: no transaction is kept once printed.
        let out = std::io::stdout().lock();
        let mut w = std::io::BufWriter::with_capacity(1 << 16, out);
        let findings = match xlog_text::write_streamed(
            img.fs_bytes.clone(),
            &g.open_options().log_options(),
            a.all,
            &mut w,
        )
        .and_then(|f| w.flush().map(|_| f).map_err(|e| crate::Error::io("<stdout>", e)))
        {
            Ok(f) => f,
            // A closed pipe (`| head`) is not an error.
            Err(crate::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
                return Ok(0);
            }
            Err(e) => return Err(e),
        };
        output::print_findings(&findings);
        return Ok(output::exit_code(&findings));
    }
    let l = crate::xlog::list_log(img.fs_bytes.clone(), &g.open_options().log_options(), a.all)?;
    stream(|w| listing::write_json(w, &l))?;
    let findings = l.findings();
    // The process ends here: freeing every record, transaction and region is wasted work.
    std::mem::forget(l);
    Ok(output::exit_code(&findings))
}

/// Run `f` over buffered, locked standard output; a closed pipe (`| head`) is not an error.
fn stream(f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> crate::Result<()> {
    let out = std::io::stdout().lock();
    let mut w = std::io::BufWriter::with_capacity(1 << 16, out);
    match f(&mut w).and_then(|_| w.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(crate::Error::io("<stdout>", e)),
    }
}
