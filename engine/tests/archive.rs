//! The unpack builtin against hostile archives and against archives made by the
//! real tools (`tar`, `xz`, `zstd`, `bzip2`, `zip`, `dpkg-deb`), with `nix-hash`
//! as the oracle for the unpacked trees.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use forge_engine::archive::{self, Error, Format, Limits, UnpackOptions};
use forge_tests::{have_tool, nix_hash};

/// Appends a tar entry with exactly the given name and link name: the tar crate's
/// own setters refuse `..` and absolute paths, and these tests need them.
fn raw_entry(b: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, name: &str, link: &str, mode: u32, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn file(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    raw_entry(b, tar::EntryType::Regular, name, "", 0o644, data);
}

fn write_tar(dir: &Path, build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> PathBuf {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    let path = dir.join("test.tar");
    fs::write(&path, b.into_inner().unwrap()).unwrap();
    path
}

fn unpack(archive: &Path, dest: &Path) -> archive::Result<archive::Unpacked> {
    archive::unpack(archive, dest, &UnpackOptions::default())
}

/// A scratch dir with `out/` (the destination) and `outside/` (must stay empty).
struct Scene {
    tmp: tempfile::TempDir,
}

impl Scene {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("outside")).unwrap();
        Scene { tmp }
    }
    fn path(&self) -> &Path {
        self.tmp.path()
    }
    fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }
    fn outside(&self) -> PathBuf {
        self.tmp.path().join("outside")
    }
    fn assert_outside_untouched(&self) {
        let left: Vec<_> = fs::read_dir(self.outside()).unwrap().collect();
        assert!(left.is_empty(), "something was written outside the destination: {left:?}");
        assert!(!self.path().join("x").exists());
    }
}

#[test]
fn dot_dot_entry_is_refused() {
    let s = Scene::new();
    let tar = write_tar(s.path(), |b| file(b, "a/../../x", b"evil"));
    let err = unpack(&tar, &s.out()).unwrap_err();
    assert!(matches!(err, Error::Traversal { .. }), "{err}");
    assert!(err.to_string().contains("a/../../x"), "{err}");
    s.assert_outside_untouched();
}

#[test]
fn absolute_entry_is_refused() {
    let s = Scene::new();
    let target = s.outside().join("abs");
    let tar = write_tar(s.path(), |b| file(b, target.to_str().unwrap(), b"evil"));
    let err = unpack(&tar, &s.out()).unwrap_err();
    assert!(matches!(err, Error::AbsolutePath { .. }), "{err}");
    s.assert_outside_untouched();
}

#[test]
fn file_through_a_relative_symlink_is_refused() {
    let s = Scene::new();
    let tar = write_tar(s.path(), |b| {
        raw_entry(b, tar::EntryType::Symlink, "link", "../outside", 0o777, b"");
        file(b, "link/pwned", b"evil");
    });
    let err = unpack(&tar, &s.out()).unwrap_err();
    assert!(matches!(err, Error::ThroughLink { .. }), "{err}");
    s.assert_outside_untouched();
}

#[test]
fn file_through_a_symlink_pointing_inside_is_refused_too() {
    let s = Scene::new();
    let tar = write_tar(s.path(), |b| {
        raw_entry(b, tar::EntryType::Directory, "real", "", 0o755, b"");
        raw_entry(b, tar::EntryType::Symlink, "alias", "real", 0o777, b"");
        file(b, "alias/f", b"data");
    });
    let err = unpack(&tar, &s.out()).unwrap_err();
    assert!(matches!(err, Error::ThroughLink { ref via, .. } if via == "alias"), "{err}");
    assert!(!s.out().join("real/f").exists());
}

#[test]
fn write_through_an_absolute_symlink_is_refused_and_the_link_kept_as_data() {
    let s = Scene::new();
    let outside = s.outside();
    let tar = write_tar(s.path(), |b| {
        raw_entry(b, tar::EntryType::Symlink, "abs", outside.to_str().unwrap(), 0o777, b"");
        file(b, "abs/pwned", b"evil");
    });
    let err = unpack(&tar, &s.out()).unwrap_err();
    assert!(matches!(err, Error::ThroughLink { .. }), "{err}");
    s.assert_outside_untouched();

    // Alone, an absolute symlink is fine: it is data, never followed.
    let s = Scene::new();
    let tar = write_tar(s.path(), |b| raw_entry(b, tar::EntryType::Symlink, "abs", "/etc/passwd", 0o777, b""));
    unpack(&tar, &s.out()).unwrap();
    assert_eq!(fs::read_link(s.out().join("abs")).unwrap(), Path::new("/etc/passwd"));
}

