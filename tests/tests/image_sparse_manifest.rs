//! `forge image sparse` against `simg2img`/`img2simg`, and `forge image manifest` on a
//! tarball, the ext4 image made from it, its sparse image and an image `mke2fs -d` made.

use std::path::{Path, PathBuf};
use std::process::Command;

use forge_engine::fstree::{FsTree, Special};
use forge_engine::tar::write_tar;
use forge_tests::*;

fn sample_tree() -> FsTree {
    let mut t = FsTree::new(1_600_000_000);
    t.write("/etc/motd", "hello\n", 0o644).unwrap();
    t.write("/bin/busybox", (0..300_000u32).map(|i| (i % 253) as u8).collect::<Vec<u8>>(), 0o755).unwrap();
    t.hardlink("/bin/ash", "/bin/busybox").unwrap();
    t.write("/var/zeros", vec![0u8; 40_000], 0o600).unwrap();
    t.write("/usr/bin/ping", "ping", 0o4755).unwrap();
    t.setcap("/usr/bin/ping", "cap_net_raw+ep").unwrap();
    t.symlink("/bin/sh", "busybox").unwrap();
    t.symlink("/lib/long", "l".repeat(300)).unwrap();
    t.mknod("/dev/null", Special::Char { major: 1, minor: 3 }, 0o666).unwrap();
    t.mknod("/dev/loop0", Special::Block { major: 7, minor: 0 }, 0o660).unwrap();
    t.mknod("/run/initctl", Special::Fifo, 0o600).unwrap();
    t.chown("/etc/motd", 200000, 200001).unwrap();
    t
}

fn make_image(dir: &Path) -> (PathBuf, PathBuf) {
    let tar = dir.join("root.tar");
    write_tar(&sample_tree(), std::fs::File::create(&tar).unwrap()).unwrap();
    let img = dir.join("root.img");
    run_ok(forge(dir).args(["image", "ext4", "--from-tar"]).arg(&tar).args(["--size", "64M"]).arg(&img));
    (tar, img)
}

fn manifest_of(dir: &Path, input: &Path) -> String {
    stdout(&run_ok(forge(dir).args(["image", "manifest"]).arg(input)))
}

#[test]
fn simg2img_of_the_sparse_image_gives_the_raw_image_back() {
    if !have_tool("simg2img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, img) = make_image(dir.path());
    let sparse = dir.path().join("root.simg");
    run_ok(forge(dir.path()).args(["image", "sparse"]).arg(&img).arg(&sparse));
    assert!(std::fs::metadata(&sparse).unwrap().len() < std::fs::metadata(&img).unwrap().len() / 4);
    let back = dir.path().join("back.img");
    run_ok(Command::new("simg2img").arg(&sparse).arg(&back));
    assert!(std::fs::read(&back).unwrap() == std::fs::read(&img).unwrap(), "simg2img did not give the image back");
}

#[test]
fn sparse_images_use_fill_and_dont_care_only_where_safe() {
    if !have_tool("simg2img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Not ext4: zero blocks must be FILL, never DONT_CARE; a pattern block is FILL too.
    let raw = dir.path().join("raw.img");
    let mut bytes = vec![0u8; 64 * 4096];
    bytes[4096..8192].copy_from_slice(&[1, 2, 3, 4].repeat(1024));
    bytes[10 * 4096 + 7] = 9;
    std::fs::write(&raw, &bytes).unwrap();
    let sparse = dir.path().join("raw.simg");
    let out = run_ok(forge(dir.path()).args(["image", "sparse"]).arg(&raw).arg(&sparse));
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 don't care"), "{}", String::from_utf8_lossy(&out.stderr));
    let back = dir.path().join("back.img");
    run_ok(Command::new("simg2img").arg(&sparse).arg(&back));
    assert_eq!(std::fs::read(&back).unwrap(), bytes);
    // ext4: the free blocks are DONT_CARE.
    let (_, img) = make_image(dir.path());
    let out = run_ok(forge(dir.path()).args(["image", "sparse"]).arg(&img).arg(&sparse));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(" 0 don't care"));
    // A size that is not whole blocks is refused with exit 3.
    std::fs::write(&raw, [0u8; 100]).unwrap();
    let out = forge(dir.path()).args(["image", "sparse"]).arg(&raw).arg(&sparse).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn the_image_and_its_sparse_form_list_as_the_tarball_plus_lost_and_found() {
    let dir = tempfile::tempdir().unwrap();
    let (tar, img) = make_image(dir.path());
    let from_tar = manifest_of(dir.path(), &tar);
    let from_img = manifest_of(dir.path(), &img);
    let without_lf: Vec<&str> = from_img.lines().filter(|l| !l.starts_with("/lost+found ")).collect();
    assert_eq!(without_lf.join("\n"), from_tar);
    assert!(from_img.contains("/lost+found dir 0700 0 0"));
    assert!(from_tar.contains("/usr/bin/ping file 4755 0 0 size=4 sha256="));
    assert!(from_tar.contains("cap=cap_net_raw+ep"));
    assert!(from_tar.contains("/bin/busybox hardlink 0755 0 0 link=/bin/ash"));
    let sparse = dir.path().join("root.simg");
    run_ok(forge(dir.path()).args(["image", "sparse"]).arg(&img).arg(&sparse));
    assert_eq!(manifest_of(dir.path(), &sparse), from_img);
    // img2simg's sparse image of the same raw image lists the same.
    if have_tool("img2simg") {
        let theirs = dir.path().join("theirs.simg");
        run_ok(Command::new("img2simg").arg(&img).arg(&theirs));
        assert_eq!(manifest_of(dir.path(), &theirs), from_img);
    }
}

#[test]
fn the_reader_lists_an_image_mke2fs_made_like_the_folder_it_came_from() {
    if !have_tool("mke2fs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("d/sub")).unwrap();
    std::fs::write(src.join("d/a"), "alpha").unwrap();
    std::fs::write(src.join("big"), vec![5u8; 3 << 20]).unwrap();
    for i in 0..300 {
        std::fs::write(src.join(format!("d/sub/f{i}")), format!("{i}")).unwrap();
    }
    std::os::unix::fs::symlink("d/a", src.join("link")).unwrap();
    std::os::unix::fs::symlink("x".repeat(100), src.join("longlink")).unwrap();
    std::fs::hard_link(src.join("d/a"), src.join("hard")).unwrap();
    let img = dir.path().join("theirs.img");
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-b", "4096", "-d"])
        .arg(&src)
        .arg(&img)
        .arg("16M")
        .env("E2FSPROGS_FAKE_TIME", "0")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut host = FsTree::new(0);
    host.add_dir(&src, "/").unwrap();
    let want = forge_engine::manifest::manifest(&host).unwrap();
    let got = manifest_of(dir.path(), &img);
    // Compare what both sides know: path, type, mode, size, content and link targets
    // (owners come from the host user, and mke2fs keeps the root's host mode).
    let strip = |m: &str| -> Vec<String> {
        m.lines()
            .filter(|l| !l.starts_with("/lost+found") && !l.starts_with("/ "))
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                let kind = if f[1] == "hardlink" { "file" } else { f[1] };
                format!("{} {kind} {} {}", f[0], f[2], f[5..].join(" "))
            })
            .collect()
    };
    let (w, g) = (strip(&want), strip(&got));
    assert_eq!(g.len(), w.len());
    for (a, b) in g.iter().zip(&w) {
        if a.contains(" link=") || b.contains(" link=") {
            continue; // which name of a hard-linked pair holds the data is order-defined
        }
        assert_eq!(a, b);
    }
}
