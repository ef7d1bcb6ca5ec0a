//! Starting a sandbox. One clone() creates the child directly in new user, mount,
//! pid, net, uts, ipc and cgroup namespaces (so it is pid 1 there); first it arms
//! its parent-death signal, calls setsid, writes its own uid/gid maps and moves the
//! pipes to fds 1-3. Then one of two ways:
//!
//! - From a multi-threaded process (the build scheduler), the clone is vfork-like, as
//!   posix_spawn: the child makes only async-signal-safe system calls on buffers
//!   prepared beforehand and execs forge itself as the sandbox's init, which reads
//!   the request from a memfd on stdin.
//! - From a single-threaded process (`forge sandbox`, `forge shell`), the clone is
//!   fork-like and the child simply *is* init, with the request already in memory: no
//!   second exec of forge, no loader, no JSON, about a millisecond saved per run. A
//!   forked child of a single-threaded process may allocate and lock freely, since no
//!   other thread can have held a lock at the time of the fork.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

use super::helper::HELPER_ARG;
use super::wire::{Failure, Request, Step, CHANNEL_FD, STATUS_FD};
use super::SandboxError;

/// First byte of the binary record the child writes when it fails before exec
/// (it cannot format JSON there): then a step byte and the errno, little-endian.
pub(crate) const EARLY_FAILURE: u8 = 0xff;
const EARLY_ID_MAP: u8 = 1;
/// Exec of init (by forge) or of the builder (by init).
pub(crate) const EARLY_EXEC: u8 = 2;
pub(crate) const EARLY_CWD: u8 = 3;
pub(crate) const EARLY_CAPABILITIES: u8 = 4;
pub(crate) const EARLY_LANDLOCK: u8 = 5;
pub(crate) const EARLY_SECCOMP: u8 = 6;
pub(crate) const EARLY_TERMINAL: u8 = 7;

/// A started sandbox: its init's pid (in forge's namespace) and forge's pipe ends.
pub(crate) struct Started {
    pub init: Pid,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub status: OwnedFd,
    /// forge's end of an interactive run's channel (see [`CHANNEL_FD`]).
    pub channel: Option<OwnedFd>,
}

/// What the child does between clone and exec, all prepared before clone.
struct ChildPlan {
    id_maps: [(CString, Vec<u8>); 3],
    /// (source, target) of each dup2: request memfd -> 0, pipes -> 1, 2, 3, an
    /// interactive run's channel -> 4.
    fds: Vec<(RawFd, RawFd)>,
    status: RawFd,
    exe: CString,
    argv: [*const libc::c_char; 3],
    envp: [*const libc::c_char; 1],
}

/// The namespaces every sandbox gets.
const NAMESPACES: libc::c_int = libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWCGROUP;

/// Starts the sandbox's init with `req`: in a forked child when this process has a
/// single thread, else by re-executing forge (see the module docs).
pub(crate) fn start(req: &Request) -> Result<Started, SandboxError> {
    let err = |e: Errno| SandboxError::Spawn { exe: "/proc/self/exe".into(), err: e.into() };
    let in_process = single_threaded();
    // The exec'd init reads the request on stdin; a forked one has it in memory and
    // its stdin is /dev/null from the start.
    let stdin = if in_process { dev_null()? } else { request_memfd(req)? };
    let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(err)?;
    let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(err)?;
    let (status_r, status_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(err)?;
    let channel = match req.spec.interactive {
        Some(_) => Some(channel_pair().map_err(err)?),
        None => None,
    };
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let exe = c"/proc/self/exe".to_owned();
    let arg = CString::new(HELPER_ARG).map_err(|_| err(Errno::EINVAL))?;
    let plan = ChildPlan {
        id_maps: [
            (c"/proc/self/setgroups".to_owned(), b"deny".to_vec()),
            (c"/proc/self/uid_map".to_owned(), format!("0 {uid} 1").into_bytes()),
            (c"/proc/self/gid_map".to_owned(), format!("0 {gid} 1").into_bytes()),
        ],
        fds: [
            (stdin.as_raw_fd(), 0),
            (out_w.as_raw_fd(), 1),
            (err_w.as_raw_fd(), 2),
            (status_w.as_raw_fd(), STATUS_FD),
        ]
        .into_iter()
        .chain(channel.as_ref().map(|(_, theirs)| (theirs.as_raw_fd(), CHANNEL_FD)))
        .collect(),
        status: status_w.as_raw_fd(),
        argv: [exe.as_ptr(), arg.as_ptr(), std::ptr::null()],
        envp: [std::ptr::null()],
        exe,
    };
    let unshare = |e| SandboxError::from_failure(Failure::new(Step::Unshare, e), "");
    let pid =
        if in_process { clone_fork(&plan, req).map_err(unshare)? } else { clone_vfork(&plan).map_err(unshare)? };
    let channel = channel.map(|(ours, theirs)| {
        drop(theirs);
        ours
    });
    drop((stdin, out_w, err_w, status_w));
    Ok(Started { init: pid, stdout: out_r, stderr: err_r, status: status_r, channel })
}

/// A connected pair of unix stream sockets (forge's end, init's end).
fn channel_pair() -> Result<(OwnedFd, OwnedFd), Errno> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
}

