//! The libraries ModemManager and libqmi link against on the device, cross-compiled
//! from their upstream sources with the musl cross toolchain ([`crate::cross`]): zlib,
//! libffi, PCRE2, GLib, expat, D-Bus and polkit's libraries; then libqmi and
//! ModemManager themselves for the device ([`crate::modem::libqmi_for`]). And the
//! graphics stack under Qt on the device: Wayland and libglvnd's EGL.
//!
//! Each is a layer installed into `/usr` for the target. A build never stacks a target
//! layer into its root: the root is the x86_64 build machine (Debian's compilers,
//! python, meson, pkg-config), and aarch64 headers in its `/usr/include` would shadow
//! the machine's own. Instead [`package`] reads the target layers at their store paths
//! and copies them, over the toolchain's sysroot, into [`SYSROOT`] before configuring.
//! The compiler (`--sysroot`), pkg-config (`PKG_CONFIG_SYSROOT_DIR`) and meson's
//! cross file ([`meson_cross_file`]) all point there.
//!
//! The versions are Debian 12's (their .orig tarballs are what CI can seed), not
//! Alpine 3.20's: in the device's configuration these libraries come from Alpine's
//! apks (issue 8's lock), and only libqmi and ModemManager are ours. What differs from
//! the old build, and why, is in docs/modem.md ("Built for the device").

use forge_engine::dsl::{Forge, Input, Package};
use forge_engine::package::PackageBuilder;
use forge_engine::Result;

use crate::cross::{self, CrossBuild, CrossTarget, CrossToolchain, Pin};
use crate::{bootstrap, modem};

/// Where a cross build assembles its target sysroot: the toolchain's sysroot with the
/// build's target layers copied over it.
pub const SYSROOT: &str = "/build/sysroot";

/// Where [`package`] writes meson's cross file.
pub const MESON_CROSS_FILE: &str = "/build/meson-cross.ini";

/// The layers of `data/debian-bookworm-amd64-cmake.lock` (cmake and what it runs on),
/// over the bootstrap toolchain and the modem build dependencies.
const CMAKE_LOCK: &str = include_str!("../data/debian-bookworm-amd64-cmake.lock");

/// cmake for the build machine: for CMake-only projects (expat's source tree has no
/// configure script).
pub fn cmake(f: &mut Forge) -> Result<Package> {
    cross::on_build_machine(f, "cmake-bookworm", |f| {
        let pins = bootstrap::parse_lock(CMAKE_LOCK).expect("the bundled cmake lock parses (checked by a test)");
        bootstrap::deb_layer(f, "cmake-bookworm", &pins, &[])
    })
}

/// Debian's zlib 1.2.13 source: zlib repacked (DFSG), not upstream's bytes, so it
/// keeps Debian's name (see `recipes/mirror/upstream-tarballs.txt`).
const ZLIB: Pin = Pin {
    file: "zlib_1.2.13.dfsg.orig.tar.bz2",
    url: "mirror://debian/pool/main/z/zlib/zlib_1.2.13.dfsg.orig.tar.bz2",
    sha256: "71feb7947e3c00ef125f83b79a4e529bde31171e5babe48b391f06758d1ab0a1",
};
/// Upstream's libffi 3.4.4 release (Homebrew, Termux and Bazel rules pin the same).
const LIBFFI: Pin = Pin {
    file: "libffi-3.4.4.tar.gz",
    url: "https://github.com/libffi/libffi/releases/download/v3.4.4/libffi-3.4.4.tar.gz",
    sha256: "d66c56ad259a82cf2a9dfc408b32bf5da52371500b84745f7fb8b645712df676",
};
/// Upstream's PCRE2 10.42 release.
const PCRE2: Pin = Pin {
    file: "pcre2-10.42.tar.gz",
    url: "https://github.com/PCRE2Project/pcre2/releases/download/pcre2-10.42/pcre2-10.42.tar.gz",
    sha256: "c33b418e3b936ee3153de2c61cc638e7e4fe3156022a5c77d0711bcbb9d64f1f",
};
/// Upstream's GLib 2.74.6 release (Spack pins the same).
const GLIB: Pin = Pin {
    file: "glib-2.74.6.tar.xz",
    url: "https://download.gnome.org/sources/glib/2.74/glib-2.74.6.tar.xz",
    sha256: "069cf7e51cd261eb163aaf06c8d1754c6835f31252180aff5814e5afc7757fbc",
};
/// Debian's expat 2.5.0 source: the `R_2_5_0` tag's tree, not the release tarball.
const EXPAT: Pin = Pin {
    file: "expat_2.5.0.orig.tar.gz",
    url: "mirror://debian/pool/main/e/expat/expat_2.5.0.orig.tar.gz",
    sha256: "ab00ee05c7067fd10a35c5d2a4922ebba746ddd50ff83b79c828da17bbdf1757",
};
/// Upstream's signed D-Bus 1.14.10 release (Debian ships its signature beside it).
const DBUS: Pin = Pin {
    file: "dbus-1.14.10.tar.xz",
    url: "https://dbus.freedesktop.org/releases/dbus/dbus-1.14.10.tar.xz",
    sha256: "ba1f21d2bd9d339da2d4aa8780c09df32fea87998b73da24f49ab9df1e36a50f",
};
/// Debian's polkit 122 source, as Debian took it from upstream's GitLab.
const POLKIT: Pin = Pin {
    file: "policykit-1_122.orig.tar.bz2",
    url: "mirror://debian/pool/main/p/policykit-1/policykit-1_122.orig.tar.bz2",
    sha256: "e0fe9c7feac5a90d60891be5fbbebfe4ebfd7460691414d1bd64e73e0675b965",
};

