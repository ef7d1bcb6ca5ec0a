//! alpine-system's recipe end to end on a fixture release: a generated minirootfs
//! and a local git repository standing in for agnos-builder, through the same
//! recipe code as the real pins, to an image that e2fsck accepts, with an SPDX bill
//! of materials the SPDX validator accepts, and that is byte-identical when built
//! twice: in two stores, and by root and by an unprivileged user.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use forge_tests::http::{Route, TestServer};
use forge_tests::*;

const UNIT: &str = "[Unit]\\nDescription=Sound setup\\nAfter=local-fs.target\\n\\n[Service]\\nType=oneshot\\nExecStart=/usr/comma/sound/init.sh\\n\\n[Install]\\nWantedBy=multi-user.target\\n";

fn git(dir: &Path, args: &[&str]) -> String {
    let out = run_ok(
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z"),
    );
    stdout(&out)
}

/// The minirootfs' apk database: alpine-baselayout's real record (as apk-tools wrote
/// it, kept in the engine's test data) and a small musl record.
fn installed_db() -> String {
    let real = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../engine/src/apk/testdata/alpine-baselayout-3.2.0-r23-aarch64.installed");
    let musl = "C:Q1Ws0QU6ZK6X4Cy1kzyS1wL4Pf7Ww=\nP:musl\nV:1.2.5-r0\nA:x86_64\nS:1\nI:1\nT:the musl c library\n\
                U:https://musl.libc.org/\nL:MIT\no:musl\n\n";
    std::fs::read_to_string(real).unwrap() + musl
}

/// The name of the fixture's signing key in `/etc/apk/keys`.
const KEY_NAME: &str = "forge-fixture@example.invalid-1.rsa.pub";

/// An RSA key made by openssl: `(private PEM, public PEM)`, or `None` without openssl.
fn openssl_key(dir: &Path) -> Option<(String, String)> {
    if !have_tool("openssl") {
        return None;
    }
    let key = dir.join("fixture.rsa");
    run_ok(Command::new("openssl").args(["genrsa", "-out"]).arg(&key).arg("2048"));
    let public = run_ok(Command::new("openssl").args(["rsa", "-pubout", "-in"]).arg(&key));
    Some((std::fs::read_to_string(&key).unwrap(), String::from_utf8(public.stdout).unwrap()))
}

/// comma's magic.service as the fixture's agnos-builder holds it: the real unit's
/// shape (User=comma, a pre-step, the venv python through /etc/profile) without the
/// Adreno device nodes a PC or the sandbox lacks.
const MAGIC_UNIT: &str =
    "[Unit]\nDescription=magic (fixture)\n\n[Service]\nType=simple\nUser=comma\nPermissionsStartOnly=true\n\
    ExecStartPre=/bin/mkdir -p /data/misc/display\n\
    ExecStart=/bin/bash -c \"source /etc/profile && exec /usr/local/venv/bin/python -u /usr/comma/magic.py\"\n\n\
    [Install]\nWantedBy=multi-user.target\n";

/// The fixture's magic.py: python is not in the fixture, so a shell stand-in that
/// logs like the real one and stays up.
const MAGIC_PY: &str = "echo \"magic: up as $(id -un), profile=$PROFILE_SOURCED\"\nexec sleep 600\n";

/// The object behind the fixture's one installed Git LFS pointer.
const SETUP_OBJECT: &[u8] = b"#!/bin/sh\necho 'the real setup program, not its pointer'\n";

/// The fixture's configuration files, each with the text the recipe edits.
const CONFIGS: &[(&str, &str)] = &[
    (
        "fstab",
        "/dev/disk/by-partlabel/userdata /data auto discard,noatime,nosuid,nodev,nofail 0 0\n\
         /dev/disk/by-partlabel/cache /cache ext4 relatime,discard,x-systemd.makefs 0 0\n\
         tmpfs /var tmpfs rw,nosuid,nodev,size=128M,mode=755 0 0\n",
    ),
    ("95-gpu.rules", "KERNEL==\"kgsl-3d0\", GROUP=\"gpu\", MODE=\"0660\"\n"),
    ("96-i2c.rules", "SUBSYSTEM==\"i2c-dev\", GROUP=\"gpio\", MODE=\"0660\"\n"),
    ("comma-polkit.rules", "polkit.addRule(function(action, subject) { return polkit.Result.NOT_HANDLED; });\n"),
    ("sshd_config", "PermitRootLogin no\nSubsystem sftp /usr/lib/openssh/sftp-server\n"),
    ("ssh_config", "Host *\n  IdentityFile /data/ssh/id_ed25519\n"),
    ("logrotate.conf", "hourly\nrotate 36\ninclude /etc/logrotate.d\n"),
    ("rsyslog", "/var/log/syslog {\n  rotate 4\n}\n"),
    ("NetworkManager.conf", "[main]\nplugins=ifupdown,keyfile\ndns=systemd-resolved\n"),
    ("lte.nmconnection", "[connection]\nid=lte\ntype=gsm\n"),
    ("profile", "export PROFILE_SOURCED=yes\n"),
];

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

fn lfs_pointer(data: &[u8]) -> String {
    format!("version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize {}\n", sha256_hex(data), data.len())
}

