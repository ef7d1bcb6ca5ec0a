//! aarch64 programs under qemu-user: Debian's arm64 static busybox (unpacked by
//! .ci/setup.d/sandbox.sh) is the sysroot's shell, run by an unprivileged user.

use std::path::{Path, PathBuf};

use forge_tests::as_root_and_user;
use forge_tests::sandbox::{As, Ctx};

/// The arm64 busybox, or `None` with a message when setup did not unpack it.
fn arm64_busybox() -> Option<PathBuf> {
    let base = Path::new("/var/cache/forge-tests/busybox-arm64");
    let found = ["bin/busybox", "usr/bin/busybox"].iter().map(|p| base.join(p)).find(|p| p.is_file());
    if found.is_none() {
        eprintln!("SKIP: no arm64 busybox under {} (bash .ci/setup.d/sandbox.sh unpacks it)", base.display());
    }
    found
}

fn arm64_ctx(who: As) -> Option<Ctx> {
    if !forge_tests::have_tool("qemu-aarch64-static") {
        return None;
    }
    Ctx::with_busybox(who, &arm64_busybox()?)
}

fn runs_the_arm64_shell(ctx: Ctx) {
    let out = ctx.sh_with(
        &["--arch", "aarch64"],
        "uname -m; id -u; echo hi > /tmp/x && cat /tmp/x; grep -c . /proc/sys/fs/binfmt_misc/forge-aarch64 >/dev/null && echo registered",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "aarch64\n0\nhi\nregistered\n");
    let file = std::process::Command::new("file").arg("-b").arg(ctx.root.path().join("bin/busybox")).output();
    if let Ok(f) = file {
        assert!(String::from_utf8_lossy(&f.stdout).contains("aarch64"), "the sysroot is not arm64");
    }
}

#[test]
fn an_arm64_busybox_runs_as_the_sysroot_shell_for_an_ordinary_user() {
    if let Some(ctx) = arm64_ctx(As::User) {
        runs_the_arm64_shell(ctx);
    }
}

#[test]
fn an_arm64_busybox_runs_as_the_sysroot_shell_for_root() {
    if let Some(ctx) = arm64_ctx(As::Root) {
        runs_the_arm64_shell(ctx);
    }
}

#[test]
fn the_hosts_binfmt_misc_is_untouched() {
    let Some(ctx) = arm64_ctx(As::User) else { return };
    let before = host_binfmt_entries();
    runs_the_arm64_shell(ctx);
    assert_eq!(host_binfmt_entries(), before);
}

fn host_binfmt_entries() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/sys/fs/binfmt_misc")
        .map(|d| d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned())).collect())
        .unwrap_or_default();
    names.sort();
    names
}

as_root_and_user!(native_runs_see_no_emulator_registration, |ctx: Ctx| {
    let out = ctx.sh("ls /proc/sys/fs/binfmt_misc/ 2>/dev/null | grep -c forge || true");
    assert_eq!(out.trim(), "0");
});
