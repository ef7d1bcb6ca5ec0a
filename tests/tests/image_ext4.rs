//! The ext4 writer against `e2fsck -fn` and `debugfs`, the oracles e2fsprogs ships.

use std::path::Path;
use std::process::Command;

use forge_engine::ext4::{write_ext4, Ext4Options};
use forge_engine::fstree::{FsTree, Special};
use forge_tests::*;

/// A tree with every kind of entry, odd owners and modes, a capability and a hard link.
fn every_kind() -> FsTree {
    let mut t = FsTree::new(1_700_000_000);
    t.write("/etc/motd", "hello\n", 0o644).unwrap();
    t.write("/bin/busybox", vec![0x7f; 10_000], 0o755).unwrap();
    t.hardlink("/bin/sh", "/bin/busybox").unwrap();
    t.write("/usr/bin/ping", "ping", 0o4755).unwrap();
    t.setcap("/usr/bin/ping", "cap_net_raw+ep").unwrap();
    t.symlink("/bin/ls", "busybox").unwrap();
    t.symlink("/bin/long", "x".repeat(200)).unwrap();
    t.mknod("/dev/null", Special::Char { major: 1, minor: 3 }, 0o666).unwrap();
    t.mknod("/dev/sda", Special::Block { major: 8, minor: 0 }, 0o660).unwrap();
    t.mknod("/dev/big", Special::Char { major: 300, minor: 70000 }, 0o600).unwrap();
    t.mknod("/run/fifo", Special::Fifo, 0o600).unwrap();
    t.mkdir_p("/tmp", 0o1777).unwrap();
    t.chmod("/tmp", 0o1777).unwrap();
    t.write("/home/u/f", "owned", 0o2750).unwrap();
    t.chown("/home/u/f", 200000, 200000).unwrap();
    t.chown("/home/u", 200000, 200001).unwrap();
    t.set_xattr("/etc/motd", "user.big", vec![b'v'; 500]).unwrap();
    t
}

fn e2fsck_clean(img: &Path) {
    let out = Command::new("e2fsck").args(["-fn"]).arg(img).output().unwrap();
    assert!(
        out.status.success(),
        "e2fsck -fn failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_tree_with_every_kind_of_entry_is_e2fsck_clean() {
    if !have_tool("e2fsck") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("root.img");
    write_ext4(&every_kind(), &img, &Ext4Options { size: Some(32 << 20), label: "root".into() }).unwrap();
    e2fsck_clean(&img);
    if let Ok(keep) = std::env::var("KEEP_IMG") {
        std::fs::copy(&img, keep).unwrap();
    }
}
