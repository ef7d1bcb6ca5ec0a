//! `forge diff` end to end: ext4 images made by `forge image ext4` from tarballs, their
//! sparse forms, a directory against the tarball GNU tar makes of it, and manifests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use forge_engine::fstree::FsTree;
use forge_engine::tar::write_tar;
use forge_tests::*;

fn tree() -> FsTree {
    let mut t = FsTree::new(1_600_000_000);
    t.write("/etc/motd", "hello\n", 0o644).unwrap();
    t.write("/bin/busybox", (0..100_000u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>(), 0o755).unwrap();
    t.write("/usr/bin/ping", "ping", 0o755).unwrap();
    t.setcap("/usr/bin/ping", "cap_net_raw+ep").unwrap();
    t.write("/usr/bin/top", "top", 0o755).unwrap();
    t.symlink("/bin/sh", "busybox").unwrap();
    t
}

/// `tree()` changed in exactly one owner, one mode, one byte and one capability.
fn changed_tree() -> FsTree {
    let mut t = tree();
    t.chown("/etc/motd", 0, 100).unwrap();
    t.chmod("/usr/bin/top", 0o700).unwrap();
    let mut bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    bytes[70_000] ^= 0xff;
    t.write("/bin/busybox", bytes, 0o755).unwrap();
    t.setcap("/usr/bin/ping", "cap_net_admin,cap_net_raw+ep").unwrap();
    t
}

fn image(dir: &Path, name: &str, t: &FsTree) -> PathBuf {
    let tar = dir.join(format!("{name}.tar"));
    write_tar(t, std::fs::File::create(&tar).unwrap()).unwrap();
    let img = dir.join(format!("{name}.img"));
    run_ok(forge(dir).args(["image", "ext4", "--from-tar"]).arg(&tar).args(["--size", "16M"]).arg(&img));
    img
}

fn diff(dir: &Path, a: &Path, b: &Path, extra: &[&str]) -> Output {
    forge(dir).arg("diff").args(extra).arg(a).arg(b).output().unwrap()
}

#[test]
fn images_differing_in_owner_mode_byte_and_capability_report_exactly_those_four() {
    let dir = tempfile::tempdir().unwrap();
    let a = image(dir.path(), "a", &tree());
    let b = image(dir.path(), "b", &changed_tree());
    let out = diff(dir.path(), &a, &b, &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stdout(&out);
    let heads: Vec<&str> = text.lines().filter(|l| !l.starts_with("  ")).collect();
    assert_eq!(heads.len(), 4, "{text}");
    assert!(heads[0].starts_with("/bin/busybox: content size=100000 sha256="), "{text}");
    assert!(text.contains("\n  first differing byte at offset 70000\n"), "{text}");
    assert_eq!(heads[1], "/etc/motd: owner 0:0 -> 0:100");
    assert_eq!(
        heads[2],
        "/usr/bin/ping: xattr security.capability=cap_net_raw+ep -> security.capability=cap_net_admin,cap_net_raw+ep"
    );
    assert_eq!(heads[3], "/usr/bin/top: mode 0755 -> 0700");

    let json: serde_json::Value = serde_json::from_str(&stdout(&diff(dir.path(), &a, &b, &["--json"]))).unwrap();
    let aspects: Vec<&str> = json.as_array().unwrap().iter().map(|d| d["aspect"].as_str().unwrap()).collect();
    assert_eq!(aspects, ["content", "owner", "xattr", "mode"]);
}

#[test]
fn the_four_changes_are_really_in_the_images_debugfs_reads() {
    if !have_tool("debugfs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let b = image(dir.path(), "b", &changed_tree());
    let stat = |p: &str| {
        let out = Command::new("debugfs").arg("-R").arg(format!("stat {p}")).arg(&b).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(stat("/etc/motd").contains("Group:   100"), "{}", stat("/etc/motd"));
    assert!(stat("/usr/bin/top").contains("Mode:  0700"), "{}", stat("/usr/bin/top"));
    let dumped = dir.path().join("busybox");
    let st = Command::new("debugfs").arg("-R").arg(format!("dump /bin/busybox {}", dumped.display())).arg(&b).output();
    assert!(st.unwrap().status.success());
    let bytes = std::fs::read(&dumped).unwrap();
    assert_eq!(bytes[70_000], ((70_000u32 % 251) as u8) ^ 0xff);
    // The raw vfs_cap_data: revision 2 with the effective flag, permitted bits 12 and 13
    // (cap_net_admin, cap_net_raw), little-endian.
    let ea = Command::new("debugfs").args(["-R", "ea_get -x /usr/bin/ping security.capability"]).arg(&b).output();
    let ea = String::from_utf8_lossy(&ea.unwrap().stdout).into_owned();
    assert!(ea.replace(' ', "").contains("0100000200300000"), "{ea}");
}

#[test]
fn identical_images_exit_zero_with_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let a = image(dir.path(), "a", &tree());
    let b = image(dir.path(), "b", &tree());
    let out = diff(dir.path(), &a, &b, &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), "");
    assert_eq!(stdout(&diff(dir.path(), &a, &b, &["--json"])).trim(), "[]");
}

#[test]
fn sparse_and_raw_forms_of_one_image_are_identical() {
    let dir = tempfile::tempdir().unwrap();
    let raw = image(dir.path(), "a", &tree());
    let sparse = dir.path().join("a.simg");
    run_ok(forge(dir.path()).args(["image", "sparse"]).arg(&raw).arg(&sparse));
    let out = diff(dir.path(), &raw, &sparse, &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let changed = image(dir.path(), "b", &changed_tree());
    assert_eq!(diff(dir.path(), &sparse, &changed, &[]).status.code(), Some(1));
}

#[test]
fn a_directory_equals_the_tarball_gnu_tar_makes_of_it() {
    if !have_tool("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/motd"), "line one\nline two\n").unwrap();
    std::os::unix::fs::symlink("motd", root.join("etc/issue")).unwrap();
    for name in ["root.tar", "root.tar.gz"] {
        let tar = dir.path().join(name);
        let compress = if name.ends_with(".gz") { "-czf" } else { "-cf" };
        let st = Command::new("tar")
            .args(["--owner=0", "--group=0", "--numeric-owner", "-C"])
            .arg(&root)
            .arg(compress)
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        let out = diff(dir.path(), &root, &tar, &[]);
        assert_eq!(out.status.code(), Some(0), "{name}: {out:?}");
    }
    let tar = dir.path().join("root.tar");
    std::fs::write(root.join("etc/motd"), "line one\nline 2\n").unwrap();
    let out = diff(dir.path(), &tar, &root, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("\n  @@ line 2 @@\n  -line two\n  +line 2"), "{}", stdout(&out));
}

#[test]
fn a_manifest_file_equals_the_image_it_lists() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), "a", &tree());
    let listing = dir.path().join("a.manifest");
    std::fs::write(&listing, stdout(&run_ok(forge(dir.path()).args(["image", "manifest"]).arg(&img)))).unwrap();
    assert_eq!(diff(dir.path(), &listing, &img, &[]).status.code(), Some(0));
    let changed = image(dir.path(), "b", &changed_tree());
    let out = diff(dir.path(), &listing, &changed, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out).lines().count(), 4, "{}", stdout(&out));
}

#[test]
fn unreadable_or_malformed_inputs_exit_three_and_name_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), "a", &tree());
    let missing = dir.path().join("missing.img");
    let out = diff(dir.path(), &missing, &img, &[]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.img"));
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, vec![7u8; 5000]).unwrap();
    assert_eq!(diff(dir.path(), &img, &junk, &[]).status.code(), Some(3));
    let bad = dir.path().join("bad.manifest");
    std::fs::write(&bad, "/ dir 0755 0 0\n/etc nonsense\n").unwrap();
    let out = diff(dir.path(), &bad, &img, &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"), "{out:?}");
}

#[test]
fn diffoscope_is_handed_each_file_whose_content_differs() {
    if !have_tool("diffoscope") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = image(dir.path(), "a", &tree());
    let mut t = tree();
    t.write("/etc/motd", "hello there\n", 0o644).unwrap();
    let b = image(dir.path(), "b", &t);
    let out = diff(dir.path(), &a, &b, &["--diffoscope"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("diffoscope /etc/motd:"), "{text}");
    assert!(text.contains("-hello") && text.contains("+hello there"), "{text}");
}
