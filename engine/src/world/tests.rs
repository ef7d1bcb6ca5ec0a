use super::*;
use crate::apk::build::{self, BuildEntry, BuildOptions};
use crate::apk::index::IndexPackage;
use crate::apk::keys::SigAlgo;
use crate::apk::package;
use crate::apk::pkginfo::PkgInfo;
use crate::apk::tarball::Kind;
use crate::apk::testutil::*;
use crate::dsl::Forge;
use crate::fetch::{FetchOptions, Mirrors};
use sha2::{Digest, Sha256};

/// `(name, version, depends, provides)` of the fixture repository.
const PACKAGES: &[(&str, &str, &str, &str)] = &[
    ("musl", "1.2.5-r0", "", "so:libc.musl-x86_64.so.1=1"),
    ("app", "1.0-r0", "so:libc.musl-x86_64.so.1", ""),
    ("app", "2.0-r0", "so:libc.musl-x86_64.so.1", ""),
    ("extra", "1.0-r0", "", ""),
];

fn apk(name: &str, version: &str, deps: &str, provides: &str) -> Vec<u8> {
    let parse = |s: &str| s.split_whitespace().map(|d| Dep::parse(d, "t").unwrap()).collect();
    let info = PkgInfo {
        name: name.into(),
        version: version.into(),
        arch: "x86_64".into(),
        description: format!("{name} for the lock tests"),
        depends: parse(deps),
        provides: parse(provides),
        ..PkgInfo::default()
    };
    let file = BuildEntry::new(&format!("usr/share/{name}"), Kind::File, 0o644, version.as_bytes());
    build::build(&[file], &info, &[], &test_key(), &BuildOptions::default()).unwrap()
}

/// A gzip'd tar of `files`.
fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tree = FsTree::new(0);
    for (path, content) in files {
        tree.mkdir_p(Path::new(path).parent().unwrap().to_str().unwrap(), 0o755).unwrap();
        tree.write(path, content.to_vec(), 0o644).unwrap();
    }
    let mut tar = Vec::new();
    crate::tar::write_tar(&tree, &mut tar).unwrap();
    crate::apk::streams::gzip(&tar)
}

/// A signed repository and a minirootfs holding its key, under `dir`, and a world over
/// them whose lock goes to `dir/locks/test.lock`.
fn fixture(dir: &Path, world: &[&str]) -> ApkWorld {
    let key = test_key();
    let arch_dir = dir.join("repo/main/x86_64");
    std::fs::create_dir_all(&arch_dir).unwrap();
    let (_k, keys) = keys_dir(&[&key]);
    let mut records = Vec::new();
    for (name, version, deps, provides) in PACKAGES {
        let bytes = apk(name, version, deps, provides);
        records.push(IndexPackage::from_apk(&package::read(&bytes, name, &keys).unwrap()).unwrap());
        std::fs::write(arch_dir.join(format!("{name}-{version}.apk")), bytes).unwrap();
    }
    let index = index::write(&records, "test repository", &key, SigAlgo::RsaSha256, 0).unwrap();
    std::fs::write(arch_dir.join("APKINDEX.tar.gz"), index).unwrap();
    let pem = key.public_key_pem();
    let key_file = format!("etc/apk/keys/{}", key.name);
    let rootfs = tar_gz(&[(&key_file, pem.as_bytes()), ("etc/os-release", b"ID=test\n")]);
    std::fs::write(dir.join("rootfs.tar.gz"), &rootfs).unwrap();
    ApkWorld {
        name: "test-x86_64".into(),
        arch: "x86_64".into(),
        repositories: vec![ApkRepository::parse(&format!("file://{}/repo/main/", dir.display())).unwrap()],
        keys: PinnedKeys {
            name: "rootfs.tar.gz".into(),
            urls: vec![format!("file://{}/rootfs.tar.gz", dir.display())],
            hash: format!("sha256:{}", hex(&Sha256::digest(&rootfs))),
            dir: "etc/apk/keys".into(),
        },
        world: world.iter().map(|w| w.to_string()).collect(),
        lock_file: dir.join("locks/test.lock"),
    }
}

fn fetcher() -> Fetcher {
    let opts = FetchOptions { offline: true, progress: false, ..FetchOptions::default() };
    Fetcher::new(Mirrors::default(), opts).unwrap()
}

fn run_lock(world: &ApkWorld) -> (Result<Locked>, Vec<String>) {
    let mut log = Vec::new();
    let got = lock(world, &fetcher(), &mut |l| log.push(l.to_owned()));
    (got, log)
}

