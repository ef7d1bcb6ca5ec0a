use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use super::*;
use forge_tests::elf::{arm64_root, cc, host_glibc_root, put, versioned_fixture as compiled};

/// A root with the host's glibc for `prog`'s interpreter.
fn glibc_root(prog: &Path) -> tempfile::TempDir {
    host_glibc_root(&Elf::open(prog).unwrap().interpreter.unwrap())
}

fn missing(report: &Report) -> Vec<String> {
    report.files.iter().flat_map(|f| f.missing.iter().map(|m| m.to_string())).collect()
}

#[test]
fn a_program_passes_when_the_root_has_its_loader_libc_and_library() {
    let Some(dir) = compiled() else { return };
    let prog = dir.path().join("prog");
    let root = glibc_root(&prog);
    put(root.path(), "/usr/lib/libv.so.1", &dir.path().join("libv2.so"));
    let report = check(root.path(), &[Target::Host(prog)]).unwrap();
    assert!(report.ok(), "{report}");
    let names: Vec<_> = report.files[0].loaded.iter().map(|l| l.name.as_str()).collect();
    assert!(names.contains(&"libv.so.1") && names.contains(&"libc.so.6"), "{names:?}");
    assert_eq!(report.files[0].libc, Libc::Glibc);
}

#[test]
fn a_missing_library_is_named_with_its_needer_and_the_directories_searched() {
    let Some(dir) = compiled() else { return };
    let prog = dir.path().join("prog");
    let root = glibc_root(&prog);
    let report = check(root.path(), &[Target::Host(prog.clone())]).unwrap();
    assert!(!report.ok());
    let m = &report.files[0].missing;
    // The versioned symbols it should have provided are not listed one by one.
    assert_eq!(m.len(), 1, "{report}");
    let Missing::Library { name, needed_by, searched, .. } = &m[0] else { panic!("{report}") };
    assert_eq!((name.as_str(), needed_by.as_str()), ("libv.so.1", prog.to_str().unwrap()));
    assert!(searched.contains(&"/usr/lib".to_owned()), "{searched:?}");
}

#[test]
fn an_older_library_misses_the_version_and_the_symbol_at_that_version() {
    let Some(dir) = compiled() else { return };
    let prog = dir.path().join("prog");
    let root = glibc_root(&prog);
    put(root.path(), "/usr/lib/libv.so.1", &dir.path().join("libv1.so"));
    let report = check(root.path(), &[Target::Host(prog)]).unwrap();
    let m = missing(&report);
    assert_eq!(m.len(), 2, "{report}");
    assert!(m[0].starts_with("version V2 of libv.so.1"), "{m:?}");
    assert!(m[1].starts_with("symbol new_fn@V2") && m[1].contains("expected from libv.so.1"), "{m:?}");
    // The oracle: the real loader refuses the program with the old library, runs it with the new.
    let stderr = run_with_lib(dir.path(), "libv1.so", "libv.so.1");
    assert!(stderr.as_ref().is_err_and(|e| e.contains("version `V2' not found")), "{stderr:?}");
    assert!(run_with_lib(dir.path(), "libv2.so", "libv.so.1").is_ok());
}

