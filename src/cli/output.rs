//! Printing helpers shared by the subcommands: JSON, findings, errors, exit codes.

use crate::error::{Error, Finding, Severity};
use serde::Serialize;
use std::io::Write;

/// Print a value as pretty JSON on standard output.
pub fn print_json<T: Serialize>(v: &T) -> crate::Result<()> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Error::External(format!("JSON: {e}")))?;
    write_stdout(format!("{s}\n").as_bytes())
}

/// Write bytes to standard output; a closed pipe (`| head`) is not an error.
pub fn write_stdout(bytes: &[u8]) -> crate::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::io("<stdout>", e)),
    }
}

/// Print findings to standard error (text mode), one a line.
pub fn print_findings(findings: &[Finding]) {
    for f in findings {
        eprintln!("daxray: {f}");
    }
}

/// Exit code for a finished command: 1 when any finding is an error, else 0.
pub fn exit_code(findings: &[Finding]) -> i32 {
    i32::from(findings.iter().any(|f| f.severity == Severity::Error))
}

/// Print an error: JSON on standard output with --json, else text on standard error.
pub fn print_error(e: &Error, json: bool) {
    if json {
        let v = serde_json::json!({ "error": e.to_string(), "exit_code": e.exit_code() });
        println!("{v}");
    } else {
        eprintln!("daxray: {e}");
    }
}