#[test]
fn locking_pins_the_highest_versions_by_sha256_with_the_inputs_and_rewrites_nothing_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let world = fixture(dir.path(), &["app"]);
    let (got, log) = run_lock(&world);
    let locked = got.unwrap();
    let names: Vec<(&str, &str)> = locked.lock.packages.iter().map(|e| (e.name.as_str(), e.version.as_str())).collect();
    assert_eq!(names, [("app", "2.0-r0"), ("musl", "1.2.5-r0")]);
    for e in &locked.lock.packages {
        let file = dir.path().join(format!("repo/main/x86_64/{}-{}.apk", e.name, e.version));
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!((e.sha256, e.size), (<[u8; 32]>::from(Sha256::digest(&bytes)), bytes.len() as u64));
        assert_eq!(e.url, format!("file://{}", file.display()));
    }
    assert_eq!(locked.lock.inputs, Some(world.inputs()));
    assert_eq!(locked.indexes[0].packages, 4);
    assert!(log.iter().any(|l| l.contains("signed by forge-test@example.invalid-1.rsa.pub")), "{log:?}");
    assert!(log.iter().any(|l| l.contains("trusting 1 key(s) of rootfs.tar.gz")), "{log:?}");
    assert!(locked.previous.is_none());

    assert!(write_lock(&world, &locked.lock).unwrap());
    let first = std::fs::read(&world.lock_file).unwrap();
    let again = run_lock(&world).0.unwrap();
    assert_eq!(again.previous.as_ref(), Some(&locked.lock));
    assert!(changes(&locked.lock, &again.lock).is_empty());
    assert!(!write_lock(&world, &again.lock).unwrap(), "an unchanged lock is not rewritten");
    assert_eq!(std::fs::read(&world.lock_file).unwrap(), first);
}

#[test]
fn a_tampered_index_is_refused_and_no_lock_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let world = fixture(dir.path(), &["app"]);
    let index = dir.path().join("repo/main/x86_64/APKINDEX.tar.gz");
    let mut bytes = std::fs::read(&index).unwrap();
    let at = bytes.len() - 40;
    bytes[at] ^= 0x10;
    std::fs::write(&index, bytes).unwrap();
    let err = run_lock(&world).0.unwrap_err().to_string();
    assert!(err.contains("package world `test-x86_64`") && err.contains("APKINDEX.tar.gz"), "{err}");
    assert!(!world.lock_file.exists());
}

#[test]
fn an_index_signed_by_a_key_the_tarball_does_not_hold_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut world = fixture(dir.path(), &["app"]);
    let rootfs = tar_gz(&[("etc/apk/keys/other.rsa.pub", other_key().public_key_pem().as_bytes())]);
    std::fs::write(dir.path().join("rootfs.tar.gz"), &rootfs).unwrap();
    world.keys.hash = format!("sha256:{}", hex(&Sha256::digest(&rootfs)));
    let err = run_lock(&world).0.unwrap_err().to_string();
    assert!(err.contains("forge-test@example.invalid-1.rsa.pub") && err.contains("no such key"), "{err}");
}

#[test]
fn keys_come_only_from_the_tarball_pinned_by_hash() {
    let dir = tempfile::tempdir().unwrap();
    let mut world = fixture(dir.path(), &["app"]);
    world.keys.hash = format!("sha256:{}", "0".repeat(64));
    let err = run_lock(&world).0.unwrap_err().to_string();
    assert!(err.contains("taking its keys") && err.contains("rootfs.tar.gz"), "{err}");

    let empty = tar_gz(&[("etc/os-release", b"ID=test\n")]);
    std::fs::write(dir.path().join("rootfs.tar.gz"), &empty).unwrap();
    world.keys.hash = format!("sha256:{}", hex(&Sha256::digest(&empty)));
    let err = run_lock(&world).0.unwrap_err().to_string();
    assert!(err.contains("holds no key files in etc/apk/keys"), "{err}");
}

#[test]
fn an_unsatisfiable_world_names_the_chain_that_fails() {
    let dir = tempfile::tempdir().unwrap();
    let world = fixture(dir.path(), &["extra", "app>=3"]);
    let err = run_lock(&world).0.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("world -> app>=3: no such version (available: 2.0-r0, 1.0-r0)"), "{text}");
    assert!(
        matches!(&err, Error::World { source, .. } if matches!(**source, Error::Apk(ref a) if a.is_unsatisfiable()))
    );
}

