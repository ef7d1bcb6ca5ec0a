use super::*;
use crate::apk::build::{self, BuildEntry, BuildOptions};
use crate::apk::keys::Keys;
use crate::apk::package::{self, Script};
use crate::apk::pkginfo::PkgInfo;
use crate::apk::testutil::*;
use crate::fstree::TreePath;

fn text(tree: &FsTree, path: &str) -> String {
    match &tree.get(path).unwrap_or_else(|| panic!("{path} missing")).kind {
        TreeKind::File(c) => String::from_utf8(c.read_all().unwrap()).unwrap(),
        k => panic!("{path} is a {}", k.name()),
    }
}

fn entry(path: &str, kind: Kind, mode: u32, content: &[u8]) -> BuildEntry {
    BuildEntry::new(path, kind, mode, content)
}

fn built(name: &str, entries: &[BuildEntry], scripts: &[Script], edit: impl FnOnce(&mut PkgInfo)) -> Apk {
    let mut info = PkgInfo {
        name: name.into(),
        version: "1.0-r0".into(),
        arch: "x86_64".into(),
        description: "d".into(),
        url: "u".into(),
        license: "MIT".into(),
        ..PkgInfo::default()
    };
    edit(&mut info);
    let key = test_key();
    let bytes = build::build(entries, &info, scripts, &key, &BuildOptions::default()).unwrap();
    let (_d, keys) = keys_dir(&[&key]);
    package::read(&bytes, name, &keys).unwrap()
}

fn real_baselayout() -> Option<(Apk, Vec<u8>)> {
    let fx = alpine_fixtures()?;
    let dir = tempfile::tempdir().unwrap();
    let key = "alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub";
    std::fs::copy(fx.join(key), dir.path().join(key)).unwrap();
    let keys = Keys::open(dir.path()).unwrap();
    let apk = package::read_file(&fx.join("alpine-baselayout-3.2.0-r23-aarch64.apk"), &keys).unwrap();
    Some((apk, std::fs::read(fx.join(key)).unwrap()))
}

fn install_one(apk: &Apk, opts: &InstallOptions) -> (FsTree, InstallReport) {
    let mut tree = FsTree::new(1_700_000_000);
    let report = install(&mut tree, &[ToInstall { apk, tag: None }], opts).unwrap();
    (tree, report)
}

#[test]
fn the_real_baselayout_installs_its_files_with_their_metadata_and_a_golden_database() {
    let Some((apk, pem)) = real_baselayout() else { return };
    let key = "alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub".to_owned();
    let opts = InstallOptions {
        world: vec![Dep::parse("alpine-baselayout", "t").unwrap()],
        repositories: vec![(None, "https://example.invalid/alpine/v3.16/main".into())],
        keys: vec![(key.clone(), pem.clone())],
        arch: Some("aarch64".into()),
    };
    let (tree, report) = install_one(&apk, &opts);
    let mut files = 0;
    for e in apk.files.iter().filter(|e| !e.path.rsplit('/').next().unwrap().starts_with(".keep_")) {
        let node = tree.get(e.path.trim_end_matches('/')).unwrap_or_else(|| panic!("{} missing", e.path));
        assert_eq!((node.meta.mode, u64::from(node.meta.uid), u64::from(node.meta.gid)), (e.mode, e.uid, e.gid));
        match (&node.kind, e.kind) {
            (TreeKind::File(c), Kind::File) => assert_eq!(c.read_all().unwrap(), apk.content(e)),
            (TreeKind::Symlink(t), Kind::Symlink) => assert_eq!(t, e.link_target.as_ref().unwrap().as_bytes()),
            (TreeKind::Dir(_), Kind::Dir) => {}
            (k, want) => panic!("{}: {} for {want:?}", e.path, k.name()),
        }
        files += 1;
    }
    assert!(files > 40, "only {files} entries checked");
    assert_eq!(tree.get("/tmp").unwrap().meta.mode, 0o1777);
    assert_eq!(tree.get("/root").unwrap().meta.mode, 0o700);
    let golden = std::fs::read_to_string(testdata().join("alpine-baselayout-3.2.0-r23-aarch64.installed")).unwrap();
    assert_eq!(text(&tree, "/lib/apk/db/installed"), golden);
    assert_eq!(text(&tree, "/etc/apk/world"), "alpine-baselayout\n");
    assert_eq!(text(&tree, "/etc/apk/arch"), "aarch64\n");
    assert_eq!(text(&tree, "/etc/apk/repositories"), "https://example.invalid/alpine/v3.16/main\n");
    assert_eq!(text(&tree, &format!("/etc/apk/keys/{key}")).as_bytes(), pem);
    assert_eq!(text(&tree, "/lib/apk/db/triggers"), "");
    // Every script of the package is in the report, and in scripts.tar.
    assert_eq!(report.scripts.len(), apk.scripts.len());
    let report_text = report.to_text();
    for s in &apk.scripts {
        assert!(report_text.contains(&format!("script alpine-baselayout-3.2.0-r23 .{}:", s.kind.name())));
    }
    let scripts = match &tree.get("/lib/apk/db/scripts.tar").unwrap().kind {
        TreeKind::File(c) => c.read_all().unwrap(),
        _ => unreachable!(),
    };
    assert_eq!(scripts, db::scripts_tar(&[&apk], 1_700_000_000));
}