/// Runs `prog` of the fixture through its own interpreter with `lib` as `soname`:
/// Ok, or Err with the loader's complaint.
fn run_with_lib(dir: &Path, lib: &str, soname: &str) -> Result<(), String> {
    let libs = dir.join(format!("run-{lib}"));
    std::fs::create_dir_all(&libs).unwrap();
    std::fs::copy(dir.join(lib), libs.join(soname)).unwrap();
    let prog = dir.join("prog");
    let interp = Elf::open(&prog).unwrap().interpreter.unwrap();
    let out = std::process::Command::new(interp).arg("--library-path").arg(&libs).arg(&prog).output().unwrap();
    // The program exits with old_fn() + new_fn() + data_v = 10 when it ran.
    match out.status.code() {
        Some(10) => Ok(()),
        _ => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

#[test]
fn a_library_defining_the_version_but_not_the_symbol_misses_only_the_symbol() {
    let Some(dir) = compiled() else { return };
    let d = dir.path();
    std::fs::write(
        d.join("v2b.map"),
        "V0 { };\nV1 { global: old_fn; data_v; local: *; } V0;\nV2 { global: other; } V1;\n",
    )
    .unwrap();
    std::fs::write(d.join("v2b.c"), "int data_v;\nint old_fn(void) { return 1; }\nint other(void) { return 3; }\n")
        .unwrap();
    cc(d, &["-shared", "-fPIC", "-o", "libv2b.so", "v2b.c", "-Wl,--version-script=v2b.map", "-Wl,-soname,libv.so.1"]);
    let prog = d.join("prog");
    let root = glibc_root(&prog);
    put(root.path(), "/usr/lib/libv.so.1", &d.join("libv2b.so"));
    let report = check(root.path(), &[Target::Host(prog)]).unwrap();
    let m = &report.files[0].missing;
    assert_eq!(m.len(), 1, "{report}");
    let Missing::Symbol { symbol, version, expected_from, .. } = &m[0] else { panic!("{report}") };
    assert_eq!(
        (symbol.as_str(), version.as_deref(), expected_from.as_deref()),
        ("new_fn", Some("V2"), Some("libv.so.1"))
    );
}

#[test]
fn origin_in_runpath_is_the_directory_of_the_file_inside_the_root() {
    let Some(dir) = compiled() else { return };
    let prog = dir.path().join("prog");
    let root = glibc_root(&prog);
    put(root.path(), "/app/prog", &prog);
    put(root.path(), "/app/lib/libv.so.1", &dir.path().join("libv2.so"));
    let report = check(root.path(), &[Target::InRoot("/app/prog".into())]).unwrap();
    assert!(report.ok(), "{report}");
    assert!(report.files[0].loaded.iter().any(|l| l.path == "/app/lib/libv.so.1"), "{report}");
    // From the host, $ORIGIN has no place in the root: the entry is skipped, not guessed.
    let report = check(root.path(), &[Target::Host(prog)]).unwrap();
    assert!(!report.ok(), "{report}");
}

#[test]
fn ld_so_conf_includes_add_search_directories() {
    let Some(dir) = compiled() else { return };
    let prog = dir.path().join("prog");
    let root = glibc_root(&prog);
    let r = root.path();
    put(r, "/opt/v/libv.so.1", &dir.path().join("libv2.so"));
    std::fs::create_dir_all(r.join("etc/ld.so.conf.d")).unwrap();
    std::fs::write(r.join("etc/ld.so.conf"), "# comment\ninclude ld.so.conf.d/*.conf\n").unwrap();
    std::fs::write(r.join("etc/ld.so.conf.d/v.conf"), "/opt/v\n").unwrap();
    std::fs::write(r.join("etc/ld.so.conf.d/v.disabled"), "/nowhere\n").unwrap();
    assert_eq!(root::ld_so_conf_dirs(r), ["/opt/v"]);
    let report = check(r, &[Target::Host(prog)]).unwrap();
    assert!(report.ok(), "{report}");
}

#[test]
fn symlinks_never_lead_out_of_the_root() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("lib")).unwrap();
    symlink("../../../../../../../../etc/passwd", r.join("lib/up")).unwrap();
    symlink("/etc/passwd", r.join("lib/abs")).unwrap();
    symlink("loop", r.join("lib/loop")).unwrap();
    assert!(Path::new("/etc/passwd").exists());
    assert_eq!(resolve(r, "/lib/up"), None);
    assert_eq!(resolve(r, "/lib/abs"), None);
    assert_eq!(resolve(r, "/lib/loop"), None);
    std::fs::create_dir_all(r.join("etc")).unwrap();
    std::fs::write(r.join("etc/passwd"), "root inside\n").unwrap();
    assert_eq!(resolve(r, "/lib/up"), Some(("/etc/passwd".into(), r.join("etc/passwd"))));
    assert_eq!(resolve(r, "lib/../lib/abs").map(|x| x.0), Some("/etc/passwd".into()));
}