#[test]
fn an_unreachable_repository_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut world = fixture(dir.path(), &["app"]);
    world.repositories[0].url = format!("file://{}/nowhere", dir.path().display());
    let err = run_lock(&world).0.unwrap_err().to_string();
    assert!(err.contains("nowhere/x86_64/APKINDEX.tar.gz") && err.contains("not found"), "{err}");
}

#[test]
fn a_lock_for_another_world_is_stale_and_says_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let world = fixture(dir.path(), &["app"]);
    let lock = run_lock(&world).0.unwrap().lock;
    assert_eq!(world.stale(&lock), None);
    let other = |edit: &dyn Fn(&mut ApkWorld)| {
        let mut w = world.clone();
        edit(&mut w);
        w.stale(&lock).unwrap_or_default()
    };
    assert_eq!(other(&|w| w.world = vec!["app".into(), "extra".into()]), "the recipe's world adds extra");
    assert_eq!(other(&|w| w.world = vec!["musl".into()]), "the recipe's world adds musl and drops app");
    assert!(other(&|w| w.arch = "aarch64".into()).contains("made for x86_64"));
    assert!(other(&|w| w.repositories[0].tag = Some("t".into())).contains("repositories adds @t file://"));
    // A lock that does not record its inputs cannot be judged.
    assert_eq!(world.stale(&Lock { inputs: None, ..lock }), None);
}

#[test]
fn changes_list_added_removed_upgraded_and_rebuilt_packages() {
    let dir = tempfile::tempdir().unwrap();
    let world = fixture(dir.path(), &["app", "extra"]);
    let new = run_lock(&world).0.unwrap().lock;
    let mut old = new.clone();
    old.packages.retain(|e| e.name != "extra");
    old.packages[0].version = "1.0-r0".into();
    old.packages.push(apk_lock::LockEntry { name: "zzz".into(), ..old.packages[0].clone() });
    old.packages[1].sha256[0] ^= 1;
    let text: Vec<String> = changes(&old, &new).iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        ["~ app 1.0-r0 -> 2.0-r0", "+ extra 1.0-r0", "~ musl 1.2.5-r0 (rebuilt: new checksum)", "- zzz 1.0-r0"]
    );
}

#[test]
fn repository_lines_parse_and_bad_ones_say_what_is_expected() {
    let r = ApkRepository::parse(" https://example.invalid/alpine/v3.20/main/ ").unwrap();
    assert_eq!((r.url.as_str(), r.tag), ("https://example.invalid/alpine/v3.20/main", None));
    for bad in ["", "@edge", "a b"] {
        let err = ApkRepository::parse(bad).unwrap_err().to_string();
        assert!(err.contains("URL"), "{bad:?}: {err}");
    }
}

#[test]
fn the_dsl_reads_the_lock_refuses_a_stale_one_and_installs_what_it_pins() {
    let dir = tempfile::tempdir().unwrap();
    let world = fixture(dir.path(), &["app"]);
    let mut f = Forge::new();
    assert!(f.apk_world(world.clone()).unwrap().is_none(), "no lock file yet");
    let lock = run_lock(&world).0.unwrap().lock;
    write_lock(&world, &lock).unwrap();

    let mut f = Forge::new();
    let read = f.apk_world(world.clone()).unwrap().unwrap();
    assert_eq!(read, lock);
    let base = f.text("base", "not a tarball, only a handle here").unwrap();
    let rootfs = f.apk_install_world("packages", &base, &world, &read, 7).unwrap();
    // The key tarball, one download per locked package, the base and the install.
    assert_eq!(f.nodes().len(), 5);
    let node = f.node(crate::dsl::Input::node(&rootfs));
    let json = node.drv.canonical_json();
    assert!(json.contains("\"keysFrom\"") && json.contains("\"order\":\"dependencies\""), "{json}");
    assert!(json.contains("app-2.0-r0.apk") && json.contains("musl-1.2.5-r0.apk"), "{json}");
    assert_eq!(node.deps.len(), 4);

    let mut changed = world.clone();
    changed.world.push("extra".into());
    let mut f = Forge::new();
    let err = f.apk_world(changed.clone()).unwrap_err().to_string();
    assert!(err.contains("adds extra") && err.contains("run `forge lock RECIPE`"), "{err}");
    let mut f = Forge::new();
    f.ignore_locks();
    assert!(f.apk_world(changed).unwrap().is_none(), "forge lock declares without reading locks");
}
