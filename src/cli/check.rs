//! `daxray check IMAGE --claims FILE`: the offline forensic check of a crash image.
//!
//! Opens the image (finding the fsdax window), recovers the journal/log in memory (unless
//! `--raw`), and gives each claim a verdict with evidence. Exit code 1 when any claim is lost
//! or a line of the claims file is not a claim (reported as a finding; the others are checked);
//! 2 when the claims file holds no claim.
//!
//! JSON output (`--json`): `{"image":{placement},"recovery":{kind,needed,applied,...},
//! "verdicts":[{"claim":{...},"verdict":"durable|lost-hole|lost-unwritten|lost-uncommitted|
//! lost-beyond-eof|data-differs|lost-by-recovery|missing-file|unreadable","evidence":{...}}],
//! "summary":{"claims":N,"durable":N,"lost":N,"by_verdict":{...}},"findings":[...]}`.

use super::{Global, output};
use crate::check::{Verdict, check_model, mark_lost_by_recovery, read_claims_lenient, summarize};
use crate::open::{Model, open_then};
use std::path::PathBuf;

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The crash image (file or block device; an fsdax namespace is found by itself).
    pub image: PathBuf,
    /// The claims: JSON Lines, one `{"path","offset","len","sha256"[,"ino","seq"]}` a line.
    #[arg(long, value_name = "FILE")]
    pub claims: PathBuf,
}

/// Run `check`.
pub fn run(a: &Args, g: &Global) -> crate::Result<i32> {
    let file = read_claims_lenient(&a.claims)?;
    let name = a.claims.display();
    if file.claims.is_empty() {
        let why = match file.bad.first() {
            Some((line, e)) => {
                format!("no line is a claim ({} bad, the first at line {line}: {e})", file.bad.len())
            }
            None => "it holds no claim (only blank lines and comments)".into(),
        };
        return Err(crate::Error::Usage(format!("{name}: nothing to check: {why}")));
    }
    let claims = file.claims;
    // A bad line is reported and the others are checked.
    let bad: Vec<crate::Finding> = file
        .bad
        .iter()
        .map(|(line, e)| {
            crate::Finding::new(
                crate::error::Severity::Error,
                "claims file",
                None,
                None,
                format!("{name}: line {line}: {e}; not checked"),
            )
        })
        .collect();
    // The claims are checked while the journal's checksums are still being verified; if one
    // fails, everything runs again with the kernel's outcome (see `open_then`).
    let opts = g.open_options();
    let (o, mut verdicts) = open_then(&a.image, &opts, |m| check_model(m, &claims))?;
    // Only a view that drops records at a torn log sector has claims to look at again.
    mark_lost_by_recovery(&mut verdicts, &o.recovery, o.image.fs_bytes.clone(), o.image.placement.fs, &opts);
    let placement = o.placement().clone();
    let model = Model { view: o.view, recovery: o.recovery, fs: o.fs };
    let mut findings = bad.clone();
    findings.extend(model.recovery.findings.iter().cloned());
    findings.extend(model.fs.findings());
    let lost = verdicts.iter().filter(|v| v.verdict.is_lost()).count();
    let by: serde_json::Map<String, serde_json::Value> =
        summarize(&verdicts).into_iter().map(|(k, n)| (k.name().to_string(), n.into())).collect();
    if g.json {
        let v = serde_json::json!({
            "image": placement,
            "recovery": model.recovery,
            "verdicts": verdicts,
            "summary": { "claims": verdicts.len(), "durable": verdicts.len() - lost, "lost": lost, "by_verdict": by },
            "findings": findings,
        });
        output::print_json(&v)?;
    } else {
        output::write_stdout(render(&verdicts).as_bytes())?;
        let parts: Vec<String> = by.iter().map(|(k, n)| format!("{n} {k}")).collect();
        output::write_stdout(
            format!(
                "{} claim(s): {} durable, {} lost ({}); recovery: {} ({})\n",
                verdicts.len(),
                verdicts.len() - lost,
                lost,
                parts.join(", "),
                model.recovery.kind,
                super::info::status(&model.recovery, g.raw)
            )
            .as_bytes(),
        )?;
        output::print_findings(&findings);
    }
    // The process ends here: dropping the recovered view (tens of thousands of replaced
    // blocks) is wasted work.
    std::mem::forget(model);
    Ok(i32::from(lost > 0 || !bad.is_empty()))
}

/// The text table of verdicts.
pub fn render(verdicts: &[Verdict]) -> String {
    let mut s =
        format!("{:<6} {:<24} {:>12} {:>8}  {:<17} evidence\n", "seq", "path", "offset", "len", "verdict");
    for v in verdicts {
        let c = &v.claim;
        let seq = c.seq.map(|q| q.to_string()).unwrap_or_else(|| "-".into());
        s.push_str(&format!(
            "{:<6} {:<24} {:>12} {:>8}  {:<17} {}\n",
            seq,
            c.path,
            c.offset,
            c.len,
            v.verdict.name(),
            v.evidence.detail
        ));
    }
    s
}
