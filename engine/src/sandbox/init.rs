//! The sandbox's init: pid 1 of the new namespaces, started by [`super::spawn`]
//! (a fork of forge, or a re-exec of it) with forge's parent-death signal armed. It builds the filesystem,
//! sets the hostname and loopback, spawns the builder, then only reaps children and
//! forwards signals. When the builder exits, init kills and reaps whatever it left
//! running, reports the builder's status and exits.

use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{sethostname, Pid};

use std::os::fd::{AsFd, AsRawFd};

use super::tty::{self, Pty};
use super::wire::{Failure, Report, Request, Step, CHANNEL_FD};
use super::{affinity, confine, mounts, sys};

/// Signals init waits for (blocked, taken with sigwait).
fn watched_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGQUIT] {
        set.add(s);
    }
    set
}

/// `ignored`: which of signals 1-31 this process ignores (bit n-1 for signal n), when
/// known; the builder resets those (see [`confine::spawn_builder`]).
pub(crate) fn main(req: &Request, ignored: Option<u64>) -> i32 {
    let report = run(req, ignored).unwrap_or_else(Report::Failed);
    report.send();
    // Close the pipes now: at exit the kernel would release them only after tearing
    // down the mounts (RCU grace periods), and forge would wait for that EOF.
    sys::close_all_fds();
    0
}

fn run(req: &Request, ignored: Option<u64>) -> Result<Report, Failure> {
    receive_watched_signals()?;
    // forge started us with every signal blocked: wait for exactly the watched ones.
    watched_signals().thread_set_mask().map_err(|e| Failure::new(Step::Fork, e))?;
    mounts::enter_new_root(req)?;
    sethostname(&req.spec.hostname).map_err(|e| Failure::new(Step::Hostname, e))?;
    sys::loopback_up().map_err(|e| Failure::new(Step::Loopback, e))?;
    let pty = interactive_stdin(req)?;
    // Init keeps no power once the builder runs: nothing can borrow it via ptrace.
    // Set before the builder starts, which shares init's memory until it execs.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let builder = confine::spawn_builder(req, pty.as_ref().map(|p| p.slave.as_raw_fd()), ignored)?;
    // The relay is over: init waits on whichever CPU the builder's exit wakes it.
    if let Some(cpus) = affinity::mask_of(&req.cpus) {
        affinity::restore(&cpus);
    }
    if let Some(pty) = pty {
        hand_over(pty)?;
    }
    sys::clear_capability_sets().map_err(|e| Failure::new(Step::Capabilities, e))?;
    Ok(reap_until_exit(builder))
}

/// An interactive run's stdin. With a terminal: a new pty of the sandbox's devpts,
/// whose slave the builder takes and whose master goes to forge once it started.
/// Without: the channel itself, made read-only (the builder reads what forge relays
/// and cannot write back). Builds keep /dev/null.
fn interactive_stdin(req: &Request) -> Result<Option<Pty>, Failure> {
    match &req.spec.interactive {
        None => Ok(None),
        Some(i) if i.tty => tty::open_pty(req.window).map(Some),
        Some(_) => {
            let channel = Failure::at(Step::Terminal, "the stdin channel");
            nix::sys::socket::shutdown(CHANNEL_FD, nix::sys::socket::Shutdown::Write).map_err(channel)?;
            nix::unistd::dup2(CHANNEL_FD, 0).map_err(Failure::at(Step::Terminal, "the stdin channel"))?;
            Ok(None)
        }
    }
}

/// Sends the pty's master to forge and lets go of both ends: once the builder and
/// everything it started are gone, forge's reads of the master end (EIO).
fn hand_over(pty: Pty) -> Result<(), Failure> {
    tty::send_fd(CHANNEL_FD, pty.master.as_fd()).map_err(Failure::at(Step::Terminal, "sending the pty to forge"))?;
    nix::unistd::close(CHANNEL_FD).map_err(Failure::at(Step::Terminal, "the channel"))
}

extern "C" fn ignore(_: libc::c_int) {}

/// Pid 1 gets only the signals it has handlers for: install no-op handlers so the
/// blocked signals queue up for sigwait.
fn receive_watched_signals() -> Result<(), Failure> {
    let action = SigAction::new(SigHandler::Handler(ignore), SaFlags::SA_RESTART, SigSet::empty());
    for sig in watched_signals().iter() {
        // SAFETY: the handler does nothing, so it is async-signal-safe.
        unsafe { sigaction(sig, &action) }.map_err(|e| Failure::new(Step::Fork, e))?;
    }
    Ok(())
}

/// Reaps every child until the builder exits; forwards termination signals to it.
fn reap_until_exit(builder: Pid) -> Report {
    let signals = watched_signals();
    loop {
        match signals.wait() {
            Ok(Signal::SIGCHLD) => {
                if let Some(report) = reap(builder) {
                    kill_the_rest();
                    return report;
                }
            }
            Ok(sig) => {
                let _ = kill(builder, sig);
            }
            Err(_) => {}
        }
    }
}

/// Kills and reaps every other process of the namespace, so that when forge reads the
/// report nothing of the sandbox runs any more (forge need not wait for init's own,
/// slower, teardown of the namespaces).
fn kill_the_rest() {
    loop {
        let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
        match waitpid(Pid::from_raw(-1), None) {
            Err(nix::errno::Errno::ECHILD) => return,
            Err(nix::errno::Errno::EINTR) | Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// Reaps all exited children; the builder's status when it is among them.
fn reap(builder: Pid) -> Option<Report> {
    let mut report = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == builder => report = Some(Report::Exited(code)),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == builder => report = Some(Report::Signaled(sig as i32)),
            Ok(WaitStatus::StillAlive) | Err(_) => return report,
            Ok(_) => {}
        }
    }
}
