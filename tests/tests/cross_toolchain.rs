//! The musl cross toolchain built for real: binutils, gcc and musl compiled in the
//! sandbox from the seeded mirror, then a C and a C++ program compiled with it and run
//! under qemu-user; and the native x86_64-linux-musl toolchain, whose programs run on
//! their own sysroot in forge's sandbox. A gcc build takes half an hour to an hour on
//! two cores, so this runs only with FORGE_TEST_CROSS=1; FORGE_TEST_CROSS_STORE=DIR keeps
//! the store between runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use forge_tests::{file_names_ending, forge, have_tool, nix_hash, run_ok, stdout, test_mirror};

const C_OUTPUT: &str = "hello from C on aarch64-linux-musl: sum of squares 1..100 = 338350";
const CXX_OUTPUT: &str = "hello from C++ on aarch64-linux-musl: caught, 10*9*8*7*6 = 30240";
const X86_C_OUTPUT: &str = "hello from C on x86_64-linux-musl: sum of squares 1..100 = 338350";
const X86_CXX_OUTPUT: &str = "hello from C++ on x86_64-linux-musl: caught, 10*9*8*7*6 = 30240";

/// The store root: FORGE_TEST_CROSS_STORE, else a fresh temporary one.
fn store_root() -> (Option<tempfile::TempDir>, PathBuf) {
    match std::env::var_os("FORGE_TEST_CROSS_STORE") {
        Some(dir) => (None, PathBuf::from(dir)),
        None => {
            let tmp = tempfile::tempdir().unwrap();
            let path = tmp.path().to_owned();
            (Some(tmp), path)
        }
    }
}

fn enabled() -> bool {
    if std::env::var_os("FORGE_TEST_CROSS").is_none() {
        eprintln!("SKIP: the cross gcc build takes about an hour; set FORGE_TEST_CROSS=1 to run it");
        return false;
    }
    ["qemu-aarch64-static", "readelf", "file", "nix-hash"].iter().all(|t| have_tool(t))
}

/// Builds `recipe` offline from the mirror and returns its output path.
fn build(store: &Path, mirror: &Path, recipe: &str) -> PathBuf {
    let out = run_ok(
        forge(store).args(["build", recipe, "--offline", "--mirror"]).arg(mirror).arg("--out").arg(store.join(recipe)),
    );
    PathBuf::from(stdout(&out))
}

/// The store paths of one target's toolchain.
struct Built {
    hello: PathBuf,
    sysroot: PathBuf,
    gcc: PathBuf,
}

/// Builds the demo programs of `triple`, which builds its toolchain; returns the paths.
fn build_target(store: &Path, mirror: &Path, triple: &str) -> Built {
    let started = std::time::Instant::now();
    let hello = build(store, mirror, &format!("{triple}-hello"));
    eprintln!("{triple}: built in {:?}", started.elapsed());
    Built {
        hello,
        sysroot: build(store, mirror, &format!("{triple}-sysroot")),
        gcc: build(store, mirror, &format!("{triple}-toolchain")),
    }
}

fn qemu(args: &[&Path]) -> String {
    let mut cmd = Command::new("qemu-aarch64-static");
    cmd.args(args).env_clear();
    stdout(&run_ok(&mut cmd))
}

fn readelf(flag: &str, file: &Path) -> String {
    stdout(&run_ok(Command::new("readelf").arg(flag).arg(file)))
}

/// forge's NAR hash of a store path agrees with nix-hash's.
fn assert_nar_hash_is_nix_hash(store: &Path, path: &Path) -> String {
    let inside = format!("/forge/store/{}", path.file_name().unwrap().to_string_lossy());
    let info = run_ok(forge(store).args(["store", "info", &inside, "--json"]));
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let nix = format!("sha256:{}", nix_hash(path));
    assert_eq!(info["narHash"], nix, "{}", path.display());
    eprintln!("NAR {} {nix}", path.display());
    nix
}

