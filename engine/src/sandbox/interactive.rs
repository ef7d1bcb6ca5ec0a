//! forge's side of an interactive run (`forge shell`, `forge sandbox -i`): a relay
//! thread between this process's stdin/stdout and the sandbox, beside the usual
//! output pump.
//!
//! With a terminal, the relay receives the master of the sandbox's pty, copies the
//! caller's keystrokes (the caller's terminal is in raw mode) to it and its output to
//! stdout, and passes window size changes on. Without one, it copies stdin into the
//! channel the builder reads as its stdin and closes it at EOF; output takes the usual
//! pipes. Either way SIGINT is forwarded to the builder (through init) rather than
//! ending the run: Ctrl-C belongs to the program in the sandbox. SIGTERM and SIGHUP
//! still cancel the run. One interactive run per process at a time: its signal
//! handlers are process-wide.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::OnceLock;
use std::thread::JoinHandle;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::socket::{send, shutdown, MsgFlags, Shutdown};
use nix::unistd::Pid;

use super::spec::SandboxSpec;
use super::tty::{self, RawMode, WindowSize};
use super::SandboxError;

/// Whether an interactive run is in progress in this process.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// The relay's wake pipe, made once and never closed, so that a signal handler
/// running late can never write into an fd that was closed and reused.
static WAKE_PIPE: OnceLock<(OwnedFd, OwnedFd)> = OnceLock::new();
/// Its write end, for the signal handler; -1 until it exists.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
/// The byte that tells the relay the run is over (signals send their number).
const STOP: u8 = 0;
/// Signals the relay handles while it runs.
const RELAYED: [Signal; 2] = [Signal::SIGINT, Signal::SIGWINCH];

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = sig as u8;
        // SAFETY: write(2) is async-signal-safe; the pipe is non-blocking, so a full
        // pipe drops the byte rather than blocking the handler.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
}

/// The wake pipe (read end, write end), emptied of what an earlier run left.
fn wake_pipe() -> Result<(BorrowedFd<'static>, BorrowedFd<'static>), Errno> {
    if WAKE_PIPE.get().is_none() {
        let pair = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        let _ = WAKE_PIPE.set(pair);
    }
    let (r, w) = WAKE_PIPE.get().ok_or(Errno::EBADF)?;
    WAKE_FD.store(w.as_raw_fd(), Ordering::SeqCst);
    let mut stale = [0u8; 64];
    while matches!(nix::unistd::read(r.as_raw_fd(), &mut stale), Ok(n) if n > 0) {}
    Ok((r.as_fd(), w.as_fd()))
}

/// An interactive run before its sandbox starts: this process's terminal taken.
pub(crate) struct Prepared {
    tty: bool,
    raw: Option<RawMode>,
    /// The caller's window size, for the pty's start.
    pub window: Option<WindowSize>,
}

impl Prepared {
    /// `None` for a build; else claims the process's one interactive slot and, with a
    /// terminal, puts stdin in raw mode (restored when the session ends).
    pub fn new(spec: &SandboxSpec) -> Result<Option<Prepared>, SandboxError> {
        let Some(interactive) = &spec.interactive else { return Ok(None) };
        if ACTIVE.swap(true, Ordering::SeqCst) {
            return Err(super::spec::invalid("interactive run", "another one is running in this process".into()));
        }
        let mut prepared = Prepared { tty: interactive.tty, raw: None, window: None };
        if interactive.tty {
            let stdin = std::io::stdin();
            prepared.window = tty::window_size(stdin.as_raw_fd());
            // On failure `prepared` drops here, which frees the slot.
            prepared.raw = Some(
                RawMode::enter(stdin.as_fd())
                    .map_err(|e| SandboxError::Io { path: "stdin (raw mode)".into(), source: e.into() })?,
            );
        }
        Ok(Some(prepared))
    }

    /// Starts relaying over `channel` (forge's end) for the sandbox whose init is `init`.
    pub fn start(self, channel: Option<OwnedFd>, init: Pid) -> Result<Session, SandboxError> {
        let io = |e: Errno| SandboxError::Io { path: "the interactive relay".into(), source: e.into() };
        let channel = channel.ok_or_else(|| io(Errno::EBADF))?;
        let (wake_r, wake_w) = wake_pipe().map_err(io)?;
        let saved = install_handlers().map_err(io)?;
        let relay = Relay::new(self.tty, channel, wake_r, init);
        let thread = std::thread::Builder::new()
            .name("forge-relay".into())
            .spawn(move || relay.run())
            .map_err(|e| SandboxError::Io { path: "the interactive relay".into(), source: e })?;
        Ok(Session { prepared: self, thread: Some(thread), wake: wake_w, saved })
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // The terminal's settings come back (RawMode's drop) before the slot is free.
        self.raw.take();
        ACTIVE.store(false, Ordering::SeqCst);
    }
}

