//! The sandbox's filesystem, built by its init (pid 1, new mount namespace) and
//! entered with pivot_root. Every host path is first taken as a detached mount or an
//! O_PATH fd; only then is the new root attached (over /tmp, in this namespace only),
//! so nothing later depends on host paths that the new mounts hide.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstat, mkdirat, mknodat, Mode, SFlag};
use nix::unistd::{fchdir, symlinkat};

use super::sys::{self, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use super::wire::{Emulator, Failure, Request, Step};

/// Host device nodes bind-mounted into the sandbox's /dev.
const DEV_NODES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];
/// Parts of /proc that would let uid 0 change the kernel: made read-only.
const PROC_READ_ONLY: [&str; 4] = ["sys", "sysrq-trigger", "irq", "bus"];
/// Where the new root is attached before pivot_root (in the new mount namespace only).
const STAGE: &str = "/tmp";

/// A host tree taken before anything is hidden, and where it goes.
struct Graft {
    tree: OwnedFd,
    inside: PathBuf,
    is_dir: bool,
}

/// Builds the sandbox's filesystem and makes it the root of this process.
pub(crate) fn enter_new_root(req: &Request) -> Result<(), Failure> {
    let spec = &req.spec;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(Failure::at(Step::Mount, "/"))?;
    let layers = spec.root_layers.iter().map(|l| open_path(l, true)).collect::<Result<Vec<_>, _>>()?;
    let grafts = take_grafts(req)?;
    let dev_nodes =
        DEV_NODES.iter().map(|n| host_tree(Path::new("/dev").join(n).as_path(), 0)).collect::<Result<Vec<_>, _>>()?;
    let scaffold = scaffold(&grafts, &spec.build_dir)?;
    // Attached (under the root about to cover it) rather than left detached: closing a
    // detached mount costs an expedited RCU grace period; attached, it goes with the
    // old root in the one such period that pivot_root's detach pays anyway.
    let stage = open_path(Path::new(STAGE), true)?;
    sys::move_mount(scaffold.as_fd(), stage.as_fd()).map_err(Failure::at(Step::Mount, STAGE))?;
    mount_root(&layers, &scaffold)?;
    drop((layers, scaffold, stage));
    let root = open_path(Path::new(STAGE), true)?;
    let proc = mount_proc(&root)?;
    forbid_nested_user_namespaces(&proc)?;
    if let Some(Emulator::Register { interpreter }) = &req.emulator {
        super::binfmt::register(&proc, interpreter, spec.arch)?;
    }
    protect_proc(&proc)?;
    let pty = spec.interactive.as_ref().is_some_and(|i| i.tty);
    mount_dev(&root, dev_nodes, pty)?;
    attach_fs(&root, Path::new("/tmp"), &[("mode", Some("1777"))], MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)?;
    if spec.build_dir_host.is_none() {
        attach_fs(&root, &spec.build_dir, &[("mode", Some("0755"))], MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)?;
    }
    for g in grafts {
        attach_at(&root, g.tree.as_fd(), &g.inside, Step::Mount)?;
    }
    pivot(&root)
}

fn open_path(p: &Path, dir: bool) -> Result<OwnedFd, Failure> {
    let flags = libc::O_PATH | if dir { libc::O_DIRECTORY } else { 0 };
    sys::open_cloexec(None, &c_path(p, Step::Mount)?, flags, 0).map_err(Failure::at(Step::Mount, p))
}

fn c_path(p: &Path, step: Step) -> Result<CString, Failure> {
    CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| Failure::at(step, p)(Errno::EINVAL))
}

/// A detached recursive copy of a host path with the given attributes set.
fn host_tree(p: &Path, attrs: u64) -> Result<OwnedFd, Failure> {
    let c = c_path(p, Step::Mount)?;
    let tree = sys::clone_tree(None, &c).map_err(Failure::at(Step::Mount, p))?;
    if attrs != 0 {
        sys::set_attrs(tree.as_fd(), attrs, 0, true).map_err(Failure::at(Step::MountAttr, p))?;
    }
    Ok(tree)
}

/// Takes every bind source (and the host build dir) as a detached tree.
fn take_grafts(req: &Request) -> Result<Vec<Graft>, Failure> {
    let spec = &req.spec;
    let ro = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    let rw = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    let mut out = Vec::new();
    let binds = spec.ro_binds.iter().map(|b| (b, ro)).chain(spec.rw_binds.iter().map(|b| (b, rw)));
    for (bind, attrs) in binds {
        let tree = host_tree(&bind.host, attrs)?;
        let is_dir = is_dir(tree.as_fd(), &bind.host)?;
        out.push(Graft { tree, inside: bind.inside.clone(), is_dir });
    }
    if let Some(host) = &spec.build_dir_host {
        out.push(Graft { tree: host_tree(host, rw)?, inside: spec.build_dir.clone(), is_dir: true });
    }
    Ok(out)
}

