//! The tar writer and reader against GNU tar (listing, extraction to stdout) and
//! gzip/xz/zstd streams made by the real tools.

use std::path::Path;
use std::process::Command;

use forge_engine::fstree::{FsTree, Kind, Special};
use forge_engine::tar::write_tar;
use forge_tests::*;

fn small_tree() -> FsTree {
    let mut t = FsTree::new(0);
    t.write("/bin/busybox", "bb", 0o755).unwrap();
    t.hardlink("/bin/ash", "/bin/busybox").unwrap();
    t.symlink("/bin/sh", "busybox").unwrap();
    t.mknod("/dev/null", Special::Char { major: 1, minor: 3 }, 0o666).unwrap();
    t.mknod("/dev/sda", Special::Block { major: 8, minor: 0 }, 0o660).unwrap();
    t.mknod("/run/p", Special::Fifo, 0o600).unwrap();
    t.mkdir_p("/tmp", 0o1777).unwrap();
    t.write("/home/u/f", "x", 0o2640).unwrap();
    t.chown("/home/u/f", 200000, 300000).unwrap();
    t.write(format!("/long/{}", "n".repeat(150)), "long", 0o644).unwrap();
    t.setcap("/bin/busybox", "cap_net_raw+ep").unwrap();
    t
}

fn gnu_list(tar: &Path) -> String {
    let out = run_ok(Command::new("tar").args(["--numeric-owner", "--utc", "-tvf"]).arg(tar));
    stdout(&out)
}

#[test]
fn gnu_tar_lists_what_the_writer_wrote() {
    if !have_tool("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("t.tar");
    write_tar(&small_tree(), std::fs::File::create(&tar).unwrap()).unwrap();
    let want = format!(
        "drwxr-xr-x 0/0               0 1970-01-01 00:00 ./
drwxr-xr-x 0/0               0 1970-01-01 00:00 bin/
-rwxr-xr-x 0/0               2 1970-01-01 00:00 bin/ash
hrwxr-xr-x 0/0               0 1970-01-01 00:00 bin/busybox link to bin/ash
lrwxrwxrwx 0/0               0 1970-01-01 00:00 bin/sh -> busybox
drwxr-xr-x 0/0               0 1970-01-01 00:00 dev/
crw-rw-rw- 0/0             1,3 1970-01-01 00:00 dev/null
brw-rw---- 0/0             8,0 1970-01-01 00:00 dev/sda
drwxr-xr-x 0/0               0 1970-01-01 00:00 home/
drwxr-xr-x 0/0               0 1970-01-01 00:00 home/u/
-rw-r-S--- 200000/300000     1 1970-01-01 00:00 home/u/f
drwxr-xr-x 0/0               0 1970-01-01 00:00 long/
-rw-r--r-- 0/0               4 1970-01-01 00:00 long/{}
drwxr-xr-x 0/0               0 1970-01-01 00:00 run/
prw------- 0/0               0 1970-01-01 00:00 run/p
drwxrwxrwt 0/0               0 1970-01-01 00:00 tmp/",
        "n".repeat(150)
    );
    assert_eq!(gnu_list(&tar), want);
    let content = run_ok(Command::new("tar").arg("-xOf").arg(&tar).arg(format!("long/{}", "n".repeat(150))));
    assert_eq!(content.stdout, b"long");
    // The capability is a SCHILY.xattr PAX record, as GNU tar --xattrs writes it.
    let bytes = std::fs::read(&tar).unwrap();
    let rec = b"SCHILY.xattr.security.capability=\x01\x00\x00\x02\x00\x20\x00\x00";
    assert!(bytes.windows(rec.len()).any(|w| w == rec));
    let mut again = Vec::new();
    write_tar(&small_tree(), &mut again).unwrap();
    assert!(again == bytes, "the same tree gives the same tar");
}

#[test]
fn compressed_tarballs_from_the_real_tools_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("t.tar");
    write_tar(&small_tree(), std::fs::File::create(&tar).unwrap()).unwrap();
    let want = forge_engine::manifest::manifest(&small_tree()).unwrap();
    for (tool, ext) in [("gzip", "gz"), ("xz", "xz"), ("zstd", "zst")] {
        if !have_tool(tool) {
            continue;
        }
        run_ok(Command::new(tool).args(["-k", "-q"]).arg(&tar));
        let mut t = FsTree::new(0);
        t.add_tar_file(&dir.path().join(format!("t.tar.{ext}"))).unwrap();
        assert_eq!(forge_engine::manifest::manifest(&t).unwrap(), want, "{tool}");
    }
    let mut t = FsTree::new(0);
    t.add_tar(std::fs::File::open(&tar).unwrap(), "stream").unwrap();
    assert_eq!(forge_engine::manifest::manifest(&t).unwrap(), want);
}

#[test]
fn gnu_tar_archives_with_long_names_and_links_read_back() {
    if !have_tool("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let long = "d".repeat(120);
    std::fs::create_dir_all(src.join(&long)).unwrap();
    std::fs::write(src.join(&long).join("f".repeat(200)), "deep").unwrap();
    std::os::unix::fs::symlink("t".repeat(150), src.join("sl")).unwrap();
    std::fs::hard_link(src.join(&long).join("f".repeat(200)), src.join("h")).unwrap();
    for format in ["gnu", "posix"] {
        let tar = dir.path().join(format!("{format}.tar"));
        run_ok(Command::new("tar").arg(format!("--format={format}")).arg("-cf").arg(&tar).arg("-C").arg(&src).arg("."));
        let mut t = FsTree::new(0);
        t.add_tar_file(&tar).unwrap();
        let Kind::Symlink(target) = &t.get("/sl").unwrap().kind else { panic!("{format}: /sl") };
        assert_eq!(target, &"t".repeat(150).into_bytes());
        // GNU tar archives in directory order: either name may be the one with the data.
        let path = forge_engine::fstree::TreePath::parse(format!("/{long}/{}", "f".repeat(200))).unwrap();
        let (_, data) = t.data_node(&path, t.get_path(&path).unwrap()).unwrap();
        let Kind::File(c) = &data.kind else { panic!() };
        assert_eq!(c.read_all().unwrap(), b"deep");
        let links = [t.get("/h").unwrap(), t.get_path(&path).unwrap()];
        assert_eq!(links.iter().filter(|n| matches!(n.kind, Kind::Hardlink(_))).count(), 1, "{format}");
    }
}
