//! The builder's last steps before exec, inside the finished sandbox: default
//! signals, umask 022, the working directory, no capabilities, Landlock (which also
//! sets no_new_privs), no set-id chmod (seccomp), every inherited fd close-on-exec, a
//! cleared environment.
//!
//! Init spawns the builder as posix_spawn does: everything that allocates (argv,
//! environment, the Landlock ruleset, the seccomp program, the PATH candidates) is
//! made in init beforehand, then a vfork-like clone shares init's memory and the
//! child only makes system calls on those buffers until it execs. No page tables are
//! copied and no copy-on-write fault is taken, which a fork would cost on every run.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use landlock::{path_beneath_rules, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreatedAttr, ABI};
use nix::errno::Errno;
use nix::unistd::Pid;

use super::spawn::{early_failure, EARLY_CWD, EARLY_EXEC, EARLY_TERMINAL};
use super::wire::{Failure, Request, Step};
use super::{affinity, seccomp, sys};

/// Everything the child needs between clone and exec, made by init.
struct Prepared {
    cwd: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
    /// The paths execve tries in order (argv[0] itself, or it under each PATH dir).
    candidates: Vec<CString>,
    /// A Landlock ruleset with its rules, enforced by the child on itself.
    ruleset: OwnedFd,
    filter: Vec<libc::sock_filter>,
    /// The slave of the sandbox's pty in an interactive run with a terminal: the
    /// builder's controlling terminal and its stdin, stdout and stderr.
    terminal: Option<RawFd>,
    /// The caller's CPU mask, given back to the builder just before it execs.
    cpus: Option<nix::sched::CpuSet>,
    /// The signals the child sets back to SIG_DFL (bit n-1 for signal n).
    reset: u64,
}

/// Starts the builder: prepared here, confined and exec'd in a vfork-like child (in
/// a new session on `terminal`, the slave of the sandbox's pty, when the run has
/// one). A failure after the clone is reported by the child on the status fd.
/// `ignored` says which of signals 1-31 init ignores, when known (see
/// [`signals_to_reset`]).
pub(crate) fn spawn_builder(req: &Request, terminal: Option<RawFd>, ignored: Option<u64>) -> Result<Pid, Failure> {
    let prepared = prepare(req, terminal, ignored)?;
    let ptrs = |v: &[CString]| v.iter().map(|s| s.as_ptr()).chain([std::ptr::null()]).collect::<Vec<_>>();
    let (argv, env) = (ptrs(&prepared.argv), ptrs(&prepared.env));
    let plan = Plan { prepared: &prepared, argv: &argv, env: &env };
    extern "C" fn trampoline(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: arg is the &Plan below, alive while init waits (CLONE_VFORK).
        unsafe { confine_and_exec(&*(arg as *const Plan)) }
    }
    let stack = sys::ChildStack::new().map_err(|e| Failure::new(Step::Fork, e))?;
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
    // SAFETY: the child runs `trampoline` on `stack`, reads only `plan`, and ends in
    // execve or _exit; CLONE_VFORK keeps both alive until then. Init blocks its
    // watched signals, so no handler runs in the child before it resets them.
    let pid = unsafe { libc::clone(trampoline, stack.top(), flags, &plan as *const Plan as *mut libc::c_void) };
    if pid < 0 {
        return Err(Failure::new(Step::Fork, Errno::last()));
    }
    drop(stack);
    Ok(Pid::from_raw(pid))
}

/// Borrowed views of [`Prepared`] with the NULL-terminated pointer arrays.
struct Plan<'a> {
    prepared: &'a Prepared,
    argv: &'a [*const libc::c_char],
    env: &'a [*const libc::c_char],
}

