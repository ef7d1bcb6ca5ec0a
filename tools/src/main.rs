//! The `forge` binary: the command line over the recipes this repository ships.

fn main() -> std::process::ExitCode {
    // forge re-executes itself as the sandbox helper: that must happen before anything else.
    forge_engine::sandbox::enter_helper_if_requested();
    forge_cli::main()
}
