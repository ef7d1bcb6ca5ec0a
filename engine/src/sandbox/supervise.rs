//! forge's side of a run: start the helper (a re-exec of forge, so a multi-threaded
//! caller never runs setup code after fork), hand it the request, stream the
//! builder's output to the caller and the log, enforce the timeout and cancellation,
//! then clean up the host side (setuid bits, build directory).

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;

use super::spec::SandboxSpec;
use super::wire::{Report, Request, Step};
use super::{affinity, binfmt, interactive, spawn, SandboxError};

/// How often a run looks at its cancel flag.
const CANCEL_TICK: Duration = Duration::from_millis(100);

/// How the builder ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It exited with this code.
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
    /// The timeout passed; every process of the sandbox was killed.
    TimedOut,
    /// The run was cancelled (Ctrl-C, SIGTERM, [`Cancel::cancel`]); all was killed.
    Interrupted,
}

impl Status {
    /// Whether the builder exited with status 0.
    pub fn success(self) -> bool {
        self == Status::Exited(0)
    }

    /// The exit code a shell would give: the code, 128 + signal, 124 for a timeout
    /// (as timeout(1)), 130 for an interruption.
    ///
    /// ```
    /// use forge_engine::sandbox::Status;
    /// assert_eq!(Status::Exited(3).shell_code(), 3);
    /// assert_eq!(Status::Signaled(9).shell_code(), 137);
    /// assert_eq!(Status::TimedOut.shell_code(), 124);
    /// ```
    pub fn shell_code(self) -> i32 {
        match self {
            Status::Exited(c) => c,
            Status::Signaled(s) => 128 + s,
            Status::TimedOut => 124,
            Status::Interrupted => 130,
        }
    }
}

/// What a run produced besides its output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// How the builder ended.
    pub status: Status,
    /// Wall-clock time from starting the helper to the end of the last process.
    pub duration: Duration,
    /// The log reached `log_limit` and the rest was dropped.
    pub log_truncated: bool,
    /// The host build directory, when it was kept (`keep_failed` and a failure).
    pub kept_build_dir: Option<PathBuf>,
}

/// Where the builder's output goes as it comes.
pub trait OutputSink {
    /// Called with each chunk the builder writes to stdout.
    fn stdout(&mut self, bytes: &[u8]);
    /// Called with each chunk the builder writes to stderr.
    fn stderr(&mut self, bytes: &[u8]);
}

/// Copies the builder's output to this process's stdout and stderr.
pub struct Inherit;

impl OutputSink for Inherit {
    fn stdout(&mut self, bytes: &[u8]) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(bytes).and_then(|()| out.flush());
    }
    fn stderr(&mut self, bytes: &[u8]) {
        let _ = std::io::stderr().lock().write_all(bytes);
    }
}

/// Keeps the builder's output in memory.
#[derive(Debug, Default)]
pub struct Capture {
    /// Everything the builder wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything the builder wrote to stderr.
    pub stderr: Vec<u8>,
}

impl OutputSink for Capture {
    fn stdout(&mut self, bytes: &[u8]) {
        self.stdout.extend_from_slice(bytes);
    }
    fn stderr(&mut self, bytes: &[u8]) {
        self.stderr.extend_from_slice(bytes);
    }
}

/// A flag that stops a run (and kills its sandbox) from another thread.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Stops every run that watches this flag.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// Whether [`Cancel::cancel`] was called or a signal hooked by [`cancel_runs_on_signals`] came.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst) || INTERRUPTED.load(Ordering::SeqCst)
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Makes SIGINT, SIGTERM and SIGHUP cancel every run of this process (their
/// sandboxes are killed and build directories removed) instead of killing forge
/// outright. Call once from main; [`interrupted`] tells whether one came.
pub fn cancel_runs_on_signals() -> Result<(), SandboxError> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet};
    let action = SigAction::new(SigHandler::Handler(on_interrupt), SaFlags::SA_RESTART, SigSet::empty());
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic: async-signal-safe.
        unsafe { sigaction(sig, &action) }
            .map_err(|e| SandboxError::Io { path: PathBuf::from(format!("signal {sig}")), source: e.into() })?;
    }
    Ok(())
}

