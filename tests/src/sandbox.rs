//! Helpers for the sandbox tests: a busybox sysroot, and `forge sandbox` run either
//! as root or as the unprivileged user `forge-test` (which CI creates).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// The unprivileged user the tests run forge as when they run as root.
pub const TEST_USER: &str = "forge-test";

/// Who runs forge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum As {
    Root,
    User,
}

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// uid of `name`, when that user exists.
pub fn uid_of(name: &str) -> Option<u32> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next() == Some(name)).then(|| f.nth(1)?.parse().ok()).flatten()
    })
}

/// Makes a folder readable by everyone (tempdirs are 0700).
pub fn open_up(p: &Path) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A root folder holding a static busybox at /bin/busybox and its applets as
/// symlinks in /bin, or `None` (with a message) when busybox-static is missing.
pub fn busybox_root(busybox: &Path) -> Option<TempDir> {
    if !busybox.is_file() {
        eprintln!("SKIP: {} is missing (apt-get install busybox-static)", busybox.display());
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    open_up(dir.path());
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::copy(busybox, bin.join("busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines().filter(|a| *a != "busybox") {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    Some(dir)
}

/// One test's world: a busybox root and who runs forge.
pub struct Ctx {
    pub root: TempDir,
    pub who: As,
    /// uid forge runs as.
    pub uid: u32,
    forge: PathBuf,
    _forge_copy: Option<TempDir>,
}

impl Ctx {
    /// The context, or `None` with a message when this variant cannot run here.
    pub fn new(who: As) -> Option<Ctx> {
        Ctx::with_busybox(who, Path::new("/bin/busybox"))
    }

    pub fn with_busybox(who: As, busybox: &Path) -> Option<Ctx> {
        let root_user = euid() == 0;
        let uid = match who {
            As::Root if !root_user => {
                eprintln!("SKIP: not root; the as-root variant needs root");
                return None;
            }
            As::Root => 0,
            As::User if !root_user => euid(),
            As::User => match uid_of(TEST_USER) {
                Some(uid) => uid,
                None => {
                    eprintln!("SKIP: user {TEST_USER} does not exist (.ci/run creates it with useradd)");
                    return None;
                }
            },
        };
        let root = busybox_root(busybox)?;
        let (forge, copy) = if who == As::User && root_user {
            // The build tree may sit where the test user cannot reach: use a copy.
            let dir = tempfile::tempdir().unwrap();
            open_up(dir.path());
            let bin = dir.path().join("forge");
            std::fs::copy(crate::forge_bin(), &bin).unwrap();
            (bin, Some(dir))
        } else {
            (crate::forge_bin(), None)
        };
        Some(Ctx { root, who, uid, forge, _forge_copy: copy })
    }

    /// The forge binary this context runs (readable by its user).
    pub fn forge_path(&self) -> &Path {
        &self.forge
    }

    /// `forge sandbox --root ROOT` as the right user; add options, `--`, the command.
    pub fn sandbox(&self) -> Command {
        let mut cmd = if self.who == As::User && euid() == 0 {
            let mut c = Command::new("runuser");
            c.args(["-u", TEST_USER, "--"]).arg(&self.forge);
            c
        } else {
            Command::new(&self.forge)
        };
        cmd.arg("sandbox").arg("--root").arg(self.root.path());
        cmd.env_remove("FORGE_STORE");
        cmd
    }

    /// Runs a shell script inside with extra forge options.
    pub fn sh_with(&self, opts: &[&str], script: &str) -> Output {
        self.sandbox().args(opts).args(["--", "/bin/sh", "-c", script]).output().unwrap()
    }

    /// Runs a shell script inside and returns its stdout, failing on a non-zero exit.
    pub fn sh(&self, script: &str) -> String {
        let out = self.sh_with(&[], script);
        assert!(
            out.status.success(),
            "sandbox script failed ({})\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A folder the sandboxed user may write to (for --rw).
    pub fn writable_dir(&self) -> TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(dir.path(), Some(self.uid), None).unwrap();
        open_up(dir.path());
        dir
    }
}

/// Generates `NAME::as_root` and `NAME::as_user` from one test body taking a [`Ctx`].
#[macro_export]
macro_rules! as_root_and_user {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn as_root() {
                if let Some(ctx) = $crate::sandbox::Ctx::new($crate::sandbox::As::Root) {
                    ($body)(ctx)
                }
            }
            #[test]
            fn as_user() {
                if let Some(ctx) = $crate::sandbox::Ctx::new($crate::sandbox::As::User) {
                    ($body)(ctx)
                }
            }
        }
    };
}
