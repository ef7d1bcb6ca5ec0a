//! `forge image ext4` against `e2fsck -fn` and `debugfs`, the oracles e2fsprogs ships:
//! every entry of the tarball must show up with exactly its type, mode, owner, size,
//! content, link target, device numbers and xattrs.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use forge_engine::fstree::{FsTree, Special};
use forge_engine::tar::write_tar;
use forge_tests::*;

/// A tree with every kind of entry, odd owners and modes, a capability and hard links.
fn every_kind() -> FsTree {
    let mut t = FsTree::new(1_700_000_000);
    t.write("/etc/motd", "hello\n", 0o644).unwrap();
    t.write("/etc/empty", "", 0o600).unwrap();
    t.write("/bin/busybox", (0..100_000u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>(), 0o755).unwrap();
    t.hardlink("/bin/sh", "/bin/busybox").unwrap();
    t.hardlink("/bin/ash", "/bin/busybox").unwrap();
    t.write("/usr/bin/ping", "ping", 0o4755).unwrap();
    t.setcap("/usr/bin/ping", "cap_net_raw+ep").unwrap();
    t.write("/usr/bin/sg", "sg", 0o2711).unwrap();
    t.symlink("/bin/ls", "busybox").unwrap();
    t.symlink("/bin/long", format!("/{}", "x/".repeat(100))).unwrap();
    t.mknod("/dev/null", Special::Char { major: 1, minor: 3 }, 0o666).unwrap();
    t.mknod("/dev/sda", Special::Block { major: 8, minor: 0 }, 0o660).unwrap();
    t.mknod("/dev/big", Special::Char { major: 300, minor: 70000 }, 0o600).unwrap();
    t.mknod("/run/fifo", Special::Fifo, 0o600).unwrap();
    t.mkdir_p("/tmp", 0o1777).unwrap();
    t.write("/home/u/f", "owned", 0o640).unwrap();
    t.chown("/home/u/f", 200000, 200000).unwrap();
    t.chown("/home/u", 200000, 200001).unwrap();
    t.chmod("/home/u", 0o3750).unwrap();
    t.set_xattr("/etc/motd", "user.big", vec![b'v'; 500]).unwrap();
    t.set_xattr("/etc/empty", "user.small", b"1".to_vec()).unwrap();
    t
}

/// Many entries in one directory, a 40-level deep path and 255-byte names.
fn big_tree() -> FsTree {
    let mut t = FsTree::new(0);
    for i in 0..6000 {
        t.write(format!("/many/file-{i:05}-{}", "n".repeat(i % 200)), format!("{i}"), 0o644).unwrap();
    }
    let deep: String = (0..40).map(|i| format!("/d{i}")).collect();
    t.write(format!("{deep}/leaf"), "deep", 0o644).unwrap();
    for c in ["a", "b", "c"] {
        t.write(format!("/long/{}", c.repeat(255)), c, 0o644).unwrap();
    }
    t
}

fn tar_of(tree: &FsTree, dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    write_tar(tree, std::fs::File::create(&p).unwrap()).unwrap();
    p
}

fn forge_ext4(dir: &Path, tar: &Path, img: &Path, extra: &[&str]) {
    run_ok(forge(dir).args(["image", "ext4", "--from-tar"]).arg(tar).args(extra).arg(img));
}

fn e2fsck_clean(img: &Path) {
    let out = Command::new("e2fsck").arg("-fn").arg(img).output().unwrap();
    assert!(
        out.status.success(),
        "e2fsck -fn failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs debugfs commands in one session; returns each command's output.
fn debugfs(img: &Path, cmds: &[String]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("cmds");
    std::fs::write(&script, cmds.join("\n") + "\n").unwrap();
    let out = Command::new("debugfs").arg("-f").arg(&script).arg(img).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut parts: Vec<String> = text.split("debugfs: ").skip(1).map(|s| s.to_owned()).collect();
    assert_eq!(parts.len(), cmds.len(), "debugfs output:\n{text}");
    for p in &mut parts {
        *p = p.split_once('\n').map(|(_, rest)| rest.to_owned()).unwrap_or_default();
    }
    parts
}

fn field<'a>(stat: &'a str, key: &str) -> &'a str {
    let at = stat.find(key).unwrap_or_else(|| panic!("no `{key}` in\n{stat}")) + key.len();
    stat[at..].split_whitespace().next().unwrap()
}

/// What the `tar` crate (a third-party reader) says one member is.
struct Member {
    path: String,
    kind: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    content: Vec<u8>,
    link: String,
    dev: (u32, u32),
    xattrs: BTreeMap<String, Vec<u8>>,
}

fn members(tar: &Path) -> Vec<Member> {
    let mut ar = tar::Archive::new(std::fs::File::open(tar).unwrap());
    let mut v = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let path = format!("/{}", e.path().unwrap().display()).trim_end_matches('/').replace("/./", "/");
        let mut xattrs = BTreeMap::new();
        if let Some(exts) = e.pax_extensions().unwrap() {
            for x in exts {
                let x = x.unwrap();
                if let Some(n) = x.key().unwrap().strip_prefix("SCHILY.xattr.") {
                    xattrs.insert(n.to_owned(), x.value_bytes().to_vec());
                }
            }
        }
        let link = e.link_name().unwrap().map(|l| l.display().to_string()).unwrap_or_default();
        let mut content = Vec::new();
        e.read_to_end(&mut content).unwrap();
        let dev = (h.device_major().unwrap().unwrap_or(0), h.device_minor().unwrap().unwrap_or(0));
        let path = if path == "/." { "/".to_owned() } else { path };
        v.push(Member {
            path,
            kind: h.entry_type().as_byte(),
            mode: h.mode().unwrap() & 0o7777,
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            content,
            link,
            dev,
            xattrs,
        });
    }
    v
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x} ")).collect::<String>().trim_end().to_owned()
}

