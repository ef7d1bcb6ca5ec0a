//! Foreign-architecture programs through qemu-user. Linux >= 6.7 gives each user
//! namespace its own binfmt_misc: the sandbox registers a static qemu there with the F
//! flag (the kernel opens the interpreter at registration, on the host side, so
//! nothing of it need be visible inside) and the host is untouched. Older kernels can
//! use a handler the host registered with the F flag.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;

use super::error::kernel_version;
use super::spec::Arch;
use super::sys::{self, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID};
use super::wire::{Emulator, Failure, Step};
use super::SandboxError;

/// The ELF header bytes (machine field included) that identify `arch` binaries, and
/// the mask binfmt_misc applies, in the `\xHH` spelling its register file takes.
fn magic_and_mask(arch: Arch) -> (&'static str, &'static str) {
    const MASK: &str = r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff";
    match arch {
        Arch::Aarch64 => (r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00", MASK),
        Arch::X86_64 => (r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00", MASK),
    }
}

/// The same magic as /proc/sys/fs/binfmt_misc/<entry> prints it (hex, no escapes).
fn magic_hex(arch: Arch) -> String {
    magic_and_mask(arch).0.replace(r"\x", "").replace("ELF", "454c46")
}

/// The line written to `register`. F: open the interpreter now; P: keep argv[0]
/// (qemu learns it from AT_FLAGS).
pub(crate) fn register_line(arch: Arch, interpreter: &Path) -> String {
    let (magic, mask) = magic_and_mask(arch);
    format!(":forge-{arch}:M::{magic}:{mask}:{}:FP", interpreter.display())
}

/// Mounts the sandbox's own binfmt_misc at /proc/sys/fs/binfmt_misc and registers
/// qemu for `arch` in it. Runs in init, before pivot_root, so `interpreter` is a host
/// path.
pub(crate) fn register(proc: &OwnedFd, interpreter: &Path, arch: Arch) -> Result<(), Failure> {
    const AT: &str = "/proc/sys/fs/binfmt_misc";
    let attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    let fs = sys::new_fs("binfmt_misc", &[], attrs).map_err(Failure::at(Step::Binfmt, AT))?;
    let flags = OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    let target = openat(Some(proc.as_raw_fd()), "sys/fs/binfmt_misc", flags, Mode::empty())
        .map_err(Failure::at(Step::Binfmt, AT))?;
    // SAFETY: openat just returned this fd; we are its only owner.
    let target = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(target) };
    sys::move_mount(std::os::fd::AsFd::as_fd(&fs), std::os::fd::AsFd::as_fd(&target))
        .map_err(Failure::at(Step::Binfmt, AT))?;
    let reg = openat(Some(fs.as_raw_fd()), "register", OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(Failure::at(Step::Binfmt, format!("{AT}/register")))?;
    // SAFETY: openat just returned this fd; we are its only owner.
    let reg = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(reg) };
    let line = register_line(arch, interpreter);
    nix::unistd::write(&reg, line.as_bytes())
        .map(drop)
        .map_err(|e| Failure::at(Step::Binfmt, interpreter)(e).detail(line))
}

/// Decides, on the host, how `arch` programs will run; `None` for the native arch.
pub(crate) fn emulator_for(arch: Arch) -> Result<Option<Emulator>, SandboxError> {
    if arch == Arch::native() {
        return Ok(None);
    }
    let qemu = find_qemu(arch);
    let namespaced = kernel_version() >= (6, 7);
    if let (true, Some(interpreter)) = (namespaced, &qemu) {
        return Ok(Some(Emulator::Register { interpreter: interpreter.clone() }));
    }
    if let Some(handler) = host_handler(arch, Path::new("/proc/sys/fs/binfmt_misc")) {
        return Ok(Some(Emulator::Host { handler }));
    }
    let (major, minor) = kernel_version();
    let reason = match (namespaced, qemu) {
        (true, None) => format!("no qemu-{arch}-static on PATH and no host binfmt_misc handler with the F flag"),
        _ => format!(
            "Linux {major}.{minor} cannot register an emulator inside a sandbox (6.7 can) and the host has \
             no binfmt_misc handler for {arch} with the F (fix binary) flag"
        ),
    };
    let fix = format!(
        "install a static qemu (Debian: apt-get install qemu-user-static) so forge finds qemu-{arch}-static, \
         on Linux 6.7 or newer; on older kernels also register it on the host with the F flag \
         (Debian: apt-get install binfmt-support, then update-binfmts --enable)"
    );
    Err(SandboxError::NoEmulator { arch, reason, fix })
}

/// `qemu-<arch>-static` on PATH, else where Debian puts it.
fn find_qemu(arch: Arch) -> Option<PathBuf> {
    let name = format!("qemu-{arch}-static");
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/libexec/qemu-binfmt")])
        .map(|d| d.join(&name))
        .find(|p| p.is_file())
}

/// An enabled host handler for `arch` registered with the F flag, from the entries
/// of a binfmt_misc folder.
pub(crate) fn host_handler(arch: Arch, dir: &Path) -> Option<PathBuf> {
    let want = magic_hex(arch);
    let entries = std::fs::read_dir(dir).ok()?;
    let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    names.into_iter().find_map(|p| {
        let text = std::fs::read_to_string(&p).ok()?;
        let field = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)).map(str::trim);
        let fixed = field("flags:").is_some_and(|f| f.contains('F'));
        let enabled = text.lines().next() == Some("enabled");
        let matches = field("magic").is_some_and(|m| m == want);
        (fixed && enabled && matches).then(|| field("interpreter").map(PathBuf::from)).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_line_has_the_aarch64_machine_and_f_flag() {
        let line = register_line(Arch::Aarch64, Path::new("/usr/bin/qemu-aarch64-static"));
        assert!(line.starts_with(r":forge-aarch64:M::\x7fELF\x02"), "{line}");
        assert!(line.contains(r"\x02\x00\xb7\x00:"), "{line}");
        assert!(line.ends_with(":/usr/bin/qemu-aarch64-static:FP"), "{line}");
    }

    #[test]
    fn host_handler_needs_the_f_flag_and_the_right_magic() {
        let dir = tempfile::tempdir().unwrap();
        let entry = |flags: &str| {
            format!(
                "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: {flags}\noffset 0\n\
                 magic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n"
            )
        };
        std::fs::write(dir.path().join("qemu-aarch64"), entry("POC")).unwrap();
        assert_eq!(host_handler(Arch::Aarch64, dir.path()), None);
        std::fs::write(dir.path().join("qemu-aarch64"), entry("POCF")).unwrap();
        assert_eq!(
            host_handler(Arch::Aarch64, dir.path()),
            Some(PathBuf::from("/usr/libexec/qemu-binfmt/aarch64-binfmt-P"))
        );
        assert_eq!(host_handler(Arch::X86_64, dir.path()), None);
    }
}
