//! `daxray man --out DIR`: write `daxray.1` and one `daxray-CMD.1` per subcommand (nested ones as
//! `daxray-vm-setup.1`), generated from the clap definitions, so the pages never drift from the
//! code. `tests/man_pages.rs` fails when the committed `man/` differs from [`render_all`].
//!
//! Each page: NAME, SYNOPSIS, DESCRIPTION (the command's long help: paragraphs, with the `--json`
//! output shape), OPTIONS (including the global ones), SUBCOMMANDS, EXIT STATUS and SEE ALSO.

use super::{Cli, Global};
use clap::CommandFactory;
use std::path::{Path, PathBuf};

/// Arguments of `man`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder to write the pages into.
    #[arg(long, default_value = "man")]
    pub out: PathBuf,
}

/// Render every page: (file name, roff bytes), the top page first.
pub fn render_all() -> crate::Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = Cli::command();
    // Building propagates the global options (--json, --raw, --offset, ...) into every
    // subcommand, so that each page lists them.
    cmd.build();
    let mut pages = Vec::new();
    render(&cmd, "daxray", &mut pages)?;
    Ok(pages)
}

/// Escape text for roff: backslashes, hyphens (so options stay `-` in every output device) and
/// a leading dot or quote (which would start a request).
fn roff_escape(s: &str) -> String {
    let mut out = s.replace('\\', "\\e").replace('-', "\\-");
    if out.starts_with('.') || out.starts_with('\'') {
        out.insert_str(0, "\\&");
    }
    out
}

/// Longest line in a code block before it is wrapped.
const CODE_WIDTH: usize = 76;

/// Wrap a long JSON shape at commas into lines of at most [`CODE_WIDTH`] characters
/// (continuation lines indented by two spaces).
fn wrap_code(code: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for (i, piece) in code.split_inclusive(',').enumerate() {
        if i > 0 && cur.len() + piece.len() > CODE_WIDTH && !cur.trim().is_empty() {
            lines.push(std::mem::take(&mut cur));
            cur.push_str("  ");
        }
        cur.push_str(piece);
    }
    if !cur.trim().is_empty() {
        lines.push(cur);
    }
    lines
}

/// One paragraph of help text as roff: text is filled; a long backticked JSON shape (starting with
/// `{` or `[`) becomes an indented, unfilled block; other backticked words are bold.
fn paragraph(para: &str) -> String {
    let text = para.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    let mut out = String::new();
    let mut line = String::new();
    let mut after_code = false;
    for (i, seg) in text.split('`').enumerate() {
        if i % 2 == 0 {
            // Punctuation that closed a sentence around a code block reads badly under the block.
            let seg = if after_code { seg.trim_start_matches(['.', ',', ';']).trim_start() } else { seg };
            after_code = false;
            line += &roff_escape(seg);
        } else if (seg.starts_with('{') || seg.starts_with('[')) && seg.len() > 50 {
            if !line.trim().is_empty() {
                out += &format!("{}\n", line.trim_end());
                out.push('\n');
            }
            line.clear();
            out += ".RS 4\n.nf\n";
            for l in wrap_code(seg) {
                out += &roff_escape(&l);
                out.push('\n');
            }
            out += ".fi\n.RE\n";
            after_code = true;
        } else {
            line += &format!("\\fB\\%{}\\fR", roff_escape(seg));
        }
    }
    let rest = line.trim();
    if !rest.is_empty() {
        // Text that continues after a code block must not start with a request character.
        let rest = if rest.starts_with('.') || rest.starts_with('\'') {
            format!("\\&{rest}")
        } else {
            rest.to_string()
        };
        out += &rest;
        out.push('\n');
    }
    out
}

/// DESCRIPTION from the long help: one roff paragraph per text paragraph.
fn description(cmd: &clap::Command) -> String {
    let text = cmd.get_long_about().or_else(|| cmd.get_about()).map(|s| s.to_string()).unwrap_or_default();
    let mut out = String::from(".SH DESCRIPTION\n");
    let mut first = true;
    for para in text.split("\n\n") {
        let para = para.trim();
        if para.is_empty() {
            continue;
        }
        if !first {
            out += ".PP\n";
        }
        first = false;
        out += &paragraph(para);
    }
    out
}

/// The sections every page ends with.
fn trailer(name: &str) -> String {
    let mut s = String::from(
        ".SH \"EXIT STATUS\"\n\
         .TP\n0\nSuccess: nothing wrong was found.\n\
         .TP\n1\nFindings: checksum errors, damaged structures that were skipped, lost claims or \
         MAP_SYNC violations.\n\
         .TP\n2\nUsage or I/O error, or an image that cannot be read at all. With \\fB\\-\\-json\\fR \
         the error is printed on standard output as {\"error\":\"...\",\"exit_code\":2}.\n\
         .SH \"SEE ALSO\"\n",
    );
    let mut refs: Vec<&str> = Vec::new();
    if name != "daxray" {
        refs.push("\\fBdaxray\\fR(1)");
    }
    refs.extend([
        "\\fBdebugfs\\fR(8)",
        "\\fBdumpe2fs\\fR(8)",
        "\\fBxfs_db\\fR(8)",
        "\\fBxfs_logprint\\fR(8)",
        "\\fBxfs_io\\fR(8)",
        "\\fBmmap\\fR(2)",
    ]);
    s += &refs.join(", ");
    s.push('\n');
    s
}

fn render(cmd: &clap::Command, name: &str, pages: &mut Vec<(String, Vec<u8>)>) -> crate::Result<()> {
    let cmd = cmd.clone().name(name.to_string()).bin_name(name.replace('-', " "));
    let man =
        clap_mangen::Man::new(cmd.clone()).date("").source(format!("daxray {}", env!("CARGO_PKG_VERSION")));
    let err = |e: std::io::Error| crate::Error::External(format!("man page {name}: {e}"));
    let mut buf = Vec::new();
    man.render_title(&mut buf).map_err(err)?;
    man.render_name_section(&mut buf).map_err(err)?;
    man.render_synopsis_section(&mut buf).map_err(err)?;
    buf.extend_from_slice(description(&cmd).as_bytes());
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut buf).map_err(err)?;
    }
    let subs: Vec<&clap::Command> =
        cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help").collect();
    if !subs.is_empty() {
        man.render_subcommands_section(&mut buf).map_err(err)?;
    }
    buf.extend_from_slice(trailer(name).as_bytes());
    pages.push((format!("{name}.1"), buf));
    for sub in subs {
        render(sub, &format!("{name}-{}", sub.get_name()), pages)?;
    }
    Ok(())
}

/// Write all pages into `dir`.
pub fn write_all(dir: &Path) -> crate::Result<usize> {
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
    let pages = render_all()?;
    for (name, bytes) in &pages {
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(|e| crate::Error::io(&p, e))?;
    }
    Ok(pages.len())
}

/// Run `man`.
pub fn run(a: &Args, _g: &Global) -> crate::Result<i32> {
    let n = write_all(&a.out)?;
    eprintln!("daxray: wrote {n} man pages into {}", a.out.display());
    Ok(0)
}