/// Checks every member of `tar` against debugfs's view of `img`.
fn assert_image_matches_tar(img: &Path, tar: &Path) {
    let members = members(tar);
    let dumps = tempfile::tempdir().unwrap();
    let mut cmds = Vec::new();
    for (i, m) in members.iter().enumerate() {
        cmds.push(format!("stat \"{}\"", m.path));
        cmds.push(format!("ea_list \"{}\"", m.path));
        cmds.push(format!("dump \"{}\" {}/{i}", m.path, dumps.path().display()));
    }
    let out = debugfs(img, &cmds);
    let mut inode_of: BTreeMap<String, String> = BTreeMap::new();
    for (i, m) in members.iter().enumerate() {
        let (stat, ea) = (&out[3 * i], &out[3 * i + 1]);
        let ctx = format!("{} in\n{stat}", m.path);
        let want_type = match m.kind {
            b'0' | b'1' => "regular",
            b'2' => "symlink",
            b'3' => "character",
            b'4' => "block",
            b'5' => "directory",
            b'6' => "FIFO",
            k => panic!("unexpected member type {k}"),
        };
        assert_eq!(field(stat, "Type:"), want_type, "{ctx}");
        let inode = field(stat, "Inode:").to_owned();
        if m.kind == b'1' {
            let target = format!("/{}", m.link);
            assert_eq!(inode_of[&target], inode, "hard link {} shares {target}'s inode", m.path);
            continue;
        }
        inode_of.insert(m.path.clone(), inode);
        assert_eq!(u32::from_str_radix(field(stat, "Mode:"), 8).unwrap(), m.mode, "{ctx}");
        assert_eq!(field(stat, "User:").parse::<u64>().unwrap(), m.uid, "{ctx}");
        assert_eq!(field(stat, "Group:").parse::<u64>().unwrap(), m.gid, "{ctx}");
        let dumped = std::fs::read(dumps.path().join(i.to_string())).unwrap_or_default();
        match m.kind {
            b'0' => {
                assert_eq!(field(stat, "Size:").parse::<usize>().unwrap(), m.content.len(), "{ctx}");
                assert!(dumped == m.content, "content of {}", m.path);
            }
            b'2' => {
                assert_eq!(field(stat, "Size:").parse::<usize>().unwrap(), m.link.len(), "{ctx}");
                if m.link.len() < 60 {
                    assert_eq!(field(stat, "Fast link dest:"), format!("\"{}\"", m.link), "{ctx}");
                } else {
                    assert_eq!(String::from_utf8_lossy(&dumped), m.link, "{ctx}");
                }
            }
            b'3' | b'4' => {
                let (ma, mi) = field(stat, "Device major/minor number:").split_once(':').unwrap();
                assert_eq!((ma.parse().unwrap(), mi.parse().unwrap()), m.dev, "{ctx}");
            }
            _ => {}
        }
        for (name, value) in &m.xattrs {
            let short = format!("{name} ({}) = {}", value.len(), hex(value));
            let text = format!("{name} ({}) = \"{}\"", value.len(), String::from_utf8_lossy(value));
            let long = format!("{name} ({})", value.len());
            let shown = ea.contains(&short) || ea.contains(&text) || (value.len() > 40 && ea.contains(&long));
            assert!(shown, "{name} of {}: {ea}", m.path);
        }
        assert_eq!(ea.matches(" (").count(), m.xattrs.len(), "xattrs of {}: {ea}", m.path);
    }
}

