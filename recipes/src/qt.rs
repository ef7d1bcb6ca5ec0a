//! qtwayland 5.15 with the AGNOS patch: the Qt Wayland client (and compositor) library
//! and plugins that comma's UI runs on, built from upstream's source with the old
//! build's patch ported to 5.15 (`recipes/patches/qtwayland-5.15-agnos.patch`, see
//! docs/qt.md for what each hunk does and why).
//!
//! Two configurations of one recipe body ([`build`]):
//!
//! - [`qtwayland`] (CI, what the tests build): upstream's qtwayland 5.15.8 tarball, which
//!   Debian 12 ships unchanged as its `.orig` tarball, against Debian 12's Qt 5.15.8: the
//!   bootstrap toolchain plus a layer of the pinned Debian packages of
//!   `data/debian-bookworm-amd64-qt.lock` (qtbase5-dev, -private-dev, qmake, g++ 12,
//!   wayland, EGL, xkbcommon, ...).
//! - [`qtwayland_alpine`] (the device): the qtwayland Alpine 3.20 ships (KDE's 5.15.10
//!   snapshot `3a8613b9`, `qt5-qtwayland-5.15.10_git20230714`) against Alpine 3.20's own Qt
//!   5.15.10 installed from an apk lock. The lock cannot be made here (no Alpine servers),
//!   so this configuration is declared and fails with a message naming `forge lock`.
//!
//! [`patch_check`] is the proof that the patch is in the binaries: a small program,
//! compiled in the sandbox against the built library, calls the two patched functions
//! in forge's build and in Debian's unpatched build of the same version, and writes what
//! each did.

use std::path::PathBuf;

use forge_engine::apk::make::ApkSpec;
use forge_engine::dsl::{ApkFile, Forge, Input, Package, RunStep, Source};
use forge_engine::error::Error;
use forge_engine::Result;

use crate::bootstrap::{self, DebPin};

/// Debian 12 packages the CI configuration builds with (see the lock's header).
const QT_LOCK: &str = include_str!("../data/debian-bookworm-amd64-qt.lock");
/// Debian 12's own build of qtwayland 5.15.8: the oracle of [`patch_check`].
const STOCK_LOCK: &str = include_str!("../data/debian-bookworm-amd64-qtwayland-stock.lock");
/// The AGNOS patch, ported to qtwayland 5.15.
pub const AGNOS_PATCH: &str = include_str!("../patches/qtwayland-5.15-agnos.patch");
/// The program [`patch_check`] compiles and runs.
pub const CHECK_PROGRAM: &str = include_str!("../data/qtwayland-patch-check.cpp");

/// The qmake configure flag without which the patch's EGL hunk is not compiled: 5.15
/// turns the feature on wherever EGL 1.5 headers exist and then calls
/// eglGetPlatformDisplay instead (docs/qt.md).
pub const NO_EGL_PLATFORM_FEATURE: &str = "-no-feature-egl-extension-platform-wayland";

/// One pinned source tarball of qtwayland.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QtwaylandSource {
    /// The version the package gets (`5.15.8`).
    pub version: String,
    /// The file's name in the store and in mirrors.
    pub file: String,
    /// Where upstream publishes it (mirrors are tried first).
    pub urls: Vec<String>,
    /// `sha256:<hex>` or `sha512:<hex>` of the file.
    pub hash: String,
    /// `SOURCE_DATE_EPOCH` of the build: the source's release date.
    pub epoch: u64,
    /// A snapshot of git (no pre-generated `include/`, unlike a release tarball).
    pub git_snapshot: bool,
}

/// Upstream's qtwayland 5.15.8 release tarball. Debian's
/// `qtwayland-opensource-src_5.15.8.orig.tar.xz` is this file byte for byte (its sha512
/// is the one VideoLAN's contrib pins for the upstream tarball).
pub fn upstream_5_15_8() -> QtwaylandSource {
    QtwaylandSource {
        version: "5.15.8".into(),
        file: "qtwayland-everywhere-opensource-src-5.15.8.tar.xz".into(),
        urls: vec![
            "https://download.qt.io/archive/qt/5.15/5.15.8/submodules/qtwayland-everywhere-opensource-src-5.15.8.tar.xz"
                .into(),
        ],
        hash: "sha256:fa0e7bd40f5da2d30fbdb51a436c5776950d6bd070b61a8d62d85cb537934529".into(),
        epoch: 1_672_531_200, // 2023-01-01, the month Qt 5.15.8 was released
        git_snapshot: false,
    }
}

