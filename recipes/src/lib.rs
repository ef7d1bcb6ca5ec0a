//! forge-recipes: the recipes that describe the AGNOS-on-Alpine build.
//!
//! [`registry`] names every recipe a user can build; the `forge` binary is
//! `forge_cli::main_with(forge_recipes::registry())`.

#![deny(missing_docs)]

pub mod alpine;
pub mod alpine_world;
pub mod bootstrap;
pub mod cross;
pub mod cross_libs;
pub mod examples;
pub mod glibc;
pub mod modem;
pub mod qt;
pub mod qt_cross;

use forge_engine::apk::make::ApkSpec;
use forge_engine::registry::Registry;

/// The start of every apk forge's recipes package: `name`, `version` (with its `-rN`
/// release) for `arch`, forge as the packager, and the package's `SOURCE_DATE_EPOCH` as
/// its build date, so two builds give the same bytes. Callers add what the package
/// says of itself with struct update syntax.
pub(crate) fn apk_spec(name: &str, version: &str, arch: &str, build_date: u64) -> ApkSpec {
    let mut spec = ApkSpec::new(name, version, arch);
    spec.packager = Some("forge <forge@example.invalid>".into());
    spec.build_date = build_date;
    spec
}

/// Every recipe of this crate, by the name `forge build NAME` takes.
///
/// ```
/// use forge_engine::dsl::{Forge, Input};
/// let registry = forge_recipes::registry();
/// let mut f = Forge::for_system("x86_64-linux");
/// let hello = registry.call("hello", &mut f).unwrap();
/// assert!(hello.path().to_string().ends_with("-hello-2.10"));
/// ```
pub fn registry() -> Registry {
    let mut r = Registry::new();
    r.add(
        "bootstrap-toolchain",
        "gcc 12 + binutils + glibc headers + make + busybox from pinned Debian packages",
        |f| Ok(bootstrap::toolchain(f)?.into()),
    );
    r.add_with_output(
        "alpine-system",
        "the AGNOS system image on Alpine 3.20.3 (ext4 4500M + Android sparse)",
        "alpine",
        |f| {
            let arch = f.arch().to_owned();
            Ok(alpine::system(f, &alpine::release(&arch))?.into())
        },
    );
    r.add("hello", "GNU hello 2.10 built from its upstream tarball with the bootstrap toolchain", |f| {
        Ok(examples::hello(f)?.into())
    });
    r.add("hello-apk", "GNU hello 2.10 packaged as an apk (sign it with --apk-key KEY.rsa)", |f| {
        Ok(examples::hello_apk(f)?.into())
    });
    r.add("libqmi", "libqmi 1.36.0 (QMI, no MBIM/QRTR) from its GitLab release tarball, meson", |f| {
        Ok(modem::libqmi(f)?.into())
    });
    r.add("modemmanager", "ModemManager 1.24.0 (QMI, generic + quectel plugins, no systemd) over libqmi, meson", |f| {
        Ok(modem::modemmanager(f)?.into())
    });
    r.add("libqmi-apk", "libqmi packaged as an apk (sign it with --apk-key KEY.rsa)", |f| {
        Ok(modem::libqmi_apk(f)?.into())
    });
    r.add("modemmanager-apk", "ModemManager packaged as an apk (sign it with --apk-key KEY.rsa)", |f| {
        Ok(modem::modemmanager_apk(f)?.into())
    });
    r.add("musl", "musl 1.2.3 built from its upstream tarball with the bootstrap toolchain", |f| {
        Ok(examples::musl(f)?.into())
    });
    r.add(
        "aarch64-gnu-toolchain",
        "Debian 12's gcc 12 cross compiler for aarch64-linux-gnu over the bootstrap toolchain",
        |f| Ok(glibc::aarch64_gnu_toolchain(f)?.into()),
    );
    r.add("glibc", "glibc 2.36 for aarch64 in /usr/glibc, its loader at /lib/ld-linux-aarch64.so.1", |f| {
        Ok(glibc::glibc(f)?.into())
    });
    r.add(
        "glibc-cxx-runtime",
        "libstdc++ and libgcc_s for glibc programs (Debian 12's aarch64 gcc 12 libraries) in /usr/glibc/lib",
        |f| Ok(glibc::cxx_runtime(f)?.into()),
    );
    r.add(
        "glibc-cxx-apk",
        "the glibc C++ runtime layer as the aarch64 apk glibc-libstdc++ (sign it with --apk-key KEY.rsa)",
        |f| Ok(glibc::cxx_runtime_apk(f)?.into()),
    );
    r.add("glibc-apk", "the glibc layer as the aarch64 apk glibc-runtime (sign it with --apk-key KEY.rsa)", |f| {
        Ok(glibc::glibc_apk(f)?.into())
    });
    r.add("glibc-demo-root", "musl and glibc side by side: an aarch64 root with demo programs of both", |f| {
        Ok(glibc::demo_root(f)?.into())
    });
    r.add("qtwayland", "qtwayland 5.15.8 with the AGNOS patch, against Debian 12's Qt 5.15.8 (docs/qt.md)", |f| {
        Ok(qt::qtwayland(f)?.into())
    });
    r.add(
        "qtwayland-apk",
        "the patched qtwayland packaged as the apk qt5-qtwayland (sign it with --apk-key KEY.rsa)",
        |f| Ok(qt::qtwayland_apk(f)?.into()),
    );
    r.add(
        "qtwayland-alpine",
        "qtwayland 5.15.10 (Alpine 3.20's) with the AGNOS patch, against Alpine 3.20's Qt; needs its apk lock",
        |f| Ok(qt::qtwayland_alpine(f)?.into()),
    );
    r.add(
        "qtwayland-patch-check",
        "runs the patched qtwayland functions in forge's build and in Debian's unpatched one (docs/qt.md)",
        |f| Ok(qt::patch_check(f)?.into()),
    );
    r.add(
        "aarch64-linux-musl-toolchain",
        "binutils 2.40 + gcc 12.2.0 + musl 1.2.3: the aarch64-linux-musl cross compiler layer",
        |f| Ok(cross::toolchain(f, cross::CrossTarget::Aarch64)?.gcc.into()),
    );
    r.add(
        "aarch64-linux-musl-binutils",
        "binutils 2.40 for aarch64-linux-musl (the cross toolchain's first layer)",
        |f| Ok(cross::binutils(f, cross::CrossTarget::Aarch64, cross::Sources::Debian)?.into()),
    );
    r.add("aarch64-linux-musl-sysroot", "the aarch64-linux-musl sysroot layer (musl, Linux headers, libstdc++)", |f| {
        Ok(cross::toolchain(f, cross::CrossTarget::Aarch64)?.sysroot.into())
    });
    r.add(
        "x86_64-linux-musl-toolchain",
        "binutils 2.40 + gcc 12.2.0 + musl 1.2.3: the x86_64-linux-musl compiler layer",
        |f| Ok(cross::toolchain(f, cross::CrossTarget::X86_64)?.gcc.into()),
    );
    r.add("x86_64-linux-musl-sysroot", "the x86_64-linux-musl sysroot layer (musl, Linux headers, libstdc++)", |f| {
        Ok(cross::toolchain(f, cross::CrossTarget::X86_64)?.sysroot.into())
    });
    r.add("aarch64-linux-musl-hello", "C and C++ programs compiled with the aarch64-linux-musl cross toolchain", |f| {
        Ok(cross::demo(f, cross::CrossTarget::Aarch64)?.into())
    });
    r.add(
        "aarch64-linux-musl-gnu-hello",
        "GNU hello 2.10 cross-compiled with autotools for aarch64-linux-musl (no emulation)",
        |f| Ok(cross::gnu_hello(f, cross::CrossTarget::Aarch64)?.into()),
    );
    cross_library_recipes(&mut r);
    r.add("x86_64-linux-musl-hello", "C and C++ programs compiled with the x86_64-linux-musl toolchain", |f| {
        Ok(cross::demo(f, cross::CrossTarget::X86_64)?.into())
    });
    r
}

