use super::*;
use crate::apk::build::{self, BuildEntry, BuildOptions};
use crate::apk::keys::Keys;
use crate::apk::package::{self, Script};
use crate::apk::pkginfo::PkgInfo;
use crate::apk::testutil::*;

#[test]
fn installed_record_of_the_real_baselayout_matches_the_golden_bytes() {
    let Some(fx) = alpine_fixtures() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = "alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub";
    std::fs::copy(fx.join(key), dir.path().join(key)).unwrap();
    let keys = Keys::open(dir.path()).unwrap();
    let apk = package::read_file(&fx.join("alpine-baselayout-3.2.0-r23-aarch64.apk"), &keys).unwrap();
    // Golden derived independently (Python tarfile over the fixture) from database.c's
    // apk_db_write_fdb: header, then F:/M: per directory, R:/a:/Z: per file.
    let golden = std::fs::read_to_string(testdata().join("alpine-baselayout-3.2.0-r23-aarch64.installed")).unwrap();
    let ours = installed_record(&apk, None).unwrap();
    assert_eq!(ours, golden);
    assert!(ours.contains("F:root\nM:0:0:700\n") && ours.contains("F:tmp\nM:0:0:1777\n"));
    assert!(ours.contains("F:var\nR:run\na:0:0:777\nZ:"));
}

fn entry(path: &str, kind: Kind, mode: u32, content: &[u8]) -> BuildEntry {
    BuildEntry {
        link_target: (kind == Kind::Symlink).then(|| "target".to_owned()),
        ..BuildEntry::new(path, kind, mode, content)
    }
}

fn built(name: &str, entries: &[BuildEntry], edit: impl FnOnce(&mut PkgInfo)) -> package::Apk {
    let mut info = PkgInfo {
        name: name.into(),
        version: "1.0-r0".into(),
        arch: "x86_64".into(),
        description: "d".into(),
        url: "u".into(),
        license: "MIT".into(),
        ..PkgInfo::default()
    };
    edit(&mut info);
    let scripts = [Script { kind: ScriptKind::PostInstall, content: b"#!/bin/sh\n".to_vec() }];
    let key = test_key();
    let bytes = build::build(entries, &info, &scripts, &key, &BuildOptions::default()).unwrap();
    let (_d, keys) = keys_dir(&[&key]);
    package::read(&bytes, name, &keys).unwrap()
}

#[test]
fn installed_record_has_replaces_tag_modes_xattrs_in_apk_order() {
    let mut bin = entry("usr/bin/x", Kind::File, 0o4755, b"x");
    bin.xattrs.push(("security.capability".into(), vec![1, 0, 0, 2]));
    let apk = built("x", &[entry("usr", Kind::Dir, 0o755, b""), entry("usr/bin", Kind::Dir, 0o750, b""), bin], |i| {
        i.replaces = Dep::parse_list("old-x", "t").unwrap();
        i.replaces_priority = Some(5);
    });
    let rec = installed_record(&apk, Some("edge")).unwrap();
    let tail = rec.split_once("L:MIT\n").unwrap().1;
    let sum = Checksum::sha1_of(b"x");
    let xsum = {
        let mut h = Sha1::new();
        h.update(19u32.to_be_bytes());
        h.update(b"security.capability");
        h.update(4u32.to_be_bytes());
        h.update([1, 0, 0, 2]);
        Checksum(h.finalize().into())
    };
    assert_eq!(tail, format!("r:old-x\nq:5\ns:edge\nF:usr\nF:usr/bin\nM:0:0:750\nR:x\na:0:0:4755:{xsum}\nZ:{sum}\n\n"));
}

#[test]
fn scripts_tar_names_and_headers_follow_apk() {
    let apk = built("x", &[entry("f", Kind::File, 0o644, b"1")], |_| {});
    let tar = scripts_tar(&[&apk], 1_700_000_000);
    let entries = crate::apk::tarball::read(&tar, "scripts.tar").unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].path, format!("x-1.0-r0.{}.post-install", apk.checksum));
    assert_eq!((entries[0].mode, entries[0].uname.as_str(), entries[0].mtime), (0o755, "root", 1_700_000_000));
    assert_eq!(&tar[257..265], b"ustar  \0");
    if forge_have_tool("tar") {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("scripts.tar"), &tar).unwrap();
        let out = std::process::Command::new("tar").arg("-tvf").arg(dir.path().join("scripts.tar")).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("-rwxr-xr-x root/root"));
    }
}

#[test]
fn world_repositories_and_triggers_files() {
    let w = world(&Dep::parse_list("zlib alpine-base busybox>=1.35 alpine-base", "t").unwrap());
    assert_eq!(w, "alpine-base\nbusybox>=1.35\nzlib\n");
    let r =
        repositories(&[(None, "https://example.invalid/v3.20/main"), (Some("edge"), "https://example.invalid/edge")]);
    assert_eq!(r, "https://example.invalid/v3.20/main\n@edge https://example.invalid/edge\n");
    let apk = built("fonts", &[entry("f", Kind::File, 0o644, b"1")], |i| {
        i.triggers = vec!["/usr/share/fonts/*".into(), "/etc/fonts".into()];
    });
    assert_eq!(triggers(&[&apk]), format!("{} /usr/share/fonts/* /etc/fonts\n", apk.checksum));
}

#[test]
fn file_conflicts_are_reported_unless_replaced() {
    let a = built("a", &[entry("etc", Kind::Dir, 0o755, b""), entry("etc/x", Kind::File, 0o644, b"a")], |_| {});
    let b = built("b", &[entry("etc", Kind::Dir, 0o755, b""), entry("etc/x", Kind::File, 0o644, b"b")], |_| {});
    let err = check_file_conflicts(&[&a, &b]).unwrap_err().to_string();
    assert!(err.contains("etc/x") && err.contains("a-1.0-r0") && err.contains("b-1.0-r0"), "{err}");
    let c = built("c", &[entry("etc", Kind::Dir, 0o755, b""), entry("etc/x", Kind::File, 0o644, b"c")], |i| {
        i.replaces = Dep::parse_list("a", "t").unwrap();
    });
    check_file_conflicts(&[&a, &c]).unwrap();
}

#[test]
fn a_file_without_its_directory_entry_is_an_error() {
    let apk = built("x", &[entry("usr/bin/x", Kind::File, 0o644, b"x")], |_| {});
    let err = installed_record(&apk, None).unwrap_err().to_string();
    assert!(err.contains("usr/bin/x") && err.contains("no directory entry"), "{err}");
}
