//! Text that comes from the guest (its console log, strings in its messages), read and made safe
//! to print.

use crate::agent::proto::GuestMsg;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The last `n` bytes of a log file, as text.
pub fn log_tail(path: &Path, n: u64) -> String {
    let Ok(mut f) = File::open(path) else { return format!("(no log at {})", path.display()) };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(n)));
    let mut v = Vec::new();
    let _ = f.take(n).read_to_end(&mut v);
    String::from_utf8_lossy(&v).into_owned()
}

pub(super) fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    sanitize(&lines[lines.len().saturating_sub(n)..].join("\n"), usize::MAX)
}

/// Text from the guest made safe to print: control characters other than newline and tab
/// (terminal escape sequences, carriage returns) are shown escaped, and at most `max` characters
/// are kept.
pub fn sanitize(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for (i, c) in s.chars().enumerate() {
        if i >= max {
            out.push_str("...");
            break;
        }
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Guest-chosen strings in a message made safe to print ([`sanitize`]).
pub(super) fn sanitize_msg(m: GuestMsg) -> GuestMsg {
    const MAX: usize = 4096;
    match m {
        GuestMsg::Ready { kernel, fs, dataoff } => {
            GuestMsg::Ready { kernel: sanitize(&kernel, 256), fs, dataoff }
        }
        GuestMsg::Error { message } => GuestMsg::Error { message: sanitize(&message, MAX) },
        GuestMsg::Probe(mut p) => {
            p.path = sanitize(&p.path, 256);
            p.kernel = sanitize(&p.kernel, 256);
            GuestMsg::Probe(p)
        }
        other => other,
    }
}