/// The qtwayland of Alpine 3.20 (`qt5-qtwayland-5.15.10_git20230714-r0`): KDE's Qt 5
/// patch collection at commit `3a8613b9`, archived by Alpine; sha512 from the aports
/// APKBUILD.
pub fn alpine_3_20() -> QtwaylandSource {
    let rev = "3a8613b91d2239aebc73b43562f929aa71af0de5";
    QtwaylandSource {
        version: "5.15.10_git20230714".into(),
        file: format!("qtwayland-{rev}.tar.xz"),
        urls: vec![format!("https://dev.alpinelinux.org/archive/qt/qtwayland-{rev}.tar.xz")],
        hash: "sha512:7714e624912ae9998f7eb7a375401eaa89e4ca82f4c2d4c8f624495ad59cf67b\
               38980b136b41d9010604eeb2cc3de7ac3bd3c6ff0441454b4d23130a5b1ba4ac"
            .into(),
        epoch: 1_689_292_800, // 2023-07-14, the snapshot's date
        git_snapshot: true,
    }
}

/// The pins of the CI configuration's Qt build dependencies.
pub fn qt_pins() -> Vec<DebPin> {
    bootstrap::parse_lock(QT_LOCK).expect("the bundled Qt lock parses (checked by a test)")
}

/// The pins of Debian's unpatched qtwayland 5.15.8 (the oracle of [`patch_check`]).
pub fn stock_pins() -> Vec<DebPin> {
    bootstrap::parse_lock(STOCK_LOCK).expect("the bundled stock qtwayland lock parses (checked by a test)")
}

/// Debian 12's Qt 5.15.8 development layer (stacked over the bootstrap toolchain):
/// every package of the Qt lock, with `g++`/`c++` named as a Debian `g++` package would.
pub fn debian_qt_layer(f: &mut Forge) -> Result<Package> {
    f.memo("debian-qt-5.15.8-dev", |f| {
        let layers = bootstrap::deb_layers(f, &qt_pins())?;
        let inputs: Vec<&dyn Input> = layers.iter().map(|l| l as &dyn Input).collect();
        let links = [("usr/bin/g++", "g++-12"), ("usr/bin/c++", "g++-12")];
        f.merge("debian-qt-5.15.8-dev", &inputs, &links)
    })
}

/// The patch as a store file.
pub fn agnos_patch(f: &mut Forge) -> Result<Source> {
    f.memo("qtwayland-5.15-agnos.patch", |f| f.text("qtwayland-5.15-agnos.patch", AGNOS_PATCH))
}

/// The build shared by both configurations: `src` patched, configured with qmake
/// (`qmake` names the qmake binary of `sysroot`), built and installed into the layer.
pub fn build(f: &mut Forge, src: &QtwaylandSource, sysroot: &[&Package], qmake: &str) -> Result<Package> {
    let urls: Vec<&str> = src.urls.iter().map(String::as_str).collect();
    let tarball = f.fetch(&src.file, &urls, &src.hash)?;
    let patch = agnos_patch(f)?;
    let mut package = f.package("qtwayland", &src.version).source(&tarball).patch(&patch);
    for layer in sysroot {
        package = package.build_dep(layer);
    }
    // A git snapshot has no pre-generated headers: qmake runs syncqt (perl) to make them
    // only when it believes it is in a git checkout, so make it believe so (as Alpine's
    // APKBUILD does). A release tarball's own headers are used as they are.
    let git = if src.git_snapshot { "mkdir -p .git\n" } else { "" };
    package
        .phase("configure", &format!("{git}{qmake} -- {NO_EGL_PLATFORM_FEATURE}"))
        .qmake(&[])
        .phase(
            "install",
            // The .prl files record the build folder; as Alpine's APKBUILD does, drop it.
            "make INSTALL_ROOT=\"$out\" install\n\
             find \"$out\" -name '*.prl' -exec sed -i -e '/^QMAKE_PRL_BUILD_DIR/d' {} +",
        )
        .source_date_epoch(src.epoch)
        .finish()
}

