//! The package world of `alpine-system`: the Ubuntu packages of the old build
//! (../shared/agnos/inventory.md, section 2) mapped to Alpine 3.20 names, one row per
//! decision with a note saying why. [`world`] is what `forge lock alpine-system`
//! resolves; [`markdown`] renders the table into docs/alpine.md (a test keeps the two
//! equal).
//!
//! The names come from knowledge of Alpine, not from a live index (none is reachable
//! from the machine this was written on): rows marked `main` are checked against the
//! real v3.16 `main` index of ../shared/fixtures (see [`NEW_SINCE_3_16`] for the
//! exceptions), and `forge lock` names any package that does not exist in 3.20.

use std::path::PathBuf;

/// One mapping: what the Ubuntu build installed, what the Alpine image installs instead
/// (nothing, when a row says how the need is met otherwise), its repository, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    /// The ubuntu.
    pub ubuntu: &'static str,
    /// The alpine.
    pub alpine: &'static [&'static str],
    /// `main`, `community`, or `-` when nothing is installed; `?` marks a guess.
    pub repo: &'static str,
    /// The note.
    pub note: &'static str,
}

/// Packages of `main` rows that Alpine v3.16 did not have under that name.
pub const NEW_SINCE_3_16: &[&str] = &["busybox-openrc", "gcompat"];

