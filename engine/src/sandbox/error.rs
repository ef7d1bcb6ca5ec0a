//! The sandbox's errors, and the diagnosis of setup failures: which host setting or
//! kernel feature stopped it, and how to fix that. The sandbox never falls back.

use std::io;
use std::path::{Path, PathBuf};

use super::spec::Arch;
use super::wire::{Failure, Step};

/// Why a sandboxed run could not start or finish (a failing command is not an error: see `Status`).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The spec is not valid.
    #[error("invalid sandbox {what}: {detail}")]
    InvalidSpec {
        /// Which part.
        what: String,
        /// What is wrong.
        detail: String,
    },

    /// An I/O error on the host side.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },

    // The io::Error fields are not `source`s: the message already shows them, and
    // the diagnosis must stay the last thing printed.
    /// The sandbox's init could not be started.
    #[error("cannot start the sandbox helper {exe}: {err}")]
    Spawn {
        /// The program re-executed as init.
        exe: PathBuf,
        /// The error.
        err: io::Error,
    },

    /// A setup step failed inside; `cause` and `fix` diagnose it.
    #[error("cannot set up the sandbox: {step}{}: {err}\n  cause: {cause}\n  fix: {fix}", at(path))]
    Setup {
        /// The step, in words.
        step: String,
        /// The path it was about.
        path: Option<PathBuf>,
        /// The kernel's error.
        err: io::Error,
        /// The host setting or kernel feature at fault.
        cause: String,
        /// How to fix it.
        fix: String,
    },

    /// The command could not be executed (not found, not executable, wrong format).
    #[error("cannot run `{program}` in the sandbox: {err}")]
    Exec {
        /// The command.
        program: String,
        /// The error.
        err: io::Error,
    },

    /// A foreign architecture has no emulator here.
    #[error("cannot run {arch} programs here: {reason}\n  fix: {fix}")]
    NoEmulator {
        /// The architecture.
        arch: Arch,
        /// Why none is usable.
        reason: String,
        /// How to get one.
        fix: String,
    },

    /// The helper broke the protocol: a bug.
    #[error("the sandbox helper failed without saying why ({detail}); this is a bug in forge")]
    Protocol {
        /// What was received.
        detail: String,
    },
}

fn at(path: &Option<PathBuf>) -> String {
    path.as_ref().map(|p| format!(" ({})", p.display())).unwrap_or_default()
}

impl SandboxError {
    /// Whether the machine (not the input) is at fault: the caller maps this to
    /// "environment" exit codes.
    pub fn is_environment(&self) -> bool {
        matches!(self, SandboxError::Setup { .. } | SandboxError::NoEmulator { .. } | SandboxError::Spawn { .. })
    }

    /// Turns a failure the helper reported into an error with its diagnosis.
    pub(crate) fn from_failure(f: Failure, argv0: &str) -> SandboxError {
        let err = io::Error::from_raw_os_error(f.errno);
        if f.step == Step::Exec {
            return SandboxError::Exec { program: argv0.to_owned(), err };
        }
        if f.step == Step::Cwd {
            let dir = f.path.as_deref().unwrap_or(Path::new("?")).display();
            return SandboxError::InvalidSpec { what: "working directory".into(), detail: format!("{dir}: {err}") };
        }
        let (cause, fix) = diagnose(f.step, f.errno, &Host::read());
        let step = match &f.detail {
            Some(d) => format!("{} [{d}]", f.step),
            None => f.step.to_string(),
        };
        SandboxError::Setup { step, path: f.path, err, cause, fix }
    }
}

/// The host facts a diagnosis depends on, read when a failure needs explaining.
#[derive(Debug, Default, Clone)]
pub(crate) struct Host {
    pub kernel: (u32, u32),
    pub unprivileged_userns_clone: Option<String>,
    pub apparmor_restrict: Option<String>,
    pub max_user_namespaces: Option<String>,
}

impl Host {
    pub fn read() -> Host {
        let sysctl = |name: &str| std::fs::read_to_string(Path::new("/proc/sys").join(name)).ok().map(trimmed);
        Host {
            kernel: kernel_version(),
            unprivileged_userns_clone: sysctl("kernel/unprivileged_userns_clone"),
            apparmor_restrict: sysctl("kernel/apparmor_restrict_unprivileged_userns"),
            max_user_namespaces: sysctl("user/max_user_namespaces"),
        }
    }
}

fn trimmed(s: String) -> String {
    s.trim().to_owned()
}

