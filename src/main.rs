//! The `daxray` command: a thin front over the library (see `daxray --help`).

fn main() {
    std::process::exit(daxray::cli::main());
}
