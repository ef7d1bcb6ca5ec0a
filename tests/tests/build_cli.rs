//! `forge build` and friends end to end: real sandboxed steps on a busybox root
//! made from the pinned Debian package, through the seeded mirror, offline.

use std::path::Path;
use std::process::{Command, Output};

use forge_tests::*;

/// A store with busybox-root already built (the sysroot of every small step).
fn store_with_busybox(mirror: &Path) -> tempfile::TempDir {
    let store = tempfile::tempdir().unwrap();
    run_ok(
        example(store.path())
            .args(["build", "busybox-root", "--offline", "--mirror"])
            .arg(mirror)
            .args(["--out"])
            .arg(store.path().join("bb")),
    );
    store
}

fn json_events(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn events_named<'a>(events: &'a [serde_json::Value], event: &str, name: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event"] == event && e["name"] == name).collect()
}

fn build_json(cmd: &mut Command) -> Output {
    cmd.arg("--json").output().unwrap()
}

#[test]
fn an_offline_build_reports_the_files_it_took_from_the_mirror_as_its_own() {
    let Some(mirror) = test_mirror() else { return };
    let store = tempfile::tempdir().unwrap();
    let out = build_json(
        example(store.path())
            .args(["build", "busybox-root", "--offline", "--mirror"])
            .arg(&mirror)
            .arg("--out")
            .arg(store.path().join("bb")),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events = json_events(&out);
    let fetches: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "started" && e["kind"] == "fetch")
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert!(!fetches.is_empty(), "{events:?}");
    for name in fetches {
        // Offline, every download is taken before the scheduler starts: by this
        // process, not "meanwhile by another forge process".
        let finished = events_named(&events, "finished", name);
        assert_eq!(finished.len(), 1, "{name}: {events:?}");
        assert_eq!(finished[0]["built"], true, "{name}: {}", finished[0]);
    }
}

#[test]
fn two_independent_one_second_steps_take_about_one_second_at_j2() {
    let Some(mirror) = test_mirror() else { return };
    let store = store_with_busybox(&mirror);
    let start = std::time::Instant::now();
    let out =
        build_json(example(store.path()).args(["build", "two-sleeps", "-j2", "--out"]).arg(store.path().join("o")));
    let took = start.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events = json_events(&out);
    let position =
        |event: &str, name: &str| events.iter().position(|e| e["event"] == event && e["name"] == name).unwrap();
    let first_finish = position("finished", "sleep-a").min(position("finished", "sleep-b"));
    assert!(
        position("started", "sleep-a") < first_finish && position("started", "sleep-b") < first_finish,
        "both steps run at once: {events:?}"
    );
    let secs = |name: &str| events_named(&events, "finished", name)[0]["seconds"].as_f64().unwrap();
    let sequential = secs("sleep-a") + secs("sleep-b");
    // About one second: well under the two that running them one after the other takes.
    assert!(took.as_secs_f64() < sequential, "two 1-second steps at -j2 took {took:?}, sequentially {sequential:.2}s");
}

#[test]
fn a_failing_step_stops_its_dependents_and_keep_going_finishes_the_rest() {
    let Some(mirror) = test_mirror() else { return };
    let store = store_with_busybox(&mirror);
    // -j1: `fails` is declared first, so it runs first and the build stops there.
    let out = build_json(example(store.path()).args(["build", "fail-keep-going", "-j1"]));
    assert_eq!(out.status.code(), Some(1));
    let events = json_events(&out);
    assert_eq!(events_named(&events, "failed", "fails").len(), 1);
    assert!(events_named(&events, "started", "independent").is_empty(), "nothing new starts after a failure");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("about to fail"), "the summary shows the end of the log: {stderr}");
    assert!(stderr.contains("needs-fails: not built, its input fails failed"), "{stderr}");

    let out = build_json(example(store.path()).args(["build", "fail-keep-going", "-j1", "--keep-going"]));
    assert_eq!(out.status.code(), Some(1));
    let events = json_events(&out);
    assert_eq!(events_named(&events, "finished", "independent").len(), 1, "--keep-going builds the rest");
    assert!(events_named(&events, "started", "needs-fails").is_empty());
}

