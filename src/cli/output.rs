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

/// Parse a byte count as the command line gives it: decimal or `0x` hexadecimal, optionally
/// followed by a binary unit: `K`, `M`, `G`, `T` (or `KiB`, `MiB`, `GiB`, `TiB`; any case),
/// each 1024 times the one before (`4K` = 4096, `6M` = 6291456).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => {
            let end = hex.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(hex.len());
            let n = u64::from_str_radix(&hex[..end], 16).map_err(|e| format!("{text:?}: {e}"))?;
            (n, &hex[end..])
        }
        None => {
            let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            let n = t[..end].parse::<u64>().map_err(|e| format!("{text:?}: {e}"))?;
            (n, &t[end..])
        }
    };
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (a number, 0x hex, or with K, M, G, T, KiB, MiB, GiB, TiB: powers of 1024)"
            ));
        }
    };
    digits.checked_mul(1u64 << shift).ok_or_else(|| format!("{text:?} does not fit in 64 bits"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_with_hex_and_units() {
        for (t, want) in [
            ("4096", 4096),
            ("0x1000", 4096),
            ("0X1000", 4096),
            ("4K", 4096),
            ("4k", 4096),
            ("6M", 6 << 20),
            ("6MiB", 6 << 20),
            ("1G", 1 << 30),
            ("1t", 1 << 40),
            ("2KiB", 2048),
            ("0x10M", 16 << 20),
        ] {
            assert_eq!(parse_size(t), Ok(want), "{t}");
        }
        for bad in ["", "x", "4KB", "4 Q", "-1", "0x", "99999999999999999999", "17179869184G"] {
            assert!(parse_size(bad).is_err(), "{bad:?} parsed");
        }
    }
}
