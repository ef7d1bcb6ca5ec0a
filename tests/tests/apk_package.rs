//! Compiled outputs packaged as apks: the `apk-package` builtin keeps unsigned packages
//! in the store, `forge build --apk-key KEY.rsa` signs them into a repository beside the
//! output link. Oracles nobody here wrote: openssl verifies the signatures over the
//! control stream (split by flate2), sha1sum gives the `Q1` checksum, Debian's tar reads
//! the streams, readelf names what the program needs; the real Alpine fixtures give the
//! field order.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use forge_tests::*;

/// An RSA key pair as abuild-keygen makes it: `openssl genrsa`, public half `NAME.pub`.
fn openssl_rsa_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(name);
    let public = dir.join(format!("{name}.pub"));
    run_ok(Command::new("openssl").args(["genrsa", "-out"]).arg(&key).arg("2048"));
    run_ok(Command::new("openssl").args(["rsa", "-pubout", "-in"]).arg(&key).arg("-out").arg(&public));
    (key, public)
}

/// The gzip streams of a file as stored, split by flate2 (not forge's splitter).
fn gzip_streams(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let mut d = flate2::bufread::GzDecoder::new(rest);
        std::io::copy(&mut d, &mut std::io::sink()).unwrap();
        let left = d.into_inner().len();
        out.push(rest[..rest.len() - left].to_vec());
        rest = &rest[rest.len() - left..];
    }
    out
}

/// The entries (name, content) of a gzip'd tar stream that may lack end-of-archive.
fn tar_entries(gz: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(gz).read_to_end(&mut tar).unwrap();
    tar.extend_from_slice(&[0; 1024]);
    let mut archive = tar::Archive::new(&tar[..]);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut content = Vec::new();
            e.read_to_end(&mut content).unwrap();
            (e.path().unwrap().to_string_lossy().into_owned(), content)
        })
        .collect()
}

/// openssl's verdict on `sig` over `data` with `public`.
fn openssl_verifies(dir: &Path, digest: &str, public: &Path, sig: &[u8], data: &[u8]) -> bool {
    std::fs::write(dir.join("sig.bin"), sig).unwrap();
    std::fs::write(dir.join("data.bin"), data).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", digest, "-verify"])
        .arg(public)
        .args(["-signature", "sig.bin", "data.bin"])
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "Verified OK"
}

/// `Q1` + base64(sha1) of `data`, with sha1sum computing the digest.
fn q1_by_sha1sum(dir: &Path, data: &[u8]) -> String {
    std::fs::write(dir.join("q1.bin"), data).unwrap();
    let out = stdout(&run_ok(Command::new("sha1sum").arg(dir.join("q1.bin"))));
    let hex = out.split_whitespace().next().unwrap();
    let raw: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    format!("Q1{}", STANDARD.encode(raw))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `shared/fixtures/alpine` above this checkout (a worktree sits deeper than main).
fn fixtures() -> Option<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = here.ancestors().map(|a| a.join("shared/fixtures/alpine")).find(|p| p.is_dir());
    found.or_else(alpine_fixtures)
}

/// Builds apk-demo into `dir/o` (store `dir/store`) with `--apk-key key`.
fn build_demo(dir: &Path, mirror: &Path, key: &Path) -> Output {
    run_ok(
        example(&dir.join("store"))
            .args(["build", "apk-demo", "--offline", "--mirror"])
            .arg(mirror)
            .arg("--out")
            .arg(dir.join("o"))
            .arg("--apk-key")
            .arg(key),
    )
}

fn arch() -> &'static str {
    std::env::consts::ARCH
}

