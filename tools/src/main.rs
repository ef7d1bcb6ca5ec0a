//! The `forge` binary: the command line over the recipes this repository ships.

fn main() -> std::process::ExitCode {
    forge_cli::main()
}
