//! `forge openrc convert` end to end: the tree it writes, modes, runlevel links,
//! crontab, report, and exit codes on bad input.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use forge_tests::{forge, run_ok};

fn unit(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/openrc/units").join(name)
}

#[test]
fn convert_writes_an_openrc_tree_and_a_report() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let names = [
        "avahi-ssh-publish.service",
        "comma.service",
        "adb-param-watcher.path",
        "adb-param-watcher.service",
        "logrotate-hourly.timer",
        "ModemManager.service",
        "data.mount",
    ];
    let mut cmd = forge(&tmp.path().join("store"));
    cmd.args(["openrc", "convert", "--out"]).arg(&out).args(names.iter().map(|n| unit(n)));
    run_ok(&mut cmd);
    let mode = |p: &str| fs::metadata(out.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("init.d/avahi-ssh-publish"), 0o755);
    assert_eq!(mode("init.d/adb-param-watcher-path"), 0o755);
    assert_eq!(mode("conf.d/comma"), 0o644);
    assert_eq!(fs::read_link(out.join("runlevels/default/comma")).unwrap(), Path::new("/etc/init.d/comma"));
    assert!(fs::read_to_string(out.join("init.d/comma")).unwrap().starts_with("#!/sbin/openrc-run\n"));
    assert_eq!(
        fs::read_to_string(out.join("crontabs/root")).unwrap(),
        "# logrotate-hourly.timer: Hourly rotation of log files\n0 * * * * /sbin/rc-service logrotate restart\n"
    );
    let report = fs::read_to_string(out.join("REPORT.txt")).unwrap();
    assert!(report.contains("ModemManager.service:14: [unmapped] Service.ProtectSystem=true:"), "{report}");
    assert!(report.contains("data.mount:0: [unmapped] unit=data.mount:"), "{report}");
    assert!(!out.join("init.d/data").exists());
}

#[test]
fn convert_refuses_unreadable_units_naming_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.service");
    fs::write(&bad, "[Unit]\nDescription=x\n[Service\n").unwrap();
    let out = forge(&tmp.path().join("store"))
        .args(["openrc", "convert", "--out"])
        .arg(tmp.path().join("o"))
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.service:3: malformed section header"), "{err}");
    assert!(!tmp.path().join("o").exists(), "nothing is written when a unit is bad");
}

#[test]
fn convert_will_not_write_into_a_non_empty_directory() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("keep"), "mine").unwrap();
    let out = forge(&tmp.path().join("store"))
        .args(["openrc", "convert", "--out"])
        .arg(tmp.path())
        .arg(unit("comma.service"))
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    assert_eq!(fs::read_to_string(tmp.path().join("keep")).unwrap(), "mine");
}
