//! The glibc runtime for the vendor blobs (recipes/src/glibc.rs): glibc 2.36 compiled by
//! Debian's aarch64 cross gcc into /usr/glibc with its loader at
//! /lib/ld-linux-aarch64.so.1, beside musl in one root.
//!
//! The planning test always runs. The build (~25 min for glibc at -j2, twice: two store
//! roots) runs with FORGE_TEST_GLIBC=1 and a seeded mirror; its programs run under
//! qemu-aarch64-static through `forge sandbox --arch aarch64`.

use std::path::{Path, PathBuf};
use std::process::Output;

use forge_tests::*;

/// `forge build RECIPE --offline --mirror MIRROR --out OUT` in `store`; more
/// arguments may be added.
fn build_offline(store: &Path, mirror: &Path, recipe: &str, out: &Path) -> std::process::Command {
    let mut cmd = forge(store);
    cmd.args(["build", recipe, "--offline", "--mirror"]).arg(mirror).arg("--out").arg(out);
    cmd
}

/// `forge show RECIPE --json` rows as (name, state).
fn planned(store: &Path, recipe: &str) -> Vec<(String, String)> {
    let out = run_ok(forge(store).args(["show", recipe, "--json"]));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    rows.iter().map(|r| (r["name"].as_str().unwrap().to_owned(), r["state"].as_str().unwrap().to_owned())).collect()
}

#[test]
fn the_demo_root_plans_the_cross_toolchain_glibc_musl_and_the_programs() {
    let store = tempfile::tempdir().unwrap();
    let rows = planned(store.path(), "glibc-demo-root");
    let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
    for step in [
        "glibc_2.36.orig.tar.xz",
        "glibc_2.36-9+deb12u14.debian.tar.xz",
        "gcc-12-aarch64-linux-gnu_12.2.0-14cross1_amd64.deb",
        "aarch64-linux-gnu-toolchain-gcc-12",
        "glibc-2.36",
        "musl-aarch64-1.2.3",
        "glibc-demo-programs",
        "glibc-demo-root",
    ] {
        assert!(names.contains(&step), "{step} is not planned: {names:?}");
    }
    assert!(rows.iter().all(|(_, state)| state != "valid"), "an empty store has nothing: {rows:?}");
}

#[test]
fn the_cxx_runtime_puts_aarch64_libstdcxx_and_libgcc_s_where_only_glibc_looks() {
    let Some(mirror) = test_mirror() else { return };
    if !["readelf", "nix-hash", "openssl"].iter().all(|t| have_tool(t)) {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let out = store.path().join("out");
    run_ok(&mut build_offline(store.path(), &mirror, "glibc-cxx-runtime", &out));
    let layer = std::fs::canonicalize(&out).unwrap();
    // Nothing in /lib or /usr/lib: musl's loader never finds these.
    assert_eq!(entries(&layer), ["usr"]);
    assert_eq!(entries(&layer.join("usr")), ["glibc"]);
    let lib = layer.join("usr/glibc/lib");
    assert_eq!(entries(&lib), ["libgcc_s.so.1", "libstdc++.so.6", "libstdc++.so.6.0.30"]);
    assert_eq!(std::fs::read_link(lib.join("libstdc++.so.6")).unwrap(), Path::new("libstdc++.so.6.0.30"));

    let stdcxx = lib.join("libstdc++.so.6.0.30");
    assert!(readelf(&["-h"], &stdcxx).contains("AArch64"));
    let dynamic = readelf(&["-d"], &stdcxx);
    assert!(dynamic.contains("Library soname: [libstdc++.so.6]"), "{dynamic}");
    // It needs only what the glibc layer and this one provide.
    let mut needed: Vec<&str> = dynamic
        .lines()
        .filter_map(|l| l.split_once("Shared library: ["))
        .map(|(_, r)| r.trim_end_matches(']'))
        .collect();
    needed.sort();
    assert_eq!(needed, ["libc.so.6", "libgcc_s.so.1", "libm.so.6"]);
    // The symbol versions C++ blobs ask for: gcc 12's GLIBCXX and libgcc_s's GCC_.
    assert!(readelf(&["-V"], &stdcxx).contains("Name: GLIBCXX_3.4.30"));
    assert!(readelf(&["-V"], &lib.join("libgcc_s.so.1")).contains("Name: GCC_3.0"));

    let inside = format!("/forge/store/{}", layer.file_name().unwrap().to_string_lossy());
    let info = run_ok(forge(store.path()).args(["store", "info", &inside, "--json"]));
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["narHash"], format!("sha256:{}", nix_hash(&layer)));

    // Its apk, signed with a key openssl makes, as forge's reader sees it.
    let key = store.path().join("me.rsa");
    run_ok(std::process::Command::new("openssl").args(["genrsa", "-out"]).arg(&key).arg("2048"));
    let apk_out = store.path().join("cxx-apk");
    run_ok(build_offline(store.path(), &mirror, "glibc-cxx-apk", &apk_out).arg("--apk-key").arg(&key));
    let repo = store.path().join("cxx-apk.apks");
    let inspect = run_ok(
        forge(store.path())
            .args(["apk", "inspect", "--keys"])
            .arg(repo.join("keys"))
            .arg(repo.join("aarch64/glibc-libstdc++-12.2.0-r0.apk")),
    );
    let inspect = stdout(&inspect);
    for line in ["signature verified", "depends   glibc-runtime", "usr/glibc/lib/libstdc++.so.6 -> libstdc++.so.6.0.30"]
    {
        assert!(inspect.contains(line), "{line} missing:\n{inspect}");
    }
}