fn prepare(req: &Request, terminal: Option<RawFd>, ignored: Option<u64>) -> Result<Prepared, Failure> {
    let spec = &req.spec;
    let environment = spec.environment(req.cores);
    let env = environment.iter().map(|(k, v)| c_string(format!("{k}={v}"))).collect::<Result<_, _>>()?;
    let argv: Vec<CString> = spec.argv.iter().cloned().map(c_string).collect::<Result<_, _>>()?;
    let path = environment.get("PATH").map(String::as_str).unwrap_or_default();
    let candidates = candidates(&spec.argv[0], path)?;
    let cwd = c_string(spec.working_dir().to_string_lossy().into_owned())?;
    Ok(Prepared {
        cwd,
        argv,
        env,
        candidates,
        ruleset: write_ruleset(req)?,
        filter: seccomp::program(),
        terminal,
        cpus: affinity::mask_of(&req.cpus),
        reset: signals_to_reset(ignored),
    })
}

/// The signals whose disposition the builder must set back to default. exec resets
/// every signal that has a handler, but keeps each ignored one ignored (forge ignores
/// SIGPIPE; a shell starts background jobs with SIGINT and SIGQUIT ignored): those,
/// then, when init knows them (/proc/self/stat lists signals 1-31), else all of 1-31;
/// and always init's own handled ones (a handler must not run in the child between
/// clone and exec) and the real-time signals 32-64, which no cheap read lists.
/// Each reset is a system call, so skipping the ones already default saves ~25.
pub(crate) fn signals_to_reset(ignored: Option<u64>) -> u64 {
    const LOW: u64 = 0x7fff_ffff; // signals 1-31
    let bit = |sig: i32| 1u64 << (sig - 1);
    let handled = [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT].map(bit);
    let unstoppable = bit(libc::SIGKILL) | bit(libc::SIGSTOP);
    (ignored.map_or(LOW, |m| m & LOW) | handled.iter().fold(0, |a, b| a | b) | !LOW) & !unstoppable
}

fn c_string(s: String) -> Result<CString, Failure> {
    CString::new(s).map_err(|_| Failure::new(Step::Exec, Errno::EINVAL))
}

/// What execve tries: the program itself when it has a `/`, else the program under
/// each directory of the sandbox's PATH (as execvp, but with the sandbox's PATH).
fn candidates(program: &str, path: &str) -> Result<Vec<CString>, Failure> {
    if program.contains('/') {
        return Ok(vec![c_string(program.to_owned())?]);
    }
    path.split(':').filter(|d| !d.is_empty()).map(|dir| c_string(format!("{dir}/{program}"))).collect()
}

/// Landlock: every write access is handled (denied) except beneath /tmp, /dev (its
/// nodes and /dev/shm), the build dir and the outputs. Reads are not handled: the
/// mount namespace already decides what exists. Fails closed when the kernel cannot
/// enforce it.
fn write_ruleset(req: &Request) -> Result<OwnedFd, Failure> {
    let spec = &req.spec;
    let mut paths = vec![Path::new("/tmp"), Path::new("/dev"), spec.build_dir.as_path()];
    paths.extend(spec.rw_binds.iter().map(|b| b.inside.as_path()));
    let abi = ABI::V6;
    let fail = |e: landlock::RulesetError| Failure::new(Step::Landlock, Errno::EOPNOTSUPP).detail(e.to_string());
    let created = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_write(abi))
        .map_err(fail)?
        .create()
        .map_err(fail)?
        .add_rules(path_beneath_rules(paths, AccessFs::from_write(abi)))
        .map_err(fail)?;
    Option::<OwnedFd>::from(created)
        .ok_or_else(|| Failure::new(Step::Landlock, Errno::EOPNOTSUPP).detail("Landlock is not supported"))
}

/// The child between clone and exec. Only async-signal-safe system calls on what
/// init prepared; a failure is written as an early-failure record and ends the child.
unsafe fn confine_and_exec(plan: &Plan) -> ! {
    let p = plan.prepared;
    default_signals(p.reset);
    if let Some(slave) = p.terminal {
        if !make_controlling(slave) {
            early_failure(super::wire::STATUS_FD, EARLY_TERMINAL);
        }
    }
    libc::umask(0o022);
    if libc::chdir(p.cwd.as_ptr()) < 0 {
        early_failure(super::wire::STATUS_FD, EARLY_CWD);
    }
    let step = confine(p);
    if step != 0 {
        early_failure(super::wire::STATUS_FD, step);
    }
    if let Some(cpus) = &p.cpus {
        affinity::restore(cpus);
    }
    let mut last = libc::ENOENT;
    for program in &p.candidates {
        libc::execve(program.as_ptr(), plan.argv.as_ptr(), plan.env.as_ptr());
        match *libc::__errno_location() {
            libc::ENOENT | libc::ENOTDIR => {}
            e => last = e,
        }
    }
    *libc::__errno_location() = last;
    early_failure(super::wire::STATUS_FD, EARLY_EXEC)
}

