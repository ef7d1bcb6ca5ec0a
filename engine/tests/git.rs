//! Git checkouts from repositories the tests make, with `nix-hash` as the oracle:
//! the checkout must hash like the committed tree.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use forge_engine::fetch::Mirrors;
use forge_engine::git::{self, Error, GitSpec, LfsPointer};
use forge_tests::{have_tool, nix_hash};

fn run(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A repository with two commits; returns (its dir, first commit, a copy of the
/// first commit's tree without `.git` to hash).
fn make_repo(tmp: &Path) -> (PathBuf, String, PathBuf) {
    let repo = tmp.join("repo");
    fs::create_dir_all(repo.join("src/deep")).unwrap();
    fs::create_dir_all(repo.join("doc")).unwrap();
    fs::write(repo.join("src/main.c"), "/* $Id$ */\nint main(void) { return 0; }\n").unwrap();
    fs::write(repo.join("src/deep/data.txt"), "line one\nline two\n").unwrap();
    fs::write(repo.join("doc/README"), "read me\n").unwrap();
    fs::write(repo.join("build.sh"), "#!/bin/sh\nmake\n").unwrap();
    fs::set_permissions(repo.join("build.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink("src/main.c", repo.join("main-link")).unwrap();
    // Attributes a checkout would apply (CRLF, ident) must not touch the output.
    fs::write(repo.join(".gitattributes"), "*.txt text eol=crlf\n*.c ident\n").unwrap();
    run(&repo, &["init", "-q", "-b", "main"]);
    run(&repo, &["add", "-A"]);
    run(&repo, &["commit", "-q", "-m", "first"]);
    let first = run(&repo, &["rev-parse", "HEAD"]);
    let expected = tmp.join("expected");
    Command::new("cp").arg("-a").arg(&repo).arg(&expected).status().unwrap();
    fs::remove_dir_all(expected.join(".git")).unwrap();
    fs::write(repo.join("doc/README"), "changed later\n").unwrap();
    run(&repo, &["commit", "-q", "-am", "second"]);
    (repo, first, expected)
}

fn tools() -> bool {
    have_tool("git") && have_tool("nix-hash")
}

#[test]
fn a_checkout_hashes_like_the_committed_tree() {
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (repo, first, expected) = make_repo(tmp.path());
    let spec = GitSpec { url: repo.display().to_string(), rev: first, subpaths: vec![] };
    let out = tmp.path().join("out");
    let done = git::fetch(&spec, &Mirrors::default(), false, &out).unwrap();
    assert_eq!(done.entries, 6);
    assert!(!out.join(".git").exists());
    assert_eq!(fs::read_to_string(out.join("src/deep/data.txt")).unwrap(), "line one\nline two\n");
    assert_eq!(fs::read_link(out.join("main-link")).unwrap(), Path::new("src/main.c"));
    assert_eq!(nix_hash(&out), nix_hash(&expected));
    assert!(!tmp.path().join("out.gitdir").exists(), "the scratch repository is removed");
}

#[test]
fn a_subpath_checkout_holds_only_that_subtree() {
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (repo, first, expected) = make_repo(tmp.path());
    let only_src = tmp.path().join("only-src");
    fs::create_dir(&only_src).unwrap();
    fs::rename(expected.join("src"), only_src.join("src")).unwrap();
    fs::copy(expected.join("build.sh"), only_src.join("build.sh")).unwrap();
    let spec = GitSpec {
        url: format!("file://{}", repo.display()),
        rev: first,
        subpaths: vec!["src/".into(), "build.sh".into()],
    };
    let out = tmp.path().join("out");
    git::fetch(&spec, &Mirrors::default(), false, &out).unwrap();
    assert_eq!(nix_hash(&out), nix_hash(&only_src));
}

#[test]
fn a_missing_subpath_or_commit_is_a_clear_error() {
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (repo, first, _) = make_repo(tmp.path());
    let url = repo.display().to_string();
    let spec = GitSpec { url: url.clone(), rev: first, subpaths: vec!["nope".into()] };
    let err = git::fetch(&spec, &Mirrors::default(), false, &tmp.path().join("a")).unwrap_err();
    assert!(matches!(err, Error::NoSuchSubpath { ref path, .. } if path == "nope"), "{err}");

    let spec = GitSpec { url, rev: "0".repeat(40), subpaths: vec![] };
    let err = git::fetch(&spec, &Mirrors::default(), false, &tmp.path().join("b")).unwrap_err();
    assert!(matches!(err, Error::NoCommit { .. }), "{err}");
    assert!(err.to_string().contains(&"0".repeat(40)), "{err}");

    let spec = GitSpec { url: "x".into(), rev: "main".into(), subpaths: vec![] };
    let err = git::fetch(&spec, &Mirrors::default(), false, &tmp.path().join("c")).unwrap_err();
    assert!(matches!(err, Error::BadRev { .. }), "{err}");
}

#[test]
fn offline_uses_a_git_mirror_and_refuses_the_network() {
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (repo, first, expected) = make_repo(tmp.path());
    let url = "https://git.invalid/project.git".to_owned();
    let spec = GitSpec { url: url.clone(), rev: first, subpaths: vec![] };
    let err = git::fetch(&spec, &Mirrors::default(), true, &tmp.path().join("a")).unwrap_err();
    assert!(matches!(err, Error::Offline { .. }), "{err}");

    let mirrors = Mirrors { files: vec![], git: vec![("https://git.invalid/project".into(), repo)] };
    let out = tmp.path().join("b");
    let done = git::fetch(&spec, &mirrors, true, &out).unwrap();
    assert!(!done.source.contains("git.invalid"));
    assert_eq!(nix_hash(&out), nix_hash(&expected));
}

#[test]
fn lfs_pointers_in_a_checkout_are_found() {
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    fs::create_dir_all(repo.join("assets")).unwrap();
    let oid = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";
    let pointer = format!("version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize 42\n");
    fs::write(repo.join("assets/model.bin"), &pointer).unwrap();
    fs::write(repo.join("plain.txt"), "not a pointer\n").unwrap();
    run(&repo, &["init", "-q"]);
    run(&repo, &["add", "-A"]);
    run(&repo, &["commit", "-q", "-m", "lfs"]);
    let rev = run(&repo, &["rev-parse", "HEAD"]);
    let out = tmp.path().join("out");
    git::fetch(&GitSpec { url: repo.display().to_string(), rev, subpaths: vec![] }, &Mirrors::default(), false, &out)
        .unwrap();
    let found = git::find_lfs_pointers(&out).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, Path::new("assets/model.bin"));
    assert_eq!(found[0].1, LfsPointer::parse(pointer.as_bytes()).unwrap().unwrap());
    assert_eq!(found[0].1.size, 42);
}
