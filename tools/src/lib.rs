//! The forge command line as a library, so that a crate of private recipes gets
//! the same commands: parse arguments, call the engine, map errors to exit codes.

mod cmd;
pub mod exit;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

const ABOUT: &str = "A hermetic, rootless, reproducible build engine for the AGNOS system image.";

const LONG_ABOUT: &str = "\
forge builds every package and the final system image from pinned sources inside
rootless Linux namespaces, into a content-addressed store, and writes the flashable
image bit-for-bit reproducibly.

The store lives in --store DIR, else $FORGE_STORE, else $XDG_DATA_HOME/forge
(~/.local/share/forge). Builds always see it as /forge/store.";

#[derive(Parser)]
#[command(name = "forge", version, about = ABOUT, long_about = LONG_ABOUT, after_long_help = exit::HELP)]
pub struct Cli {
    /// Physical root of the store [default: $FORGE_STORE, else $XDG_DATA_HOME/forge]
    #[arg(long, global = true, value_name = "DIR")]
    pub store: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Hash files and trees the way Nix does
    #[command(subcommand)]
    Hash(cmd::hash::HashCmd),
    /// Read, verify and resolve Alpine packages (apk v2) and APKINDEX files
    #[command(subcommand)]
    Apk(cmd::apk::ApkCmd),
}

/// Runs the command line on this process's arguments.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return exit::code(if e.use_stderr() { exit::USAGE } else { exit::OK });
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            exit::code(cmd::exit_code_for(&err))
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Hash(c) => c.run(),
        Command::Apk(c) => c.run(),
    }
}
