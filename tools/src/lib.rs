//! The forge command line as a library, so that a crate of private recipes gets
//! the same commands: parse arguments, call the engine, map errors to exit codes.

#![deny(missing_docs)]

mod cmd;
pub mod exit;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use forge_engine::registry::Registry;

const ABOUT: &str = "A hermetic, rootless, reproducible build engine for the AGNOS system image.";

const LONG_ABOUT: &str = "\
forge builds every package and the final system image from pinned sources inside
rootless Linux namespaces, into a content-addressed store, and writes the flashable
image bit-for-bit reproducibly.

The store lives in --store DIR, else $FORGE_STORE, else $XDG_DATA_HOME/forge
(~/.local/share/forge). Builds always see it as /forge/store.";

/// The `forge` command line: global options and one subcommand.
#[derive(Parser)]
#[command(name = "forge", version, about = ABOUT, long_about = LONG_ABOUT, after_long_help = exit::HELP)]
pub struct Cli {
    /// Physical root of the store [default: $FORGE_STORE, else $XDG_DATA_HOME/forge]
    #[arg(long, global = true, value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
// `defer`: a subcommand's arguments are built only when it is the one being run
// (about 70 000 instructions and many allocations fewer at every start, and
// `forge sandbox` starts once per sandbox). The nested enums do the same.
#[derive(Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Build recipes (or a derivation given as JSON) into the store
    #[command(long_about = BUILD_HELP)]
    Build(cmd::build::BuildArgs),
    /// List every derivation a recipe needs, with its hash, output path and state
    Show(cmd::build::ShowArgs),
    /// Explain why a recipe's output is not in the store: what changed since the last build
    Why(cmd::build::WhyArgs),
    /// Print the build log of a recipe, a derivation hash or an output path
    Log(cmd::build::LogArgs),
    /// Resolve a recipe's package worlds against their live repositories and write the lock files
    #[command(long_about = cmd::lock::LONG_ABOUT)]
    Lock(cmd::lock::LockArgs),
    /// Open the sandbox of a recipe's build step with a shell (or CMD), for debugging
    #[command(long_about = cmd::shell::LONG_ABOUT)]
    Shell(cmd::shell::ShellArgs),
    /// Copy every fixed-output input of a recipe into DIR, a mirror for offline builds
    Vendor(cmd::build::VendorArgs),
    /// Rebuild what a provenance record names in a fresh store; exit 0 only if bit-for-bit equal
    #[command(long_about = cmd::verify::LONG_ABOUT)]
    Verify(cmd::verify::VerifyArgs),
    /// List the recipes this forge knows
    List,
    /// Hash files and trees the way Nix does
    #[command(subcommand)]
    Hash(cmd::hash::HashCmd),
    /// Add to, inspect, verify and collect the store
    #[command(subcommand)]
    Store(cmd::store::StoreCmd),
    /// Write and inspect filesystem images: ext4, Android sparse, manifests
    #[command(subcommand)]
    Image(cmd::image::ImageCmd),
    /// Run a command in the build sandbox (debugging; needs no store)
    #[command(long_about = cmd::sandbox::LONG_ABOUT)]
    Sandbox(Box<cmd::sandbox::SandboxArgs>),
    /// Fetch a fixed-output file from mirrors or URLs, checking its hash
    Fetch(cmd::fetch::FetchArgs),
    /// Check out one commit of a git repository, without .git
    FetchGit(cmd::fetch_git::FetchGitArgs),
    /// Unpack an archive safely (tar, tar.gz/xz/bz2/zst, zip, deb, apk)
    Unpack(cmd::unpack::UnpackArgs),
    /// Read, verify and resolve Alpine packages (apk v2) and APKINDEX files
    #[command(subcommand)]
    Apk(cmd::apk::ApkCmd),
    /// Convert systemd units to OpenRC init scripts, cron lines and runlevel links
    #[command(subcommand)]
    Openrc(cmd::openrc::OpenrcCmd),
    /// Check ELF files against a root filesystem: interpreter, libraries, versioned symbols
    #[command(subcommand)]
    Abi(cmd::abi::AbiCmd),
    /// Compare two trees (store paths, directories, tarballs, ext4 images, manifests)
    #[command(long_about = cmd::diff::LONG_ABOUT)]
    Diff(cmd::diff::DiffArgs),
}

const BUILD_HELP: &str = "\
Build recipes (or a derivation given as JSON) into the store.

