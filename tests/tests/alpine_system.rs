//! alpine-system's recipe end to end on a fixture release: a generated minirootfs
//! and a local git repository standing in for agnos-builder, through the same
//! recipe code as the real pins, to an image that e2fsck accepts and that is
//! byte-identical when built twice.

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

/// Writes the fixture release and returns its JSON path. With `key` (a public PEM), the
/// minirootfs trusts it in `/etc/apk/keys`, as Alpine's trusts Alpine's keys.
fn fixture(dir: &Path, key: Option<&str>) -> std::path::PathBuf {
    // A minirootfs: the files the recipe appends to, busybox, a few folders.
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, body: &[u8], mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(mode);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        tar.append_data(&mut h, path, body).unwrap();
    };
    add("etc/passwd", b"root:x:0:0:root:/root:/bin/ash\n", 0o644);
    add("etc/group", b"root:x:0:root\n", 0o644);
    add("etc/shadow", b"root:*::0:::::\n", 0o640);
    add("bin/busybox", b"\x7fELF stand-in for busybox", 0o755);
    if let Some(pem) = key {
        add(&format!("etc/apk/keys/{KEY_NAME}"), pem.as_bytes(), 0o644);
    }
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let mirror = dir.join("mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    std::fs::write(mirror.join("alpine-minirootfs-fixture.tar.gz"), gz.finish().unwrap()).unwrap();
    let sha = run_ok(forge(dir).args(["hash", "file", "--hex"]).arg(mirror.join("alpine-minirootfs-fixture.tar.gz")));

    // agnos-builder stand-in: a unit and comma's files.
    let repo = dir.join("agnos-builder");
    std::fs::create_dir_all(repo.join("userspace/files")).unwrap();
    std::fs::create_dir_all(repo.join("userspace/usr/comma/sound")).unwrap();
    std::fs::write(repo.join("userspace/files/sound.service"), UNIT.replace("\\n", "\n")).unwrap();
    std::fs::write(repo.join("userspace/usr/comma/magic.py"), "print('magic')\n").unwrap();
    std::fs::write(repo.join("userspace/usr/comma/sound/init.sh"), "#!/bin/sh\n").unwrap();
    std::fs::write(repo.join("README"), "not part of the image\n").unwrap();
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
        "agnos_nar_hash": nar, "image_size": "64M", "source_date_epoch": 1_700_000_000,
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
    let release = fixture(dir.path(), None);
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
    assert!(debugfs(&raw, "cat /etc/init.d/magic").contains("/var/log/magic.log"));
    assert_eq!(debugfs(&raw, "cat /BUILD").lines().nth(1), Some("2023-11-14T22:13:20"));
    assert!(!manifest.contains("README"), "only the pinned subpaths of agnos-builder enter the image");

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

    // Another store at another path: the same bytes, and the same provenance.
    let again = build(&release, &mirror, &dir.path().join("elsewhere/store-b"));
    assert_eq!(std::fs::read(out.join("system.img")).unwrap(), std::fs::read(again.join("system.img")).unwrap());
    assert_eq!(
        std::fs::read(&provenance).unwrap(),
        std::fs::read(dir.path().join("elsewhere/store-b/alpine.provenance.json")).unwrap()
    );
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
    let base_release = fixture(dir.path(), Some(&public_pem));
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
