//! What one sandboxed step is given: its root, the paths it may see, its environment and
//! its limits. The spec is plain data: it crosses to the helper process as JSON.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SandboxError;

/// `PATH` inside the sandbox unless the build sets its own.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// `HOME` inside the sandbox: a folder that does not exist, so nothing reads a home.
pub const HOMELESS: &str = "/homeless-shelter";
/// The hostname every sandbox gets.
pub const DEFAULT_HOSTNAME: &str = "forge";
/// Where the build directory is inside the sandbox.
pub const DEFAULT_BUILD_DIR: &str = "/build";
/// Cap on the build log when the caller sets none: 64 MiB.
pub const DEFAULT_LOG_LIMIT: u64 = 64 << 20;

/// A CPU architecture the sandbox can run programs of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// Intel/AMD 64-bit.
    X86_64,
    /// ARM 64-bit (the device), run under qemu-user on other hosts.
    Aarch64,
}

impl Arch {
    /// The architecture forge itself was built for.
    pub fn native() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        }
    }

    /// The name as `uname -m` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Arch {
    type Err = SandboxError;

    fn from_str(s: &str) -> Result<Arch, SandboxError> {
        match s {
            "x86_64" | "amd64" => Ok(Arch::X86_64),
            "aarch64" | "arm64" => Ok(Arch::Aarch64),
            _ => Err(invalid("arch", format!("`{s}` is not x86_64 or aarch64"))),
        }
    }
}

/// A host path made visible at another path inside the sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    /// The path on the host (absolute, must exist).
    pub host: PathBuf,
    /// Where it appears inside (absolute, no `.` or `..`).
    pub inside: PathBuf,
}

impl Bind {
    /// `host` visible at `inside`.
    pub fn new(host: impl Into<PathBuf>, inside: impl Into<PathBuf>) -> Bind {
        Bind { host: host.into(), inside: inside.into() }
    }
}

impl FromStr for Bind {
    type Err = SandboxError;

    /// Parses `HOST:INSIDE`, or `PATH` for the same path on both sides.
    ///
    /// ```
    /// use forge_engine::sandbox::Bind;
    /// assert_eq!("./out:/out".parse::<Bind>().unwrap(), Bind::new("./out", "/out"));
    /// assert_eq!("/data".parse::<Bind>().unwrap(), Bind::new("/data", "/data"));
    /// assert!(":/out".parse::<Bind>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Bind, SandboxError> {
        match s.split_once(':') {
            Some((host, inside)) if !host.is_empty() && !inside.is_empty() => Ok(Bind::new(host, inside)),
            Some(_) => Err(invalid("bind", format!("`{s}` is not HOST:INSIDE"))),
            None => Ok(Bind::new(s, s)),
        }
    }
}

/// How an interactive run (`forge shell`, `forge sandbox -i`) meets the caller's
/// terminal. Builds never set it: their stdin is /dev/null, they have no terminal and
/// `TERM` is `dumb`.
///
/// ```
/// use forge_engine::sandbox::{Interactive, SandboxSpec};
/// let mut spec = SandboxSpec::new("/", vec!["/bin/sh".into()]);
/// spec.interactive = Some(Interactive { tty: true, term: Some("xterm-256color".into()) });
/// assert_eq!(spec.environment(1)["TERM"], "xterm-256color");
/// spec.interactive = None;
/// assert_eq!(spec.environment(1)["TERM"], "dumb");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interactive {
    /// Give the command a terminal of its own: a pty of a devpts instance private to
    /// the sandbox (`/dev/pts`, `/dev/ptmx`), its controlling terminal, relayed to
    /// this process's stdin and stdout (which must then be a terminal; it is in raw
    /// mode for the run). Without it, stdin is relayed through a socket and output
    /// goes through the usual pipes.
    pub tty: bool,
    /// `TERM` inside, normally the caller's; `dumb` when `None`.
    pub term: Option<String>,
}