/// The running kernel's (major, minor), (0, 0) when unreadable.
pub(crate) fn kernel_version() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.trim().split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Names the cause of a setup failure and its fix. Pure: tested on made-up hosts.
pub(crate) fn diagnose(step: Step, errno: i32, host: &Host) -> (String, String) {
    let (major, minor) = host.kernel;
    let kernel = format!("Linux {major}.{minor}");
    let older = |want: (u32, u32)| host.kernel < want && host.kernel != (0, 0);
    match step {
        Step::Unshare | Step::IdMap | Step::Mount | Step::Proc if errno == libc::EPERM || errno == libc::EACCES => {
            if host.unprivileged_userns_clone.as_deref() == Some("0") {
                return (
                    "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)".into(),
                    "sudo sysctl -w kernel.unprivileged_userns_clone=1 (and set it in /etc/sysctl.d to keep it)".into(),
                );
            }
            if host.apparmor_restrict.as_deref() == Some("1") {
                return (
                    "AppArmor restricts unprivileged user namespaces \
                     (kernel.apparmor_restrict_unprivileged_userns = 1)"
                        .into(),
                    "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or install an AppArmor \
                     profile that grants `userns,` to the forge binary"
                        .into(),
                );
            }
            if step == Step::Proc {
                return (
                    "the kernel refuses a new /proc: this machine's /proc has parts hidden (a container \
                     runtime masks it), so a fresh one would reveal more"
                        .into(),
                    "run forge on the host or in a container started with an unmasked /proc \
                     (e.g. podman/docker --security-opt unmask=/proc/*)"
                        .into(),
                );
            }
            (
                format!("{kernel} refused to create namespaces: a seccomp filter or container runtime forbids them, or forge runs in a chroot"),
                "run forge on the host, or in a container that allows user namespaces (e.g. docker --security-opt seccomp=unconfined)".into(),
            )
        }
        Step::Unshare if errno == libc::ENOSPC => (
            format!(
                "no user namespace may be created (user.max_user_namespaces = {})",
                host.max_user_namespaces.as_deref().unwrap_or("?")
            ),
            "sudo sysctl -w user.max_user_namespaces=15000".into(),
        ),
        Step::Unshare if errno == libc::EINVAL => (
            format!("{kernel} was built without user, pid or network namespaces"),
            "use a kernel with CONFIG_USER_NS, CONFIG_PID_NS, CONFIG_NET_NS (every distribution kernel has them)".into(),
        ),
        Step::Overlay if older((5, 11)) => (
            format!("{kernel} cannot mount overlayfs in a user namespace (5.11 can)"),
            "upgrade to Linux 5.13 or newer (forge's minimum), or pass one merged root folder".into(),
        ),
        Step::Mount | Step::Overlay | Step::Proc | Step::MountAttr if errno == libc::ENOSYS || older((5, 12)) => (
            format!("{kernel} lacks the mount API forge uses (open_tree, fsopen, mount_setattr: 5.12)"),
            "upgrade to Linux 5.13 or newer".into(),
        ),
        Step::Landlock => (
            format!("Landlock is not available on {kernel} (it needs 5.13 and `landlock` in the lsm= boot list)"),
            "boot a kernel with CONFIG_SECURITY_LANDLOCK=y and landlock in lsm= (e.g. lsm=landlock,lockdown,yama,apparmor,bpf); \
             forge will not run builds without it"
                .into(),
        ),
        Step::PivotRoot if errno == libc::EINVAL => (
            "pivot_root is impossible because the host's root is an initramfs (rootfs)".into(),
            "switch_root to a real root filesystem first (boot with a root= device)".into(),
        ),
        Step::Binfmt => (
            format!("the kernel refused to register the qemu emulator in the sandbox ({kernel}; 6.7 namespaces binfmt_misc)"),
            "install qemu-user-static and let it register its handlers with the F (fix binary) flag on the host \
             (Debian: apt-get install qemu-user-static binfmt-support), or use Linux 6.7 or newer"
                .into(),
        ),
        Step::Terminal => (
            format!("no terminal could be made in the sandbox (a private devpts instance, {kernel})"),
            "run without a terminal: give forge's stdin a file or a pipe (`forge shell RECIPE < script`), \
             or use a kernel with CONFIG_UNIX98_PTYS (every distribution kernel has it)"
                .into(),
        ),
        _ => (
            format!("the kernel refused this step on {kernel}"),
            "check the error above; forge needs Linux 5.13+ with user namespaces, overlayfs and Landlock".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        Host { kernel: (6, 8), ..Host::default() }
    }

    #[test]
    fn apparmor_restriction_is_named_with_its_sysctl() {
        let h = Host { apparmor_restrict: Some("1".into()), ..host() };
        let (cause, fix) = diagnose(Step::Unshare, libc::EPERM, &h);
        assert!(cause.contains("AppArmor"), "{cause}");
        assert!(fix.contains("kernel.apparmor_restrict_unprivileged_userns=0"), "{fix}");
    }

    #[test]
    fn debian_userns_switch_is_named_with_its_sysctl() {
        let h = Host { unprivileged_userns_clone: Some("0".into()), ..host() };
        let (cause, fix) = diagnose(Step::Unshare, libc::EPERM, &h);
        assert!(cause.contains("unprivileged_userns_clone"), "{cause}");
        assert!(fix.contains("unprivileged_userns_clone=1"), "{fix}");
    }

    #[test]
    fn exhausted_namespace_limit_names_max_user_namespaces() {
        let h = Host { max_user_namespaces: Some("0".into()), ..host() };
        let (cause, fix) = diagnose(Step::Unshare, libc::ENOSPC, &h);
        assert!(cause.contains("user.max_user_namespaces = 0"), "{cause}");
        assert!(fix.contains("user.max_user_namespaces="), "{fix}");
    }

    #[test]
    fn old_kernels_are_told_which_version_overlayfs_needs() {
        let h = Host { kernel: (5, 4), ..host() };
        let (cause, _) = diagnose(Step::Overlay, libc::EPERM, &h);
        assert!(cause.contains("Linux 5.4") && cause.contains("5.11"), "{cause}");
    }

    #[test]
    fn missing_landlock_says_how_to_enable_it() {
        let (cause, fix) = diagnose(Step::Landlock, libc::EOPNOTSUPP, &host());
        assert!(cause.contains("Landlock"), "{cause}");
        assert!(fix.contains("lsm="), "{fix}");
    }

    #[test]
    fn exec_failures_name_the_program() {
        let f = Failure { step: Step::Exec, path: None, errno: libc::ENOENT, detail: None };
        let e = SandboxError::from_failure(f, "cc");
        assert!(e.to_string().contains("`cc`"), "{e}");
        assert!(!e.is_environment());
    }
}
