//! Test helpers: the shared real-Alpine fixtures and the committed test keys.

use std::path::{Path, PathBuf};

use super::keys::Keys;
use super::sign::SigningKey;

/// `shared/fixtures/alpine`, found by walking up from the crate (a worktree may sit one
/// level deeper than the main checkout); `None` with a SKIP message when absent.
pub fn alpine_fixtures() -> Option<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = here.ancestors().map(|a| a.join("shared/fixtures/alpine")).find(|p| p.is_dir());
    if found.is_none() {
        eprintln!("SKIP: shared/fixtures/alpine not found above {}; real-Alpine-data tests skipped", here.display());
    }
    found
}

pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/apk/testdata")
}

/// The test signing key (`forge-test@example.invalid-1.rsa`, PKCS#8).
pub fn test_key() -> SigningKey {
    SigningKey::load(&testdata().join("forge-test@example.invalid-1.rsa")).unwrap()
}

/// Another key (`forge-other@example.invalid-2.rsa`, PKCS#1).
pub fn other_key() -> SigningKey {
    SigningKey::load(&testdata().join("forge-other@example.invalid-2.rsa")).unwrap()
}

/// A temporary keys directory holding the public halves of `keys`.
pub fn keys_dir(keys: &[&SigningKey]) -> (tempfile::TempDir, Keys) {
    let dir = tempfile::tempdir().unwrap();
    for k in keys {
        std::fs::write(dir.path().join(&k.name), k.public_key_pem()).unwrap();
    }
    let keys = Keys::open(dir.path()).unwrap();
    (dir, keys)
}

/// A keys directory where the file named `name` holds `key`'s public half (to pose as
/// another key).
pub fn keys_dir_posing(name: &str, key: &SigningKey) -> (tempfile::TempDir, Keys) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), key.public_key_pem()).unwrap();
    let keys = Keys::open(dir.path()).unwrap();
    (dir, keys)
}

/// Whether a host tool is on PATH; prints a SKIP line when not.
pub fn forge_have_tool(name: &str) -> bool {
    let found =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file())).unwrap_or(false);
    if !found {
        eprintln!("SKIP: `{name}` is not installed");
    }
    found
}