forge plans the recipe's graph of derivations, skips what the store already has,
and runs the rest in parallel job slots: downloads (mirrors first), in-process
builtins, and scripts in the sandbox. Each output is registered atomically; two
forge processes building the same recipe build each path once.

On success, output/<recipe> (or --out) links to the result and keeps it from
garbage collection. On failure, the summary lists each failed step with the end of
its log; `forge log RECIPE` prints a whole log.";

/// The error and its causes, each cause shown once: error types here embed their
/// source's text in their own message, so a cause already spelled out is skipped.
fn message(err: &anyhow::Error) -> String {
    let mut msg = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
    }
    msg
}

/// Runs the command line over the recipes this repository ships.
pub fn main() -> ExitCode {
    main_lazy(std::env::args_os().collect(), forge_recipes::registry)
}

/// [`main`] with the process's arguments given: for an entry point that bypasses
/// Rust's start (`no_main`) where std cannot learn them (musl).
pub fn main_from(args: Vec<std::ffi::OsString>) -> ExitCode {
    main_lazy(args, forge_recipes::registry)
}

/// Runs the command line over `registry`: the entry point for a crate of private
/// recipes, which gets the same commands as `forge`.
pub fn main_with(registry: Registry) -> ExitCode {
    main_lazy(std::env::args_os().collect(), move || registry)
}

/// Runs the command line, building the registry only for a command that reads
/// recipes: `forge sandbox` starts once per sandbox and needs none (declaring
/// forge's recipes is about 30 000 instructions and dozens of allocations).
fn main_lazy(args: Vec<std::ffi::OsString>, registry: impl FnOnce() -> Registry) -> ExitCode {
    // forge re-executes itself as the sandbox helper: that must happen before anything else.
    forge_engine::sandbox::enter_helper_if(args.get(1).map(|a| a.as_os_str()));
    let cli = match parse(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return exit::code(if e.use_stderr() { exit::USAGE } else { exit::OK });
        }
    };
    // Ctrl-C, SIGTERM and SIGHUP kill running sandboxes and start no new step.
    if let Err(e) = forge_engine::sandbox::cancel_runs_on_signals() {
        eprintln!("warning: cannot hook Ctrl-C: {e}");
    }
    match run(cli, registry) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", message(&err));
            exit::code(cmd::exit_code_for(&err))
        }
    }
}

/// `Cli::try_parse`, except that clap's command tree is not freed afterwards: the
/// process ends soon, and dropping the tree is ~60 000 instructions of `free`
/// (a fifth of the parse) at every start, `forge sandbox`'s included.
fn parse(args: Vec<std::ffi::OsString>) -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let mut command = std::mem::ManuallyDrop::new(Cli::command());
    let mut matches = command.try_get_matches_from_mut(args)?;
    Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut command))
}

fn run(cli: Cli, registry: impl FnOnce() -> Registry) -> anyhow::Result<ExitCode> {
    let store = || cmd::store::open_store(cli.store.clone());
    match cli.command {
        Command::Build(a) => cmd::build::build(&store()?, &registry(), a),
        Command::Show(a) => cmd::build::show(&store()?, &registry(), a),
        Command::Why(a) => cmd::build::why(&store()?, &registry(), a),
        Command::Log(a) => cmd::build::log(&store()?, &registry(), a),
        Command::Lock(a) => cmd::lock::lock(&registry(), a),
        Command::Shell(a) => cmd::shell::shell(&store()?, &registry(), a),
        Command::Vendor(a) => cmd::build::vendor(&store()?, &registry(), a),
        Command::Verify(a) => cmd::verify::verify(cli.store.clone(), &registry(), a),
        Command::List => cmd::build::list(&registry()),
        Command::Hash(c) => c.run(),
        Command::Store(c) => c.run(cli.store),
        Command::Image(c) => c.run(),
        Command::Sandbox(c) => c.run(),
        Command::Fetch(a) => a.run(),
        Command::FetchGit(a) => a.run(),
        Command::Unpack(a) => a.run(),
        Command::Apk(c) => c.run(),
        Command::Openrc(c) => c.run(),
        Command::Abi(c) => c.run(),
        Command::Diff(a) => a.run(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subcommand_definition_passes_clap_checks_including_deferred_ones() {
        // Deferred subcommands are only built when run; debug_assert builds them all,
        // so a bad definition fails here instead of in front of a user.
        <Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn exit_number_recovers_every_code() {
        for n in 0..=u8::MAX {
            assert_eq!(exit::number(exit::code(n)), n);
        }
    }
}