#[test]
fn two_packages_owning_one_file_conflict_naming_both_unless_one_replaces() {
    let f = [entry("etc", Kind::Dir, 0o755, b""), entry("etc/x.conf", Kind::File, 0o644, b"a")];
    let a = built("aaa", &f, &[], |_| {});
    let b = built("bbb", &f, &[], |_| {});
    let mut tree = FsTree::new(0);
    let pkgs = [ToInstall { apk: &a, tag: None }, ToInstall { apk: &b, tag: None }];
    let err = install(&mut tree, &pkgs, &InstallOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Conflict { .. }), "{msg}");
    assert!(msg.contains("/etc/x.conf") && msg.contains("aaa-1.0-r0") && msg.contains("bbb-1.0-r0"), "{msg}");

    let f2 = [entry("etc", Kind::Dir, 0o700, b""), entry("etc/x.conf", Kind::File, 0o600, b"b")];
    let c = built("ccc", &f2, &[], |i| i.replaces = Dep::parse_list("aaa", "t").unwrap());
    let mut tree = FsTree::new(0);
    let pkgs = [ToInstall { apk: &a, tag: None }, ToInstall { apk: &c, tag: Some("edge") }];
    let report = install(&mut tree, &pkgs, &InstallOptions::default()).unwrap();
    assert_eq!(text(&tree, "/etc/x.conf"), "b");
    assert_eq!(tree.get("/etc/x.conf").unwrap().meta.mode, 0o600);
    // A replacing package takes over the directory's metadata too.
    assert_eq!(tree.get("/etc").unwrap().meta.mode, 0o700);
    assert_eq!(
        report.replaced,
        [Replaced { path: "etc/x.conf".into(), from: "aaa-1.0-r0".into(), by: "ccc-1.0-r0".into() }]
    );
    assert!(
        text(&tree, "/lib/apk/db/installed").contains("P:ccc\n") && report.to_text().contains("replaced /etc/x.conf")
    );
}

#[test]
fn a_shared_directory_keeps_its_first_owners_metadata() {
    let a = built("aaa", &[entry("srv", Kind::Dir, 0o750, b"")], &[], |_| {});
    let b = built("bbb", &[entry("srv", Kind::Dir, 0o777, b"")], &[], |_| {});
    let mut tree = FsTree::new(0);
    tree.mkdir_p("/opt", 0o700).unwrap();
    let o = built("ooo", &[entry("opt", Kind::Dir, 0o755, b"")], &[], |_| {});
    let pkgs = [ToInstall { apk: &a, tag: None }, ToInstall { apk: &b, tag: None }, ToInstall { apk: &o, tag: None }];
    install(&mut tree, &pkgs, &InstallOptions::default()).unwrap();
    assert_eq!(tree.get("/srv").unwrap().meta.mode, 0o750);
    // A directory of the base, owned by no package, takes the package's metadata.
    assert_eq!(tree.get("/opt").unwrap().meta.mode, 0o755);
}

