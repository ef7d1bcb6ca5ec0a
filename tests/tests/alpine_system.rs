//! alpine-system's recipe end to end on a fixture release: a generated minirootfs
//! and a local git repository standing in for agnos-builder, through the same
//! recipe code as the real pins, to an image that e2fsck accepts and that is
//! byte-identical when built twice.

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

    // Another store at another path: the same bytes, and the same provenance.
    let again = build(&release, &mirror, &dir.path().join("elsewhere/store-b"));
    assert_eq!(std::fs::read(out.join("system.img")).unwrap(), std::fs::read(again.join("system.img")).unwrap());
    assert_eq!(
        std::fs::read(&provenance).unwrap(),
        std::fs::read(dir.path().join("elsewhere/store-b/alpine.provenance.json")).unwrap()
    );
}
