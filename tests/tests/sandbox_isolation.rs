//! What a program sees inside `forge sandbox`, checked from inside with busybox, as
//! root and as an unprivileged user.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use forge_tests::as_root_and_user;
use forge_tests::sandbox::Ctx;

as_root_and_user!(uid_0_inside_is_the_caller_outside, |ctx: Ctx| {
    let out = ctx.sh("id -u; id -g; cat /proc/self/uid_map; cat /proc/self/setgroups");
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["0"]);
    assert_eq!(lines[1], ["0"]);
    assert_eq!(lines[2], ["0", &ctx.uid.to_string(), "1"], "{out}");
    assert_eq!(lines[3], ["deny"]);
});

as_root_and_user!(proc_shows_only_the_sandbox_processes, |ctx: Ctx| {
    let out = ctx.sh("echo $$; for p in /proc/[0-9]*; do echo ${p#/proc/}; done");
    let mut lines = out.lines();
    let shell: u32 = lines.next().unwrap().parse().unwrap();
    let pids: BTreeSet<u32> = lines.map(|l| l.parse().unwrap()).collect();
    // init, the shell (its builder) and nothing else but the shell's own children.
    assert!(pids.contains(&1), "{pids:?}");
    assert_eq!(shell, 2, "the builder's parent is init: {pids:?}");
    assert!(pids.len() <= 3 && pids.iter().all(|p| *p < 10), "host processes visible: {pids:?}");
    let init = ctx.sh("tr '\\0' ' ' < /proc/1/cmdline");
    assert!(init.contains("__forge-sandbox-helper"), "{init}");
});

as_root_and_user!(hostname_is_forge_not_the_hosts, |ctx: Ctx| {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let inside = ctx.sh("hostname");
    assert_eq!(inside.trim(), "forge");
    assert_ne!(inside.trim(), host.trim());
});

/// A server on the host's 127.0.0.1 answering `hi`; returns its port and a
/// count of the connections it took.
fn host_http_server() -> (u16, Arc<AtomicUsize>) {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for mut conn in server.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = conn.write_all(b"hi\n");
        }
    });
    (port, hits)
}

as_root_and_user!(a_server_on_the_hosts_loopback_is_unreachable, |ctx: Ctx| {
    let (port, hits) = host_http_server();
    // The same probe reaches the server from the host, so it can tell.
    let probe = format!("nc -w 3 127.0.0.1 {port} </dev/null; echo rc=$?");
    let host = Command::new("/bin/busybox").args(["sh", "-c", &probe]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&host.stdout), "hi\nrc=0\n", "the probe fails even on the host");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let inside = ctx.sh(&format!("{probe}; cat /proc/net/dev"));
    assert!(!inside.contains("rc=0"), "{inside}");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the server was reached from inside");
    let interfaces: Vec<&str> = inside.lines().filter_map(|l| l.split_once(':')).map(|(i, _)| i.trim()).collect();
    assert_eq!(interfaces, ["lo"], "{inside}");
});

as_root_and_user!(root_is_read_only_and_tmp_and_build_are_writable, |ctx: Ctx| {
    let out = ctx.sh("touch /probe 2>/dev/null && echo root-writable; \
         touch /bin/probe 2>/dev/null && echo bin-writable; \
         echo a > /tmp/t && cat /tmp/t; echo b > /build/t && cat /build/t; pwd");
    assert_eq!(out, "a\nb\n/build\n");
});

as_root_and_user!(host_folders_are_invisible, |ctx: Ctx| {
    let repo = env!("CARGO_MANIFEST_DIR");
    let marker = ctx.root.path().display().to_string(); // the sysroot's own host path
    let out = ctx.sh(&format!(
        "for p in /home /root /etc /usr {repo} {marker} /sys /run; do [ -e $p ] && echo visible $p; done; ls /"
    ));
    let top: BTreeSet<&str> = out.lines().collect();
    assert_eq!(top, ["bin", "build", "dev", "proc", "tmp"].into_iter().collect(), "{out}");
});

as_root_and_user!(no_new_privs_is_set_and_no_capability_is_left, |ctx: Ctx| {
    let out = ctx.sh("grep -E '^(NoNewPrivs|Cap(Inh|Prm|Eff|Bnd|Amb))' /proc/self/status");
    for line in out.lines() {
        let (key, value) = line.split_once(':').unwrap();
        let want = if key == "NoNewPrivs" { "1" } else { "0000000000000000" };
        assert_eq!(value.trim(), want, "{key}");
    }
    assert_eq!(out.lines().count(), 6, "{out}");
});

