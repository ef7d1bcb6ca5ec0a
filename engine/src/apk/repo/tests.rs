use super::*;
use crate::apk::build::{build_unsigned, BuildEntry};
use crate::apk::keys::Keys;
use crate::apk::pkginfo::PkgInfo;
use crate::apk::tarball::Kind;
use crate::apk::testutil::*;

fn unsigned(dir: &Path, name: &str, arch: &str) -> PathBuf {
    let info = PkgInfo {
        name: name.into(),
        version: "1.0-r0".into(),
        arch: arch.into(),
        build_date: Some(1_700_000_000),
        ..PkgInfo::default()
    };
    let entries = [BuildEntry::new(&format!("usr/share/{name}"), Kind::File, 0o644, name.as_bytes())];
    let path = dir.join(format!("{name}.apk"));
    std::fs::write(&path, build_unsigned(&entries, &info, &[], 1_700_000_000).unwrap()).unwrap();
    path
}

#[test]
fn a_repository_lists_its_signed_packages_with_matching_checksums_and_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let apks = vec![unsigned(dir.path(), "zeta", "x86_64"), unsigned(dir.path(), "alpha", "noarch")];
    let key = test_key();
    let repo = dir.path().join("repo");
    let written = write(&apks, &key, &repo, &RepoOptions::new("forge test", "x86_64")).unwrap();
    assert_eq!(written.len(), 1, "noarch goes with the default arch");
    assert_eq!(written[0].apks, [repo.join("x86_64/alpha-1.0-r0.apk"), repo.join("x86_64/zeta-1.0-r0.apk")]);
    let keys = Keys::open(repo.join("keys")).unwrap();
    let index = index::read_file(&written[0].index, &keys).unwrap();
    assert_eq!(index.signer.unwrap().key_name, key.name);
    assert_eq!(index.description.as_deref(), Some("forge test"));
    for (record, file) in index.packages.iter().zip(&written[0].apks) {
        let apk = package::read_file(file, &keys).unwrap();
        assert_eq!((record.checksum, record.size), (apk.checksum, std::fs::metadata(file).unwrap().len()));
        assert_eq!(repo.join("x86_64").join(record.file_name()), *file);
        let algos: Vec<SigAlgo> = apk.signatures.iter().map(|s| s.algo).collect();
        assert_eq!(algos, [SigAlgo::RsaSha1, SigAlgo::RsaSha256]);
    }
    // Made again elsewhere: the same bytes.
    let again = dir.path().join("again");
    write(&apks, &key, &again, &RepoOptions::new("forge test", "x86_64")).unwrap();
    for f in ["x86_64/APKINDEX.tar.gz", "x86_64/alpha-1.0-r0.apk", "x86_64/zeta-1.0-r0.apk"] {
        assert_eq!(std::fs::read(repo.join(f)).unwrap(), std::fs::read(again.join(f)).unwrap(), "{f}");
    }
}

#[test]
fn writing_again_replaces_packages_that_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (unsigned(dir.path(), "a", "x86_64"), unsigned(dir.path(), "b", "aarch64"));
    let repo = dir.path().join("repo");
    let opts = RepoOptions::new("r", "x86_64");
    write(&[a.clone(), b], &test_key(), &repo, &opts).unwrap();
    assert!(repo.join("aarch64/b-1.0-r0.apk").is_file());
    write(&[a], &test_key(), &repo, &opts).unwrap();
    assert!(!repo.join("aarch64").exists() && repo.join("x86_64/a-1.0-r0.apk").is_file());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!leftovers.iter().any(|n| n.to_string_lossy().contains(".tmp-")), "{leftovers:?}");
}

#[test]
fn a_package_given_twice_or_already_signed_is_refused_and_the_old_repository_stays() {
    let dir = tempfile::tempdir().unwrap();
    let a = unsigned(dir.path(), "a", "x86_64");
    let repo = dir.path().join("repo");
    let opts = RepoOptions::new("r", "x86_64");
    write(std::slice::from_ref(&a), &test_key(), &repo, &opts).unwrap();
    let err = write(&[a.clone(), a.clone()], &test_key(), &repo, &opts).unwrap_err().to_string();
    assert!(err.contains("a-1.0-r0.apk is given twice"), "{err}");
    let signed = repo.join("x86_64/a-1.0-r0.apk");
    let err =
        write(std::slice::from_ref(&signed), &test_key(), &dir.path().join("other"), &opts).unwrap_err().to_string();
    assert!(err.contains("already signed"), "{err}");
    assert!(signed.is_file(), "a failed write leaves the repository as it was");
}

#[test]
fn openssl_verifies_the_package_signature_over_the_control_stream() {
    if !forge_have_tool("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let apk = unsigned(dir.path(), "a", "x86_64");
    let key = test_key();
    let repo = dir.path().join("repo");
    write(&[apk], &key, &repo, &RepoOptions::new("r", "x86_64")).unwrap();
    let bytes = std::fs::read(repo.join("x86_64/a-1.0-r0.apk")).unwrap();
    let parts = crate::apk::streams::split(&bytes, "t").unwrap();
    let sigs = crate::apk::keys::parse_signatures(&parts[0].content, "t").unwrap();
    std::fs::write(dir.path().join("control.tar.gz"), &bytes[parts[1].range.clone()]).unwrap();
    for (sig, digest) in sigs.iter().zip(["-sha1", "-sha256"]) {
        std::fs::write(dir.path().join("sig"), &sig.bytes).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["dgst", digest, "-verify"])
            .arg(repo.join("keys").join(&key.name))
            .args(["-signature", "sig", "control.tar.gz"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Verified OK", "{digest}");
    }
}