/// Whether a signal hooked by [`cancel_runs_on_signals`] arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Runs `spec` in a sandbox, streaming output to `sink`; see [`run_with`].
///
/// ```no_run
/// // The binary's main must first call forge_engine::sandbox::enter_helper_if_requested().
/// use forge_engine::sandbox::{self, Bind, Capture, SandboxSpec};
/// let mut spec = SandboxSpec::new("/srv/sysroot", vec!["/bin/sh".into(), "-c".into(), "ls /src > /out/list".into()]);
/// spec.ro_binds.push(Bind::new("/home/me/src", "/src"));
/// spec.rw_binds.push(Bind::new("/home/me/out", "/out"));
/// let mut output = Capture::default();
/// let outcome = sandbox::run(&spec, &mut output)?;
/// assert!(outcome.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
/// # Ok::<(), forge_engine::sandbox::SandboxError>(())
/// ```
pub fn run(spec: &SandboxSpec, sink: &mut dyn OutputSink) -> Result<Outcome, SandboxError> {
    run_with(spec, sink, &Cancel::default())
}

/// Runs `spec` in a sandbox until the builder exits, the timeout passes or `cancel`
/// is set. Blocks the calling thread (which must outlive the run: the helper's
/// parent-death signal is tied to it). Safe to call from many threads at once.
pub fn run_with(spec: &SandboxSpec, sink: &mut dyn OutputSink, cancel: &Cancel) -> Result<Outcome, SandboxError> {
    spec.validate()?;
    reap_finished();
    let emulator = binfmt::emulator_for(spec.arch)?;
    let cores = match spec.cores {
        0 => usable_cpus(),
        n => n,
    };
    if let Some(dir) = &spec.build_dir_host {
        std::fs::create_dir_all(dir).map_err(io_at(dir))?;
    }
    let mut log = Log::open(spec)?;
    let interactive = interactive::Prepared::new(spec)?;
    let start_time = Instant::now();
    let window = interactive.as_ref().and_then(|i| i.window);
    let pinned = affinity::Pinned::to_this_cpu();
    let cpus = pinned.as_ref().map(affinity::Pinned::saved_cpus).unwrap_or_default();
    let req = Request { spec: spec.clone(), cores, emulator, window, cpus };
    let started = spawn::start(&req);
    drop(pinned);
    let mut started = started?;
    let init = started.init;
    let session = match interactive.map(|i| i.start(started.channel.take(), init)).transpose() {
        Ok(session) => session,
        Err(e) => {
            let _ = kill(init, Signal::SIGKILL);
            let _ = waitpid(init, None);
            return Err(e);
        }
    };
    let pumped = pump(started, spec, sink, &mut log, cancel);
    // The relay copies what the pty still holds and gives the terminal back.
    if let Some(session) = session {
        session.finish();
    }
    if pumped.is_err() {
        // Nobody drains the pipes any more: end the sandbox rather than wait on it.
        let _ = kill(init, Signal::SIGKILL);
    }
    if reported_exit(&pumped) {
        // Init killed and reaped everything before reporting: its own exit (tearing
        // down the mounts, an RCU grace period or two) need not delay the caller.
        reap_later(init);
    } else {
        // Killed or broken: init is reaped only after every process of its pid
        // namespace is gone, which must hold before the build dir is touched.
        let _ = waitpid(init, None);
    }
    let duration = start_time.elapsed();
    strip_setid_bits(spec);
    let status = pumped.and_then(|(report, stopped)| settle(report, stopped, spec));
    let failed = !matches!(status, Ok(s) if s.success());
    let kept_build_dir = finish_build_dir(spec, failed)?;
    Ok(Outcome { status: status?, duration, log_truncated: log.truncated, kept_build_dir })
}

/// Whether init reported the builder's end (then everything else is dead already).
fn reported_exit(pumped: &Result<(Vec<u8>, Stopped), SandboxError>) -> bool {
    matches!(pumped, Ok((report, None)) if matches!(Report::parse(report), Some(Report::Exited(_) | Report::Signaled(_))))
}

/// Reaps `pid` now if it is done, else leaves it for the next run (or the end of
/// this process) to reap: a thread per run would cost more than the run's teardown.
fn reap_later(pid: nix::unistd::Pid) {
    if !exited(pid) {
        UNREAPED.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
    }
}

/// Inits that reported but had not exited yet when their run ended.
static UNREAPED: std::sync::Mutex<Vec<nix::unistd::Pid>> = std::sync::Mutex::new(Vec::new());

/// Reaps every init left by [`reap_later`] that has exited since.
fn reap_finished() {
    UNREAPED.lock().unwrap_or_else(|e| e.into_inner()).retain(|&pid| !exited(pid));
}

/// Reaps `pid` if it has exited (or is not our child any more).
fn exited(pid: nix::unistd::Pid) -> bool {
    use nix::sys::wait::{WaitPidFlag, WaitStatus};
    !matches!(waitpid(pid, Some(WaitPidFlag::WNOHANG)), Ok(WaitStatus::StillAlive))
}

