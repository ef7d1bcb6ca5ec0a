//! `alpine-system`: the AGNOS image on Alpine, composed from store paths.
//!
//! Inputs, all pinned: the Alpine minirootfs of the release (its sha256 from
//! Alpine's published checksums) and comma's own files from agnos-builder at a
//! fixed revision (a git fixed-output, NAR-hashed). The `rootfs` builtin stacks
//! them, converts comma's systemd units to OpenRC services, adds the `magic`
//! service, replaces Git LFS pointers by their pinned objects, adds the system's
//! users, hostname and metadata files and the device layout (fstab, udev rules,
//! configuration files, read-only root); the `image`
//! builtin writes ext4 (4500M) and the Android sparse image with its manifest and
//! its SPDX bill of materials (`system.spdx.json`: the apks of the minirootfs and the
//! pinned inputs).
//!
//! The Alpine package world ([`crate::alpine_world`]) is installed over the
//! minirootfs from its lock (`recipes/data/alpine-3.20-<arch>.lock`, written by
//! `forge lock alpine-system`); while no lock is committed the image has only the
//! minirootfs' packages. Layers forge compiles are stacked over the packages: on the
//! device, the glibc runtime ([`crate::glibc`]) for the vendor blobs, which takes
//! gcompat's place in the world (both own `/lib/ld-linux-aarch64.so.1`), and libqmi
//! and ModemManager cross-compiled with the musl toolchain ([`crate::modem`]), with
//! an OpenRC service, and Qt 5.15 with the patched qtwayland ([`crate::qt_cross`]).
//! Not in the image yet (see docs/alpine.md): magic.py's Python environment.
//!
//! The recipe takes a [`Release`], so tests run the same code on a fixture release.

use forge_engine::dsl::{Forge, Image, Input, Package, Source, Target};
use forge_engine::rootfs::{LfsPin, Op, SbomArgs};
use forge_engine::world::{ApkRepository, ApkWorld, PinnedKeys};
use forge_engine::Result;
use forge_store::StorePath;

/// A recipe whose output tree (or one folder of it, see [`Layer`]) is stacked over the
/// image's packages.
pub type LayerRecipe = fn(&mut Forge) -> Result<Package>;

/// A compiled layer of the image: a recipe, and the folder of its output that is copied
/// to the same path in the image.
#[derive(Clone, Copy, Debug)]
pub struct Layer {
    /// Builds the layer.
    pub recipe: LayerRecipe,
    /// The folder of the output the image takes: `""` for all of it; `usr` for a Qt
    /// module, whose `host/` holds build-machine tools (docs/qt.md).
    pub dir: &'static str,
}

impl Layer {
    /// The whole output of `recipe`, at `/`.
    pub const fn whole(recipe: LayerRecipe) -> Layer {
        Layer { recipe, dir: "" }
    }

    /// Only the folder `dir` of `recipe`'s output, at `/dir`.
    pub const fn only(recipe: LayerRecipe, dir: &'static str) -> Layer {
        Layer { recipe, dir }
    }

    fn copy_op(&self, built: &Package) -> Op {
        Op::Copy { src: built.path().clone(), from: self.dir.into(), to: format!("/{}", self.dir) }
    }
}

/// Everything that pins one release of the system.
#[derive(Clone, Debug)]
pub struct Release {
    /// `/VERSION` of the image.
    pub version: String,
    /// `x86_64` (for testing on a PC) or `aarch64` (the device).
    pub arch: String,
    /// Where the Alpine minirootfs tarball is downloaded from (mirrors first).
    pub minirootfs_urls: Vec<String>,
    /// sha256 of the minirootfs tarball, in hex.
    pub minirootfs_sha256: String,
    /// The agnos-builder git repository.
    pub agnos_url: String,
    /// The agnos-builder commit the image takes its files from.
    pub agnos_rev: String,
    /// NAR hash (`sha256:<base32>`) of that checkout.
    pub agnos_nar_hash: String,
    /// Where Git LFS objects of agnos-builder are downloaded: `<base>/<rev>/<path>`.
    pub agnos_lfs_url: String,
    /// Every Git LFS pointer of the checkout, pinned ([`LFS_PINS`] for the real one).
    pub lfs: Vec<LfsObject>,
    /// The image's ext4 size (`4500M` on the device).
    pub image_size: String,
    /// Seconds since the epoch: every mtime, and the date in `/BUILD`.
    pub source_date_epoch: i64,
    /// Alpine repositories (`/etc/apk/repositories` lines). None: no package world.
    pub repositories: Vec<String>,
    /// The package world (apk dependencies), see [`crate::alpine_world`].
    pub world: Vec<String>,
    /// The world's lock file, written by `forge lock` and read by builds.
    pub lock_file: std::path::PathBuf,
    /// Layers forge compiles, copied over the packages in order (before comma's
    /// files, which win where both have a path).
    pub layers: Vec<Layer>,
}