fn is_dir(fd: BorrowedFd, p: &Path) -> Result<bool, Failure> {
    let st = fstat(fd.as_raw_fd()).map_err(Failure::at(Step::Mount, p))?;
    Ok(SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR)
}

/// A tmpfs holding every mount point (proc, dev, tmp, build dir, bind targets): it
/// is the top layer of the root, so mount points exist without writing any layer,
/// and a layer's symlink can never redirect a mount.
fn scaffold(grafts: &[Graft], build_dir: &Path) -> Result<OwnedFd, Failure> {
    let fs = sys::new_fs("tmpfs", &[("mode", Some("0755"))], 0).map_err(Failure::at(Step::Mount, "scaffold tmpfs"))?;
    let build_dir = build_dir.strip_prefix("/").unwrap_or(build_dir);
    for dir in [Path::new("proc"), Path::new("dev"), Path::new("tmp"), build_dir] {
        mkdirs(fs.as_fd(), dir)?;
    }
    for g in grafts {
        let rel = g.inside.strip_prefix("/").unwrap_or(&g.inside);
        match (g.is_dir, rel.parent()) {
            (true, _) => mkdirs(fs.as_fd(), rel)?,
            (false, parent) => {
                if let Some(parent) = parent.filter(|p| !p.as_os_str().is_empty()) {
                    mkdirs(fs.as_fd(), parent)?;
                }
                // An empty file to mount on (another graft may have made it already).
                match mknodat(Some(fs.as_raw_fd()), rel, SFlag::S_IFREG, Mode::from_bits_truncate(0o644), 0) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(Failure::at(Step::Mount, &g.inside)(e)),
                }
            }
        }
    }
    Ok(fs)
}

/// `mkdir -p` under a directory fd, refusing to follow symlinks.
fn mkdirs(dir: BorrowedFd, rel: &Path) -> Result<(), Failure> {
    let mut path = PathBuf::new();
    for part in rel.components() {
        path.push(part);
        match mkdirat(Some(dir.as_raw_fd()), &path, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(Failure::at(Step::Mount, &path)(e)),
        }
    }
    Ok(())
}

/// Mounts the read-only overlay of scaffold over the layers at [`STAGE`]. Layers are
/// named by fd relative to /proc/self/fd, so host paths need no escaping and about a
/// thousand layers fit in a mount option page.
fn mount_root(layers: &[OwnedFd], scaffold: &OwnedFd) -> Result<(), Failure> {
    let mut lower: Vec<String> = vec![scaffold.as_raw_fd().to_string()];
    lower.extend(layers.iter().rev().map(|l| l.as_raw_fd().to_string()));
    let options = format!("lowerdir={}", lower.join(":"));
    // Init's working directory stays there: every later path is absolute or under an
    // fd, and pivot() changes directory to the new root.
    nix::unistd::chdir("/proc/self/fd").map_err(Failure::at(Step::Overlay, "/proc/self/fd"))?;
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount(Some("overlay"), STAGE, Some("overlay"), flags, Some(options.as_str()))
        .map_err(|e| Failure::at(Step::Overlay, STAGE)(e).detail(options))
}

/// Attaches the detached mount `tree` at `inside` (a mount point the scaffold made)
/// under `root`; `inside` is taken as relative to `root`.
fn attach_at(root: &OwnedFd, tree: BorrowedFd, inside: &Path, step: Step) -> Result<(), Failure> {
    let rel = c_path(inside.strip_prefix("/").unwrap_or(inside), step)?;
    sys::move_mount_into(tree, root.as_fd(), &rel).map_err(Failure::at(step, inside))
}

/// A fresh filesystem of `fstype` attached at `inside`; returns its mount fd.
fn attach(
    root: &OwnedFd,
    fstype: &str,
    inside: &Path,
    opts: &[(&str, Option<&str>)],
    attrs: u64,
) -> Result<OwnedFd, Failure> {
    let step = match fstype {
        "proc" => Step::Proc,
        "devpts" => Step::Terminal,
        _ => Step::Mount,
    };
    let fs = sys::new_fs(fstype, opts, attrs).map_err(Failure::at(step, inside))?;
    attach_at(root, fs.as_fd(), inside, step)?;
    Ok(fs)
}

fn attach_fs(root: &OwnedFd, inside: &Path, opts: &[(&str, Option<&str>)], attrs: u64) -> Result<(), Failure> {
    attach(root, "tmpfs", inside, opts, attrs).map(drop)
}