#[test]
fn cross_compiled_c_and_cxx_programs_run_under_qemu_aarch64() {
    if !enabled() {
        return;
    }
    let Some(mirror) = test_mirror() else { return };
    let (_tmp, store) = store_root();
    let Built { hello, sysroot, gcc } = build_target(&store, &mirror, "aarch64-linux-musl");
    let bin = hello.join("usr/bin");

    // Static programs: aarch64 code, no interpreter, run by qemu alone.
    for (name, want) in [("hello-c-static", C_OUTPUT), ("hello-cxx-static", CXX_OUTPUT)] {
        let exe = bin.join(name);
        assert!(readelf("-h", &exe).contains("AArch64"), "{name}");
        assert!(!readelf("-l", &exe).contains("program interpreter"), "{name} is not static");
        assert_eq!(qemu(&[&exe]), want);
    }

    // Dynamic programs name musl's loader and find it, libc, libstdc++ and libgcc_s in
    // the sysroot layer.
    for (name, want, needed) in [
        ("hello-c", C_OUTPUT, &["libc.so"][..]),
        ("hello-cxx", CXX_OUTPUT, &["libstdc++.so.6", "libgcc_s.so.1", "libc.so"][..]),
    ] {
        let exe = bin.join(name);
        let file = stdout(&run_ok(Command::new("file").arg("-b").arg(&exe)));
        assert!(file.contains("ARM aarch64") && file.contains("interpreter /lib/ld-musl-aarch64.so.1"), "{file}");
        assert!(readelf("-l", &exe).contains("[Requesting program interpreter: /lib/ld-musl-aarch64.so.1]"));
        let dynamic = readelf("-d", &exe);
        for lib in needed {
            assert!(dynamic.contains(&format!("Shared library: [{lib}]")), "{name} lacks {lib}:\n{dynamic}");
            assert!(sysroot.join("usr/lib").join(lib).exists(), "the sysroot lacks {lib}");
        }
        assert_eq!(qemu(&[Path::new("-L"), &sysroot, &exe]), want);
        // The device's way: the sysroot layer as the whole root, emulated by the sandbox.
        assert_eq!(run_on_root(&store, "aarch64", &sysroot, &hello, &[&format!("/programs/usr/bin/{name}")]), want);
    }

    // The sysroot is a layer in the target's FHS, with the kernel's headers.
    assert_eq!(std::fs::read_link(sysroot.join("lib/ld-musl-aarch64.so.1")).unwrap(), Path::new("../usr/lib/libc.so"));
    for f in ["usr/include/stdio.h", "usr/include/linux/version.h", "usr/include/asm/unistd.h", "usr/lib/crt1.o"] {
        assert!(sysroot.join(f).exists(), "{f} missing from the sysroot");
    }
    assert!(sysroot.join("usr/include/c++/12.2.0/vector").is_file());
    assert!(gcc.join("usr/bin/aarch64-linux-musl-gcc").is_file());

    // A real autotools project cross-compiled through `.cross(&tc)`.
    let gnu_hello = build(&store, &mirror, "aarch64-linux-musl-gnu-hello");
    let exe = gnu_hello.join("usr/bin/hello");
    assert!(readelf("-h", &exe).contains("AArch64"));
    assert_eq!(qemu(&[Path::new("-L"), &sysroot, &exe]), "Hello, world!");
    assert_eq!(qemu(&[Path::new("-L"), &sysroot, &exe, Path::new("-g"), Path::new("hi from forge")]), "hi from forge");

    for path in [&gcc, &sysroot, &hello, &gnu_hello] {
        assert_nar_hash_is_nix_hash(&store, path);
    }
}

/// Runs `argv` (its program a path inside the sandbox) in forge's sandbox for `arch`
/// with `root` as its root filesystem and `programs` mounted at /programs.
fn run_on_root(store: &Path, arch: &str, root: &Path, programs: &Path, argv: &[&str]) -> String {
    let mut cmd = forge(store);
    cmd.args(["sandbox", "--arch", arch, "--root"]).arg(root);
    cmd.arg("--ro").arg(format!("{}:/programs", programs.display()));
    cmd.arg("--").args(argv);
    stdout(&run_ok(&mut cmd))
}

