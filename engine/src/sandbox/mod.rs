//! The sandbox every build step runs in: rootless, hermetic, cheap.
//!
//! [`run`] clones a child straight into new user, mount, pid, net, uts, ipc and
//! cgroup namespaces; it maps uid/gid 0 to the caller and moves fds, then becomes
//! init (pid 1): directly when the caller is single-threaded, else by re-executing
//! forge (`/proc/self/exe __forge-sandbox-helper`, async-signal-safe up to the exec,
//! so a multi-threaded caller is fine). Init builds the filesystem (read-only
//! overlay root, fresh /proc, minimal /dev, tmpfs /tmp and build dir, binds), pivots
//! into it, and spawns the builder vfork-style. The builder drops every capability,
//! enables Landlock and no_new_privs, refuses set-id chmods (seccomp), marks
//! inherited fds close-on-exec and execs with a cleared environment. The order of
//! operations, what is visible and the environment contract are in
//! docs/architecture.md.
//!
//! A binary that calls [`run`] must call [`enter_helper_if_requested`] first thing in
//! `main`.

mod affinity;
mod binfmt;
mod confine;
mod error;
mod helper;
mod init;
mod interactive;
mod mounts;
mod seccomp;
mod spawn;
mod spec;
mod supervise;
mod sys;
mod tty;
mod wire;

pub use error::SandboxError;
pub use spec::{
    Arch, Bind, Interactive, SandboxSpec, DEFAULT_BUILD_DIR, DEFAULT_HOSTNAME, DEFAULT_LOG_LIMIT, DEFAULT_PATH,
    HOMELESS,
};
pub use supervise::{
    cancel_runs_on_signals, interrupted, run, run_with, Cancel, Capture, Inherit, Outcome, OutputSink, Status,
};

/// When this process is a sandbox helper (forge re-executed by [`run`]), does the
/// helper's work and exits; otherwise returns at once. Call it first in `main`,
/// before any thread starts.
pub fn enter_helper_if_requested() {
    enter_helper_if(std::env::args_os().nth(1).as_deref());
}

/// [`enter_helper_if_requested`] given the process's first argument, for a `main`
/// that reads the arguments itself.
pub fn enter_helper_if(first_arg: Option<&std::ffi::OsStr>) {
    if first_arg.is_some_and(|a| a == helper::HELPER_ARG) {
        std::process::exit(helper::main());
    }
}