/// Debian's wayland 1.21.0 source (Debian 12's version, so that Debian's own
/// wayland-scanner, which a cross build runs on the build machine, is the same).
const WAYLAND: Pin = Pin {
    file: "wayland_1.21.0.orig.tar.gz",
    url: "mirror://debian/pool/main/w/wayland/wayland_1.21.0.orig.tar.gz",
    sha256: "181b8885f152adef3afb361bb5f23cf466d455de86db123492fb507754b9ef36",
};
/// Debian's libglvnd 1.7.0 source (Debian 13's: the pool no longer has 12's 1.6.0).
const LIBGLVND: Pin = Pin {
    file: "libglvnd_1.7.0.orig.tar.gz",
    url: "mirror://debian/pool/main/libg/libglvnd/libglvnd_1.7.0.orig.tar.gz",
    sha256: "073e7292788d4d3eeb45ea6c7bdcce9bfdb3b3eef8d7dbd47f2f30dce046ef98",
};

/// Debian 12's wayland-scanner (and its pkg-config file) for the build machine.
const WAYLAND_SCANNER_LOCK: &str = include_str!("../data/debian-bookworm-amd64-wayland-scanner.lock");

/// polkit 122's post-install script chowns and chmods the daemon's setuid programs,
/// which `-Dlibs-only=true` does not build: the patch runs it only with the daemon.
const POLKIT_LIBS_ONLY_PATCH: &str = include_str!("../patches/polkit-122-libs-only-install.patch");

/// Facts about musl that meson would find out by running a test program, which a
/// cross build cannot do (GLib asks for them; see its docs on cross-compiling).
pub const MUSL_PROPERTIES: &[(&str, &str)] = &[
    ("growing_stack", "false"),
    ("have_c99_snprintf", "true"),
    ("have_c99_vsnprintf", "true"),
    ("have_proc_self_cmdline", "true"),
    ("have_strlcpy", "true"),
    ("have_unix98_printf", "true"),
    ("va_val_copy", "true"),
];

/// meson's cross file for `target`: the toolchain's tools with [`SYSROOT`], pkg-config
/// confined to the sysroot's `.pc` files, the machine, and [`MUSL_PROPERTIES`].
pub fn meson_cross_file(target: CrossTarget) -> String {
    let t = target.triple();
    let cpu = target.arch();
    let props: String = MUSL_PROPERTIES.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    format!(
        "[binaries]\n\
         c = ['{t}-gcc', '--sysroot={SYSROOT}']\n\
         cpp = ['{t}-g++', '--sysroot={SYSROOT}']\n\
         ar = '{t}-ar'\n\
         nm = '{t}-nm'\n\
         ranlib = '{t}-ranlib'\n\
         strip = '{t}-strip'\n\
         objcopy = '{t}-objcopy'\n\
         pkgconfig = 'pkg-config'\n\
         \n\
         [properties]\n\
         sys_root = '{SYSROOT}'\n\
         pkg_config_libdir = ['{SYSROOT}/usr/lib/pkgconfig', '{SYSROOT}/usr/share/pkgconfig']\n\
         {props}\
         \n\
         [host_machine]\n\
         system = 'linux'\n\
         cpu_family = '{cpu}'\n\
         cpu = '{cpu}'\n\
         endian = 'little'\n"
    )
}

