//! Errors and findings.
//!
//! An [`Error`] stops an operation: an I/O failure, a structure too damaged to go on, an
//! unsupported feature. A [`Finding`] is something wrong that does not stop the reader (a bad
//! checksum, an out-of-range pointer that was skipped); findings make the exit code 1.

use serde::Serialize;
use std::path::PathBuf;

/// Everything that can stop a daxray operation. Each variant carries enough context
/// (structure, block, byte offset) to find the bad bytes with a hex editor.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Opening, mapping or reading a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An on-disk structure is damaged beyond what the reader can skip.
    #[error("corrupt {structure} at block {block} (byte offset {offset}): {detail}")]
    Corrupt {
        /// Which structure, e.g. "ext4 extent header" or "xfs bmbt block".
        structure: &'static str,
        /// Block number (in the structure's own unit, said in `detail` when not fs blocks).
        block: u64,
        /// Byte offset from the start of the file system (or journal/log device).
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// A read past the end of the image or a structure that points outside it.
    #[error("{what}: byte range {offset}..{end} is outside the image ({len} bytes)")]
    OutOfRange {
        /// What was being read.
        what: &'static str,
        /// Start of the requested range.
        offset: u64,
        /// End of the requested range.
        end: u64,
        /// Size of the source.
        len: u64,
    },
    /// A feature or format this version does not implement.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Neither ext4 nor XFS (or a pmem header that is not valid).
    #[error("not a recognised image: {0}")]
    Unrecognised(String),
    /// A path or inode that does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Bad arguments or an impossible request.
    #[error("{0}")]
    Usage(String),
    /// Something outside daxray failed (QEMU, mount, mkfs, the guest).
    #[error("{0}")]
    External(String),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::Corrupt`].
    pub fn corrupt(structure: &'static str, block: u64, offset: u64, detail: impl Into<String>) -> Self {
        Error::Corrupt { structure, block, offset, detail: detail.into() }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// The process exit code for this error: 2 (usage or I/O), or 1 when the image itself is bad.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Corrupt { .. } | Error::OutOfRange { .. } => 1,
            _ => 2,
        }
    }
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing, not wrong (e.g. journal needs recovery).
    Info,
    /// Something is wrong with the image (bad checksum, bad pointer skipped).
    Error,
}

/// Something wrong that the reader noticed and went past.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Finding {
    /// Info or error.
    pub severity: Severity,
    /// Which structure, e.g. "ext4 inode" or "xfs AGF".
    pub structure: String,
    /// The block (fs block, journal block or daddr: see `structure`), when there is one.
    pub block: Option<u64>,
    /// Byte offset from the start of the file system, when known.
    pub offset: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl Finding {
    /// A finding about `structure` at `block` / byte `offset`, when known.
    pub fn new(
        severity: Severity,
        structure: impl Into<String>,
        block: Option<u64>,
        offset: Option<u64>,
        message: impl Into<String>,
    ) -> Self {
        Self { severity, structure: structure.into(), block, offset, message: message.into() }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Info => "info",
            Severity::Error => "error",
        };
        write!(f, "{sev}: {}", self.structure)?;
        if let Some(b) = self.block {
            write!(f, " block {b}")?;
        }
        if let Some(o) = self.offset {
            write!(f, " (byte {o})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A collector of findings that parsers share by reference. Duplicates are dropped, and the
/// number kept is bounded so that a hostile image cannot grow it without limit.
#[derive(Debug, Default)]
pub struct Findings {
    inner: std::sync::Mutex<Kept>,
}

/// The kept findings in order, with a set for constant-time duplicate checks (a hostile image
/// can produce thousands of findings; a linear scan per push would be quadratic).
#[derive(Debug, Default)]
struct Kept {
    list: Vec<Finding>,
    seen: std::collections::HashSet<Finding>,
    dropped: u64,
}

/// At most this many findings are kept; later ones are counted in a final summary finding.
pub const MAX_FINDINGS: usize = 10_000;

impl Findings {
    /// A new, empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record a finding (dropped if an identical one is already there).
    pub fn push(&self, f: Finding) {
        let mut v = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if v.seen.contains(&f) {
            return;
        }
        if v.list.len() >= MAX_FINDINGS {
            v.dropped = v.dropped.saturating_add(1);
            return;
        }
        v.seen.insert(f.clone());
        v.list.push(f);
    }

    /// Record an error-severity finding.
    pub fn error(
        &self,
        structure: impl Into<String>,
        block: Option<u64>,
        offset: Option<u64>,
        message: impl Into<String>,
    ) {
        self.push(Finding::new(Severity::Error, structure, block, offset, message));
    }

    /// Record an info-severity finding.
    pub fn info(
        &self,
        structure: impl Into<String>,
        block: Option<u64>,
        offset: Option<u64>,
        message: impl Into<String>,
    ) {
        self.push(Finding::new(Severity::Info, structure, block, offset, message));
    }

    /// A copy of everything recorded so far.
    pub fn snapshot(&self) -> Vec<Finding> {
        let v = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = v.list.clone();
        if v.dropped > 0 {
            out.push(Finding::new(
                Severity::Error,
                "findings",
                None,
                None,
                format!("{} more findings not kept (limit {MAX_FINDINGS})", v.dropped),
            ));
        }
        out
    }

    /// True when any error-severity finding was recorded.
    pub fn has_errors(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .list
            .iter()
            .any(|f| f.severity == Severity::Error)
    }
}
