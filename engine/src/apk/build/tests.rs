use super::*;
use crate::apk::dep::Dep;
use crate::apk::index::IndexPackage;
use crate::apk::package::{self, ScriptKind};
use crate::apk::testutil::*;

fn info(name: &str, version: &str) -> PkgInfo {
    PkgInfo {
        name: name.into(),
        version: version.into(),
        description: format!("{name} for tests"),
        url: "https://example.invalid/".into(),
        license: "MIT".into(),
        arch: "x86_64".into(),
        origin: Some(name.into()),
        maintainer: Some("Forge Tests <tests@example.invalid>".into()),
        build_date: Some(1_700_000_000),
        depends: Dep::parse_list("so:libc.musl-x86_64.so.1 /bin/sh", "t").unwrap(),
        provides: Dep::parse_list(&format!("cmd:{name}={version}"), "t").unwrap(),
        ..PkgInfo::default()
    }
}

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("usr/bin")).unwrap();
    std::fs::create_dir_all(p.join("etc")).unwrap();
    std::fs::write(p.join("usr/bin/hello"), b"#!/bin/sh\necho hello\n").unwrap();
    std::fs::set_permissions(p.join("usr/bin/hello"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(p.join("etc/hello.conf"), b"greeting=hi\n").unwrap();
    std::os::unix::fs::symlink("hello", p.join("usr/bin/hi")).unwrap();
    dir
}

fn scripts() -> Vec<Script> {
    vec![
        Script { kind: ScriptKind::PostInstall, content: b"#!/bin/sh\nexit 0\n".to_vec() },
        Script { kind: ScriptKind::PreInstall, content: b"#!/bin/sh\necho pre\n".to_vec() },
    ]
}

#[test]
fn built_apk_reads_back_verified_with_datahash_and_file_checksums() {
    let key = test_key();
    let t = tree();
    let bytes = build_from_dir(t.path(), &info("hello", "1.0-r0"), &scripts(), &key, &BuildOptions::default()).unwrap();
    let (_d, keys) = keys_dir(&[&key]);
    let apk = package::read(&bytes, "hello.apk", &keys).unwrap();
    assert_eq!(apk.signer.as_ref().unwrap().key_name, key.name);
    assert_eq!(apk.info.name, "hello");
    assert!(apk.info.datahash.is_some());
    let paths: Vec<_> = apk.files.iter().map(|f| f.path.trim_end_matches('/')).collect();
    assert_eq!(paths, ["etc", "etc/hello.conf", "usr", "usr/bin", "usr/bin/hello", "usr/bin/hi"]);
    assert_eq!(apk.file_checksums_verified, 3);
    assert_eq!(
        apk.scripts.iter().map(|s| s.kind).collect::<Vec<_>>(),
        [ScriptKind::PreInstall, ScriptKind::PostInstall]
    );
    let hello = apk.files.iter().find(|f| f.path == "usr/bin/hello").unwrap();
    assert_eq!(
        (hello.mode, hello.uname.as_str(), apk.content(hello)),
        (0o755, "root", &b"#!/bin/sh\necho hello\n"[..])
    );
    assert_eq!(apk.info.size, 21 + 12);
    // The index record made from it is what `apk index` would write.
    let rec = IndexPackage::from_apk(&apk).unwrap();
    assert_eq!(rec.checksum, apk.checksum);
    assert!(rec.to_text().starts_with(&format!(
        "C:{}\nP:hello\nV:1.0-r0\nA:x86_64\nS:{}\n",
        apk.checksum,
        bytes.len()
    )));
}

#[test]
fn builds_are_deterministic() {
    let key = test_key();
    let t = tree();
    let opts = BuildOptions { mtime: 1_700_000_000, algo: SigAlgo::RsaSha256 };
    let a = build_from_dir(t.path(), &info("hello", "1.0-r0"), &scripts(), &key, &opts).unwrap();
    let b = build_from_dir(t.path(), &info("hello", "1.0-r0"), &scripts(), &key, &opts).unwrap();
    assert_eq!(a, b);
}

#[test]
fn tampering_with_any_stream_of_a_built_apk_is_detected() {
    let key = test_key();
    let t = tree();
    let bytes = build_from_dir(t.path(), &info("hello", "1.0-r0"), &scripts(), &key, &BuildOptions::default()).unwrap();
    let (_d, keys) = keys_dir(&[&key]);
    let apk = package::read(&bytes, "hello.apk", &keys).unwrap();
    for range in &apk.streams {
        let mut bad = bytes.clone();
        bad[(range.start + range.end) / 2] ^= 0x01;
        assert!(package::read(&bad, "tampered", &keys).is_err(), "flip in {range:?} went unnoticed");
    }
    let (_d, wrong) = keys_dir_posing(&key.name, &other_key());
    assert!(matches!(package::read(&bytes, "x", &wrong), Err(Error::BadSignature { .. })));
}

#[test]
fn a_file_whose_content_disagrees_with_its_checksum_is_named() {
    // Re-sign a package whose data stream carries a wrong per-file checksum: the signature
    // and datahash then hold, and only the per-file check can catch it.
    let key = test_key();
    let mut e = BuildEntry::new("f", Kind::File, 0o644, b"real");
    let tar_ok = data_tar(&[&e], 0).unwrap();
    e.content = b"fake".to_vec();
    let tar_fake = data_tar(&[&e], 0).unwrap();
    // Splice the checksum record of "real" in front of the content "fake".
    let mut spliced = tar_ok.clone();
    let at = tar_fake.windows(4).position(|w| w == b"fake").unwrap();
    spliced[at..at + 4].copy_from_slice(b"fake");
    let data = streams::gzip(&spliced);
    let mut i = info("x", "1");
    i.datahash = Some(Sha256::digest(&data).into());
    let control = streams::gzip(&control_tar(&i, &[], 0).unwrap());
    let mut bytes = key.signature_stream(SigAlgo::RsaSha1, &control, 0).unwrap();
    bytes.extend_from_slice(&control);
    bytes.extend_from_slice(&data);
    let (_d, keys) = keys_dir(&[&key]);
    let err = package::read(&bytes, "x.apk", &keys).unwrap_err().to_string();
    assert!(err.contains("x.apk: f") && err.contains("APK-TOOLS.checksum.SHA1"), "{err}");
}

#[test]
fn traversal_paths_are_refused_when_building() {
    let e = BuildEntry::new("../etc/passwd", Kind::File, 0o644, &[]);
    let err = build(&[e], &info("x", "1"), &[], &test_key(), &BuildOptions::default()).unwrap_err();
    assert!(err.to_string().contains("../etc/passwd"));
}

#[test]
fn gnu_tar_lists_the_concatenated_streams_and_openssl_verifies_the_signature() {
    if !forge_have_tool("tar") || !forge_have_tool("openssl") {
        return;
    }
    let key = test_key();
    let t = tree();
    let bytes = build_from_dir(t.path(), &info("hello", "1.0-r0"), &scripts(), &key, &BuildOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let apk_path = dir.path().join("hello-1.0-r0.apk");
    std::fs::write(&apk_path, &bytes).unwrap();
    let out = std::process::Command::new("tar").arg("-tzf").arg(&apk_path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listing = String::from_utf8_lossy(&out.stdout);
    let names: Vec<_> = listing.lines().collect();
    assert_eq!(names[0], format!(".SIGN.RSA.{}", key.name));
    assert_eq!(names[1..4], [".PKGINFO", ".pre-install", ".post-install"]);
    assert!(names.contains(&"usr/bin/hello") && names.contains(&"usr/bin/hi"), "{listing}");
    // openssl checks the signature over the control stream as stored.
    let (_d, keys) = keys_dir(&[&key]);
    let apk = package::read(&bytes, "x", &keys).unwrap();
    std::fs::write(dir.path().join("control.gz"), &bytes[apk.streams[1].clone()]).unwrap();
    std::fs::write(dir.path().join("sig"), &apk.signatures[0].bytes).unwrap();
    std::fs::write(dir.path().join("key.pub"), key.public_key_pem()).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["dgst", "-sha1", "-verify", "key.pub", "-signature", "sig", "control.gz"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
