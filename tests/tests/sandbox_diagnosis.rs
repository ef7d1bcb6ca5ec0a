//! Fail closed, with the cause named: forge run inside its own sandbox, where the
//! kernel really refuses a new user namespace (the sandbox sets
//! user.max_user_namespaces to 0), must stop with the environment exit code and name
//! that sysctl and its fix.

use std::path::Path;

use forge_tests::as_root_and_user;
use forge_tests::sandbox::Ctx;

/// Makes the host's shared libraries visible in the sandbox root: symlinks copied,
/// folders bound read-only. Returns the --ro options.
fn host_libraries(ctx: &Ctx) -> Vec<String> {
    let mut ro = Vec::new();
    for dir in ["/lib", "/lib64", "/usr/lib", "/usr/lib64"] {
        let host = Path::new(dir);
        let Ok(meta) = std::fs::symlink_metadata(host) else { continue };
        let inside = ctx.root.path().join(dir.trim_start_matches('/'));
        if meta.file_type().is_symlink() {
            std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(std::fs::read_link(host).unwrap(), &inside).unwrap();
        } else if meta.is_dir() {
            ro.push(format!("{dir}:{dir}"));
        }
    }
    ro
}

as_root_and_user!(a_refused_user_namespace_fails_with_exit_4_naming_the_sysctl, |ctx: Ctx| {
    let mut opts: Vec<String> = Vec::new();
    for bind in host_libraries(&ctx) {
        opts.extend(["--ro".to_owned(), bind]);
    }
    opts.extend(["--ro".to_owned(), format!("{}:/forge", ctx.forge_path().display())]);
    let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
    let out = ctx.sh_with(&opts, "/forge sandbox --root / -- /bin/true; echo rc=$?");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout, "rc=4\n", "stderr:\n{stderr}");
    assert!(stderr.contains("cannot set up the sandbox: creating the namespaces"), "{stderr}");
    assert!(stderr.contains("user.max_user_namespaces = 0"), "{stderr}");
    assert!(stderr.contains("fix: sudo sysctl -w user.max_user_namespaces="), "{stderr}");
});
