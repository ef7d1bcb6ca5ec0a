//! `forge abi check` end to end: programs built by the host's cc against roots made of
//! the host's glibc, and Debian's arm64 glibc against itself.

use std::path::Path;
use std::process::Output;

use forge_engine::elf::Elf;
use forge_tests::elf::{arm64_root, host_glibc_root, put, versioned_fixture};
use forge_tests::*;

fn abi_check(root: &Path, args: &[&str]) -> Output {
    let store = tempfile::tempdir().unwrap();
    forge(store.path()).args(["abi", "check", "--root"]).arg(root).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The fixture's program and a root with the host's loader and libc, plus `lib` as libv.so.1.
fn root_with(dir: &Path, lib: Option<&str>) -> tempfile::TempDir {
    let interp = Elf::open(&dir.join("prog")).unwrap().interpreter.unwrap();
    let root = host_glibc_root(&interp);
    if let Some(lib) = lib {
        put(root.path(), "/usr/lib/libv.so.1", &dir.join(lib));
    }
    root
}

#[test]
fn check_passes_when_the_library_is_in_the_root() {
    let Some(dir) = versioned_fixture() else { return };
    let root = root_with(dir.path(), Some("libv2.so"));
    let out = abi_check(root.path(), &[dir.path().join("prog").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("libv.so.1 -> /usr/lib/libv.so.1"), "{}", text(&out));
}

#[test]
fn check_fails_naming_the_missing_library() {
    let Some(dir) = versioned_fixture() else { return };
    let root = root_with(dir.path(), None);
    let out = abi_check(root.path(), &[dir.path().join("prog").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("missing library libv.so.1, needed by"), "{}", text(&out));
}

#[test]
fn check_fails_naming_the_symbol_and_version_an_older_library_lacks() {
    let Some(dir) = versioned_fixture() else { return };
    let root = root_with(dir.path(), Some("libv1.so"));
    let out = abi_check(root.path(), &[dir.path().join("prog").to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(json.contains("\"kind\": \"symbol\"") && json.contains("\"symbol\": \"new_fn\""), "{json}");
    assert!(json.contains("\"version\": \"V2\"") && json.contains("\"expected_from\": \"libv.so.1\""), "{json}");
    let out = abi_check(root.path(), &[dir.path().join("prog").to_str().unwrap()]);
    assert!(text(&out).contains("missing symbol new_fn@V2"), "{}", text(&out));
}

#[test]
fn a_path_absent_from_the_host_is_looked_up_in_the_root() {
    let Some(dir) = versioned_fixture() else { return };
    let root = root_with(dir.path(), None);
    put(root.path(), "/forge-abi-test/app/prog", &dir.path().join("prog"));
    put(root.path(), "/forge-abi-test/app/lib/libv.so.1", &dir.path().join("libv2.so"));
    // Found through its $ORIGIN/lib RUNPATH, which only means something inside the root.
    let out = abi_check(root.path(), &["/forge-abi-test/app/prog"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = abi_check(root.path(), &["--in-root", "forge-abi-test/app/prog"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn unreadable_or_non_elf_input_exits_3() {
    let root = tempfile::tempdir().unwrap();
    let script = root.path().join("script.sh");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    let out = abi_check(root.path(), &[script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("not an ELF file"), "{}", text(&out));
    let out = abi_check(root.path(), &["/no/such/file/anywhere"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let out = abi_check(&root.path().join("absent"), &[script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
}

#[test]
fn an_aarch64_program_passes_against_debians_arm64_glibc_and_not_against_the_host() {
    let Some(root) = arm64_root() else { return };
    let out = abi_check(&root, &["--in-root", "/usr/bin/getent", "/usr/bin/locale"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let tmp = tempfile::tempdir().unwrap();
    let getent = root.join("usr/bin/getent");
    let out = abi_check(tmp.path(), &[getent.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("missing interpreter /lib/ld-linux-aarch64.so.1"), "{}", text(&out));
}
