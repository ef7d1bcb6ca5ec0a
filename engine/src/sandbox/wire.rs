//! What forge and its sandbox helper say to each other: the request goes as JSON on
//! the helper's stdin; one report comes back as a JSON line on fd [`STATUS_FD`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::spec::SandboxSpec;

/// The fd on which the helper, init and builder report to forge.
pub(crate) const STATUS_FD: i32 = 3;
/// The fd of an interactive run's channel (a unix socket to forge): the builder's
/// stdin without a terminal; with one, the way the pty's master goes to forge.
pub(crate) const CHANNEL_FD: i32 = 4;

/// Everything the helper needs, resolved on the host side beforehand.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Request {
    pub spec: SandboxSpec,
    /// Value of FORGE_BUILD_CORES.
    pub cores: u32,
    /// How foreign binaries run, when `spec.arch` is not the host's.
    pub emulator: Option<Emulator>,
    /// The caller's window size, given to the pty of an interactive run at its start.
    #[serde(default)]
    pub window: Option<super::tty::WindowSize>,
    /// The caller's CPUs: the builder's mask, restored just before it execs (the
    /// start runs pinned to one CPU, see `affinity`). Empty: nothing to restore.
    #[serde(default)]
    pub cpus: Vec<usize>,
}

/// How a foreign architecture's programs are run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) enum Emulator {
    /// Register this static qemu in the sandbox's own binfmt_misc (Linux >= 6.7).
    Register { interpreter: PathBuf },
    /// The host registered a handler with the F flag: nothing to do inside.
    Host { handler: PathBuf },
}

/// The setup step a failure happened at; the diagnosis depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Step {
    Request,
    Unshare,
    IdMap,
    Fork,
    Mount,
    Overlay,
    Proc,
    MountAttr,
    PivotRoot,
    Hostname,
    Loopback,
    Binfmt,
    Limits,
    Capabilities,
    Landlock,
    Seccomp,
    Cwd,
    Terminal,
    Exec,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Request => "reading the request",
            Step::Unshare => "creating the namespaces",
            Step::IdMap => "mapping uid 0 to the caller",
            Step::Fork => "starting the sandbox's init",
            Step::Mount => "mounting",
            Step::Overlay => "mounting the root (overlayfs)",
            Step::Proc => "mounting /proc",
            Step::MountAttr => "making mounts read-only",
            Step::PivotRoot => "pivot_root",
            Step::Hostname => "setting the hostname",
            Step::Loopback => "bringing up loopback",
            Step::Binfmt => "registering the qemu emulator",
            Step::Limits => "limiting nested namespaces",
            Step::Capabilities => "dropping capabilities",
            Step::Landlock => "enabling Landlock",
            Step::Seccomp => "installing the seccomp filter",
            Step::Cwd => "entering the working directory",
            Step::Terminal => "setting up the terminal",
            Step::Exec => "exec",
        })
    }
}

/// A setup step that failed, with the errno the kernel gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Failure {
    pub step: Step,
    pub path: Option<PathBuf>,
    pub errno: i32,
    pub detail: Option<String>,
}

impl Failure {
    pub fn new(step: Step, errno: nix::errno::Errno) -> Failure {
        Failure { step, path: None, errno: errno as i32, detail: None }
    }

    /// A failure of `step` at `path`, for `map_err`. The path is converted only on
    /// error: init makes these for every mount, and an allocation there dirties
    /// heap pages it shares copy-on-write with forge.
    pub fn at(step: Step, path: impl Into<PathBuf>) -> impl FnOnce(nix::errno::Errno) -> Failure {
        move |e| Failure { step, path: Some(path.into()), errno: e as i32, detail: None }
    }

    /// As [`Failure::at`], for an `std::io::Error`.
    pub fn io(step: Step, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Failure {
        move |e| Failure { step, path: Some(path.into()), errno: e.raw_os_error().unwrap_or(libc::EIO), detail: None }
    }

    pub fn detail(mut self, d: impl Into<String>) -> Failure {
        self.detail = Some(d.into());
        self
    }
}

/// The one message that ends a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Report {
    Exited(i32),
    Signaled(i32),
    Failed(Failure),
}

impl Report {
    /// Sends the report on [`STATUS_FD`]. One short line is one atomic pipe write.
    pub fn send(&self) {
        let Ok(mut line) = serde_json::to_vec(self) else { return };
        line.push(b'\n');
        // SAFETY: writing a live buffer to a raw fd; a closed fd only yields EBADF.
        unsafe { libc::write(STATUS_FD, line.as_ptr().cast(), line.len()) };
    }

    /// The first report in what the status pipe carried.
    pub fn parse(bytes: &[u8]) -> Option<Report> {
        let line = bytes.split(|&b| b == b'\n').next()?;
        serde_json::from_slice(line).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_report_wins() {
        let a = serde_json::to_string(&Report::Failed(Failure::new(Step::Exec, nix::errno::Errno::ENOENT))).unwrap();
        let b = serde_json::to_string(&Report::Exited(127)).unwrap();
        let got = Report::parse(format!("{a}\n{b}\n").as_bytes()).unwrap();
        assert!(matches!(got, Report::Failed(Failure { step: Step::Exec, errno: libc::ENOENT, .. })));
    }

    #[test]
    fn garbage_is_no_report() {
        assert_eq!(Report::parse(b"{not json"), None);
        assert_eq!(Report::parse(b""), None);
    }
}
