//! libqmi and ModemManager: the modem stack of AGNOS, compiled from upstream's
//! GitLab release tarballs with meson and ninja in the sandbox.
//!
//! The old Ubuntu build compiled libqmi 1.36.0 and ModemManager 1.22.0 with QMI on,
//! MBIM and QRTR off and only the `generic` and `quectel` plugins (inventory.md,
//! "Compiled components"). ModemManager is 1.24.0 here: 1.22.0 is no longer in the
//! source pool CI seeds its mirror from, 1.24.0 is the next stable release, and it
//! needs libqmi >= 1.36, which the old build already had.
//!
//! The build runs on the bootstrap toolchain plus a layer of pinned Debian bookworm
//! packages (`data/debian-bookworm-amd64-modem-builddeps.lock`: glib, gudev, dbus,
//! polkit, meson, ninja, pkgconf, python3, gettext). Both packages install into
//! `/usr` with `--libdir=lib`, Alpine's layout, so their layers stack into an
//! Alpine root as they are. See docs/modem.md for what CI covers.

use forge_engine::apk::make::ApkSpec;
use forge_engine::dsl::{ApkFile, Forge, Package, Source};
use forge_engine::Result;

use crate::bootstrap::{self, parse_lock, DebPin};
use crate::cross::{self, CrossTarget};
use crate::cross_libs;

const LOCK: &str = include_str!("../data/debian-bookworm-amd64-modem-builddeps.lock");

/// libqmi's version.
pub const LIBQMI_VERSION: &str = "1.36.0";
/// ModemManager's version.
pub const MODEMMANAGER_VERSION: &str = "1.24.0";
/// `SOURCE_DATE_EPOCH` of libqmi: the 1.36.0 tag's commit (2025-04-09), the tarball's mtimes.
const LIBQMI_EPOCH: u64 = 1_744_171_042;
/// `SOURCE_DATE_EPOCH` of ModemManager: the 1.24.0 tag's commit (2025-04-10).
const MODEMMANAGER_EPOCH: u64 = 1_744_248_625;

/// Every plugin ModemManager 1.24.0's meson_options.txt declares (`plugin_<name>`).
pub const MM_PLUGINS: &[&str] = &[
    "generic",
    "altair_lte",
    "anydata",
    "broadmobi",
    "cellient",
    "cinterion",
    "dell",
    "dlink",
    "fibocom",
    "foxconn",
    "gosuncn",
    "haier",
    "huawei",
    "intel",
    "iridium",
    "linktop",
    "longcheer",
    "mbm",
    "motorola",
    "mtk_legacy",
    "mtk",
    "netprisma",
    "nokia",
    "nokia_icera",
    "novatel",
    "novatel_lte",
    "option",
    "option_hso",
    "pantech",
    "qcom_soc",
    "quectel",
    "rolling",
    "samsung",
    "sierra_legacy",
    "sierra",
    "simtech",
    "telit",
    "thuraya",
    "tplink",
    "ublox",
    "via",
    "wavecom",
    "x22x",
    "zte",
];

/// The plugins the device needs: its modem is a Quectel; `generic` drives any
/// modem that speaks standard AT/QMI.
pub const MM_ENABLED_PLUGINS: &[&str] = &["generic", "quectel"];

/// The pins of the build-dependency layer.
pub fn builddeps_pins() -> Vec<DebPin> {
    parse_lock(LOCK).expect("the bundled modem lock parses (checked by a test)")
}

/// The build-dependency layer: what meson, libqmi and ModemManager need beyond
/// the bootstrap toolchain. `/usr/bin/env` is busybox's: the code generators
/// (`qmi-codegen`, `mm-mkenums`) start with `#!/usr/bin/env python3`, and Debian's
/// `env` is in coreutils, which no lock pins.
pub fn builddeps(f: &mut Forge) -> Result<Package> {
    f.memo("modem-builddeps", |f| {
        bootstrap::deb_layer(f, "modem-builddeps-bookworm", &builddeps_pins(), &[("usr/bin/env", "../../bin/busybox")])
    })
}