/// The mapping, in the order docs/alpine.md shows it.
pub const TABLE: &[Row] = &[
    Row {
        ubuntu: "ubuntu-base (the tarball)",
        alpine: &["alpine-baselayout", "alpine-keys", "apk-tools", "busybox", "libc-utils"],
        repo: "main",
        note: "The minirootfs' own world, kept in the world so that /lib/apk/db/installed names every package whose files are in the image.",
    },
    Row {
        ubuntu: "systemd",
        alpine: &["openrc"],
        repo: "main",
        note: "Services run under OpenRC; comma's units are converted at build time (docs/openrc.md). No systemctl or journalctl on the device.",
    },
    Row {
        ubuntu: "cron, systemd timers, timesyncd's busybox stand-ins",
        alpine: &["busybox-openrc"],
        repo: "main",
        note: "Init scripts of busybox's crond (runs the converted .timer units, e.g. logrotate hourly), syslogd, ntpd and udhcpc. busybox-initscripts before Alpine 3.17.",
    },
    Row {
        ubuntu: "udev",
        alpine: &["eudev", "udev-init-scripts"],
        repo: "main",
        note: "comma's rules (inventory 6.2) use GROUP=, MODE=, RUN and PROGRAM: eudev runs them, mdev cannot. udev-init-scripts starts it at boot; the -openrc parts come by install_if.",
    },
    Row {
        ubuntu: "systemd-timesyncd",
        alpine: &["chrony"],
        repo: "main",
        note: "Time over intermittent LTE and Wi-Fi: chrony steps the clock at start and keeps retrying (timesyncd had ConnectionRetrySec=10). busybox ntpd needs no package but gives up sooner.",
    },
    Row {
        ubuntu: "rsyslog",
        alpine: &["rsyslog"],
        repo: "main",
        note: "The same daemon, so /etc/logrotate.d/rsyslog and the /var/log file names varwatch guards carry over; busybox syslogd writes one file.",
    },
    Row {
        ubuntu: "logrotate",
        alpine: &["logrotate"],
        repo: "main",
        note: "Run hourly by crond (the converted logrotate-hourly.timer) with the configuration of inventory 6.6.",
    },
    Row {
        ubuntu: "iptables-persistent",
        alpine: &["iptables"],
        repo: "main",
        note: "iptables-openrc (by install_if) restores /etc/iptables/rules-save, not Ubuntu's /etc/iptables/rules.v4: the rules file moves.",
    },
    Row {
        ubuntu: "dbus",
        alpine: &["dbus"],
        repo: "main",
        note: "The system bus NetworkManager, ModemManager and avahi need; dbus-openrc by install_if.",
    },
    Row {
        ubuntu: "network-manager",
        alpine: &["networkmanager", "networkmanager-cli", "networkmanager-wifi", "networkmanager-wwan"],
        repo: "community?",
        note: "nmcli (the tests use it), Wi-Fi and WWAN (the lte connection through ModemManager). dns= must change: there is no systemd-resolved.",
    },
    Row {
        ubuntu: "wpasupplicant",
        alpine: &["wpa_supplicant"],
        repo: "main",
        note: "The Wi-Fi backend NetworkManager drives.",
    },
    Row {
        ubuntu: "ssh, openssh-server",
        alpine: &["openssh"],
        repo: "main",
        note: "Client, server and sftp-server. sshd stays disabled until set_ssh.sh starts it (rc-service sshd); host keys live in /data/etc/ssh; sftp-server is /usr/lib/ssh/sftp-server, not /usr/lib/openssh.",
    },
    Row {
        ubuntu: "avahi-daemon, avahi-utils",
        alpine: &["avahi", "avahi-tools"],
        repo: "main",
        note: "mDNS, and avahi-publish for the _ssh._tcp advert of avahi-ssh-publish; avahi-openrc by install_if.",
    },
    Row {
        ubuntu: "sudo",
        alpine: &["sudo"],
        repo: "community?",
        note: "The rule `comma ALL=(ALL) NOPASSWD: ALL` (inventory 6.1). Not in v3.16 main.",
    },
    Row {
        ubuntu: "bash",
        alpine: &["bash"],
        repo: "main",
        note: "comma's login shell and the interpreter of its bash scripts. /bin/sh stays busybox ash (Ubuntu linked it to bash).",
    },
    Row {
        ubuntu: "python3",
        alpine: &["python3"],
        repo: "main",
        note: "3.12 in Alpine 3.20, as the venv needs (>=3.12.3,<3.13): magic.py and comma's scripts.",
    },
    Row {
        ubuntu: "uv / python3-pip",
        alpine: &["py3-pip"],
        repo: "community?",
        note: "pip for the device's shims; the pinned wheels of uv.lock are installed by forge, not at boot.",
    },
    Row {
        ubuntu: "libegl1, libgles2, libgbm1, libdrm2",
        alpine: &["mesa-egl", "mesa-gles", "mesa-gbm", "libdrm"],
        repo: "main",
        note: "What raylib's GLES build links (-lGLESv2 -lEGL -lgbm -ldrm). On the device the Adreno blobs (glibc) take these names over (inventory 4).",
    },
    Row {
        ubuntu: "(none: the PC variant)",
        alpine: &["mesa-dri-gallium"],
        repo: "main",
        note: "DRI drivers (llvmpipe, virtio) so the x86_64 image can draw; unused on the device.",
    },
    Row {
        ubuntu: "locales",
        alpine: &["musl-locales"],
        repo: "community?",
        note: "musl has no locale-gen; LANG is set in /etc/profile.d.",
    },
    Row {
        ubuntu: "polkitd, libpolkit-gobject-1-0",
        alpine: &["polkit"],
        repo: "community?",
        note: "The rule giving the sudo group NetworkManager and ModemManager rights (inventory 6.1).",
    },
    Row {
        ubuntu: "alsa-utils",
        alpine: &["alsa-utils"],
        repo: "main",
        note: "aplay and amixer for the sound checks; sound_init.sh itself uses comma's tinymix.",
    },
    Row {
        ubuntu: "tmux (ubuntu-standard)",
        alpine: &["tmux"],
        repo: "main",
        note: "comma.service runs comma.sh in a tmux session.",
    },
    Row {
        ubuntu: "usbutils (ubuntu-standard)",
        alpine: &["usbutils"],
        repo: "main",
        note: "lsusb: lte.sh finds the modem with it (the Void port missed it).",
    },
    Row {
        ubuntu: "iproute2 (ubuntu-minimal)",
        alpine: &["iproute2"],
        repo: "main",
        note: "ss: power_monitor.py looks for ssh sessions.",
    },
    Row {
        ubuntu: "util-linux, procps, e2fsprogs (ubuntu-minimal)",
        alpine: &["util-linux", "procps", "e2fsprogs"],
        repo: "main",
        note: "findmnt and mountpoint, pkill and sysctl, resize2fs (the pip/uv shims remount / read-write and grow it).",
    },
    Row {
        ubuntu: "jq, curl",
        alpine: &["jq", "curl"],
        repo: "main",
        note: "avahi-publish-service.sh reads the device alias with jq; openpilot's setup fetches with curl.",
    },
    Row {
        ubuntu: "kmod",
        alpine: &["kmod"],
        repo: "main",
        note: "modprobe for the device's modules (WLAN).",
    },
    Row {
        ubuntu: "i2c-tools",
        alpine: &["i2c-tools"],
        repo: "community?",
        note: "i2cget/i2cset for bring-up; amplifier.py itself talks to the amplifier through smbus2.",
    },
    Row {
        ubuntu: "ca-certificates, tzdata",
        alpine: &["ca-certificates", "tzdata"],
        repo: "main",
        note: "TLS roots (the bundle is made at install: update-ca-certificates, done declaratively) and the zoneinfo /data/etc/localtime points into.",
    },
    Row {
        ubuntu: "less, lsof, htop, nano (ubuntu-standard)",
        alpine: &["less", "lsof", "htop", "nano"],
        repo: "main",
        note: "Tools the Ubuntu metapackages brought implicitly and people use on the device.",
    },
    Row {
        ubuntu: "iputils-ping",
        alpine: &[],
        repo: "-",
        note: "busybox's ping, with cap_net_raw+ep on /bin/busybox (set by the recipe).",
    },
    Row {
        ubuntu: "udhcpc, traceroute, adduser",
        alpine: &[],
        repo: "-",
        note: "busybox applets; users and groups are written by the recipe, not by adduser at boot.",
    },
    Row {
        ubuntu: "libqmi-utils, modemmanager",
        alpine: &[],
        repo: "-",
        note: "forge compiles libqmi 1.36.0 and ModemManager 1.24.0 (the package recipes; 1.22.0 is gone from the source pool) instead of taking Alpine's.",
    },
    Row {
        ubuntu: "systemd-resolved, libnss-myhostname",
        alpine: &[],
        repo: "-",
        note: "musl has no NSS: comma-<serial> resolves through /etc/hosts; NetworkManager writes resolv.conf.",
    },
    Row {
        ubuntu: "libc6 as the vendor blobs' C library (aarch64)",
        alpine: &["gcompat"],
        repo: "main",
        note: "gcompat (musl behind /lib/ld-linux-aarch64.so.1, glibc's sonames linked to libgcompat) runs simple glibc programs; the Qualcomm blobs need the real glibc layer in /usr/glibc (docs/glibc.md). Both own /lib/ld-linux-aarch64.so.1: an image stacking the glibc layer drops gcompat from its world.",
    },
    Row {
        ubuntu: "the armhf multiarch set (libc6:armhf, ...)",
        alpine: &[],
        repo: "-",
        note: "Alpine has no multiarch; the 32-bit glibc blobs need a glibc sysroot (the packages issue), or are dropped as the Void port did.",
    },
];

