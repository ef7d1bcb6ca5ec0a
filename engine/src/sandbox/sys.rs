//! Thin wrappers over the Linux calls nix does not cover: the fd-based mount API
//! (open_tree, fsopen, fsmount, move_mount, mount_setattr), pivot_root,
//! close_range and the capability calls.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;

const OPEN_TREE_CLONE: u32 = 1;
const AT_RECURSIVE: u32 = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
const FSOPEN_CLOEXEC: u32 = 1;
const FSCONFIG_SET_FLAG: u32 = 0;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_CMD_CREATE: u32 = 6;
const FSMOUNT_CLOEXEC: u32 = 1;
const CLOSE_RANGE_CLOEXEC: u32 = 4;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn fd_result(r: libc::c_long) -> Result<OwnedFd, Errno> {
    if r < 0 {
        Err(Errno::last())
    } else {
        // SAFETY: the kernel just returned this fd to us; nobody else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
    }
}

fn unit_result(r: libc::c_long) -> Result<(), Errno> {
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

fn cstring(s: &str) -> Result<CString, Errno> {
    CString::new(s).map_err(|_| Errno::EINVAL)
}

/// A detached copy of the mount tree at `path` (recursive), as `mount --rbind` takes.
pub fn clone_tree(dir: Option<BorrowedFd>, path: &CStr) -> Result<OwnedFd, Errno> {
    let dfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as u32 | AT_RECURSIVE | libc::AT_EMPTY_PATH as u32;
    // SAFETY: path is NUL-terminated and outlives the call.
    fd_result(unsafe { libc::syscall(libc::SYS_open_tree, dfd, path.as_ptr(), flags) })
}

/// Sets (and clears) mount attributes on the mount `fd` refers to, recursively or not.
pub fn set_attrs(fd: BorrowedFd, set: u64, clear: u64, recursive: bool) -> Result<(), Errno> {
    let attr = MountAttr { attr_set: set, attr_clr: clear, propagation: 0, userns_fd: 0 };
    let flags = libc::AT_EMPTY_PATH as u32 | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: attr is a live MountAttr of the size we pass.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
}

/// Attaches the detached mount `from` on top of the object `to` refers to.
pub fn move_mount(from: BorrowedFd, to: BorrowedFd) -> Result<(), Errno> {
    // SAFETY: both fds are live; empty paths are static C strings.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })
}

/// Attaches the detached mount `from` at `name` under the directory `dir`. As with
/// `O_NOFOLLOW`, a symlink as the last component is not followed (no
/// MOVE_MOUNT_T_SYMLINKS); the one call replaces opening the target first.
pub fn move_mount_into(from: BorrowedFd, dir: BorrowedFd, name: &CStr) -> Result<(), Errno> {
    // SAFETY: both fds are live; name and the empty path are NUL-terminated.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })
}

/// openat() with O_CLOEXEC, as the system call: musl's `open` follows each such open
/// with an fcntl(FD_CLOEXEC) for kernels older than 2.6.23, a system call per open.
pub fn open_cloexec(
    dir: Option<BorrowedFd>,
    path: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> Result<OwnedFd, Errno> {
    let dfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: path is NUL-terminated and outlives the call.
    fd_result(unsafe { libc::syscall(libc::SYS_openat, dfd, path.as_ptr(), flags | libc::O_CLOEXEC, mode) })
}

/// A new, detached filesystem mount: `fstype` with string options and flags, and the
/// given MOUNT_ATTR_* flags.
pub fn new_fs(fstype: &str, options: &[(&str, Option<&str>)], attrs: u64) -> Result<OwnedFd, Errno> {
    let name = cstring(fstype)?;
    // SAFETY: name is NUL-terminated.
    let fs = fd_result(unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), FSOPEN_CLOEXEC) })?;
    for (key, value) in options {
        let k = cstring(key)?;
        let r = match value {
            // SAFETY: k and v are NUL-terminated and live through the call.
            Some(v) => {
                let v = cstring(v)?;
                unsafe {
                    libc::syscall(libc::SYS_fsconfig, fs.as_raw_fd(), FSCONFIG_SET_STRING, k.as_ptr(), v.as_ptr(), 0)
                }
            }
            // SAFETY: as above; a flag carries no value.
            None => unsafe {
                libc::syscall(
                    libc::SYS_fsconfig,
                    fs.as_raw_fd(),
                    FSCONFIG_SET_FLAG,
                    k.as_ptr(),
                    std::ptr::null::<u8>(),
                    0,
                )
            },
        };
        unit_result(r)?;
    }
    // SAFETY: plain syscalls on the fd we own.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<u8>(),
            std::ptr::null::<u8>(),
            0,
        )
    })?;
    // SAFETY: as above.
    fd_result(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) })
}