#[test]
fn every_kind_of_entry_shows_in_debugfs_exactly_as_in_the_tar() {
    if !have_tool("e2fsck") || !have_tool("debugfs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tar = tar_of(&every_kind(), dir.path(), "root.tar");
    let img = dir.path().join("root.img");
    forge_ext4(dir.path(), &tar, &img, &["--size", "32M", "--label", "root"]);
    e2fsck_clean(&img);
    assert_image_matches_tar(&img, &tar);
    let caps = &debugfs(&img, &["ea_list /usr/bin/ping".into()])[0];
    assert!(caps.contains("security.capability (20) = 01 00 00 02 00 20 00 00 00 00"), "{caps}");
    let stat = &debugfs(&img, &["stat /bin/busybox".into()])[0];
    assert_eq!(field(stat, "Links:"), "3");
}

#[test]
fn big_directories_deep_paths_and_long_names_are_e2fsck_clean_and_listed() {
    if !have_tool("e2fsck") || !have_tool("debugfs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tar = tar_of(&big_tree(), dir.path(), "big.tar");
    let img = dir.path().join("big.img");
    forge_ext4(dir.path(), &tar, &img, &[]);
    e2fsck_clean(&img);
    let deep: String = (0..40).map(|i| format!("/d{i}")).collect();
    let out = debugfs(&img, &["ls -p /many".into(), format!("cat {deep}/leaf"), "ls -p /long".to_string()]);
    let names: Vec<&str> =
        out[0].lines().filter_map(|l| l.split('/').nth(5)).filter(|n| n.starts_with("file-")).collect();
    assert_eq!(names.len(), 6000);
    assert_eq!(out[1], "deep");
    assert_eq!(out[2].matches(&"a".repeat(255)).count(), 1, "{}", out[2]);
    assert_image_matches_tar(&img, &tar);
}

#[test]
fn the_same_tar_gives_the_same_image_bytes_whatever_the_host_state() {
    let dir = tempfile::tempdir().unwrap();
    let tar = tar_of(&every_kind(), dir.path(), "root.tar");
    let (a, b) = (dir.path().join("a.img"), dir.path().join("b.img"));
    forge_ext4(dir.path(), &tar, &a, &["--size", "16M"]);
    let other_cwd = tempfile::tempdir().unwrap();
    let mut cmd = forge(dir.path());
    cmd.current_dir(other_cwd.path()).env("TZ", "Asia/Tokyo").env("TMPDIR", other_cwd.path());
    // A different umask must not leak into the image either.
    let mut sh = Command::new("sh");
    sh.arg("-c").arg("umask 077; exec \"$@\"").arg("sh").arg(cmd.get_program()).args(cmd.get_args());
    sh.args(["image", "ext4", "--from-tar"]).arg(&tar).args(["--size", "16M"]).arg(&b);
    sh.current_dir(other_cwd.path());
    run_ok(&mut sh);
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(), "images differ");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&a).unwrap().permissions().mode() & 0o777, 0o644, "not the temp file's 0600");
}

#[test]
fn a_tree_too_big_for_the_size_fails_saying_how_much_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = FsTree::new(0);
    t.write("/big", vec![1u8; 3 << 20], 0o644).unwrap();
    let tar = tar_of(&t, dir.path(), "t.tar");
    let img = dir.path().join("x.img");
    std::fs::write(&img, "precious").unwrap();
    let out = forge(dir.path())
        .args(["image", "ext4", "--from-tar"])
        .arg(&tar)
        .args(["--size", "1M"])
        .arg(&img)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs at least") && err.contains("MiB"), "{err}");
    assert_eq!(std::fs::read(&img).unwrap(), b"precious", "a failed write keeps the old file");
}