/// A tiny minirootfs: the files the recipe appends to, a real static busybox with
/// its applets (as Alpine's, so the boot test has a shell), and stand-ins for what
/// the package world will bring: bash (busybox sh) and the venv python.
fn minirootfs(key: Option<&str>) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut entry = |path: &str, kind: tar::EntryType, body: &[u8], mode: u32, link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(body.len() as u64);
        h.set_mode(mode);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        if let Some(target) = link {
            h.set_link_name(target).unwrap();
        }
        h.set_cksum();
        tar.append_data(&mut h, path, body).unwrap();
    };
    for dir in ["bin", "etc", "home", "lib", "lib/apk", "lib/apk/db", "tmp", "usr/local/venv/bin", "var/log"] {
        entry(dir, tar::EntryType::Directory, b"", 0o755, None);
    }
    entry("etc/passwd", tar::EntryType::Regular, b"root:x:0:0:root:/root:/bin/ash\n", 0o644, None);
    entry("etc/group", tar::EntryType::Regular, b"root:x:0:root\n", 0o644, None);
    entry("etc/shadow", tar::EntryType::Regular, b"root:*::0:::::\n", 0o640, None);
    let busybox = std::fs::read("/bin/busybox").unwrap_or_else(|_| b"\x7fELF stand-in for busybox".to_vec());
    entry("bin/busybox", tar::EntryType::Regular, &busybox, 0o755, None);
    let list = Command::new("/bin/busybox").arg("--list").output().map(|o| o.stdout).unwrap_or_default();
    for applet in String::from_utf8_lossy(&list).lines().filter(|a| !["busybox", "bash"].contains(a)) {
        entry(&format!("bin/{applet}"), tar::EntryType::Symlink, b"", 0o777, Some("busybox"));
    }
    entry("bin/bash", tar::EntryType::Regular, b"#!/bin/busybox sh\nexec /bin/busybox sh \"$@\"\n", 0o755, None);
    let python = b"#!/bin/sh\n# fixture stand-in for the venv python: runs the shell magic.py\n[ \"$1\" = -u ] && shift\nexec /bin/sh \"$@\"\n";
    entry("usr/local/venv/bin/python", tar::EntryType::Regular, python, 0o755, None);
    entry("var/run", tar::EntryType::Symlink, b"", 0o777, Some("/run"));
    entry("lib/apk/db/installed", tar::EntryType::Regular, installed_db().as_bytes(), 0o644, None);
    if let Some(pem) = key {
        entry(&format!("etc/apk/keys/{KEY_NAME}"), tar::EntryType::Regular, pem.as_bytes(), 0o644, None);
    }
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

