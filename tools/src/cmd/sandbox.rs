//! `forge sandbox`: run a command in exactly the sandbox build steps get.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use forge_engine::sandbox::{self, Arch, Bind, Inherit, Interactive, SandboxSpec, Status};

pub const LONG_ABOUT: &str = "\
Runs CMD inside the sandbox forge builds in, with DIR as the read-only root. It is the
debugging entry point for build steps and needs no store.

Inside, CMD is uid 0 of a private user namespace (the caller outside), alone in its
pid namespace under a small init, with no network but a loopback interface, the
hostname `forge`, a read-only root, a fresh /proc, a minimal /dev (null zero full
random urandom tty, fd links, /dev/shm), writable tmpfs /tmp and /build, and only the
paths given with --ro and --rw. Landlock lets it write only to /tmp, the build
directory, the --rw paths and /dev; it has no capabilities and no_new_privs is set.

The environment is exactly: PATH, HOME=/homeless-shelter, TMPDIR=/tmp,
SOURCE_DATE_EPOCH=0, TZ=UTC, LANG and LC_ALL=C.UTF-8, TERM=dumb, FORGE_BUILD_CORES,
FORGE_BUILD_DIR, plus each --env (which may override them). stdin is /dev/null.

With --interactive (-i), CMD reads forge's stdin. When stdin is a terminal, CMD gets a
terminal of its own: a pty of a devpts instance private to the sandbox (/dev/pts,
/dev/ptmx), which forge relays to yours (raw mode while CMD runs; window size
changes follow), with TERM set to yours. Ctrl-C, Ctrl-Z and line editing then act
inside the sandbox. Your terminal itself is never handed in. When stdin is a file or
a pipe, its bytes are passed through and CMD sees EOF where it ends; Ctrl-C (SIGINT)
is forwarded to CMD instead of stopping forge.

Several --root options stack read-only layers with overlayfs, the first at the bottom.
Setuid and setgid bits are cleared from everything under the --rw paths afterwards.
With --arch aarch64 on an x86_64 host, programs run under qemu-user: forge registers
qemu-aarch64-static inside the sandbox (Linux 6.7+) or uses the host's handler
registered with the F flag.

Examples:
  forge sandbox --root ./sysroot -- /bin/sh -c 'id; hostname'
  forge sandbox --root ./sysroot --ro ./src:/src --rw ./out:/out -- make -C /src install
  forge sandbox --root ./arm64-sysroot --arch aarch64 -- /bin/uname -m
  forge sandbox --root ./sysroot -i -- /bin/sh

Exit status: CMD's own; 128+N when a signal N killed it; 124 when --timeout passed; 130
when interrupted. When the sandbox cannot start: 3 for bad arguments (a missing path, a
command not found), 4 when this machine cannot sandbox (the message says why and how
to fix it).";

#[derive(Args)]
pub struct SandboxArgs {
    /// Read-only root folder; repeat to stack layers (first = bottom)
    #[arg(long = "root", value_name = "DIR", required = true)]
    roots: Vec<PathBuf>,
    /// Host path visible read-only at INSIDE (HOST alone: same path)
    #[arg(long = "ro", value_name = "HOST:INSIDE")]
    ro: Vec<String>,
    /// Host path visible read-write at INSIDE (HOST alone: same path)
    #[arg(long = "rw", value_name = "HOST:INSIDE")]
    rw: Vec<String>,
    /// Extra environment variable for CMD
    #[arg(long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// Kill everything after this many seconds
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,
    /// Architecture of the programs in the root
    #[arg(long, value_name = "ARCH", value_parser = ["x86_64", "aarch64"])]
    arch: Option<String>,
    /// Working directory inside [default: the build directory]
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// Hostname inside
    #[arg(long, default_value = sandbox::DEFAULT_HOSTNAME)]
    hostname: String,
    /// Host folder to use as the build directory /build (else a private tmpfs)
    #[arg(long, value_name = "DIR")]
    build_dir: Option<PathBuf>,
    /// Keep --build-dir when CMD fails (it is removed otherwise)
    #[arg(long, requires = "build_dir")]
    keep_failed: bool,
    /// Also copy CMD's output to this file
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Bytes of output the log keeps at most
    #[arg(long, value_name = "BYTES", default_value_t = sandbox::DEFAULT_LOG_LIMIT)]
    log_limit: u64,
    /// Pass stdin through to CMD, with a terminal of its own when stdin is a terminal
    #[arg(short, long)]
    interactive: bool,
    /// The command and its arguments
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

impl SandboxArgs {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        // Ctrl-C and SIGTERM already cancel runs: the CLI's main hooked them.
        let spec = self.spec()?;
        let outcome = sandbox::run(&spec, &mut Inherit)?;
        if let Some(dir) = &outcome.kept_build_dir {
            eprintln!("forge: build directory kept at {}", dir.display());
        }
        if outcome.log_truncated {
            eprintln!("forge: the log reached {} bytes and was truncated", spec.log_limit);
        }
        match outcome.status {
            Status::TimedOut => eprintln!("forge: timed out after {:?}; every process was killed", outcome.duration),
            Status::Interrupted => eprintln!("forge: interrupted; every process was killed"),
            _ => {}
        }
        Ok(ExitCode::from((outcome.status.shell_code() & 0xff) as u8))
    }

    fn spec(&self) -> anyhow::Result<SandboxSpec> {
        let mut spec = SandboxSpec::new(PathBuf::new(), self.command.clone());
        spec.root_layers = self.roots.iter().map(|r| absolute(r)).collect::<anyhow::Result<_>>()?;
        spec.ro_binds = self.binds(&self.ro)?;
        spec.rw_binds = self.binds(&self.rw)?;
        for kv in &self.env {
            let (k, v) = kv.split_once('=').with_context(|| format!("--env {kv}: expected K=V"))?;
            spec.env.insert(k.to_owned(), v.to_owned());
        }
        if let Some(secs) = self.timeout {
            spec.timeout = Some(Duration::try_from_secs_f64(secs).with_context(|| format!("--timeout {secs}"))?);
        }
        if let Some(arch) = &self.arch {
            spec.arch = arch.parse::<Arch>()?;
        }
        spec.cwd.clone_from(&self.cwd);
        spec.hostname.clone_from(&self.hostname);
        spec.build_dir_host = self.build_dir.as_deref().map(absolute).transpose()?;
        spec.keep_failed = self.keep_failed;
        spec.log.clone_from(&self.log);
        spec.log_limit = self.log_limit;
        spec.interactive = self.interactive.then(Interactive::for_stdin);
        Ok(spec)
    }

    fn binds(&self, args: &[String]) -> anyhow::Result<Vec<Bind>> {
        args.iter()
            .map(|a| {
                let mut bind: Bind = a.parse()?;
                bind.host = absolute(&bind.host)?;
                Ok(bind)
            })
            .collect()
    }
}

/// Host paths may be given relative to the current directory.
fn absolute(p: &std::path::Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("cannot resolve {}", p.display()))
}
