//! `forge store ...` end to end: adding, read-only results, verify, gc, concurrent
//! adds from several processes, and crash safety under SIGKILL.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use forge_tests::*;

fn small_tree(root: &Path, tag: &str) {
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::write(root.join("bin/tool"), format!("#!/bin/sh\necho {tag}\n")).unwrap();
    fs::set_permissions(root.join("bin/tool"), fs::Permissions::from_mode(0o775)).unwrap();
    fs::write(root.join("data"), tag).unwrap();
    fs::create_dir(root.join("empty")).unwrap();
}

fn add(store: &Path, path: &Path, extra: &[&str]) -> String {
    stdout(&run_ok(forge(store).args(["store", "add"]).arg(path).args(extra)))
}

fn physical(store: &Path, store_path: &str) -> PathBuf {
    store.join("store").join(store_path.strip_prefix("/forge/store/").unwrap())
}

fn ls(store: &Path) -> Vec<String> {
    stdout(&run_ok(forge(store).args(["store", "ls"]))).lines().map(str::to_owned).collect()
}

fn tmp_entries(store: &Path) -> usize {
    fs::read_dir(store.join("tmp")).unwrap().count()
}

#[test]
fn the_same_content_and_name_give_the_same_path_and_other_content_another() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (a, b, c) = (dir.path().join("one/pkg"), dir.path().join("two/pkg"), dir.path().join("three/pkg"));
    small_tree(&a, "same");
    small_tree(&b, "same");
    small_tree(&c, "different");
    let pa = add(&store, &a, &[]);
    assert!(pa.starts_with("/forge/store/") && pa.ends_with("-pkg"), "{pa}");
    assert_eq!(add(&store, &b, &[]), pa);
    assert_ne!(add(&store, &c, &[]), pa);
    assert_ne!(add(&store, &a, &["--name", "renamed"]), pa);
}

#[test]
fn added_paths_are_read_only_with_canonical_modes_and_mtimes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let src = dir.path().join("pkg");
    small_tree(&src, "x");
    let p = physical(&store, &add(&store, &src, &[]));
    let mode = |rel: &str| fs::symlink_metadata(p.join(rel)).unwrap().mode() & 0o7777;
    assert_eq!((mode(""), mode("bin"), mode("empty")), (0o555, 0o555, 0o555));
    assert_eq!((mode("bin/tool"), mode("data")), (0o555, 0o444));
    for rel in ["", "bin", "bin/tool", "data"] {
        assert_eq!(fs::symlink_metadata(p.join(rel)).unwrap().mtime(), 1, "{rel}");
    }
    // The source is untouched.
    assert_eq!(fs::metadata(src.join("bin/tool")).unwrap().mode() & 0o777, 0o775);
}

#[test]
fn info_json_has_exactly_the_documented_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let src = dir.path().join("pkg");
    small_tree(&src, "x");
    let p = add(&store, &src, &[]);
    let out = stdout(&run_ok(forge(&store).args(["store", "info", &p, "--json"])));
    let keys: Vec<&str> = ["deriver", "narHash", "narSize", "path", "references", "registrationTime"].into();
    let mut found: Vec<String> =
        out.lines().filter_map(|l| l.trim().strip_prefix('"')?.split('"').next().map(str::to_owned)).collect();
    found.sort();
    assert_eq!(found, keys);
    assert!(out.contains(&format!("\"path\": \"{p}\"")), "{out}");
    let missing =
        forge(&store).args(["store", "info", "/forge/store/00000000000000000000000000000000-x"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("00000000000000000000000000000000-x"));
}

#[test]
fn verify_detects_a_modified_store_file_and_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (good, bad) = (dir.path().join("good"), dir.path().join("bad"));
    small_tree(&good, "good");
    small_tree(&bad, "bad");
    let pg = add(&store, &good, &[]);
    let pb = add(&store, &bad, &[]);
    run_ok(forge(&store).args(["store", "verify", "--check-contents"]));
    let f = physical(&store, &pb).join("data");
    fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&f, "tampered").unwrap();
    let out = forge(&store).args(["store", "verify", "--check-contents"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&pb) && !text.contains(&pg), "{text}");
}

#[test]
fn gc_keeps_roots_and_removes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (kept, linked, junk) = (dir.path().join("kept"), dir.path().join("linked"), dir.path().join("junk"));
    small_tree(&kept, "kept");
    small_tree(&linked, "linked");
    small_tree(&junk, "junk");
    let pk = add(&store, &kept, &["--root", "kept"]);
    let pl = add(&store, &linked, &[]);
    let pj = add(&store, &junk, &[]);
    // An `output/` style link outside the store, registered as an indirect root.
    let output = dir.path().join("output");
    std::os::unix::fs::symlink(physical(&store, &pl), &output).unwrap();
    fs::create_dir_all(store.join("gcroots/auto")).unwrap();
    std::os::unix::fs::symlink(&output, store.join("gcroots/auto/output")).unwrap();

    let dry = stdout(&run_ok(forge(&store).args(["store", "gc", "--dry-run"])));
    assert_eq!(dry, pj);
    assert_eq!(ls(&store).len(), 3);
    let gone = stdout(&run_ok(forge(&store).args(["store", "gc"])));
    assert_eq!(gone, pj);
    let mut left = vec![pk.clone(), pl.clone()];
    left.sort();
    assert_eq!(ls(&store), left);
    assert!(!physical(&store, &pj).exists());
    run_ok(forge(&store).args(["store", "verify", "--check-contents"]));
    fs::remove_file(&output).unwrap();
    assert_eq!(stdout(&run_ok(forge(&store).args(["store", "gc"]))), pl);
    assert_eq!(ls(&store), vec![pk]);
}