/// CPUs this process may run on (its affinity mask): cheaper than
/// `available_parallelism`, which also reads cgroup files on every call.
fn usable_cpus() -> u32 {
    nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map(|set| (0..nix::sched::CpuSet::count()).filter(|&i| set.is_set(i).unwrap_or(false)).count() as u32)
        .unwrap_or(1)
        .max(1)
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> SandboxError + '_ {
    move |source| SandboxError::Io { path: path.to_owned(), source }
}

/// Why the run was stopped from outside, if it was.
type Stopped = Option<Status>;

/// Moves output until every process holding the pipes is gone; enforces the
/// deadline and cancellation. Returns the status pipe's contents.
fn pump(
    started: spawn::Started,
    spec: &SandboxSpec,
    sink: &mut dyn OutputSink,
    log: &mut Log,
    cancel: &Cancel,
) -> Result<(Vec<u8>, Stopped), SandboxError> {
    let init = started.init;
    let deadline = spec.timeout.map(|t| Instant::now() + t);
    let (out, err, status) = (File::from(started.stdout), File::from(started.stderr), File::from(started.status));
    let mut open = [true; 3];
    let mut report = Vec::new();
    let mut stopped: Stopped = None;
    // Never zeroed: a zeroed buffer (64 KiB on the heap, then 16 KiB on the stack)
    // cost a page fault per 4 KiB written, copy-on-write ones after the fork of init,
    // while the reads rarely bring more than a few KiB.
    let mut buf = Vec::with_capacity(16 << 10);
    while open.iter().any(|o| *o) {
        let wait = match (stopped, deadline) {
            (None, Some(d)) => d.saturating_duration_since(Instant::now()).min(CANCEL_TICK),
            _ => CANCEL_TICK,
        };
        let ready = {
            // Only pipes still open: one at EOF would make poll return at once, and
            // the loop would spin (starving init of the CPU it needs to finish).
            let fds = [out.as_fd(), err.as_fd(), status.as_fd()];
            let watched: Vec<usize> = (0..3).filter(|&i| open[i]).collect();
            let mut polls: Vec<PollFd> = watched.iter().map(|&i| PollFd::new(fds[i], PollFlags::POLLIN)).collect();
            let timeout = PollTimeout::try_from(wait.as_millis().max(1) as i32).unwrap_or(PollTimeout::MAX);
            match poll(&mut polls, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(SandboxError::Protocol { detail: format!("poll: {e}") }),
            }
            let mut ready = [false; 3];
            for (p, &i) in polls.iter().zip(&watched) {
                ready[i] = p.revents().is_some_and(|r| !r.is_empty());
            }
            ready
        };
        for (i, is_ready) in ready.into_iter().enumerate() {
            if !is_ready {
                continue;
            }
            let n = read_into([&out, &err, &status][i], &mut buf).unwrap_or(0);
            if n == 0 {
                open[i] = false;
                continue;
            }
            let bytes = &buf[..n];
            match i {
                0 => sink.stdout(bytes),
                1 => sink.stderr(bytes),
                _ => report.extend_from_slice(bytes),
            }
            if i < 2 {
                log.write(bytes)?;
            }
        }
        if stopped.is_none() {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                stopped = Some(Status::TimedOut);
            } else if cancel.is_cancelled() {
                stopped = Some(Status::Interrupted);
            }
            if stopped.is_some() {
                // When init dies the kernel kills its whole pid namespace.
                let _ = kill(init, Signal::SIGKILL);
            }
        }
    }
    Ok((report, stopped))
}

/// One read from `file` into `buf`'s spare capacity (`buf` is cleared first), so
/// only the pages the kernel writes are touched; returns the bytes read.
fn read_into(file: &File, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    buf.clear();
    let spare = buf.spare_capacity_mut();
    // SAFETY: the kernel writes at most `spare.len()` bytes into memory we own.
    let n = unsafe { libc::read(file.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len()) };
    let n = usize::try_from(n).map_err(|_| std::io::Error::last_os_error())?;
    // SAFETY: the first n bytes were just written by read().
    unsafe { buf.set_len(n) };
    Ok(n)
}

/// The builder's status from its report, or why there is none.
fn settle(report: Vec<u8>, stopped: Stopped, spec: &SandboxSpec) -> Result<Status, SandboxError> {
    if let Some(mut f) = spawn::early_failure_of(&report) {
        if f.step == Step::Cwd {
            f.path = Some(spec.working_dir().to_owned());
        }
        return Err(SandboxError::from_failure(f, &spec.argv[0]));
    }
    match (Report::parse(&report), stopped) {
        (Some(Report::Exited(c)), _) => Ok(Status::Exited(c)),
        (Some(Report::Signaled(s)), None) => Ok(Status::Signaled(s)),
        (_, Some(why)) => Ok(why),
        (Some(Report::Failed(f)), None) => Err(SandboxError::from_failure(f, &spec.argv[0])),
        (None, None) => {
            Err(SandboxError::Protocol { detail: format!("no status report ({:?})", String::from_utf8_lossy(&report)) })
        }
    }
}