fn sh(kind: ScriptKind, body: &str) -> Script {
    Script { kind, content: body.as_bytes().to_vec() }
}

#[test]
fn addgroup_and_adduser_in_a_pre_install_edit_group_passwd_and_shadow() {
    let mut shadow = entry("etc/shadow", Kind::File, 0o640, b"root:*::0:::::\n");
    shadow.gid = 42;
    let base = [entry("etc", Kind::Dir, 0o755, b""), entry("etc/group", Kind::File, 0o644, b"root:x:0:root\n"), shadow];
    let baselayout = built("base", &base, &[], |_| {});
    let script = "#!/bin/sh\naddgroup -S foo 2>/dev/null\nadduser -S -D -H -h /var/lib/foo -s /sbin/nologin -G foo -g 'foo daemon' foo 2>/dev/null\nchown foo /var/lib/foo\nexit 0\n";
    let foo = built("foo", &[entry("usr", Kind::Dir, 0o755, b"")], &[sh(ScriptKind::PreInstall, script)], |_| {});
    let mut tree = FsTree::new(86_400 * 19_000);
    let pkgs = [ToInstall { apk: &baselayout, tag: None }, ToInstall { apk: &foo, tag: None }];
    let report = install(&mut tree, &pkgs, &InstallOptions::default()).unwrap();
    assert_eq!(text(&tree, "/etc/group"), "root:x:0:root\nfoo:x:100:foo\n");
    assert_eq!(text(&tree, "/etc/passwd"), "foo:x:100:100:foo daemon:/var/lib/foo:/sbin/nologin\n");
    assert_eq!(text(&tree, "/etc/shadow"), "root:*::0:::::\nfoo:!:19000:0:99999:7:::\n");
    assert_eq!((tree.get("/etc/shadow").unwrap().meta.mode, tree.get("/etc/shadow").unwrap().meta.gid), (0o640, 42));
    let [s] = report.scripts.as_slice() else { panic!("{report:?}") };
    assert_eq!((s.package.as_str(), s.kind), ("foo-1.0-r0", ScriptKind::PreInstall));
    let ScriptHandling::Partial { done, not_run } = &s.handling else { panic!("{s:?}") };
    assert_eq!(done.len(), 2);
    assert_eq!(not_run, &["chown foo /var/lib/foo"]);
    let t = report.to_text();
    assert!(t.contains("script foo-1.0-r0 .pre-install: partly done, rest NOT RUN\n"), "{t}");
    assert!(t.contains("  done: group foo added to /etc/group (gid 100)\n"), "{t}");
    assert!(t.contains("  not run: chown foo /var/lib/foo\n"), "{t}");
}