/// A running relay; [`Session::finish`] ends it once the sandbox is gone.
pub(crate) struct Session {
    prepared: Prepared,
    thread: Option<JoinHandle<()>>,
    wake: BorrowedFd<'static>,
    saved: Vec<(Signal, SigAction)>,
}

impl Session {
    /// Tells the relay the run is over, waits for it (it copies what the pty still
    /// holds), restores the signal handlers and the terminal.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = nix::unistd::write(self.wake, &[STOP]);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for (sig, action) in self.saved.drain(..) {
            // SAFETY: putting back the handler that was there before.
            let _ = unsafe { sigaction(sig, &action) };
        }
        self.prepared.raw.take();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Installs [`on_signal`] for the relayed signals; returns the previous actions.
fn install_handlers() -> Result<Vec<(Signal, SigAction)>, Errno> {
    let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::SA_RESTART, SigSet::empty());
    let mut saved = Vec::new();
    for sig in RELAYED {
        // SAFETY: the handler only loads an atomic and calls write(2).
        saved.push((sig, unsafe { sigaction(sig, &action) }?));
    }
    Ok(saved)
}

/// The relay thread's state.
struct Relay {
    tty: bool,
    init: Pid,
    /// The channel: with a terminal, until the master arrives; else the builder's stdin.
    channel: Option<OwnedFd>,
    master: Option<OwnedFd>,
    wake: BorrowedFd<'static>,
    stdin_open: bool,
    /// The channel's write side was shut (the builder saw EOF).
    shut: bool,
    /// Bytes read from stdin, not yet taken by the sandbox.
    pending: Vec<u8>,
    stopping: bool,
}

/// What one poll round watches, by position.
const WAKE: usize = 0;
const CHANNEL: usize = 1;
const MASTER: usize = 2;
const STDIN: usize = 3;

impl Relay {
    fn new(tty: bool, channel: OwnedFd, wake: BorrowedFd<'static>, init: Pid) -> Relay {
        Relay {
            tty,
            init,
            channel: Some(channel),
            master: None,
            wake,
            stdin_open: true,
            shut: false,
            pending: Vec::new(),
            stopping: false,
        }
    }

    fn run(mut self) {
        let mut buf = vec![0u8; 16 << 10];
        while !self.done() {
            let ready = self.wait();
            if ready[WAKE] {
                self.on_wake();
            }
            if ready[CHANNEL] && self.tty {
                self.receive_master();
            }
            if ready[MASTER] {
                self.copy_output(&mut buf);
            }
            if ready[STDIN] {
                self.read_stdin(&mut buf);
            }
            self.flush_pending();
        }
        if self.tty {
            // The sandbox is gone: whatever the pty still holds is the last output.
            if self.channel.is_some() {
                self.receive_master();
            }
            while self.master.is_some() {
                self.copy_output(&mut buf);
            }
        }
    }

    /// With a terminal, the session ends with the pty (or a channel closed without
    /// one); without, when forge says the run is over.
    fn done(&self) -> bool {
        if self.tty {
            self.stopping || (self.master.is_none() && self.channel.is_none())
        } else {
            self.stopping
        }
    }