/// What [`prepare_script`] reads: the toolchain's sysroot and the target layers `deps`
/// to copy over it, in order.
pub fn sysroot_env(tc: &CrossToolchain, deps: &[Package]) -> [(&'static str, String); 2] {
    let layers: Vec<String> = deps.iter().map(|d| d.path().to_string()).collect();
    [("target_sysroot", tc.sysroot.path().to_string()), ("target_layers", layers.join(" "))]
}

/// The `prepare` phase of a cross build: the target sysroot assembled in [`SYSROOT`]
/// (store files are read-only, so each copy is made writable before the next lands),
/// and meson's cross file written.
pub fn prepare_script(target: CrossTarget) -> String {
    format!(
        "mkdir -p {SYSROOT}\n\
         for layer in \"$target_sysroot\" $target_layers; do\n\
         \x20 cp -R \"$layer/.\" {SYSROOT}/\n\
         \x20 chmod -R u+w {SYSROOT}\n\
         done\n\
         cat > {MESON_CROSS_FILE} <<'EOF'\n{}EOF\n",
        meson_cross_file(target)
    )
}

/// Starts package `name` (store name `<name>-<triple>-<version>`) built for the
/// toolchain's target against the target layers `deps`: the toolchain and the
/// build-machine tools (meson, ninja, pkg-config, python, GLib's code generators) as the
/// root, the `prepare` phase set, and `CC`/`CXX` bound to [`SYSROOT`]. Autotools
/// builds go through `autotools` (`--build`/`--host`, pkg-config), meson builds through
/// [`meson`] (the cross file).
pub fn package<'f>(
    f: &'f mut Forge,
    tc: &CrossToolchain,
    name: &str,
    version: &str,
    deps: &[Package],
) -> Result<PackageBuilder<'f>> {
    let tools = modem::builddeps(f)?;
    let t = tc.target.triple();
    let mut b = f.package(&format!("{name}-{t}"), version).cross(tc).build_dep(&tools).input(&tc.sysroot);
    for dep in deps {
        b = b.input(dep);
    }
    for (key, value) in sysroot_env(tc, deps) {
        b = b.env(key, &value);
    }
    Ok(b.env("CC", &format!("{t}-gcc --sysroot={SYSROOT}"))
        .env("CXX", &format!("{t}-g++ --sysroot={SYSROOT}"))
        .phase("prepare", &prepare_script(tc.target)))
}

/// An autotools build for the target: `--build`/`--host` before `flags`, pkg-config
/// confined to the sysroot, and libtool archives dropped from the output (they name
/// `/usr/lib` paths that are wrong inside a sysroot; pkg-config makes them unneeded).
///
/// Only autotools builds get the pkg-config variables: in a meson build they would
/// also steer the lookups meson makes for the build machine (GLib's code generators).
fn autotools<'f>(b: PackageBuilder<'f>, tc: &CrossToolchain, flags: &[&str]) -> PackageBuilder<'f> {
    let mut all = tc.configure_flags();
    all.extend(flags.iter().map(|f| f.to_string()));
    b.autotools(&strs(&all))
        .env("PKG_CONFIG_SYSROOT_DIR", SYSROOT)
        .env("PKG_CONFIG_LIBDIR", &format!("{SYSROOT}/usr/lib/pkgconfig:{SYSROOT}/usr/share/pkgconfig"))
        .phase("install", &format!("make DESTDIR=\"$out\" install\n{DROP_LIBTOOL_ARCHIVES}"))
}

/// busybox's `find` has no `-delete`.
const DROP_LIBTOOL_ARCHIVES: &str = "find \"$out\" -name '*.la' -exec rm -f {} +";

