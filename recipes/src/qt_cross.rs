//! Qt for the device: qtbase 5.15.8 and qtwayland 5.15.8 with the AGNOS patch,
//! cross-compiled for aarch64-linux-musl with the musl cross toolchain
//! ([`crate::cross`]) over the graphics stack of [`crate::cross_libs`] (Wayland,
//! libglvnd's EGL and GLES 2, zlib).
//!
//! Qt builds two kinds of program: the libraries and plugins for the device, and the
//! tools it runs while building (qmake, moc, rcc, uic, qtwaylandscanner) for the build
//! machine. configure's `-hostprefix` keeps the second kind apart, so each layer has
//! two folders:
//!
//! - `usr/`: what the device gets, as Alpine's `qt5-qtbase` lays it out (`/usr/lib`,
//!   `/usr/include/qt5`, `/usr/lib/qt5/plugins`). The image copies only this folder.
//! - `host/`: x86_64 tools and the mkspecs, which a later Qt module's build copies back
//!   to [`HOST_PREFIX`], the path they were configured for.
//!
//! These stand in for Alpine's own qt5-qtbase until its apk lock can be made (issue 8):
//! the same version family and the features qtwayland needs. What is left out, and why,
//! is in docs/qt.md ("For the device").

use forge_engine::dsl::{Forge, Input, Package, RunStep};
use forge_engine::package::PackageBuilder;
use forge_engine::Result;

use crate::cross::{self, CrossTarget, CrossToolchain, Pin};
use crate::cross_libs::{self, SYSROOT};
use crate::qt;

/// Where Qt's build-machine tools live while a Qt module builds (configure's
/// `-hostprefix`): qmake has this path compiled in.
pub const HOST_PREFIX: &str = "/build/qt-host";

/// Where `make install` stages a Qt module before its two folders are moved to `$out`.
const STAGE: &str = "/build/stage";

/// Debian's qtbase 5.15.8 source: upstream's `qtbase-everywhere-opensource-src-5.15.8`
/// with a few non-free files removed (DFSG), so it keeps Debian's name.
const QTBASE: Pin = Pin {
    file: "qtbase-opensource-src_5.15.8+dfsg.orig.tar.xz",
    url: "mirror://debian/pool/main/q/qtbase-opensource-src/qtbase-opensource-src_5.15.8+dfsg.orig.tar.xz",
    sha256: "d1c61b777850c2953862a8d52c7afb56350a99b23af763beb44c51c6fe8c0e38",
};

/// `SOURCE_DATE_EPOCH` of both modules: 2023-01-01, the month Qt 5.15.8 was released
/// (the same as [`qt::upstream_5_15_8`]).
const QT_EPOCH: u64 = 1_672_531_200;

/// qtbase's configure options for the device, after the cross-compilation ones that
/// [`qtbase_configure`] sets.
///
/// - OpenGL ES 2 over EGL, which libglvnd provides: the GPU's EGL registers with it.
/// - FreeType, HarfBuzz, libpng and PCRE2 from Qt's own copies, zlib from its layer: no
///   more target layers than qtwayland needs.
/// - No widgets, SQL, test library, D-Bus, X11 or xkbcommon: qtwayland's client needs
///   none of them (docs/qt.md says what the UI will need on top).
/// - Only the Wayland platform (qtwayland's) and the headless ones: no eglfs, linuxfb
///   or KMS.
/// - No run path (`$ORIGIN` otherwise), as Alpine's: the libraries are in `/usr/lib`.
/// - No precompiled headers (their bytes depend on the compiler's memory layout) and
///   no gold (the cross binutils has no `ld.gold`).
pub const QTBASE_FLAGS: &[&str] = &[
    "-opensource",
    "-confirm-license",
    "-release",
    "-shared",
    "-opengl",
    "es2",
    "-egl",
    "-qt-freetype",
    "-qt-harfbuzz",
    "-qt-libpng",
    "-qt-pcre",
    "-system-zlib",
    "-no-widgets",
    "-no-feature-sql",
    "-no-feature-testlib",
    "-no-dbus",
    "-no-xcb",
    "-no-xkbcommon",
    "-no-fontconfig",
    "-no-glib",
    "-no-icu",
    "-no-openssl",
    "-no-eglfs",
    "-no-linuxfb",
    "-no-kms",
    "-no-gbm",
    "-no-libinput",
    "-no-mtdev",
    "-no-tslib",
    "-no-libjpeg",
    "-no-rpath",
    "-no-pch",
    "-no-use-gold-linker",
    "-nomake",
    "examples",
    "-nomake",
    "tests",
];