#[test]
fn a_file_replacing_a_symlink_does_not_write_through_it() {
    let s = Scene::new();
    let victim = s.outside().join("victim");
    fs::write(&victim, b"precious").unwrap();
    let tar = write_tar(s.path(), |b| {
        raw_entry(b, tar::EntryType::Symlink, "f", victim.to_str().unwrap(), 0o777, b"");
        file(b, "f", b"replacement");
    });
    unpack(&tar, &s.out()).unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    assert_eq!(fs::read(s.out().join("f")).unwrap(), b"replacement");
    assert!(!fs::symlink_metadata(s.out().join("f")).unwrap().file_type().is_symlink());
}

#[test]
fn hardlinks_out_of_the_tree_are_refused() {
    for (target, want) in
        [("../outside/x", "Traversal"), ("/etc/passwd", "AbsolutePath"), ("missing", "HardlinkOutside")]
    {
        let s = Scene::new();
        let tar = write_tar(s.path(), |b| raw_entry(b, tar::EntryType::Link, "h", target, 0o644, b""));
        let err = unpack(&tar, &s.out()).unwrap_err();
        assert!(format!("{err:?}").starts_with(want), "{target}: {err:?}");
        assert!(!s.out().join("h").exists());
    }
}

#[test]
fn hardlinks_inside_the_tree_share_content() {
    let s = Scene::new();
    let tar = write_tar(s.path(), |b| {
        file(b, "d/a", b"shared");
        raw_entry(b, tar::EntryType::Link, "b", "d/a", 0o644, b"");
    });
    unpack(&tar, &s.out()).unwrap();
    assert_eq!(fs::read(s.out().join("b")).unwrap(), b"shared");
}

#[test]
fn device_nodes_and_fifos_are_skipped_with_a_note() {
    let s = Scene::new();
    let tar = write_tar(s.path(), |b| {
        raw_entry(b, tar::EntryType::Char, "dev/null", "", 0o666, b"");
        raw_entry(b, tar::EntryType::Block, "dev/sda", "", 0o660, b"");
        raw_entry(b, tar::EntryType::Fifo, "fifo", "", 0o644, b"");
        file(b, "kept", b"x");
    });
    let done = unpack(&tar, &s.out()).unwrap();
    assert_eq!(done.notes.len(), 3, "{:?}", done.notes);
    assert!(done.notes.iter().all(|n| n.why.contains("skipped")));
    assert!(!s.out().join("dev/null").exists() && !s.out().join("fifo").exists());
    assert!(s.out().join("kept").exists());
}

