//! The systemd -> OpenRC converter on unit files modelled on AGNOS's: golden
//! outputs, `sh -n` on every script (dash and busybox sh), and OpenRC's own
//! dependency parser (gendepends.sh from Debian's openrc package) reading them.
//!
//! Golden files are in tests/openrc/golden; `FORGE_BLESS=1` rewrites them (then
//! read the diff: the goldens are the reviewed expectation).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use forge_engine::openrc::{self, convert_unit, magic_service, report, Conversion, Converter, Override, Severity};

fn units_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openrc/units")
}

fn convert_file(name: &str) -> Conversion {
    let text = fs::read_to_string(units_dir().join(name)).unwrap();
    convert_unit(name, &text, &Override::default()).unwrap()
}

fn all_conversions() -> Vec<Conversion> {
    let mut names: Vec<String> =
        fs::read_dir(units_dir()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    let mut out: Vec<Conversion> = names.iter().map(|n| convert_file(n)).collect();
    out.push(magic_service().unwrap());
    out
}

/// Everything a conversion produces, as one text to compare against a golden file.
fn dump(c: &Conversion) -> String {
    let mut s = format!(
        "service: {}\nrunlevel: {}\n",
        c.service.as_deref().unwrap_or("-"),
        c.runlevel.as_deref().unwrap_or("-")
    );
    s += &format!("== init.d\n{}", c.script.as_deref().unwrap_or(""));
    s += &format!("== conf.d\n{}", c.conf.as_deref().unwrap_or(""));
    s += "== cron\n";
    for line in &c.cron {
        s += line;
        s += "\n";
    }
    s += &format!("== report\n{}", report::render(&c.report));
    s
}

#[test]
fn conversions_match_their_golden_files() {
    let golden_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openrc/golden");
    let bless = std::env::var_os("FORGE_BLESS").is_some();
    let mut mismatches = Vec::new();
    for c in all_conversions() {
        let path = golden_dir.join(format!("{}.txt", c.unit));
        let text = dump(&c);
        if bless {
            fs::write(&path, &text).unwrap();
        } else if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            mismatches.push(format!("{}:\n{text}", path.display()));
        }
    }
    assert!(mismatches.is_empty(), "outputs differ from goldens (FORGE_BLESS=1 rewrites):\n{}", mismatches.join("\n"));
}

#[test]
fn conversion_is_deterministic() {
    let a: Vec<String> = all_conversions().iter().map(dump).collect();
    let b: Vec<String> = all_conversions().iter().map(dump).collect();
    assert_eq!(a, b);
}