#[test]
fn native_x86_64_musl_programs_run_on_their_own_sysroot() {
    if !enabled() {
        return;
    }
    let Some(mirror) = test_mirror() else { return };
    let (_tmp, store) = store_root();
    let Built { hello, sysroot, gcc } = build_target(&store, &mirror, "x86_64-linux-musl");
    let bin = hello.join("usr/bin");

    for (name, want) in [("hello-c-static", X86_C_OUTPUT), ("hello-cxx-static", X86_CXX_OUTPUT)] {
        let exe = bin.join(name);
        assert!(!readelf("-l", &exe).contains("program interpreter"), "{name} is not static");
        assert_eq!(stdout(&run_ok(&mut Command::new(&exe))), want);
    }
    // The dynamic ones with the sysroot layer as the whole root: musl's loader at
    // /lib/ld-musl-x86_64.so.1 finds libc, libstdc++ and libgcc_s in /usr/lib, and
    // nothing of the host is there to help.
    for (name, want) in [("hello-c", X86_C_OUTPUT), ("hello-cxx", X86_CXX_OUTPUT)] {
        let exe = bin.join(name);
        assert!(readelf("-l", &exe).contains("[Requesting program interpreter: /lib/ld-musl-x86_64.so.1]"));
        assert_eq!(run_on_root(&store, "x86_64", &sysroot, &hello, &[&format!("/programs/usr/bin/{name}")]), want);
    }
    assert!(sysroot.join("usr/lib/libstdc++.so.6").exists());
    assert!(!sysroot.join("usr/lib64").exists(), "gcc's lib64 is folded into usr/lib");
    assert!(gcc.join("usr/bin/x86_64-linux-musl-g++").is_file());

    for path in [&gcc, &sysroot, &hello] {
        assert_nar_hash_is_nix_hash(&store, path);
    }
}

/// The device's modem stack: libqmi and ModemManager cross-compiled for
/// aarch64-linux-musl against GLib, D-Bus and polkit cross-compiled from source, each
/// its own layer. The layers merged over the sysroot make a root on which the programs
/// run under emulation and pass `forge abi check`.
#[test]
fn the_modem_stack_cross_compiles_for_the_device_and_runs_under_qemu() {
    if !enabled() {
        return;
    }
    let Some(mirror) = test_mirror() else { return };
    let (_tmp, store) = store_root();
    let started = std::time::Instant::now();
    let mm = build(&store, &mirror, "aarch64-linux-musl-modemmanager");
    eprintln!("aarch64-linux-musl-modemmanager: built in {:?}", started.elapsed());
    let layers: Vec<PathBuf> = ["sysroot", "zlib", "libffi", "pcre2", "glib", "expat", "dbus", "polkit", "libqmi"]
        .iter()
        .map(|name| build(&store, &mirror, &format!("aarch64-linux-musl-{name}")))
        .chain([mm.clone()])
        .collect();
    let root = merged_root(&layers);

    let daemon = mm.join("usr/sbin/ModemManager");
    assert!(readelf("-h", &daemon).contains("AArch64"));
    assert!(readelf("-l", &daemon).contains("[Requesting program interpreter: /lib/ld-musl-aarch64.so.1]"));
    let dynamic = readelf("-d", &daemon);
    for lib in ["libqmi-glib.so.5", "libpolkit-gobject-1.so.0", "libgio-2.0.so.0", "libglib-2.0.so.0", "libc.so"] {
        assert!(dynamic.contains(&format!("Shared library: [{lib}]")), "ModemManager lacks {lib}:\n{dynamic}");
    }
    assert!(!dynamic.contains("libgudev"), "the device build has no udev support");
    // Installed where the device reads it, not under the build's sysroot path.
    assert!(mm.join("usr/share/polkit-1/actions/org.freedesktop.ModemManager1.policy").is_file());
    assert!(!mm.join("build").exists(), "files installed under /build/sysroot");
    let plugins = file_names_ending(&mm.join("usr/lib/ModemManager"), ".so");
    assert_eq!(plugins, ["libmm-plugin-generic.so", "libmm-plugin-quectel.so", "libmm-shared-quectel.so"]);

    for (exe, want) in [
        ("usr/sbin/ModemManager", "ModemManager 1.24.0"),
        ("usr/bin/mmcli", "mmcli 1.24.0"),
        ("usr/bin/qmicli", "qmicli 1.36.0"),
    ] {
        let out = qemu(&[Path::new("-L"), root.path(), &root.path().join(exe), Path::new("--version")]);
        assert_eq!(out.lines().next(), Some(want), "{exe} --version under qemu-aarch64-static -L");
        // The device's way: the merged layers as the whole root, emulated by the sandbox.
        let out = run_on_root(&store, "aarch64", root.path(), root.path(), &[&format!("/{exe}"), "--version"]);
        assert_eq!(out.lines().next(), Some(want), "{exe} --version in forge's sandbox");
        assert_abi_check_passes(&store, root.path(), exe);
    }
    for path in &layers[1..] {
        assert_nar_hash_is_nix_hash(&store, path);
    }
}

