//! `daxray info IMAGE`.

use super::{Global, output};
use crate::open::open;
use std::path::PathBuf;

/// Arguments of `info`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image file or block device.
    pub image: PathBuf,
}

/// Run `info`.
pub fn run(a: &Args, g: &Global) -> crate::Result<i32> {
    let o = open(&a.image, &g.open_options())?;
    let p = o.placement();
    let at = &p.location;
    let findings = o.findings();
    if g.json {
        output::print_json(&serde_json::json!({
            "image": p,
            "filesystem": o.fs.info(),
            "recovery": o.recovery,
            "findings": findings,
        }))?;
    } else {
        let mut rows: Vec<(String, String)> = vec![
            ("image".into(), format!("{} ({} bytes)", at.path, at.image_bytes)),
            (
                "namespace".into(),
                match &at.pmem {
                    Some(pm) => format!(
                        "{} (NVDIMM_PFN_INFO v{}, uuid {}, mode {}, align {}, dataoff {})",
                        pm.kind, pm.version, pm.uuid, pm.mode, pm.align, pm.dataoff
                    ),
                    None => format!("none ({})", at.found_by),
                },
            ),
            ("file system".into(), format!("{} at byte {}", p.fs, at.fs_offset)),
            ("recovery".into(), format!("{} ({})", o.recovery.kind, status(&o.recovery, g.raw))),
        ];
        if let serde_json::Value::Object(m) = &o.recovery.details {
            for (k, v) in m {
                tree(&mut rows, 1, k, v);
            }
        }
        if let serde_json::Value::Object(m) = o.fs.info() {
            // The same order on every file system: what it is, then the rest by name.
            let first = ["fs", "uuid", "label", "state"];
            for k in first.iter().filter(|k| m.contains_key(**k)) {
                tree(&mut rows, 0, k, &m[*k]);
            }
            for (k, v) in m.iter().filter(|(k, _)| !first.contains(&k.as_str())) {
                tree(&mut rows, 0, k, v);
            }
        }
        let s = output::aligned(&rows);
        output::write_stdout(s.as_bytes())?;
        output::print_findings(&findings);
    }
    Ok(output::exit_code(&findings))
}

/// Add `key` and its value to `rows` at `depth` (two spaces each): an object as a heading over
/// its fields, a list of objects one line each, anything else on its line. Times (fields named
/// `...time` and `lastcheck`, in seconds) are shown in UTC beside the number.
fn tree(rows: &mut Vec<(String, String)>, depth: usize, key: &str, v: &serde_json::Value) {
    use serde_json::Value;
    let pad = "  ".repeat(depth);
    // The superblock's own XFS counters, which the mount recomputes.
    let label = if key == "counters_on_disk" { "counters on disk (lazy)" } else { key };
    match v {
        Value::Object(m) if !m.is_empty() => {
            rows.push((format!("{pad}{label}"), String::new()));
            for (k, v) in m.iter().filter(|(k, _)| !(key == "counters_on_disk" && *k == "lazy")) {
                tree(rows, depth + 1, k, v);
            }
        }
        Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_object) => {
            rows.push((format!("{pad}{label}"), String::new()));
            for (i, e) in a.iter().enumerate() {
                rows.push((format!("{pad}  {i}"), output::value_text(e)));
            }
        }
        Value::Number(n) if key.ends_with("time") || key == "lastcheck" => {
            let shown = match n.as_i64() {
                Some(0) => "0 (never)".to_string(),
                Some(t) => format!("{t} ({} +0000)", output::utc_seconds(t)),
                None => n.to_string(),
            };
            rows.push((format!("{pad}{label}"), shown));
        }
        other => rows.push((format!("{pad}{label}"), output::value_text(other))),
    }
}

/// Whether recovery is needed and what became of it, in words.
pub fn status(r: &crate::open::RecoveryReport, raw: bool) -> String {
    let detail = |k: &str| r.details.get(k).filter(|v| !v.is_null());
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let needed = if r.needed { "needed; " } else { "" };
    if r.applied {
        return "needed; applied in memory".into();
    }
    if raw {
        return if r.needed { "needed; not applied because of --raw".into() } else { "not needed".into() };
    }
    if let Some(why) = detail("impossible") {
        return format!("{needed}impossible: {}", text(why));
    }
    if !r.needed {
        return "not needed".into();
    }
    if detail("refused").is_some() {
        return "needed; NOT applied: the kernel refuses it, the mount fails".into();
    }
    match detail("error") {
        Some(e) => format!("needed; NOT applied: {}", text(e)),
        None => "needed; NOT applied".into(),
    }
}
