//! The scheduler's situation: many threads of one process call `sandbox::run` at
//! once while other threads allocate. The child between clone and exec must not
//! touch the allocator or any lock, or this deadlocks or corrupts. The binary has its
//! own main (it is also the sandbox's re-executed init) and speaks just enough of the
//! libtest protocol for nextest.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use forge_engine::sandbox::{self, Cancel, Capture, SandboxSpec, Status};

const TESTS: [&str; 3] = ["concurrent_runs_from_threads", "a_timeout_through_the_api", "cancel_from_another_thread"];

fn main() {
    sandbox::enter_helper_if_requested();
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            for t in TESTS {
                println!("{t}: test");
            }
        }
        return;
    }
    let filter = args.iter().skip(1).find(|a| !a.starts_with("--")).cloned();
    let Some(root) = forge_tests::sandbox::busybox_root(std::path::Path::new("/bin/busybox")) else { return };
    let root = root.keep();
    for t in TESTS.iter().filter(|t| filter.as_deref().is_none_or(|f| t.contains(f))) {
        match *t {
            "concurrent_runs_from_threads" => concurrent_runs_from_threads(&root),
            "a_timeout_through_the_api" => a_timeout_through_the_api(&root),
            _ => cancel_from_another_thread(&root),
        }
        println!("test {t} ... ok");
    }
    let _ = std::fs::remove_dir_all(&root);
}

fn shell(root: &std::path::Path, script: &str) -> SandboxSpec {
    SandboxSpec::new(root, vec!["/bin/sh".into(), "-c".into(), script.into()])
}

fn concurrent_runs_from_threads(root: &std::path::Path) {
    let stop = Arc::new(AtomicBool::new(false));
    let churn: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    kept.push(vec![0u8; 4096]);
                    if kept.len() > 256 {
                        kept.clear();
                    }
                }
            })
        })
        .collect();
    let runs: Vec<_> = (0..12)
        .map(|i: i32| {
            let spec = shell(root, &format!("echo run {i}; echo err {i} >&2; exit {i}"));
            std::thread::spawn(move || {
                let mut out = Capture::default();
                let outcome = sandbox::run(&spec, &mut out).unwrap();
                assert_eq!(outcome.status, Status::Exited(i));
                assert_eq!(String::from_utf8_lossy(&out.stdout), format!("run {i}\n"));
                assert_eq!(String::from_utf8_lossy(&out.stderr), format!("err {i}\n"));
            })
        })
        .collect();
    for r in runs {
        r.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for c in churn {
        c.join().unwrap();
    }
}

fn a_timeout_through_the_api(root: &std::path::Path) {
    let mut spec = shell(root, "sleep 30");
    spec.timeout = Some(Duration::from_millis(300));
    let start = Instant::now();
    let outcome = sandbox::run(&spec, &mut Capture::default()).unwrap();
    assert_eq!(outcome.status, Status::TimedOut);
    assert!(start.elapsed() < Duration::from_secs(5));
}

fn cancel_from_another_thread(root: &std::path::Path) {
    let cancel = Cancel::default();
    let build: PathBuf = tempfile::tempdir().unwrap().keep().join("build");
    let mut spec = shell(root, "touch /build/started; sleep 30");
    spec.build_dir_host = Some(build.clone());
    let canceller = {
        let (cancel, build) = (cancel.clone(), build.clone());
        std::thread::spawn(move || {
            while !build.join("started").exists() {
                std::thread::sleep(Duration::from_millis(10));
            }
            cancel.cancel();
        })
    };
    let outcome = sandbox::run_with(&spec, &mut Capture::default(), &cancel).unwrap();
    canceller.join().unwrap();
    assert_eq!(outcome.status, Status::Interrupted);
    assert!(!build.exists(), "the build dir of a cancelled run is removed");
}