#[test]
fn a_malformed_or_traversing_tar_is_refused_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.tar");
    std::fs::write(&bad, vec![7u8; 1024]).unwrap();
    let out = forge(dir.path())
        .args(["image", "ext4", "--from-tar"])
        .arg(&bad)
        .arg(dir.path().join("o.img"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../escape");
    h.set_size(0);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &[][..]).unwrap();
    let evil = dir.path().join("evil.tar");
    std::fs::write(&evil, b.into_inner().unwrap()).unwrap();
    let out = forge(dir.path())
        .args(["image", "ext4", "--from-tar"])
        .arg(&evil)
        .arg(dir.path().join("o.img"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains(".."));
}

#[test]
fn a_file_over_4_gib_keeps_its_size_and_an_extent_tree() {
    if !have_tool("e2fsck") || !have_tool("debugfs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A sparse host file: 4.5 GiB, data only at both ends, so the test reads holes.
    let big = dir.path().join("big");
    let f = std::fs::File::create(&big).unwrap();
    let size: u64 = (4 << 30) + (512 << 20) + 123;
    f.set_len(size).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"head", 0).unwrap();
    f.write_all_at(b"tail", size - 4).unwrap();
    let mut t = FsTree::new(0);
    t.write("/big", forge_engine::fstree::Content::host_file(&big).unwrap(), 0o644).unwrap();
    let img = dir.path().join("big.img");
    forge_engine::ext4::write_ext4(&t, &img, &Default::default()).unwrap();
    e2fsck_clean(&img);
    let stat = &debugfs(&img, &["stat /big".into()])[0];
    assert_eq!(field(stat, "Size:"), size.to_string());
    // 36 groups of data cannot fit the inode's four extents: an index block appears.
    assert!(stat.contains("(ETB0)"), "{stat}");
    let image = forge_engine::ext4::Ext4Image::open_file(&img).unwrap();
    let tree = image.to_fstree(&img, 0).unwrap();
    let forge_engine::fstree::Kind::File(c) = &tree.get("/big").unwrap().kind else { panic!() };
    let mut r = c.open().unwrap();
    let mut head = [0u8; 4];
    r.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"head");
    let forge_engine::fstree::Content::Runs { runs, .. } = c else { panic!() };
    let last = runs.last().unwrap();
    let mut tail = [0u8; 4];
    std::fs::File::open(&img).unwrap().read_exact_at(&mut tail, last.physical + last.len - 4).unwrap();
    assert_eq!(&tail, b"tail");
}

#[test]
fn holes_and_written_zeros_give_the_same_image() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = vec![0u8; 1 << 20];
    bytes[300_000] = 1;
    let holey = dir.path().join("holey");
    let f = std::fs::File::create(&holey).unwrap();
    f.set_len(bytes.len() as u64).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[1], 300_000).unwrap();
    let (mut a, mut b) = (FsTree::new(0), FsTree::new(0));
    a.write("/f", bytes, 0o644).unwrap();
    b.write("/f", forge_engine::fstree::Content::host_file(&holey).unwrap(), 0o644).unwrap();
    let (ia, ib) = (dir.path().join("a.img"), dir.path().join("b.img"));
    forge_engine::ext4::write_ext4(&a, &ia, &Default::default()).unwrap();
    forge_engine::ext4::write_ext4(&b, &ib, &Default::default()).unwrap();
    assert!(std::fs::read(&ia).unwrap() == std::fs::read(&ib).unwrap());
}

/// The data tar of a real Alpine package (the third gzip stream of the apk).
fn apk_data_tar(apk: &Path) -> Vec<u8> {
    let mut r = std::io::BufReader::new(std::fs::File::open(apk).unwrap());
    let mut data = Vec::new();
    for _ in 0..3 {
        data.clear();
        flate2::bufread::GzDecoder::new(&mut r).read_to_end(&mut data).unwrap();
    }
    data
}

#[test]
fn a_real_alpine_package_becomes_a_clean_image_listing_like_its_tar() {
    let Some(fixtures) = alpine_fixtures() else { return };
    if !have_tool("e2fsck") {
        return;
    }
    let data = apk_data_tar(&fixtures.join("alpine-baselayout-3.2.0-r23-aarch64.apk"));
    let mut tree = FsTree::new(0);
    tree.add_tar(&data[..], "alpine-baselayout data").unwrap();
    assert!(tree.get("/etc/motd").is_some() && tree.get("/var/tmp").is_some());
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("base.img");
    forge_engine::ext4::write_ext4(&tree, &img, &Default::default()).unwrap();
    e2fsck_clean(&img);
    let back = forge_engine::ext4::Ext4Image::open_file(&img).unwrap().to_fstree(&img, 0).unwrap();
    let want = forge_engine::manifest::manifest(&tree).unwrap();
    let got = forge_engine::manifest::manifest(&back).unwrap();
    let got: Vec<&str> = got.lines().filter(|l| !l.starts_with("/lost+found ")).collect();
    assert_eq!(got.join("\n") + "\n", want);
    assert!(want.contains("/var/tmp dir 1777 0 0") && want.contains("/var/run symlink 0777 0 0 target=/run"), "{want}");
}