/// A meson build for the target: `--cross-file` before `flags`, and an install that
/// puts back what landed under [`SYSROOT`]. pkg-config prefixes every absolute path
/// it prints with the sysroot, directory variables included, so a project that
/// installs into one (ModemManager into polkit's `policydir`) would install under
/// `$out/build/sysroot/usr/...`.
pub fn meson<'f>(b: PackageBuilder<'f>, flags: &[&str]) -> PackageBuilder<'f> {
    let mut all = vec![format!("--cross-file={MESON_CROSS_FILE}")];
    all.extend(flags.iter().map(|f| f.to_string()));
    b.meson(&strs(&all)).phase(
        "install",
        &format!(
            "DESTDIR=\"$out\" meson install -C build\n\
             if [ -d \"$out{SYSROOT}\" ]; then\n\
             \x20 cp -R \"$out{SYSROOT}/.\" \"$out/\"\n\
             \x20 rm -rf \"$out/build\"\n\
             fi"
        ),
    )
}

fn strs(flags: &[String]) -> Vec<&str> {
    flags.iter().map(String::as_str).collect()
}

/// zlib 1.2.13 (its own configure script, which reads `CC` and `CHOST`).
pub fn zlib(f: &mut Forge, target: CrossTarget) -> Result<Package> {
    cross::on_build_machine(f, &format!("zlib-{}", target.triple()), |f| {
        let tc = cross::toolchain(f, target)?;
        let src = ZLIB.fetch(f)?;
        package(f, &tc, "zlib", "1.2.13", &[])?
            .source(&src)
            .phase("configure", "CHOST=\"$FORGE_CROSS_TRIPLE\" ./configure --prefix=/usr")
            .phase("build", "make -j\"$FORGE_BUILD_CORES\"")
            .phase("install", "make DESTDIR=\"$out\" install\nrm -f \"$out/usr/lib/libz.a\"")
            .source_date_epoch(1_667_651_401)
            .finish()
    })
}

/// libffi 3.4.4 (GLib's GObject closures), in `/usr/lib` (not a multilib directory).
pub fn libffi(f: &mut Forge, target: CrossTarget) -> Result<Package> {
    cross::on_build_machine(f, &format!("libffi-{}", target.triple()), |f| {
        let tc = cross::toolchain(f, target)?;
        let src = LIBFFI.fetch(f)?;
        let b = package(f, &tc, "libffi", "3.4.4", &[])?.source(&src);
        autotools(b, &tc, &["--disable-static", "--disable-docs", "--disable-multi-os-directory"])
            .source_date_epoch(1_666_571_393)
            .finish()
    })
}

/// PCRE2 10.42 (GLib's regular expressions), with the JIT compiler.
pub fn pcre2(f: &mut Forge, target: CrossTarget) -> Result<Package> {
    cross::on_build_machine(f, &format!("pcre2-{}", target.triple()), |f| {
        let tc = cross::toolchain(f, target)?;
        let src = PCRE2.fetch(f)?;
        let b = package(f, &tc, "pcre2", "10.42", &[])?.source(&src);
        autotools(b, &tc, &["--disable-static", "--enable-jit"]).source_date_epoch(1_670_865_080).finish()
    })
}

/// GLib's meson options for the device: no libmount, SELinux, sysprof, translations,
/// tests or manuals; musl's own iconv.
pub const GLIB_FLAGS: &[&str] = &[
    "--libdir=lib",
    "-Dlibmount=disabled",
    "-Dselinux=disabled",
    "-Dsysprof=disabled",
    "-Dlibelf=disabled",
    "-Dnls=disabled",
    "-Dtests=false",
    "-Dinstalled_tests=false",
    "-Dman=false",
    "-Dgtk_doc=false",
];

/// GLib 2.74.6 (glib, gobject, gio, gmodule) on zlib, libffi and PCRE2.
pub fn glib(f: &mut Forge, target: CrossTarget) -> Result<Package> {
    cross::on_build_machine(f, &format!("glib-{}", target.triple()), |f| {
        let tc = cross::toolchain(f, target)?;
        let deps = [zlib(f, target)?, libffi(f, target)?, pcre2(f, target)?];
        let src = GLIB.fetch(f)?;
        let b = package(f, &tc, "glib", "2.74.6", &deps)?.source(&src);
        meson(b, GLIB_FLAGS).source_date_epoch(1_677_161_231).finish()
    })
}