/// Whether the long build is asked for; says how to ask when not.
fn glibc_build_wanted() -> bool {
    let on = std::env::var_os("FORGE_TEST_GLIBC").is_some_and(|v| v == "1");
    if !on {
        eprintln!("SKIP: the glibc build takes ~25 min at -j2 (twice); set FORGE_TEST_GLIBC=1 to run it");
    }
    on
}

/// Builds `glibc-demo-root` into a fresh store; returns the store and the root's path.
fn build_demo_root(mirror: &Path) -> (tempfile::TempDir, PathBuf) {
    let store = tempfile::tempdir().unwrap();
    let out = store.path().join("out");
    let start = std::time::Instant::now();
    run_ok(build_offline(store.path(), mirror, "glibc-demo-root", &out).arg("-j2"));
    eprintln!("glibc-demo-root built in {:?}", start.elapsed());
    let root = std::fs::canonicalize(&out).unwrap();
    (store, root)
}

/// The store path named `*-NAME` in `store`.
fn store_path(store: &Path, name: &str) -> PathBuf {
    let dir = store.join("store");
    let found = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().unwrap().to_string_lossy().split_once('-').is_some_and(|(_, n)| n == name));
    found.unwrap_or_else(|| panic!("no {name} in {}", dir.display()))
}

/// `forge sandbox --root ROOT --arch aarch64 -- PROGRAM`.
fn run_in(root: &Path, program: &str) -> Output {
    let mut cmd = std::process::Command::new(forge_bin());
    cmd.args(["sandbox", "--arch", "aarch64", "--root"]).arg(root).args(["--", program]);
    cmd.output().unwrap()
}

/// `forge abi check --root ROOT --in-root FILE...`.
fn abi_check(root: &Path, files: &[&str]) -> Output {
    let store = tempfile::tempdir().unwrap();
    forge(store.path()).args(["abi", "check", "--root"]).arg(root).arg("--in-root").args(files).output().unwrap()
}

/// Names under `dir` (a directory of the layer), sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn readelf(args: &[&str], file: &Path) -> String {
    let out = std::process::Command::new("readelf").args(args).arg(file).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The glibc layer puts nothing in /lib and /usr/lib but its loader, so musl's loader
/// (which searches /lib and /usr/lib) never sees a glibc library.
fn check_layout(glibc: &Path) {
    assert_eq!(entries(glibc), ["lib", "lib64", "usr"]);
    assert_eq!(entries(&glibc.join("lib")), ["ld-linux-aarch64.so.1"]);
    assert_eq!(entries(&glibc.join("usr")), ["glibc"]);
    let link = std::fs::read_link(glibc.join("lib64/ld-linux-aarch64.so.1")).unwrap();
    assert_eq!(link, Path::new("/lib/ld-linux-aarch64.so.1"));
    assert!(glibc.join("usr/glibc/lib/libc.so.6").is_file());
    assert!(glibc.join("usr/glibc/etc/ld.so.conf").is_file());
    // The loader's own search path and cache live in the prefix.
    let loader = std::fs::read(glibc.join("lib/ld-linux-aarch64.so.1")).unwrap();
    let has = |s: &[u8]| loader.windows(s.len()).any(|w| w == s);
    assert!(has(b"/usr/glibc/etc/ld.so.cache\0") && has(b"/usr/glibc/lib/\0"));
}

#[test]
fn glibc_and_musl_programs_run_side_by_side_and_build_the_same_in_two_stores() {
    let tools = ["qemu-aarch64-static", "readelf", "nix-hash"];
    if !glibc_build_wanted() || !tools.iter().all(|t| have_tool(t)) {
        return;
    }
    let Some(mirror) = test_mirror() else { return };
    let (store_a, root) = build_demo_root(&mirror);
    check_layout(&store_path(store_a.path(), "glibc-2.36"));

    // Oracles: readelf on what the cross gcc made.
    let hello = root.join("usr/bin/glibc-hello");
    assert!(readelf(&["-l"], &hello).contains("[Requesting program interpreter: /lib/ld-linux-aarch64.so.1]"));
    let versions = readelf(&["-V"], &hello);
    assert!(versions.contains("Name: GLIBC_2.25") && versions.contains("File: libc.so.6"), "{versions}");

    // Both worlds run in the one root under qemu-user.
    let out = run_in(&root, "/usr/bin/glibc-hello");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from glibc 2.36: getrandom gave 16 bytes\n");
    let out = run_in(&root, "/usr/bin/musl-hello");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from musl\n");
    // The real loader refuses a need newer than this glibc...
    let out = run_in(&root, "/usr/bin/needs-glibc-2.38");
    assert!(!out.status.success());
    assert!(text(&out).contains("version `GLIBC_2.38' not found"), "{}", text(&out));

    // ...and forge abi check agrees, without running anything.
    // libstdc++ of the C++ runtime layer finds libm, libc and libgcc_s where glibc's loader looks.
    let out = abi_check(&root, &["/usr/bin/glibc-hello", "/usr/bin/musl-hello", "/usr/glibc/lib/libstdc++.so.6.0.30"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = abi_check(&root, &["/usr/bin/needs-glibc-2.38"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = text(&out);
    assert!(report.contains("GLIBC_2.38") && report.contains("strlcpy"), "{report}");

    // The same bytes from a second store root.
    let (store_b, _) = build_demo_root(&mirror);
    for name in ["glibc-2.36", "musl-aarch64-1.2.3", "glibc-demo-programs", "glibc-demo-root"] {
        let (a, b) = (store_path(store_a.path(), name), store_path(store_b.path(), name));
        assert_eq!(a.file_name(), b.file_name(), "{name}: same store path");
        let (ha, hb) = (nix_hash(&a), nix_hash(&b));
        eprintln!("{name}: NAR sha256 {ha}");
        assert_eq!(ha, hb, "{name} differs between the two stores");
    }
}