/// qtbase's `configure` line for `target`: the generic Linux device spec with the
/// toolchain's prefix, the sysroot the build assembled, Alpine's directory layout
/// (prefix `/usr`, headers in `include/qt5`, plugins in `lib/qt5/plugins`, settings in
/// `/etc/xdg`) and the build-machine tools and mkspecs under [`HOST_PREFIX`].
///
/// configure warns that no platform plugin is enabled: the device's, Wayland's, is
/// qtwayland's.
pub fn qtbase_configure(target: CrossTarget) -> String {
    let layout = [
        "-prefix /usr",
        "-headerdir /usr/include/qt5",
        "-archdatadir /usr/lib/qt5",
        "-datadir /usr/share/qt5",
        "-sysconfdir /etc/xdg",
        "-docdir /usr/share/doc/qt5",
        "-examplesdir /usr/share/doc/qt5/examples",
    ];
    let flags = QTBASE_FLAGS.join(" ");
    format!(
        "./configure -device linux-generic-g++ -device-option CROSS_COMPILE={t}- \
         -sysroot {SYSROOT} -hostprefix {HOST_PREFIX} {layout} {flags}",
        t = target.triple(),
        layout = layout.join(" "),
    )
}

/// The install phase of a Qt module: `make install` into [`STAGE`], where configure's
/// paths put the device's files under `build/sysroot/usr` and the tools under
/// `build/qt-host`; each moved to its folder in `$out`. Then what names the build's
/// paths goes: the `.prl` files' build folder (as Alpine's APKBUILD drops it), the
/// libtool archives (`-L/build/sysroot/usr/lib`; pkg-config makes them unneeded, as in
/// [`cross_libs`]), and the sysroot in the `.pc` files' `prefix`.
fn install_script() -> String {
    format!(
        "make INSTALL_ROOT={STAGE} install\n\
         mkdir -p \"$out\"\n\
         mv {STAGE}{SYSROOT}/usr \"$out/usr\"\n\
         mv {STAGE}{HOST_PREFIX} \"$out/host\"\n\
         find \"$out\" -name '*.prl' -exec sed -i -e '/^QMAKE_PRL_BUILD_DIR/d' {{}} +\n\
         find \"$out\" -name '*.la' -exec rm -f {{}} +\n\
         find \"$out/usr\" -name '*.pc' -exec sed -i -e 's|^prefix={SYSROOT}/usr$|prefix=/usr|' {{}} +"
    )
}

/// A Qt module for the target: [`cross_libs::package`] (the sysroot of `deps`), with
/// the build machine's C++ compiler for the tools and perl for Qt's scripts.
fn qt_package<'f>(f: &'f mut Forge, tc: &CrossToolchain, name: &str, deps: &[Package]) -> Result<PackageBuilder<'f>> {
    let gxx = cross::host_extras(f)?;
    let perl = cross_libs::cmake(f)?;
    Ok(cross_libs::package(f, tc, name, "5.15.8", deps)?.build_dep(&gxx).build_dep(&perl))
}

/// qtbase 5.15.8 for `target`: QtCore, QtGui (OpenGL ES 2, EGL), QtNetwork, QtXml,
/// QtConcurrent, the platform support libraries and the headless platform plugins,
/// with the build-machine tools in `host/`.
pub fn qtbase_for(f: &mut Forge, target: CrossTarget) -> Result<Package> {
    cross::on_build_machine(f, &format!("qtbase-{}", target.triple()), |f| {
        let tc = cross::toolchain(f, target)?;
        let deps = [cross_libs::zlib(f, target)?, cross_libs::libglvnd(f, target)?];
        let src = QTBASE.fetch(f)?;
        qt_package(f, &tc, "qtbase", &deps)?
            .source(&src)
            .phase("configure", &qtbase_configure(target))
            .phase("build", "make -j\"$FORGE_BUILD_CORES\"")
            .phase("install", &install_script())
            .source_date_epoch(QT_EPOCH)
            .finish()
    })
}