#[test]
fn an_unreadable_file_is_an_error_and_a_missing_root_too() {
    let root = tempfile::tempdir().unwrap();
    let junk = root.path().join("junk");
    std::fs::write(&junk, b"\x7fELF\x02\x01").unwrap();
    assert!(matches!(check(root.path(), &[Target::Host(junk)]), Err(AbiError::Elf(_))));
    assert!(matches!(check(&root.path().join("nope"), &[]), Err(AbiError::Root { .. })));
    assert!(matches!(check(root.path(), &[Target::InRoot("/bin/x".into())]), Err(AbiError::NoFile { .. })));
}

#[test]
fn an_aarch64_program_passes_against_debians_arm64_glibc() {
    let Some(root) = arm64_root() else { return };
    let report =
        check(&root, &[Target::InRoot("/usr/bin/getent".into()), Target::InRoot("/usr/bin/iconv".into())]).unwrap();
    assert!(report.ok(), "{report}");
    assert_eq!(report.files[0].abi, "ELF64 LSB aarch64");
    let loaded: Vec<_> = report.files[0].loaded.iter().map(|l| l.path.as_str()).collect();
    assert_eq!(
        loaded,
        ["/usr/bin/getent", "/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1", "/lib/aarch64-linux-gnu/libc.so.6"]
    );
}

#[test]
fn an_aarch64_program_fails_without_libc_and_with_an_x86_64_libc() {
    let Some(arm) = arm64_root() else { return };
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    put(r, "/lib/ld-linux-aarch64.so.1", &arm.join("lib/aarch64-linux-gnu/ld-linux-aarch64.so.1"));
    let getent = arm.join("usr/bin/getent");
    let report = check(r, &[Target::Host(getent.clone())]).unwrap();
    assert_eq!(missing(&report).len(), 1, "{report}");
    assert!(missing(&report)[0].starts_with("library libc.so.6"), "{report}");
    put(r, "/lib/aarch64-linux-gnu/libc.so.6", Path::new("/lib/x86_64-linux-gnu/libc.so.6"));
    let report = check(r, &[Target::Host(getent)]).unwrap();
    let Missing::Library { rejected, .. } = &report.files[0].missing[0] else { panic!("{report}") };
    assert_eq!(rejected, &["/lib/aarch64-linux-gnu/libc.so.6 is ELF64 LSB x86_64"]);
}

/// Every dynamically linked program of the host runs, so checked against `/` each must pass.
#[test]
fn the_hosts_own_programs_pass_against_the_host_root() {
    let mut programs: Vec<PathBuf> = std::fs::read_dir("/usr/bin")
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| std::fs::read(p).is_ok_and(|d| Elf::is_elf(&d)))
        .collect();
    programs.sort();
    programs.truncate(60);
    assert!(programs.len() > 10);
    let targets: Vec<_> = programs.into_iter().map(Target::Host).collect();
    let report = check(Path::new("/"), &targets).unwrap();
    assert!(report.ok(), "{report}");
}

/// The same against Debian's arm64 glibc: every ELF file in it (programs, gconv modules,
/// the libraries) is loadable by that root's own loader.
#[test]
fn every_elf_of_the_arm64_root_passes_against_it() {
    let Some(root) = arm64_root() else { return };
    let mut targets = Vec::new();
    for dir in ["usr/bin", "lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu/gconv"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if std::fs::read(&p).is_ok_and(|d| Elf::is_elf(&d)) {
                targets.push(Target::InRoot(format!("/{dir}/{}", p.file_name().unwrap().to_string_lossy())));
            }
        }
    }
    assert!(targets.len() > 20);
    let report = check(&root, &targets).unwrap();
    for file in &report.files {
        // libthread_db is a plug-in for debuggers: its ps_* callbacks come from gdb, so
        // alone it must miss exactly those.
        if file.file.ends_with("/libthread_db.so.1") {
            assert!(!file.missing.is_empty());
            assert!(file
                .missing
                .iter()
                .all(|m| matches!(m, Missing::Symbol { symbol, .. } if symbol.starts_with("ps_"))));
        } else {
            assert!(file.missing.is_empty(), "{report}");
        }
    }
}