/// The build log, capped at `log_limit` bytes.
struct Log {
    file: Option<File>,
    limit: u64,
    written: u64,
    truncated: bool,
    path: PathBuf,
}

impl Log {
    fn open(spec: &SandboxSpec) -> Result<Log, SandboxError> {
        let path = spec.log.clone().unwrap_or_default();
        let file = match &spec.log {
            Some(p) => Some(File::create(p).map_err(io_at(p))?),
            None => None,
        };
        Ok(Log { file, limit: spec.log_limit, written: 0, truncated: false, path })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), SandboxError> {
        let Some(file) = &mut self.file else { return Ok(()) };
        if self.truncated {
            return Ok(());
        }
        let room = self.limit.saturating_sub(self.written).min(bytes.len() as u64) as usize;
        file.write_all(&bytes[..room]).map_err(io_at(&self.path))?;
        self.written += room as u64;
        if room < bytes.len() {
            self.truncated = true;
            let note = format!("\n[forge: log truncated at {} bytes]\n", self.limit);
            file.write_all(note.as_bytes()).map_err(io_at(&self.path))?;
        }
        Ok(())
    }
}

/// Clears setuid and setgid bits under every read-write bind: whatever the builder
/// did, nothing it leaves on the host can raise privileges.
fn strip_setid_bits(spec: &SandboxSpec) {
    for bind in &spec.rw_binds {
        walk(&bind.host, &mut |path, meta| {
            let mode = meta.permissions().mode();
            if !meta.file_type().is_symlink() && mode & 0o6000 != 0 {
                let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o1777));
            }
        });
    }
}

/// Calls `f` on `root` and everything beneath it, never following symlinks.
fn walk(root: &Path, f: &mut dyn FnMut(&Path, &std::fs::Metadata)) {
    let Ok(meta) = std::fs::symlink_metadata(root) else { return };
    f(root, &meta);
    if meta.is_dir() {
        let Ok(entries) = std::fs::read_dir(root) else { return };
        for entry in entries.flatten() {
            walk(&entry.path(), f);
        }
    }
}

/// Removes the host build directory unless the run failed and `keep_failed` is set.
fn finish_build_dir(spec: &SandboxSpec, failed: bool) -> Result<Option<PathBuf>, SandboxError> {
    let Some(dir) = &spec.build_dir_host else { return Ok(None) };
    if failed && spec.keep_failed {
        return Ok(Some(dir.clone()));
    }
    // A build may leave read-only folders: make them writable so removal succeeds.
    walk(dir, &mut |path, meta| {
        if meta.is_dir() && meta.permissions().mode() & 0o700 != 0o700 {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700));
        }
    });
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SandboxError::Io { path: dir.clone(), source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::Bind;

    #[test]
    fn setid_bits_are_stripped_under_rw_binds_without_following_symlinks() {
        let out = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
        let set = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        std::fs::create_dir(out.path().join("d")).unwrap();
        for (f, m) in [("suid", 0o4755), ("d/sgid", 0o2711), ("plain", 0o644)] {
            std::fs::write(out.path().join(f), b"x").unwrap();
            set(&out.path().join(f), m);
        }
        let target = outside.path().join("host-suid");
        std::fs::write(&target, b"x").unwrap();
        set(&target, 0o4755);
        std::os::unix::fs::symlink(&target, out.path().join("link")).unwrap();
        let mut spec = SandboxSpec::new("/", vec!["true".into()]);
        spec.rw_binds.push(Bind::new(out.path(), "/out"));
        strip_setid_bits(&spec);
        assert_eq!(mode(&out.path().join("suid")), 0o755);
        assert_eq!(mode(&out.path().join("d/sgid")), 0o711);
        assert_eq!(mode(&out.path().join("plain")), 0o644);
        assert_eq!(mode(&target), 0o4755, "a symlink's target outside the output is not touched");
    }

    #[test]
    fn the_log_keeps_exactly_the_limit_then_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = SandboxSpec::new("/", vec!["true".into()]);
        spec.log = Some(dir.path().join("log"));
        spec.log_limit = 5;
        let mut log = Log::open(&spec).unwrap();
        log.write(b"abc").unwrap();
        log.write(b"defg").unwrap();
        log.write(b"hij").unwrap();
        assert!(log.truncated);
        let text = std::fs::read_to_string(dir.path().join("log")).unwrap();
        assert_eq!(text, "abcde\n[forge: log truncated at 5 bytes]\n");
    }
}