/// qtwayland 5.15.8 with the AGNOS patch against Debian 12's Qt 5.15.8 (the
/// configuration CI builds).
pub fn qtwayland(f: &mut Forge) -> Result<Package> {
    f.memo("qtwayland", |f| {
        let toolchain = bootstrap::toolchain(f)?;
        let qt = debian_qt_layer(f)?;
        build(f, &upstream_5_15_8(), &[&toolchain, &qt], "/usr/lib/qt5/bin/qmake")
    })
}

/// The patched qtwayland of the CI configuration as an apk (sign it with `forge build
/// qtwayland-apk --apk-key KEY.rsa`): the package that replaces the old build's
/// hand-made `qtwayland5` deb.
pub fn qtwayland_apk(f: &mut Forge) -> Result<ApkFile> {
    f.memo("qtwayland-apk", |f| {
        let tree = qtwayland(f)?;
        let spec = apk_spec(&upstream_5_15_8(), f.arch());
        f.apk_package(&tree, &spec)
    })
}

/// The apk of a patched qtwayland: Alpine's package name, and release r100, above any
/// of Alpine's own releases of the same version, so that apk upgrades Alpine's
/// qt5-qtwayland to the patched one (the old deb declared `Replaces` for the same end).
pub fn apk_spec(src: &QtwaylandSource, arch: &str) -> ApkSpec {
    ApkSpec {
        description: "Qt5 Wayland client and compositor with the AGNOS patch (2160x1080, no EGL platform path)".into(),
        url: "https://www.qt.io/developers/".into(),
        license: "LGPL-2.1-only OR LGPL-3.0-only OR GPL-3.0-only WITH Qt-GPL-exception-1.0".into(),
        ..crate::apk_spec("qt5-qtwayland", &format!("{}-r100", src.version), arch, src.epoch)
    }
}

/// The build dependencies of the Alpine configuration, as Alpine's APKBUILD of
/// qt5-qtwayland lists them (minus qtdeclarative, whose QML parts AGNOS does not use),
/// plus the compiler.
pub const ALPINE_BUILD_WORLD: &[&str] = &[
    "build-base",
    "libxcomposite-dev",
    "libxkbcommon-dev",
    "mesa-dev",
    "perl",
    "pkgconf",
    "qt5-qtbase-dev",
    "vulkan-headers",
    "wayland-dev",
];

/// The lock of the Alpine configuration's build world for `arch`.
pub fn alpine_lock_file(arch: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("data/qtwayland-build-alpine-3.20-{arch}.lock"))
}

/// qtwayland as Alpine 3.20 ships it, with the AGNOS patch, against Alpine 3.20's Qt:
/// the sysroot is the Alpine minirootfs with [`ALPINE_BUILD_WORLD`] installed from its
/// lock. Without the lock (none can be made without Alpine's servers) the recipe says
/// to run `forge lock qtwayland-alpine`.
pub fn qtwayland_alpine(f: &mut Forge) -> Result<Package> {
    f.memo("qtwayland-alpine", |f| {
        let arch = f.arch().to_owned();
        let mut release = crate::alpine::release(&arch);
        release.world = ALPINE_BUILD_WORLD.iter().map(|s| s.to_string()).collect();
        release.lock_file = alpine_lock_file(&arch);
        let world = crate::alpine::package_world(&release)?
            .ok_or_else(|| recipe_error("qtwayland-alpine", "Alpine 3.20 has no repositories declared".into()))?;
        let Some(lock) = f.apk_world(world.clone())? else {
            return Err(recipe_error(
                "qtwayland-alpine",
                format!(
                    "its Alpine build world is not locked ({} is missing); run `forge lock qtwayland-alpine` \
                     where Alpine's repositories are reachable",
                    release.lock_file.display()
                ),
            ));
        };
        let urls: Vec<&str> = release.minirootfs_urls.iter().map(String::as_str).collect();
        let minirootfs = f.fetch(
            &format!("alpine-minirootfs-{arch}.tar.gz"),
            &urls,
            &format!("sha256:{}", release.minirootfs_sha256),
        )?;
        let name = format!("qtwayland-build-alpine-3.20-{arch}");
        let installed = f.apk_install_world(&name, &minirootfs, &world, &lock, release.source_date_epoch)?;
        let sysroot =
            f.unpack(&format!("{name}-root"), &forge_engine::dsl::Target::from(installed).into_source(), 0)?;
        build(f, &alpine_3_20(), &[&sysroot.as_package()], "qmake-qt5")
    })
}

