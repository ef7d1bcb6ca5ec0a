//! `forge shell RECIPE`: open the sandbox of a recipe's run step, for debugging.

use std::process::ExitCode;

use clap::Args;
use forge_engine::build;
use forge_engine::registry::Registry;
use forge_engine::sandbox::{self, Cancel, Inherit, Interactive, Status};
use forge_engine::shell::{self, Shell};
use forge_store::Store;

use super::build::{declare, print_failures, ArchArg, FetchArgs};
use crate::{exit, progress};

/// `forge shell --help`.
pub const LONG_ABOUT: &str = "\
Opens the sandbox a recipe's run step builds in, with a shell (or CMD) instead of the
step's script, for debugging a recipe.

forge first plans the recipe and realises the step's inputs as `forge build` would
(downloads from mirrors or upstream, dependencies built in the sandbox), then opens
exactly what the step's builder gets: its sysroot layers as the read-only root, every
input read-only at its /forge/store path, the step's environment ($out, $src, ...),
each output writable at its store path. Three things differ, for debugging:

  - CMD (default /bin/sh of the sysroot) reads your stdin. When stdin is a terminal
    it gets a terminal of its own, a pty of the sandbox's private /dev/pts relayed to
    yours, with your TERM; Ctrl-C, Ctrl-Z and line editing act inside. A pipe or file
    is passed through (`forge shell hello < debug.sh`).
  - The step's source ($src, when it is a tree) is already copied, writable, to
    /build/src, where CMD starts; the step's script is /build/.forge-script. To replay
    the whole step: cd /build && rm -rf src && sh -e .forge-script
  - Nothing is kept: $out and /build live in a scratch folder of the store that is
    removed when CMD exits. Nothing is registered.

A recipe that is not itself a run step (a download, a builtin such as a merge or an
image) cannot be opened: the error lists the run steps it needs; pick one with
--step NAME.

Examples:
  forge shell hello                      # a shell in hello's build, in /build/src
  forge shell hello -- sh -c './configure --prefix=/usr && make -j4'
  forge shell RECIPE --step hello-2.10   # a run step inside a larger recipe
  forge shell hello --arch aarch64       # under qemu-user on an x86_64 host

Exit status: CMD's own (128+N when signal N killed it; 130 when forge was
interrupted). Before CMD runs: 1 when an input failed to build, 3 for an unknown
recipe or step or a step that is not a run step, 4 when this machine cannot sandbox.";

/// Arguments of `forge shell`.
#[derive(Args)]
pub struct ShellArgs {
    /// The recipe whose run step to open (`forge list` shows them)
    recipe: String,
    /// Open the run step of this name in the recipe's closure instead of the recipe itself
    #[arg(long, value_name = "NAME")]
    step: Option<String>,
    /// Steps run at once while building the inputs [default: the number of cores]
    #[arg(short, long, value_name = "N")]
    jobs: Option<usize>,
    #[command(flatten)]
    fetch: FetchArgs,
    #[command(flatten)]
    arch: ArchArg,
    /// The command to run instead of /bin/sh, with its arguments
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

/// Runs `forge shell`.
pub fn shell(store: &Store, registry: &Registry, a: ShellArgs) -> anyhow::Result<ExitCode> {
    let (forge, targets) = declare(registry, std::slice::from_ref(&a.recipe), &a.arch)?;
    let step = shell::select(&forge, targets[0], a.step.as_deref())?;
    let node = forge.node(step);
    if !node.deps.is_empty() {
        let opts = super::build::options(&a.fetch, a.jobs)?;
        let report = {
            let display = progress::for_terminal(false);
            build::build(store, &forge, &node.deps, &opts, display.as_ref(), &sandbox::interrupted)?
        };
        if !report.success() {
            print_failures(&forge, &report);
            eprintln!("forge: the inputs of {} could not be built; no shell was opened", node.drv.name);
            return Ok(exit::code(exit::FAILED));
        }
    }
    if sandbox::interrupted() {
        return Ok(ExitCode::from(Status::Interrupted.shell_code() as u8));
    }
    let command = if a.command.is_empty() { vec!["/bin/sh".to_owned()] } else { a.command };
    let session = Shell::prepare(store, node, command, Interactive::for_stdin())?;
    let source = if session.source().is_some() { format!("; source in {}", shell::SOURCE_DIR) } else { String::new() };
    eprintln!(
        "forge: in the sandbox of {}{source}; its script is {}; nothing written is kept",
        node.drv.name,
        shell::SCRIPT_FILE
    );
    let outcome = session.run(&mut Inherit, &Cancel::default())?;
    match outcome.status {
        Status::TimedOut => eprintln!("forge: timed out; every process was killed"),
        Status::Interrupted => eprintln!("forge: interrupted; every process was killed"),
        _ => {}
    }
    Ok(ExitCode::from((outcome.status.shell_code() & 0xff) as u8))
}