#[test]
fn adduser_without_a_group_gets_its_own_the_root_shell_and_a_home() {
    let base = [
        entry("etc", Kind::Dir, 0o755, b""),
        entry("etc/passwd", Kind::File, 0o644, b"root:x:0:0:root:/root:/bin/ash\n"),
    ];
    let baselayout = built("base", &base, &[], |_| {});
    let script = "adduser -D bob\nadduser -S daemonish\n";
    let bob = built("bob", &[], &[sh(ScriptKind::PostInstall, script)], |_| {});
    let mut tree = FsTree::new(0);
    let pkgs = [ToInstall { apk: &baselayout, tag: None }, ToInstall { apk: &bob, tag: None }];
    let err = install(&mut tree, &pkgs, &InstallOptions::default()).unwrap_err();
    // A system user without -G joins nogroup, which must exist (busybox dies otherwise).
    assert!(err.to_string().contains("group nogroup does not exist"), "{err}");
    let bob = built("bob", &[], &[sh(ScriptKind::PostInstall, "adduser -D bob\n")], |_| {});
    let mut tree = FsTree::new(0);
    let pkgs = [ToInstall { apk: &baselayout, tag: None }, ToInstall { apk: &bob, tag: None }];
    install(&mut tree, &pkgs, &InstallOptions::default()).unwrap();
    assert_eq!(
        text(&tree, "/etc/passwd"),
        "root:x:0:0:root:/root:/bin/ash\nbob:x:1000:1000:Linux User,,,:/home/bob:/bin/ash\n"
    );
    assert_eq!(text(&tree, "/etc/group"), "bob:x:1000:\n");
    assert!(tree.get("/etc/shadow").is_none(), "busybox leaves a missing shadow file missing");
    let home = tree.get("/home/bob").unwrap();
    assert_eq!((home.meta.mode, home.meta.uid, home.meta.gid), (0o2755, 1000, 1000));
}

#[test]
fn a_directory_over_a_symlink_or_a_file_over_a_directory_is_refused_not_replaced() {
    let lib =
        built("lib", &[entry("lib", Kind::Dir, 0o755, b""), entry("lib/x", Kind::File, 0o644, b"x")], &[], |_| {});
    let mut tree = FsTree::new(0);
    tree.symlink("/lib", "usr/lib").unwrap();
    let err = install(&mut tree, &[ToInstall { apk: &lib, tag: None }], &InstallOptions::default()).unwrap_err();
    assert!(err.to_string().contains("/lib is a symlink in the tree but a directory in the package"), "{err}");
    assert!(matches!(tree.get("/lib").unwrap().kind, TreeKind::Symlink(_)));
    let file = built("f", &[entry("lib", Kind::File, 0o644, b"x")], &[], |_| {});
    let mut tree = FsTree::new(0);
    tree.mkdir_p("/lib/keep", 0o755).unwrap();
    let err = install(&mut tree, &[ToInstall { apk: &file, tag: None }], &InstallOptions::default()).unwrap_err();
    assert!(err.to_string().contains("/lib is a dir in the tree"), "{err}");
    assert!(tree.get("/lib/keep").is_some());
}

#[test]
fn a_script_with_no_known_effect_is_listed_as_not_run() {
    let foo = built("foo", &[], &[sh(ScriptKind::PostInstall, "#!/bin/sh\nrc-update add foo default\n")], |_| {});
    let (_, report) = install_one(&foo, &InstallOptions::default());
    assert_eq!(
        report.scripts[0].handling,
        ScriptHandling::NotRun { not_run: vec!["rc-update add foo default".into()] }
    );
    assert!(report
        .to_text()
        .contains("script foo-1.0-r0 .post-install: NOT RUN\n  not run: rc-update add foo default\n"));
}

#[test]
fn busybox_install_makes_the_listed_links_or_says_why_not() {
    // Alpine's busybox.post-install, verbatim.
    let body = "#!/bin/busybox sh\n# We need the symlinks early\n/bin/busybox mkdir -p \"/bin\" \"/sbin\" \"/usr/bin\" \"/usr/sbin\"\nexec /bin/busybox --install -s\n";
    let script = [sh(ScriptKind::PostInstall, body)];
    let no_list = built("busybox", &[entry("bin", Kind::Dir, 0o755, b"")], &script, |_| {});
    let (_, report) = install_one(&no_list, &InstallOptions::default());
    let t = report.to_text();
    assert!(t.contains("NOT RUN") && t.contains("no path list in /etc/busybox-paths.d"), "{t}");

    let files = [
        entry("bin", Kind::Dir, 0o755, b""),
        entry("bin/busybox", Kind::File, 0o755, b"\x7fELF"),
        entry("bin/sh", Kind::File, 0o755, b"real sh"),
        entry("etc", Kind::Dir, 0o755, b""),
        entry("etc/busybox-paths.d", Kind::Dir, 0o755, b""),
        entry("etc/busybox-paths.d/busybox", Kind::File, 0o644, b"bin/ls\nbin/sh\nusr/bin/wc\n"),
    ];
    let bb = built("busybox", &files, &script, |_| {});
    let (tree, report) = install_one(&bb, &InstallOptions::default());
    assert!(matches!(&tree.get("/usr/bin/wc").unwrap().kind, TreeKind::Symlink(t) if t == b"/bin/busybox"));
    assert!(matches!(&tree.get("/bin/ls").unwrap().kind, TreeKind::Symlink(_)));
    assert_eq!(text(&tree, "/bin/sh"), "real sh", "an existing file is kept");
    assert!(report.to_text().contains("done: busybox applet links from /etc/busybox-paths.d: 2 made"));
    assert!(matches!(report.scripts[0].handling, ScriptHandling::Declarative { .. }), "{report:?}");
    assert!(tree.get("/usr/sbin").unwrap().is_dir());
}