/// AGNOS on Alpine 3.20.3 for `arch`, with the pins of ../shared/fixtures/alpine/README.md
/// and the agnos-builder revision of the migration plan.
pub fn release(arch: &str) -> Release {
    let sha256 = match arch {
        "aarch64" => "041fa34a81788242df9e78fa69b97ab45b8ec47ddbf88864755610414a7bf3de",
        _ => "d4e6fd67dcf75e40c451560ac7265166c2b72a0f38ddc9aae756a7de3d1efa0c",
    };
    Release {
        version: "12.0-alpine".to_owned(),
        arch: arch.to_owned(),
        minirootfs_urls: vec![format!(
            "https://dl-cdn.alpinelinux.org/alpine/v3.20/releases/{arch}/alpine-minirootfs-3.20.3-{arch}.tar.gz"
        )],
        minirootfs_sha256: sha256.to_owned(),
        agnos_url: "https://github.com/commaai/agnos-builder".to_owned(),
        agnos_rev: "2320521a0fec4180f35c3b7c22d6ebc4c152223a".to_owned(),
        agnos_nar_hash: "sha256:0dx8yxadad9930ljkz1sz2ifccakdn4vj38ay6x59f2a0a1mq8f7".to_owned(),
        agnos_lfs_url: "https://media.githubusercontent.com/media/commaai/agnos-builder".to_owned(),
        lfs: LFS_PINS.iter().map(|(path, oid, size, _)| LfsObject::new(path, oid, *size)).collect(),
        image_size: "4500M".to_owned(),
        source_date_epoch: 1_727_740_800, // 2024-10-01, near Alpine 3.20.3's release
        repositories: crate::alpine_world::repositories("v3.20"),
        world: world_for(arch),
        lock_file: crate::alpine_world::lock_file(arch),
        layers: layers_for(arch),
    }
}

/// The compiled layers of `arch`'s image: the device's vendor blobs need the glibc
/// runtime (docs/glibc.md), its modem the libqmi and ModemManager forge cross-compiles
/// (docs/modem.md), and its UI Qt with the patched qtwayland on Wayland's libraries
/// (docs/qt.md; libEGL and libGLESv2 are the world's, by soname). A PC image has none.
fn layers_for(arch: &str) -> Vec<Layer> {
    match arch {
        "aarch64" => vec![
            Layer::whole(crate::glibc::glibc),
            Layer::whole(crate::glibc::cxx_runtime),
            Layer::whole(device_libqmi),
            Layer::whole(device_modemmanager),
            Layer::whole(device_wayland),
            Layer::only(device_qtbase, "usr"),
            Layer::only(device_qtwayland, "usr"),
        ],
        _ => Vec::new(),
    }
}

fn device_wayland(f: &mut Forge) -> Result<Package> {
    crate::cross_libs::wayland(f, crate::cross::CrossTarget::Aarch64)
}

fn device_qtbase(f: &mut Forge) -> Result<Package> {
    crate::qt_cross::qtbase_for(f, crate::cross::CrossTarget::Aarch64)
}

fn device_qtwayland(f: &mut Forge) -> Result<Package> {
    crate::qt_cross::qtwayland_for(f, crate::cross::CrossTarget::Aarch64)
}

fn device_libqmi(f: &mut Forge) -> Result<Package> {
    crate::modem::libqmi_for(f, crate::cross::CrossTarget::Aarch64)
}

fn device_modemmanager(f: &mut Forge) -> Result<Package> {
    crate::modem::modemmanager_for(f, crate::cross::CrossTarget::Aarch64)
}