// exec keeps ignored signals ignored: forge started with some ignored (as a shell
// starts a background job, plus a real-time one) must still give its builder
// every signal at its default, and none blocked.
as_root_and_user!(the_builder_gets_every_signal_at_its_default, |ctx: Ctx| {
    use std::os::unix::process::CommandExt;
    let mut cmd = ctx.sandbox();
    cmd.args(["--", "/bin/busybox", "cat", "/proc/self/status"]);
    // SAFETY: only signal(), which is async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            for sig in [libc::SIGINT, libc::SIGQUIT, libc::SIGHUP, libc::SIGUSR1, libc::SIGRTMIN() + 5, 64] {
                libc::signal(sig, libc::SIG_IGN);
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status = String::from_utf8_lossy(&out.stdout);
    for key in ["SigIgn", "SigBlk", "SigCgt"] {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no {key}: {status}"));
        assert_eq!(line.split_whitespace().nth(1), Some("0000000000000000"), "{line}");
    }
});

// The sandbox starts pinned to one CPU (a relay of processes that run one at a
// time); the builder must get every CPU of the caller back.
as_root_and_user!(the_builder_may_run_on_every_cpu_of_the_caller, |ctx: Ctx| {
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    let allowed = |status: &str| {
        status
            .lines()
            .find(|l| l.starts_with("Cpus_allowed_list:"))
            .map(|l| l.split_whitespace().last().unwrap_or("").to_owned())
    };
    let inside = ctx.sh("cat /proc/self/status");
    assert_eq!(allowed(&inside), allowed(&ours), "{inside}");
});

as_root_and_user!(environment_is_exactly_the_documented_set, |ctx: Ctx| {
    let out = ctx
        .sandbox()
        .env("FORGE_HOST_SECRET", "leak")
        .args(["--env", "out=/forge/store/x", "--", "/bin/env"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let env: BTreeSet<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
    let cores = std::thread::available_parallelism().unwrap().get();
    let want: BTreeSet<String> = [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        "HOME=/homeless-shelter".to_owned(),
        "TMPDIR=/tmp".to_owned(),
        "SOURCE_DATE_EPOCH=0".to_owned(),
        "TZ=UTC".to_owned(),
        "LANG=C.UTF-8".to_owned(),
        "LC_ALL=C.UTF-8".to_owned(),
        "TERM=dumb".to_owned(),
        format!("FORGE_BUILD_CORES={cores}"),
        "FORGE_BUILD_DIR=/build".to_owned(),
        "out=/forge/store/x".to_owned(),
    ]
    .into_iter()
    .collect();
    assert_eq!(env, want);
});

as_root_and_user!(umask_is_022_and_stdin_is_dev_null, |ctx: Ctx| {
    let out = ctx.sh("umask; readlink /proc/self/fd/0; cat");
    assert_eq!(out, "0022\n/dev/null\n");
});

as_root_and_user!(inputs_are_read_only_at_their_paths_and_outputs_writable, |ctx: Ctx| {
    let input = tempfile::tempdir().unwrap();
    forge_tests::sandbox::open_up(input.path());
    std::fs::write(input.path().join("src.txt"), "source\n").unwrap();
    let output = ctx.writable_dir();
    let ro = format!("{}:/forge/store/abc-src", input.path().display());
    let rw = format!("{}:/forge/store/def-out", output.path().display());
    let out = ctx.sh_with(
        &["--ro", &ro, "--rw", &rw],
        "cat /forge/store/abc-src/src.txt; echo x > /forge/store/abc-src/new 2>/dev/null && echo input-writable; \
         echo built > /forge/store/def-out/result",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "source\n");
    assert_eq!(std::fs::read_to_string(output.path().join("result")).unwrap(), "built\n");
    assert!(!input.path().join("new").exists());
});

as_root_and_user!(stacked_roots_overlay_later_layers_over_earlier_ones, |ctx: Ctx| {
    std::fs::create_dir_all(ctx.root.path().join("etc")).unwrap();
    std::fs::write(ctx.root.path().join("etc/release"), "lower\n").unwrap();
    let upper = tempfile::tempdir().unwrap();
    forge_tests::sandbox::open_up(upper.path());
    std::fs::create_dir_all(upper.path().join("etc")).unwrap();
    std::fs::write(upper.path().join("etc/release"), "upper\n").unwrap();
    std::fs::write(upper.path().join("marker"), "m\n").unwrap();
    let out = ctx.sh_with(&["--root", upper.path().to_str().unwrap()], "cat /etc/release /marker; ls /bin/busybox");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "upper\nm\n/bin/busybox\n");
});
