use super::*;
use crate::apk::build::{self, BuildOptions};
use crate::apk::dep::Dep;
use crate::apk::index::IndexPackage;
use crate::apk::pkginfo::PkgInfo;
use crate::apk::resolve::resolve;
use crate::apk::testutil::*;
use std::collections::BTreeMap;

fn entry(name: &str) -> LockEntry {
    LockEntry {
        name: name.into(),
        version: "1.2.3-r4".into(),
        arch: "x86_64".into(),
        repository: "https://example.invalid/alpine/v3.20/main".into(),
        checksum: Checksum::sha1_of(name.as_bytes()),
        sha256: Sha256::digest(name.as_bytes()).into(),
        size: 1234,
        url: apk_url("https://example.invalid/alpine/v3.20/main/", "x86_64", name, "1.2.3-r4"),
    }
}

#[test]
fn lock_text_round_trips_and_is_sorted_whatever_the_input_order() {
    let lock = Lock::new(vec![entry("zlib"), entry("busybox"), entry("musl")]).unwrap();
    let text = lock.to_text();
    assert_eq!(Lock::parse(&text, "t").unwrap(), lock);
    assert_eq!(Lock::new(vec![entry("musl"), entry("zlib"), entry("busybox")]).unwrap().to_text(), text);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], HEADER);
    assert!(lines[2].starts_with("busybox\t1.2.3-r4\tx86_64\thttps://example.invalid/alpine/v3.20/main\tQ1"));
    assert!(lines[2].ends_with("\t1234\thttps://example.invalid/alpine/v3.20/main/x86_64/busybox-1.2.3-r4.apk"));
    assert_eq!(lock.get("musl").unwrap().name, "musl");
    assert!(lock.get("nope").is_none());
}

#[test]
fn the_inputs_a_lock_was_resolved_from_round_trip_in_its_header() {
    let inputs = LockInputs {
        arch: "aarch64".into(),
        repositories: vec!["https://example.invalid/main".into(), "@edge https://example.invalid/edge".into()],
        world: vec!["busybox".into(), "openrc>=0.50".into()],
    };
    let lock = Lock::new(vec![entry("a")]).unwrap().with_inputs(inputs);
    let text = lock.to_text();
    assert!(text.starts_with(&format!(
        "{HEADER}\n# arch: aarch64\n# repository: https://example.invalid/main\n\
         # repository: @edge https://example.invalid/edge\n# world: busybox openrc>=0.50\n# name\t"
    )));
    assert_eq!(Lock::parse(&text, "t").unwrap(), lock);
    // Without them (an older or hand-made lock) the inputs are unknown, not empty.
    assert_eq!(Lock::parse(&Lock::new(vec![entry("a")]).unwrap().to_text(), "t").unwrap().inputs, None);
    assert_eq!(lock.total_size(), 1234);
}

#[test]
fn lock_file_write_and_read_agree() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("apk.lock");
    let lock = Lock::new(vec![entry("a"), entry("b")]).unwrap();
    lock.write(&path).unwrap();
    assert_eq!(Lock::read(&path).unwrap(), lock);
}

#[test]
fn malformed_lock_lines_are_rejected_with_the_line_named() {
    let good = Lock::new(vec![entry("a"), entry("b")]).unwrap().to_text();
    let cases: Vec<(String, &str)> = vec![
        (good.replace(HEADER, "# something else"), "first line"),
        (good.replacen("\t1234\t", "\tbig\t", 1), "size"),
        (good.replacen("1.2.3-r4", "1.2.3-", 1), "invalid version"),
        (good.replacen("\tQ1", "\tQ2", 1), "checksum"),
        (format!("{good}a\tx"), "8 tab-separated fields"),
        (
            {
                let mut l: Vec<&str> = good.lines().collect();
                l.swap(2, 3);
                l.join("\n")
            },
            "out of order",
        ),
    ];
    for (text, want) in cases {
        let err = Lock::parse(&text, "apk.lock").unwrap_err().to_string();
        assert!(err.contains(want) && err.contains("apk.lock"), "{want}: {err}");
    }
    assert!(Lock::new(vec![entry("a"), entry("a")]).is_err());
}

#[test]
fn entries_check_size_and_sha256_of_downloads() {
    let e = LockEntry { sha256: Sha256::digest(b"bytes").into(), size: 5, ..entry("a") };
    e.check(b"bytes").unwrap();
    assert!(e.check(b"bytez").unwrap_err().to_string().contains("sha256"));
    assert!(e.check(b"byte").unwrap_err().to_string().contains("size"));
}

fn pkg(name: &str, deps: &str) -> PkgInfo {
    PkgInfo {
        name: name.into(),
        version: "1.0-r0".into(),
        arch: "x86_64".into(),
        description: name.into(),
        url: "u".into(),
        license: "MIT".into(),
        depends: Dep::parse_list(deps, "t").unwrap(),
        ..PkgInfo::default()
    }
}

#[test]
fn from_resolution_verifies_every_package_against_the_signed_index() {
    let key = test_key();
    let (_d, keys) = keys_dir(&[&key]);
    let repo_url = "https://example.invalid/repo";
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut records = Vec::new();
    for (name, deps) in [("app", "lib"), ("lib", ""), ("unused", "")] {
        let bytes = build::build(&[], &pkg(name, deps), &[], &key, &BuildOptions::default()).unwrap();
        let apk = crate::apk::package::read(&bytes, name, &keys).unwrap();
        records.push(IndexPackage::from_apk(&apk).unwrap());
        files.insert(apk_url(repo_url, "x86_64", name, "1.0-r0"), bytes);
    }
    let repos = [Repository { url: repo_url.into(), tag: None, packages: records }];
    let res = resolve(&repos, "x86_64", &Dep::parse_list("app", "w").unwrap()).unwrap();
    let mut fetch = |url: &str| files.get(url).cloned().ok_or_else(|| Error::format(url, "not found"));
    let lock = from_resolution(&res, &repos, "x86_64", &keys, &mut fetch).unwrap();
    let names: Vec<&str> = lock.packages.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["app", "lib"]);
    let lib = lock.get("lib").unwrap();
    lib.check(&files[&lib.url]).unwrap();
    assert_eq!(Lock::parse(&lock.to_text(), "t").unwrap(), lock);
    // A download that is not the indexed package is refused.
    let other = files[&apk_url(repo_url, "x86_64", "unused", "1.0-r0")].clone();
    let mut swapped = |_: &str| Ok(other.clone());
    let err = from_resolution(&res, &repos, "x86_64", &keys, &mut swapped).unwrap_err().to_string();
    assert!(err.contains("checksum (against the signed index)"), "{err}");
}