impl Interactive {
    /// What this process's stdin calls for: a terminal (with the caller's `TERM`)
    /// when stdin is one, else stdin passed through as a stream.
    pub fn for_stdin() -> Interactive {
        let tty = std::io::IsTerminal::is_terminal(&std::io::stdin());
        let term = if tty { std::env::var("TERM").ok().filter(|t| !t.is_empty()) } else { None };
        Interactive { tty, term }
    }
}

/// Everything a sandboxed step gets. Build it with [`SandboxSpec::new`] and set fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxSpec {
    /// The read-only root: one merged sysroot, or layers stacked with overlayfs, the
    /// first at the bottom (later layers hide files of earlier ones).
    pub root_layers: Vec<PathBuf>,
    /// Host paths visible read-only (inputs, at their `/forge/store/...` paths).
    pub ro_binds: Vec<Bind>,
    /// Host paths visible read-write (the outputs). Mounted nosuid; setuid and setgid
    /// bits are stripped from them after the run.
    pub rw_binds: Vec<Bind>,
    /// The build's own variables, added to (and overriding) the fixed set.
    pub env: BTreeMap<String, String>,
    /// Working directory of the builder; [`SandboxSpec::build_dir`] when `None`.
    pub cwd: Option<PathBuf>,
    /// The program and its arguments; a program without `/` is looked up in `PATH`.
    pub argv: Vec<String>,
    /// The sandbox's hostname.
    pub hostname: String,
    /// Wall-clock limit; every process of the sandbox is killed when it passes.
    pub timeout: Option<Duration>,
    /// File the builder's stdout and stderr are copied to (created or truncated).
    pub log: Option<PathBuf>,
    /// Bytes written to `log` at most; the rest is dropped and the log says so.
    pub log_limit: u64,
    /// The build directory inside the sandbox (writable).
    pub build_dir: PathBuf,
    /// Host folder backing the build directory; a private tmpfs when `None`. Created
    /// if missing, removed after the run unless the run failed and `keep_failed` is set.
    pub build_dir_host: Option<PathBuf>,
    /// Keep `build_dir_host` when the step fails, for inspection.
    pub keep_failed: bool,
    /// The architecture of the programs to run: foreign ones run under qemu-user.
    pub arch: Arch,
    /// `FORGE_BUILD_CORES` inside; 0 means the number of CPUs forge may use.
    pub cores: u32,
    /// Stdin, terminal and `TERM` of an interactive run; `None` for builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<Interactive>,
}

impl SandboxSpec {
    /// A spec with the defaults: no binds, tmpfs build dir at `/build`, hostname
    /// `forge`, no timeout, no log, native architecture.
    pub fn new(root: impl Into<PathBuf>, argv: Vec<String>) -> SandboxSpec {
        SandboxSpec {
            root_layers: vec![root.into()],
            ro_binds: Vec::new(),
            rw_binds: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
            argv,
            hostname: DEFAULT_HOSTNAME.to_owned(),
            timeout: None,
            log: None,
            log_limit: DEFAULT_LOG_LIMIT,
            build_dir: PathBuf::from(DEFAULT_BUILD_DIR),
            build_dir_host: None,
            keep_failed: false,
            arch: Arch::native(),
            cores: 0,
            interactive: None,
        }
    }

    /// The working directory the builder starts in.
    pub fn working_dir(&self) -> &Path {
        self.cwd.as_deref().unwrap_or(&self.build_dir)
    }

    /// The complete environment of the builder: the fixed set documented in
    /// docs/architecture.md, then the build's own variables over it; in an
    /// interactive run, the caller's `TERM` last (the terminal is the caller's).
    pub fn environment(&self, cores: u32) -> BTreeMap<String, String> {
        let fixed = [
            ("PATH", DEFAULT_PATH.to_owned()),
            ("HOME", HOMELESS.to_owned()),
            ("TMPDIR", "/tmp".to_owned()),
            ("SOURCE_DATE_EPOCH", "0".to_owned()),
            ("TZ", "UTC".to_owned()),
            ("LANG", "C.UTF-8".to_owned()),
            ("LC_ALL", "C.UTF-8".to_owned()),
            ("TERM", "dumb".to_owned()),
            ("FORGE_BUILD_CORES", cores.to_string()),
            ("FORGE_BUILD_DIR", self.build_dir.display().to_string()),
        ];
        let mut env: BTreeMap<String, String> = fixed.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        env.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let Some(term) = self.interactive.as_ref().and_then(|i| i.term.clone()) {
            env.insert("TERM".to_owned(), term);
        }
        env
    }