/// The OpenRC service of the ModemManager layer (Alpine's `modemmanager-openrc` is not
/// installed: the world has no `modemmanager`). The old unit's command line
/// (`--filter-policy=strict --debug`) plus `--report-kernel-event-auto-scan`: this
/// build has no udev support, so ModemManager scans sysfs for modems itself.
const MODEMMANAGER_INITD: &str = r#"#!/sbin/openrc-run
name="ModemManager"
description="Mobile broadband modem management service"
supervisor=supervise-daemon
command=/usr/sbin/ModemManager
command_args="--filter-policy=strict --report-kernel-event-auto-scan --debug"
output_log=/var/log/ModemManager.log
error_log=/var/log/ModemManager.log

depend() {
	need dbus
	after net
}
"#;

/// What the image of `arch` adds around its compiled layers: on the device, the
/// ModemManager service, enabled.
fn services_for(arch: &str) -> Vec<Op> {
    match arch {
        "aarch64" => vec![
            Op::Write { path: "/etc/init.d/modemmanager".into(), content: MODEMMANAGER_INITD.into(), mode: 0o755 },
            Op::Symlink {
                path: "/etc/runlevels/default/modemmanager".into(),
                target: "/etc/init.d/modemmanager".into(),
            },
        ],
        _ => Vec::new(),
    }
}

/// The package world of `arch`: with the glibc layer stacked, gcompat goes (its
/// loader would take the glibc loader's path).
fn world_for(arch: &str) -> Vec<String> {
    let world = crate::alpine_world::world();
    match arch {
        "aarch64" => world.into_iter().filter(|p| p != "gcompat").collect(),
        _ => world,
    }
}

/// The system image of `release`.
pub fn system(f: &mut Forge, release: &Release) -> Result<Image> {
    let urls: Vec<&str> = release.minirootfs_urls.iter().map(String::as_str).collect();
    let minirootfs = f.fetch(&minirootfs_name(release), &urls, &format!("sha256:{}", release.minirootfs_sha256))?;
    let agnos = f.git(
        "agnos-builder-userspace",
        &release.agnos_url,
        &release.agnos_rev,
        &release.agnos_nar_hash,
        &["userspace/files", "userspace/usr/comma"],
    )?;
    let (lfs_op, lfs_objects) = lfs_objects(f, release, &agnos)?;
    let layers = release.layers.iter().map(|layer| (layer.recipe)(f)).collect::<Result<Vec<_>>>()?;
    let mut ops: Vec<Op> = release.layers.iter().zip(&layers).map(|(layer, built)| layer.copy_op(built)).collect();
    ops.extend([
        Op::Copy { src: agnos.path().clone(), from: "userspace/usr/comma".into(), to: "/usr/comma".into() },
        lfs_op,
        Op::SystemdUnits {
            src: agnos.path().clone(),
            dir: "userspace/files".into(),
            skip: vec!["magic.service".into()],
        },
        // comma's own magic.service, with the Alpine changes (supervised, its log).
        Op::MagicUnit { src: agnos.path().clone(), path: "userspace/files/magic.service".into() },
    ]);
    ops.extend(system_files(release));
    ops.extend(services_for(&release.arch));
    ops.extend(device_layout(agnos.path()));
    let base = with_packages(f, release, &minirootfs)?;
    let args = serde_json::json!({
        "base": base.path().to_string(),
        "epoch": release.source_date_epoch,
        "ops": ops,
    });
    let mut inputs: Vec<&dyn Input> = vec![&base, &agnos];
    inputs.extend(lfs_objects.iter().map(|o| o as &dyn Input));
    inputs.extend(layers.iter().map(|l| l as &dyn Input));
    let rootfs = f.builtin(&format!("agnos-rootfs-{}", release.arch), "rootfs", 1, args, &inputs)?;
    let sbom = SbomArgs::for_rootfs(f, &rootfs, &release.version, release.source_date_epoch);
    let image_args = serde_json::json!({
        "rootfs": rootfs.path().to_string(),
        "size": release.image_size,
        "label": "system",
        "name": "system",
        "sbom": sbom,
    });
    Ok(f.builtin(&format!("agnos-system-{}", release.arch), "image", 1, image_args, &[&rootfs])?.into_image())
}