/// A musl program built by Debian's `musl-gcc`, needing `libm2.so`, and two builds of
/// that library (with and without `two`); `None` when musl-gcc is missing.
fn musl_fixture() -> Option<tempfile::TempDir> {
    if !forge_tests::have_tool("musl-gcc") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("m.c"), "int one(void) { return 1; }\nint two(void) { return 2; }\n").unwrap();
    std::fs::write(d.join("m1.c"), "int one(void) { return 1; }\n").unwrap();
    std::fs::write(d.join("p.c"), "#include <stdio.h>\nint one(void); int two(void);\nint main(void) { printf(\"%d\", one() + two()); return 0; }\n").unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("musl-gcc").current_dir(d).args(args).output().unwrap();
        assert!(out.status.success(), "musl-gcc {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["-shared", "-fPIC", "-o", "libm2.so", "m.c"]);
    run(&["-shared", "-fPIC", "-o", "libm1.so", "m1.c"]);
    std::fs::copy(d.join("libm2.so"), d.join("libm.so")).unwrap();
    run(&["-o", "prog", "p.c", "-L.", "-lm2"]);
    Some(dir)
}

/// A root holding Debian's musl as its loader, the way Alpine installs it.
fn musl_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let libc = std::fs::canonicalize("/usr/lib/x86_64-linux-musl/libc.so").unwrap();
    put(root.path(), "/lib/ld-musl-x86_64.so.1", &libc);
    root
}

#[test]
fn a_musl_program_passes_with_its_library_in_the_path_file_directory() {
    let Some(dir) = musl_fixture() else { return };
    if std::env::consts::ARCH != "x86_64" {
        return;
    }
    let root = musl_root();
    let r = root.path();
    put(r, "/opt/m/libm2.so", &dir.path().join("libm2.so"));
    let prog = dir.path().join("prog");
    let report = check(r, &[Target::Host(prog.clone())]).unwrap();
    assert_eq!(report.files[0].libc, Libc::Musl);
    assert!(missing(&report)[0].starts_with("library libm2.so"), "{report}");
    assert!(missing(&report)[0].contains("/lib:/usr/local/lib:/usr/lib"), "{report}");
    std::fs::create_dir_all(r.join("etc")).unwrap();
    std::fs::write(r.join("etc/ld-musl-x86_64.path"), "/lib\n/opt/m:/usr/lib\n").unwrap();
    let report = check(r, &[Target::Host(prog)]).unwrap();
    assert!(report.ok(), "{report}");
    // libc.so resolves to the loader itself: musl's libc is its dynamic linker.
    let loaded: Vec<_> = report.files[0].loaded.iter().map(|l| l.path.as_str()).collect();
    assert_eq!(&loaded[1..], ["/lib/ld-musl-x86_64.so.1", "/opt/m/libm2.so"]);
}

#[test]
fn a_musl_program_misses_a_symbol_an_older_library_lacks_by_name() {
    let Some(dir) = musl_fixture() else { return };
    if std::env::consts::ARCH != "x86_64" {
        return;
    }
    let root = musl_root();
    put(root.path(), "/usr/lib/libm2.so", &dir.path().join("libm1.so"));
    let report = check(root.path(), &[Target::Host(dir.path().join("prog"))]).unwrap();
    let m = &report.files[0].missing;
    assert_eq!(m.len(), 1, "{report}");
    assert!(matches!(&m[0], Missing::Symbol { symbol, version: None, .. } if symbol == "two"), "{report}");
    // The oracle: musl's own loader refuses it for the same reason.
    let libs = dir.path().join("old");
    put(&libs, "/libm2.so", &dir.path().join("libm1.so"));
    let musl = "/usr/lib/x86_64-linux-musl/libc.so";
    let out = std::process::Command::new(musl)
        .arg("--library-path")
        .arg(&libs)
        .arg(dir.path().join("prog"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("two: symbol not found"), "{out:?}");
}

/// The host's loader, copied into `root` at its path, made to look like a prefixed build:
/// its `/etc/ld.so.cache` string spoiled (same length) and `extra` appended (ELF parsing
/// ignores bytes after the sections).
fn loader_with_strings(root: &Path, interpreter: &str, extra: &[u8]) {
    let mut bytes = std::fs::read(std::fs::canonicalize(interpreter).unwrap()).unwrap();
    let standard = b"/etc/ld.so.cache\0";
    while let Some(at) = bytes.windows(standard.len()).position(|w| w == standard) {
        bytes[at + standard.len() - 2] = b'X';
    }
    bytes.extend_from_slice(extra);
    let at = root.join(interpreter.trim_start_matches('/'));
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&at);
    std::fs::write(&at, bytes).unwrap();
}

