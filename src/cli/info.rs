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
        let mut s = String::new();
        s += &format!("image:        {} ({} bytes)\n", at.path, at.image_bytes);
        match &at.pmem {
            Some(pm) => {
                s += &format!(
                    "namespace:    {} (NVDIMM_PFN_INFO v{}, uuid {}, mode {}, align {}, dataoff {})\n",
                    pm.kind, pm.version, pm.uuid, pm.mode, pm.align, pm.dataoff
                );
            }
            None => s += &format!("namespace:    none ({})\n", at.found_by),
        }
        s += &format!("file system:  {} at byte {}\n", p.fs, at.fs_offset);
        s += &format!("recovery:     {} ({})\n", o.recovery.kind, status(&o.recovery, g.raw));
        if !o.recovery.details.is_null() {
            s += &format!("              {}\n", o.recovery.details);
        }
        if let serde_json::Value::Object(m) = o.fs.info() {
            for (k, v) in m {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                s += &format!("{:<14}{}\n", format!("{k}:"), v);
            }
        }
        output::write_stdout(s.as_bytes())?;
        output::print_findings(&findings);
    }
    Ok(output::exit_code(&findings))
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
