//! The helper: forge re-executed (single-threaded, so fork is safe). It reads the
//! request, unshares the namespaces, maps uid/gid 0 to the caller, forks the
//! sandbox's init (pid 1 of the new pid namespace) and waits for it. On SIGTERM,
//! SIGINT or SIGHUP it kills init, which takes every process of the sandbox with it,
//! and exits only once they are all gone.

use std::io::Read;
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, getgid, getuid, ForkResult, Pid};

use super::init;
use super::wire::{Failure, Report, Request, Step};

/// argv[1] that makes the forge binary act as the sandbox helper.
pub const HELPER_ARG: &str = "__forge-sandbox-helper";

/// Signals the helper and init wait for (blocked, taken with sigwait).
pub(crate) fn watched_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGQUIT] {
        set.add(s);
    }
    set
}

/// The helper process's whole life; returns its exit code.
pub(crate) fn main() -> i32 {
    match run() {
        Ok(code) => code,
        Err(failure) => {
            Report::Failed(failure).send();
            125
        }
    }
}

fn run() -> Result<i32, Failure> {
    let req = read_request()?;
    let (uid, gid) = (getuid(), getgid());
    let flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWCGROUP;
    unshare(flags).map_err(|e| Failure::new(Step::Unshare, e))?;
    write_id_maps(uid.as_raw(), gid.as_raw())?;
    // Blocked before fork so that no signal slips between fork and init's sigwait.
    watched_signals().thread_block().map_err(|e| Failure::new(Step::Fork, e))?;
    // Init holds the read end; it sees EOF (hang-up) when this helper is gone.
    let (alive_r, alive_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Failure::new(Step::Fork, e))?;
    // SAFETY: this process is single-threaded (a fresh exec of forge), so the child may
    // run arbitrary code.
    match unsafe { fork() }.map_err(|e| Failure::new(Step::Fork, e))? {
        ForkResult::Child => {
            drop(alive_w);
            std::process::exit(init::main(req, alive_r))
        }
        ForkResult::Parent { child } => {
            drop(alive_r);
            let code = supervise(child);
            drop(alive_w);
            Ok(code)
        }
    }
}

/// Reads the JSON request from stdin, then points stdin at /dev/null.
fn read_request() -> Result<Request, Failure> {
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes).map_err(Failure::io(Step::Request, "stdin"))?;
    let req =
        serde_json::from_slice(&bytes).map_err(|e| Failure::new(Step::Request, Errno::EINVAL).detail(e.to_string()))?;
    let null = std::fs::File::open("/dev/null").map_err(Failure::io(Step::Request, "/dev/null"))?;
    nix::unistd::dup2(null.as_raw_fd(), 0).map_err(Failure::at(Step::Request, "/dev/null"))?;
    Ok(req)
}

/// uid and gid 0 inside are the caller outside; setgroups is denied, as the kernel
/// requires before an unprivileged gid_map.
fn write_id_maps(uid: u32, gid: u32) -> Result<(), Failure> {
    let files = [
        ("/proc/self/setgroups", "deny".to_owned()),
        ("/proc/self/uid_map", format!("0 {uid} 1")),
        ("/proc/self/gid_map", format!("0 {gid} 1")),
    ];
    for (file, line) in files {
        std::fs::write(file, line).map_err(Failure::io(Step::IdMap, file))?;
    }
    Ok(())
}

/// Waits for init; a termination signal kills it (and with it the whole pid
/// namespace). Returns once init is reaped, which the kernel does only after every
/// other process of the namespace has exited.
fn supervise(init: Pid) -> i32 {
    let signals = watched_signals();
    loop {
        match signals.wait() {
            Ok(Signal::SIGCHLD) => match waitpid(init, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => return code,
                Ok(WaitStatus::Signaled(..)) => return 1,
                Ok(_) => {}
                Err(_) => return 1,
            },
            Ok(_) => {
                let _ = kill(init, Signal::SIGKILL);
            }
            Err(_) => {}
        }
    }
}
