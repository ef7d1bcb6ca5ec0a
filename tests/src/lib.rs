//! Helpers for the end-to-end tests: find the built `forge`, run it, reach the
//! shared fixtures.

pub mod elf;
pub mod http;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `forge` binary built alongside these tests (same profile directory).
pub fn forge_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/forge
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let bin = profile_dir.join("forge");
    assert!(
        bin.exists(),
        "{} is missing: run the tests through `cargo nextest run --workspace` so the binary is built",
        bin.display()
    );
    bin
}

/// A `forge` command with a private store root and no inherited FORGE_* settings.
pub fn forge(store: &Path) -> Command {
    let mut cmd = Command::new(forge_bin());
    cmd.arg("--store").arg(store);
    cmd.env_remove("FORGE_STORE").env_remove("FORGE_MIRRORS");
    cmd
}

/// Runs a command and returns its output, failing the test with both streams when
/// it exits non-zero.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// stdout as trimmed text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `../shared/fixtures/alpine` seen from the repository, or `None` with a message
/// saying the test is skipped.
pub fn alpine_fixtures() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/alpine");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: {} is absent; the real-Alpine-data tests need ../shared next to the repository",
            dir.display()
        );
        None
    }
}

/// Whether a host tool is on PATH; when not, prints why the caller skips.
pub fn have_tool(name: &str) -> bool {
    let found =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file())).unwrap_or(false);
    if !found {
        eprintln!("SKIP: `{name}` is not installed (.ci/run installs it)");
    }
    found
}