/// expat 2.5.0 (D-Bus's and polkit's XML parser), with CMake: the tag's tree has no
/// configure script.
pub fn expat(f: &mut Forge, target: CrossTarget) -> Result<Package> {
    cross::on_build_machine(f, &format!("expat-{}", target.triple()), |f| {
        let tc = cross::toolchain(f, target)?;
        let cmake = cmake(f)?;
        let src = EXPAT.fetch(f)?;
        let cpu = target.arch();
        package(f, &tc, "expat", "2.5.0", &[])?
            .source(&src)
            .build_dep(&cmake)
            .cmake(&[
                "-S",
                "expat",
                "-DCMAKE_SYSTEM_NAME=Linux",
                &format!("-DCMAKE_SYSTEM_PROCESSOR={cpu}"),
                &format!("-DCMAKE_SYSROOT={SYSROOT}"),
                "-DCMAKE_INSTALL_LIBDIR=lib",
                "-DEXPAT_BUILD_TOOLS=OFF",
                "-DEXPAT_BUILD_EXAMPLES=OFF",
                "-DEXPAT_BUILD_TESTS=OFF",
                "-DEXPAT_BUILD_DOCS=OFF",
                "-DEXPAT_BUILD_PKGCONFIG=ON",
            ])
            .source_date_epoch(1_666_710_493)
            .finish()
    })
}

/// D-Bus 1.14.10: libdbus and the daemon, laid out as Alpine's `dbus` (socket in
/// `/run/dbus`, no systemd, no X11 autolaunch).
pub fn dbus(f: &mut Forge, target: CrossTarget) -> Result<Package> {
    cross::on_build_machine(f, &format!("dbus-{}", target.triple()), |f| {
        let tc = cross::toolchain(f, target)?;
        let deps = [expat(f, target)?];
        let src = DBUS.fetch(f)?;
        let b = package(f, &tc, "dbus", "1.14.10", &deps)?.source(&src);
        autotools(
            b,
            &tc,
            &[
                "--disable-static",
                "--disable-systemd",
                "--disable-selinux",
                "--disable-apparmor",
                "--disable-libaudit",
                "--disable-tests",
                "--disable-doxygen-docs",
                "--disable-xml-docs",
                "--disable-ducktype-docs",
                "--disable-x11-autolaunch",
                "--without-x",
                "--with-system-socket=/run/dbus/system_bus_socket",
                "--with-system-pid-file=/run/dbus/dbus.pid",
            ],
        )
        // The install hook would give the bus activation helper to group messagebus
        // and make it setuid; the store holds no setuid files (the sandbox refuses
        // them), so an image that uses this helper sets its mode.
        .phase(
            "install",
            &format!(
                "sed -i 's/if test `id -u` -eq 0; then/if false; then/' bus/Makefile\n\
                 make DESTDIR=\"$out\" install\n{DROP_LIBTOOL_ARCHIVES}"
            ),
        )
        .source_date_epoch(1_693_578_735)
        .finish()
    })
}

/// polkit 122's libraries only (`libpolkit-gobject-1`, `libpolkit-agent-1`): what
/// ModemManager's `-Dpolkit=strict` links; the daemon (and its JavaScript engine) is
/// Alpine's.
pub fn polkit(f: &mut Forge, target: CrossTarget) -> Result<Package> {
    cross::on_build_machine(f, &format!("polkit-{}", target.triple()), |f| {
        let tc = cross::toolchain(f, target)?;
        let mut deps = glib_layers(f, target)?;
        deps.push(expat(f, target)?);
        let src = POLKIT.fetch(f)?;
        let patch = f.text("polkit-122-libs-only-install.patch", POLKIT_LIBS_ONLY_PATCH)?;
        let flags = [
            "--libdir=lib",
            "-Dlibs-only=true",
            "-Dauthfw=shadow",
            "-Dintrospection=false",
            "-Dman=false",
            "-Dgtk_doc=false",
            "-Dexamples=false",
            "-Dtests=false",
        ];
        let b = package(f, &tc, "polkit", "122", &deps)?.source(&src).patch(&patch);
        meson(b, &flags).source_date_epoch(1_666_786_344).finish()
    })
}

/// GLib's layer and the layers of what it links: what a build against GLib copies
/// into its sysroot (libqmi's whole list).
pub fn glib_layers(f: &mut Forge, target: CrossTarget) -> Result<Vec<Package>> {
    Ok(vec![glib(f, target)?, zlib(f, target)?, libffi(f, target)?, pcre2(f, target)?])
}