#[test]
fn update_ca_certificates_concatenates_the_certificates_by_path() {
    let files = [
        entry("usr", Kind::Dir, 0o755, b""),
        entry("usr/share", Kind::Dir, 0o755, b""),
        entry("usr/share/ca-certificates", Kind::Dir, 0o755, b""),
        entry("usr/share/ca-certificates/b.crt", Kind::File, 0o644, b"B\n"),
        entry("usr/share/ca-certificates/a.crt", Kind::File, 0o644, b"A"),
    ];
    let trig = [
        sh(
            ScriptKind::Trigger,
            "#!/bin/sh\nexec /usr/bin/update-ca-certificates --fresh >/dev/null 2>&1\nnot reached\n",
        ),
        sh(ScriptKind::PostInstall, "update-ca-certificates --fresh >/dev/null 2>&1 || true\n"),
    ];
    let ca = built("ca-certificates", &files, &trig, |i| i.triggers = vec!["/usr/share/ca-certificates/*".into()]);
    let (tree, report) = install_one(&ca, &InstallOptions::default());
    assert_eq!(text(&tree, "/etc/ssl/certs/ca-certificates.crt"), "A\nB\n");
    assert!(matches!(report.scripts[0].handling, ScriptHandling::Declarative { .. }), "{report:?}");
    // Alpine's trigger is `exec update-ca-certificates --fresh`: exec'd, it ends the script.
    let ScriptHandling::Declarative { done } = &report.scripts[1].handling else { panic!("{report:?}") };
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(text(&tree, "/lib/apk/db/triggers"), format!("{} /usr/share/ca-certificates/*\n", ca.checksum));
}

#[test]
fn unsupported_shell_and_bad_ids_are_not_guessed() {
    assert_eq!(users::words("adduser -S $NAME"), None);
    assert_eq!(users::words("a 'b c' \"d\""), Some(vec!["a".into(), "b c".into(), "d".into()]));
    let foo = built("foo", &[], &[sh(ScriptKind::PreInstall, "adduser -D -u nope foo\n")], |_| {});
    let mut tree = FsTree::new(0);
    let err = install(&mut tree, &[ToInstall { apk: &foo, tag: None }], &InstallOptions::default()).unwrap_err();
    assert!(err.to_string().contains("\"nope\" is not a numeric id"), "{err}");
    let bad_key = InstallOptions { keys: vec![("../x".into(), vec![])], ..Default::default() };
    let err = install(&mut FsTree::new(0), &[], &bad_key).unwrap_err();
    assert!(err.to_string().contains("not a plain file name"), "{err}");
}