/// Capabilities, no_new_privs, Landlock, seccomp, fds: 0 when done, else the
/// early-failure step code (errno is left set).
unsafe fn confine(p: &Prepared) -> u8 {
    use super::spawn::{EARLY_CAPABILITIES, EARLY_LANDLOCK, EARLY_SECCOMP};
    if sys::drop_capabilities().is_err() {
        return EARLY_CAPABILITIES;
    }
    if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0
        || libc::syscall(libc::SYS_landlock_restrict_self, p.ruleset.as_raw_fd(), 0u32) < 0
    {
        return EARLY_LANDLOCK;
    }
    let fprog = libc::sock_fprog { len: p.filter.len() as u16, filter: p.filter.as_ptr().cast_mut() };
    if libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &fprog as *const libc::sock_fprog, 0, 0) < 0 {
        return EARLY_SECCOMP;
    }
    if sys::cloexec_from_3().is_err() {
        return EARLY_EXEC;
    }
    0
}

/// A new session with `slave` as its controlling terminal and as fds 0-2.
unsafe fn make_controlling(slave: RawFd) -> bool {
    // TIOCSCTTY with argument 0: never steal a terminal from another session.
    libc::setsid() >= 0 && libc::ioctl(slave, libc::TIOCSCTTY, 0) >= 0 && (0..3).all(|fd| libc::dup2(slave, fd) >= 0)
}

/// The signals of `reset` back to their default and none blocked: forge ignores
/// SIGPIPE and init blocks the ones it waits for, and the builder must see neither.
/// The child has its own copy of the handler table (no CLONE_SIGHAND), so init keeps
/// its own.
unsafe fn default_signals(reset: u64) {
    // The kernel's struct sigaction, all zero: SIG_DFL, no flags, an empty mask. The
    // system call itself, as libc refuses the signals it reserves (32-34), and musl
    // blocks every signal around a change of SIGABRT's.
    let action = [0u64; 4];
    for sig in (1..=64).filter(|sig| reset & (1u64 << (sig - 1)) != 0) {
        libc::syscall(libc::SYS_rt_sigaction, sig, action.as_ptr(), std::ptr::null_mut::<u64>(), 8usize);
    }
    let mut none: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut none);
    libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
}

#[cfg(test)]
mod tests {
    use super::signals_to_reset;

    const fn bit(sig: i32) -> u64 {
        1 << (sig - 1)
    }

    #[test]
    fn only_ignored_handled_and_real_time_signals_are_reset_when_the_ignored_are_known() {
        let reset = signals_to_reset(Some(bit(libc::SIGPIPE)));
        for sig in [libc::SIGPIPE, libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
            assert_ne!(reset & bit(sig), 0, "signal {sig}");
        }
        for sig in [libc::SIGUSR1, libc::SIGALRM, libc::SIGSEGV, libc::SIGWINCH] {
            assert_eq!(reset & bit(sig), 0, "signal {sig}");
        }
        assert!((32..=64).all(|sig| reset & bit(sig) != 0), "{reset:#x}");
    }

    #[test]
    fn every_signal_but_kill_and_stop_is_reset_when_the_ignored_are_unknown() {
        let reset = signals_to_reset(None);
        assert_eq!(reset, !(bit(libc::SIGKILL) | bit(libc::SIGSTOP)));
        // /proc/self/stat masks its field to 31 bits; a wider value changes nothing.
        assert_eq!(signals_to_reset(Some(u64::MAX)), reset);
    }
}
