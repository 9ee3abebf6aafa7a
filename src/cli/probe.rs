//! `daxray probe [PATH]`: the MAP_SYNC flag semantics of the running kernel on a file.

use super::Global;
use super::output;
use std::path::PathBuf;

/// Arguments of `probe`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A file (at least 4 KiB; never modified) or a directory (a scratch file is made and
    /// removed). Default: the current directory.
    #[arg(default_value = ".")]
    pub path: PathBuf,
}

/// Run `probe`: exit 0 when every expectation of the MAP_SYNC series held, 1 otherwise.
pub fn run(a: &Args, g: &Global) -> crate::Result<i32> {
    let r = crate::agent::probe::probe(&a.path)?;
    let all_ok = r.checks.iter().all(|(_, ok)| *ok);
    if g.json {
        output::print_json(&r)?;
    } else {
        let mut s = String::new();
        s.push_str(&format!("path:    {}\nkernel:  {}\n", r.path, r.kernel));
        s.push_str(&format!(
            "statx:   {}\n",
            match r.statx_dax {
                Some(true) => "STATX_ATTR_DAX set (DAX file)",
                Some(false) => "STATX_ATTR_DAX clear (not DAX)",
                None => "STATX_ATTR_DAX not reported by this kernel/file system",
            }
        ));
        for m in [&r.validate_sync, &r.shared_sync, &r.validate_unknown, &r.validate_plain] {
            let what = if m.accepted {
                match m.vmflags_sf {
                    Some(true) => "accepted, VmFlags has sf".to_string(),
                    Some(false) => "accepted, VmFlags without sf".to_string(),
                    None => "accepted (mapping not found in smaps)".to_string(),
                }
            } else {
                format!("refused: {}", m.errno.as_deref().unwrap_or("?"))
            };
            s.push_str(&format!("mmap {:<32} {what}\n", m.flags));
        }
        s.push_str(&format!("MAP_SYNC works here: {}\n", if r.map_sync_works { "yes" } else { "no" }));
        for (c, ok) in &r.checks {
            s.push_str(&format!("  [{}] {c}\n", if *ok { "ok" } else { "FAIL" }));
        }
        output::write_stdout(s.as_bytes())?;
    }
    Ok(i32::from(!all_ok))
}
