//! `forge hash path` and `forge store export` against Nix's own tools
//! (`nix-hash`, `nix-store --dump`) on trees with every kind of entry.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::Command;

use forge_tests::*;

fn nix_hash(path: &Path) -> String {
    let out = run_ok(Command::new("nix-hash").args(["--type", "sha256", "--base32"]).arg(path));
    format!("sha256:{}", stdout(&out))
}

fn forge_hash(store: &Path, path: &Path) -> String {
    stdout(&run_ok(forge(store).args(["hash", "path"]).arg(path)))
}

/// A tree with regular, empty and executable files, relative, absolute and
/// dangling symlinks, empty and nested directories, names with spaces and UTF-8.
fn every_kind_tree(root: &Path) {
    fs::create_dir_all(root.join("nested/deeper/deepest")).unwrap();
    fs::create_dir(root.join("empty dir")).unwrap();
    fs::write(root.join("regular"), b"some bytes\n").unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join("exactly8"), b"12345678").unwrap();
    fs::write(root.join("nested/deeper/deepest/big"), vec![0xa5u8; (1 << 20) * 2 + 13]).unwrap();
    fs::write(root.join("run me"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(root.join("run me"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(root.join("owner-exec-only"), b"x").unwrap();
    fs::set_permissions(root.join("owner-exec-only"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(root.join("ünïcødé ✓"), "ütf-8 contents".as_bytes()).unwrap();
    symlink("../regular", root.join("nested/relative")).unwrap();
    symlink("/etc/hostname", root.join("absolute")).unwrap();
    symlink("does/not/exist", root.join("dangling")).unwrap();
    symlink("nested", root.join("dir-link")).unwrap();
    // Sorting is bytewise: upper case before lower case, `-` before `.`.
    for name in ["B", "a", "a-b", "a.b", "a0"] {
        fs::write(root.join(name), name).unwrap();
    }
}

#[test]
fn hash_path_matches_nix_hash_on_every_kind_of_tree() {
    if !have_tool("nix-hash") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let tree = dir.path().join("tree");
    every_kind_tree(&tree);
    fs::write(dir.path().join("file-root"), b"a file as the root").unwrap();
    fs::write(dir.path().join("empty-root"), b"").unwrap();
    fs::create_dir(dir.path().join("empty-dir-root")).unwrap();
    symlink("tree/regular", dir.path().join("symlink-root")).unwrap();
    symlink("/nowhere", dir.path().join("dangling-root")).unwrap();
    let roots = ["tree", "tree/nested", "file-root", "empty-root", "empty-dir-root", "symlink-root", "dangling-root"];
    for name in roots {
        let p = dir.path().join(name);
        assert_eq!(forge_hash(&store, &p), nix_hash(&p), "{name}");
    }
}

#[test]
fn export_writes_the_bytes_nix_store_dump_writes() {
    if !have_tool("nix-store") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let tree = dir.path().join("tree");
    every_kind_tree(&tree);
    let path = stdout(&run_ok(forge(&store).args(["store", "add"]).arg(&tree)));
    let ours = run_ok(forge(&store).args(["store", "export", &path])).stdout;
    let theirs = run_ok(Command::new("nix-store").arg("--dump").arg(&tree)).stdout;
    assert!(ours == theirs, "export differs from nix-store --dump ({} vs {} bytes)", ours.len(), theirs.len());
}

#[test]
fn hash_path_of_a_missing_path_exits_3_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = forge(dir.path()).args(["hash", "path", "/nonexistent/tree"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/tree"));
}
