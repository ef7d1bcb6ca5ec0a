//! `forge hash file` against coreutils' digests.

use forge_tests::*;

#[test]
fn hash_file_hex_matches_sha256sum() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    std::fs::write(&f, b"hello\n").unwrap();
    let out = run_ok(forge(dir.path()).args(["hash", "file", "--hex"]).arg(&f));
    assert_eq!(stdout(&out), "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
}

#[test]
fn hash_file_of_a_missing_file_exits_3_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = forge(dir.path()).args(["hash", "file", "/nonexistent/x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x"));
}