/// qtwayland 5.15.8 with the AGNOS patch for `target`, against [`qtbase_for`]: the
/// same tarball, patch and configure flag as the CI configuration ([`qt::qtwayland`]),
/// with qtbase's own qmake (copied back to [`HOST_PREFIX`]) and Debian 12's
/// wayland-scanner for the protocol code.
pub fn qtwayland_for(f: &mut Forge, target: CrossTarget) -> Result<Package> {
    cross::on_build_machine(f, &format!("qtwayland-{}", target.triple()), |f| {
        let tc = cross::toolchain(f, target)?;
        let qtbase = qtbase_for(f, target)?;
        let deps = [
            qtbase.clone(),
            cross_libs::wayland(f, target)?,
            cross_libs::libglvnd(f, target)?,
            cross_libs::zlib(f, target)?,
            cross_libs::libffi(f, target)?,
        ];
        let scanner = cross_libs::wayland_scanner(f)?;
        let source = qt::upstream_5_15_8();
        let urls: Vec<&str> = source.urls.iter().map(String::as_str).collect();
        let tarball = f.fetch(&source.file, &urls, &source.hash)?;
        let patch = qt::agnos_patch(f)?;
        qt_package(f, &tc, "qtwayland", &deps)?
            .source(&tarball)
            .patch(&patch)
            .build_dep(&scanner)
            .env("qtbase", &qtbase.path().to_string())
            .phase("configure", &qtwayland_configure())
            .phase("build", "make -j\"$FORGE_BUILD_CORES\"")
            .phase("install", &install_script())
            .source_date_epoch(QT_EPOCH)
            .finish()
    })
}

/// qtwayland's configure phase: qtbase's tools and mkspecs back at [`HOST_PREFIX`]
/// (store files are read-only; qmake writes beside its spec), then its qmake with the
/// flag the patch's EGL hunk needs ([`qt::NO_EGL_PLATFORM_FEATURE`]).
fn qtwayland_configure() -> String {
    format!(
        "mkdir -p {HOST_PREFIX}\n\
         cp -R \"$qtbase/host/.\" {HOST_PREFIX}/\n\
         chmod -R u+w {HOST_PREFIX}\n\
         {HOST_PREFIX}/bin/qmake -- {}",
        qt::NO_EGL_PLATFORM_FEATURE
    )
}

/// `qtwayland-patch-check.cpp` (see [`qt::patch_check`]) cross-compiled for `target`
/// against [`qtwayland_for`]: `usr/bin/qtwayland-patch-check`, to run under
/// emulation on a root of the layers (tests/tests/cross_toolchain.rs).
pub fn patch_check_for(f: &mut Forge, target: CrossTarget) -> Result<Package> {
    cross::on_build_machine(f, &format!("qtwayland-patch-check-{}", target.triple()), |f| {
        let tc = cross::toolchain(f, target)?;
        let layers = [
            qtbase_for(f, target)?,
            qtwayland_for(f, target)?,
            cross_libs::wayland(f, target)?,
            cross_libs::libglvnd(f, target)?,
            cross_libs::zlib(f, target)?,
            cross_libs::libffi(f, target)?,
        ];
        let program = f.text("qtwayland-patch-check.cpp", qt::CHECK_PROGRAM)?;
        let mut env = tc.env();
        env.extend(cross_libs::sysroot_env(&tc, &layers).map(|(k, v)| (k.to_owned(), v)));
        env.insert("check".into(), program.path().to_string());
        let script = format!("{}{}", cross_libs::prepare_script(target), check_compile_script(target));
        let mut inputs: Vec<&dyn Input> = vec![&program, &tc.sysroot];
        inputs.extend(layers.iter().map(|l| l as &dyn Input));
        f.run(RunStep {
            name: &format!("qtwayland-patch-check-{}", target.triple()),
            sysroot: tc.layers().into_iter().map(|l| l as &dyn Input).collect(),
            inputs,
            script: &script,
            env,
        })
    })
}