#[test]
fn build_with_an_apk_key_writes_a_signed_repository_that_openssl_tar_and_forge_accept() {
    let Some(mirror) = test_mirror() else { return };
    if !have_tool("openssl") || !have_tool("sha1sum") || !have_tool("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public) = openssl_rsa_key(d, "tester-5f0a1b2c.rsa");
    let out = build_demo(d, &mirror, &key);
    assert!(text(&out).contains("signed 2 apk(s) with tester-5f0a1b2c.rsa.pub"), "{}", text(&out));
    let repo = d.join("o.apks");
    let arch_dir = repo.join(arch());
    let names: Vec<String> = {
        let mut n: Vec<_> =
            std::fs::read_dir(&arch_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        n.sort();
        n
    };
    assert_eq!(names, ["APKINDEX.tar.gz", "apk-demo-1.0-r0.apk", "apk-demo-doc-1.0-r0.apk"]);
    let published = std::fs::read_to_string(repo.join("keys/tester-5f0a1b2c.rsa.pub")).unwrap();
    assert!(published.starts_with("-----BEGIN PUBLIC KEY-----"), "{published}");

    // A keys directory holding only openssl's public key, under abuild's name.
    let keys = d.join("trusted");
    std::fs::create_dir(&keys).unwrap();
    std::fs::copy(&public, keys.join("tester-5f0a1b2c.rsa.pub")).unwrap();

    let apk_path = arch_dir.join("apk-demo-1.0-r0.apk");
    let apk = std::fs::read(&apk_path).unwrap();
    let streams = gzip_streams(&apk);
    assert_eq!(streams.len(), 3, "signature, control, data");
    let sigs = tar_entries(&streams[0]);
    let sig_names: Vec<&str> = sigs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(sig_names, [".SIGN.RSA.tester-5f0a1b2c.rsa.pub", ".SIGN.RSA256.tester-5f0a1b2c.rsa.pub"]);
    assert!(openssl_verifies(d, "-sha1", &public, &sigs[0].1, &streams[1]), "RSA/SHA-1 over the control stream");
    assert!(openssl_verifies(d, "-sha256", &public, &sigs[1].1, &streams[1]), "RSA/SHA-256 over the control stream");
    assert!(!openssl_verifies(d, "-sha1", &public, &sigs[0].1, &streams[2]), "not over the data stream");

    // Debian's tar reads the concatenated streams as one archive.
    let listing = stdout(&run_ok(Command::new("tar").arg("-tzf").arg(&apk_path)));
    for want in [".PKGINFO", ".post-install", "usr/bin/apk-demo", "usr/bin/apk-demo-again", "etc/apk-demo.conf"] {
        assert!(listing.lines().any(|l| l.trim_end_matches('/') == want), "{want} in\n{listing}");
    }
    let pkginfo = stdout(&run_ok(Command::new("tar").arg("-xzOf").arg(&apk_path).arg(".PKGINFO")));
    for line in [
        "pkgname = apk-demo",
        "pkgver = 1.0-r0",
        "builddate = 1700000000",
        &format!("arch = {}", arch()),
        "origin = apk-demo",
        "depend = /bin/sh",
        "# automatically detected:",
        "provides = cmd:apk-demo=1.0-r0",
        "provides = cmd:apk-demo-again=1.0-r0",
    ] {
        assert!(pkginfo.lines().any(|l| l == line), "{line:?} in\n{pkginfo}");
    }
    assert!(!pkginfo.contains("so:"), "busybox is static: it needs no library\n{pkginfo}");
    if let Some(fx) = fixtures() {
        same_order_as_abuild(&pkginfo, &fx);
    }

    // forge's own reader verifies it with openssl's key.
    let inspect =
        run_ok(forge(&d.join("store")).args(["apk", "inspect", "--json", "--keys"]).arg(&keys).arg(&apk_path));
    let info: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(info["signer"]["key"], "tester-5f0a1b2c.rsa.pub");
    assert_eq!(info["verified"]["signature"], true);
    assert_eq!(info["scripts"], serde_json::json!(["post-install"]));

    // The index: signed, its records' C: is Q1 of the control stream by sha1sum, S: the size.
    let index_path = arch_dir.join("APKINDEX.tar.gz");
    let index_streams = gzip_streams(&std::fs::read(&index_path).unwrap());
    let index_sigs = tar_entries(&index_streams[0]);
    assert!(openssl_verifies(d, "-sha1", &public, &index_sigs[0].1, &index_streams[1]), "the index signature");
    let listed = run_ok(forge(&d.join("store")).args(["apk", "index", "--json", "--keys"]).arg(&keys).arg(&index_path));
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["description"], "apk-demo");
    let packages = listed["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 2);
    for p in packages {
        let file = arch_dir.join(format!("{}-{}.apk", p["name"].as_str().unwrap(), p["version"].as_str().unwrap()));
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(p["size"], bytes.len() as u64);
        assert_eq!(p["checksum"], q1_by_sha1sum(d, &gzip_streams(&bytes)[1]));
    }
    let doc = packages.iter().find(|p| p["name"] == "apk-demo-doc").unwrap();
    assert_eq!(
        (doc["arch"].as_str(), doc["install_if"].clone()),
        (Some("noarch"), serde_json::json!(["apk-demo=1.0-r0", "docs"]))
    );
    let raw_index = stdout(&run_ok(Command::new("tar").arg("-xzOf").arg(&index_path).arg("APKINDEX")));
    let letters: String = raw_index.split("\n\n").next().unwrap().lines().map(|l| &l[..1]).collect();
    assert_eq!(letters, "CPVASITULotDp", "apk-tools' record order\n{raw_index}");
}

/// The keys of our `.PKGINFO` appear in the order abuild wrote them in the real
/// alpine-baselayout package.
fn same_order_as_abuild(ours: &str, fixtures: &Path) {
    let apk = std::fs::read(fixtures.join("alpine-baselayout-3.2.0-r23-aarch64.apk")).unwrap();
    let control = tar_entries(&gzip_streams(&apk)[1]);
    let real = String::from_utf8(control.iter().find(|(n, _)| n == ".PKGINFO").unwrap().1.clone()).unwrap();
    let order = |text: &str| -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for l in text.lines() {
            let key =
                if l.starts_with("# automatically") { l.to_owned() } else { l.split(" = ").next().unwrap().into() };
            if (!l.starts_with("# ") || l.starts_with("# automatically")) && keys.last() != Some(&key) {
                keys.push(key);
            }
        }
        keys
    };
    let real = order(&real);
    let ours: Vec<String> = order(ours).into_iter().filter(|k| real.contains(k)).collect();
    let positions: Vec<usize> = ours.iter().map(|k| real.iter().position(|r| r == k).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "ours {ours:?} vs abuild's {real:?}");
}

#[test]
fn the_same_recipe_and_key_give_byte_identical_repositories_in_two_stores() {
    let Some(mirror) = test_mirror() else { return };
    if !have_tool("openssl") {
        return;
    }
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (key, _) = openssl_rsa_key(a.path(), "repro-1.rsa");
    build_demo(a.path(), &mirror, &key);
    build_demo(&b.path().join("elsewhere"), &mirror, &key);
    for file in ["APKINDEX.tar.gz", "apk-demo-1.0-r0.apk", "apk-demo-doc-1.0-r0.apk"] {
        let at = |root: &Path| std::fs::read(root.join("o.apks").join(arch()).join(file)).unwrap();
        assert_eq!(at(a.path()), at(&b.path().join("elsewhere")), "{file}");
    }
    // The store keeps the unsigned package; `forge apk sign` of it gives the same repository.
    let set = std::fs::read_link(a.path().join("o")).unwrap();
    let stored = store_copy(a.path(), &set.join("apk-demo-1.0-r0.apk"));
    assert_eq!(gzip_streams(&std::fs::read(&stored).unwrap()).len(), 2, "unsigned in the store");
    let doc = store_copy(a.path(), &set.join("apk-demo-doc-1.0-r0.apk"));
    let out = a.path().join("signed-by-hand");
    run_ok(
        forge(&a.path().join("store"))
            .args(["apk", "sign", "--key"])
            .arg(&key)
            .arg("--out")
            .arg(&out)
            .args(["--arch", arch(), "--description", "apk-demo"])
            .arg(&stored)
            .arg(&doc),
    );
    for file in ["APKINDEX.tar.gz", "apk-demo-1.0-r0.apk"] {
        let read = |root: &Path| std::fs::read(root.join(arch()).join(file)).unwrap();
        assert_eq!(read(&out), read(&a.path().join("o.apks")), "{file}");
    }
}

/// A set's link points at `/forge/store/NAME`: that file in the store root `dir/store`.
fn store_copy(dir: &Path, link: &Path) -> PathBuf {
    let logical = std::fs::read_link(link).unwrap();
    assert!(logical.starts_with("/forge/store"), "{}", logical.display());
    dir.join("store/store").join(logical.file_name().unwrap())
}

#[test]
fn a_bad_or_missing_key_stops_the_build_before_it_starts_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("garbage.rsa"), "not a key\n").unwrap();
    for (key, want) in [("garbage.rsa", "not a PEM RSA private key"), ("missing.rsa", "missing.rsa")] {
        let out = example(&d.join("store")).args(["build", "apk-demo", "--apk-key"]).arg(d.join(key)).output().unwrap();
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        assert!(text(&out).contains(want) && text(&out).contains("--apk-key"), "{}", text(&out));
        let built = std::fs::read_dir(d.join("store/store")).into_iter().flatten().count();
        assert_eq!(built, 0, "nothing was fetched or built");
    }
    if !have_tool("openssl") {
        return;
    }
    let (key, _) = openssl_rsa_key(d, "k.rsa");
    let out = example(&d.join("store"))
        .args(["build", "hello-text", "--out"])
        .arg(d.join("o"))
        .arg("--apk-key")
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("hello-text") && text(&out).contains("packages no apk"), "{}", text(&out));
    let sign = |args: &[&Path]| {
        let mut cmd = forge(&d.join("store"));
        cmd.args(["apk", "sign", "--out"]).arg(d.join("r")).args(args);
        cmd.output().unwrap()
    };
    let out = sign(&[&key]);
    assert_eq!(out.status.code(), Some(3), "no key: {}", text(&out));
    assert!(text(&out).contains("no apk signing key"), "{}", text(&out));
    let out = sign(&[Path::new("--key"), &key, &key]);
    assert_eq!(out.status.code(), Some(3), "a private key is no package: {}", text(&out));
    assert!(text(&out).contains("not the start of a gzip stream"), "{}", text(&out));
    assert!(!d.join("r").exists());
}