/// The graphics stack under Qt on the device: Wayland's libraries and libglvnd's EGL
/// and GLES 2 cross-compiled for aarch64-linux-musl, each its own layer, whose
/// libraries pass `forge abi check` on the merged layers.
#[test]
fn wayland_and_libglvnd_cross_compile_for_the_device() {
    if !enabled() {
        return;
    }
    let Some(mirror) = test_mirror() else { return };
    let (_tmp, store) = store_root();
    let layers: Vec<PathBuf> = ["sysroot", "libffi", "expat", "wayland", "libglvnd"]
        .iter()
        .map(|name| build(&store, &mirror, &format!("aarch64-linux-musl-{name}")))
        .collect();
    let (wayland, glvnd) = (&layers[3], &layers[4]);
    let root = merged_root(&layers);

    let client = wayland.join("usr/lib/libwayland-client.so.0");
    assert!(readelf("-h", &client).contains("AArch64"));
    let dynamic = readelf("-d", &client);
    for lib in ["libffi.so.8", "libc.so"] {
        assert!(dynamic.contains(&format!("Shared library: [{lib}]")), "wayland-client lacks {lib}:\n{dynamic}");
    }
    for lib in ["libwayland-server.so.0", "libwayland-cursor.so.0", "libwayland-egl.so.1"] {
        assert!(wayland.join("usr/lib").join(lib).exists(), "{lib} missing");
    }
    // The scanner in the layer is the device's (as in Alpine's wayland-dev); the build
    // ran Debian's for the build machine.
    assert!(readelf("-h", &wayland.join("usr/bin/wayland-scanner")).contains("AArch64"));
    let pc = std::fs::read_to_string(wayland.join("usr/lib/pkgconfig/wayland-client.pc")).unwrap();
    assert!(pc.contains("prefix=/usr"), "{pc}");

    let egl = glvnd.join("usr/lib/libEGL.so.1");
    assert!(readelf("-h", &egl).contains("AArch64"));
    let symbols = readelf("-Ws", &egl); // wide: long names are cut short otherwise
    for symbol in ["eglGetDisplay", "eglGetPlatformDisplay", "eglCreateWindowSurface"] {
        assert!(symbols.contains(symbol), "libEGL does not export {symbol}");
    }
    assert!(glvnd.join("usr/lib/libGLESv2.so.2").exists());
    assert!(glvnd.join("usr/include/EGL/egl.h").is_file() && glvnd.join("usr/include/GLES2/gl2.h").is_file());
    assert!(!glvnd.join("usr/lib/libGLX.so.0").exists(), "no GLX without X11");

    for lib in [
        "usr/lib/libwayland-client.so.0",
        "usr/lib/libwayland-egl.so.1",
        "usr/lib/libEGL.so.1",
        "usr/lib/libGLESv2.so.2",
    ] {
        assert_abi_check_passes(&store, root.path(), lib);
    }
    for path in &layers[1..] {
        assert_nar_hash_is_nix_hash(&store, path);
    }
}