/// The release's package world: its repositories, the keys of its pinned minirootfs
/// (`/etc/apk/keys`, the root of trust), its world, arch and lock file. `None` for a
/// release without repositories.
pub fn package_world(release: &Release) -> Result<Option<ApkWorld>> {
    if release.repositories.is_empty() {
        return Ok(None);
    }
    let repositories = release.repositories.iter().map(|r| ApkRepository::parse(r)).collect::<Result<Vec<_>>>()?;
    Ok(Some(ApkWorld {
        // The lock file's stem names the world: `alpine-3.20-x86_64`.
        name: release
            .lock_file
            .file_stem()
            .map_or_else(|| format!("alpine-{}", release.arch), |s| s.to_string_lossy().into_owned()),
        arch: release.arch.clone(),
        repositories,
        keys: PinnedKeys {
            name: minirootfs_name(release),
            urls: release.minirootfs_urls.clone(),
            hash: format!("sha256:{}", release.minirootfs_sha256),
            dir: "etc/apk/keys".into(),
        },
        world: release.world.clone(),
        lock_file: release.lock_file.clone(),
    }))
}

/// The minirootfs with the locked package world installed over it (apk-install), or the
/// minirootfs alone while no lock is committed (`forge show`/`build` then say to run
/// `forge lock`).
fn with_packages(f: &mut Forge, release: &Release, minirootfs: &Source) -> Result<Target> {
    let Some(world) = package_world(release)? else { return Ok(minirootfs.clone().into()) };
    match f.apk_world(world.clone())? {
        Some(lock) => {
            let name = format!("alpine-packages-{}", release.arch);
            Ok(f.apk_install_world(&name, minirootfs, &world, &lock, release.source_date_epoch)?.into())
        }
        None => Ok(minirootfs.clone().into()),
    }
}

fn minirootfs_name(release: &Release) -> String {
    format!("alpine-minirootfs-{}.tar.gz", release.arch)
}

/// Users, hostname, hosts, capabilities and the metadata files (inventory, 6.1).
fn system_files(release: &Release) -> Vec<Op> {
    let write = |path: &str, content: &str, mode: u32| Op::Write { path: path.into(), content: content.into(), mode };
    let append = |path: &str, content: &str| Op::Append { path: path.into(), content: content.into() };
    vec![
        // comma: uid/gid 1000, its own groups at fixed ids so images are stable.
        append("/etc/group", "gpio:x:1001:comma\ngpu:x:1002:comma\ncomma:x:1000:\n"),
        append("/etc/passwd", "comma:x:1000:1000:comma:/home/comma:/bin/ash\n"),
        append("/etc/shadow", "comma:!::0:::::\n"),
        Op::Mkdir { path: "/home/comma".into(), mode: 0o755 },
        Op::Chown { path: "/home/comma".into(), uid: 1000, gid: 1000 },
        write("/etc/sudoers.d/comma", "comma ALL=(ALL) NOPASSWD: ALL\n", 0o440),
        write("/etc/hostname", "comma\n", 0o644),
        write("/etc/hosts", "127.0.0.1 localhost.localdomain localhost\n127.0.0.1 comma\n", 0o644),
        Op::Mkdir { path: "/data".into(), mode: 0o755 },
        Op::Mkdir { path: "/var/log".into(), mode: 0o755 },
        Op::Setcap { path: "/bin/busybox".into(), caps: "cap_net_raw+ep".into() },
        write("/VERSION", &format!("{}\n", release.version), 0o644),
        write("/BUILD", &format!("{}\n{}\n", release.agnos_rev, iso_date(release.source_date_epoch)), 0o644),
    ]
    .into_iter()
    .chain(kernel_and_firewall())
    .chain([
        // The motd's header line (6.6). Ubuntu's update-motd.d scripts have no Alpine
        // runner; the logo and quick start (agnos-builder's userspace/motd) are not
        // among the pinned subpaths.
        write("/etc/motd", &format!("Welcome to AGNOS v{}\n", release.version), 0o644),
    ])
    .collect()
}