#[test]
fn eight_concurrent_adds_of_one_tree_give_one_path_and_a_sound_database() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let src = dir.path().join("pkg");
    small_tree(&src, "x");
    for i in 0..64 {
        fs::write(src.join(format!("file{i}")), vec![i as u8; 64 << 10]).unwrap();
    }
    let children: Vec<_> = (0..8)
        .map(|_| forge(&store).args(["store", "add"]).arg(&src).stdout(Stdio::piped()).spawn().unwrap())
        .collect();
    let paths: Vec<String> =
        children.into_iter().map(|c| stdout(&run_ok_output(c.wait_with_output().unwrap()))).collect();
    assert!(paths.iter().all(|p| *p == paths[0]), "{paths:?}");
    assert_eq!(ls(&store), vec![paths[0].clone()]);
    run_ok(forge(&store).args(["store", "verify", "--check-contents"]));
    assert_eq!(tmp_entries(&store), 0);
}

fn run_ok_output(out: std::process::Output) -> std::process::Output {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// ~192 MiB in 24 files, so an add takes long enough to be killed in the middle.
fn large_tree(root: &Path) {
    fs::create_dir_all(root).unwrap();
    let mut block = vec![0u8; 8 << 20];
    for i in 0..24u32 {
        for (j, b) in block.iter_mut().enumerate().step_by(4096) {
            *b = (i as usize ^ j) as u8;
        }
        fs::write(root.join(format!("part{i:02}")), &block).unwrap();
    }
}

#[test]
fn sigkill_in_the_middle_of_a_large_add_leaves_a_store_that_verifies_clean() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let src = dir.path().join("big");
    large_tree(&src);
    // Kill at several moments: while copying, and later (hashing/renaming/committing).
    for delay_ms in [0u64, 40, 120, 300] {
        let mut child = forge(&store).args(["store", "add"]).arg(&src).stdout(Stdio::null()).spawn().unwrap();
        let start = Instant::now();
        while tmp_entries_or_zero(&store) == 0 && start.elapsed() < Duration::from_secs(20) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        Command::new("kill").args(["-KILL", &child.id().to_string()]).status().unwrap();
        let _ = child.wait();
        // Opening the store (here through verify) must sweep the dead add's temp dir.
        let out = forge(&store).args(["store", "verify", "--check-contents"]).output().unwrap();
        assert!(out.status.success(), "after a kill at +{delay_ms}ms: {}", String::from_utf8_lossy(&out.stdout));
        assert_eq!(tmp_entries(&store), 0, "temp dirs left after a kill at +{delay_ms}ms");
        assert!(ls(&store).len() <= 1);
    }
    let p = add(&store, &src, &[]);
    assert_eq!(ls(&store), vec![p]);
    run_ok(forge(&store).args(["store", "verify", "--check-contents"]));
}

fn tmp_entries_or_zero(store: &Path) -> usize {
    fs::read_dir(store.join("tmp")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn import_refuses_a_malformed_nar_with_exit_3_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let src = dir.path().join("pkg");
    small_tree(&src, "x");
    let p = add(&store, &src, &[]);
    let nar = run_ok(forge(&store).args(["store", "export", &p])).stdout;
    let other = dir.path().join("other");
    for (what, bytes) in [("truncated", &nar[..nar.len() - 9]), ("not a NAR", &b"hello world, not a nar!!"[..])] {
        let mut child = forge(&other).args(["store", "import", "--name", "pkg"]).stdin(Stdio::piped()).spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(3), "{what}");
        assert!(ls(&other).is_empty() && tmp_entries(&other) == 0, "{what}");
    }
    let mut child = forge(&other)
        .args(["store", "import", "--name", "pkg"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &nar).unwrap();
    assert_eq!(stdout(&run_ok_output(child.wait_with_output().unwrap())), p);
}

#[test]
fn add_without_a_usable_name_says_to_pass_name() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("has space");
    fs::write(&src, b"x").unwrap();
    let out = forge(&dir.path().join("store")).args(["store", "add"]).arg(&src).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--name"));
}

#[test]
fn gc_running_during_an_add_leaves_the_add_and_its_new_root_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let src = dir.path().join("big");
    large_tree(&src);
    let mut child =
        forge(&store).args(["store", "add", "--root", "big"]).arg(&src).stdout(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    while tmp_entries_or_zero(&store) == 0 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(2));
    }
    // Collect over and over while the add copies, hashes, registers and roots.
    let mut runs = 0;
    while child.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(30) {
        run_ok(forge(&store).args(["store", "gc"]));
        runs += 1;
    }
    run_ok(forge(&store).args(["store", "gc"]));
    let p = stdout(&run_ok_output(child.wait_with_output().unwrap()));
    assert!(runs > 0, "the add finished before gc could run");
    assert_eq!(ls(&store), vec![p]);
    run_ok(forge(&store).args(["store", "verify", "--check-contents"]));
}