/// The target layers ModemManager builds against beyond libqmi: GLib's, D-Bus (for its
/// policy and service directories) and polkit's libraries.
pub fn modemmanager_deps(f: &mut Forge, target: CrossTarget) -> Result<Vec<Package>> {
    let mut deps = glib_layers(f, target)?;
    deps.extend([dbus(f, target)?, expat(f, target)?, polkit(f, target)?]);
    Ok(deps)
}

/// wayland-scanner for the build machine: a cross build of Wayland (or of a Wayland
/// client) generates its protocol code with it, and Wayland's meson insists on the
/// scanner of its own version.
pub fn wayland_scanner(f: &mut Forge) -> Result<Package> {
    cross::on_build_machine(f, "wayland-scanner-bookworm", |f| {
        let pins =
            bootstrap::parse_lock(WAYLAND_SCANNER_LOCK).expect("the bundled wayland lock parses (checked by a test)");
        bootstrap::deb_layer(f, "wayland-scanner-bookworm", &pins, &[])
    })
}

/// Wayland 1.21.0: libwayland-client, -server, -cursor and -egl, on libffi and expat
/// (the scanner's). No documentation, tests or DTD validation (libxml2).
pub fn wayland(f: &mut Forge, target: CrossTarget) -> Result<Package> {
    cross::on_build_machine(f, &format!("wayland-{}", target.triple()), |f| {
        let tc = cross::toolchain(f, target)?;
        let scanner = wayland_scanner(f)?;
        let deps = [libffi(f, target)?, expat(f, target)?];
        let src = WAYLAND.fetch(f)?;
        let b = package(f, &tc, "wayland", "1.21.0", &deps)?.source(&src).build_dep(&scanner);
        meson(b, &["--libdir=lib", "-Ddocumentation=false", "-Dtests=false", "-Ddtd_validation=false"])
            .source_date_epoch(1_656_547_200) // 2022-06-30, the release
            .finish()
    })
}

/// libglvnd 1.7.0: libEGL and libGLESv2 with their headers, the vendor-neutral
/// dispatch that Qt links against; the GPU's own EGL (Qualcomm's, or Mesa's)
/// registers with it at run time. No GLX (no X11 on the device), no GLES 1.
pub fn libglvnd(f: &mut Forge, target: CrossTarget) -> Result<Package> {
    cross::on_build_machine(f, &format!("libglvnd-{}", target.triple()), |f| {
        let tc = cross::toolchain(f, target)?;
        let src = LIBGLVND.fetch(f)?;
        let b = package(f, &tc, "libglvnd", "1.7.0", &[])?.source(&src);
        meson(b, &["--libdir=lib", "-Dx11=disabled", "-Dglx=disabled", "-Dgles1=false"])
            .source_date_epoch(1_694_476_800) // 2023-09-12, the tag
            .finish()
    })
}

#[cfg(test)]
mod tests {
    use forge_engine::drv::Builder;

    use super::*;

    fn script(f: &Forge, p: &Package) -> String {
        let Builder::Run { script, .. } = &f.node(p.node()).drv.builder else { panic!("not a run step") };
        script.clone()
    }

    #[test]
    fn the_cross_file_names_the_target_tools_the_sysroot_and_the_machine() {
        let ini = meson_cross_file(CrossTarget::Aarch64);
        for line in [
            "c = ['aarch64-linux-musl-gcc', '--sysroot=/build/sysroot']",
            "sys_root = '/build/sysroot'",
            "pkg_config_libdir = ['/build/sysroot/usr/lib/pkgconfig', '/build/sysroot/usr/share/pkgconfig']",
            "cpu_family = 'aarch64'",
            "have_c99_vsnprintf = true",
        ] {
            assert!(ini.lines().any(|l| l == line), "{line} missing from:\n{ini}");
        }
    }

