//! `forge shell RECIPE` and `forge sandbox -i` end to end, as root and as the
//! unprivileged user: the step's inputs, env and source inside, stdin passed
//! through, a terminal of the sandbox's own (through `script` and Python's pty
//! module, which give forge a terminal), Ctrl-C and window sizes reaching the shell.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use forge_tests::sandbox::{open_up, uid_of, As, Ctx, TEST_USER};
use forge_tests::{as_root_and_user, example_bin, have_tool, test_mirror};

/// A private store and the `forge-example` binary, run as root or as the test user.
struct Shell {
    store: tempfile::TempDir,
    mirror: PathBuf,
    who: As,
    bin: PathBuf,
    _copy: Option<tempfile::TempDir>,
}

impl Shell {
    /// The context, or `None` (with a message) when the mirror or the user is missing.
    fn new(who: As) -> Option<Shell> {
        let mirror = test_mirror()?;
        // SAFETY: geteuid cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let store = tempfile::tempdir().unwrap();
        let (bin, copy) = match who {
            As::Root if !root => {
                eprintln!("SKIP: not root; the as-root variant needs root");
                return None;
            }
            As::User if root => {
                let Some(uid) = uid_of(TEST_USER) else {
                    eprintln!("SKIP: user {TEST_USER} does not exist (.ci/run creates it with useradd)");
                    return None;
                };
                std::os::unix::fs::chown(store.path(), Some(uid), None).unwrap();
                // The build tree may sit where the test user cannot reach: use a copy.
                let dir = tempfile::tempdir().unwrap();
                open_up(dir.path());
                let bin = dir.path().join("forge-example");
                std::fs::copy(example_bin(), &bin).unwrap();
                (bin, Some(dir))
            }
            _ => (example_bin(), None),
        };
        Some(Shell { store, mirror, who, bin, _copy: copy })
    }

    /// argv of `forge-example --store S shell shell-demo --offline --mirror M [ARGS]`,
    /// prefixed with setpriv for the test user (it execs, so forge keeps its pid).
    fn argv(&self, args: &[&str]) -> Vec<String> {
        let mut argv = Vec::new();
        // SAFETY: geteuid cannot fail.
        if self.who == As::User && unsafe { libc::geteuid() } == 0 {
            argv.extend(
                ["setpriv", "--reuid", TEST_USER, "--regid", TEST_USER, "--clear-groups", "--"].map(String::from),
            );
        }
        argv.push(self.bin.display().to_string());
        argv.extend(["--store".to_owned(), self.store.path().display().to_string()]);
        argv.extend(["shell", "shell-demo", "--offline", "--mirror"].map(String::from));
        argv.push(self.mirror.display().to_string());
        argv.extend(args.iter().map(|a| a.to_string()));
        argv
    }

    fn command(&self, args: &[&str]) -> Command {
        let argv = self.argv(args);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).env_remove("FORGE_STORE").env_remove("FORGE_MIRRORS");
        cmd
    }

    /// Runs `forge shell shell-demo -- sh -c SCRIPT` with `stdin` piped in.
    fn sh(&self, script: &str, stdin: &[u8]) -> Output {
        let mut child = self
            .command(&["--", "sh", "-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    /// The store's folders whose names contain `part`.
    fn store_entries(&self, dir: &str, part: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.store.path().join(dir)) else { return Vec::new() };
        entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.contains(part)).collect()
    }
}

/// `NAME::as_root` and `NAME::as_user` from one body taking a [`Shell`].
macro_rules! shell_test {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn as_root() {
                if let Some(s) = Shell::new(As::Root) {
                    ($body)(s)
                }
            }
            #[test]
            fn as_user() {
                if let Some(s) = Shell::new(As::User) {
                    ($body)(s)
                }
            }
        }
    };
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

shell_test!(the_shell_sees_the_steps_inputs_env_and_writable_source_and_keeps_nothing, |s: Shell| {
    let script = "pwd; cat main.c; echo more >> main.c && echo source-writable; cat doc/README; \
                  echo \"greeting=$GREETING\"; cat \"$NOTE\"; echo \"src=$src\"; ls \"$src\"; \
                  touch \"$out/made\" && echo out-writable; grep -c busybox /build/.forge-script; \
                  touch \"$src/x\" 2>/dev/null || echo inputs-read-only; echo \"term=$TERM\"; exit 7";
    let out = s.sh(script, b"");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(7), "{stdout}\n{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "/build/src");
    assert_eq!(lines[1], "int main(void) { return 0; }");
    for want in ["source-writable", "readme", "greeting=hello from the step", "a note from an input"] {
        assert!(lines.contains(&want), "{want} missing:\n{stdout}");
    }
    assert!(stdout.contains("src=/forge/store/") && stdout.contains("-shell-demo-src\n"), "{stdout}");
    for want in ["out-writable", "inputs-read-only", "term=dumb"] {
        assert!(lines.contains(&want), "{want} missing:\n{stdout}");
    }
    // Nothing of the session stays: no output registered or left, no scratch folder.
    assert!(s.store_entries("store", "-shell-demo-1.0").is_empty());
    assert!(s.store_entries("tmp", "shell-").is_empty(), "{:?}", s.store_entries("tmp", ""));
});