/// sysctl, limits and iptables settings of the inventory (6.1, 6.3, 6.6), in Alpine's
/// places. gai.conf's IPv4 preference has none: musl's getaddrinfo reads no gai.conf.
fn kernel_and_firewall() -> Vec<Op> {
    let write = |path: &str, content: &str| Op::Write { path: path.into(), content: content.into(), mode: 0o644 };
    let enable = |level: &str, service: &str| Op::Symlink {
        path: format!("/etc/runlevels/{level}/{service}"),
        target: format!("/etc/init.d/{service}"),
    };
    vec![
        // OpenRC's sysctl service (boot runlevel) applies /etc/sysctl.d at boot.
        write("/etc/sysctl.d/60-comma.conf", "net.ipv4.conf.all.rp_filter = 2\nvm.dirty_expire_centisecs = 200\n"),
        enable("boot", "sysctl"),
        // Read by pam_limits (ssh sessions with UsePAM).
        write("/etc/security/limits.d/comma.conf", "comma - rtprio 100\ncomma - nice -10\n"),
        // iptables-openrc restores rules-save (Ubuntu's path was rules.v4).
        write("/etc/iptables/rules-save", IPTABLES_RULES),
        enable("default", "iptables"),
    ]
}

/// The old image's rules.v4 (inventory 6.6): every chain ACCEPT, established traffic
/// in, nothing new from the cellular interface.
const IPTABLES_RULES: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -i wwan0 -j DROP\nCOMMIT\n";

/// One Git LFS object of agnos-builder: the pointer's path in the repository and
/// what it names (the object's sha256 and size).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LfsObject {
    /// The file or path concerned.
    pub path: String,
    /// sha256 of the object, hex (the pointer's `oid sha256:...`).
    pub oid: String,
    /// The size in bytes.
    pub size: u64,
}

impl LfsObject {
    /// A row of the table.
    pub fn new(path: &str, oid: &str, size: u64) -> LfsObject {
        LfsObject { path: path.to_owned(), oid: oid.to_owned(), size }
    }
}

/// Where the pins live, named by the errors of the `lfs-objects` op.
const LFS_TABLE: &str = "LFS_PINS in recipes/src/alpine.rs (or the release's `lfs` list)";

/// The Git LFS pointers of agnos-builder's `userspace/files` and `userspace/usr/comma`:
/// (path, oid sha256, size, the commit of the stored copy the pointer was read from).
/// The pinned revision's own pointers could not be read here; a row that differs
/// from the checkout fails the build with the row to write (docs/alpine.md).
pub const LFS_PINS: &[(&str, &str, u64, &str)] = &[
    (
        "userspace/files/libeglSubDriverWayland.so.patched",
        "34b01105549bba97710ded5916a24a318d4b7dbe91fe4e617ca320a7d98f6a39",
        197_632,
        "65d02b102d48f16ec86f797d2874541b6826c61d",
    ),
    (
        "userspace/files/linux-headers-4.9.103+_4.9.103+-1_arm64.deb",
        "f83bcdb1a866346c057c4a709bf3f8ae8be2069f86cee15a548c86d1423a59d5",
        10_920_872,
        "791c5c185f80297347bfa84492a7c5541b093dcc",
    ),
    (
        "userspace/files/weston",
        "7e38b2701eaa61471dfb2418b606846c0512afd90f67bfc0d65dcf5178fb51b8",
        782_832,
        "5bbc1a75ef9fdd694bc5e4df0cc624076412375f",
    ),
    (
        "userspace/usr/comma/installer",
        "1f80eeeed80a74fd98f4c4cdda5b6c48c32449c005e05da3dd7a16f8f83c569b",
        1_401_216,
        "179252658c5e9167212b32150fad6816007798b1",
    ),
    (
        "userspace/usr/comma/reset",
        "acf2b9cbe83252b7584c67f6aea1205cfe0aaa88ed22b3b7b81c83a5e748ff69",
        25_111_325,
        "0c00039df0e811b552bc15d8db97a69f98ae19f5",
    ),
    (
        "userspace/usr/comma/setup",
        "1575da9a3e6d7e73040a1230475b1930ebbc18b7042cb437628f653a12edf3c8",
        22_996_241,
        "0d299321963d7a50e8ca85338dc7e944b8b1d7e7",
    ),
    (
        "userspace/usr/comma/updater",
        "360358e4c32a6dbc1657bee1dcf5d74e9a7782f1008e0239e63a02dd0fe5bb6c",
        25_145_468,
        "a8759d745fadf144dce926daf5a18678768bf55f",
    ),
];