fn recipe_error(recipe: &str, why: String) -> Error {
    Error::Recipe { recipe: recipe.to_owned(), why }
}

/// Compiles `qtwayland-patch-check.cpp` against the built qtwayland and runs it twice,
/// against forge's build and against Debian's unpatched build of the same version.
/// The output `result.txt` has one `forge ...`/`debian ...` line per observation.
pub fn patch_check(f: &mut Forge) -> Result<Package> {
    f.memo("qtwayland-patch-check", |f| {
        let toolchain = bootstrap::toolchain(f)?;
        let qt = debian_qt_layer(f)?;
        let built = qtwayland(f)?;
        let stock = bootstrap::deb_layers(f, &stock_pins())?;
        let stock_inputs: Vec<&dyn Input> = stock.iter().map(|l| l as &dyn Input).collect();
        let stock = f.merge("debian-qtwayland-5.15.8-stock", &stock_inputs, &[])?;
        let program = f.text("qtwayland-patch-check.cpp", CHECK_PROGRAM)?;
        let script = check_script(&program, &stock);
        let step = RunStep {
            name: "qtwayland-patch-check",
            sysroot: vec![&toolchain, &qt, &built],
            inputs: vec![&program, &stock],
            script: &script,
            env: Default::default(),
        };
        f.run(step)
    })
}

/// Where Debian's multiarch Qt keeps libraries and plugins, under any root.
const LIBDIR: &str = "usr/lib/x86_64-linux-gnu";
const EGL_PLUGIN: &str = "qt5/plugins/wayland-graphics-integration-client/libqt-plugin-wayland-egl.so";

