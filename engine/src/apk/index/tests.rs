use super::*;
use crate::apk::testutil::*;

const INDEX: &str = "APKINDEX-v3.16-main-x86_64.tar.gz";
const X86_64_KEY: &str = "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub";
const AARCH64_KEY: &str = "alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub";

fn fixture_keys(fx: &Path, from: &str, to: &str) -> (tempfile::TempDir, Keys) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fx.join(from), dir.path().join(to)).unwrap();
    let keys = Keys::open(dir.path()).unwrap();
    (dir, keys)
}

#[test]
fn real_v3_16_index_has_4929_packages_and_the_readme_facts() {
    let Some(fx) = alpine_fixtures() else { return };
    let (_d, keys) = fixture_keys(&fx, X86_64_KEY, X86_64_KEY);
    let index = read_file(&fx.join(INDEX), &keys).unwrap();
    assert_eq!(index.signer.unwrap().key_name, X86_64_KEY);
    assert_eq!(index.description.as_deref(), Some("v3.16.3-13-g4d933a1fa3"));
    assert_eq!(index.packages.len(), 4929);
    let base = index.packages.iter().find(|p| p.name == "alpine-baselayout").unwrap();
    assert_eq!(base.version, "3.2.0-r23");
    assert_eq!(base.size, 11136);
    assert_eq!(dep::join(&base.depends), "alpine-baselayout-data=3.2.0-r23 /bin/sh so:libc.musl-x86_64.so.1");
    assert_eq!(dep::join(&base.provides), "cmd:mkmntdirs=3.2.0-r23");
    assert!(index.packages.iter().all(|p| p.arch == "x86_64" || p.arch == "noarch"));
    let with_k = index.packages.iter().filter(|p| p.provider_priority.is_some()).count();
    assert_eq!(with_k, 72);
}

#[test]
fn real_index_text_round_trips_byte_for_byte() {
    let Some(fx) = alpine_fixtures() else { return };
    let bytes = std::fs::read(fx.join(INDEX)).unwrap();
    let parts = streams::split(&bytes, "t").unwrap();
    let entries = tarball::read(&parts[1].content, "t").unwrap();
    let apkindex = entries.iter().find(|e| e.path == "APKINDEX").unwrap();
    let text = std::str::from_utf8(tarball::content(&parts[1].content, apkindex)).unwrap();
    let packages = parse_text(text, "t").unwrap();
    assert_eq!(write_text(&packages), text);
}

#[test]
fn real_index_fails_with_another_key_under_its_name_or_without_its_key() {
    let Some(fx) = alpine_fixtures() else { return };
    let (_d, posing) = fixture_keys(&fx, AARCH64_KEY, X86_64_KEY);
    let err = read_file(&fx.join(INDEX), &posing).unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    let (_d, other) = fixture_keys(&fx, AARCH64_KEY, AARCH64_KEY);
    let err = read_file(&fx.join(INDEX), &other).unwrap_err();
    assert!(matches!(err, Error::UntrustedKey { .. }) && err.to_string().contains(X86_64_KEY), "{err}");
}

#[test]
fn flipping_a_byte_in_either_stream_of_the_real_index_is_detected() {
    let Some(fx) = alpine_fixtures() else { return };
    let (_d, keys) = fixture_keys(&fx, X86_64_KEY, X86_64_KEY);
    let bytes = std::fs::read(fx.join(INDEX)).unwrap();
    for at in [200, 5000, bytes.len() / 2, bytes.len() - 20] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x10;
        assert!(read(&bad, "tampered", &keys).is_err(), "flip at {at} went unnoticed");
    }
}

fn record(name: &str, version: &str, extra: &[(char, &str)]) -> IndexPackage {
    let mut f = vec![
        ('C', Checksum::sha1_of(format!("{name}-{version}").as_bytes()).to_string()),
        ('P', name.to_owned()),
        ('V', version.to_owned()),
        ('A', "x86_64".to_owned()),
        ('S', "100".to_owned()),
        ('I', "4096".to_owned()),
        ('T', format!("the {name} package")),
        ('U', "https://example.invalid/".to_owned()),
        ('L', "MIT".to_owned()),
    ];
    f.extend(extra.iter().map(|(c, v)| (*c, v.to_string())));
    IndexPackage::from_fields(f, "test").unwrap()
}

#[test]
fn written_index_verifies_and_reads_back_the_same_records() {
    let key = test_key();
    let packages = vec![
        record("a", "1.0-r0", &[('D', "b>=2 so:libc.musl-x86_64.so.1"), ('k', "10")]),
        record("b", "2.1-r3", &[('p', "cmd:b=2.1-r3 so:libb.so.1=1"), ('i', "a b")]),
    ];
    let bytes = write(&packages, "test repo", &key, SigAlgo::RsaSha256, 0).unwrap();
    let (_d, keys) = keys_dir(&[&key]);
    let index = read(&bytes, "written", &keys).unwrap();
    assert_eq!(index.packages, packages);
    assert_eq!(index.description.as_deref(), Some("test repo"));
    // Deterministic: the same input gives the same bytes.
    assert_eq!(write(&packages, "test repo", &key, SigAlgo::RsaSha256, 0).unwrap(), bytes);
    let (_d, other) = keys_dir_posing(&key.name, &other_key());
    assert!(matches!(read(&bytes, "w", &other), Err(Error::BadSignature { .. })));
}

#[test]
fn malformed_records_are_rejected_with_the_line_named() {
    let cases = [
        ("P:a\nV:1\n\n", "no C: line"),
        ("C:Q1qZk+NkcGgWq6PiVxeFDCbJzQ2J0=\nV:1\n\n", "without P:"),
        ("C:Q1qZk+NkcGgWq6PiVxeFDCbJzQ2J0=\nP:a\nV:1\nS:x\n\n", "not a number"),
        ("garbage\n", ":1"),
        ("C:nope\nP:a\nV:1\n\n", "checksum"),
        ("C:Q1qZk+NkcGgWq6PiVxeFDCbJzQ2J0=\nP:a\nV:1\nD:b>=\n\n", "invalid dependency"),
    ];
    for (text, want) in cases {
        let err = parse_text(text, "APKINDEX").unwrap_err().to_string();
        assert!(err.contains(want) && err.contains("APKINDEX"), "{text:?}: {err}");
    }
}
