//! ELF fixtures for the `elf` and `abi` tests: versioned libraries and a program built by
//! the host's `cc`, a root filesystem holding the host's glibc, Debian's arm64 glibc root.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `cc` with `args` in `dir`, failing the test with its output when it fails.
pub fn cc(dir: &Path, args: &[&str]) {
    let out = Command::new("cc").current_dir(dir).args(args).output().expect("spawn cc");
    assert!(out.status.success(), "cc {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// In a temporary directory: `libv2.so` (soname `libv.so.1`, versions V0 V1 V2: `old_fn`
/// at V1 and hidden at V0, `data_v` at V1, `new_fn` at V2), `prog` linked against it
/// (RUNPATH `$ORIGIN/lib`, a weak undefined `maybe`), and `libv1.so`, the same soname
/// without V2 nor `new_fn`. `None` (with a message) when `cc` is missing.
pub fn versioned_fixture() -> Option<tempfile::TempDir> {
    if !crate::have_tool("cc") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let write = |name: &str, text: &str| std::fs::write(d.join(name), text).unwrap();
    write("v.map", "V0 { };\nV1 { global: old_fn; data_v; local: *; } V0;\nV2 { global: new_fn; } V1;\n");
    write(
        "v.c",
        "int data_v = 7;\nint old_fn(void) { return 1; }\nint new_fn(void) { return 2; }\n\
         __asm__(\".symver old_fn_compat, old_fn@V0\");\nint old_fn_compat(void) { return 0; }\n",
    );
    write(
        "prog.c",
        "int old_fn(void); int new_fn(void); extern int data_v; __attribute__((weak)) int maybe(void);\n\
         int main(void) { return old_fn() + new_fn() + data_v + (maybe ? maybe() : 0); }\n",
    );
    write("old.map", "V0 { };\nV1 { global: old_fn; data_v; local: *; } V0;\n");
    write("old.c", "int data_v = 7;\nint old_fn(void) { return 1; }\n");
    cc(d, &["-shared", "-fPIC", "-o", "libv2.so", "v.c", "-Wl,--version-script=v.map", "-Wl,-soname,libv.so.1"]);
    cc(d, &["-shared", "-fPIC", "-o", "libv1.so", "old.c", "-Wl,--version-script=old.map", "-Wl,-soname,libv.so.1"]);
    std::fs::copy(d.join("libv2.so"), d.join("libv.so")).unwrap();
    cc(d, &["-o", "prog", "prog.c", "-L.", "-lv", "-Wl,-rpath,$ORIGIN/lib"]);
    Some(dir)
}

/// A root holding the host's own glibc: its loader at `interpreter` (through an absolute
/// symlink, as Debian lays it out) and libc.so.6 in /usr/lib.
pub fn host_glibc_root(interpreter: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let name = interpreter.rsplit('/').next().unwrap();
    std::fs::create_dir_all(r.join("lib/real")).unwrap();
    std::fs::copy(std::fs::canonicalize(interpreter).unwrap(), r.join("lib/real").join(name)).unwrap();
    let link = r.join(interpreter.trim_start_matches('/'));
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    symlink(format!("/lib/real/{name}"), link).unwrap();
    let out = Command::new("cc").arg("-print-file-name=libc.so.6").output().unwrap();
    let libc = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    put(r, "/usr/lib/libc.so.6", &std::fs::canonicalize(libc).unwrap());
    root
}

/// Copies `from` to `inside` (an absolute path in `root`), creating directories.
pub fn put(root: &Path, inside: &str, from: &Path) {
    let to = root.join(inside.trim_start_matches('/'));
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
}

/// The root made of Debian's libc6:arm64 and libc-bin:arm64 that `.ci/setup.d/abi.sh`
/// unpacks ($FORGE_TEST_ARM64_ROOT or /var/cache/forge-test-arm64), or `None` with a message.
pub fn arm64_root() -> Option<PathBuf> {
    let root = PathBuf::from(std::env::var("FORGE_TEST_ARM64_ROOT").unwrap_or("/var/cache/forge-test-arm64".into()));
    if root.join("lib/aarch64-linux-gnu/libc.so.6").exists() {
        Some(root)
    } else {
        eprintln!("SKIP arm64 part: {} is absent (run .ci/setup.d/abi.sh)", root.display());
        None
    }
}