/// The device's modem stack and the libraries under it, cross-compiled for
/// aarch64-linux-musl (`cross_libs`, `modem::libqmi_for`).
fn cross_library_recipes(r: &mut Registry) {
    use cross::CrossTarget::Aarch64;
    r.add("aarch64-linux-musl-zlib", "zlib 1.2.13 cross-compiled for aarch64-linux-musl", |f| {
        Ok(cross_libs::zlib(f, Aarch64)?.into())
    });
    r.add("aarch64-linux-musl-libffi", "libffi 3.4.4 cross-compiled for aarch64-linux-musl", |f| {
        Ok(cross_libs::libffi(f, Aarch64)?.into())
    });
    r.add("aarch64-linux-musl-pcre2", "PCRE2 10.42 cross-compiled for aarch64-linux-musl", |f| {
        Ok(cross_libs::pcre2(f, Aarch64)?.into())
    });
    r.add("aarch64-linux-musl-glib", "GLib 2.74.6 cross-compiled for aarch64-linux-musl", |f| {
        Ok(cross_libs::glib(f, Aarch64)?.into())
    });
    r.add("aarch64-linux-musl-expat", "expat 2.5.0 cross-compiled for aarch64-linux-musl (CMake)", |f| {
        Ok(cross_libs::expat(f, Aarch64)?.into())
    });
    r.add("aarch64-linux-musl-wayland", "Wayland 1.21.0's libraries cross-compiled for aarch64-linux-musl", |f| {
        Ok(cross_libs::wayland(f, Aarch64)?.into())
    });
    r.add(
        "aarch64-linux-musl-libglvnd",
        "libglvnd 1.7.0 (libEGL, libGLESv2) cross-compiled for aarch64-linux-musl",
        |f| Ok(cross_libs::libglvnd(f, Aarch64)?.into()),
    );
    r.add(
        "aarch64-linux-musl-qtbase",
        "qtbase 5.15.8 (Core, Gui on EGL and GLES 2, Network) cross-compiled for aarch64-linux-musl",
        |f| Ok(qt_cross::qtbase_for(f, Aarch64)?.into()),
    );
    r.add(
        "aarch64-linux-musl-qtwayland",
        "qtwayland 5.15.8 with the AGNOS patch cross-compiled for aarch64-linux-musl (docs/qt.md)",
        |f| Ok(qt_cross::qtwayland_for(f, Aarch64)?.into()),
    );
    r.add(
        "aarch64-linux-musl-qtwayland-patch-check",
        "the AGNOS patch's check program cross-compiled against the device's qtwayland (docs/qt.md)",
        |f| Ok(qt_cross::patch_check_for(f, Aarch64)?.into()),
    );
    r.add("aarch64-linux-musl-dbus", "D-Bus 1.14.10 cross-compiled for aarch64-linux-musl", |f| {
        Ok(cross_libs::dbus(f, Aarch64)?.into())
    });
    r.add("aarch64-linux-musl-polkit", "polkit 122's libraries cross-compiled for aarch64-linux-musl", |f| {
        Ok(cross_libs::polkit(f, Aarch64)?.into())
    });
    r.add("aarch64-linux-musl-libqmi", "libqmi 1.36.0 cross-compiled for the device (aarch64-linux-musl)", |f| {
        Ok(modem::libqmi_for(f, Aarch64)?.into())
    });
    r.add(
        "aarch64-linux-musl-modemmanager",
        "ModemManager 1.24.0 cross-compiled for the device (aarch64-linux-musl)",
        |f| Ok(modem::modemmanager_for(f, Aarch64)?.into()),
    );
}
