//! `forge fetch`, `forge fetch-git` and `forge unpack` as a user runs them:
//! output, exit codes, mirrors from the environment and the config file.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use forge_tests::http::{Route, TestServer};
use forge_tests::{forge, have_tool, run_ok, stdout};

/// `forge` with a private store and no mirror settings from the environment.
fn forge_in(tmp: &Path) -> Command {
    let mut cmd = forge(&tmp.join("store"));
    cmd.current_dir(tmp).env("FORGE_CONFIG", tmp.join("no-config"));
    cmd
}

fn sha256_hex(data: &[u8]) -> String {
    let out = Command::new("sha256sum").arg("-").stdin_bytes(data);
    out.split_whitespace().next().unwrap().to_owned()
}

trait StdinBytes {
    fn stdin_bytes(&mut self, data: &[u8]) -> String;
}

impl StdinBytes for Command {
    fn stdin_bytes(&mut self, data: &[u8]) -> String {
        use std::io::Write;
        let mut child = self.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(data).unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn fetch_downloads_checks_and_prints_hash_and_path() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = TestServer::start();
    srv.route("/pkg-1.0.tar.gz", Route::Body(b"release bytes".to_vec()));
    let hex = sha256_hex(b"release bytes");
    let out =
        run_ok(forge_in(tmp.path()).args(["fetch", &srv.url("/pkg-1.0.tar.gz"), "--hash", &format!("sha256:{hex}")]));
    assert!(stdout(&out).ends_with(" pkg-1.0.tar.gz"), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("sha256:"));
    assert_eq!(fs::read(tmp.path().join("pkg-1.0.tar.gz")).unwrap(), b"release bytes");
}

#[test]
fn fetch_with_a_wrong_hash_fails_and_keeps_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = TestServer::start();
    srv.route("/f", Route::Body(b"tampered".to_vec()));
    let hex = sha256_hex(b"original");
    let out = forge_in(tmp.path())
        .args(["fetch", &srv.url("/f"), "--name", "f", "--hash", &format!("sha256:{hex}"), "-o", "got"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("hash mismatch") && stderr(&out).contains("got.mismatch-0"), "{}", stderr(&out));
    assert!(!tmp.path().join("got").exists());
    assert_eq!(fs::read(tmp.path().join("got.mismatch-0")).unwrap(), b"tampered");
}

#[test]
fn fetch_offline_takes_mirrors_from_env_and_config_and_never_the_network() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = TestServer::start();
    let (env_mirror, conf_mirror) = (tmp.path().join("m1"), tmp.path().join("m2"));
    fs::create_dir_all(env_mirror.join("sha256")).unwrap();
    fs::create_dir_all(&conf_mirror).unwrap();
    fs::write(env_mirror.join("sha256").join(sha256_hex(b"one")), b"one").unwrap();
    fs::write(conf_mirror.join("two.tar"), b"two").unwrap();
    let config = tmp.path().join("config");
    fs::write(&config, format!("# test\nmirror = {}\n", conf_mirror.display())).unwrap();
    for (name, data) in [("one.tar", b"one"), ("two.tar", b"two")] {
        let out = run_ok(
            forge_in(tmp.path())
                .env("FORGE_MIRRORS", &env_mirror)
                .env("FORGE_CONFIG", &config)
                .args(["fetch", "--offline", &srv.url(&format!("/{name}"))])
                .args(["--hash", &format!("sha256:{}", sha256_hex(data))]),
        );
        assert_eq!(fs::read(tmp.path().join(name)).unwrap(), data, "{}", stderr(&out));
    }
    let out = forge_in(tmp.path())
        .args(["fetch", "--offline", &srv.url("/three.tar"), "--hash", &format!("sha256:{}", sha256_hex(b"3"))])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("forge vendor"), "{}", stderr(&out));
    assert!(srv.requests().is_empty());
}

#[test]
fn unpack_reports_the_format_and_refuses_traversal_with_exit_3() {
    if !have_tool("tar") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("src/pkg")).unwrap();
    fs::write(tmp.path().join("src/pkg/a"), b"a").unwrap();
    run_ok(Command::new("tar").current_dir(tmp.path().join("src")).args(["-cJf", "../a.tar.xz", "pkg"]));
    let out = run_ok(forge_in(tmp.path()).args(["unpack", "a.tar.xz", "out", "--strip-components", "1"]));
    assert!(stdout(&out).contains("(tar.xz)"), "{}", stdout(&out));
    assert_eq!(fs::read(tmp.path().join("out/a")).unwrap(), b"a");

    // GNU tar keeps `..` in names with -P.
    fs::write(tmp.path().join("x"), b"outside").unwrap();
    run_ok(Command::new("tar").current_dir(tmp.path().join("src")).args(["-cPf", "../evil.tar", "pkg/../../x"]));
    let out = forge_in(tmp.path()).args(["unpack", "evil.tar", "out2"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("`..`"), "{}", stderr(&out));
    let out = forge_in(tmp.path()).args(["unpack", "missing.tar", "out3"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn fetch_git_checks_out_a_commit_through_a_git_mirror() {
    if !have_tool("git") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    fs::create_dir(&repo).unwrap();
    fs::write(repo.join("hello"), b"hi\n").unwrap();
    let git = |args: &[&str]| {
        stdout(&run_ok(
            Command::new("git").current_dir(&repo).args(["-c", "user.name=t", "-c", "user.email=t@t"]).args(args),
        ))
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "one"]);
    let rev = git(&["rev-parse", "HEAD"]);
    let mirror = format!("https://git.invalid/repo={}", repo.display());
    run_ok(forge_in(tmp.path()).args(["fetch-git", "https://git.invalid/repo", "--rev", &rev, "--offline"]).args([
        "--git-mirror",
        &mirror,
        "-o",
        "co",
    ]));
    assert_eq!(fs::read(tmp.path().join("co/hello")).unwrap(), b"hi\n");
    assert!(!tmp.path().join("co/.git").exists());
}