#[test]
fn the_result_is_byte_identical_twice_and_a_clean_ext4_image() {
    let Some((apk, _)) = real_baselayout() else { return };
    let script = "addgroup -S foo\nadduser -S -G foo foo\n";
    let foo = built("foo", &[], &[sh(ScriptKind::PreInstall, script)], |_| {});
    let tars: Vec<Vec<u8>> = (0..2)
        .map(|_| {
            let mut tree = FsTree::new(1_700_000_000);
            let pkgs = [ToInstall { apk: &apk, tag: None }, ToInstall { apk: &foo, tag: None }];
            install(&mut tree, &pkgs, &InstallOptions::default()).unwrap();
            let mut out = Vec::new();
            crate::tar::write_tar(&tree, &mut out).unwrap();
            out
        })
        .collect();
    assert_eq!(tars[0], tars[1]);
    if !forge_have_tool("e2fsck") {
        return;
    }
    let mut tree = FsTree::new(1_700_000_000);
    tree.add_tar(&tars[0][..], "installed.tar").unwrap();
    assert!(text(&tree, "/etc/group").contains("\nfoo:x:"));
    assert!(tree.get_path(&TreePath::parse("/etc/passwd").unwrap()).is_some());
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("root.ext4");
    crate::ext4::write_ext4(&tree, &img, &crate::ext4::Ext4Options { size: None, label: "root".into() }).unwrap();
    let out = std::process::Command::new("e2fsck").arg("-fn").arg(&img).output().unwrap();
    assert!(
        out.status.success(),
        "e2fsck: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dependency_order_puts_providers_first_and_install_if_packages_after_their_conditions() {
    let f = |p: &str, k: Kind| entry(p, k, 0o644, b"x");
    let musl = built("musl", &[f("lib", Kind::Dir)], &[], |i| {
        i.provides = vec![Dep::parse("so:libc.musl-x86_64.so.1=1", "t").unwrap()];
    });
    let app = built("app", &[f("app", Kind::File)], &[], |i| {
        i.depends = vec![Dep::parse("so:libc.musl-x86_64.so.1", "t").unwrap(), Dep::parse("zlib", "t").unwrap()];
    });
    let zlib = built("zlib", &[f("z", Kind::File)], &[], |i| i.depends = vec![Dep::parse("!old", "t").unwrap()]);
    let app_doc = built("app-doc", &[f("d", Kind::File)], &[], |i| {
        i.install_if = vec![Dep::parse("app", "t").unwrap(), Dep::parse("docs", "t").unwrap()];
    });
    // a and b need each other: the cycle is cut, both still come once.
    let a = built("a", &[f("fa", Kind::File)], &[], |i| i.depends = vec![Dep::parse("b", "t").unwrap()]);
    let b = built("b", &[f("fb", Kind::File)], &[], |i| i.depends = vec![Dep::parse("a", "t").unwrap()]);
    let all = [&app_doc, &zlib, &b, &app, &musl, &a];
    let names = |order: Vec<usize>| order.into_iter().map(|i| all[i].info.name.as_str()).collect::<Vec<_>>();
    assert_eq!(names(dependency_order(&all)), ["b", "a", "musl", "zlib", "app", "app-doc"]);
    let shuffled = [&a, &musl, &app, &b, &zlib, &app_doc];
    let again: Vec<&str> = dependency_order(&shuffled).into_iter().map(|i| shuffled[i].info.name.as_str()).collect();
    assert_eq!(again, ["b", "a", "musl", "zlib", "app", "app-doc"]);
}

#[test]
fn packages_of_the_base_database_left_out_of_the_install_are_reported() {
    let files = [entry("etc", Kind::Dir, 0o755, b""), entry("etc/hello", Kind::File, 0o644, b"hi")];
    let apk = built("hello", &files, &[], |_| {});
    let mut tree = FsTree::new(0);
    tree.write("lib/apk/db/installed", b"C:Q1x\nP:hello\nV:0.9-r0\n\nC:Q1y\nP:scanelf\nV:1-r0\n\n".to_vec(), 0o644)
        .unwrap();
    let report = install(&mut tree, &[ToInstall { apk: &apk, tag: None }], &InstallOptions::default()).unwrap();
    assert_eq!(report.notes.len(), 1, "{:?}", report.notes);
    assert!(report.notes[0].contains("lists scanelf not installed here"), "{:?}", report.notes);
}