    #[test]
    fn target_layers_are_inputs_copied_into_the_sysroot_never_stacked_into_the_root() {
        let mut f = Forge::new();
        let glib = glib(&mut f, CrossTarget::Aarch64).unwrap();
        let zlib = zlib(&mut f, CrossTarget::Aarch64).unwrap();
        let tc = cross::toolchain(&mut f, CrossTarget::Aarch64).unwrap();
        let node = f.node(glib.node());
        let Builder::Run { sysroot, .. } = &node.drv.builder else { panic!("not a run step") };
        assert!(!sysroot.contains(zlib.path()), "a target layer in the build root");
        assert!(node.drv.inputs.contains(zlib.path()) && node.drv.inputs.contains(tc.sysroot.path()));
        assert!(node.drv.env["target_layers"].contains(&zlib.path().to_string()));
        assert_eq!(node.drv.env["CC"], "aarch64-linux-musl-gcc --sysroot=/build/sysroot");
        let s = script(&f, &glib);
        let prepare = s.find("# prepare").unwrap();
        assert!(prepare < s.find("meson setup").unwrap(), "{s}");
        assert!(s.contains("'--cross-file=/build/meson-cross.ini'") && s.contains("'-Dlibmount=disabled'"), "{s}");
        // What pkg-config's sysroot prefix sent under /build/sysroot is put back.
        assert!(s.contains("cp -R \"$out/build/sysroot/.\" \"$out/\""), "{s}");
        assert_eq!(glib.path().name(), "glib-aarch64-linux-musl-2.74.6");
    }

    #[test]
    fn autotools_libraries_configure_for_the_target_and_drop_libtool_archives() {
        let mut f = Forge::new();
        for p in [libffi(&mut f, CrossTarget::Aarch64).unwrap(), pcre2(&mut f, CrossTarget::Aarch64).unwrap()] {
            let s = script(&f, &p);
            assert!(s.contains("'--host=aarch64-linux-musl'") && s.contains("'--build=x86_64-pc-linux-gnu'"), "{s}");
            assert!(s.contains("-name '*.la' -exec rm -f {} +"), "{s}");
        }
    }

    #[test]
    fn every_source_is_pinned_and_seeded_from_debians_pool() {
        let seeded = include_str!("../mirror/upstream-tarballs.txt");
        for pin in [ZLIB, LIBFFI, PCRE2, GLIB, EXPAT, DBUS, POLKIT] {
            let row = seeded.lines().find(|l| l.split_whitespace().nth(3) == Some(pin.file));
            let row = row.unwrap_or_else(|| panic!("{} is not seeded", pin.file));
            assert_eq!(row.split_whitespace().nth(4), Some(pin.sha256), "{}", pin.file);
            // A Debian-made file keeps Debian's name and pool URL; an upstream one its real URL.
            assert_eq!(pin.url.starts_with("mirror://debian/"), pin.file.contains(".orig."), "{}", pin.file);
        }
    }

    #[test]
    fn the_cmake_lock_parses_and_adds_nothing_the_layers_below_pin() {
        let pins = bootstrap::parse_lock(CMAKE_LOCK).unwrap();
        assert!(pins.iter().any(|p| p.package == "cmake" && p.version == "3.25.1-1"));
        let below: Vec<String> =
            bootstrap::toolchain_pins().into_iter().chain(modem::builddeps_pins()).map(|p| p.package).collect();
        let doubled: Vec<&str> =
            pins.iter().map(|p| p.package.as_str()).filter(|p| below.iter().any(|b| b == p)).collect();
        assert!(doubled.is_empty(), "in two locks: {doubled:?}");
    }

    #[test]
    fn the_wayland_scanner_lock_is_wayland_1_21_0_and_adds_nothing_the_layers_below_pin() {
        let pins = bootstrap::parse_lock(WAYLAND_SCANNER_LOCK).unwrap();
        let below: std::collections::BTreeSet<String> =
            bootstrap::toolchain_pins().into_iter().chain(modem::builddeps_pins()).map(|p| p.package).collect();
        assert!(pins.iter().all(|p| !below.contains(&p.package)), "{pins:?}");
        let bin = pins.iter().find(|p| p.package == "libwayland-bin").expect("the scanner is pinned");
        assert_eq!(bin.version, "1.21.0-1", "the scanner must be the version of WAYLAND");
        assert!(WAYLAND.file.contains("1.21.0"));
    }

    #[test]
    fn modemmanager_builds_against_dbus_and_polkit_for_the_target() {
        let mut f = Forge::new();
        let names: Vec<String> = modemmanager_deps(&mut f, CrossTarget::Aarch64)
            .unwrap()
            .iter()
            .map(|p| p.path().name().to_owned())
            .collect();
        for want in
            ["dbus-aarch64-linux-musl-1.14.10", "polkit-aarch64-linux-musl-122", "glib-aarch64-linux-musl-2.74.6"]
        {
            assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
        }
    }
}
