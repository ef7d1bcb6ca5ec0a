//! Terminals for interactive runs, on both sides of the sandbox.
//!
//! Inside, init opens a pty of the sandbox's own devpts instance (mounted with
//! `newinstance` at /dev/pts, so no pty of the host is visible or reachable) and the
//! builder makes its slave the controlling terminal of a new session. The master goes
//! to forge over the run's channel (SCM_RIGHTS); forge puts the caller's terminal in
//! raw mode and relays bytes both ways, so line editing, Ctrl-C and job control all
//! happen in the sandbox's pty. The caller's own terminal is never handed in: a
//! process holding it could push input into the caller's shell (TIOCSTI) or change
//! its settings after forge exits.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::sys::stat::Mode;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use serde::{Deserialize, Serialize};

use super::wire::{Failure, Step};

/// Where init opens the pty multiplexer of the sandbox's devpts.
const PTMX: &str = "/dev/pts/ptmx";

/// A terminal's size in character cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WindowSize {
    pub rows: u16,
    pub cols: u16,
}

/// The two ends of a pty made inside the sandbox.
pub(crate) struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Opens a new pty in the sandbox's devpts (init, after pivot_root) and gives it
/// `window` as its size. The slave is opened through the master (TIOCGPTPEER), not
/// by a path lookup under /dev/pts.
pub(crate) fn open_pty(window: Option<WindowSize>) -> Result<Pty, Failure> {
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let fd = open(PTMX, flags, Mode::empty()).map_err(Failure::at(Step::Terminal, PTMX))?;
    // SAFETY: open just returned this fd; we are its only owner.
    let master = unsafe { OwnedFd::from_raw_fd(fd) };
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int through the pointer, which is live.
    check(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) }, "unlocking the pty")?;
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new fd.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags.bits()) };
    check(fd, "opening the pty's slave")?;
    // SAFETY: the ioctl just returned this fd; we are its only owner.
    let slave = unsafe { OwnedFd::from_raw_fd(fd) };
    if let Some(w) = window {
        set_window_size(master.as_raw_fd(), w).map_err(|e| Failure::new(Step::Terminal, e))?;
    }
    Ok(Pty { master, slave })
}

fn check(r: libc::c_int, what: &str) -> Result<(), Failure> {
    if r < 0 {
        Err(Failure::new(Step::Terminal, Errno::last()).detail(what))
    } else {
        Ok(())
    }
}

/// Sends `fd` over the unix socket `channel` (SCM_RIGHTS), with one byte of data.
pub(crate) fn send_fd(channel: RawFd, fd: BorrowedFd) -> Result<(), Errno> {
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let data = [IoSlice::new(b"t")];
    sendmsg::<()>(channel, &data, &cmsg, MsgFlags::MSG_NOSIGNAL, None).map(drop)
}

/// Receives one fd sent with [`send_fd`]; `None` when the other side closed the
/// channel without sending one (init failed before the pty existed).
pub(crate) fn recv_fd(channel: RawFd) -> Result<Option<OwnedFd>, Errno> {
    let mut byte = [0u8; 1];
    let mut data = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!(RawFd);
    let msg = loop {
        match recvmsg::<()>(channel, &mut data, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Err(Errno::EINTR) => continue,
            other => break other?,
        }
    };
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            // SAFETY: the kernel installed these fds in our table for us alone.
            let mut owned: Vec<OwnedFd> = fds.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }).collect();
            if owned.len() == 1 {
                return Ok(owned.pop());
            }
        }
    }
    Ok(None)
}

/// The size of the terminal `fd` is, if it is one.
pub(crate) fn window_size(fd: RawFd) -> Option<WindowSize> {
    // SAFETY: winsize is plain data; TIOCGWINSZ fills it.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: ws is a live winsize.
    let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0 && ws.ws_col > 0).then_some(WindowSize { rows: ws.ws_row, cols: ws.ws_col })
}

/// Gives the pty behind `master` a new size; the kernel sends SIGWINCH to the
/// pty's foreground process group.
pub(crate) fn set_window_size(master: RawFd, w: WindowSize) -> Result<(), Errno> {
    let ws = libc::winsize { ws_row: w.rows, ws_col: w.cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: ws is a live winsize.
    Errno::result(unsafe { libc::ioctl(master, libc::TIOCSWINSZ, &ws) }).map(drop)
}

/// The caller's terminal in raw mode (no echo, no line editing, no signals from
/// keys: Ctrl-C is a byte for the sandbox's pty) until dropped, when the saved
/// settings come back.
pub(crate) struct RawMode {
    fd: RawFd,
    saved: Termios,
}

impl RawMode {
    /// Puts the terminal `fd` in raw mode.
    pub fn enter(fd: BorrowedFd) -> Result<RawMode, Errno> {
        let saved = tcgetattr(fd)?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSADRAIN, &raw)?;
        Ok(RawMode { fd: fd.as_raw_fd(), saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: the fd is the caller's stdin, open for this process's whole life.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let _ = tcsetattr(fd, SetArg::TCSADRAIN, &self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_fd_sent_over_a_socket_arrives_as_the_same_file() {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        let (a, b) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC).unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        send_fd(a.as_raw_fd(), w.as_fd()).unwrap();
        drop(w);
        let got = recv_fd(b.as_raw_fd()).unwrap().expect("an fd");
        nix::unistd::write(&got, b"via the copy").unwrap();
        drop(got);
        let mut buf = [0u8; 32];
        let n = nix::unistd::read(r.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"via the copy");
    }

    #[test]
    fn a_channel_closed_without_an_fd_gives_none() {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        let (a, b) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC).unwrap();
        drop(a);
        assert!(recv_fd(b.as_raw_fd()).unwrap().is_none());
    }

    use std::os::fd::AsFd;
}