/// A meson package on the toolchain and the build-dependency layer (plus `extra`).
///
/// `AR` is named by its path: ninja runs the static-link rule (`rm -f $out && ar
/// ...`) through `/bin/sh`, and busybox's shell prefers its own applets, whose `ar`
/// only extracts. (make runs such commands without a shell, so autotools builds on
/// the same toolchain do not meet this.)
fn meson_package(
    f: &mut Forge,
    name: &str,
    version: &str,
    src: &Source,
    extra: &[&Package],
    flags: &[String],
    epoch: u64,
) -> Result<Package> {
    let toolchain = bootstrap::toolchain(f)?;
    let deps = builddeps(f)?;
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut p = f.package(name, version).source(src).build_dep(&toolchain).build_dep(&deps);
    for layer in extra {
        p = p.build_dep(layer);
    }
    p.env("AR", "/usr/bin/ar").meson(&flags).source_date_epoch(epoch).finish()
}

/// libqmi's meson options: the old build's (`mbim_qmux` and `qrtr` off), with
/// introspection, man pages (help2man) and bash completion off to keep the build
/// and its dependencies small; gudev support stays on, as in the old build.
pub fn libqmi_flags() -> Vec<String> {
    [
        "--libdir=lib",
        "-Dmbim_qmux=false",
        "-Dqrtr=false",
        "-Dudev=true",
        "-Dintrospection=false",
        "-Dgtk_doc=false",
        "-Dman=false",
        "-Dbash_completion=false",
    ]
    .map(String::from)
    .to_vec()
}

/// ModemManager's meson options: QMI on, MBIM and QRTR off, every plugin but
/// [`MM_ENABLED_PLUGINS`] disabled (the old build's), no systemd integration (the
/// target runs OpenRC), polkit `strict` (the default the old build had), udev rules
/// under `/usr/lib/udev`; introspection, vala, docs, man pages, bash completion and
/// the test programs off.
pub fn modemmanager_flags() -> Vec<String> {
    let mut flags: Vec<String> = [
        "--libdir=lib",
        "-Dqmi=true",
        "-Dmbim=false",
        "-Dqrtr=false",
        "-Dsystemdsystemunitdir=no",
        "-Dsystemd_suspend_resume=false",
        "-Dsystemd_journal=false",
        "-Dpolkit=strict",
        "-Dudev=true",
        "-Dudevdir=/usr/lib/udev",
        "-Dintrospection=false",
        "-Dvapi=false",
        "-Dgtk_doc=false",
        "-Dman=false",
        "-Dbash_completion=false",
        "-Dtests=false",
    ]
    .map(String::from)
    .to_vec();
    for plugin in MM_PLUGINS {
        let state = if MM_ENABLED_PLUGINS.contains(plugin) { "enabled" } else { "disabled" };
        flags.push(format!("-Dplugin_{plugin}={state}"));
    }
    flags
}

fn libqmi_source(f: &mut Forge) -> Result<Source> {
    f.fetch(
        "libqmi-1.36.0.tar.gz",
        &["https://gitlab.freedesktop.org/mobile-broadband/libqmi/-/archive/1.36.0/libqmi-1.36.0.tar.gz"],
        "sha256:e254fafdd916a78a27126e6d72ae436662487f59c7de84d4d40286059af89093",
    )
}

fn modemmanager_source(f: &mut Forge) -> Result<Source> {
    f.fetch(
        "ModemManager-1.24.0.tar.gz",
        &["https://gitlab.freedesktop.org/mobile-broadband/ModemManager/-/archive/1.24.0/ModemManager-1.24.0.tar.gz"],
        "sha256:50e166bb24acb00bcaed814483920dfbc5b26d5424faee974b54c702e425a7c7",
    )
}

