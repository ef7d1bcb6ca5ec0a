//! libqmi and ModemManager (recipes/src/modem.rs) and the scripts that seed their
//! sources and build dependencies (recipes/mirror/).
//!
//! The full build takes about ten minutes on two cores, so it only runs with
//! FORGE_TEST_MODEM=1; the plan, the tarball rebuild and the lock resolution always run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use forge_tests::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn script(name: &str) -> PathBuf {
    repo().join("recipes/mirror").join(name)
}

#[test]
fn an_offline_plan_of_modemmanager_names_both_gitlab_tarballs_and_every_pinned_package() {
    let store = tempfile::tempdir().unwrap();
    let empty = store.path().join("empty-mirror");
    fs::create_dir(&empty).unwrap();
    let out =
        forge(store.path()).args(["build", "modemmanager", "--offline", "--mirror"]).arg(&empty).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    let toolchain = forge_recipes::bootstrap::toolchain_pins().len();
    let builddeps = forge_recipes::modem::builddeps_pins().len();
    assert!(err.contains(&format!("{} input(s)", toolchain + builddeps + 2)), "{err}");
    for url in [
        "https://gitlab.freedesktop.org/mobile-broadband/libqmi/-/archive/1.36.0/libqmi-1.36.0.tar.gz",
        "https://gitlab.freedesktop.org/mobile-broadband/ModemManager/-/archive/1.24.0/ModemManager-1.24.0.tar.gz",
        "libqmi-1.36.0.tar.gz (sha256:",
        "ModemManager-1.24.0.tar.gz (sha256:",
        "mirror://debian/pool/main/m/meson/meson_1.0.1-5_all.deb",
    ] {
        assert!(err.contains(url), "{url} not named in:\n{err}");
    }
}

fn sha256_hex(file: &Path) -> String {
    use sha2::Digest;
    let bytes = fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_seeded_mirror_holds_the_modem_sources_and_build_dependencies_under_their_pins() {
    let Some(mirror) = test_mirror() else { return };
    let mut wanted: Vec<(String, String)> =
        forge_recipes::modem::builddeps_pins().into_iter().map(|p| (p.file_name().to_owned(), p.sha256)).collect();
    wanted.push((
        "libqmi-1.36.0.tar.gz".into(),
        "e254fafdd916a78a27126e6d72ae436662487f59c7de84d4d40286059af89093".into(),
    ));
    wanted.push((
        "ModemManager-1.24.0.tar.gz".into(),
        "50e166bb24acb00bcaed814483920dfbc5b26d5424faee974b54c702e425a7c7".into(),
    ));
    for (name, sha) in wanted {
        // By content address, as `forge build --mirror` asks first, and by name.
        assert_eq!(sha256_hex(&mirror.join("sha256").join(&sha)), sha, "{name}");
        assert_eq!(sha256_hex(&mirror.join(&name)), sha, "{name}");
    }
}

/// A git repository with a long path (ustar prefix split), a path longer than 255
/// bytes (pax `path` record), a symlink and an executable.
fn git_fixture(dir: &Path) {
    let deep = dir.join("d".repeat(60)).join("e".repeat(60));
    let very_deep = dir.join("x".repeat(90)).join("y".repeat(90)).join("z".repeat(90));
    fs::create_dir_all(&deep).unwrap();
    fs::create_dir_all(&very_deep).unwrap();
    fs::write(deep.join("f".repeat(90)), "deep\n").unwrap();
    fs::write(very_deep.join("w".repeat(50)), "very deep\n").unwrap();
    fs::write(dir.join("configure"), "#!/bin/sh\n").unwrap();
    std::os::unix::fs::symlink("configure", dir.join("link")).unwrap();
    let git = |args: &[&str]| {
        run_ok(Command::new("git").current_dir(dir).args(args).env("GIT_CONFIG_NOSYSTEM", "1").env("HOME", dir));
    };
    git(&["init", "-q"]);
    git(&["update-index", "--add", "--chmod=+x", "configure"]);
    git(&["add", "-A"]);
    git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "release"]);
}

/// `git archive --prefix=PREFIX HEAD | COMPRESS` into FILE.
fn git_archive(repo: &Path, prefix: &str, compress: &[&str], file: &Path) {
    let pipeline =
        format!("git archive --format=tar --prefix={prefix} HEAD | {} > '{}'", compress.join(" "), file.display());
    run_ok(Command::new("sh").current_dir(repo).args(["-c", &pipeline]));
}