#[test]
fn two_forge_processes_building_the_same_recipe_build_it_once() {
    let Some(mirror) = test_mirror() else { return };
    let store = store_with_busybox(&mirror);
    let spawn = |out: &str| {
        example(store.path())
            .args(["build", "slow-once", "--json", "--out"])
            .arg(store.path().join(out))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("a"), spawn("b"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success());
    let built: usize = [&a, &b]
        .iter()
        .flat_map(|o| json_events(o))
        .filter(|e| e["event"] == "finished" && e["name"] == "slow-once" && e["built"] == true)
        .count();
    assert_eq!(built, 1, "exactly one process builds the path");
    assert_eq!(
        std::fs::read_link(store.path().join("a")).unwrap(),
        std::fs::read_link(store.path().join("b")).unwrap()
    );
}

#[test]
fn an_unknown_recipe_names_close_ones_and_a_cycle_names_its_path() {
    let store = tempfile::tempdir().unwrap();
    let out = example(store.path()).args(["build", "two-sleep"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no recipe `two-sleep`") && err.contains("two-sleeps"), "{err}");

    let out = example(store.path()).args(["show", "cycle"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cycle-a -> cycle-b -> cycle-a"), "{err}");
}

#[test]
fn show_lists_states_and_why_names_the_changed_leaf() {
    let Some(mirror) = test_mirror() else { return };
    let store = store_with_busybox(&mirror);
    run_ok(example(store.path()).args(["build", "slow-once", "--out"]).arg(store.path().join("o")));
    let out = run_ok(example(store.path()).args(["show", "slow-once", "--json"]));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rows.iter().all(|r| r["state"] == "valid"), "{rows:?}");

    let out = run_ok(example(store.path()).env("FORGE_EXAMPLE_SALT", "changed").args(["why", "slow-once"]));
    let text = stdout(&out);
    assert!(text.contains(r#"env.SALT: "" -> "changed""#), "{text}");
    let out = run_ok(example(store.path()).env("FORGE_EXAMPLE_SALT", "changed").args(["show", "slow-once"]));
    assert!(stdout(&out).contains("to build"));
}

#[test]
fn build_drv_realises_a_derivation_given_as_json_and_log_prints_its_log() {
    let Some(mirror) = test_mirror() else { return };
    let store = store_with_busybox(&mirror);
    let root = std::fs::read_link(store.path().join("bb")).unwrap();
    let root = format!("/forge/store/{}", root.file_name().unwrap().to_string_lossy());
    let drv = serde_json::json!({
        "name": "from-json", "system": "x86_64-linux",
        "builder": {"kind": "run", "sysroot": [root], "script": "echo made by json > $out/file; echo logged"},
        "inputs": [root],
    });
    let file = store.path().join("d.json");
    std::fs::write(&file, drv.to_string()).unwrap();
    let out =
        run_ok(example(store.path()).args(["build", "--drv"]).arg(&file).arg("--out").arg(store.path().join("j")));
    let path = stdout(&out);
    assert_eq!(std::fs::read_to_string(Path::new(&path).join("file")).unwrap(), "made by json\n");
    let store_path = format!("/forge/store/{}", Path::new(&path).file_name().unwrap().to_string_lossy());
    let log = run_ok(example(store.path()).args(["log", &store_path]));
    assert!(stdout(&log).contains("logged"));
}

#[test]
fn offline_build_of_gnu_hello_from_upstream_source_runs_the_compiled_program() {
    let Some(mirror) = test_mirror() else { return };
    let store = tempfile::tempdir().unwrap();
    let out = run_ok(
        forge(store.path())
            .args(["build", "hello", "--offline", "--mirror"])
            .arg(&mirror)
            .arg("--out")
            .arg(store.path().join("hello")),
    );
    let hello = std::path::PathBuf::from(stdout(&out));
    let toolchain = std::fs::read_dir(store.path().join("store"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-bootstrap-toolchain-gcc-12"))
        .unwrap();
    let inside = format!("/forge/store/{}", hello.file_name().unwrap().to_string_lossy());
    // The program runs on the toolchain's glibc, in the sandbox: nothing of the host.
    let run = run_ok(
        Command::new(forge_bin())
            .args(["sandbox", "--root"])
            .arg(&toolchain)
            .arg("--ro")
            .arg(format!("{}:{inside}", hello.display()))
            .args(["--", &format!("{inside}/usr/bin/hello")]),
    );
    assert_eq!(stdout(&run), "Hello, world!");
    // A second real upstream C project with the same toolchain: musl, the C library of Alpine.
    let out = run_ok(
        forge(store.path())
            .args(["build", "musl", "--offline", "--mirror"])
            .arg(&mirror)
            .arg("--out")
            .arg(store.path().join("musl")),
    );
    let musl = std::path::PathBuf::from(stdout(&out));
    assert!(musl.join("usr/lib/libc.so").is_file() && musl.join("usr/include/stdio.h").is_file());
    assert_eq!(std::fs::read_link(musl.join("lib/ld-musl-x86_64.so.1")).unwrap(), Path::new("/usr/lib/libc.so"));
    // A real autotools build rebuilds bit for bit.
    run_ok(forge(store.path()).args(["build", "hello", "--check", "--offline", "--mirror"]).arg(&mirror));
    // Its NAR hash is what nix-hash says.
    if have_tool("nix-hash") {
        let info = run_ok(forge(store.path()).args(["store", "info", &inside, "--json"]));
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        let nix = run_ok(Command::new("nix-hash").args(["--type", "sha256", "--base32"]).arg(&hello));
        assert_eq!(info["narHash"], format!("sha256:{}", stdout(&nix)));
    }
}

#[test]
fn vendor_fills_a_mirror_that_an_offline_build_in_a_fresh_store_uses() {
    let Some(mirror) = test_mirror() else { return };
    let store = tempfile::tempdir().unwrap();
    let vendored = store.path().join("vendored");
    let out = run_ok(
        example(store.path())
            .args(["vendor", "two-sleeps"])
            .arg(&vendored)
            .arg("--mirror")
            .arg(&mirror)
            .arg("--offline"),
    );
    assert!(stdout(&out).contains("busybox-static"), "{}", stdout(&out));
    let fresh = tempfile::tempdir().unwrap();
    run_ok(
        example(fresh.path())
            .args(["build", "two-sleeps", "--offline", "--mirror"])
            .arg(&vendored)
            .arg("--out")
            .arg(fresh.path().join("o")),
    );
}

#[test]
fn an_offline_build_with_missing_inputs_lists_all_of_them_and_points_at_vendor() {
    let store = tempfile::tempdir().unwrap();
    let empty = store.path().join("empty-mirror");
    std::fs::create_dir(&empty).unwrap();
    let out = forge(store.path()).args(["build", "hello", "--offline", "--mirror"]).arg(&empty).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    // 50 toolchain packages and the hello tarball, each with its URL and hash.
    assert!(err.contains("51 input(s)"), "{err}");
    assert!(err.contains("https://ftp.gnu.org/gnu/hello/hello-2.10.tar.gz"), "{err}");
    assert!(err.contains("forge vendor"), "{err}");
}

#[test]
fn check_names_the_steps_and_files_that_do_not_rebuild_the_same_and_passes_the_rest() {
    let Some(mirror) = test_mirror() else { return };
    let store = store_with_busybox(&mirror);
    run_ok(example(store.path()).args(["build", "nondeterministic", "--out"]).arg(store.path().join("n")));
    let out = example(store.path()).args(["build", "nondeterministic", "--check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("NOT REPRODUCIBLE writes-time") && text.contains("stamp.txt:"), "{text}");
    assert!(text.contains("NOT REPRODUCIBLE writes-random") && text.contains("random.txt:"), "{text}");
    assert!(!text.contains("NOT REPRODUCIBLE stable"), "{text}");
    // Both outputs are kept for inspection.
    assert!(std::fs::read_dir(store.path().join("check")).unwrap().count() >= 2);

    run_ok(example(store.path()).args(["build", "two-sleeps", "--out"]).arg(store.path().join("t")));
    run_ok(example(store.path()).args(["build", "two-sleeps", "--check", "--rounds", "2"]));
}

#[test]
fn a_shallow_check_rebuilds_only_the_named_recipes_own_step() {
    let Some(mirror) = test_mirror() else { return };
    let store = store_with_busybox(&mirror);
    run_ok(example(store.path()).args(["build", "nondeterministic", "--out"]).arg(store.path().join("n")));
    // The recipe's own step joins its parts, the same every time; the parts that write
    // the time and random bytes are inputs, taken from the store and not rebuilt.
    let out = run_ok(example(store.path()).args(["build", "nondeterministic", "--check", "--shallow"]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("checked 1 rebuild(s): 0 differ"), "{err}");
    assert!(err.contains("s] check nondeterministic\n"), "each rebuild is announced as it starts: {err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("NOT REPRODUCIBLE"));
    // Without --shallow the parts are rebuilt too, and the nondeterministic ones caught.
    let out = example(store.path()).args(["build", "nondeterministic", "--check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn verify_rebuilds_in_a_fresh_store_and_names_a_tampered_artifact_or_input() {
    let Some(mirror) = test_mirror() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    run_ok(
        example(&store)
            .args(["build", "two-sleeps", "--offline", "--mirror"])
            .arg(&mirror)
            .arg("--out")
            .arg(dir.path().join("o")),
    );
    let record = dir.path().join("o.provenance.json");
    // --store here only places each fresh store inside the test's temp dir.
    let out = run_ok(
        example(&dir.path().join("fresh-1")).args(["verify"]).arg(&record).args(["--offline", "--mirror"]).arg(&mirror),
    );
    assert!(stdout(&out).starts_with("verified: 2 subject(s)"), "{}", stdout(&out));

    // An artifact that is not what was built: the record's digest no longer matches.
    let text = std::fs::read_to_string(&record).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let digest = v["subject"][0]["digest"]["sha256"].as_str().unwrap().to_owned();
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, text.replace(&digest, &"0".repeat(64))).unwrap();
    let out =
        example(&store).args(["verify"]).arg(&tampered).args(["--offline", "--mirror"]).arg(&mirror).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("DIFFERS subject a"), "{}", stdout(&out));

    // An input in the mirror that is not the pinned one: named, nothing trusted.
    let bad_mirror = dir.path().join("bad-mirror");
    std::fs::create_dir(&bad_mirror).unwrap();
    for entry in std::fs::read_dir(&mirror).unwrap() {
        let name = entry.unwrap().file_name();
        if name.to_string_lossy().starts_with("busybox-static") {
            std::fs::write(bad_mirror.join(&name), b"not busybox").unwrap();
        }
    }
    let out = example(&dir.path().join("fresh-3"))
        .args(["verify"])
        .arg(&record)
        .args(["--offline", "--mirror"])
        .arg(&bad_mirror)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(all.contains("busybox-static"), "{all}");
}

#[test]
fn list_into_a_closed_pipe_ends_quietly_instead_of_panicking() {
    let store = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader); // every write now fails with EPIPE, as after `| head -1` exits
    let out = forge(store.path()).arg("list").stdout(writer).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "forge list exited {:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