/// pivot_root(new, old).
pub fn pivot_root(new: &CStr, old: &CStr) -> Result<(), Errno> {
    // SAFETY: both paths are NUL-terminated.
    unit_result(unsafe { libc::syscall(libc::SYS_pivot_root, new.as_ptr(), old.as_ptr()) })
}

/// Marks every fd from 3 up close-on-exec: nothing forge had open reaches the
/// builder, while the status pipe still works until exec succeeds.
pub fn cloexec_from_3() -> Result<(), Errno> {
    // SAFETY: plain syscall on integers.
    unit_result(unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) })
}

/// Closes every fd of this process.
pub fn close_all_fds() {
    // SAFETY: plain syscall on integers; the caller uses no fd afterwards.
    unsafe { libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) };
}

/// Empties the bounding, ambient, inheritable, permitted and effective capability
/// sets and locks securebits so that uid 0 gains nothing at exec.
pub fn drop_capabilities() -> Result<(), Errno> {
    for cap in 0..64 {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } < 0 {
            match Errno::last() {
                Errno::EINVAL => break, // past the last capability this kernel knows
                e => return Err(e),
            }
        }
    }
    // SAFETY: as above.
    unit_result(unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) }.into())?;
    // NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE and the locks of those and of
    // KEEP_CAPS (left off): bits 0-3 and 5-7.
    let securebits: libc::c_ulong = 0xEF;
    // SAFETY: as above.
    unit_result(unsafe { libc::prctl(libc::PR_SET_SECUREBITS, securebits, 0, 0, 0) }.into())?;
    clear_capability_sets()
}

/// capset() with every set empty.
pub fn clear_capability_sets() -> Result<(), Errno> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = Header { version: 0x2008_0522, pid: 0 }; // _LINUX_CAPABILITY_VERSION_3
    let data =
        [Data { effective: 0, permitted: 0, inheritable: 0 }, Data { effective: 0, permitted: 0, inheritable: 0 }];
    // SAFETY: header and two data structs as capset v3 expects.
    unit_result(unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) })
}

/// Brings the loopback interface up (it has 127.0.0.1 once up; nothing else exists).
pub fn loopback_up() -> Result<(), Errno> {
    // SAFETY: a plain socket(); we own the returned fd.
    let sock = fd_result(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) }.into())?;
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: req is a valid ifreq for these ioctls.
    unit_result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) }.into())?;
    // SAFETY: reading the union member the previous ioctl filled.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: as above.
    unit_result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) }.into())
}

/// The stack of a vfork-like child (clone with CLONE_VM|CLONE_VFORK), mapped fresh
/// and never written here: the child faults in only the pages it uses (one or two).
/// A zeroed heap buffer was written whole, a page fault per 4 KiB, and in init,
/// whose heap is shared copy-on-write with forge, each a page copy.
pub struct ChildStack {
    base: *mut libc::c_void,
    len: usize,
}

impl ChildStack {
    /// The few shallow calls between clone and exec fit in 64 KiB.
    const LEN: usize = 64 << 10;

    pub fn new() -> Result<ChildStack, Errno> {
        let len = Self::LEN;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK;
        // SAFETY: a new anonymous mapping; no existing memory is touched.
        let base = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, -1, 0) };
        if base == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        Ok(ChildStack { base, len })
    }

    /// The initial stack pointer: the top of the mapping (page aligned, so the 16
    /// bytes the ABI wants).
    pub fn top(&self) -> *mut libc::c_void {
        self.base.wrapping_byte_add(self.len)
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: our own mapping; the child that used it has exec'd or exited.
        unsafe { libc::munmap(self.base, self.len) };
    }
}
