//! The builder's last steps before exec, inside the finished sandbox: default
//! signals, umask 022, the working directory, no capabilities, Landlock (which also
//! sets no_new_privs), no set-id chmod (seccomp), every inherited fd close-on-exec, a
//! cleared environment.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use landlock::{
    path_beneath_rules, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, ABI,
};
use nix::errno::Errno;
use nix::sys::signal::{signal, SigHandler, SigSet, Signal};
use nix::sys::stat::{umask, Mode};

use super::wire::{Failure, Report, Request, Step};
use super::{seccomp, sys, tty};

/// Sets up and execs the builder (in a new session on `terminal`, the slave of the
/// sandbox's pty, when the run has one); on failure reports why and exits 127.
pub(crate) fn exec_builder(req: &Request, terminal: Option<RawFd>) -> ! {
    let Err(failure) = confine_and_exec(req, terminal);
    Report::Failed(failure).send();
    // SAFETY: leaving the forked child without running the parent's atexit handlers.
    unsafe { libc::_exit(127) }
}

fn confine_and_exec(req: &Request, terminal: Option<RawFd>) -> Result<Infallible, Failure> {
    let spec = &req.spec;
    default_signals();
    if let Some(slave) = terminal {
        tty::make_controlling(slave)?;
    }
    umask(Mode::from_bits_truncate(0o022));
    let cwd = spec.working_dir();
    nix::unistd::chdir(cwd).map_err(Failure::at(Step::Cwd, cwd))?;
    sys::drop_capabilities().map_err(|e| Failure::new(Step::Capabilities, e))?;
    restrict_writes(&writable_paths(req))?;
    seccomp::forbid_set_id_chmod().map_err(|e| Failure::new(Step::Seccomp, e))?;
    let env: Vec<CString> =
        spec.environment(req.cores).iter().map(|(k, v)| c_string(format!("{k}={v}"))).collect::<Result<_, _>>()?;
    let argv: Vec<CString> = spec.argv.iter().cloned().map(c_string).collect::<Result<_, _>>()?;
    let path = spec.environment(req.cores).remove("PATH").unwrap_or_default();
    sys::cloexec_from_3().map_err(|e| Failure::new(Step::Exec, e))?;
    Err(exec_in_path(&argv, &env, &path))
}

fn c_string(s: String) -> Result<CString, Failure> {
    CString::new(s).map_err(|_| Failure::new(Step::Exec, Errno::EINVAL))
}

/// Every signal back to its default and none blocked: forge ignores SIGPIPE and
/// init blocks the ones it waits for, and the builder must see neither.
fn default_signals() {
    for sig in Signal::iterator() {
        if sig != Signal::SIGKILL && sig != Signal::SIGSTOP {
            // SAFETY: installing SIG_DFL is always sound.
            let _ = unsafe { signal(sig, SigHandler::SigDfl) };
        }
    }
    let _ = SigSet::empty().thread_set_mask();
}

/// The only places the builder may write: /tmp, the build dir, the outputs, /dev
/// (its nodes and /dev/shm).
fn writable_paths(req: &Request) -> Vec<PathBuf> {
    let spec = &req.spec;
    let mut paths = vec![PathBuf::from("/tmp"), PathBuf::from("/dev"), spec.build_dir.clone()];
    paths.extend(spec.rw_binds.iter().map(|b| b.inside.clone()));
    paths
}

/// Landlock: every write access is handled (denied) except beneath `paths`. Reads
/// are not handled: the mount namespace already decides what exists.
fn restrict_writes(paths: &[PathBuf]) -> Result<(), Failure> {
    let abi = ABI::V6;
    let fail = |e: landlock::RulesetError| Failure::new(Step::Landlock, Errno::EOPNOTSUPP).detail(e.to_string());
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_write(abi))
        .map_err(fail)?
        .create()
        .map_err(fail)?
        .add_rules(path_beneath_rules(paths, AccessFs::from_write(abi)))
        .map_err(fail)?
        .restrict_self()
        .map_err(fail)?;
    if status.ruleset == RulesetStatus::NotEnforced || !status.no_new_privs {
        return Err(Failure::new(Step::Landlock, Errno::EOPNOTSUPP).detail(format!("{:?}", status.ruleset)));
    }
    Ok(())
}

/// execve, searching `path` when the program has no `/` (as execvp would, but with
/// the sandbox's PATH, not forge's).
fn exec_in_path(argv: &[CString], env: &[CString], path: &str) -> Failure {
    let program = &argv[0];
    let fail = |e: Errno| Failure::at(Step::Exec, Path::new(&*program.to_string_lossy()))(e);
    if program.as_bytes().contains(&b'/') {
        return fail(execve(program, argv, env));
    }
    let mut last = Errno::ENOENT;
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let Ok(candidate) = CString::new(format!("{dir}/{}", program.to_string_lossy())) else { continue };
        match execve(&candidate, argv, env) {
            Errno::ENOENT | Errno::ENOTDIR => {}
            e => last = e,
        }
    }
    fail(last)
}

/// execve, which only ever returns its error.
fn execve(program: &CString, argv: &[CString], env: &[CString]) -> Errno {
    match nix::unistd::execve(program, argv, env) {
        Err(e) => e,
        Ok(never) => match never {},
    }
}