#[test]
fn setuid_and_setgid_bits_are_dropped_and_modes_normalized() {
    let s = Scene::new();
    let tar = write_tar(s.path(), |b| {
        raw_entry(b, tar::EntryType::Regular, "suid", "", 0o4755, b"x");
        raw_entry(b, tar::EntryType::Regular, "sgid", "", 0o2711, b"x");
        raw_entry(b, tar::EntryType::Regular, "plain", "", 0o600, b"x");
        raw_entry(b, tar::EntryType::Directory, "ro", "", 0o500, b"");
    });
    let done = unpack(&tar, &s.out()).unwrap();
    let mode = |p: &str| fs::metadata(s.out().join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!((mode("suid"), mode("sgid"), mode("plain"), mode("ro")), (0o755, 0o755, 0o644, 0o755));
    assert_eq!(done.notes.len(), 2, "{:?}", done.notes);
}

fn zeros_tar(dir: &Path, mib: usize) -> PathBuf {
    write_tar(dir, |b| file(b, "zeros", &vec![0u8; mib << 20]))
}

#[test]
fn huge_expansion_is_refused_past_the_size_limit() {
    let s = Scene::new();
    let tar = zeros_tar(s.path(), 40);
    let gz = s.path().join("bomb.tar.gz");
    let mut enc = flate2::write::GzEncoder::new(fs::File::create(&gz).unwrap(), flate2::Compression::best());
    enc.write_all(&fs::read(&tar).unwrap()).unwrap();
    enc.finish().unwrap();
    assert!(fs::metadata(&gz).unwrap().len() < 1 << 20);
    let opts = UnpackOptions { limits: Limits { max_bytes: 10 << 20, ..Limits::default() }, ..Default::default() };
    let err = archive::unpack(&gz, &s.out(), &opts).unwrap_err();
    assert!(matches!(err, Error::TooLarge { limit, .. } if limit == 10 << 20), "{err}");
    assert!(err.to_string().contains("10485760 bytes"), "{err}");
}

#[test]
fn zip_bomb_is_refused_past_the_size_limit() {
    let s = Scene::new();
    let path = s.path().join("bomb.zip");
    let mut z = zip::ZipWriter::new(fs::File::create(&path).unwrap());
    z.start_file("zeros", zip::write::SimpleFileOptions::default()).unwrap();
    z.write_all(&vec![0u8; 40 << 20]).unwrap();
    z.finish().unwrap();
    let opts = UnpackOptions { limits: Limits { max_bytes: 10 << 20, ..Limits::default() }, ..Default::default() };
    let err = archive::unpack(&path, &s.out(), &opts).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
}

#[test]
fn too_many_entries_are_refused() {
    let s = Scene::new();
    let tar = write_tar(s.path(), |b| (0..50).for_each(|i| file(b, &format!("f{i}"), b"")));
    let opts = UnpackOptions { limits: Limits { max_entries: 20, ..Limits::default() }, ..Default::default() };
    let err = archive::unpack(&tar, &s.out(), &opts).unwrap_err();
    assert!(matches!(err, Error::TooManyEntries { limit: 20, .. }), "{err}");
}

#[test]
fn a_huge_gnu_long_name_is_refused_before_it_is_read_into_memory() {
    let s = Scene::new();
    let tar = write_tar(s.path(), |b| {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        h.set_entry_type(tar::EntryType::GNULongName);
        h.set_mode(0o644);
        h.set_size(64 << 20);
        h.set_cksum();
        b.append(&h, &vec![b'a'; 64 << 20][..]).unwrap();
        file(b, "short", b"x");
    });
    let err = unpack(&tar, &s.out()).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }) && err.to_string().contains("tar metadata"), "{err}");
}

#[test]
fn a_non_empty_destination_is_refused() {
    let s = Scene::new();
    let tar = write_tar(s.path(), |b| file(b, "a", b"x"));
    fs::create_dir(s.out()).unwrap();
    fs::write(s.out().join("mine"), b"keep").unwrap();
    let err = unpack(&tar, &s.out()).unwrap_err();
    assert!(matches!(err, Error::DestNotEmpty { .. }), "{err}");
    assert_eq!(fs::read(s.out().join("mine")).unwrap(), b"keep");
}

#[test]
fn garbage_is_an_unknown_format_and_truncation_is_corrupt() {
    let s = Scene::new();
    let junk = s.path().join("junk.tar.gz");
    fs::write(&junk, b"this is not an archive at all").unwrap();
    let err = unpack(&junk, &s.out()).unwrap_err();
    assert!(matches!(err, Error::UnknownFormat { .. }), "{err}");
    assert!(err.to_string().contains("74 68 69 73"), "{err}");

    let tar = zeros_tar(s.path(), 1);
    let xz = s.path().join("t.tar.xz");
    let mut enc = xz2::write::XzEncoder::new(Vec::new(), 6);
    enc.write_all(&fs::read(&tar).unwrap()).unwrap();
    let bytes = enc.finish().unwrap();
    fs::write(&xz, &bytes[..bytes.len() / 2]).unwrap();
    let err = unpack(&xz, &s.path().join("out2")).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
}