#[test]
fn a_standard_loader_is_not_taken_for_a_prefixed_one() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ld.so");
    std::fs::write(&f, b"\x7fELF\0/lib/x86_64-linux-gnu/\0/lib/\0/etc/ld.so.cache\0").unwrap();
    assert_eq!(root::prefixed_glibc_loader(&f), None);
    std::fs::write(&f, b"\x7fELF\0no paths here\0").unwrap();
    assert_eq!(root::prefixed_glibc_loader(&f), None);
}

#[test]
fn a_prefixed_loader_names_its_conf_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ld.so");
    std::fs::write(&f, b"\x7fELF\0/usr/glibc/lib/\0/usr/glibc/lib/\0/lib/\0\0/usr/glibc/etc/ld.so.cache\0").unwrap();
    let p = root::prefixed_glibc_loader(&f).unwrap();
    assert_eq!(p.conf, "/usr/glibc/etc/ld.so.conf");
    assert_eq!(p.system_dirs, ["/usr/glibc/lib"]);
}

/// The host's glibc for `prog`, its loader made to look built for the prefix /opt/g.
fn root_with_prefixed_loader(prog: &Path) -> tempfile::TempDir {
    let interp = Elf::open(prog).unwrap().interpreter.unwrap();
    let root = host_glibc_root(&interp);
    loader_with_strings(root.path(), &interp, b"\0/opt/g/lib/\0/opt/g/etc/ld.so.cache\0");
    root
}

/// Moves libc.so.6 from /usr/lib to the prefix's /opt/g/lib.
fn libc_into_prefix(r: &Path) {
    std::fs::create_dir_all(r.join("opt/g/lib")).unwrap();
    std::fs::rename(r.join("usr/lib/libc.so.6"), r.join("opt/g/lib/libc.so.6")).unwrap();
}

#[test]
fn a_prefixed_loader_searches_its_own_directories_and_conf_not_the_standard_ones() {
    let Some(dir) = compiled() else { return };
    let prog = dir.path().join("prog");
    let root = root_with_prefixed_loader(&prog);
    let r = root.path();
    // libc where a standard loader looks (host_glibc_root put it there) is not found...
    let report = check(r, &[Target::Host(prog.clone())]).unwrap();
    let m = missing(&report);
    assert!(m.iter().any(|m| m.contains("libc.so.6")), "{report}");
    // ...in the loader's own directory it is, and libv through the prefix's ld.so.conf.
    libc_into_prefix(r);
    put(r, "/opt/v/libv.so.1", &dir.path().join("libv2.so"));
    put(r, "/etc/ld.so.conf", &dir.path().join("v.map")); // not read by this loader
    std::fs::create_dir_all(r.join("opt/g/etc")).unwrap();
    std::fs::write(r.join("opt/g/etc/ld.so.conf"), "/opt/v\n").unwrap();
    let report = check(r, &[Target::Host(prog)]).unwrap();
    assert!(report.ok(), "{report}");
}

#[test]
fn a_library_is_searched_for_as_the_roots_glibc_loader_would_search() {
    let Some(dir) = compiled() else { return };
    // The root's loader at the standard path is built for /opt/g, and libc is there only.
    let root = root_with_prefixed_loader(&dir.path().join("prog"));
    let r = root.path();
    libc_into_prefix(r);
    // A library names no interpreter; the loader that will load it finds its libc.
    std::fs::write(dir.path().join("p.c"), "int puts(const char *);\nint say(void) { return puts(\"hi\"); }\n")
        .unwrap();
    cc(dir.path(), &["-shared", "-fPIC", "-o", "libp.so", "p.c"]);
    let lib = dir.path().join("libp.so");
    assert_eq!(Elf::open(&lib).unwrap().interpreter, None);
    let report = check(r, &[Target::Host(lib)]).unwrap();
    assert!(report.ok(), "{report}");
    let loaded: Vec<&str> = report.files[0].loaded.iter().map(|l| l.path.as_str()).collect();
    assert!(loaded.contains(&"/opt/g/lib/libc.so.6"), "{loaded:?}");
}