/// Qt for the device: qtbase 5.15.8 and qtwayland with the AGNOS patch cross-compiled
/// for aarch64-linux-musl. The patch's check program, cross-compiled against them, runs
/// under emulation on the merged layers and shows both patched behaviours, as the CI
/// configuration's check does natively (tests/tests/qt_build.rs).
#[test]
fn qt_with_the_patched_qtwayland_cross_compiles_and_the_patch_shows_under_qemu() {
    if !enabled() {
        return;
    }
    let Some(mirror) = test_mirror() else { return };
    let (_tmp, store) = store_root();
    let started = std::time::Instant::now();
    let check = build(&store, &mirror, "aarch64-linux-musl-qtwayland-patch-check");
    eprintln!("aarch64-linux-musl-qtwayland-patch-check: built in {:?}", started.elapsed());
    let layers: Vec<PathBuf> = ["sysroot", "zlib", "libffi", "wayland", "libglvnd", "qtbase", "qtwayland"]
        .iter()
        .map(|name| build(&store, &mirror, &format!("aarch64-linux-musl-{name}")))
        .chain([check.clone()])
        .collect();
    let (qtbase, qtwayland) = (&layers[5], &layers[6]);
    // Of each Qt module the device takes `usr/` (as the image does); `host/` holds the
    // build machine's tools.
    let root = merged_root(&layers[..5]);
    for part in [qtbase.join("usr"), qtwayland.join("usr"), check.join("usr")] {
        run_ok(Command::new("cp").arg("-a").arg(&part).arg(root.path()));
        run_ok(Command::new("chmod").args(["-R", "u+w"]).arg(root.path()));
    }

    let gui = qtbase.join("usr/lib/libQt5Gui.so.5");
    assert!(readelf("-h", &gui).contains("AArch64"));
    assert!(readelf("-d", &gui).contains("Shared library: [libGLESv2.so.2]"), "QtGui is not on OpenGL ES 2");
    assert!(readelf("-h", &qtbase.join("host/bin/qmake")).contains("X86-64"), "qmake runs on the build machine");
    assert!(!qtbase.join("usr/bin/qmake").exists(), "a build-machine tool in the device's part");
    let plugins = qtwayland.join("usr/lib/qt5/plugins");
    let egl_plugin = "wayland-graphics-integration-client/libqt-plugin-wayland-egl.so";
    for plugin in ["platforms/libqwayland-egl.so", "platforms/libqwayland-generic.so", egl_plugin] {
        assert!(readelf("-h", &plugins.join(plugin)).contains("AArch64"), "{plugin}");
    }
    let client = qtwayland.join("usr/lib/libQt5WaylandClient.so.5");
    assert!(readelf("-d", &client).contains("Shared library: [libwayland-client.so.0]"));
    // Nothing the device gets names the build's paths or a run path.
    for qt in [qtbase, qtwayland] {
        assert!(file_names_ending(&qt.join("usr/lib"), ".la").is_empty(), "libtool archives in {}", qt.display());
    }
    let pc = std::fs::read_to_string(qtwayland.join("usr/lib/pkgconfig/Qt5WaylandClient.pc")).unwrap();
    assert!(pc.starts_with("prefix=/usr\n"), "{pc}");
    assert!(!readelf("-d", &gui).contains("RUNPATH") && !readelf("-d", &client).contains("RUNPATH"));

    let argv = ["/usr/bin/qtwayland-patch-check".to_owned(), format!("/usr/lib/qt5/plugins/{egl_plugin}")];
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = run_on_root(&store, "aarch64", root.path(), root.path(), &argv);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["geometry 0 0 2160 1080", "EGL_PLATFORM wayland"], "the check in forge's sandbox");
    for lib in ["usr/lib/libQt5WaylandClient.so.5", &format!("usr/lib/qt5/plugins/{egl_plugin}")] {
        assert_abi_check_passes(&store, root.path(), lib);
    }
    for path in &layers[1..] {
        assert_nar_hash_is_nix_hash(&store, path);
    }
}

/// The layers copied, in order, into one fresh folder (made writable as they land).
fn merged_root(layers: &[PathBuf]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for layer in layers {
        run_ok(Command::new("cp").arg("-a").arg(format!("{}/.", layer.display())).arg(root.path()));
        run_ok(Command::new("chmod").args(["-R", "u+w"]).arg(root.path()));
    }
    root
}

/// `forge abi check` of the ELF file at `in_root` (relative to the root) against `root`.
fn assert_abi_check_passes(store: &Path, root: &Path, in_root: &str) {
    let check = forge(store)
        .args(["abi", "check", "--root"])
        .arg(root)
        .arg("--in-root")
        .arg(format!("/{in_root}"))
        .output()
        .unwrap();
    assert!(check.status.success(), "abi check of {in_root}:\n{}", String::from_utf8_lossy(&check.stdout));
}