/// libqmi 1.36.0 (`qmicli`, `qmi-network`, `qmi-firmware-update`, libqmi-glib).
pub fn libqmi(f: &mut Forge) -> Result<Package> {
    f.memo("libqmi", |f| {
        let src = libqmi_source(f)?;
        meson_package(f, "libqmi", LIBQMI_VERSION, &src, &[], &libqmi_flags(), LIBQMI_EPOCH)
    })
}

/// ModemManager 1.24.0 built against [`libqmi`].
pub fn modemmanager(f: &mut Forge) -> Result<Package> {
    f.memo("modemmanager", |f| {
        let qmi = libqmi(f)?;
        let src = modemmanager_source(f)?;
        meson_package(f, "modemmanager", MODEMMANAGER_VERSION, &src, &[&qmi], &modemmanager_flags(), MODEMMANAGER_EPOCH)
    })
}

/// `flags` for a build for the device: without udev (gudev), whose libudev neither
/// Debian 12 nor this repository can build for musl (docs/modem.md, "Built for the
/// device"). ModemManager then reads its udev rules itself, from `udevdir`.
fn without_udev(flags: Vec<String>) -> Vec<String> {
    flags.into_iter().map(|f| if f == "-Dudev=true" { "-Dudev=false".to_owned() } else { f }).collect()
}

/// libqmi 1.36.0 for `target`, cross-compiled with the musl toolchain against
/// [`cross_libs`]' GLib: the device's build.
pub fn libqmi_for(f: &mut Forge, target: CrossTarget) -> Result<Package> {
    cross::on_build_machine(f, &format!("libqmi-{}", target.triple()), |f| {
        let tc = cross::toolchain(f, target)?;
        let deps = cross_libs::glib_layers(f, target)?;
        let src = libqmi_source(f)?;
        let flags = without_udev(libqmi_flags());
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let b = cross_libs::package(f, &tc, "libqmi", LIBQMI_VERSION, &deps)?;
        cross_libs::meson(b.source(&src), &flags).source_date_epoch(LIBQMI_EPOCH).finish()
    })
}

/// ModemManager 1.24.0 for `target` against [`libqmi_for`], cross-compiled like it.
pub fn modemmanager_for(f: &mut Forge, target: CrossTarget) -> Result<Package> {
    cross::on_build_machine(f, &format!("modemmanager-{}", target.triple()), |f| {
        let tc = cross::toolchain(f, target)?;
        let mut deps = cross_libs::modemmanager_deps(f, target)?;
        deps.push(libqmi_for(f, target)?);
        let src = modemmanager_source(f)?;
        let flags = without_udev(modemmanager_flags());
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let b = cross_libs::package(f, &tc, "modemmanager", MODEMMANAGER_VERSION, &deps)?;
        cross_libs::meson(b.source(&src), &flags).source_date_epoch(MODEMMANAGER_EPOCH).finish()
    })
}

/// libqmi as an apk, the package that replaces the old build's checkinstall deb (sign
/// it with `forge build libqmi-apk --apk-key KEY.rsa`). For aarch64 (`--arch
/// aarch64`) it packs the device's cross build ([`libqmi_for`]). Named as Alpine names it, so
/// that apk takes it for Alpine's libqmi; its `so:` provides and depends come from the
/// ELF files.
pub fn libqmi_apk(f: &mut Forge) -> Result<ApkFile> {
    f.memo("libqmi-apk", |f| {
        let tree = if f.arch() == "aarch64" { libqmi_for(f, CrossTarget::Aarch64)? } else { libqmi(f)? };
        let spec = ApkSpec {
            description: "QMI modem protocol helper library".into(),
            url: "https://www.freedesktop.org/wiki/Software/libqmi/".into(),
            license: "LGPL-2.0-or-later AND GPL-2.0-or-later".into(),
            ..crate::apk_spec("libqmi", &format!("{LIBQMI_VERSION}-r0"), f.arch(), LIBQMI_EPOCH)
        };
        f.apk_package(&tree, &spec)
    })
}