#[test]
fn orig_to_upstream_rebuilds_gitlabs_gzip_archive_from_a_debian_style_xz_orig_byte_for_byte() {
    if !(have_tool("git") && have_tool("xz") && have_tool("python3")) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    git_fixture(&src);
    // Debian's uscan: its own (lower case) top folder, xz. GitLab: upstream's name, gzip -n.
    let orig = tmp.path().join("projectname_1.0.orig.tar.xz");
    git_archive(&src, "projectname-1.0/", &["xz", "-c"], &orig);
    for upstream_top in ["ProjectName-1.0", "projectname-1.0", "Project-With-A-Longer-Name-1.0", "p-1"] {
        let want = tmp.path().join(format!("want-{upstream_top}.tar.gz"));
        git_archive(&src, &format!("{upstream_top}/"), &["gzip", "-n", "-c"], &want);
        let got = tmp.path().join(format!("{upstream_top}.tar.gz"));
        run_ok(Command::new("python3").arg(script("orig-to-upstream.py")).arg(&orig).arg(&got));
        assert!(fs::read(&got).unwrap() == fs::read(&want).unwrap(), "{upstream_top}: the rebuilt tarball differs");
    }
    // A plain .tar out is the same stream, uncompressed.
    let want = tmp.path().join("want.tar");
    git_archive(&src, "Other-2/", &["cat"], &want);
    let got = tmp.path().join("Other-2.tar");
    run_ok(Command::new("python3").arg(script("orig-to-upstream.py")).arg(&orig).arg(&got));
    assert!(fs::read(&got).unwrap() == fs::read(&want).unwrap(), "the rebuilt tar differs");
}