#[test]
fn a_build_without_the_key_removes_the_repository_of_an_earlier_signed_build() {
    let Some(mirror) = test_mirror() else { return };
    if !have_tool("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = openssl_rsa_key(dir.path(), "k.rsa");
    build_demo(dir.path(), &mirror, &key);
    assert!(dir.path().join("o.apks").is_dir());
    let out = run_ok(
        example(&dir.path().join("store"))
            .args(["build", "apk-demo", "--offline", "--mirror"])
            .arg(&mirror)
            .arg("--out")
            .arg(dir.path().join("o")),
    );
    assert!(!dir.path().join("o.apks").exists(), "{}", text(&out));
    assert!(text(&out).contains("pass --apk-key to sign them again"), "{}", text(&out));
}

/// GNU hello compiled by the bootstrap toolchain and packaged: the automatic scan names
/// exactly the libraries readelf says the program needs. Builds the toolchain's hello
/// (the same step `offline_build_of_gnu_hello...` builds).
#[test]
fn hello_apk_depends_on_exactly_the_libraries_readelf_names() {
    let Some(mirror) = test_mirror() else { return };
    if std::env::var_os("FORGE_TEST_HELLO_APK").is_none() {
        eprintln!("SKIP: set FORGE_TEST_HELLO_APK=1 to build GNU hello with the bootstrap toolchain and package it");
        return;
    }
    if !have_tool("openssl") || !have_tool("readelf") || !have_tool("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, _) = openssl_rsa_key(d, "hello-1.rsa");
    run_ok(
        forge(&d.join("store"))
            .args(["build", "hello-apk", "--offline", "--mirror"])
            .arg(&mirror)
            .arg("--out")
            .arg(d.join("o"))
            .arg("--apk-key")
            .arg(&key),
    );
    let apk = d.join("o.apks").join(arch()).join("hello-2.10-r0.apk");
    let x = d.join("x");
    std::fs::create_dir(&x).unwrap();
    run_ok(Command::new("tar").arg("-xzf").arg(&apk).arg("-C").arg(&x));
    let readelf = stdout(&run_ok(Command::new("readelf").arg("-d").arg(x.join("usr/bin/hello"))));
    let mut needed: Vec<String> = readelf
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(format!("so:{}", l.split('[').nth(1)?.trim_end_matches(']'))))
        .collect();
    needed.sort();
    let info = run_ok(
        forge(&d.join("store")).args(["apk", "inspect", "--json", "--keys"]).arg(d.join("o.apks/keys")).arg(&apk),
    );
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let depends: Vec<String> =
        info["depends"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    assert_eq!(depends, needed, "{readelf}");
    assert!(info["provides"].as_array().unwrap().contains(&serde_json::json!("cmd:hello=2.10-r0")));
}