// ---- formats made by the real tools, checked with nix-hash ----

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A small tree with every kind of entry an archive can carry into the store.
fn sample_tree(root: &Path) {
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::create_dir_all(root.join("usr/share/doc/pkg")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::write(root.join("usr/bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(root.join("usr/bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(root.join("usr/share/doc/pkg/README"), "text\n".repeat(5000)).unwrap();
    fs::write(root.join("usr/share/doc/pkg/blob"), (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect::<Vec<_>>())
        .unwrap();
    symlink("tool", root.join("usr/bin/alias")).unwrap();
    symlink("/usr/bin/tool", root.join("usr/bin/abs")).unwrap();
}

fn packed_dir() -> (tempfile::TempDir, PathBuf, String) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("pkg-1.0");
    sample_tree(&src);
    let want = nix_hash(&src);
    (tmp, src, want)
}

fn check_tar_with(flag: &str, ext: &str, tool: &str, want_format: Format) {
    if !have_tool("nix-hash") || !have_tool("tar") || !have_tool(tool) {
        return;
    }
    let (tmp, _src, want) = packed_dir();
    // Named `.bin` so that only the content can tell the format.
    let archive = tmp.path().join(format!("a-{ext}.bin"));
    let mut cmd = Command::new("tar");
    cmd.arg("-C").arg(tmp.path()).arg(flag).arg("-cf").arg(&archive).arg("pkg-1.0");
    run(&mut cmd);
    let out = tmp.path().join("out");
    let opts = UnpackOptions { strip_components: 1, ..Default::default() };
    let done = archive::unpack(&archive, &out, &opts).unwrap();
    assert_eq!(done.format, want_format);
    assert_eq!(nix_hash(&out), want, "{ext}");
}

#[test]
fn plain_tar_round_trips() {
    check_tar_with("--format=gnu", "tar", "tar", Format::Tar);
}

#[test]
fn tar_gz_round_trips() {
    check_tar_with("--gzip", "tar.gz", "gzip", Format::TarGz);
}

#[test]
fn tar_xz_round_trips() {
    check_tar_with("--xz", "tar.xz", "xz", Format::TarXz);
}

#[test]
fn tar_bz2_round_trips() {
    check_tar_with("--bzip2", "tar.bz2", "bzip2", Format::TarBz2);
}

#[test]
fn tar_zst_round_trips() {
    check_tar_with("--zstd", "tar.zst", "zstd", Format::TarZst);
}

#[test]
fn pax_tar_round_trips() {
    check_tar_with("--format=pax", "pax.tar", "tar", Format::Tar);
}

#[test]
fn zip_round_trips_with_symlinks_and_modes() {
    if !have_tool("nix-hash") || !have_tool("zip") {
        return;
    }
    let (tmp, _src, want) = packed_dir();
    let archive = tmp.path().join("a.zip");
    run(Command::new("zip").current_dir(tmp.path()).args(["-q", "-r", "-y"]).arg(&archive).arg("pkg-1.0"));
    let out = tmp.path().join("out");
    let opts = UnpackOptions { strip_components: 1, ..Default::default() };
    assert_eq!(archive::unpack(&archive, &out, &opts).unwrap().format, Format::Zip);
    assert_eq!(nix_hash(&out), want);
}

#[test]
fn deb_unpacks_its_data_tar() {
    if !have_tool("nix-hash") || !have_tool("dpkg-deb") {
        return;
    }
    let (tmp, src, want) = packed_dir();
    fs::create_dir(src.join("DEBIAN")).unwrap();
    fs::write(
        src.join("DEBIAN/control"),
        "Package: pkg\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@t>\nDescription: test\n",
    )
    .unwrap();
    for compression in ["xz", "gzip", "zstd", "none"] {
        let deb = tmp.path().join(format!("pkg-{compression}.deb"));
        run(Command::new("dpkg-deb").args(["--root-owner-group", "-Z", compression, "--build"]).arg(&src).arg(&deb));
        let out = tmp.path().join(format!("out-{compression}"));
        assert_eq!(unpack(&deb, &out).unwrap().format, Format::Deb);
        assert_eq!(nix_hash(&out), want, "{compression}");
    }
}

#[test]
fn apk_unpacks_only_its_data_stream() {
    let (Some(fixtures), true, true) = (forge_tests::alpine_fixtures(), have_tool("nix-hash"), have_tool("tar")) else {
        return;
    };
    let apk = fixtures.join("alpine-baselayout-3.2.0-r23-aarch64.apk");
    let tmp = tempfile::tempdir().unwrap();
    // Oracle: GNU tar reads the concatenated streams as one archive; drop the
    // signature and control files it extracts next to the data.
    let by_tar = tmp.path().join("tar");
    fs::create_dir(&by_tar).unwrap();
    run(Command::new("tar").arg("-C").arg(&by_tar).arg("-xzf").arg(&apk).arg("--warning=no-unknown-keyword"));
    let mut dropped = 0;
    for e in fs::read_dir(&by_tar).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with('.') {
            fs::remove_file(e.path()).unwrap();
            dropped += 1;
        }
    }
    assert!(dropped >= 2, "expected .SIGN and .PKGINFO at least");
    let out = tmp.path().join("out");
    let done = unpack(&apk, &out).unwrap();
    assert_eq!(done.format, Format::Apk);
    assert!(out.join("etc/motd").is_file());
    assert_eq!(nix_hash(&out), nix_hash(&by_tar));
}