shell_test!(a_script_piped_into_forge_shell_runs_in_the_steps_shell, |s: Shell| {
    let mut child = s.command(&[]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let script = "echo \"from stdin in $(pwd) with $GREETING\"\nls /dev/pts 2>/dev/null || echo no-pts\nexit 4\n";
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}\n{}", text(&out.stderr));
    assert_eq!(stdout, "from stdin in /build/src with hello from the step\nno-pts\n");
});

shell_test!(stdin_reaches_a_command_and_ends_with_eof, |s: Shell| {
    let data: Vec<u8> = (0..200_000u32).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
    let out = s.sh("wc -l; wc -c < /dev/null", &data);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).split_whitespace().collect::<Vec<_>>(), ["200000", "0"]);
});

shell_test!(sigint_to_forge_goes_to_the_command_without_a_terminal, |s: Shell| {
    let script =
        "trap 'echo got-int; exit 42' INT; echo ready; i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done";
    let mut child = s
        .command(&["--", "sh", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut line = [0u8; 6];
    stdout.read_exact(&mut line).unwrap();
    assert_eq!(&line, b"ready\n");
    // SAFETY: kill(2) on the pid of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(rest, "got-int\n");
    assert_eq!(status.code(), Some(42), "forge passed the command's status on, not 130");
});

/// `script -qec CMD /dev/null` with input written as the output asks for it:
/// `steps` are (wait for this text, then type that). Returns the output and status.
fn in_script(argv: &[String], steps: &[(&str, &str)]) -> (String, Option<i32>) {
    let cmd = argv.iter().map(|a| format!("'{}'", a.replace('\'', r"'\''"))).collect::<Vec<_>>().join(" ");
    let mut child = Command::new("timeout")
        .args(["120", "script", "-qec", &cmd, "/dev/null"])
        .env("TERM", "xterm-256color")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    let mut seen = Vec::new();
    for (wait, typed) in steps {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !text(&seen).contains(wait) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(chunk) => seen.extend(chunk),
                Err(_) => panic!("no {wait:?} in the output:\n{}", text(&seen)),
            }
        }
        seen.clear(); // the next wait looks only at what comes after
        stdin.write_all(typed.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    // Keep stdin open until the end: script passes its EOF on to the terminal.
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    let rest: Vec<u8> = rx.try_iter().flatten().collect();
    seen.extend(rest);
    (text(&seen), status.code())
}

shell_test!(on_a_terminal_the_command_gets_a_pty_of_its_own_and_its_exit_status_passes, |s: Shell| {
    if !have_tool("script") {
        return;
    }
    let inner = "tty; echo \"term=$TERM\"; ls -1 /dev/pts; readlink /dev/ptmx; exit 6";
    // The terminal's settings before and after forge: raw mode must not outlive it.
    let mut argv: Vec<String> =
        ["sh", "-c", "stty -g; \"$@\"; rc=$?; stty -g; exit $rc", "sh"].map(String::from).to_vec();
    argv.extend(s.argv(&["--", "sh", "-c", inner]));
    let (out, code) = in_script(&argv, &[]);
    assert_eq!(code, Some(6), "{out}");
    let lines: Vec<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
    let settings: Vec<&&str> = lines.iter().filter(|l| l.matches(':').count() > 20).collect();
    assert_eq!(settings.len(), 2, "{out}");
    assert_eq!(settings[0], settings[1], "the caller's terminal settings changed");
    let tty = lines.iter().find(|l| l.starts_with("/dev/")).unwrap_or_else(|| panic!("no tty line:\n{out}"));
    assert!(tty.strip_prefix("/dev/pts/").is_some_and(|n| n.parse::<u32>().is_ok()), "{tty}");
    assert!(lines.contains(&"term=xterm-256color"), "{out}");
    // The sandbox's own devpts: its one pty and the multiplexer, nothing of the host's.
    let i = lines.iter().position(|l| *l == "0").unwrap_or_else(|| panic!("no /dev/pts listing:\n{out}"));
    assert_eq!(&lines[i..i + 3], ["0", "ptmx", "pts/ptmx"], "{out}");
});

shell_test!(ctrl_c_on_the_terminal_stops_the_shells_command_not_forge, |s: Shell| {
    if !have_tool("script") {
        return;
    }
    let started = Instant::now();
    let steps = [
        // A subshell with SIGINT at its default before it says `started`: the Ctrl-C
        // that follows ends it however soon it comes (a bare `echo; sleep` raced:
        // a SIGINT landing while the shell forked sleep could be lost).
        (" # ", "(trap - INT; echo started; exec sleep 100)\r"),
        ("started\r\n", "\x03"),
        (" # ", "echo after-$((6*7))\r"),
        ("after-42", "exit 3\r"),
    ];
    let (out, code) = in_script(&s.argv(&[]), &steps);
    assert_eq!(code, Some(3), "{out}");
    assert!(started.elapsed() < Duration::from_secs(60), "sleep 100 was not interrupted");
});

/// Runs `forge shell -- sh -c SCRIPT` on a pty made by Python's pty module, 30x100;
/// once the output says `waiting-for-resize`, the terminal becomes 40x120. Returns the output.
fn with_resize(argv: &[String], script: &str) -> (String, Option<i32>) {
    const HARNESS: &str = r#"
import fcntl, os, pty, select, struct, sys, termios, time
size = lambda r, c: struct.pack('HHHH', r, c, 0, 0)
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, size(30, 100))
    os.execvp(sys.argv[1], sys.argv[1:])
out = b''
def read_until(marker):
    global out
    end = time.time() + 60
    while marker is None or marker not in out:
        if not select.select([fd], [], [], max(0, end - time.time()))[0]:
            sys.exit('no %r in %r' % (marker, out))
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return
        if not chunk:
            return
        out += chunk
read_until(b'waiting-for-resize')
fcntl.ioctl(fd, termios.TIOCSWINSZ, size(40, 120))
read_until(None)
status = os.waitpid(pid, 0)[1]
sys.stdout.write(out.decode(errors='replace'))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let mut full = argv.to_vec();
    full.extend(["--", "sh", "-c", script].map(String::from));
    let out = Command::new("python3").args(["-c", HARNESS]).args(&full).env("TERM", "xterm").output().unwrap();
    (format!("{}{}", text(&out.stdout), text(&out.stderr)), out.status.code())
}

shell_test!(the_ptys_window_size_follows_the_callers_terminal, |s: Shell| {
    if !have_tool("python3") {
        return;
    }
    let script = "stty size; trap 'stty size; echo resized; exit 0' WINCH; echo waiting-for-resize; \
                  i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; exit 1";
    let (out, code) = with_resize(&s.argv(&[]), script);
    assert_eq!(code, Some(0), "{out}");
    let lines: Vec<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
    let first = lines.iter().position(|l| *l == "30 100").unwrap_or_else(|| panic!("no 30 100:\n{out}"));
    let later = lines.iter().position(|l| *l == "40 120").unwrap_or_else(|| panic!("no 40 120:\n{out}"));
    assert!(first < later && lines.contains(&"resized"), "{out}");
});

#[test]
fn a_recipe_that_is_not_a_run_step_is_refused_with_the_run_steps_it_needs() {
    let store = tempfile::tempdir().unwrap();
    let out = forge_tests::example(store.path()).args(["shell", "two-sleeps"]).output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("`two-sleeps` is the builtin `merge`"), "{err}");
    assert!(err.contains("sleep-a, sleep-b (--step NAME)"), "{err}");
    let out = forge_tests::example(store.path()).args(["shell", "two-sleeps", "--step", "sleep-c"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("no run step named `sleep-c`"), "{}", text(&out.stderr));
}

#[test]
fn an_input_that_fails_to_build_stops_before_the_shell_with_its_log() {
    let store = tempfile::tempdir().unwrap();
    let Some(mirror) = test_mirror() else { return };
    let out = forge_tests::example(store.path())
        .args(["shell", "fail-keep-going", "--step", "needs-fails", "--offline", "--mirror"])
        .arg(&mirror)
        .args(["--", "echo", "never"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("about to fail") && err.contains("no shell was opened"), "{err}");
    assert!(!text(&out.stdout).contains("never"));
}

as_root_and_user!(sandbox_interactive_passes_stdin_while_builds_keep_dev_null, |ctx: Ctx| {
    let run = |opts: &[&str], input: &[u8]| {
        let mut child = ctx
            .sandbox()
            .args(opts)
            .args(["--", "/bin/sh", "-c", "cat; ls /dev"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        text(&out.stdout)
    };
    let interactive = run(&["-i"], b"through the pipe\n");
    assert!(interactive.starts_with("through the pipe\n"), "{interactive}");
    let build = run(&[], b"never read\n");
    assert!(!build.contains("never read"), "{build}");
    // Without a terminal neither mode gets a devpts: /dev is the same as a build's.
    let dev = |s: &str| s.lines().filter(|l| !l.contains("through")).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(dev(&interactive), dev(&build));
    assert!(!build.contains("pts") && !build.contains("ptmx"), "{build}");
});
