//! alpine-system's recipe end to end on a fixture release: a generated minirootfs
//! and a local git repository standing in for agnos-builder, through the same
//! recipe code as the real pins, to an image that e2fsck accepts, with an SPDX bill
//! of materials the SPDX validator accepts, and that is byte-identical when built
//! twice: in two stores, and by root and by an unprivileged user.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

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

/// Writes the fixture release and returns its JSON path.
fn fixture(dir: &Path) -> std::path::PathBuf {
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
    add("lib/apk/db/installed", installed_db().as_bytes(), 0o644);
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