/// Whether this process runs one thread only (then a forked child may do anything).
fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| tasks.count() == 1)
}

fn dev_null() -> Result<OwnedFd, SandboxError> {
    let file = std::fs::File::open("/dev/null").map_err(|err| SandboxError::Spawn { exe: "/dev/null".into(), err })?;
    Ok(OwnedFd::from(file))
}

/// clone(CLONE_VM | CLONE_VFORK) as posix_spawn does: the child borrows this address
/// space (no page tables copied, however large the scheduler's heap) on its own stack,
/// and this thread waits until it has exec'd. Every signal stays blocked in the child
/// (a handler of forge must never run there); init sets its own mask.
fn clone_vfork(plan: &ChildPlan) -> Result<Pid, Errno> {
    extern "C" fn trampoline(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: arg is the &ChildPlan passed below, alive while the parent waits.
        unsafe { child_main(&*(arg as *const ChildPlan)) }
    }
    let stack = super::sys::ChildStack::new()?;
    let old = block_all_signals();
    let flags = NAMESPACES | libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
    // SAFETY: the child runs `trampoline` on `stack`, touches only `plan` and its own
    // stack, and ends in execve or _exit; CLONE_VFORK keeps both alive until then.
    let pid = unsafe { libc::clone(trampoline, stack.top(), flags, plan as *const ChildPlan as *mut libc::c_void) };
    let errno = Errno::last();
    restore_signals(&old);
    drop(stack);
    if pid < 0 {
        Err(errno)
    } else {
        Ok(Pid::from_raw(pid))
    }
}

/// Blocks every signal of this thread; returns the old mask.
fn block_all_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigfillset initializes it.
    let (mut all, mut old): (libc::sigset_t, libc::sigset_t) = unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    // SAFETY: valid sigset pointers.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    old
}

/// Puts back the mask [`block_all_signals`] saved.
fn restore_signals(old: &libc::sigset_t) {
    // SAFETY: a valid sigset pointer.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
}

/// clone() as fork() into the new namespaces; the child sets itself up as
/// [`child_main`] does and then runs init in place. Every signal is blocked across
/// the clone, as in [`clone_vfork`]: no handler of forge may run in the child, and
/// init sets its own mask.
fn clone_fork(plan: &ChildPlan, req: &Request) -> Result<Pid, Errno> {
    let old = block_all_signals();
    // SAFETY: a raw fork-like clone (no new stack: the child continues on a copy of
    // this one). The caller checked that this process is single-threaded, so the
    // child owns a consistent copy of every lock and allocator.
    let pid = unsafe {
        libc::syscall(libc::SYS_clone, (NAMESPACES | libc::SIGCHLD) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize)
    };
    if pid == 0 {
        // SAFETY: the freshly forked child: set up as after a vfork-like clone, drop
        // every other fd of forge, become init, and never return into forge's code.
        unsafe {
            child_setup(plan);
            let first_free = plan.fds.iter().map(|&(_, to)| to).max().unwrap_or(STATUS_FD) + 1;
            libc::syscall(libc::SYS_close_range, first_free as u32, u32::MAX, 0u32);
            let ignored = hide_command_line();
            libc::_exit(super::init::main(req, ignored));
        }
    }
    let errno = Errno::last();
    restore_signals(&old);
    if pid < 0 {
        Err(errno)
    } else {
        Ok(Pid::from_raw(pid as i32))
    }
}

/// Overwrites forge's command line and environment in the forked init's memory, so
/// that the builder's `/proc/1/cmdline` shows what an exec'd init shows
/// (`forge __forge-sandbox-helper`) and never a host path or variable of the caller:
/// a build that read them would depend on the host. (/proc/1/environ is unreadable
/// anyway: init is not dumpable.) The areas come from /proc/self/stat (fields 48-51).
///
/// The same read tells which of signals 1-31 are ignored (field 33), which spares
/// the builder a system call for each signal that is not: that is the result, if
/// the read worked.
fn hide_command_line() -> Option<u64> {
    // One read into the stack: the line is well under 1 KiB (a 16-byte name and 50
    // numbers), and init's heap pages are copy-on-write shared with forge.
    let mut stat = [0u8; 1024];
    let file = super::sys::open_cloexec(None, c"/proc/self/stat", libc::O_RDONLY, 0).ok()?;
    let len = nix::unistd::read(file.as_raw_fd(), &mut stat).ok()?;
    drop(file);
    // Fields after the command name, which may hold spaces: field 3 is the first.
    let close = stat[..len].iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..len]).ok()?;
    let number = |n: usize| rest.split_ascii_whitespace().nth(n - 3).and_then(|f| f.parse::<u64>().ok());
    let field = |n: usize| number(n).and_then(|v| usize::try_from(v).ok()).unwrap_or(0);
    let title: &[&[u8]] = &[b"forge\0", HELPER_ARG.as_bytes(), b"\0"];
    for (start, end, text) in [(field(48), field(49), title), (field(50), field(51), &[][..])] {
        if start == 0 || end <= start {
            continue;
        }
        // SAFETY: [start, end) is this process's own argv/environ block (the kernel
        // says so), writable stack memory that nothing reads any more: init never
        // looks at its arguments or environment.
        let area = unsafe { std::slice::from_raw_parts_mut(start as *mut u8, end - start) };
        area.fill(0);
        // The pieces in a row, cut so that the last byte stays NUL.
        let room = area.len().saturating_sub(1);
        let mut at = 0;
        for piece in text {
            let n = piece.len().min(room - at);
            area[at..at + n].copy_from_slice(&piece[..n]);
            at += n;
        }
    }
    number(33)
}