/// A /proc of the sandbox's own pid namespace.
fn mount_proc(root: &OwnedFd) -> Result<OwnedFd, Failure> {
    attach(root, "proc", Path::new("/proc"), &[], MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)
}

/// Sets this user namespace's limit of nested user namespaces to 0, so `unshare -U`
/// inside fails instead of handing the builder a fresh set of capabilities. Written
/// through the sandbox's own /proc: the host's may be read-only (containers).
fn forbid_nested_user_namespaces(proc: &OwnedFd) -> Result<(), Failure> {
    const LIMIT: &str = "sys/user/max_user_namespaces";
    let fd = openat(Some(proc.as_raw_fd()), LIMIT, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(Failure::at(Step::Limits, "/proc/sys/user/max_user_namespaces"))?;
    // SAFETY: openat just returned this fd; we are its only owner.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    nix::unistd::write(&fd, b"0").map(drop).map_err(Failure::at(Step::Limits, "/proc/sys/user/max_user_namespaces"))
}

/// Re-mounts the kernel-tuning parts of /proc read-only over themselves.
fn protect_proc(proc: &OwnedFd) -> Result<(), Failure> {
    let ro = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    for name in PROC_READ_ONLY {
        let c = CString::new(name).map_err(|_| Failure::new(Step::Proc, Errno::EINVAL))?;
        let tree = match sys::clone_tree(Some(proc.as_fd()), &c) {
            Ok(t) => t,
            Err(Errno::ENOENT) => continue, // a kernel without e.g. /proc/bus
            Err(e) => return Err(Failure::at(Step::Proc, format!("/proc/{name}"))(e)),
        };
        sys::set_attrs(tree.as_fd(), ro, 0, true).map_err(Failure::at(Step::MountAttr, format!("/proc/{name}")))?;
        sys::move_mount_into(tree.as_fd(), proc.as_fd(), &c)
            .map_err(Failure::at(Step::Proc, format!("/proc/{name}")))?;
    }
    Ok(())
}

/// A read-only tmpfs /dev with the host's harmless nodes bound in, the usual links
/// and a writable /dev/shm; with `pty` (an interactive run with a terminal), also a
/// devpts instance of its own at /dev/pts and /dev/ptmx.
fn mount_dev(root: &OwnedFd, nodes: Vec<OwnedFd>, pty: bool) -> Result<(), Failure> {
    let dev =
        attach(root, "tmpfs", Path::new("/dev"), &[("mode", Some("0755"))], MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC)?;
    for (name, tree) in DEV_NODES.iter().zip(nodes) {
        // The mount point: an empty regular file (mknod makes one without an fd to close).
        let at = |e| Failure::at(Step::Mount, format!("/dev/{name}"))(e);
        mknodat(Some(dev.as_raw_fd()), *name, SFlag::S_IFREG, Mode::from_bits_truncate(0o666), 0).map_err(at)?;
        attach_at(&dev, tree.as_fd(), Path::new(name), Step::Mount)?;
    }
    let links = [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ];
    for (name, to) in links {
        symlinkat(to, Some(dev.as_raw_fd()), name).map_err(Failure::at(Step::Mount, format!("/dev/{name}")))?;
    }
    mkdirs(dev.as_fd(), Path::new("shm"))?;
    let shm_attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    attach(&dev, "tmpfs", Path::new("/shm"), &[("mode", Some("1777"))], shm_attrs)?;
    if pty {
        mount_devpts(&dev)?;
    }
    sys::set_attrs(dev.as_fd(), MOUNT_ATTR_RDONLY, 0, false).map_err(Failure::at(Step::MountAttr, "/dev"))
}

/// A devpts of the sandbox's own (`newinstance`: the host's ptys are not in it) at
/// /dev/pts, and /dev/ptmx pointing at its multiplexer, as in containers.
fn mount_devpts(dev: &OwnedFd) -> Result<(), Failure> {
    mkdirs(dev.as_fd(), Path::new("pts"))?;
    let opts = [("newinstance", None), ("ptmxmode", Some("0666")), ("mode", Some("0620"))];
    attach(dev, "devpts", Path::new("/pts"), &opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC)?;
    symlinkat("pts/ptmx", Some(dev.as_raw_fd()), "ptmx").map_err(Failure::at(Step::Terminal, "/dev/ptmx"))
}

/// pivot_root into the new root and drop the old one entirely.
fn pivot(root: &OwnedFd) -> Result<(), Failure> {
    fchdir(root.as_raw_fd()).map_err(Failure::at(Step::PivotRoot, STAGE))?;
    sys::pivot_root(c".", c".").map_err(Failure::at(Step::PivotRoot, STAGE))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(Failure::at(Step::PivotRoot, "old root"))?;
    nix::unistd::chdir("/").map_err(Failure::at(Step::PivotRoot, "/"))
}
