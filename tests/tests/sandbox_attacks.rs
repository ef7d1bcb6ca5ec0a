//! Escapes that must all fail inside `forge sandbox`, as root and as an ordinary
//! user. Each script prints `ESCAPED: ...` when an attack works, and `control: ...`
//! lines proving the commands themselves run.

use std::os::unix::fs::PermissionsExt;

use forge_tests::as_root_and_user;
use forge_tests::sandbox::Ctx;

/// Runs `script` inside and fails on any `ESCAPED` line; returns stdout.
fn attack(ctx: &Ctx, opts: &[&str], script: &str) -> String {
    let out = ctx.sh_with(opts, script);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let escaped: Vec<&str> = stdout.lines().filter(|l| l.starts_with("ESCAPED")).collect();
    assert!(escaped.is_empty(), "{escaped:#?}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

as_root_and_user!(writes_outside_the_allowed_folders_fail, |ctx: Ctx| {
    let input = tempfile::tempdir().unwrap();
    forge_tests::sandbox::open_up(input.path());
    // A writable host folder mounted read-only: the mount, not its permissions, must stop writes.
    std::fs::set_permissions(input.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let ro = format!("{}:/in", input.path().display());
    let out = attack(
        &ctx,
        &["--ro", &ro],
        "for f in /x /bin/x /in/x /dev/x /proc/x /build/../x; do \
           (echo pwned > $f) 2>/dev/null && echo ESCAPED: wrote $f; done; \
         mkdir /newdir 2>/dev/null && echo ESCAPED: mkdir /; \
         ln -s /tmp /evil 2>/dev/null && echo ESCAPED: symlink in /; \
         rm /bin/busybox 2>/dev/null && echo ESCAPED: removed busybox; \
         mknod /tmp/null c 1 3 2>/dev/null && echo ESCAPED: mknod; \
         echo ok > /tmp/ok && echo ok > /dev/null && echo ok > /dev/shm/ok && echo control: writes ok",
    );
    assert!(out.contains("control: writes ok"), "{out}");
    assert_eq!(std::fs::read_dir(input.path()).unwrap().count(), 0);
});

as_root_and_user!(mount_fails, |ctx: Ctx| {
    let out = attack(
        &ctx,
        &[],
        "mount -t tmpfs none /tmp 2>/dev/null && echo ESCAPED: mount tmpfs; \
         mount -o remount,rw / 2>/dev/null && echo ESCAPED: remount root rw; \
         mount --bind /tmp /build 2>/dev/null && echo ESCAPED: bind; \
         mount -t proc proc /tmp 2>/dev/null && echo ESCAPED: proc; \
         umount /proc 2>/dev/null && echo ESCAPED: umount; \
         touch / 2>/dev/null || echo control: root still read-only",
    );
    assert!(out.contains("control"), "{out}");
});

as_root_and_user!(unshare_fails, |ctx: Ctx| {
    let out = attack(
        &ctx,
        &[],
        "for o in -U -r -m -n -p -u -i -C '-U -m -r'; do \
           unshare $o true 2>/dev/null && echo ESCAPED: unshare $o; done; \
         unshare --help >/dev/null 2>&1; echo control: unshare ran",
    );
    assert!(out.contains("control"), "{out}");
});

as_root_and_user!(chroot_escapes_fail, |ctx: Ctx| {
    let out = attack(
        &ctx,
        &[],
        "mkdir -p /tmp/jail/bin && cp /bin/busybox /tmp/jail/bin/ && echo control: jail built; \
         chroot /tmp/jail /bin/busybox true 2>/dev/null && echo ESCAPED: chroot; \
         cd /tmp/jail && chroot . /bin/busybox sh -c 'cd ../../../..; chroot . true' 2>/dev/null \
           && echo ESCAPED: classic chroot escape; \
         pivot_root /tmp /tmp/jail 2>/dev/null && echo ESCAPED: pivot_root",
    );
    assert!(out.contains("control"), "{out}");
});

as_root_and_user!(writing_proc_sys_fails, |ctx: Ctx| {
    let out = attack(
        &ctx,
        &[],
        "for f in /proc/sys/kernel/hostname /proc/sys/kernel/ns_last_pid /proc/sys/user/max_user_namespaces \
                  /proc/sys/vm/drop_caches /proc/sys/kernel/core_pattern /proc/sysrq-trigger /proc/1/oom_score_adj; do \
           [ -e $f ] || continue; (echo 3 > $f) 2>/dev/null && echo ESCAPED: wrote $f; done; \
         cat /proc/sys/kernel/hostname && echo control: proc readable",
    );
    assert!(out.contains("forge\ncontrol: proc readable"), "{out}");
});

as_root_and_user!(the_host_is_unreachable_through_proc_1_root, |ctx: Ctx| {
    let marker = tempfile::tempdir().unwrap();
    forge_tests::sandbox::open_up(marker.path());
    std::fs::write(marker.path().join("secret"), "host\n").unwrap();
    let secret = marker.path().join("secret");
    let secret = secret.display();
    let out = attack(
        &ctx,
        &[],
        &format!(
            "for p in /proc/[0-9]*; do \
               cat $p/root{secret} 2>/dev/null && echo ESCAPED: via $p/root; \
               cat $p/cwd{secret} 2>/dev/null && echo ESCAPED: via $p/cwd; \
               ls $p/root/home $p/root/root $p/root/etc 2>/dev/null | grep -q . && echo ESCAPED: host tree at $p/root; \
             done; ls /proc/1/root/ 2>/dev/null; ls /proc/self/root/bin/busybox && echo control: proc root works"
        ),
    );
    assert!(out.contains("control"), "{out}");
});

as_root_and_user!(a_setuid_file_made_in_the_output_loses_its_bit, |ctx: Ctx| {
    let output = ctx.writable_dir();
    let rw = format!("{}:/out", output.path().display());
    let out = attack(
        &ctx,
        &["--rw", &rw],
        "cp /bin/busybox /out/suid && chmod 6755 /out/suid 2>/dev/null && echo ESCAPED: chmod 6755; \
         mkdir /out/d && cp /bin/busybox /out/d/s && chmod u+s /out/d/s 2>/dev/null && echo ESCAPED: chmod u+s; \
         chmod 755 /out/suid && echo control: plain chmod works; \
         grep ' /out ' /proc/mounts | grep -q nosuid && echo control: out is nosuid",
    );
    assert!(out.contains("control: plain chmod works") && out.contains("control: out is nosuid"), "{out}");
    for f in ["suid", "d/s"] {
        let mode = std::fs::metadata(output.path().join(f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o6000, 0, "{f} kept mode {mode:o} on the host");
        assert_eq!(mode & 0o777, 0o755, "{f}: only the set-id bits go");
    }
});
