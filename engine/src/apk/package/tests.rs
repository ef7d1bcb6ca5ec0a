use super::*;
use crate::apk::testutil::*;

const BASELAYOUT: &str = "alpine-baselayout-3.2.0-r23-aarch64.apk";
const AARCH64_KEY: &str = "alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub";
const X86_64_KEY: &str = "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub";

fn fixture_keys(fx: &Path, names: &[&str]) -> (tempfile::TempDir, Keys) {
    let dir = tempfile::tempdir().unwrap();
    for n in names {
        std::fs::copy(fx.join(n), dir.path().join(n)).unwrap();
    }
    let keys = Keys::open(dir.path()).unwrap();
    (dir, keys)
}

#[test]
fn real_alpine_apk_verifies_with_the_key_its_signature_names() {
    let Some(fx) = alpine_fixtures() else { return };
    let (_d, keys) = fixture_keys(&fx, &[AARCH64_KEY, X86_64_KEY]);
    let apk = read_file(&fx.join(BASELAYOUT), &keys).unwrap();
    assert_eq!(apk.signer.as_ref().unwrap().key_name, AARCH64_KEY);
    assert_eq!(apk.signer.as_ref().unwrap().algo, keys::SigAlgo::RsaSha1);
    assert_eq!(apk.info.name, "alpine-baselayout");
    assert_eq!(apk.info.version, "3.2.0-r23");
    assert_eq!(apk.info.arch, "aarch64");
    assert_eq!(apk.size, 11012);
    // Boundaries as Python's zlib finds them (decompressobj().unused_data).
    assert_eq!(apk.streams, vec![0..666, 666..2229, 2229..11012]);
    assert_eq!(apk.checksum.to_string(), "Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=");
    assert_eq!(hex(&apk.sha256), "e6e3c36ed2f991bd0168ea076d30ff7a9fed0bfabeedade500d8aa949bba1835");
    let scripts: Vec<_> = apk.scripts.iter().map(|s| s.kind.name()).collect();
    assert_eq!(scripts, ["pre-install", "post-install", "pre-upgrade", "post-upgrade"]);
    // 11 regular files and 3 symlinks carry a checksum (symlinks: SHA-1 of the target); all match.
    assert_eq!(apk.file_checksums_verified, 14);
    let mkmntdirs = apk.files.iter().find(|f| f.path == "sbin/mkmntdirs").unwrap();
    assert_eq!((mkmntdirs.mode, mkmntdirs.size), (0o755, 5736));
}

#[test]
fn real_alpine_apk_fails_with_any_other_key_under_its_name() {
    let Some(fx) = alpine_fixtures() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fx.join(X86_64_KEY), dir.path().join(AARCH64_KEY)).unwrap();
    let keys = Keys::open(dir.path()).unwrap();
    let err = read_file(&fx.join(BASELAYOUT), &keys).unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    assert!(err.to_string().contains(AARCH64_KEY));
}

#[test]
fn real_alpine_apk_without_its_key_is_untrusted() {
    let Some(fx) = alpine_fixtures() else { return };
    let (_d, keys) = fixture_keys(&fx, &[X86_64_KEY]);
    let err = read_file(&fx.join(BASELAYOUT), &keys).unwrap_err();
    assert!(matches!(err, Error::UntrustedKey { .. }), "{err}");
    assert!(err.to_string().contains(AARCH64_KEY), "{err}");
}

#[test]
fn flipping_a_byte_in_any_stream_of_the_real_apk_is_detected() {
    let Some(fx) = alpine_fixtures() else { return };
    let (_d, keys) = fixture_keys(&fx, &[AARCH64_KEY]);
    let bytes = std::fs::read(fx.join(BASELAYOUT)).unwrap();
    // Inside each stream's deflate data: signature, control, data (and the last byte).
    for at in [300, 1200, 5000, 11000] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x01;
        assert!(read(&bad, "tampered", &keys).is_err(), "flip at {at} went unnoticed");
    }
    assert!(read(&bytes[..bytes.len() - 1], "truncated", &keys).is_err());
}
