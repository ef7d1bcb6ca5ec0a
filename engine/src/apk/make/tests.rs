use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::apk::package;
use crate::apk::testutil::*;

fn ctx_for(root: &Path) -> impl Fn(&StorePath) -> std::path::PathBuf + '_ {
    move |p: &StorePath| root.join(p.base_name())
}

/// A store-like tree (modes as the store keeps them: 0555 and 0444) under `root`.
fn store_tree(root: &Path) -> StorePath {
    let p = StorePath::for_source(&forge_store::Hash::of(forge_store::Algo::Sha256, b"t"), "hello-tree", &[]).unwrap();
    let t = root.join(p.base_name());
    std::fs::create_dir_all(t.join("usr/bin")).unwrap();
    std::fs::create_dir_all(t.join("etc")).unwrap();
    std::fs::write(t.join("usr/bin/hello"), "#!/bin/sh\necho hello\n").unwrap();
    std::fs::set_permissions(t.join("usr/bin/hello"), std::fs::Permissions::from_mode(0o555)).unwrap();
    std::fs::write(t.join("etc/hello.conf"), "greeting=hi\n").unwrap();
    std::fs::set_permissions(t.join("etc/hello.conf"), std::fs::Permissions::from_mode(0o444)).unwrap();
    std::os::unix::fs::symlink("hello", t.join("usr/bin/hi")).unwrap();
    p
}

fn spec() -> ApkSpec {
    let mut s = ApkSpec::new("hello", "2.10-r0", "x86_64");
    s.description = "the GNU hello program".into();
    s.url = "https://www.gnu.org/software/hello/".into();
    s.license = "GPL-3.0-or-later".into();
    s.packager = Some("forge <forge@example.invalid>".into());
    s.depends = vec!["/bin/sh".into()];
    s.build_date = 1_416_265_060;
    s.scripts.insert("post-install".into(), "#!/bin/sh\nexit 0\n".into());
    s
}

fn package_with(spec: ApkSpec) -> Result<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let tree = store_tree(dir.path());
    let physical = ctx_for(dir.path());
    let out = dir.path().join("out.apk");
    let args = serde_json::to_value(Args { tree, spec }).unwrap();
    crate::builtins::run(&Ctx { physical: &physical }, BUILTIN, VERSION, &args, &out)?;
    Ok(std::fs::read(out).unwrap())
}

#[test]
fn a_store_tree_becomes_an_unsigned_apk_with_abuild_modes_and_metadata() {
    let bytes = package_with(spec()).unwrap();
    let apk = package::parse_unverified(&bytes, "hello.apk").unwrap();
    assert!(apk.signatures.is_empty() && apk.streams.len() == 2, "unsigned: control and data only");
    let info = &apk.info;
    assert_eq!((info.name.as_str(), info.version.as_str(), info.arch.as_str()), ("hello", "2.10-r0", "x86_64"));
    assert_eq!((info.build_date, info.origin.as_deref()), (Some(1_416_265_060), Some("hello")));
    assert_eq!(info.size, 21 + 12);
    assert_eq!(dep::join(&info.depends), "/bin/sh");
    assert_eq!(dep::join(&info.provides), "cmd:hello=2.10-r0 cmd:hi=2.10-r0");
    let modes: Vec<(&str, u32, u64)> =
        apk.files.iter().map(|f| (f.path.trim_end_matches('/'), f.mode, f.mtime)).collect();
    assert_eq!(
        modes,
        [
            ("etc", 0o755, 1_416_265_060),
            ("etc/hello.conf", 0o644, 1_416_265_060),
            ("usr", 0o755, 1_416_265_060),
            ("usr/bin", 0o755, 1_416_265_060),
            ("usr/bin/hello", 0o755, 1_416_265_060),
            ("usr/bin/hi", 0o777, 1_416_265_060)
        ]
    );
    assert_eq!(apk.scripts[0].kind, ScriptKind::PostInstall);
    // The field order abuild writes (compare the real alpine-baselayout .PKGINFO).
    let keys: Vec<&str> = info.fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "pkgname",
            "pkgver",
            "pkgdesc",
            "url",
            "builddate",
            "packager",
            "size",
            "arch",
            "origin",
            "license",
            "depend",
            "provides",
            "provides",
            "datahash"
        ]
    );
}

use crate::apk::dep;

#[test]
fn the_same_tree_and_spec_give_the_same_bytes() {
    assert_eq!(package_with(spec()).unwrap(), package_with(spec()).unwrap());
    let mut later = spec();
    later.build_date += 1;
    assert_ne!(package_with(spec()).unwrap(), package_with(later).unwrap());
}

#[test]
fn declared_permissions_apply_and_a_missing_path_is_an_error() {
    let mut s = spec();
    s.permissions.insert("etc/hello.conf".into(), Permission { mode: 0o600, uid: 0, gid: 42 });
    let apk = package::parse_unverified(&package_with(s).unwrap(), "t").unwrap();
    let conf = apk.files.iter().find(|f| f.path == "etc/hello.conf").unwrap();
    assert_eq!((conf.mode, conf.gid), (0o600, 42));
    let mut s = spec();
    s.permissions.insert("etc/typo.conf".into(), Permission { mode: 0o600, uid: 0, gid: 0 });
    let err = package_with(s).unwrap_err().to_string();
    assert!(err.contains("etc/typo.conf") && err.contains("hello-2.10-r0.apk"), "{err}");
}

#[test]
fn invalid_specs_are_refused_naming_the_field() {
    type Change = fn(&mut ApkSpec);
    let cases: [(Change, &str); 6] = [
        (|s| s.version = "2.10".into(), "release"),
        (|s| s.name = "he llo".into(), "package name"),
        (|s| s.arch = String::new(), "arch"),
        (|s| s.depends = vec!["foo>=".into()], "foo>="),
        (|s| _ = s.scripts.insert("post-instal".into(), String::new()), "post-instal"),
        (|s| _ = s.permissions.insert("/etc".into(), Permission { mode: 0, uid: 0, gid: 0 }), "relative"),
    ];
    for (change, want) in cases {
        let mut s = spec();
        change(&mut s);
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains(want), "{want}: {err}");
    }
}

#[test]
fn signing_the_stored_package_keeps_its_checksum_and_verifies() {
    let unsigned = package_with(spec()).unwrap();
    let key = test_key();
    let signed = key.sign_apk(&unsigned, &[SigAlgo::RsaSha1, SigAlgo::RsaSha256], 5, "t").unwrap();
    let (_d, keys) = keys_dir(&[&key]);
    let apk = package::read(&signed, "signed", &keys).unwrap();
    assert_eq!(apk.signer.unwrap().key_name, key.name);
    assert_eq!(apk.checksum, package::parse_unverified(&unsigned, "u").unwrap().checksum);
    assert_eq!(&signed[signed.len() - unsigned.len()..], &unsigned[..]);
    let again = key.sign_apk(&signed, &[SigAlgo::RsaSha1], 5, "signed.apk").unwrap_err().to_string();
    assert!(again.contains("already signed"), "{again}");
}

use crate::apk::keys::SigAlgo;
