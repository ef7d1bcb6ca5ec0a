//! How a sandboxed run ends: exit status, signals, timeout, forge's own death, the
//! build directory and the log.

use std::process::Stdio;
use std::time::{Duration, Instant};

use forge_tests::as_root_and_user;
use forge_tests::sandbox::Ctx;

/// Host processes whose command line contains `needle`.
fn host_processes_with(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(needle))
                .unwrap_or(false)
        })
        .collect()
}

/// A number no other process has on its command line.
fn unique_seconds() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("9{}.{:09}", std::process::id(), nanos)
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

as_root_and_user!(the_builders_exit_code_is_forges, |ctx: Ctx| {
    assert_eq!(ctx.sh_with(&[], "exit 42").status.code(), Some(42));
    assert_eq!(ctx.sh_with(&[], "exit 0").status.code(), Some(0));
});

as_root_and_user!(death_by_signal_exits_128_plus_the_signal, |ctx: Ctx| {
    assert_eq!(ctx.sh_with(&[], "kill -9 $$").status.code(), Some(137));
});

as_root_and_user!(stdout_and_stderr_are_streamed_and_logged, |ctx: Ctx| {
    let logs = ctx.writable_dir();
    let log = logs.path().join("build.log");
    let out = ctx.sh_with(&["--log", log.to_str().unwrap()], "echo out; echo err >&2");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("out\n") && logged.contains("err\n"), "{logged}");
});

as_root_and_user!(the_log_is_capped_and_says_so, |ctx: Ctx| {
    let logs = ctx.writable_dir();
    let log = logs.path().join("build.log");
    let out = ctx.sh_with(&["--log", log.to_str().unwrap(), "--log-limit", "1000"], "yes | head -c 100000");
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), 100_000, "the caller still gets everything");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.starts_with(&"y\n".repeat(500)));
    assert!(logged.ends_with("\n[forge: log truncated at 1000 bytes]\n"), "{}", &logged[900..]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
});

as_root_and_user!(a_timeout_kills_everything_and_exits_124, |ctx: Ctx| {
    let secs = unique_seconds();
    let start = Instant::now();
    let out = ctx.sh_with(&["--timeout", "0.5"], &format!("sleep {secs} & sleep {secs}"));
    assert_eq!(out.status.code(), Some(124), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(host_processes_with(&secs).is_empty(), "sleeps survived the timeout");
});

as_root_and_user!(a_sleep_left_inside_dies_with_a_sigkilled_forge, |ctx: Ctx| {
    let secs = unique_seconds();
    let mut forge = ctx
        .sandbox()
        .args(["--", "/bin/sh", "-c", &format!("sleep {secs} & echo started; wait")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(forge.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line, "started\n");
    assert!(wait_until(Duration::from_secs(5), || !host_processes_with(&secs).is_empty()), "sleep never started");
    // Under runuser, forge is runuser's child: kill forge itself, not runuser.
    let forge_pid = forge_pid_under(forge.id());
    nix_kill(forge_pid, 9);
    let _ = forge.wait();
    assert!(wait_until(Duration::from_secs(5), || host_processes_with(&secs).is_empty()), "sleep outlived forge");
});

/// `pid` when it is forge, else its child (runuser runs forge as a child).
fn forge_pid_under(pid: u32) -> u32 {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim() == "forge" {
        return pid;
    }
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    children.split_whitespace().next().and_then(|c| c.parse().ok()).unwrap_or(pid)
}

fn nix_kill(pid: u32, sig: i32) {
    // SAFETY: kill with plain integers.
    assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
}

as_root_and_user!(sigterm_to_forge_kills_the_sandbox_and_removes_the_build_dir, |ctx: Ctx| {
    let secs = unique_seconds();
    let parent = ctx.writable_dir();
    let build = parent.path().join("build");
    let mut forge = ctx
        .sandbox()
        .args(["--build-dir", build.to_str().unwrap()])
        .args(["--", "/bin/sh", "-c", &format!("touch /build/partial; sleep {secs} & echo started; wait")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(forge.stdout.take().unwrap()), &mut line).unwrap();
    assert!(build.join("partial").exists());
    nix_kill(forge_pid_under(forge.id()), libc::SIGTERM);
    let status = forge.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(host_processes_with(&secs).is_empty(), "sleep outlived the interrupted run");
    assert!(!build.exists(), "the build dir of an interrupted run was kept");
});

as_root_and_user!(keep_failed_keeps_the_build_dir_of_a_failure_only, |ctx: Ctx| {
    let parent = ctx.writable_dir();
    let build = parent.path().join("build");
    let dir = build.to_str().unwrap();
    let ok = ctx.sh_with(&["--build-dir", dir, "--keep-failed"], "echo x > /build/f");
    assert!(ok.status.success());
    assert!(!build.exists(), "a successful run's build dir is removed");
    let failed = ctx.sh_with(
        &["--build-dir", dir, "--keep-failed"],
        "mkdir /build/ro; echo x > /build/ro/f; chmod 555 /build/ro; exit 3",
    );
    assert_eq!(failed.status.code(), Some(3));
    assert_eq!(std::fs::read_to_string(build.join("ro/f")).unwrap(), "x\n");
    assert!(String::from_utf8_lossy(&failed.stderr).contains("kept"));
    let again = ctx.sh_with(&["--build-dir", dir], "exit 3");
    assert_eq!(again.status.code(), Some(3));
    assert!(!build.exists(), "without --keep-failed a failed run's build dir is removed, read-only parts too");
});

#[test]
fn a_missing_root_exits_3_naming_it() {
    let out = std::process::Command::new(forge_tests::forge_bin())
        .args(["sandbox", "--root", "/nonexistent/sysroot", "--", "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/sysroot"));
}

as_root_and_user!(a_command_not_found_exits_3_naming_it, |ctx: Ctx| {
    let out = ctx.sandbox().args(["--", "no-such-tool", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`no-such-tool`") && err.contains("No such file"), "{err}");
});

as_root_and_user!(a_missing_working_directory_exits_3_naming_it, |ctx: Ctx| {
    let out = ctx.sandbox().args(["--cwd", "/no/such/dir", "--", "/bin/true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/dir"));
});