/// The request as a sealed-size memfd the child reads as stdin: no pipe to fill,
/// so no blocking and no SIGPIPE whatever happens to the child.
fn request_memfd(req: &Request) -> Result<OwnedFd, SandboxError> {
    let err = |e: std::io::Error| SandboxError::Spawn { exe: "/proc/self/exe".into(), err: e };
    let fd = nix::sys::memfd::memfd_create(c"forge-sandbox-request", nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)
        .map_err(|e| err(e.into()))?;
    let mut file = std::fs::File::from(fd);
    let json = serde_json::to_vec(req).map_err(|e| err(std::io::Error::other(e)))?;
    file.write_all(&json).map_err(err)?;
    std::io::Seek::rewind(&mut file).map_err(err)?;
    Ok(OwnedFd::from(file))
}

/// The child between clone and exec. Only async-signal-safe system calls.
unsafe fn child_main(plan: &ChildPlan) -> ! {
    child_setup(plan);
    libc::execve(plan.exe.as_ptr(), plan.argv.as_ptr(), plan.envp.as_ptr());
    early_failure(STATUS_FD, EARLY_EXEC)
}

/// Death signal, session, id maps, fds: what every sandbox's init needs before it
/// starts, done with async-signal-safe calls only. Exits the child on failure.
unsafe fn child_setup(plan: &ChildPlan) {
    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
    // forge may have died before the death signal was armed: then no one reads.
    let mut poll = libc::pollfd { fd: plan.status, events: libc::POLLOUT, revents: 0 };
    if libc::poll(&mut poll, 1, 0) < 0 || poll.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
        libc::_exit(1);
    }
    libc::setsid();
    for (path, content) in &plan.id_maps {
        // The system call: musl's open() adds an fcntl.
        let fd =
            libc::syscall(libc::SYS_openat, libc::AT_FDCWD, path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) as i32;
        if fd < 0 || libc::write(fd, content.as_ptr().cast(), content.len()) != content.len() as isize {
            early_failure(plan.status, EARLY_ID_MAP);
        }
        libc::close(fd);
    }
    for &(from, to) in &plan.fds {
        // dup2 onto itself keeps close-on-exec set: clear it instead.
        let ok = if from == to { libc::fcntl(from, libc::F_SETFD, 0) >= 0 } else { libc::dup2(from, to) >= 0 };
        if !ok {
            early_failure(plan.status, EARLY_EXEC);
        }
    }
}

/// Writes an early-failure record for `step` with the current errno and exits 127.
pub(crate) unsafe fn early_failure(fd: RawFd, step: u8) -> ! {
    let errno = *libc::__errno_location();
    let mut record = [EARLY_FAILURE, step, 0, 0, 0, 0];
    record[2..].copy_from_slice(&errno.to_le_bytes());
    libc::write(fd, record.as_ptr().cast(), record.len());
    libc::_exit(127)
}

/// Decodes an early-failure record.
pub(crate) fn early_failure_of(bytes: &[u8]) -> Option<Failure> {
    match bytes {
        [EARLY_FAILURE, step, e0, e1, e2, e3, ..] => {
            let errno = i32::from_le_bytes([*e0, *e1, *e2, *e3]);
            let (step, detail) = match *step {
                EARLY_ID_MAP => (Step::IdMap, Some("before exec of the sandbox's init")),
                EARLY_CWD => (Step::Cwd, None),
                EARLY_CAPABILITIES => (Step::Capabilities, None),
                EARLY_LANDLOCK => (Step::Landlock, None),
                EARLY_SECCOMP => (Step::Seccomp, None),
                EARLY_TERMINAL => (Step::Terminal, Some("making the pty the controlling terminal")),
                _ => (Step::Exec, None),
            };
            Some(Failure { step, path: None, errno, detail: detail.map(str::to_owned) })
        }
        _ => None,
    }
}
