//! qtwayland with the AGNOS patch (recipes/src/qt.rs, docs/qt.md): the patch against
//! the pinned upstream source, the plan, the Alpine configuration's missing lock, and
//! (with FORGE_TEST_QT=1: a real Qt module build, ~10 min on 2 cores) the build in two
//! store roots, its ELF metadata and the patched functions called in the binaries.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use forge_tests::*;
use sha2::{Digest, Sha256};

const TARBALL: &str = "qtwayland-everywhere-opensource-src-5.15.8.tar.xz";
const TARBALL_SHA256: &str = "fa0e7bd40f5da2d30fbdb51a436c5776950d6bd070b61a8d62d85cb537934529";
const LIBDIR: &str = "usr/lib/x86_64-linux-gnu";

fn patch_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes/patches/qtwayland-5.15-agnos.patch")
}

/// The pinned upstream tarball from the seeded mirror, checked against its pin.
fn pinned_tarball(mirror: &Path) -> PathBuf {
    let file = mirror.join(TARBALL);
    let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e} (seed the mirror again)", file.display()));
    assert_eq!(hex(&Sha256::digest(&bytes)), TARBALL_SHA256, "{} is not the pinned tarball", file.display());
    file
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_agnos_patch_applies_to_the_pinned_upstream_source_and_changes_both_functions() {
    let Some(mirror) = test_mirror() else { return };
    if !have_tool("patch") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    run_ok(Command::new("tar").arg("-xJf").arg(pinned_tarball(&mirror)).arg("-C").arg(dir.path()));
    let tree = dir.path().join("qtwayland-everywhere-src-5.15.8");
    // GNU patch refuses fuzz here: the hunks match the pinned tree exactly.
    run_ok(Command::new("patch").args(["-p1", "--fuzz=0", "-i"]).arg(patch_file()).current_dir(&tree));
    let screen = std::fs::read_to_string(tree.join("src/client/qwaylandscreen.cpp")).unwrap();
    let body = screen.split("QRect QWaylandScreen::geometry() const\n{\n").nth(1).unwrap();
    let first = body.lines().find(|l| !l.trim_start().starts_with("//")).unwrap();
    assert_eq!(first.trim(), "return QRect(0, 0, 2160, 1080);");
    let egl = std::fs::read_to_string(
        tree.join("src/hardwareintegration/client/wayland-egl/qwaylandeglclientbufferintegration.cpp"),
    )
    .unwrap();
    assert!(egl.contains(r#"if (false && q_hasEglExtension(EGL_NO_DISPLAY, "EGL_EXT_platform_base")) {"#));
    // Applying it a second time fails: the patch is not a no-op on this tree.
    let again = Command::new("patch")
        .args(["-p1", "--fuzz=0", "--dry-run", "--forward", "-i"])
        .arg(patch_file())
        .current_dir(&tree)
        .output()
        .unwrap();
    assert!(!again.status.success(), "{}", String::from_utf8_lossy(&again.stdout));
}

#[test]
fn show_plans_qtwayland_from_upstreams_tarball_over_the_pinned_debian_qt() {
    let store = tempfile::tempdir().unwrap();
    let out = run_ok(forge(store.path()).args(["show", "qtwayland", "--json"]));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    for wanted in
        [TARBALL, "qtwayland-5.15-agnos.patch", "debian-qt-5.15.8-dev", "qtbase5-private-dev", "qtwayland-5.15.8"]
    {
        assert!(names.iter().any(|n| n.contains(wanted)), "{wanted} is not planned: {names:#?}");
    }
    assert!(rows.iter().all(|r| r["state"] != "valid"), "a fresh store has nothing");
}

#[test]
fn the_alpine_configuration_says_its_lock_is_missing_and_how_to_make_it() {
    let store = tempfile::tempdir().unwrap();
    let out = forge(store.path()).args(["build", "qtwayland-alpine", "--arch", "aarch64"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("forge lock qtwayland-alpine"), "{err}");
    assert!(err.contains("qtwayland-build-alpine-3.20-aarch64.lock"), "{err}");
}

/// FORGE_TEST_QT=1 runs the real build; otherwise says why it is skipped.
fn qt_builds_enabled() -> bool {
    let on = std::env::var("FORGE_TEST_QT").is_ok_and(|v| v == "1");
    if !on {
        eprintln!("SKIP: set FORGE_TEST_QT=1 to build qtwayland (about 10 minutes on 2 cores, twice)");
    }
    on
}

fn build(store: &Path, mirror: &Path, recipe: &str) -> PathBuf {
    let started = Instant::now();
    let out = run_ok(
        forge(store)
            .args(["build", recipe, "--offline", "--mirror"])
            .arg(mirror)
            .arg("--out")
            .arg(store.join(format!("out-{recipe}"))),
    );
    eprintln!("{recipe}: built in {:.0?} in {}", started.elapsed(), store.display());
    PathBuf::from(stdout(&out))
}

fn nar_hash(store: &Path, path: &Path) -> String {
    let logical = format!("/forge/store/{}", path.file_name().unwrap().to_string_lossy());
    let info = run_ok(forge(store).args(["store", "info", &logical, "--json"]));
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    info["narHash"].as_str().unwrap().to_owned()
}

fn readelf(args: &[&str], file: &Path) -> String {
    stdout(&run_ok(Command::new("readelf").args(args).arg(file)))
}

#[test]
fn patched_qtwayland_builds_in_two_stores_alike_and_its_binaries_run_the_patch() {
    let Some(mirror) = test_mirror() else { return };
    if !qt_builds_enabled() || !have_tool("readelf") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let built = build(&a, &mirror, "qtwayland");
    let again = build(&b, &mirror, "qtwayland");
    assert_eq!(built.file_name(), again.file_name(), "one derivation, one store path");
    let hash = nar_hash(&a, &built);
    assert_eq!(hash, nar_hash(&b, &again), "the two store roots built different trees");
    eprintln!("qtwayland-5.15.8 NAR hash: {hash}");
    if have_tool("nix-hash") {
        assert_eq!(hash, format!("sha256:{}", nix_hash(&built)));
    }

    // The library and the plugin: what they need, and that the EGL path is the old one.
    let lib = built.join(LIBDIR).join("libQt5WaylandClient.so.5.15.8");
    let dynamic = readelf(&["-d"], &lib);
    for needed in ["libQt5Gui.so.5", "libQt5Core.so.5", "libwayland-client.so.0", "libxkbcommon.so.0", "libc.so.6"] {
        assert!(dynamic.contains(&format!("Shared library: [{needed}]")), "{needed} not NEEDED:\n{dynamic}");
    }
    assert!(dynamic.contains("Library soname: [libQt5WaylandClient.so.5]"), "{dynamic}");
    let plugin = built.join(LIBDIR).join("qt5/plugins/wayland-graphics-integration-client/libqt-plugin-wayland-egl.so");
    let imports = readelf(&["--dyn-syms", "-W"], &plugin);
    assert!(imports.contains(" eglGetDisplay"), "the plugin does not call eglGetDisplay:\n{imports}");
    assert!(!imports.contains("eglGetPlatformDisplay"), "the plugin still calls eglGetPlatformDisplay:\n{imports}");

    // The patched functions, called: forge's build behaves as AGNOS needs, Debian's
    // unpatched build of the same source does not.
    let check = build(&a, &mirror, "qtwayland-patch-check");
    let result = std::fs::read_to_string(check.join("result.txt")).unwrap();
    let lines: Vec<&str> = result.lines().collect();
    assert!(lines.contains(&"forge geometry 0 0 2160 1080"), "{result}");
    assert!(lines.contains(&"forge EGL_PLATFORM wayland"), "{result}");
    assert!(lines.iter().any(|l| l.starts_with("debian geometry ") && !l.ends_with(" 2160 1080")), "{result}");
    assert!(lines.contains(&"debian EGL_PLATFORM unset"), "{result}");
}