    /// Where stdin's bytes go: the pty's master, or the channel.
    fn target(&self) -> Option<BorrowedFd<'_>> {
        if self.tty {
            self.master.as_ref().map(|m| m.as_fd())
        } else {
            self.channel.as_ref().map(|c| c.as_fd())
        }
    }

    /// Polls what matters now; which of [WAKE, CHANNEL, MASTER, STDIN] are ready.
    fn wait(&self) -> [bool; 4] {
        let stdin = std::io::stdin();
        let want_stdin = self.stdin_open && self.pending.is_empty() && self.target().is_some();
        let mut entries: Vec<(usize, PollFd)> = vec![(WAKE, PollFd::new(self.wake.as_fd(), PollFlags::POLLIN))];
        if let Some(c) = self.channel.as_ref().filter(|_| self.tty) {
            entries.push((CHANNEL, PollFd::new(c.as_fd(), PollFlags::POLLIN)));
        }
        if let Some(m) = &self.master {
            entries.push((MASTER, PollFd::new(m.as_fd(), PollFlags::POLLIN)));
        }
        if want_stdin {
            entries.push((STDIN, PollFd::new(stdin.as_fd(), PollFlags::POLLIN)));
        }
        if let Some(t) = self.target().filter(|_| !self.pending.is_empty()) {
            entries.push((usize::MAX, PollFd::new(t, PollFlags::POLLOUT)));
        }
        let mut fds: Vec<PollFd> = entries.iter().map(|(_, p)| *p).collect();
        let mut ready = [false; 4];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            // A signal: its byte is in the wake pipe.
            Err(Errno::EINTR) => return ready,
            // Nothing can be relayed any more; wait for the end of the run.
            Err(_) => {
                ready[WAKE] = true;
                return ready;
            }
        }
        for ((slot, _), fd) in entries.iter().zip(&fds) {
            if *slot < ready.len() && fd.revents().is_some_and(|r| !r.is_empty()) {
                ready[*slot] = true;
            }
        }
        ready
    }

    fn on_wake(&mut self) {
        let mut bytes = [0u8; 64];
        let n = match nix::unistd::read(self.wake.as_raw_fd(), &mut bytes) {
            Ok(n) => n,
            Err(Errno::EAGAIN | Errno::EINTR) => return,
            Err(_) => {
                self.stopping = true;
                return;
            }
        };
        for &b in &bytes[..n] {
            match b {
                STOP => self.stopping = true,
                b if i32::from(b) == libc::SIGINT => {
                    // init passes SIGINT on to the builder.
                    let _ = kill(self.init, Signal::SIGINT);
                }
                b if i32::from(b) == libc::SIGWINCH => self.resize(),
                _ => {}
            }
        }
    }

    fn resize(&self) {
        if let (Some(m), Some(w)) = (&self.master, tty::window_size(std::io::stdin().as_raw_fd())) {
            let _ = tty::set_window_size(m.as_raw_fd(), w);
        }
    }

    /// Takes the pty's master from init; the channel's job is then done.
    fn receive_master(&mut self) {
        let Some(channel) = self.channel.take() else { return };
        if let Ok(Some(master)) = tty::recv_fd(channel.as_raw_fd()) {
            if set_nonblocking(master.as_raw_fd()).is_ok() {
                self.master = Some(master);
                // The window may have changed since the request was written.
                self.resize();
            }
        }
    }

    /// Copies what the pty says to stdout; EOF or EIO (no slave open) ends it.
    fn copy_output(&mut self, buf: &mut [u8]) {
        let Some(m) = &self.master else { return };
        match nix::unistd::read(m.as_raw_fd(), buf) {
            Ok(0) => self.master = None,
            Ok(n) => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&buf[..n]).and_then(|()| out.flush());
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {
                if self.stopping {
                    self.master = None;
                }
            }
            Err(_) => self.master = None,
        }
    }

    fn read_stdin(&mut self, buf: &mut [u8]) {
        match nix::unistd::read(std::io::stdin().as_raw_fd(), buf) {
            // A terminal only ends when hung up; SIGHUP then cancels the run.
            Ok(0) | Err(Errno::EIO | Errno::EBADF) => self.stdin_open = false,
            Ok(n) => self.pending.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }

    /// Writes as much of `pending` as the sandbox takes without blocking; once stdin
    /// has ended and all is written, the builder (without a terminal) reads EOF.
    fn flush_pending(&mut self) {
        while !self.pending.is_empty() {
            let written = match (&self.master, &self.channel) {
                (Some(m), _) if self.tty => nix::unistd::write(m, &self.pending),
                (_, Some(c)) if !self.tty => {
                    send(c.as_raw_fd(), &self.pending, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL)
                }
                _ => return,
            };
            match written {
                Ok(n) => drop(self.pending.drain(..n)),
                Err(Errno::EAGAIN | Errno::EINTR) => return,
                Err(_) => {
                    // The sandbox's side is gone: nobody will read the rest.
                    self.pending.clear();
                    self.stdin_open = false;
                }
            }
        }
        if !self.tty && !self.stdin_open && !self.shut {
            if let Some(c) = &self.channel {
                let _ = shutdown(c.as_raw_fd(), Shutdown::Write);
            }
            self.shut = true;
        }
    }
}

fn set_nonblocking(fd: RawFd) -> Result<(), Errno> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(drop)
}