#[test]
fn orig_to_upstream_refuses_an_output_name_that_implies_no_top_folder() {
    if !have_tool("python3") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let orig = tmp.path().join("x.orig.tar");
    fs::write(&orig, [0u8; 1024]).unwrap();
    let out = Command::new("python3")
        .arg(script("orig-to-upstream.py"))
        .arg(&orig)
        .arg(tmp.path().join("x.zip"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot tell the top folder"));
}

/// Debian's bookworm amd64 indexes are configured (CI's machine); else the caller skips.
fn have_bookworm_indexes() -> bool {
    let out = Command::new("apt-get").args(["indextargets", "--format", "$(CODENAME) $(ARCHITECTURE)"]).output();
    let found = out.map(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l == "bookworm amd64")).unwrap_or(false);
    if !found {
        eprintln!("SKIP: no Debian bookworm amd64 package index here (apt-get update on a bookworm machine)");
    }
    found
}

#[test]
fn lock_debian_resolves_the_toolchain_roots_to_the_packages_of_the_toolchain_lock() {
    if !have_bookworm_indexes() {
        return;
    }
    let out = run_ok(Command::new("bash").arg(script("lock-debian.sh")).args([
        "gcc-12",
        "make",
        "libc6-dev",
        "busybox-static",
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    let resolved = forge_recipes::bootstrap::parse_lock(&text).unwrap();
    // Versions move with Debian's security updates; the set of packages does not.
    let names = |pins: &[forge_recipes::bootstrap::DebPin]| {
        let mut n: Vec<String> = pins.iter().map(|p| p.package.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(names(&resolved), names(&forge_recipes::bootstrap::toolchain_pins()));
    for pin in &resolved {
        assert!(pin.pool_path.ends_with(".deb") && pin.sha256.len() == 64, "{pin:?}");
    }
}

#[test]
fn lock_debian_over_a_base_lock_adds_only_what_the_base_lacks() {
    if !have_bookworm_indexes() {
        return;
    }
    let base = repo().join("recipes/data/debian-bookworm-amd64-toolchain.lock");
    let out = run_ok(Command::new("bash").arg(script("lock-debian.sh")).arg("--base").arg(&base).arg("pkgconf"));
    let resolved = forge_recipes::bootstrap::parse_lock(&String::from_utf8_lossy(&out.stdout)).unwrap();
    let names: Vec<&str> = resolved.iter().map(|p| p.package.as_str()).collect();
    assert!(names.contains(&"pkgconf") && names.contains(&"libpkgconf3"), "{names:?}");
    assert!(!names.contains(&"libc6"), "libc6 is in the base lock: {names:?}");
}

// ---- the full build (FORGE_TEST_MODEM=1) ----

fn modem_enabled() -> bool {
    let on = std::env::var("FORGE_TEST_MODEM").is_ok_and(|v| v == "1");
    if !on {
        eprintln!("SKIP: the libqmi + ModemManager build takes ~10 min; set FORGE_TEST_MODEM=1 to run it");
    }
    on
}

/// Builds `recipe` into a fresh store; returns (store, output path).
fn build(mirror: &Path, store: &Path, recipe: &str) -> PathBuf {
    let out = run_ok(
        forge(store)
            .args(["build", recipe, "--offline", "-j1", "--mirror"])
            .arg(mirror)
            .arg("--out")
            .arg(store.join(recipe)),
    );
    PathBuf::from(stdout(&out))
}

fn store_path_ending(store: &Path, suffix: &str) -> PathBuf {
    fs::read_dir(store.join("store"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(suffix))
        .unwrap_or_else(|| panic!("no store path ending in {suffix}"))
}

fn needed(file: &Path) -> Vec<String> {
    let out = run_ok(Command::new("readelf").arg("-d").arg(file));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1).map(|s| s.trim_end_matches(']').to_owned()))
        .collect()
}

fn assert_needs(file: &Path, libs: &[&str]) {
    let have = needed(file);
    for lib in libs {
        assert!(have.iter().any(|h| h == lib), "{} does not need {lib}: {have:?}", file.display());
    }
}

fn nar_hash(store: &Path, path: &Path) -> String {
    let inside = format!("/forge/store/{}", path.file_name().unwrap().to_string_lossy());
    let info = run_ok(forge(store).args(["store", "info", &inside, "--json"]));
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    info["narHash"].as_str().unwrap().to_owned()
}

#[test]
fn libqmi_and_modemmanager_build_offline_run_in_the_sandbox_and_rebuild_bit_for_bit() {
    if !modem_enabled() {
        return;
    }
    let Some(mirror) = test_mirror() else { return };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let started = std::time::Instant::now();
    let mm = build(&mirror, a.path(), "modemmanager");
    eprintln!("libqmi + ModemManager (with the layers) built in {:.0?}", started.elapsed());
    let qmi = store_path_ending(a.path(), "-libqmi-1.36.0");

    // What was installed, and what it links to.
    let qmicli = qmi.join("usr/bin/qmicli");
    assert!(qmicli.is_file() && qmi.join("usr/lib/pkgconfig/qmi-glib.pc").is_file());
    assert_needs(&qmicli, &["libqmi-glib.so.5", "libglib-2.0.so.0", "libgio-2.0.so.0", "libc.so.6"]);
    // gudev (udev on) serves the firmware updater; MBIM and QRTR are off.
    assert_needs(&qmi.join("usr/bin/qmi-firmware-update"), &["libqmi-glib.so.5", "libgudev-1.0.so.0"]);
    let lib_needs = needed(&qmi.join("usr/lib/libqmi-glib.so.5"));
    assert!(lib_needs.iter().any(|n| n == "libgobject-2.0.so.0"), "{lib_needs:?}");
    assert!(!lib_needs.iter().any(|n| n.starts_with("libmbim-glib") || n.starts_with("libqrtr-glib")), "{lib_needs:?}");
    let daemon = mm.join("usr/sbin/ModemManager");
    assert!(daemon.is_file() && mm.join("usr/bin/mmcli").is_file());
    assert_needs(
        &daemon,
        &["libmm-glib.so.0", "libqmi-glib.so.5", "libgudev-1.0.so.0", "libpolkit-gobject-1.so.0", "libglib-2.0.so.0"],
    );
    assert!(!needed(&daemon).iter().any(|n| n.starts_with("libsystemd") || n.starts_with("libmbim")));
    let plugins = file_names_ending(&mm.join("usr/lib/ModemManager"), ".so");
    assert_eq!(plugins, ["libmm-plugin-generic.so", "libmm-plugin-quectel.so", "libmm-shared-quectel.so"]);
    assert!(!mm.join("usr/lib/systemd").exists() && !mm.join("lib/systemd").exists());

    // The daemon starts, on the pinned layers only.
    let layer = |suffix: &str| store_path_ending(a.path(), suffix);
    let run = run_ok(
        Command::new(forge_bin())
            .args(["sandbox", "--root"])
            .arg(layer("-bootstrap-toolchain-gcc-12"))
            .arg("--root")
            .arg(layer("-modem-builddeps-bookworm"))
            .arg("--root")
            .arg(&qmi)
            .arg("--root")
            .arg(&mm)
            .args(["--", "/usr/sbin/ModemManager", "--version"]),
    );
    assert!(stdout(&run).starts_with("ModemManager 1.24.0"), "{}", stdout(&run));

    // A second store root builds the same bytes; nix-hash agrees with forge.
    let started = std::time::Instant::now();
    let mm_b = build(&mirror, b.path(), "modemmanager");
    eprintln!("second build in {:.0?}", started.elapsed());
    let qmi_b = store_path_ending(b.path(), "-libqmi-1.36.0");
    for (path_a, path_b) in [(&qmi, &qmi_b), (&mm, &mm_b)] {
        assert_eq!(path_a.file_name(), path_b.file_name());
        let (ha, hb) = (nar_hash(a.path(), path_a), nar_hash(b.path(), path_b));
        assert_eq!(ha, hb, "{} differs between the two store roots", path_a.display());
        if have_tool("nix-hash") {
            assert_eq!(ha, format!("sha256:{}", nix_hash(path_a)));
        }
        eprintln!("{}: {ha}", path_a.file_name().unwrap().to_string_lossy());
    }
}