/// Every Alpine package of the table, in table order, each once: the world.
pub fn world() -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in TABLE.iter().flat_map(|r| r.alpine.iter()) {
        if !out.iter().any(|n| n == name) {
            out.push((*name).to_owned());
        }
    }
    out
}

/// Alpine `release`'s repositories (`v3.20`): main, then community.
pub fn repositories(release: &str) -> Vec<String> {
    ["main", "community"].iter().map(|r| format!("https://dl-cdn.alpinelinux.org/alpine/{release}/{r}")).collect()
}

/// Where the lock of the real release lives: `recipes/data/alpine-3.20-<arch>.lock`,
/// read from the source tree this forge was built from.
pub fn lock_file(arch: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("data/alpine-3.20-{arch}.lock"))
}

/// The table as Markdown, for docs/alpine.md.
pub fn markdown() -> String {
    let mut s = String::from("| Ubuntu | Alpine | repository | note |\n|---|---|---|---|\n");
    for r in TABLE {
        let alpine = if r.alpine.is_empty() { "(none)".to_owned() } else { r.alpine.join(", ") };
        s.push_str(&format!("| {} | {alpine} | {} | {} |\n", r.ubuntu, r.repo, r.note));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const BEGIN: &str = "<!-- world table: generated from recipes/src/alpine_world.rs -->\n";
    const END: &str = "<!-- end of world table -->";

    #[test]
    fn docs_alpine_md_holds_the_rendered_world_table() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/alpine.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let (before, rest) = doc.split_once(BEGIN).expect("docs/alpine.md has the world table's start marker");
        let (_, after) = rest.split_once(END).expect("docs/alpine.md has the world table's end marker");
        let want = format!("{before}{BEGIN}{}{END}{after}", markdown());
        if std::env::var_os("FORGE_BLESS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        assert!(doc == want, "docs/alpine.md is out of date: run `FORGE_BLESS=1 cargo test -p forge-recipes`");
    }

    #[test]
    fn every_row_has_a_note_and_the_world_lists_each_package_once() {
        for r in TABLE {
            assert!(!r.note.is_empty() && !r.ubuntu.is_empty(), "{r:?}");
            assert_eq!(r.alpine.is_empty(), r.repo == "-", "{r:?}");
            assert!(!r.note.contains('|') && !r.ubuntu.contains('|'), "a `|` would break the table: {r:?}");
        }
        let w = world();
        let mut sorted = w.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), w.len());
        for needed in ["openrc", "python3", "py3-pip", "networkmanager", "openssh", "chrony", "rsyslog", "eudev"] {
            assert!(w.iter().any(|n| n == needed), "{needed}");
        }
    }

    /// The real v3.16 `main` index beside the repository (skipped without it).
    fn v3_16_main() -> Option<Vec<forge_engine::apk::index::IndexPackage>> {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let Some(fx) = here.ancestors().map(|a| a.join("shared/fixtures/alpine")).find(|p| p.is_dir()) else {
            eprintln!("SKIP: shared/fixtures/alpine not found; the world table is not checked against real names");
            return None;
        };
        let keys = tempfile::tempdir().unwrap();
        let key = "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub";
        std::fs::copy(fx.join(key), keys.path().join(key)).unwrap();
        let keys = forge_engine::apk::keys::Keys::open(keys.path()).unwrap();
        let index = forge_engine::apk::index::read_file(&fx.join("APKINDEX-v3.16-main-x86_64.tar.gz"), &keys);
        Some(index.unwrap().packages)
    }

    #[test]
    fn main_rows_name_real_packages_that_resolve_together_in_the_v3_16_main_index() {
        let Some(packages) = v3_16_main() else { return };
        let main: Vec<&str> = TABLE
            .iter()
            .filter(|r| r.repo == "main")
            .flat_map(|r| r.alpine.iter().copied())
            .filter(|n| !NEW_SINCE_3_16.contains(n))
            .collect();
        let missing: Vec<&&str> = main.iter().filter(|n| !packages.iter().any(|p| p.name == **n)).collect();
        assert!(missing.is_empty(), "not in Alpine v3.16 main: {missing:?}");
        use forge_engine::apk::{dep::Dep, resolve};
        let world: Vec<Dep> = main.iter().map(|n| Dep::any(n)).collect();
        let repo = resolve::Repository { url: "v3.16/main".into(), tag: None, packages };
        let resolution = resolve::resolve(&[repo], "x86_64", &world).unwrap();
        assert!(resolution.packages.len() > main.len(), "the world pulls in its dependencies");
    }
}
