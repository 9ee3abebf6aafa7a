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

/// The civil date and time in UTC of `sec` seconds since the epoch: (year, month, day, hour,
/// minute, second), by days-from-civil inverted (proleptic Gregorian calendar).
fn civil(sec: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = sec.div_euclid(86_400);
    let rem = sec.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // OK to cast: each is bounded by its calendar unit.
    (year, month as u32, day as u32, (rem / 3600) as u32, (rem / 60 % 60) as u32, (rem % 60) as u32)
}

/// A time as `stat(1)` prints it in UTC: `2026-12-07 23:54:41.123456789 +0000`.
pub fn utc(sec: i64, nsec: u32) -> String {
    format!("{}.{nsec:09} +0000", utc_seconds(sec))
}

/// A time to the second in UTC: `2026-12-07 23:54:41`.
pub fn utc_seconds(sec: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(sec);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// A JSON value as a text field shows it: strings without quotes, lists joined with ", "
/// ("none" when empty), null as "-".
pub fn value_text(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Array(a) if a.is_empty() => "none".into(),
        Value::Array(a) => a.iter().map(value_text).collect::<Vec<_>>().join(", "),
        Value::Object(m) => {
            m.iter().map(|(k, v)| format!("{k} {}", value_text(v))).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

/// `key: value` lines with the values in one column; a row with an empty value is a heading.
pub fn aligned(rows: &[(String, String)]) -> String {
    let width = rows.iter().filter(|r| !r.1.is_empty()).map(|r| r.0.chars().count() + 1).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in rows {
        if v.is_empty() {
            out.push_str(&format!("{k}:\n"));
        } else {
            out.push_str(&format!("{:<width$} {v}\n", format!("{k}:")));
        }
    }
    out
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
    use super::{parse_size, utc};

    #[test]
    fn times_print_in_utc() {
        // Values from `TZ=UTC date -d @N '+%Y-%m-%d %H:%M:%S'`.
        for (sec, want) in [
            (0, "1970-01-01 00:00:00"),
            (951_782_400, "2000-02-29 00:00:00"),
            (1_795_903_370, "2026-11-28 22:02:50"),
            (-1, "1969-12-31 23:59:59"),
            (4_102_444_800, "2100-01-01 00:00:00"),
        ] {
            assert_eq!(utc(sec, 5), format!("{want}.000000005 +0000"), "{sec}");
        }
    }

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
