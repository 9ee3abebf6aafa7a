//! `daxray ag IMAGE AGNO`: an XFS AG's AGF, AGI and AGFL field by field, named as xfs_db names
//! them.

use super::{Global, output};
use crate::open::open;
use std::path::PathBuf;

/// Arguments of `ag`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image file or block device (XFS).
    pub image: PathBuf,
    /// AG number.
    pub agno: u32,
    /// Only this header.
    #[arg(long, value_parser = ["agf", "agi", "agfl"])]
    pub header: Option<String>,
}

/// Run `ag`.
pub fn run(a: &Args, g: &Global) -> crate::Result<i32> {
    let o = open(&a.image, &g.open_options())?;
    if o.fs.kind() != crate::FsKind::Xfs {
        return Err(crate::Error::Usage(format!(
            "ag shows XFS AG headers; this is {} (see `daxray groups`)",
            o.fs.kind()
        )));
    }
    // The headers as the view holds them (the XFS model adds nothing over the view's bytes).
    let x = crate::xfs::Xfs::open(o.view.clone())?;
    let mut views = x.ag_headers(a.agno)?;
    if let Some(h) = &a.header {
        views.retain(|v| v.header == h);
    }
    let mut findings = o.findings();
    for f in crate::FileSystem::findings(&x) {
        if !findings.contains(&f) {
            findings.push(f);
        }
    }
    if g.json {
        let rows: Vec<_> = views
            .iter()
            .map(|v| {
                let fields: serde_json::Map<String, serde_json::Value> =
                    v.fields.iter().map(|(k, x)| (k.clone(), serde_json::json!(x))).collect();
                serde_json::json!({ "header": v.header, "agno": v.agno, "daddr": v.daddr, "fields": fields })
            })
            .collect();
        output::print_json(&serde_json::json!({ "headers": rows, "findings": findings }))?;
    } else {
        let mut s = String::new();
        for (k, v) in views.iter().enumerate() {
            if k > 0 {
                s.push('\n');
            }
            s += &format!("{} {} (daddr {}):\n", v.header, v.agno, v.daddr);
            for (name, value) in &v.fields {
                s += &format!("{name} = {value}\n");
            }
        }
        output::write_stdout(s.as_bytes())?;
        output::print_findings(&findings);
    }
    Ok(output::exit_code(&findings))
}