/// ModemManager as an apk. Its automatic `so:libqmi-glib.so.5` dependency is what
/// [`libqmi_apk`] provides, so apk installs the two together.
pub fn modemmanager_apk(f: &mut Forge) -> Result<ApkFile> {
    f.memo("modemmanager-apk", |f| {
        let tree = if f.arch() == "aarch64" { modemmanager_for(f, CrossTarget::Aarch64)? } else { modemmanager(f)? };
        let spec = ApkSpec {
            description: "Mobile broadband modem management service".into(),
            url: "https://www.freedesktop.org/wiki/Software/ModemManager/".into(),
            license: "GPL-2.0-or-later AND LGPL-2.1-or-later".into(),
            ..crate::apk_spec("modemmanager", &format!("{MODEMMANAGER_VERSION}-r0"), f.arch(), MODEMMANAGER_EPOCH)
        };
        f.apk_package(&tree, &spec)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use forge_engine::drv::Builder;
    use forge_engine::dsl::Input;

    #[test]
    fn the_builddeps_lock_parses_and_pins_what_meson_builds_need() {
        let pins = builddeps_pins();
        for needed in ["meson", "ninja-build", "pkgconf", "python3", "libglib2.0-dev", "libgudev-1.0-dev", "gettext"] {
            assert!(pins.iter().any(|p| p.package == needed), "{needed} missing from the lock");
        }
        assert!(pins.iter().all(|p| p.sha256.len() == 64 && p.pool_path.starts_with("pool/")));
    }

    #[test]
    fn the_builddeps_lock_adds_nothing_the_toolchain_already_pins() {
        let toolchain: Vec<String> = bootstrap::toolchain_pins().into_iter().map(|p| p.package).collect();
        let doubled: Vec<DebPin> = builddeps_pins().into_iter().filter(|p| toolchain.contains(&p.package)).collect();
        assert!(doubled.is_empty(), "in both locks: {doubled:?}");
    }

    #[test]
    fn libqmi_is_configured_with_qmux_and_qrtr_off() {
        let mut f = Forge::new();
        let qmi = libqmi(&mut f).unwrap();
        let Builder::Run { script: s, .. } = &f.node(qmi.node()).drv.builder else { panic!("not a run step") };
        for flag in ["'-Dmbim_qmux=false'", "'-Dqrtr=false'", "'--libdir=lib'", "meson setup build --prefix=/usr"] {
            assert!(s.contains(flag), "{flag} missing from:\n{s}");
        }
        assert_eq!(qmi.path().name(), "libqmi-1.36.0");
        // busybox sh would run its own `ar` applet for ninja's static-link rule.
        assert_eq!(f.node(qmi.node()).drv.env.get("AR").map(String::as_str), Some("/usr/bin/ar"));
    }

    #[test]
    fn modemmanager_enables_exactly_the_generic_and_quectel_plugins() {
        let flags = modemmanager_flags();
        let enabled: Vec<&String> =
            flags.iter().filter(|f| f.starts_with("-Dplugin_") && f.ends_with("=enabled")).collect();
        assert_eq!(enabled, ["-Dplugin_generic=enabled", "-Dplugin_quectel=enabled"]);
        let disabled = flags.iter().filter(|f| f.starts_with("-Dplugin_") && f.ends_with("=disabled")).count();
        assert_eq!(disabled, MM_PLUGINS.len() - 2);
        for flag in
            ["-Dqmi=true", "-Dmbim=false", "-Dqrtr=false", "-Dsystemdsystemunitdir=no", "-Dsystemd_journal=false"]
        {
            assert!(flags.iter().any(|f| f == flag), "{flag} missing");
        }
    }

    #[test]
    fn the_device_builds_cross_compile_with_the_old_options_but_udev() {
        let mut f = Forge::new();
        let mm = modemmanager_for(&mut f, CrossTarget::Aarch64).unwrap();
        let qmi = libqmi_for(&mut f, CrossTarget::Aarch64).unwrap();
        assert_eq!(mm.path().name(), "modemmanager-aarch64-linux-musl-1.24.0");
        assert!(f.node(mm.node()).drv.inputs.contains(qmi.path()), "libqmi is not an input of ModemManager");
        for (p, want) in [
            (&qmi, &["'-Dqrtr=false'", "'-Dmbim_qmux=false'"][..]),
            (&mm, &["'-Dpolkit=strict'", "'-Dplugin_quectel=enabled'"][..]),
        ] {
            let Builder::Run { script: s, .. } = &f.node(p.node()).drv.builder else { panic!("not a run step") };
            for flag in
                want.iter().chain(&["'--cross-file=/build/meson-cross.ini'", "'-Dudev=false'", "'--libdir=lib'"])
            {
                assert!(s.contains(flag), "{flag} missing from:\n{s}");
            }
            assert!(!s.contains("-Dudev=true"), "{s}");
        }
    }

    #[test]
    fn the_modem_apks_pack_the_built_layers_under_alpines_package_names() {
        let mut f = Forge::new();
        for (apk, layer, file) in [
            (libqmi_apk(&mut f).unwrap(), libqmi(&mut f).unwrap(), "libqmi-1.36.0-r0.apk"),
            (modemmanager_apk(&mut f).unwrap(), modemmanager(&mut f).unwrap(), "modemmanager-1.24.0-r0.apk"),
        ] {
            assert_eq!(apk.path().name(), file);
            let node = f.node(apk.node());
            assert!(node.drv.inputs.contains(layer.path()), "{file} does not pack {}", layer.path());
            let Builder::Builtin { args, .. } = &node.drv.builder else { panic!("{file}: not a builtin") };
            let spec: ApkSpec = serde_json::from_value(args["spec"].clone()).unwrap();
            assert_eq!(spec.arch, "x86_64", "the build's own system");
            assert!(spec.auto_deps, "so: entries come from the ELF files");
        }
        // For the device, the same recipes pack the cross builds.
        let mut f = Forge::for_system("aarch64-linux");
        let apk = modemmanager_apk(&mut f).unwrap();
        let device = modemmanager_for(&mut f, CrossTarget::Aarch64).unwrap();
        assert!(f.node(apk.node()).drv.inputs.contains(device.path()));
        let Builder::Builtin { args, .. } = &f.node(apk.node()).drv.builder else { panic!("not a builtin") };
        assert_eq!(args["spec"]["arch"], "aarch64");
    }

    #[test]
    fn modemmanager_builds_on_libqmi_and_both_sources_are_pinned_upstream_tarballs() {
        let mut f = Forge::new();
        let mm = modemmanager(&mut f).unwrap();
        let qmi = libqmi(&mut f).unwrap();
        let node = f.node(mm.node());
        assert!(node.drv.inputs.contains(qmi.path()), "libqmi is not an input of ModemManager");
        let fetches: Vec<(String, String)> = f
            .nodes()
            .iter()
            .filter_map(|n| match &n.drv.builder {
                Builder::Fetch { urls, hash, .. } if urls.iter().any(|u| u.contains("gitlab.freedesktop.org")) => {
                    Some((urls[0].clone(), hash.to_hex()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(fetches.len(), 2, "{fetches:?}");
        // The sha256 pins that Chimera Linux's cports also carry (docs/modem.md).
        for (file, sha) in [
            ("/libqmi-1.36.0.tar.gz", "e254fafdd916a78a27126e6d72ae436662487f59c7de84d4d40286059af89093"),
            ("/ModemManager-1.24.0.tar.gz", "50e166bb24acb00bcaed814483920dfbc5b26d5424faee974b54c702e425a7c7"),
        ] {
            assert!(fetches.iter().any(|(u, h)| u.ends_with(file) && h == sha), "{file}: {fetches:?}");
        }
    }
}