/// Where an LFS object goes in the image: comma's programs under /usr/comma. The
/// objects of `userspace/files` stay out: the Wayland EGL sub-driver and weston are
/// glibc blobs (weston armhf, not enabled at the pinned rev) waiting for the glibc
/// runtime, and the linux-headers deb is unused since the kernel build installs
/// the headers; they are pinned so the checkout is fully accounted for.
fn lfs_destination(path: &str) -> Option<String> {
    path.strip_prefix("userspace/usr/comma/").map(|rest| format!("/usr/comma/{rest}"))
}

/// One fixed-output fetch per installed LFS object (named by its sha256, so no
/// server is trusted) and the op that checks every pointer of the checkout and
/// puts the objects in place.
fn lfs_objects(
    f: &mut Forge,
    release: &Release,
    agnos: &forge_engine::dsl::Source,
) -> Result<(Op, Vec<forge_engine::dsl::Source>)> {
    let mut pins = Vec::with_capacity(release.lfs.len());
    let mut fetched = Vec::new();
    for obj in &release.lfs {
        let (to, object) = match lfs_destination(&obj.path) {
            Some(to) => {
                let url = format!("{}/{}/{}", release.agnos_lfs_url, release.agnos_rev, obj.path);
                let base = obj.path.rsplit('/').next().unwrap_or(&obj.path);
                let name: String = base
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' })
                    .collect();
                let source = f.fetch(&format!("agnos-lfs-{name}"), &[&url], &format!("sha256:{}", obj.oid))?;
                let object = source.path().clone();
                fetched.push(source);
                (Some(to), Some(object))
            }
            None => (None, None),
        };
        pins.push(LfsPin { path: obj.path.clone(), oid: obj.oid.clone(), size: obj.size, to, object });
    }
    let op = Op::LfsObjects { src: agnos.path().clone(), pins, table: LFS_TABLE.to_owned() };
    Ok((op, fetched))
}

/// The device layout of the inventory (sections 6.2-6.6), each step an explicit op:
/// comma's configuration files at their Alpine places, then the read-only root.
fn device_layout(agnos: &StorePath) -> Vec<Op> {
    let file = |from: &str, to: &str, mode: u32| Op::CopyFile {
        src: agnos.clone(),
        from: format!("userspace/files/{from}"),
        to: to.into(),
        mode: Some(mode),
    };
    let link = |path: &str, target: &str| Op::Symlink { path: path.into(), target: target.into() };
    let edit =
        |path: &str, from: &str, to: &str| Op::Edit { path: path.into(), replace: vec![[from.into(), to.into()]] };
    let mut ops = vec![
        // fstab (6.3): systemd's x-systemd.makefs (format /cache when blank) and
        // device timeouts have no OpenRC meaning; they are dropped with a note.
        file("fstab", "/etc/fstab", 0o644),
        Op::FstabDropOptions { path: "/etc/fstab".into(), prefix: "x-systemd.".into() },
        // udev rules (6.2), read by eudev. comma-polkit.rules is polkit's JavaScript:
        // the old glob also put it in rules.d, which udev then misread.
        Op::CopyMatching {
            src: agnos.clone(),
            dir: "userspace/files".into(),
            suffix: ".rules".into(),
            to: "/etc/udev/rules.d".into(),
            skip: vec!["comma-polkit.rules".into()],
            mode: Some(0o644),
        },
        file("comma-polkit.rules", "/etc/polkit-1/rules.d/comma-polkit.rules", 0o644),
        // ssh (6.1): Alpine's openssh keeps sftp-server in /usr/lib/ssh.
        file("sshd_config", "/etc/ssh/sshd_config", 0o644),
        edit("/etc/ssh/sshd_config", "/usr/lib/openssh/sftp-server", "/usr/lib/ssh/sftp-server"),
        file("ssh_config", "/etc/ssh/ssh_config", 0o644),
        // logging (6.6): logrotate's config as the old image had it, 0644.
        file("logrotate.conf", "/etc/logrotate.conf", 0o644),
        file("rsyslog", "/etc/logrotate.d/rsyslog", 0o644),
        // NetworkManager (6.5): no systemd-resolved on Alpine, so NM manages
        // resolv.conf itself, which lives in /run because / is read-only.
        file("NetworkManager.conf", "/etc/NetworkManager/NetworkManager.conf", 0o644),
        edit("/etc/NetworkManager/NetworkManager.conf", "dns=systemd-resolved", "dns=default\nrc-manager=symlink"),
        Op::CopyMatching {
            src: agnos.clone(),
            dir: "userspace/files".into(),
            suffix: ".nmconnection".into(),
            to: "/usr/lib/NetworkManager/system-connections".into(),
            skip: vec![],
            mode: Some(0o600),
        },
        link("/etc/resolv.conf", "/run/NetworkManager/resolv.conf"),
        // The login environment (venv, PATH with the shims).
        file("profile", "/etc/profile", 0o644),
    ];
    ops.extend(readonly_root());
    ops
}