/// Compiles the check against the sysroot: Qt's public headers and the private ones of
/// the three modules whose internals it calls.
fn check_compile_script(target: CrossTarget) -> String {
    let inc = format!("{SYSROOT}/usr/include/qt5");
    let modules = ["QtCore", "QtGui", "QtWaylandClient"];
    let include: String =
        modules.iter().map(|m| format!(" -I{inc}/{m} -I{inc}/{m}/5.15.8 -I{inc}/{m}/5.15.8/{m}")).collect();
    format!(
        "mkdir -p \"$out/usr/bin\"\n\
         {t}-g++ --sysroot={SYSROOT} -O1 -fPIC -o \"$out/usr/bin/qtwayland-patch-check\" \"$check\" \
         -I{inc}{include} -lQt5WaylandClient -lQt5Gui -lQt5Core\n\
         {t}-strip \"$out/usr/bin/qtwayland-patch-check\"\n",
        t = target.triple()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(f: &Forge, p: &Package) -> String {
        f.node(p.node()).drv.builder.script().expect("a run step").to_owned()
    }

    #[test]
    fn qtbase_configures_for_the_device_with_its_tools_kept_apart() {
        let line = qtbase_configure(CrossTarget::Aarch64);
        for part in [
            "-device linux-generic-g++ -device-option CROSS_COMPILE=aarch64-linux-musl- ",
            "-sysroot /build/sysroot -hostprefix /build/qt-host ",
            "-prefix /usr -headerdir /usr/include/qt5 -archdatadir /usr/lib/qt5 ",
            "-opengl es2 -egl ",
            "-no-pch -no-use-gold-linker",
        ] {
            assert!(line.contains(part), "{part} missing from {line}");
        }
        let mut f = Forge::new();
        let qtbase = qtbase_for(&mut f, CrossTarget::Aarch64).unwrap();
        assert_eq!(qtbase.path().name(), "qtbase-aarch64-linux-musl-5.15.8");
        let s = script(&f, &qtbase);
        assert!(s.find("# prepare").unwrap() < s.find("./configure").unwrap(), "{s}");
        assert!(s.contains("mv /build/stage/build/sysroot/usr \"$out/usr\""), "{s}");
        assert!(s.contains("mv /build/stage/build/qt-host \"$out/host\""), "{s}");
    }

    #[test]
    fn qtwayland_builds_with_the_agnos_patch_against_the_cross_qtbase() {
        let mut f = Forge::new();
        let q = qtwayland_for(&mut f, CrossTarget::Aarch64).unwrap();
        let qtbase = qtbase_for(&mut f, CrossTarget::Aarch64).unwrap();
        let patch = qt::agnos_patch(&mut f).unwrap();
        assert_eq!(q.path().name(), "qtwayland-aarch64-linux-musl-5.15.8");
        let drv = &f.node(q.node()).drv;
        assert_eq!(drv.env["qtbase"], qtbase.path().to_string());
        assert!(drv.env["target_layers"].contains(&qtbase.path().to_string()));
        let s = script(&f, &q);
        let (p, qmake) = (s.find(&patch.path().to_string()).unwrap(), s.find("/build/qt-host/bin/qmake --").unwrap());
        assert!(p < qmake && s.contains(qt::NO_EGL_PLATFORM_FEATURE), "{s}");
    }

    #[test]
    fn the_qtbase_source_is_seeded_under_debians_name() {
        let seeded = include_str!("../mirror/upstream-tarballs.txt");
        let row = seeded.lines().find(|l| l.split_whitespace().nth(3) == Some(QTBASE.file));
        let row = row.expect("qtbase's orig tarball is seeded");
        assert_eq!(row.split_whitespace().nth(4), Some(QTBASE.sha256));
        assert!(QTBASE.url.ends_with(QTBASE.file));
    }
}