fn check_script(program: &Source, stock: &Package) -> String {
    let inc = "/usr/include/x86_64-linux-gnu/qt5";
    let private: String = ["QtCore", "QtGui", "QtWaylandClient"]
        .iter()
        .map(|m| format!(" -I{inc}/{m}/5.15.8 -I{inc}/{m}/5.15.8/{m}"))
        .collect();
    format!(
        "# Compile against the built qtwayland (stacked in the sysroot), then run against it\n\
         # and against Debian's unpatched build of the same version.\n\
         g++ -O1 -fPIC -o /build/check {program} $(pkg-config --cflags --libs Qt5WaylandClient){private}\n\
         /build/check /{LIBDIR}/{EGL_PLUGIN} > /build/forge.txt\n\
         LD_LIBRARY_PATH={stock}/{LIBDIR} /build/check {stock}/{LIBDIR}/{EGL_PLUGIN} > /build/debian.txt\n\
         mkdir -p \"$out\"\n\
         sed 's/^/forge /' /build/forge.txt > \"$out/result.txt\"\n\
         sed 's/^/debian /' /build/debian.txt >> \"$out/result.txt\"\n\
         cat \"$out/result.txt\"\n",
        program = program.path(),
        stock = stock.path(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use forge_engine::drv::Builder;

    fn script_of(f: &Forge, p: &Package) -> String {
        f.node(p.node()).drv.builder.script().expect("a run step").to_owned()
    }

    #[test]
    fn the_qt_locks_parse_and_pin_qt_5_15_8_development_files() {
        let pins = qt_pins();
        for needed in ["qtbase5-dev", "qtbase5-private-dev", "qt5-qmake-bin", "g++-12", "libwayland-dev", "libegl-dev"]
        {
            assert!(pins.iter().any(|p| p.package == needed), "{needed} missing from the Qt lock");
        }
        let qtbase = pins.iter().find(|p| p.package == "qtbase5-dev").unwrap();
        assert!(qtbase.version.starts_with("5.15.8"), "{qtbase:?}");
        assert!(pins.iter().chain(&stock_pins()).all(|p| p.sha256.len() == 64 && p.pool_path.starts_with("pool/")));
        // Nothing is pinned twice across the layers that are stacked together.
        let toolchain = bootstrap::toolchain_pins();
        assert!(pins.iter().all(|p| !toolchain.iter().any(|t| t.package == p.package)));
    }

    #[test]
    fn the_ci_configuration_patches_then_configures_without_the_egl_1_5_feature() {
        let mut f = Forge::for_system("x86_64-linux");
        let q = qtwayland(&mut f).unwrap();
        assert_eq!(q.path().name(), "qtwayland-5.15.8");
        let s = script_of(&f, &q);
        let patch = agnos_patch(&mut f).unwrap();
        let (p, qmake) = (s.find(&patch.path().to_string()).unwrap(), s.find("/usr/lib/qt5/bin/qmake").unwrap());
        assert!(p < qmake && s.contains(NO_EGL_PLATFORM_FEATURE), "{s}");
        assert!(s.contains("make INSTALL_ROOT=\"$out\" install"), "{s}");
        let toolchain = bootstrap::toolchain(&mut f).unwrap();
        let qt = debian_qt_layer(&mut f).unwrap();
        let want = vec![toolchain.path().clone(), qt.path().clone()];
        assert!(matches!(&f.node(q.node()).drv.builder, Builder::Run { sysroot, .. } if sysroot == &want));
    }

    #[test]
    fn the_source_is_upstreams_tarball_pinned_by_sha256() {
        let mut f = Forge::for_system("x86_64-linux");
        qtwayland(&mut f).unwrap();
        let fetch = f
            .nodes()
            .iter()
            .find(|n| n.drv.name == "qtwayland-everywhere-opensource-src-5.15.8.tar.xz")
            .expect("a fetch of upstream's tarball");
        match &fetch.drv.builder {
            Builder::Fetch { urls, hash, .. } => {
                assert!(urls[0].starts_with("https://download.qt.io/"), "{urls:?}");
                let pinned: forge_store::Hash = upstream_5_15_8().hash.parse().unwrap();
                assert_eq!(hash.to_string(), pinned.to_string());
            }
            other => panic!("not a fetch: {other:?}"),
        }
    }

    #[test]
    fn the_qtwayland_apk_outranks_alpines_own_release_of_the_same_version() {
        let spec = apk_spec(&alpine_3_20(), "aarch64");
        spec.validate().unwrap();
        assert_eq!(spec.file_name(), "qt5-qtwayland-5.15.10_git20230714-r100.apk");
        // apk's own ordering puts it above Alpine's releases of that version.
        for alpine in ["5.15.10_git20230714-r0", "5.15.10_git20230714-r2", "5.15.10_git20230714-r99"] {
            let order = forge_engine::apk::version::compare(&spec.version, alpine);
            assert_eq!(order, std::cmp::Ordering::Greater, "{} against {alpine}", spec.version);
        }
        let mut f = Forge::for_system("x86_64-linux");
        let apk = qtwayland_apk(&mut f).unwrap();
        let layer = qtwayland(&mut f).unwrap();
        assert_eq!(apk.path().name(), "qt5-qtwayland-5.15.8-r100.apk");
        assert!(f.node(apk.node()).drv.inputs.contains(layer.path()), "the apk packs the patched build");
    }

    #[test]
    fn the_alpine_configuration_without_its_lock_names_forge_lock() {
        let mut f = Forge::for_system("aarch64-linux");
        let err = qtwayland_alpine(&mut f).unwrap_err().to_string();
        assert!(err.contains("forge lock qtwayland-alpine"), "{err}");
        let declared = &f.apk_worlds()[0].world;
        assert_eq!(declared.arch, "aarch64");
        assert!(declared.world.iter().any(|p| p == "qt5-qtbase-dev"));
        assert!(declared.lock_file.ends_with("data/qtwayland-build-alpine-3.20-aarch64.lock"));
    }

    #[test]
    fn the_patch_check_runs_one_program_against_both_builds() {
        let mut f = Forge::for_system("x86_64-linux");
        let check = patch_check(&mut f).unwrap();
        let s = script_of(&f, &check);
        let runs = s.lines().filter(|l| l.contains("/build/check /") && !l.starts_with("g++")).count();
        assert_eq!(runs, 2, "{s}");
        assert!(s.contains("LD_LIBRARY_PATH=/forge/store/") && s.contains("sed 's/^/debian /'"), "{s}");
    }
}
