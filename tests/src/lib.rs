//! Helpers for the end-to-end tests: find the built `forge`, run it, reach the
//! shared fixtures.

pub mod elf;
pub mod http;
pub mod sandbox;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// target/<profile>, where cargo puts the binaries these tests run.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>
    exe.parent().and_then(Path::parent).expect("target/<profile>").to_owned()
}

/// The `forge` binary built alongside these tests (same profile directory), or the
/// one `FORGE_TEST_BIN` names: how another build of forge (`cargo forge-release-musl`)
/// is put through the same tests.
pub fn forge_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("FORGE_TEST_BIN") {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "FORGE_TEST_BIN={} is not a file", bin.display());
        return bin;
    }
    let bin = profile_dir().join("forge");
    assert!(
        bin.exists(),
        "{} is missing: run the tests through `cargo nextest run --workspace` so the binary is built",
        bin.display()
    );
    bin
}

/// The `forge-example` binary (tests/example-recipes): forge's command line over
/// forge's recipes plus the small ones the scheduling tests build.
pub fn example_bin() -> PathBuf {
    let bin = profile_dir().join("forge-example");
    assert!(bin.exists(), "{} is missing: run the tests through `cargo nextest run --workspace`", bin.display());
    bin
}

/// `forge-example` with a private store root, like [`forge`].
pub fn example(store: &Path) -> Command {
    let mut cmd = Command::new(example_bin());
    cmd.arg("--store").arg(store);
    cmd.env_remove("FORGE_STORE").env_remove("FORGE_MIRRORS").env_remove("FORGE_EXAMPLE_SALT");
    cmd.env_remove("FORGE_GIT_MIRRORS").env_remove("FORGE_CONFIG").env_remove("FORGE_SIGNING_KEY");
    cmd.env_remove("FORGE_APK_KEY");
    cmd
}

/// The mirror `.ci/setup.d/mirror.sh` seeds (`$FORGE_TEST_MIRROR`, else
/// /var/cache/forge-test-mirror), or `None` with a message saying the test is skipped.
pub fn test_mirror() -> Option<PathBuf> {
    let dir = std::env::var_os("FORGE_TEST_MIRROR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/forge-test-mirror"));
    if dir.join("sha256").is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIP: no seeded mirror at {}; run `recipes/mirror/seed-debian.sh {}`", dir.display(), dir.display());
        None
    }
}

/// A `forge` command with a private store root and no inherited FORGE_* settings.
pub fn forge(store: &Path) -> Command {
    let mut cmd = Command::new(forge_bin());
    cmd.arg("--store").arg(store);
    cmd.env_remove("FORGE_STORE")
        .env_remove("FORGE_MIRRORS")
        .env_remove("FORGE_GIT_MIRRORS")
        .env_remove("FORGE_CONFIG")
        .env_remove("FORGE_SIGNING_KEY")
        .env_remove("FORGE_APK_KEY");
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

/// `nix-hash --type sha256 --base32 PATH`: the oracle for NAR hashes of trees.
pub fn nix_hash(path: &Path) -> String {
    let out = Command::new("nix-hash").args(["--type", "sha256", "--base32"]).arg(path).output().expect("run nix-hash");
    assert!(out.status.success(), "nix-hash {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The SPDX project's validator `pyspdxtools` (Python package spdx-tools):
/// `$FORGE_PYSPDXTOOLS`, then PATH, then the venv .ci/setup.d/spdx-tools.sh makes;
/// `None` with a message saying the test skips it.
pub fn pyspdxtools() -> Option<PathBuf> {
    let from_env = std::env::var_os("FORGE_PYSPDXTOOLS").map(PathBuf::from);
    let on_path = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("pyspdxtools")).find(|p| p.is_file()));
    let ci = Some(PathBuf::from("/opt/spdx-tools/bin/pyspdxtools")).filter(|p| p.is_file());
    let found = from_env.or(on_path).or(ci);
    if found.is_none() {
        eprintln!("SKIP: pyspdxtools is not installed (.ci/setup.d/spdx-tools.sh installs it)");
    }
    found
}

/// The sorted names of the files in `dir` whose names end with `suffix`.
pub fn file_names_ending(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a readable folder entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
}
