use super::*;
use crate::apk::build::entries_from_dir;
use crate::apk::testutil::forge_have_tool;

fn cc(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("cc").current_dir(dir).args(args).output().unwrap();
    assert!(out.status.success(), "cc {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A package tree built by the host's cc: `usr/lib/libfoo.so.1.2.3` (soname
/// `libfoo.so.1`) with its symlink, `usr/bin/prog` needing it and libc, a symlink to
/// the program, a private library outside the library folders, a text file.
fn cc_tree() -> Option<tempfile::TempDir> {
    if !forge_have_tool("cc") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let (d, root) = (dir.path(), dir.path().join("root"));
    std::fs::write(d.join("foo.c"), "int foo(void) { return 42; }\n").unwrap();
    std::fs::write(d.join("prog.c"), "int foo(void);\nint main(void) { return foo() - 42; }\n").unwrap();
    cc(d, &["-shared", "-fPIC", "-o", "libfoo.so.1.2.3", "foo.c", "-Wl,-soname,libfoo.so.1"]);
    cc(d, &["-o", "prog", "prog.c", "-L.", "-l:libfoo.so.1.2.3"]);
    for sub in ["usr/lib", "usr/bin", "usr/libexec/foo", "etc"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::copy(d.join("libfoo.so.1.2.3"), root.join("usr/lib/libfoo.so.1.2.3")).unwrap();
    std::fs::copy(d.join("libfoo.so.1.2.3"), root.join("usr/libexec/foo/libprivate.so")).unwrap();
    std::os::unix::fs::symlink("libfoo.so.1.2.3", root.join("usr/lib/libfoo.so.1")).unwrap();
    std::fs::copy(d.join("prog"), root.join("usr/bin/prog")).unwrap();
    std::os::unix::fs::symlink("prog", root.join("usr/bin/prog-again")).unwrap();
    std::fs::write(root.join("etc/prog.conf"), "x=1\n").unwrap();
    Some(dir)
}

fn names(deps: &[Dep]) -> Vec<String> {
    deps.iter().map(Dep::to_string).collect()
}

#[test]
fn shared_libraries_commands_and_needed_libraries_become_so_and_cmd_entries() {
    let Some(dir) = cc_tree() else { return };
    let entries = entries_from_dir(&dir.path().join("root")).unwrap();
    let found = scan(&entries, "1.0-r0", "x86_64", "t").unwrap();
    assert_eq!(names(&found.provides), ["so:libfoo.so.1=1.2.3", "cmd:prog=1.0-r0", "cmd:prog-again=1.0-r0"]);
    // libfoo is provided by the package itself; the host's cc links glibc.
    assert_eq!(names(&found.depends), ["so:libc.so.6"]);
}

#[test]
fn elf_files_in_a_noarch_package_are_refused() {
    let Some(dir) = cc_tree() else { return };
    let entries = entries_from_dir(&dir.path().join("root")).unwrap();
    let err = scan(&entries, "1.0-r0", "noarch", "demo").unwrap_err().to_string();
    assert!(err.contains("noarch") && err.contains("demo") && err.contains("ELF64"), "{err}");
}

#[test]
fn so_versions_come_from_the_file_name_as_abuild_takes_them() {
    assert_eq!(so_version("libz.so.1.3.1"), "1.3.1");
    assert_eq!(so_version("libfoo.so"), "0");
    assert_eq!(so_version("libc.musl-x86_64.so.1"), "1");
    assert_eq!(so_version("libx.so.1.2.dbg"), "0");
    assert!(is_shared_object_name("libfoo.so.1") && is_shared_object_name("libfoo.so"));
    assert!(!is_shared_object_name("foo.so.debug") && !is_shared_object_name("prog"));
}

#[test]
fn a_package_without_elf_files_has_only_its_commands() {
    let mut script = BuildEntry::new("usr/bin/hello", Kind::File, 0o755, b"#!/bin/sh\n");
    script.mode = 0o755;
    let data = BuildEntry::new("usr/share/hello/data", Kind::File, 0o644, b"\x7fELF but not really");
    let found = scan(&[script, data], "2-r1", "noarch", "t").unwrap();
    assert_eq!(names(&found.provides), ["cmd:hello=2-r1"]);
    assert!(found.depends.is_empty());
}

#[test]
fn musl_files_depend_on_alpines_musl_soname_not_on_libc_so() {
    let musl = Some("/lib/ld-musl-aarch64.so.1");
    assert_eq!(alpine_soname("libc.so", musl, "aarch64"), "libc.musl-aarch64.so.1");
    assert_eq!(alpine_soname("libpthread.so.0", musl, "aarch64"), "libc.musl-aarch64.so.1");
    assert_eq!(alpine_soname("libm.so.6", Some("/lib/ld-musl-x86_64.so.1"), "x86_64"), "libc.musl-x86_64.so.1");
    // A library has no interpreter: musl's soname is the sign.
    assert_eq!(alpine_soname("libc.so", None, "aarch64"), "libc.musl-aarch64.so.1");
    // Other libraries, and glibc's libc and libm, keep their names.
    assert_eq!(alpine_soname("libcrypto.so.3", musl, "aarch64"), "libcrypto.so.3");
    assert_eq!(alpine_soname("libglib-2.0.so.0", musl, "aarch64"), "libglib-2.0.so.0");
    assert_eq!(alpine_soname("libc.so.6", Some("/lib/ld-linux-aarch64.so.1"), "aarch64"), "libc.so.6");
    assert_eq!(alpine_soname("libm.so.6", None, "aarch64"), "libm.so.6");
}