    /// Checks everything that can be checked before starting: absolute, clean paths;
    /// existing host paths; no mount nested in another; valid names and variables.
    pub fn validate(&self) -> Result<(), SandboxError> {
        self.validate_command()?;
        if self.root_layers.is_empty() {
            return Err(invalid("root", "at least one root layer is needed".into()));
        }
        for layer in &self.root_layers {
            host_path_exists("root layer", layer, true)?;
        }
        for bind in self.ro_binds.iter().chain(&self.rw_binds) {
            host_path_exists("bind source", &bind.host, false)?;
        }
        if let Some(host) = &self.build_dir_host {
            require_absolute("build directory on the host", host)?;
        }
        self.validate_mount_points()?;
        validate_hostname(&self.hostname)?;
        for (k, v) in &self.env {
            let bad_key = k.is_empty() || k.contains(['=', '\0']);
            if bad_key || v.contains('\0') {
                return Err(invalid("env", format!("`{k}` is not a valid variable (empty, `=` or NUL)")));
            }
        }
        if let Some(i) = &self.interactive {
            if i.term.as_ref().is_some_and(|t| t.contains('\0')) {
                return Err(invalid("TERM", "contains a NUL byte".into()));
            }
            if i.tty && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                return Err(invalid("stdin", "a terminal for the command needs stdin to be a terminal".into()));
            }
        }
        if self.timeout == Some(Duration::ZERO) {
            return Err(invalid("timeout", "must be more than zero".into()));
        }
        Ok(())
    }

    fn validate_command(&self) -> Result<(), SandboxError> {
        match self.argv.first() {
            None => return Err(invalid("argv", "no command to run".into())),
            Some(p) if p.is_empty() => return Err(invalid("argv", "the program name is empty".into())),
            Some(_) => {}
        }
        if self.argv.iter().any(|a| a.contains('\0')) {
            return Err(invalid("argv", "an argument contains a NUL byte".into()));
        }
        require_inside("working directory", self.working_dir())?;
        Ok(())
    }

    /// Mount points must be clean absolute paths, outside /proc and /dev, and none
    /// may lie inside another (the order of mounting would change what is seen).
    fn validate_mount_points(&self) -> Result<(), SandboxError> {
        let mut points: Vec<&Path> = vec![Path::new("/tmp"), &self.build_dir];
        points.extend(self.ro_binds.iter().chain(&self.rw_binds).map(|b| b.inside.as_path()));
        for p in &points {
            require_inside("mount point", p)?;
            if p == &Path::new("/") {
                return Err(invalid("mount point", "`/` is the root; use root layers".into()));
            }
            if p.starts_with("/proc") || p.starts_with("/dev") {
                return Err(invalid("mount point", format!("{} is reserved for the sandbox", p.display())));
            }
        }
        for (i, a) in points.iter().enumerate() {
            for b in &points[i + 1..] {
                if a.starts_with(b) || b.starts_with(a) {
                    let (a, b) = (a.display(), b.display());
                    return Err(invalid("mount point", format!("{a} and {b} overlap; mount points may not nest")));
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn invalid(what: &str, detail: String) -> SandboxError {
    SandboxError::InvalidSpec { what: what.to_owned(), detail }
}

fn require_absolute(what: &str, p: &Path) -> Result<(), SandboxError> {
    if p.is_absolute() {
        Ok(())
    } else {
        Err(invalid(what, format!("{} is not an absolute path", p.display())))
    }
}

/// Inside paths are absolute and made only of normal components, so they cannot
/// climb out of the root nor mean two things.
fn require_inside(what: &str, p: &Path) -> Result<(), SandboxError> {
    require_absolute(what, p)?;
    let clean = p.components().all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    let text = p.to_str();
    if !clean || text.is_none() || text.is_some_and(|t| t.contains('\0')) {
        return Err(invalid(what, format!("{} must be absolute, UTF-8, without `.` or `..`", p.display())));
    }
    Ok(())
}

fn host_path_exists(what: &str, p: &Path, dir: bool) -> Result<(), SandboxError> {
    require_absolute(what, p)?;
    if p.to_str().is_none() {
        return Err(invalid(what, format!("{} is not UTF-8", p.display())));
    }
    match std::fs::metadata(p) {
        Ok(m) if dir && !m.is_dir() => Err(invalid(what, format!("{} is not a directory", p.display()))),
        Ok(_) => Ok(()),
        Err(source) => Err(SandboxError::Io { path: p.to_owned(), source }),
    }
}

fn validate_hostname(name: &str) -> Result<(), SandboxError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(invalid("hostname", format!("`{name}` is not 1-64 letters, digits, `-` or `.`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SandboxSpec {
        SandboxSpec::new("/", vec!["true".into()])
    }

    #[test]
    fn defaults_validate() {
        spec().validate().unwrap();
    }

    #[test]
    fn environment_is_the_fixed_set_plus_the_builds_own() {
        let mut s = spec();
        s.env.insert("PATH".into(), "/x".into());
        s.env.insert("out".into(), "/forge/store/x".into());
        let env = s.environment(3);
        let keys: Vec<&str> = env.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "FORGE_BUILD_CORES",
                "FORGE_BUILD_DIR",
                "HOME",
                "LANG",
                "LC_ALL",
                "PATH",
                "SOURCE_DATE_EPOCH",
                "TERM",
                "TMPDIR",
                "TZ",
                "out"
            ]
        );
        assert_eq!(env["PATH"], "/x");
        assert_eq!(env["FORGE_BUILD_CORES"], "3");
        assert_eq!(env["HOME"], "/homeless-shelter");
    }

    #[test]
    fn traversal_in_an_inside_path_is_refused() {
        let mut s = spec();
        s.ro_binds.push(Bind::new("/", "/forge/../etc"));
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("/forge/../etc"), "{err}");
    }

    #[test]
    fn nested_mount_points_are_refused() {
        let mut s = spec();
        s.ro_binds.push(Bind::new("/", "/build/in"));
        assert!(s.validate().unwrap_err().to_string().contains("nest"));
    }

    #[test]
    fn mounts_over_proc_dev_or_root_are_refused() {
        for inside in ["/proc/x", "/dev", "/"] {
            let mut s = spec();
            s.rw_binds.push(Bind::new("/", inside));
            assert!(s.validate().is_err(), "{inside}");
        }
    }

    #[test]
    fn bad_variables_hostnames_and_commands_are_refused() {
        let mut s = spec();
        s.env.insert("A=B".into(), "x".into());
        assert!(s.validate().is_err());
        let mut s = spec();
        s.hostname = "a b".into();
        assert!(s.validate().is_err());
        let mut s = spec();
        s.argv.clear();
        assert!(s.validate().is_err());
        let mut s = spec();
        s.argv.push("a\0b".into());
        assert!(s.validate().is_err());
    }

    #[test]
    fn missing_root_is_an_io_error_naming_it() {
        let s = SandboxSpec::new("/nonexistent/root", vec!["true".into()]);
        assert!(s.validate().unwrap_err().to_string().contains("/nonexistent/root"));
    }

    #[test]
    fn bind_parses_host_colon_inside_or_one_path() {
        assert_eq!("/a:/b".parse::<Bind>().unwrap(), Bind::new("/a", "/b"));
        assert_eq!("/a".parse::<Bind>().unwrap(), Bind::new("/a", "/a"));
        assert!(":/b".parse::<Bind>().is_err());
    }

    #[test]
    fn arch_parses_both_spellings() {
        assert_eq!("arm64".parse::<Arch>().unwrap(), Arch::Aarch64);
        assert_eq!("x86_64".parse::<Arch>().unwrap(), Arch::X86_64);
        assert!("mips".parse::<Arch>().is_err());
    }
}