/// The agnos-builder stand-in: units, comma's files, the configuration files and
/// two Git LFS pointers (one installed, its object in the mirror; one only pinned).
fn agnos_repo(repo: &Path, mirror: &Path) {
    let files = repo.join("userspace/files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::create_dir_all(repo.join("userspace/usr/comma/sound")).unwrap();
    std::fs::write(files.join("sound.service"), UNIT.replace("\\n", "\n")).unwrap();
    std::fs::write(files.join("magic.service"), MAGIC_UNIT).unwrap();
    for (name, text) in CONFIGS {
        std::fs::write(files.join(name), text).unwrap();
    }
    std::fs::write(files.join("weston"), lfs_pointer(b"an armhf weston the image leaves out\n")).unwrap();
    let comma = repo.join("userspace/usr/comma");
    std::fs::write(comma.join("magic.py"), MAGIC_PY).unwrap();
    std::fs::write(comma.join("sound/init.sh"), "#!/bin/sh\n").unwrap();
    std::fs::write(comma.join("setup"), lfs_pointer(SETUP_OBJECT)).unwrap();
    for exe in ["magic.py", "sound/init.sh", "setup"] {
        std::fs::set_permissions(comma.join(exe), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    std::fs::write(repo.join("README"), "not part of the image\n").unwrap();
    std::fs::create_dir_all(mirror.join("sha256")).unwrap();
    std::fs::write(mirror.join("sha256").join(sha256_hex(SETUP_OBJECT)), SETUP_OBJECT).unwrap();
}

/// The fixture's LFS pins, exactly as its pointers say.
fn lfs_pins() -> serde_json::Value {
    let weston = b"an armhf weston the image leaves out\n";
    serde_json::json!([
        {"path": "userspace/files/weston", "oid": sha256_hex(weston), "size": weston.len()},
        {"path": "userspace/usr/comma/setup", "oid": sha256_hex(SETUP_OBJECT), "size": SETUP_OBJECT.len()},
    ])
}

/// Writes the fixture release and returns its JSON path.
fn fixture(dir: &Path) -> std::path::PathBuf {
    fixture_with_key(dir, None)
}

/// [`fixture`], with `key` (a public PEM) trusted in the minirootfs' `/etc/apk/keys`,
/// as Alpine's trusts Alpine's keys.
fn fixture_with_key(dir: &Path, key: Option<&str>) -> std::path::PathBuf {
    let mirror = dir.join("mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    std::fs::write(mirror.join("alpine-minirootfs-fixture.tar.gz"), minirootfs(key)).unwrap();
    let sha = run_ok(forge(dir).args(["hash", "file", "--hex"]).arg(mirror.join("alpine-minirootfs-fixture.tar.gz")));

    let repo = dir.join("agnos-builder");
    agnos_repo(&repo, &mirror);
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "fixture"]);
    let rev = git(&repo, &["rev-parse", "HEAD"]);
    let checkout = dir.join("checkout");
    run_ok(
        forge(dir)
            .args(["fetch-git"])
            .arg(&repo)
            .args(["--rev", &rev, "--subpath", "userspace/files", "--subpath", "userspace/usr/comma", "-o"])
            .arg(&checkout),
    );
    let nar = stdout(&run_ok(forge(dir).args(["hash", "path"]).arg(&checkout)));

    let release = serde_json::json!({
        "version": "0.0-fixture", "arch": "x86_64",
        "minirootfs_url": "https://fixture.invalid/alpine-minirootfs-fixture.tar.gz",
        "minirootfs_sha256": stdout(&sha), "agnos_url": repo.display().to_string(), "agnos_rev": rev,
        "agnos_nar_hash": nar, "agnos_lfs_url": "https://fixture.invalid/lfs", "lfs": lfs_pins(),
        "image_size": "64M", "source_date_epoch": 1_700_000_000, "layers": ["fixture-layer"],
    });
    let file = dir.join("release.json");
    std::fs::write(&file, release.to_string()).unwrap();
    file
}

fn build(release: &Path, mirror: &Path, store: &Path) -> std::path::PathBuf {
    let out = run_ok(
        example(store)
            .env("FORGE_ALPINE_FIXTURE", release)
            .args(["build", "alpine-fixture", "--offline", "--mirror"])
            .arg(mirror)
            .arg("--out")
            .arg(store.join("alpine")),
    );
    std::path::PathBuf::from(stdout(&out))
}

fn debugfs(image: &Path, request: &str) -> String {
    stdout(&run_ok(Command::new("debugfs").args(["-R", request]).arg(image)))
}

#[test]
fn the_fixture_release_becomes_a_clean_reproducible_image_with_users_services_and_caps() {
    if !(have_tool("git") && have_tool("e2fsck") && have_tool("simg2img") && have_tool("debugfs")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let release = fixture(dir.path());
    let mirror = dir.path().join("mirror");
    let out = build(&release, &mirror, &dir.path().join("store-a"));

    let raw = dir.path().join("system.raw");
    run_ok(Command::new("simg2img").arg(out.join("system.img")).arg(&raw));
    assert_eq!(std::fs::metadata(&raw).unwrap().len(), 64 << 20);
    run_ok(Command::new("e2fsck").arg("-fn").arg(&raw));

    let manifest = std::fs::read_to_string(out.join("system.manifest")).unwrap();
    for needed in [
        "/etc/init.d/magic",
        "/etc/runlevels/default/magic",
        "/etc/init.d/sound",
        "/usr/comma/magic.py",
        "/VERSION",
        "/BUILD",
    ] {
        assert!(manifest.contains(needed), "{needed} missing from the manifest:\n{manifest}");
    }
    assert!(manifest.lines().any(|l| l.contains("/bin/busybox") && l.contains("cap_net_raw+ep")), "{manifest}");
    assert!(debugfs(&raw, "cat /etc/passwd").contains("comma:x:1000:1000"));
    // The compiled layer is stacked: its symlink is in the image as the layer has it.
    assert!(debugfs(&raw, "stat /lib64/ld-fixture.so.1").contains("Fast link dest: \"/usr/glibc/lib/ld-fixture.so.1\""));
    // sysctl, limits, the firewall and the motd, in Alpine's places.
    assert!(debugfs(&raw, "cat /etc/sysctl.d/60-comma.conf").contains("net.ipv4.conf.all.rp_filter = 2"));
    assert!(debugfs(&raw, "cat /etc/security/limits.d/comma.conf").contains("comma - rtprio 100"));
    let rules = debugfs(&raw, "cat /etc/iptables/rules-save");
    assert!(rules.starts_with("*filter\n") && rules.contains("-A INPUT -i wwan0 -j DROP\nCOMMIT"), "{rules}");
    assert!(debugfs(&raw, "stat /etc/runlevels/default/iptables").contains("Fast link dest: \"/etc/init.d/iptables\""));
    assert!(debugfs(&raw, "stat /etc/runlevels/boot/sysctl").contains("Fast link dest: \"/etc/init.d/sysctl\""));
    assert_eq!(debugfs(&raw, "cat /etc/motd"), "Welcome to AGNOS v0.0-fixture");
    assert!(debugfs(&raw, "cat /etc/init.d/magic").contains("/var/log/magic.log"));
    assert_eq!(debugfs(&raw, "cat /BUILD").lines().nth(1), Some("2023-11-14T22:13:20"));
    assert!(!manifest.contains("README"), "only the pinned subpaths of agnos-builder enter the image");
    assert_device_layout(&raw, &manifest);

    // Provenance beside the output link: the image by sha256, the pinned inputs.
    let provenance = dir.path().join("store-a/alpine.provenance.json");
    let statement: serde_json::Value = serde_json::from_slice(&std::fs::read(&provenance).unwrap()).unwrap();
    let image_sha = stdout(&run_ok(forge(dir.path()).args(["hash", "file", "--hex"]).arg(out.join("system.img"))));
    assert!(
        statement["subject"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "system.img" && s["digest"]["sha256"] == image_sha.as_str()),
        "{statement}"
    );
    assert!(statement.to_string().contains("alpine-minirootfs-fixture.tar.gz"), "{statement}");

    assert!(statement.to_string().contains("system.spdx.json"), "the SBOM is a subject too: {statement}");
    check_sbom(&out.join("system.spdx.json"), &image_sha);

    // Another store at another path: the same bytes, and the same provenance.
    let again = build(&release, &mirror, &dir.path().join("elsewhere/store-b"));
    assert_eq!(std::fs::read(out.join("system.img")).unwrap(), std::fs::read(again.join("system.img")).unwrap());
    assert_eq!(
        std::fs::read(out.join("system.spdx.json")).unwrap(),
        std::fs::read(again.join("system.spdx.json")).unwrap()
    );
    assert_eq!(
        std::fs::read(&provenance).unwrap(),
        std::fs::read(dir.path().join("elsewhere/store-b/alpine.provenance.json")).unwrap()
    );
}

/// The line of `path` in the manifest.
fn manifest_line<'a>(manifest: &'a str, path: &str) -> &'a str {
    manifest.lines().find(|l| l.split(' ').next() == Some(path)).unwrap_or_else(|| panic!("{path} not in:\n{manifest}"))
}

/// Git LFS objects, configuration files and the read-only root, as the image holds them.
fn assert_device_layout(raw: &Path, manifest: &str) {
    // The installed pointer is its object now, mode kept; the pinned-only one is absent.
    assert_eq!(debugfs(raw, "cat /usr/comma/setup").as_bytes(), SETUP_OBJECT.trim_ascii_end());
    // The object keeps its pointer's mode: that of every program copied from the store.
    let mode = |path: &str| manifest_line(manifest, path).split(' ').nth(2).unwrap().to_owned();
    assert_eq!(mode("/usr/comma/setup"), mode("/usr/comma/magic.py"));
    // Copies out of the store have git's modes again, not the store's 0555/0444.
    assert_eq!(mode("/usr/comma/magic.py"), "0755");
    assert_eq!(mode("/usr/comma/sound"), "0755");
    assert_eq!(mode("/etc/fstab"), "0644");
    assert!(manifest_line(manifest, "/usr/comma/setup").contains(&format!(" size={} ", SETUP_OBJECT.len())));
    assert!(!manifest.contains("weston"), "{manifest}");
    let fstab = debugfs(raw, "cat /etc/fstab");
    assert!(fstab.contains("# forge: dropped x-systemd.makefs"), "{fstab}");
    assert!(fstab.contains("/dev/disk/by-partlabel/cache /cache ext4 relatime,discard 0 0"), "{fstab}");
    for rule in ["/etc/udev/rules.d/95-gpu.rules", "/etc/udev/rules.d/96-i2c.rules"] {
        assert!(manifest_line(manifest, rule).contains(" file 0644 0 0 "), "{rule}");
    }
    assert!(!manifest.contains("/etc/udev/rules.d/comma-polkit.rules"), "polkit's JavaScript is not a udev rule");
    manifest_line(manifest, "/etc/polkit-1/rules.d/comma-polkit.rules");
    assert!(debugfs(raw, "cat /etc/ssh/sshd_config").contains("Subsystem sftp /usr/lib/ssh/sftp-server"));
    assert!(debugfs(raw, "cat /etc/NetworkManager/NetworkManager.conf").contains("\ndns=default\nrc-manager=symlink"));
    let lte = "/usr/lib/NetworkManager/system-connections/lte.nmconnection";
    assert!(manifest_line(manifest, lte).contains(" file 0600 0 0 "));
    for (link, target) in [
        ("/etc/resolv.conf", "/run/NetworkManager/resolv.conf"),
        ("/etc/localtime", "/data/etc/localtime"),
        ("/etc/NetworkManager/system-connections", "/data/etc/NetworkManager/system-connections"),
    ] {
        assert!(manifest_line(manifest, link).ends_with(&format!("target={target}")), "{link}");
    }
    // /var and /home live in /usr/default; the mount points are empty directories.
    assert!(manifest_line(manifest, "/usr/default/home/comma").contains(" dir 0755 1000 1000"));
    manifest_line(manifest, "/usr/default/var/log");
    assert!(!manifest.lines().any(|l| l.starts_with("/var/") || l.starts_with("/home/")), "{manifest}");
    assert!(manifest_line(manifest, "/data").contains(" dir 0755 1000 1000"));
    assert!(manifest_line(manifest, "/tmp").contains(" dir 1777 0 0"));
    for point in ["/persist", "/firmware", "/dsp", "/cache", "/systemrw", "/config", "/rwtmp"] {
        manifest_line(manifest, point);
    }
}

/// Rewrites the release's `lfs` pins and builds, expecting failure; returns stderr.
fn build_fails_with_pins(pins: serde_json::Value) -> String {
    let dir = tempfile::tempdir().unwrap();
    let release = fixture(dir.path());
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&release).unwrap()).unwrap();
    json["lfs"] = pins;
    std::fs::write(&release, json.to_string()).unwrap();
    let out = example(&dir.path().join("store"))
        .env("FORGE_ALPINE_FIXTURE", &release)
        .args(["build", "alpine-fixture", "--offline", "--mirror"])
        .arg(dir.path().join("mirror"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "the build passed with pins {json}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_lfs_pointer_without_a_pin_fails_the_build_naming_the_row_to_add() {
    if !have_tool("git") {
        return;
    }
    let pins =
        lfs_pins().as_array().unwrap().iter().filter(|p| p["path"] != "userspace/files/weston").cloned().collect();
    let err = build_fails_with_pins(serde_json::Value::Array(pins));
    let weston = b"an armhf weston the image leaves out\n";
    let row = format!("add the row (\"userspace/files/weston\", \"{}\", {})", sha256_hex(weston), weston.len());
    assert!(err.contains(&row), "{err}");
}

#[test]
fn an_lfs_pin_that_disagrees_with_the_pinned_pointer_fails_the_build() {
    if !have_tool("git") {
        return;
    }
    let mut pins = lfs_pins();
    pins[1]["size"] = serde_json::json!(SETUP_OBJECT.len() + 1);
    let err = build_fails_with_pins(pins);
    assert!(err.contains("userspace/usr/comma/setup: the checkout's Git LFS pointer names oid"), "{err}");
    assert!(
        err.contains(&format!("update the row to (\"userspace/usr/comma/setup\", \"{}\"", sha256_hex(SETUP_OBJECT)))
    );
}

/// Debian's openrc unpacked by .ci/setup.d/openrc.sh (never installed on the host).
fn openrc_root() -> Option<std::path::PathBuf> {
    let root = std::env::var_os("FORGE_OPENRC_ROOT")
        .map_or_else(|| std::path::PathBuf::from("/var/cache/forge-openrc"), std::path::PathBuf::from);
    if root.join("sbin/openrc").is_file() && root.join("lib/x86_64-linux-gnu/librc.so.1").is_file() {
        Some(root)
    } else {
        eprintln!("SKIP: {} has no unpacked openrc; run .ci/setup.d/openrc.sh", root.display());
        None
    }
}

/// A layer with the host's glibc libraries that Debian's OpenRC binaries load (the
/// image is musl-less busybox here, and OpenRC is Debian's build), found with ldd.
fn glibc_layer(openrc: &Path, layer: &Path) {
    let libs = layer.join("lib/x86_64-linux-gnu");
    std::fs::create_dir_all(&libs).unwrap();
    std::fs::create_dir_all(layer.join("lib64")).unwrap();
    for dir in ["sbin", "bin", "lib/rc/bin", "lib/rc/sbin"] {
        for exe in std::fs::read_dir(openrc.join(dir)).unwrap() {
            let out = Command::new("ldd")
                .arg(exe.unwrap().path())
                .env("LD_LIBRARY_PATH", openrc.join("lib/x86_64-linux-gnu"))
                .output()
                .unwrap();
            for lib in String::from_utf8_lossy(&out.stdout).split_whitespace().filter(|w| w.starts_with("/lib")) {
                let name = Path::new(lib).file_name().unwrap();
                let dest = if lib.starts_with("/lib64/") { layer.join("lib64").join(name) } else { libs.join(name) };
                if !dest.exists() && !lib.contains("librc") && !lib.contains("libeinfo") {
                    std::fs::copy(lib, dest).unwrap();
                }
            }
        }
    }
}

/// What `forge sandbox` cannot give and the boot test changes, on a layer above the
/// image: the sandbox maps one uid (0) and denies setgroups, so every user of the
/// image becomes uid/gid 0 (checkpath's chown to comma works) and magic's script
/// loses its `command_user` line (supervise-daemon's setgroups would fail); Debian's
/// OpenRC reads /etc/insserv.conf; `localmount` is Alpine openrc's (not Debian's),
/// so a stand-in marks the sandbox's mounts as done.
fn sandbox_layer(image: &Path, layer: &Path) {
    let etc = layer.join("etc");
    std::fs::create_dir_all(etc.join("init.d")).unwrap();
    let zero_ids = |file: &str, id_fields: &[usize]| {
        let text = std::fs::read_to_string(image.join("etc").join(file)).unwrap();
        let lines: Vec<String> = text
            .lines()
            .map(|l| {
                let mut f: Vec<&str> = l.split(':').collect();
                for &i in id_fields {
                    if i < f.len() {
                        f[i] = "0";
                    }
                }
                f.join(":")
            })
            .collect();
        std::fs::write(etc.join(file), lines.join("\n") + "\n").unwrap();
    };
    zero_ids("passwd", &[2, 3]);
    zero_ids("group", &[2]);
    let magic = std::fs::read_to_string(image.join("etc/init.d/magic")).unwrap();
    assert!(magic.contains("command_user=\"comma\"\n"), "{magic}");
    std::fs::write(etc.join("init.d/magic"), magic.replace("command_user=\"comma\"\n", "")).unwrap();
    std::fs::write(etc.join("init.d/localmount"), "#!/sbin/openrc-run\ndescription=\"stand-in\"\nstart() { :; }\n")
        .unwrap();
    for script in ["magic", "localmount"] {
        std::fs::set_permissions(etc.join("init.d").join(script), std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    std::fs::write(etc.join("insserv.conf"), "").unwrap();
}

/// The smoke test: the image's own tree (dumped from system.img) boots
/// with Debian's real OpenRC under `forge sandbox`: sysinit, boot, default start
/// the converted services and magic, which writes /var/log/magic.log.
#[test]
fn the_fixture_image_boots_openrc_in_the_sandbox_and_magic_writes_its_log() {
    let tools = ["git", "debugfs", "simg2img", "ldd"];
    if !tools.iter().all(|t| have_tool(t)) || !Path::new("/bin/busybox").is_file() {
        return;
    }
    let Some(openrc) = openrc_root() else { return };
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: debugfs rdump keeps the image's owners only as root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let release = fixture(dir.path());
    let out = build(&release, &dir.path().join("mirror"), &dir.path().join("store"));
    let raw = dir.path().join("system.raw");
    run_ok(Command::new("simg2img").arg(out.join("system.img")).arg(&raw));
    let image = dir.path().join("image");
    std::fs::create_dir(&image).unwrap();
    run_ok(Command::new("debugfs").arg("-R").arg(format!("rdump / {}", image.display())).arg(&raw));
    let (glibc, adapt) = (dir.path().join("glibc"), dir.path().join("adapt"));
    glibc_layer(&openrc, &glibc);
    sandbox_layer(&image, &adapt);
    // The runtime mounts: /run, tmpfs /var with Alpine bootmisc's /var/run link, /data.
    let (run, var, data) = (dir.path().join("run"), dir.path().join("var"), dir.path().join("data"));
    for d in [&run, &var.join("log"), &data] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::os::unix::fs::symlink("/run", var.join("run")).unwrap();
    let script = "export PATH=/sbin:/bin:/usr/sbin:/usr/bin; openrc sysinit >/dev/null 2>&1; openrc boot; \
        openrc default; for i in $(seq 1 50); do grep -q up /var/log/magic.log 2>/dev/null && break; sleep 0.2; done; \
        echo @@status; rc-status default; echo @@log; cat /var/log/magic.log";
    let mut cmd = forge(dir.path());
    cmd.arg("sandbox");
    for layer in [&glibc, &openrc, &image, &adapt] {
        cmd.arg("--root").arg(layer);
    }
    for (host, inside) in [(&run, "/run"), (&var, "/var"), (&data, "/data")] {
        cmd.arg("--rw").arg(format!("{}:{inside}", host.display()));
    }
    let out = run_ok(cmd.args(["--timeout", "60", "--", "/bin/sh", "-c", script]));
    let text = format!("{}\nstderr:\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let status = text.split("@@status\n").nth(1).unwrap().split("@@log").next().unwrap();
    for svc in ["magic", "sound"] {
        let line = status.lines().find(|l| l.split_whitespace().next() == Some(svc));
        assert!(line.is_some_and(|l| l.contains("started")), "{svc} not started:\n{text}");
    }
    let log = std::fs::read_to_string(var.join("log/magic.log")).unwrap();
    assert_eq!(log, "magic: up as root, profile=yes\n", "{text}");
    assert!(data.join("misc/display").is_dir(), "magic's pre-step ran");
}

/// The image's SPDX document: valid for the SPDX project's validator, describing the
/// image by its sha256, containing the minirootfs' apks, generated from the pins.
fn check_sbom(path: &Path, image_sha: &str) {
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    if let Some(tool) = pyspdxtools() {
        let out = Command::new(tool).arg("-i").arg(path).output().unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(doc["creationInfo"]["created"], "2023-11-14T22:13:20Z", "SOURCE_DATE_EPOCH of the release");
    let packages = doc["packages"].as_array().unwrap();
    let named = |name: &str| packages.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{name}: {doc}"));
    let image = named("system");
    assert_eq!(image["versionInfo"], "0.0-fixture");
    assert_eq!(image["checksums"][0]["checksumValue"], image_sha);
    let baselayout = named("alpine-baselayout");
    assert_eq!(baselayout["versionInfo"], "3.2.0-r23");
    assert_eq!(baselayout["licenseDeclared"], "GPL-2.0-only");
    assert_eq!(baselayout["homepage"], "https://git.alpinelinux.org/cgit/aports/tree/main/alpine-baselayout");
    // C:Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc= in hex.
    assert_eq!(baselayout["checksums"][0]["checksumValue"], "2cbab6a8336b4bfa919e1c50de1b18fec1db4277");
    assert_eq!(named("musl")["licenseDeclared"], "MIT");
    let minirootfs = named("alpine-minirootfs-x86_64.tar.gz");
    assert!(minirootfs["comment"]
        .as_str()
        .unwrap()
        .contains("https://fixture.invalid/alpine-minirootfs-fixture.tar.gz"));
    assert_eq!(minirootfs["checksums"][0]["algorithm"], "SHA256");
    assert!(named("agnos-builder-userspace")["versionInfo"].as_str().unwrap().len() == 40, "the pinned commit");
    let relations: Vec<String> = doc["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["spdxElementId"].as_str().unwrap(),
                r["relationshipType"].as_str().unwrap(),
                r["relatedSpdxElement"].as_str().unwrap()
            )
        })
        .collect();
    let id = |p: &serde_json::Value| p["SPDXID"].as_str().unwrap().to_owned();
    assert!(relations.contains(&format!("SPDXRef-DOCUMENT DESCRIBES {}", id(image))), "{relations:?}");
    assert!(relations.contains(&format!("{} CONTAINS {}", id(image), id(baselayout))), "{relations:?}");
    assert!(relations.contains(&format!("{} GENERATED_FROM {}", id(image), id(minirootfs))), "{relations:?}");
}

/// `forge store ls` then `store info --json` of each path: path -> NAR hash.
fn nar_hashes(list: &mut Command, info: impl Fn(&str) -> Command) -> std::collections::BTreeMap<String, String> {
    let paths = stdout(&run_ok(list));
    paths
        .lines()
        .map(|p| {
            let out = run_ok(&mut info(p));
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            (p.to_owned(), v["narHash"].as_str().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn root_and_an_unprivileged_user_with_stores_at_different_paths_build_identical_nars_and_image_bytes() {
    use forge_tests::sandbox::{open_up, uid_of, TEST_USER};
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: not root; this test runs one build as root and one as {TEST_USER}");
        return;
    }
    let Some(uid) = uid_of(TEST_USER) else {
        eprintln!("SKIP: user {TEST_USER} does not exist (.ci/run creates it with useradd)");
        return;
    };
    if !(have_tool("git") && have_tool("setpriv") && have_tool("nix-hash")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    open_up(dir.path());
    let release = fixture(dir.path());
    let mirror = dir.path().join("mirror");
    let root_out = build(&release, &mirror, &dir.path().join("root-store"));

    // The user's world: its own home, store (elsewhere), forge binary and a clone of
    // the repository (git refuses repositories other users own).
    let home = dir.path().join("users/forge-test/home");
    let store = home.join("deeper/store");
    std::fs::create_dir_all(&store).unwrap();
    let bin = home.join("forge-example");
    std::fs::copy(example_bin(), &bin).unwrap();
    let clone = home.join("agnos-builder");
    run_ok(Command::new("cp").arg("-a").arg(dir.path().join("agnos-builder")).arg(&clone));
    for d in [dir.path().join("users"), dir.path().join("users/forge-test")] {
        open_up(&d);
    }
    run_ok(Command::new("chown").arg("-R").arg(format!("{uid}:{uid}")).arg(&home));
    let repo_url = dir.path().join("agnos-builder").display().to_string();
    let as_user = |args: &[&std::ffi::OsStr]| {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid", TEST_USER, "--regid", TEST_USER, "--clear-groups"]).arg(&bin).arg("--store").arg(&store);
        cmd.args(args).env("HOME", &home).env("FORGE_CONFIG", home.join("no-config"));
        cmd.env_remove("FORGE_STORE").env_remove("FORGE_MIRRORS").env_remove("FORGE_SIGNING_KEY");
        cmd.env("FORGE_ALPINE_FIXTURE", &release).env("FORGE_GIT_MIRRORS", format!("{repo_url}={}", clone.display()));
        cmd
    };
    let out_link = home.join("alpine");
    let os = |s: &str| std::ffi::OsString::from(s);
    let build_args = [
        os("build"),
        os("alpine-fixture"),
        os("--offline"),
        os("--mirror"),
        mirror.clone().into(),
        os("--out"),
        out_link.clone().into(),
    ];
    let refs: Vec<&std::ffi::OsStr> = build_args.iter().map(|a| a.as_os_str()).collect();
    let user_out = std::path::PathBuf::from(stdout(&run_ok(&mut as_user(&refs))));
    assert_ne!(user_out, root_out, "two physical stores");
    assert_eq!(user_out.file_name(), root_out.file_name(), "one logical store path");
    assert_eq!(std::fs::metadata(&user_out).unwrap().uid(), uid, "the user's build wrote the user's store");

    // Every path of both stores has the same NAR hash, and nix-hash agrees on the image.
    let root_store = dir.path().join("root-store");
    let mine = nar_hashes(example(&root_store).args(["store", "ls"]), |p| {
        let mut c = example(&root_store);
        c.args(["store", "info", "--json", p]);
        c
    });
    let theirs = nar_hashes(&mut as_user(&[os("store").as_os_str(), os("ls").as_os_str()]), |p| {
        as_user(&[os("store").as_os_str(), os("info").as_os_str(), os("--json").as_os_str(), os(p).as_os_str()])
    });
    assert!(mine.len() >= 4, "{mine:?}");
    assert_eq!(mine, theirs);
    assert_eq!(nix_hash(&root_out), nix_hash(&user_out));
    for file in ["system.img", "system.manifest", "system.spdx.json"] {
        assert_eq!(std::fs::read(root_out.join(file)).unwrap(), std::fs::read(user_out.join(file)).unwrap(), "{file}");
    }
}

/// `(name, version, depends, provides, install_if)` of the fixture repository: chrony has
/// an older version beside it, chrony-openrc joins by install_if, `unused` is not wanted.
const PACKAGES: &[(&str, &str, &str, &str, &str)] = &[
    ("musl", "1.2.5-r0", "", "so:libc.musl-x86_64.so.1=1", ""),
    ("openrc", "0.54-r1", "so:libc.musl-x86_64.so.1", "", ""),
    ("chrony", "4.4-r0", "so:libc.musl-x86_64.so.1", "", ""),
    ("chrony", "4.5-r0", "so:libc.musl-x86_64.so.1", "", ""),
    ("chrony-openrc", "4.5-r0", "", "", "openrc chrony=4.5-r0"),
    ("unused", "1.0-r0", "", "", ""),
];

/// chrony's pre-install script, as Alpine's (carried out declaratively by forge).
const CHRONY_PRE_INSTALL: &str = "#!/bin/sh\naddgroup -S chrony 2>/dev/null\n\
    adduser -S -D -H -h /var/lib/chrony -s /sbin/nologin -G chrony -g chrony chrony 2>/dev/null\nexit 0\n";

/// One apk of the fixture repository, signed with the openssl-made key.
fn fixture_apk(key: &forge_engine::apk::sign::SigningKey, p: &(&str, &str, &str, &str, &str)) -> Vec<u8> {
    use forge_engine::apk::{build, dep::Dep, package, pkginfo::PkgInfo, tarball::Kind};
    let (name, version, depends, provides, install_if) = *p;
    let deps = |s: &str| s.split_whitespace().map(|d| Dep::parse(d, "fixture").unwrap()).collect();
    let info = PkgInfo {
        name: name.into(),
        version: version.into(),
        arch: "x86_64".into(),
        description: format!("{name}, a fixture"),
        license: "MIT".into(),
        depends: deps(depends),
        provides: deps(provides),
        install_if: deps(install_if),
        ..PkgInfo::default()
    };
    let dir = if name == "chrony-openrc" { "etc/init.d" } else { "usr/share/fixture" };
    let file_name = if name == "chrony-openrc" { "chronyd".to_owned() } else { name.to_owned() };
    let mut entries: Vec<build::BuildEntry> = Vec::new();
    let mut at = String::new();
    for part in dir.split('/') {
        at = if at.is_empty() { part.to_owned() } else { format!("{at}/{part}") };
        entries.push(build::BuildEntry::new(&at, Kind::Dir, 0o755, b""));
    }
    let content = format!("{name} {version}\n");
    entries.push(build::BuildEntry::new(&format!("{dir}/{file_name}"), Kind::File, 0o755, content.as_bytes()));
    let scripts = if name == "chrony" {
        vec![package::Script { kind: package::ScriptKind::PreInstall, content: CHRONY_PRE_INSTALL.as_bytes().to_vec() }]
    } else {
        vec![]
    };
    build::build(&entries, &info, &scripts, key, &build::BuildOptions::default()).unwrap()
}

/// Serves a signed repository at `/alpine/v3.20/main` and returns its URL and the apks
/// by file name.
#[allow(clippy::type_complexity)]
fn serve_repository(
    srv: &TestServer,
    private_pem: &str,
    public_pem: &str,
) -> (String, Vec<(String, Vec<u8>)>, Vec<u8>) {
    use forge_engine::apk::{index, keys::Keys, keys::SigAlgo, package, sign::SigningKey};
    let key = SigningKey::from_pem(private_pem, KEY_NAME, Path::new("fixture.rsa")).unwrap();
    let keys_dir = tempfile::tempdir().unwrap();
    std::fs::write(keys_dir.path().join(KEY_NAME), public_pem).unwrap();
    let keys = Keys::open(keys_dir.path()).unwrap();
    let mut records = Vec::new();
    let mut files = Vec::new();
    for p in PACKAGES {
        let bytes = fixture_apk(&key, p);
        records.push(index::IndexPackage::from_apk(&package::read(&bytes, p.0, &keys).unwrap()).unwrap());
        let file = format!("{}-{}.apk", p.0, p.1);
        srv.route(&format!("/alpine/v3.20/main/x86_64/{file}"), Route::Body(bytes.clone()));
        files.push((file, bytes));
    }
    let apkindex = index::write(&records, "fixture main", &key, SigAlgo::RsaSha1, 0).unwrap();
    srv.route("/alpine/v3.20/main/x86_64/APKINDEX.tar.gz", Route::Body(apkindex.clone()));
    (srv.url("/alpine/v3.20/main"), files, apkindex)
}

/// The release JSON with a package world added (and `edit` applied).
fn with_world(release: &Path, repository: &str, lock: &Path, edit: impl Fn(&mut serde_json::Value)) -> PathBuf {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(release).unwrap()).unwrap();
    v["repositories"] = serde_json::json!([repository]);
    v["world"] = serde_json::json!(["openrc", "chrony"]);
    v["lock_file"] = serde_json::json!(lock.display().to_string());
    edit(&mut v);
    let n = std::fs::read_dir(release.parent().unwrap()).unwrap().count();
    let file = release.with_file_name(format!("release-{n}.json"));
    std::fs::write(&file, v.to_string()).unwrap();
    file
}

fn example_with(release: &Path, store: &Path, args: &[&str]) -> std::process::Output {
    example(store).env("FORGE_ALPINE_FIXTURE", release).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn forge_lock_pins_a_signed_served_world_and_the_offline_build_installs_exactly_the_lock() {
    if !(have_tool("git") && have_tool("e2fsck") && have_tool("simg2img") && have_tool("debugfs")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some((private_pem, public_pem)) = openssl_key(dir.path()) else { return };
    let base_release = fixture_with_key(dir.path(), Some(&public_pem));
    let srv = TestServer::start();
    let (repo, files, good_index) = serve_repository(&srv, &private_pem, &public_pem);
    let lock = dir.path().join("locks/alpine-fixture-x86_64.lock");
    let release = with_world(&base_release, &repo, &lock, |_| {});
    let store = dir.path().join("store");
    let mirror = dir.path().join("mirror");
    let mirror_arg = mirror.to_str().unwrap();

    // Before any lock: composed without the world, and said so in one line.
    let out = example_with(&release, &store, &["show", "alpine-fixture"]);
    let note = "note: alpine-fixture: package world alpine-fixture-x86_64 is not locked";
    assert!(text(&out.stderr).contains(note) && text(&out.stderr).contains("run `forge lock alpine-fixture`"));

    // The lock: the highest chrony, its install_if companion, what they need, by sha256.
    let out = example_with(&release, &store, &["lock", "alpine-fixture", "--mirror", mirror_arg]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(summary.contains("alpine-fixture-x86_64: 4 packages") && summary.contains("a new lock"), "{summary}");
    assert!(text(&out.stderr).contains(&format!("signed by {KEY_NAME}")), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&lock).unwrap();
    let rows: Vec<Vec<&str>> =
        written.lines().filter(|l| !l.starts_with('#')).map(|l| l.split('\t').collect()).collect();
    let names: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[1])).collect();
    assert_eq!(names, [("chrony", "4.5-r0"), ("chrony-openrc", "4.5-r0"), ("musl", "1.2.5-r0"), ("openrc", "0.54-r1")]);
    for r in &rows {
        let file = format!("{}-{}.apk", r[0], r[1]);
        let bytes = &files.iter().find(|(f, _)| *f == file).unwrap().1;
        let sha = stdout(&run_ok(Command::new("sha256sum").arg(write_temp(dir.path(), bytes))));
        let sha = sha.split_whitespace().next().unwrap().to_owned();
        assert_eq!(
            (r[3], r[5], r[6], r[7]),
            (repo.as_str(), sha.as_str(), &*bytes.len().to_string(), &*format!("{repo}/x86_64/{file}"))
        );
    }
    assert!(written.contains("# world: openrc chrony\n"), "{written}");

    // Again: byte-identical, nothing changed.
    let out = example_with(&release, &store, &["lock", "alpine-fixture", "--mirror", mirror_arg]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("unchanged in") && text(&out.stdout).contains("no package changed"));
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), written);

    // A tampered index is refused; the lock stays as it was.
    let index_path = "/alpine/v3.20/main/x86_64/APKINDEX.tar.gz";
    let mut bad = good_index.clone();
    let at = bad.len() - 50;
    bad[at] ^= 0x08;
    srv.route(index_path, Route::Body(bad));
    let out = example_with(&release, &store, &["lock", "alpine-fixture", "--mirror", mirror_arg]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("APKINDEX.tar.gz"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), written);
    srv.route(index_path, Route::Body(good_index));

    // An unsatisfiable world names the chain; an unreachable repository names the URL.
    let unsat = with_world(&base_release, &repo, &lock, |v| v["world"] = serde_json::json!(["openrc", "nosuch>=1"]));
    let out = example_with(&unsat, &store, &["lock", "alpine-fixture", "--mirror", mirror_arg]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("world -> nosuch>=1: no package has or provides that name"));
    let gone = with_world(&base_release, &srv.url("/gone"), &lock, |_| {});
    let out = example_with(&gone, &store, &["lock", "alpine-fixture", "--mirror", mirror_arg]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("/gone/x86_64/APKINDEX.tar.gz: not found"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), written);

    // Vendor what the lock pins, then build with no network: the packages are installed.
    let vendored = dir.path().join("vendored");
    let out = example_with(
        &release,
        &store,
        &["vendor", "alpine-fixture", vendored.to_str().unwrap(), "--mirror", mirror_arg],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run_ok(
        example(&store)
            .env("FORGE_ALPINE_FIXTURE", &release)
            .args(["build", "alpine-fixture", "--offline", "--mirror", vendored.to_str().unwrap(), "--out"])
            .arg(dir.path().join("out")),
    );
    assert!(!text(&out.stderr).contains("not locked"), "{}", text(&out.stderr));
    let image = PathBuf::from(stdout(&out)).join("system.img");
    let raw = dir.path().join("system.raw");
    run_ok(Command::new("simg2img").arg(&image).arg(&raw));
    run_ok(Command::new("e2fsck").arg("-fn").arg(&raw));
    let installed = debugfs(&raw, "cat /lib/apk/db/installed");
    for (name, version) in names {
        assert!(installed.contains(&format!("P:{name}\nV:{version}\n")), "{name} missing:\n{installed}");
    }
    assert!(!installed.contains("P:unused") && !installed.contains("V:4.4-r0"), "{installed}");
    assert_eq!(debugfs(&raw, "cat /etc/init.d/chronyd"), "chrony-openrc 4.5-r0");
    assert!(debugfs(&raw, "cat /etc/passwd").contains("chrony:x:"), "the pre-install script's user");
    assert!(debugfs(&raw, "cat /etc/apk/world").contains("chrony"));
    assert!(debugfs(&raw, "cat /etc/apk/repositories").contains(&repo));
    assert!(debugfs(&raw, "cat /etc/init.d/magic").contains("/var/log/magic.log"), "the rootfs ops still apply");

    // A world changed without locking again is refused, naming the command to run.
    let stale =
        with_world(&base_release, &repo, &lock, |v| v["world"] = serde_json::json!(["openrc", "chrony", "musl"]));
    let out = example_with(&stale, &store, &["build", "alpine-fixture", "--offline", "--mirror", mirror_arg]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("world adds musl") && text(&out.stderr).contains("run `forge lock alpine-fixture`")
    );
}

fn write_temp(dir: &Path, bytes: &[u8]) -> PathBuf {
    let file = dir.join("compare.bin");
    std::fs::write(&file, bytes).unwrap();
    file
}
