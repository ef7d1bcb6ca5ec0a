use super::*;

fn paths(tree: &FsTree) -> Vec<String> {
    tree.iter().map(|(p, _)| p.display()).collect()
}

#[test]
fn paths_are_normalized_and_traversal_is_refused() {
    assert_eq!(TreePath::parse("//usr/./bin/").unwrap().display(), "/usr/bin");
    assert!(TreePath::parse("usr/../../etc").is_err());
    assert!(TreePath::parse(b"a\0b").is_err());
    assert!(TreePath::parse(vec![b'x'; 256]).is_err());
    assert!(TreePath::parse(vec![b'x'; 255]).is_ok());
}

#[test]
fn iteration_is_depth_first_in_byte_order() {
    let mut t = FsTree::new(5);
    for p in ["/b", "/a.b", "/a/z", "/a/b"] {
        t.write(p, "", 0o644).unwrap();
    }
    assert_eq!(paths(&t), ["/", "/a", "/a/b", "/a/z", "/a.b", "/b"]);
    assert!(t.iter().all(|(_, n)| n.meta.mtime == 5));
}

#[test]
fn a_later_entry_replaces_an_earlier_one_and_a_dir_keeps_its_children() {
    let mut t = FsTree::new(0);
    t.write("/x/f", "1", 0o644).unwrap();
    t.insert("/x", Node::new(Kind::Dir(BTreeMap::new()), 0o700)).unwrap();
    assert_eq!(t.get("/x").unwrap().meta.mode, 0o700);
    assert!(t.get("/x/f").is_some());
    t.write("/x", "now a file", 0o600).unwrap();
    assert!(t.get("/x/f").is_none());
    assert!(matches!(t.get("/x").unwrap().kind, Kind::File(_)));
}

#[test]
fn a_file_under_a_non_directory_is_refused_naming_both() {
    let mut t = FsTree::new(0);
    t.symlink("/lib", "usr/lib").unwrap();
    let err = t.write("/lib/libc.so", "", 0o644).unwrap_err().to_string();
    assert!(err.contains("/lib/libc.so") && err.contains("`/lib`"), "{err}");
}

#[test]
fn hardlinks_share_and_follow_their_target_metadata() {
    let mut t = FsTree::new(0);
    t.write("/bin/busybox", "bb", 0o755).unwrap();
    t.hardlink("/bin/sh", "/bin/busybox").unwrap();
    t.hardlink("/bin/ash", "/bin/sh").unwrap();
    let Kind::Hardlink(target) = &t.get("/bin/ash").unwrap().kind else { panic!() };
    assert_eq!(target.display(), "/bin/busybox");
    t.chmod("/bin/sh", 0o4711).unwrap();
    assert_eq!(t.get("/bin/busybox").unwrap().meta.mode, 0o4711);
    assert_eq!(t.hardlink_targets().unwrap().len(), 1);
    assert!(t.hardlink("/x", "/bin").is_err());
    assert!(t.hardlink("/y", "/missing").is_err());
    t.remove("/bin/busybox").unwrap();
    assert!(t.hardlink_targets().is_err());
}

#[test]
fn explicit_operations_set_what_they_say() {
    let mut t = FsTree::new(0);
    t.mkdir_p("/a/b/c", 0o750).unwrap();
    assert_eq!(t.get("/a/b").unwrap().meta.mode, 0o750);
    t.chown("/a/b/c", 200000, 200001).unwrap();
    t.mknod("/dev/sda", Special::Block { major: 8, minor: 0 }, 0o660).unwrap();
    t.setcap("/a/b/c", "cap_net_raw+ep").unwrap();
    let c = t.get("/a/b/c").unwrap();
    assert_eq!((c.meta.uid, c.meta.gid), (200000, 200001));
    assert_eq!(capability_text(&c.meta.xattrs[CAPABILITY_XATTR]).unwrap(), "cap_net_raw+ep");
    assert!(t.remove("/a").unwrap());
    assert!(!t.remove("/a").unwrap());
    assert!(t.remove("/").is_err());
    assert!(t.chmod("/nope", 0).is_err());
    assert!(t.symlink("/l", "").is_err());
    t.write("/f", "x", 0o644).unwrap();
    assert!(t.mkdir_p("/f/g", 0o755).is_err());
}

#[test]
fn store_trees_get_the_owner_write_bit_back_and_host_trees_keep_their_modes() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store-path");
    std::fs::create_dir_all(store.join("bin")).unwrap();
    std::fs::write(store.join("bin/tool"), "#!/bin/sh\n").unwrap();
    std::fs::write(store.join("README"), "text\n").unwrap();
    std::os::unix::fs::symlink("tool", store.join("bin/t")).unwrap();
    // As the store leaves them: no write bit anywhere.
    for (path, mode) in [("bin/tool", 0o555), ("README", 0o444), ("bin", 0o555), ("", 0o555)] {
        std::fs::set_permissions(store.join(path), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let mut copied = FsTree::new(0);
    copied.add_store_dir(&store, "/opt").unwrap();
    let mut kept = FsTree::new(0);
    kept.add_dir(&store, "/opt").unwrap();
    let mode = |t: &FsTree, p: &str| t.get(p).unwrap().meta.mode & 0o7777;
    for (path, store_mode, copied_mode) in [
        ("/opt", 0o555, 0o755),
        ("/opt/bin", 0o555, 0o755),
        ("/opt/bin/tool", 0o555, 0o755),
        ("/opt/README", 0o444, 0o644),
    ] {
        assert_eq!(mode(&copied, path), copied_mode, "{path}");
        assert_eq!(mode(&kept, path), store_mode, "{path}");
    }
    assert_eq!(mode(&copied, "/opt/bin/t"), 0o777, "symlinks keep 0777");
    // Let the temp dir be removed.
    for path in ["bin", ""] {
        std::fs::set_permissions(store.join(path), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn host_directories_are_layered_in_name_order_owned_by_root() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("bin")).unwrap();
    std::fs::write(dir.path().join("bin/tool"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(dir.path().join("bin/tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("tool", dir.path().join("bin/t")).unwrap();
    let mut t = FsTree::new(0);
    t.add_dir(dir.path(), "/usr").unwrap();
    assert_eq!(paths(&t), ["/", "/usr", "/usr/bin", "/usr/bin/t", "/usr/bin/tool"]);
    let tool = t.get("/usr/bin/tool").unwrap();
    assert_eq!((tool.meta.mode, tool.meta.uid), (0o755, 0));
    let Kind::File(c) = &tool.kind else { panic!() };
    assert_eq!(c.read_all().unwrap(), b"#!/bin/sh\n");
}