/// The read-only root of the inventory (6.4, facts 6 and 7): what must change at
/// runtime lives in /data (links), /var and /home move to /usr/default (fs_setup.sh
/// puts tmpfs /var and an overlay /home over the empty directories at boot), and
/// every mount point of the fstab exists, empty.
fn readonly_root() -> Vec<Op> {
    let link = |path: &str, target: &str| Op::Symlink { path: path.into(), target: target.into() };
    let mkdir = |path: &str, mode: u32| Op::Mkdir { path: path.into(), mode };
    let mut ops = vec![
        link("/etc/timezone", "/data/etc/timezone"),
        link("/etc/localtime", "/data/etc/localtime"),
        link("/etc/NetworkManager/system-connections", "/data/etc/NetworkManager/system-connections"),
        Op::Move { from: "/var".into(), to: "/usr/default/var".into() },
        mkdir("/var", 0o755),
        Op::Move { from: "/home".into(), to: "/usr/default/home".into() },
        mkdir("/home", 0o755),
        mkdir("/tmp", 0o1777),
        Op::Chmod { path: "/tmp".into(), mode: 0o1777 },
    ];
    for point in ["/persist", "/firmware", "/dsp", "/cache", "/systemrw", "/config", "/rwtmp"] {
        ops.push(mkdir(point, 0o755));
    }
    for owned in ["/data", "/persist"] {
        ops.push(Op::Chown { path: owned.into(), uid: 1000, gid: 1000 });
    }
    ops
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time, UTC (the old build's /BUILD format).
fn iso_date(t: i64) -> String {
    forge_engine::sbom::rfc3339(t).trim_end_matches('Z').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_date_matches_known_instants() {
        assert_eq!(iso_date(0), "1970-01-01T00:00:00");
        assert_eq!(iso_date(1_727_740_800), "2024-10-01T00:00:00");
        assert_eq!(iso_date(951_782_400 + 3661), "2000-02-29T01:01:01");
    }

    #[test]
    fn the_real_release_pins_the_minirootfs_and_agnos_builder() {
        let mut f = Forge::new();
        system(&mut f, &release("aarch64")).unwrap();
        let json: Vec<String> = f.nodes().iter().map(|n| n.drv.canonical_json()).collect();
        let all = json.join("\n");
        assert!(
            all.contains("041fa34a81788242df9e78fa69b97ab45b8ec47ddbf88864755610414a7bf3de")
                || all.contains("alpine-minirootfs-aarch64")
        );
        assert!(all.contains("2320521a0fec4180f35c3b7c22d6ebc4c152223a"));
        assert!(all.contains("0dx8yxadad9930ljkz1sz2ifccakdn4vj38ay6x59f2a0a1mq8f7"));
        assert!(all.contains("4500M"));
        // One fixed-output fetch per installed LFS object, by its oid; the rest pinned only.
        let setup = "1575da9a3e6d7e73040a1230475b1930ebbc18b7042cb437628f653a12edf3c8";
        assert!(all.contains("agnos-builder/2320521a0fec4180f35c3b7c22d6ebc4c152223a/userspace/usr/comma/setup"));
        assert!(all.contains(setup));
        assert!(all.contains("\"path\":\"userspace/files/weston\""), "weston is pinned");
        assert!(!all.contains("agnos-lfs-weston"), "weston is not fetched");
    }

    #[test]
    fn the_device_image_stacks_the_glibc_runtime_and_the_modem_stack() {
        let mut f = Forge::for_system("aarch64-linux");
        system(&mut f, &release("aarch64")).unwrap();
        let rootfs = f.nodes().iter().find(|n| n.drv.name == "agnos-rootfs-aarch64").unwrap();
        let json = rootfs.drv.canonical_json();
        // glibc, its C++ runtime, the modem stack and Wayland: each layer copied whole to
        // `/`; of the Qt modules only `usr/`, never the build machine's tools in `host/`.
        for (layer, dir) in [
            ("glibc-2.36", ""),
            ("glibc-cxx-runtime-12.2.0", ""),
            ("libqmi-aarch64-linux-musl-1.36.0", ""),
            ("modemmanager-aarch64-linux-musl-1.24.0", ""),
            ("wayland-aarch64-linux-musl-1.21.0", ""),
            ("qtbase-aarch64-linux-musl-5.15.8", "usr"),
            ("qtwayland-aarch64-linux-musl-5.15.8", "usr"),
        ] {
            let node = f.nodes().iter().find(|n| n.drv.name == layer).expect("the layer is built");
            let path = &node.outputs["out"];
            assert!(rootfs.drv.inputs.contains(path), "the rootfs takes {layer}");
            let copy = format!(r#"{{"from":"{dir}","op":"copy","src":"{path}","to":"/{dir}"}}"#);
            assert!(json.contains(&copy), "{json}");
        }
        assert!(!json.contains("libglvnd"), "libEGL and libGLESv2 are the world's (mesa-egl, mesa-gles)");
        assert!(!release("aarch64").world.iter().any(|p| p == "gcompat"));
        // Compiled on the build machine: the same store paths as an x86_64 graph's.
        let mut host = Forge::for_system("x86_64-linux");
        for layer in [device_modemmanager(&mut host).unwrap(), crate::glibc::glibc(&mut host).unwrap()] {
            assert!(rootfs.drv.inputs.contains(layer.path()), "{} is declared again for aarch64", layer.path());
        }
        assert!(json.contains(r#""path":"/etc/runlevels/default/modemmanager""#), "{json}");
        assert!(MODEMMANAGER_INITD.contains("--filter-policy=strict --report-kernel-event-auto-scan"));

        // A PC image has no vendor blobs: no glibc layer, and gcompat stays.
        let mut f = Forge::new();
        system(&mut f, &release("x86_64")).unwrap();
        assert!(!f.nodes().iter().any(|n| n.drv.name.starts_with("glibc-") || n.drv.name.contains("linux-musl")));
        assert!(release("x86_64").world.iter().any(|p| p == "gcompat"));
    }

    #[test]
    fn only_comma_programs_are_installed_from_lfs() {
        assert_eq!(lfs_destination("userspace/usr/comma/setup").as_deref(), Some("/usr/comma/setup"));
        assert_eq!(lfs_destination("userspace/files/weston"), None);
        assert!(LFS_PINS.iter().all(|(_, oid, _, commit)| oid.len() == 64 && commit.len() == 40));
    }

    #[test]
    fn the_real_release_declares_its_world_from_main_and_community_with_the_minirootfs_keys() {
        let mut f = Forge::new();
        let release = release("x86_64");
        system(&mut f, &release).unwrap();
        let declared = &f.apk_worlds()[0];
        let w = &declared.world;
        assert_eq!(w.name, "alpine-3.20-x86_64");
        assert!(w.lock_file.ends_with("recipes/data/alpine-3.20-x86_64.lock"));
        let repos: Vec<String> = w.repositories.iter().map(ApkRepository::line).collect();
        assert_eq!(repos, crate::alpine_world::repositories("v3.20"));
        assert_eq!(w.keys.name, "alpine-minirootfs-x86_64.tar.gz");
        assert_eq!(w.keys.hash, format!("sha256:{}", release.minirootfs_sha256));
        assert_eq!(w.keys.dir, "etc/apk/keys");
        assert_eq!(w.world, crate::alpine_world::world(), "x86_64 keeps the whole world, gcompat included");
        if !w.lock_file.exists() {
            // Without a lock the rootfs starts from the minirootfs itself.
            assert!(declared.lock.is_none());
            let rootfs = f.nodes().iter().find(|n| n.drv.name == "agnos-rootfs-x86_64").unwrap();
            assert!(rootfs.drv.canonical_json().contains("alpine-minirootfs-x86_64.tar.gz"));
        }
    }
}
