//! `daxray man --out DIR`: write `daxray.1` and one `daxray-CMD.1` per subcommand.

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
    let cmd = Cli::command();
    let mut pages = Vec::new();
    render(&cmd, "daxray", &mut pages)?;
    Ok(pages)
}

fn render(cmd: &clap::Command, name: &str, pages: &mut Vec<(String, Vec<u8>)>) -> crate::Result<()> {
    let cmd = cmd.clone().name(name.to_string()).bin_name(name.replace('-', " "));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .date("")
        .render(&mut buf)
        .map_err(|e| crate::Error::External(format!("man page {name}: {e}")))?;
    pages.push((format!("{name}.1"), buf));
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
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