#[test]
fn every_script_passes_sh_n_in_dash_and_busybox() {
    let shells: Vec<Vec<&str>> =
        [vec!["dash"], vec!["busybox", "sh"]].into_iter().filter(|s| forge_tests::have_tool(s[0])).collect();
    assert!(!shells.is_empty() || std::env::var_os("CI").is_none(), "CI must have dash or busybox");
    let dir = tempfile::tempdir().unwrap();
    for c in all_conversions() {
        let Some(script) = &c.script else { continue };
        let path = dir.path().join(c.service.as_ref().unwrap());
        fs::write(&path, script).unwrap();
        for shell in &shells {
            let out = Command::new(shell[0]).args(&shell[1..]).arg("-n").arg(&path).output().unwrap();
            assert!(
                out.status.success(),
                "{:?} -n {}: {}\n{script}",
                shell,
                c.unit,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// Debian's openrc package unpacked by .ci/setup.d/openrc.sh.
fn openrc_root() -> Option<PathBuf> {
    let root =
        std::env::var_os("FORGE_OPENRC_ROOT").map_or_else(|| PathBuf::from("/var/cache/forge-openrc"), PathBuf::from);
    let parts =
        ["lib/rc/sh/gendepends.sh", "sbin/openrc-run", "sbin/supervise-daemon", "lib/x86_64-linux-gnu/librc.so.1"];
    if parts.iter().all(|p| root.join(p).is_file()) {
        Some(root)
    } else {
        eprintln!("SKIP: {} has no unpacked openrc; run .ci/setup.d/openrc.sh", root.display());
        None
    }
}

/// A tree of every generated script and conf.d file, as /etc/init.d and /etc/conf.d.
fn write_etc(dir: &Path) -> Vec<(String, String)> {
    use std::os::unix::fs::PermissionsExt;
    let (init, conf) = (dir.join("init.d"), dir.join("conf.d"));
    fs::create_dir_all(&init).unwrap();
    fs::create_dir_all(&conf).unwrap();
    let mut scripts = Vec::new();
    for c in all_conversions() {
        let (Some(svc), Some(script)) = (&c.service, &c.script) else { continue };
        fs::write(init.join(svc), script).unwrap();
        fs::set_permissions(init.join(svc), fs::Permissions::from_mode(0o755)).unwrap();
        if let Some(text) = &c.conf {
            fs::write(conf.join(svc), text).unwrap();
        }
        scripts.push((svc.clone(), script.clone()));
    }
    scripts
}

/// Runs `sh -c SCRIPT` in bwrap with the unpacked OpenRC at /lib/rc and /sbin,
/// its libraries beside the host's, and `dir`'s init.d and conf.d as /etc's.
/// None (after a SKIP message) when bwrap cannot run here.
fn in_openrc_sandbox(root: &Path, dir: &Path, script: &str) -> Option<std::process::Output> {
    // The host's libraries plus librc/libeinfo in one directory (symlinks resolve
    // inside the sandbox, where /usr is the host's).
    let libs = dir.join("libs");
    fs::create_dir_all(&libs).unwrap();
    let host_libs = Path::new("/usr/lib/x86_64-linux-gnu");
    for e in fs::read_dir(host_libs).unwrap() {
        let e = e.unwrap();
        std::os::unix::fs::symlink(e.path(), libs.join(e.file_name())).unwrap();
    }
    for lib in ["librc.so.1", "libeinfo.so.1"] {
        fs::copy(root.join("lib/x86_64-linux-gnu").join(lib), libs.join(lib)).unwrap();
    }
    let bind = |from: &Path, to: &str| vec!["--ro-bind".into(), from.as_os_str().to_owned(), to.into()];
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    for a in ["--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib64", "/lib64"] {
        args.push(a.into());
    }
    for a in ["--tmpfs", "/lib", "--tmpfs", "/sbin", "--tmpfs", "/etc", "--tmpfs", "/run", "--tmpfs", "/var"] {
        args.push(a.into());
    }
    args.extend(bind(&libs, "/lib/x86_64-linux-gnu"));
    args.extend(bind(&root.join("lib/rc"), "/lib/rc"));
    args.extend(bind(&root.join("sbin/openrc-run"), "/sbin/openrc-run"));
    args.extend(bind(&root.join("sbin/supervise-daemon"), "/sbin/supervise-daemon"));
    for a in ["--symlink", "/run", "/var/run"] {
        args.push(a.into());
    }
    args.extend(bind(&dir.join("init.d"), "/etc/init.d"));
    args.extend(bind(&dir.join("conf.d"), "/etc/conf.d"));
    for a in ["--dev", "/dev", "--proc", "/proc", "--unshare-all", "--die-with-parent", "/bin/sh", "-c", script] {
        args.push(a.into());
    }
    let out = Command::new("bwrap").args(&args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && err.starts_with("bwrap:") {
        eprintln!("SKIP: bwrap cannot run here: {err}");
        return None;
    }
    Some(out)
}

fn openrc_ready() -> Option<PathBuf> {
    let root = openrc_root()?;
    if !forge_tests::have_tool("bwrap") || !Path::new("/usr/lib/x86_64-linux-gnu").is_dir() {
        eprintln!("SKIP: needs bwrap and an x86_64 Debian host");
        return None;
    }
    Some(root)
}

/// OpenRC's gendepends.sh sources each script with OpenRC's shell functions and
/// prints the dependencies it declares: the depinfo `rc-update`/`openrc` use.
#[test]
fn openrc_gendepends_reads_the_dependencies_we_wrote() {
    let Some(root) = openrc_ready() else { return };
    let dir = tempfile::tempdir().unwrap();
    let scripts = write_etc(dir.path());
    let Some(out) = in_openrc_sandbox(&root, dir.path(), "/bin/sh /lib/rc/sh/gendepends.sh") else { return };
    let depinfo = String::from_utf8_lossy(&out.stdout);
    for (svc, script) in scripts {
        for (keyword, oracle) in [("need", "ineed"), ("want", "iwant"), ("after", "iafter"), ("before", "ibefore")] {
            let ours = script.lines().find_map(|l| l.strip_prefix(&format!("\t{keyword} "))).map(str::to_string);
            let theirs = depinfo.lines().find_map(|l| l.strip_prefix(&format!("{svc} {oracle} "))).map(str::to_string);
            assert_eq!(ours, theirs, "{svc} {keyword}: our script vs OpenRC's gendepends\n{depinfo}");
        }
    }
    assert!(depinfo.contains("avahi-ssh-publish ineed avahi-daemon"), "{depinfo}");
    assert!(depinfo.contains("magic ineed localmount"), "{depinfo}");
}

/// The real `openrc-run SCRIPT describe` loads each script (conf.d first, as on a
/// booted system) and prints its description and extra commands; a script it
/// cannot load prints a shell error instead.
#[test]
fn openrc_run_loads_and_describes_every_script() {
    let Some(root) = openrc_ready() else { return };
    let dir = tempfile::tempdir().unwrap();
    let scripts = write_etc(dir.path());
    fs::write(dir.path().join("init.d/broken"), "#!/sbin/openrc-run\nstart() {\n if then\n}\n").unwrap();
    // openrc-run wants the state directory a booted OpenRC keeps in /run/openrc.
    let mut sh = String::from(
        "mkdir -p /run/openrc/started /run/openrc/daemons /run/openrc/options && echo default > /run/openrc/softlevel \
         && : > /etc/insserv.conf",
    );
    for svc in scripts.iter().map(|(s, _)| s.as_str()).chain(["broken"]) {
        sh += &format!(" && echo '@@ {svc}' && /sbin/openrc-run /etc/init.d/{svc} describe 2>&1");
    }
    let Some(out) = in_openrc_sandbox(&root, dir.path(), &sh) else { return };
    let text = String::from_utf8_lossy(&out.stdout);
    let sections: Vec<&str> = text.split("@@ ").skip(1).collect();
    assert_eq!(sections.len(), scripts.len() + 1, "{text}");
    for (section, (svc, script)) in sections.iter().zip(&scripts) {
        assert!(section.starts_with(&format!("{svc}\n")), "{section}");
        let description = script.lines().find_map(|l| l.strip_prefix("description=\"")).unwrap().trim_end_matches('"');
        assert!(section.contains(&format!(" * {description}\n")), "{svc}: openrc-run did not describe it:\n{section}");
        assert!(!section.contains("rror"), "{svc}: {section}");
        if script.contains("extra_started_commands=\"reload\"") {
            assert!(section.contains(" * reload"), "{svc}: reload not listed:\n{section}");
        }
    }
    // The oracle can fail: a script with a syntax error is refused.
    let broken = sections.last().unwrap();
    assert!(broken.contains("Syntax error") && !broken.contains(" * "), "{broken}");
}

/// The state directories a booted OpenRC keeps in /run/openrc.
const OPENRC_STATE: &str = "for d in started starting stopping inactive wasinactive failed exclusive scheduled \
    options daemons hotplugged tmp; do mkdir -p /run/openrc/$d; done && echo default > /run/openrc/softlevel \
    && : > /etc/insserv.conf";

/// Real OpenRC starts and stops what we generate: a oneshot with its environment,
/// pre and stop commands, and a daemon under supervise-daemon whose output goes
/// to output_log/error_log and which is respawned after it exits.
#[test]
fn openrc_runs_a_converted_oneshot_and_a_respawning_daemon() {
    let Some(root) = openrc_ready() else { return };
    let oneshot = "[Service]\nType=oneshot\nRemainAfterExit=yes\nEnvironment=GREETING=hi\n\
        ExecStartPre=/bin/sh -c \"echo pre >> /run/trace\"\nExecStart=/bin/sh -c \"echo $GREETING >> /run/trace\"\n\
        ExecStop=/bin/sh -c \"echo stop >> /run/trace\"\n";
    let daemon =
        "[Unit]\nDescription=ticker\n[Service]\nExecStart=/bin/sh -c \"echo tick; echo oops >&2; sleep 1; exit 3\"\n\
        Restart=always\nRestartSec=1\nStandardOutput=append:/run/ticker.log\nStandardError=append:/run/ticker.err\n";
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("hello.service", oneshot), ("ticker.service", daemon)] {
        let c = convert_unit(name, text, &Override::default()).unwrap();
        let svc = c.service.unwrap();
        fs::create_dir_all(dir.path().join("init.d")).unwrap();
        fs::create_dir_all(dir.path().join("conf.d")).unwrap();
        fs::write(dir.path().join("init.d").join(&svc), c.script.unwrap()).unwrap();
        if let Some(conf) = c.conf {
            fs::write(dir.path().join("conf.d").join(&svc), conf).unwrap();
        }
    }
    let sh = format!(
        "{OPENRC_STATE} && /sbin/openrc-run /etc/init.d/hello start && /sbin/openrc-run /etc/init.d/hello stop \
         && /sbin/openrc-run /etc/init.d/ticker start \
         && for i in 1 2 3 4 5 6 7 8 9 10; do [ $(grep -c tick /run/ticker.log) -ge 2 ] && break; sleep 1; done \
         && /sbin/openrc-run /etc/init.d/ticker status && /sbin/openrc-run /etc/init.d/ticker stop \
         && echo @@trace && cat /run/trace && echo @@log && cat /run/ticker.log && echo @@err && cat /run/ticker.err"
    );
    let Some(out) = in_openrc_sandbox(&root, dir.path(), &sh) else { return };
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}\n{err}");
    let trace = text.split("@@trace\n").nth(1).unwrap().split("@@log").next().unwrap();
    assert_eq!(trace, "pre\nhi\nstop\n");
    let log = text.split("@@log\n").nth(1).unwrap().split("@@err").next().unwrap();
    assert!(log.matches("tick").count() >= 2, "not respawned:\n{log}");
    assert!(text.split("@@err\n").nth(1).unwrap().starts_with("oops\n"), "{text}");
}

#[test]
fn magic_runs_the_venv_python_supervised_with_its_log() {
    let c = magic_service().unwrap();
    let s = c.script.unwrap();
    assert_eq!(c.service.as_deref(), Some("magic"));
    assert_eq!(c.runlevel.as_deref(), Some("default"));
    assert!(s.starts_with("#!/sbin/openrc-run\n"));
    assert!(s.contains("command=\"/bin/bash\"\n"), "{s}");
    assert!(s.contains("exec /usr/local/venv/bin/python -u /usr/comma/magic.py"), "{s}");
    assert!(
        s.contains("output_log=\"/var/log/magic.log\"\n") && s.contains("error_log=\"/var/log/magic.log\"\n"),
        "{s}"
    );
    assert!(s.contains("supervisor=\"supervise-daemon\"\n") && s.contains("respawn_delay=\"2\"\n"), "{s}");
    assert!(s.contains("command_user=\"comma\"\n"), "{s}");
    assert!(!s.contains("command_background") && !s.contains("pidfile"), "{s}");
    // PermissionsStartOnly: the device setup runs as root, not through su.
    assert!(s.contains("\t( chgrp gpu /dev/ion /dev/kgsl-3d0; chmod 660 /dev/ion /dev/kgsl-3d0 ) &&\n"), "{s}");
    assert!(!s.contains("su -s"), "{s}");
    assert!(c.report.is_empty(), "{:?}", c.report);
}

#[test]
fn restart_always_becomes_a_respawning_supervise_daemon() {
    let c = convert_file("avahi-ssh-publish.service");
    let s = c.script.unwrap();
    for line in
        ["supervisor=\"supervise-daemon\"", "respawn_delay=\"5\"", "respawn_max=\"0\"", "command_user=\"comma\""]
    {
        assert!(s.contains(line), "{line} missing:\n{s}");
    }
    assert!(s.contains("\tneed avahi-daemon\n\twant net\n\tafter avahi-daemon net\n"), "{s}");
}

#[test]
fn oneshot_runs_its_commands_in_start_and_stop_as_the_user() {
    let c = convert_file("comma.service");
    let s = c.script.unwrap();
    assert!(
        s.contains("\tsu -s /bin/sh comma -c '/usr/bin/tmux new-session -s comma -d /usr/comma/comma.sh'\n"),
        "{s}"
    );
    assert!(s.contains("stop() {\n\tebegin"), "{s}");
    assert!(s.contains("rc_ulimit=\"-e 30 -r 100\""), "{s}");
    assert_eq!(
        c.conf.as_deref(),
        Some("# Generated by forge from comma.service: the unit's Environment=.\nexport HOME=/home/comma\n")
    );
    assert!(!s.contains("command="), "a oneshot has no daemon command:\n{s}");
}

#[test]
fn path_units_become_inotifyd_watchers_that_restart_the_service() {
    let c = convert_file("adb-param-watcher.path");
    assert_eq!(c.service.as_deref(), Some("adb-param-watcher-path"));
    let s = c.script.unwrap();
    assert!(s.contains("exec inotifyd - /data/params/d:cdemwy"), "{s}");
    assert!(s.contains("/data/params/d/AdbEnabled) /sbin/rc-service adb-param-watcher restart ;;"), "{s}");
}

#[test]
fn timers_become_crond_lines_or_are_reported() {
    let c = convert_file("logrotate-hourly.timer");
    assert_eq!(
        c.cron,
        ["# logrotate-hourly.timer: Hourly rotation of log files", "0 * * * * /sbin/rc-service logrotate restart"]
    );
    assert!(c.script.is_none());
    let c = convert_file("debug-cleanup.timer");
    assert!(c.cron.contains(&"30 3 * * 1-5 /sbin/rc-service debug-cleanup restart".to_string()), "{:?}", c.cron);
    assert!(c.cron.contains(&"*/15 * * * * /sbin/rc-service debug-cleanup restart".to_string()), "{:?}", c.cron);
    let reported: Vec<&str> = c.report.iter().map(|e| e.directive.as_str()).collect();
    assert!(reported.contains(&"Timer.OnBootSec") && reported.contains(&"Timer.OnCalendar"), "{reported:?}");
}

#[test]
fn unmappable_directives_are_reported_never_dropped() {
    let c = convert_file("ModemManager.service");
    let unmapped: Vec<&str> =
        c.report.iter().filter(|e| e.severity == Severity::Unmapped).map(|e| e.directive.as_str()).collect();
    for d in ["Service.CapabilityBoundingSet", "Service.ProtectSystem", "Service.PrivateTmp", "Install.Alias"] {
        assert!(unmapped.contains(&d), "{d} not reported: {unmapped:?}");
    }
    let c = convert_file("serial-getty@ttyMSM0.service");
    let all: Vec<&str> = c.report.iter().map(|e| e.directive.as_str()).collect();
    for d in ["Unit.Conflicts", "Service.TTYPath", "Install.WantedBy", "Service.Type", "Service.ExecStart"] {
        assert!(all.contains(&d), "{d} not reported: {all:?}");
    }
    // %H depends on the machine: reported, left as written.
    assert!(c.report.iter().any(|e| e.why.contains("%H")), "{:?}", c.report);
}

#[test]
fn other_unit_kinds_are_reported_as_a_whole() {
    let c = convert_file("data.mount");
    assert!(c.script.is_none() && c.service.is_none());
    assert_eq!(c.report.len(), 1);
    assert_eq!(c.report[0].directive, "unit");
}

#[test]
fn overrides_replace_variables_add_lines_and_change_the_runlevel() {
    let text = fs::read_to_string(units_dir().join("lte.service")).unwrap();
    let mut ov = Override::default();
    ov.vars.insert("command_background".into(), None);
    ov.vars.insert("output_log".into(), Some("/var/log/lte.log".into()));
    ov.depend.push(("need".into(), "gpio".into()));
    ov.append.push("stop_post() { :; }".into());
    ov.runlevel = Some(Some("boot".into()));
    let c = Converter::default().with_override("lte.service", ov).convert("lte.service", &text).unwrap();
    let s = c.script.unwrap();
    assert!(!s.contains("command_background") && s.contains("output_log=\"/var/log/lte.log\""), "{s}");
    assert!(s.contains("\tneed gpio\n") && s.ends_with("# Recipe override\nstop_post() { :; }\n"), "{s}");
    assert_eq!(c.runlevel.as_deref(), Some("boot"));
    let ov = Override { script: Some("#!/sbin/openrc-run\n".into()), ..Default::default() };
    let c = convert_unit("lte.service", &text, &ov).unwrap();
    assert_eq!(c.script.as_deref(), Some("#!/sbin/openrc-run\n"));
}

#[test]
fn unreadable_units_fail_with_file_and_line() {
    let err = convert_unit("x.service", "[Service]\nExecStart=/bin/echo \"open\n", &Override::default()).unwrap_err();
    assert_eq!(err.to_string(), "x.service:2: ExecStart=/bin/echo \"open: unterminated \" quote");
    let err = convert_unit("x.service", "[Service]\nType=bogus\nExecStart=/x\n", &Override::default()).unwrap_err();
    assert!(err.to_string().starts_with("x.service:2: Type=bogus"), "{err}");
    let err = convert_unit("x.service", "[Service]\nType=simple\n", &Override::default()).unwrap_err();
    assert!(err.to_string().contains("needs an ExecStart"), "{err}");
    let err = convert_unit("getty@.service", "[Service]\nExecStart=/x\n", &Override::default()).unwrap_err();
    assert!(err.to_string().contains("template"), "{err}");
    let err = convert_unit("../x.service", "", &Override::default()).unwrap_err();
    assert!(matches!(err, openrc::Error::BadName { .. }), "{err}");
}
