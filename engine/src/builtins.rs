//! Builtins: versioned steps carried out in-process by forge.
//!
//! A builtin's name and version are part of its derivation's hash, so changing
//! what a builtin writes for the same arguments means bumping its version.
//! Each builtin reads its inputs through [`Ctx::physical`] (store paths are
//! logical, `/forge/store/...`) and writes its output at `out`.

use std::fs;
use std::path::{Path, PathBuf};

use forge_store::StorePath;
use serde::Deserialize;

use crate::error::{Error, Result};

/// What a builtin may see of the world.
pub struct Ctx<'a> {
    /// Maps a logical store path to where it is on disk.
    pub physical: &'a dyn Fn(&StorePath) -> PathBuf,
}

/// Runs builtin `name` at `version` with `args`, writing `out` (which must not exist).
pub fn run(ctx: &Ctx<'_>, name: &str, version: u32, args: &serde_json::Value, out: &Path) -> Result<()> {
    match (name, version) {
        ("text", 1) => text(parse(name, args)?, out),
        ("merge", 1) => merge(ctx, parse(name, args)?, out),
        ("unpack", v) if v == crate::archive::VERSION => unpack(ctx, parse(name, args)?, out),
        ("rootfs", 1) => crate::rootfs::rootfs(ctx, parse(name, args)?, out),
        ("image", 1) => crate::rootfs::image(ctx, parse(name, args)?, out),
        ("apk-install", 1) => apk_install(ctx, parse(name, args)?, out),
        (crate::apk::make::BUILTIN, crate::apk::make::VERSION) => crate::apk::make::run(ctx, parse(name, args)?, out),
        _ => Err(Error::UnknownBuiltin { name: name.to_owned(), version, known: KNOWN.join(", ") }),
    }
}

/// Every builtin this forge can run, as `name@version`.
pub const KNOWN: &[&str] = &["text@1", "merge@1", "unpack@1", "apk-install@1", "apk-package@1", "rootfs@1", "image@1"];

fn parse<T: serde::de::DeserializeOwned>(name: &str, args: &serde_json::Value) -> Result<T> {
    T::deserialize(args).map_err(|e| Error::BadDerivation { name: format!("builtin {name}"), why: e.to_string() })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextArgs {
    content: String,
    #[serde(default)]
    executable: bool,
}

fn text(args: TextArgs, out: &Path) -> Result<()> {
    fs::write(out, args.content).map_err(Error::io(out))?;
    if args.executable {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(out, fs::Permissions::from_mode(0o755)).map_err(Error::io(out))?;
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UnpackArgs {
    src: StorePath,
    #[serde(default)]
    strip_components: usize,
}

/// Unpacks an archive safely (see [`crate::archive`]): the output is a directory.
fn unpack(ctx: &Ctx<'_>, args: UnpackArgs, out: &Path) -> Result<()> {
    let opts = crate::archive::UnpackOptions { strip_components: args.strip_components, ..Default::default() };
    crate::archive::unpack(&(ctx.physical)(&args.src), out, &opts)?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeArgs {
    layers: Vec<StorePath>,
    #[serde(default)]
    symlinks: std::collections::BTreeMap<String, String>,
}

/// Copies each layer over the previous ones (later wins), then adds symlinks.
fn merge(ctx: &Ctx<'_>, args: MergeArgs, out: &Path) -> Result<()> {
    fs::create_dir(out).map_err(Error::io(out))?;
    for layer in &args.layers {
        copy_over(&(ctx.physical)(layer), out)?;
    }
    for (path, target) in &args.symlinks {
        let rel = safe_relative(path)?;
        let at = out.join(rel);
        if let Some(parent) = at.parent() {
            fs::create_dir_all(parent).map_err(Error::io(parent))?;
        }
        remove_any(&at)?;
        std::os::unix::fs::symlink(target, &at).map_err(Error::io(&at))?;
    }
    Ok(())
}

/// A path inside the output: relative, no `..`, not empty.
fn safe_relative(path: &str) -> Result<&Path> {
    let p = Path::new(path.trim_start_matches('/'));
    let ok = !path.is_empty() && p.components().all(|c| matches!(c, std::path::Component::Normal(_)));
    if ok {
        Ok(p)
    } else {
        Err(Error::BadDerivation {
            name: "builtin merge".into(),
            why: format!("symlink path {path:?} leaves the output"),
        })
    }
}

fn remove_any(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => fs::remove_dir_all(path).map_err(Error::io(path)),
        Ok(_) => fs::remove_file(path).map_err(Error::io(path)),
        Err(_) => Ok(()),
    }
}

/// Copies `src` (file, symlink or tree) onto `dst`, merging directories.
fn copy_over(src: &Path, dst: &Path) -> Result<()> {
    let md = fs::symlink_metadata(src).map_err(Error::io(src))?;
    if md.is_dir() {
        if !fs::symlink_metadata(dst).map(|m| m.is_dir()).unwrap_or(false) {
            remove_any(dst)?;
            fs::create_dir(dst).map_err(Error::io(dst))?;
        }
        let mut entries: Vec<_> =
            fs::read_dir(src).map_err(Error::io(src))?.collect::<std::io::Result<_>>().map_err(Error::io(src))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            copy_over(&e.path(), &dst.join(e.file_name()))?;
        }
        return Ok(());
    }
    remove_any(dst)?;
    if md.file_type().is_symlink() {
        let target = fs::read_link(src).map_err(Error::io(src))?;
        std::os::unix::fs::symlink(target, dst).map_err(Error::io(dst))
    } else {
        // std::fs::copy uses copy_file_range (reflinks where the filesystem can) and
        // keeps the permission bits, which carry the executable flag.
        fs::copy(src, dst).map(drop).map_err(Error::io(dst))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApkInstallArgs {
    #[serde(default)]
    base: Option<StorePath>,
    apks: Vec<ApkArg>,
    #[serde(default)]
    keys: Vec<KeyArg>,
    #[serde(default)]
    world: Vec<String>,
    #[serde(default)]
    repositories: Vec<String>,
    /// `etc/apk/arch`, when given.
    #[serde(default)]
    arch: Option<String>,
    /// SOURCE_DATE_EPOCH of every entry.
    #[serde(default)]
    epoch: i64,
    /// Trust also the key files in a directory of a tarball (the pinned minirootfs'
    /// `etc/apk/keys`): the root of trust of a locked world.
    #[serde(default, rename = "keysFrom")]
    keys_from: Option<KeysFrom>,
    /// `given` (the default: install in the order of `apks`) or `dependencies` (each
    /// package after what it depends on, see [`crate::apk::install::dependency_order`]).
    #[serde(default)]
    order: InstallOrder,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFrom {
    tarball: StorePath,
    dir: String,
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum InstallOrder {
    #[default]
    Given,
    Dependencies,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApkArg {
    path: StorePath,
    /// `@tag` for a tagged repository (recorded as `s:tag`), else the repository's URL.
    #[serde(default)]
    repository: String,
}

/// A public key: a store path named like the key, or `{"path", "name"}` when the key's
/// name cannot be a store name (Alpine's have an `@`, which store names refuse).
#[derive(Deserialize)]
#[serde(untagged)]
enum KeyArg {
    Path(StorePath),
    Named { path: StorePath, name: String },
}

impl KeyArg {
    fn path_and_name(&self) -> (&StorePath, &str) {
        match self {
            KeyArg::Path(p) => (p, p.name()),
            KeyArg::Named { path, name } => (path, name),
        }
    }
}

/// The report's place in the output tar.
pub const APK_INSTALL_REPORT: &str = "/lib/apk/db/forge-install-report.txt";

/// `apk-install@1`: the base (a rootfs tar or directory), then the apks (verified with
/// `keys`, installed in the order given, see [`crate::apk::install`]), written as one
/// deterministic uncompressed tar at `out`, with the install report at
/// [`APK_INSTALL_REPORT`] inside it.
fn apk_install(ctx: &Ctx<'_>, args: ApkInstallArgs, out: &Path) -> Result<()> {
    use crate::apk::{dep::Dep, install, keys::Keys, package};
    let mut tree = crate::fstree::FsTree::new(args.epoch);
    if let Some(base) = &args.base {
        let host = (ctx.physical)(base);
        if host.is_dir() {
            tree.add_dir(&host, "/")?;
        } else {
            tree.add_tar_file(&host)?;
        }
    }
    let keys_dir = tempfile::tempdir().map_err(Error::io(std::env::temp_dir()))?;
    let key_files = trusted_keys(ctx, &args, keys_dir.path())?;
    let keys = Keys::open(keys_dir.path())?;
    let apks =
        args.apks.iter().map(|a| package::read_file(&(ctx.physical)(&a.path), &keys)).collect::<Result<Vec<_>, _>>()?;
    let order: Vec<usize> = match args.order {
        InstallOrder::Given => (0..apks.len()).collect(),
        InstallOrder::Dependencies => install::dependency_order(&apks.iter().collect::<Vec<_>>()),
    };
    let list: Vec<install::ToInstall<'_>> = order
        .into_iter()
        .map(|i| install::ToInstall { apk: &apks[i], tag: args.apks[i].repository.strip_prefix('@') })
        .collect();
    let world = args.world.iter().map(|w| Dep::parse(w, "world")).collect::<Result<Vec<_>, _>>()?;
    let repositories = args
        .repositories
        .iter()
        .map(|r| match r.strip_prefix('@').and_then(|t| t.split_once(' ')) {
            Some((tag, url)) => (Some(tag.to_owned()), url.trim().to_owned()),
            None => (None, r.clone()),
        })
        .collect();
    let opts = install::InstallOptions { world, repositories, keys: key_files, arch: args.arch };
    let report = install::install(&mut tree, &list, &opts)?;
    tree.write(APK_INSTALL_REPORT, report.to_text(), 0o644)?;
    let file = fs::File::create(out).map_err(Error::io(out))?;
    let mut w = std::io::BufWriter::new(file);
    crate::tar::write_tar(&tree, &mut w)?;
    std::io::Write::flush(&mut w).map_err(Error::io(out))?;
    Ok(())
}

/// Writes every trusted key into `dir` and returns them as `(name, PEM)`: the `keys`
/// store paths, then the files of `keysFrom` (a key of the same name given both ways
/// must be the same bytes).
fn trusted_keys(ctx: &Ctx<'_>, args: &ApkInstallArgs, dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let bad = |why: String| Error::BadDerivation { name: "builtin apk-install".into(), why };
    let mut found: Vec<(String, Vec<u8>)> = Vec::new();
    for k in &args.keys {
        let (path, name) = k.path_and_name();
        let host = (ctx.physical)(path);
        found.push((name.to_owned(), fs::read(&host).map_err(Error::io(&host))?));
    }
    if let Some(from) = &args.keys_from {
        let mut tarball = crate::fstree::FsTree::new(0);
        tarball.add_tar_file(&(ctx.physical)(&from.tarball))?;
        let keys = crate::apk::keys::in_tree(&tarball, &from.dir)?;
        if keys.is_empty() {
            return Err(bad(format!("{} holds no key files in {}", from.tarball, from.dir)));
        }
        found.extend(keys);
    }
    found.sort();
    found.dedup();
    if let Some(w) = found.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(bad(format!("two different keys are named {:?}", w[0].0)));
    }
    for (name, pem) in &found {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(bad(format!("key name {name:?} is not a plain file name")));
        }
        let at = dir.join(name);
        fs::write(&at, pem).map_err(Error::io(&at))?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn ctx_for(root: &Path) -> impl Fn(&StorePath) -> PathBuf + '_ {
        move |p: &StorePath| root.join(p.base_name())
    }

    fn layer(root: &Path, name: &str, files: &[(&str, &str)]) -> StorePath {
        let p = StorePath::for_source(&forge_store::Hash::of(forge_store::Algo::Sha256, name.as_bytes()), name, &[])
            .unwrap();
        for (rel, content) in files {
            let at = root.join(p.base_name()).join(rel);
            fs::create_dir_all(at.parent().unwrap()).unwrap();
            fs::write(at, content).unwrap();
        }
        p
    }

    #[test]
    fn merge_lets_later_layers_win_and_adds_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let a = layer(dir.path(), "a", &[("usr/bin/x", "a"), ("usr/lib/l", "la")]);
        let b = layer(dir.path(), "b", &[("usr/bin/x", "b")]);
        let physical = ctx_for(dir.path());
        let out = dir.path().join("out");
        let args = serde_json::json!({"layers": [a.to_string(), b.to_string()], "symlinks": {"/bin/sh": "/usr/bin/x"}});
        run(&Ctx { physical: &physical }, "merge", 1, &args, &out).unwrap();
        assert_eq!(fs::read_to_string(out.join("usr/bin/x")).unwrap(), "b");
        assert_eq!(fs::read_to_string(out.join("usr/lib/l")).unwrap(), "la");
        assert_eq!(fs::read_link(out.join("bin/sh")).unwrap(), Path::new("/usr/bin/x"));
    }

    #[test]
    fn merge_refuses_symlinks_outside_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let physical = ctx_for(dir.path());
        let args = serde_json::json!({"layers": [], "symlinks": {"../escape": "/x"}});
        let err = run(&Ctx { physical: &physical }, "merge", 1, &args, &dir.path().join("out")).unwrap_err();
        assert!(err.to_string().contains("leaves the output"), "{err}");
    }

    #[test]
    fn text_writes_the_content_and_the_executable_bit() {
        let dir = tempfile::tempdir().unwrap();
        let physical = ctx_for(dir.path());
        let out = dir.path().join("t");
        run(
            &Ctx { physical: &physical },
            "text",
            1,
            &serde_json::json!({"content": "#!/bin/sh\n", "executable": true}),
            &out,
        )
        .unwrap();
        assert_eq!(fs::read_to_string(&out).unwrap(), "#!/bin/sh\n");
        assert_eq!(fs::metadata(&out).unwrap().permissions().mode() & 0o111, 0o111);
    }

    fn store_file(root: &Path, name: &str, bytes: &[u8]) -> StorePath {
        let p = StorePath::for_flat_file(&forge_store::Hash::of(forge_store::Algo::Sha256, bytes), name).unwrap();
        fs::write(root.join(p.base_name()), bytes).unwrap();
        p
    }

    fn signed_apk(root: &Path) -> (StorePath, StorePath) {
        use crate::apk::{build, pkginfo::PkgInfo, sign::SigningKey, tarball::Kind};
        let key = SigningKey::load(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("src/apk/testdata/forge-test@example.invalid-1.rsa").as_path(),
        )
        .unwrap();
        let info =
            PkgInfo { name: "hello".into(), version: "1.0-r0".into(), arch: "x86_64".into(), ..PkgInfo::default() };
        let file = |path: &str, kind, content: &[u8]| {
            build::BuildEntry::new(path, kind, if kind == Kind::Dir { 0o755 } else { 0o644 }, content)
        };
        let entries = [file("etc", Kind::Dir, b""), file("etc/hello", Kind::File, b"hi\n")];
        let apk = build::build(&entries, &info, &[], &key, &build::BuildOptions::default()).unwrap();
        let pem = key.public_key_pem();
        (store_file(root, "hello-1.0-r0.apk", &apk), store_file(root, "test-key.rsa.pub", pem.as_bytes()))
    }

    #[test]
    fn apk_install_layers_apks_over_the_base_into_one_deterministic_tar_with_the_report() {
        let dir = tempfile::tempdir().unwrap();
        let base = layer(dir.path(), "base", &[("etc/motd", "welcome\n")]);
        let (apk, key) = signed_apk(dir.path());
        let args = serde_json::json!({
            "base": base, "apks": [{"path": apk, "repository": "@local"}],
            "keys": [{"path": key, "name": "forge-test@example.invalid-1.rsa.pub"}],
            "world": ["hello"], "repositories": ["@local /srv/repo"], "epoch": 1_700_000_000, "arch": "x86_64",
        });
        let physical = ctx_for(dir.path());
        let ctx = Ctx { physical: &physical };
        let (o1, o2) = (dir.path().join("o1"), dir.path().join("o2"));
        run(&ctx, "apk-install", 1, &args, &o1).unwrap();
        run(&ctx, "apk-install", 1, &args, &o2).unwrap();
        let bytes = fs::read(&o1).unwrap();
        assert_eq!(bytes, fs::read(&o2).unwrap());
        let mut tree = crate::fstree::FsTree::new(0);
        tree.add_tar(&bytes[..], "out").unwrap();
        let read = |p: &str| match &tree.get(p).unwrap().kind {
            crate::fstree::Kind::File(c) => String::from_utf8(c.read_all().unwrap()).unwrap(),
            _ => panic!("{p}"),
        };
        assert_eq!(read("/etc/motd"), "welcome\n");
        assert_eq!(read("/etc/hello"), "hi\n");
        assert_eq!(read("/etc/apk/world"), "hello\n");
        assert_eq!(read("/etc/apk/arch"), "x86_64\n");
        assert_eq!(read("/etc/apk/repositories"), "@local /srv/repo\n");
        assert!(read("/lib/apk/db/installed").contains("P:hello\nV:1.0-r0\n"));
        assert!(read("/lib/apk/db/installed").contains("s:local\n"));
        assert!(read(APK_INSTALL_REPORT).contains("package hello-1.0-r0\n"));
        assert!(tree.get("/etc/apk/keys/forge-test@example.invalid-1.rsa.pub").is_some());
        if crate::apk::testutil::forge_have_tool("tar") {
            let out = std::process::Command::new("tar").arg("-tvf").arg(&o1).output().unwrap();
            let listing = String::from_utf8(out.stdout).unwrap();
            assert!(out.status.success() && listing.contains("etc/hello") && listing.contains("lib/apk/db/installed"));
        }
    }

    /// A gzip'd tar holding `files` (path, content), as a store file.
    fn tarball(root: &Path, name: &str, files: &[(&str, &[u8])]) -> StorePath {
        let mut tree = crate::fstree::FsTree::new(0);
        for (path, content) in files {
            tree.mkdir_p(Path::new(path).parent().unwrap().to_str().unwrap(), 0o755).unwrap();
            tree.write(path, content.to_vec(), 0o644).unwrap();
        }
        let mut tar = Vec::new();
        crate::tar::write_tar(&tree, &mut tar).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        store_file(root, name, &gz.finish().unwrap())
    }

    #[test]
    fn apk_install_trusts_the_keys_of_a_pinned_tarball_and_orders_by_dependencies() {
        use crate::apk::{build, dep::Dep, pkginfo::PkgInfo, sign::SigningKey};
        let dir = tempfile::tempdir().unwrap();
        let key_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/apk/testdata/forge-test@example.invalid-1.rsa");
        let key = SigningKey::load(&key_path).unwrap();
        let pem = key.public_key_pem();
        let key_file = format!("etc/apk/keys/{}", key.name);
        let rootfs = tarball(dir.path(), "minirootfs.tar.gz", &[(&key_file, pem.as_bytes())]);
        let apk = |name: &str, deps: &str| {
            let info = PkgInfo {
                name: name.into(),
                version: "1.0-r0".into(),
                arch: "x86_64".into(),
                depends: deps.split_whitespace().map(|d| Dep::parse(d, "t").unwrap()).collect(),
                ..PkgInfo::default()
            };
            let bytes = build::build(&[], &info, &[], &key, &build::BuildOptions::default()).unwrap();
            store_file(dir.path(), &format!("{name}-1.0-r0.apk"), &bytes)
        };
        let (app, lib) = (apk("app", "lib"), apk("lib", ""));
        let args = |keys_dir: &str| {
            serde_json::json!({
                "base": rootfs, "apks": [{"path": app}, {"path": lib}], "world": ["app"],
                "keysFrom": {"tarball": rootfs, "dir": keys_dir}, "order": "dependencies",
            })
        };
        let physical = ctx_for(dir.path());
        let ctx = Ctx { physical: &physical };
        let out = dir.path().join("o");
        run(&ctx, "apk-install", 1, &args("etc/apk/keys"), &out).unwrap();
        let mut tree = crate::fstree::FsTree::new(0);
        tree.add_tar_file(&out).unwrap();
        let crate::fstree::Kind::File(db) = &tree.get("/lib/apk/db/installed").unwrap().kind else { panic!() };
        let db = String::from_utf8(db.read_all().unwrap()).unwrap();
        let (l, a) = (db.find("P:lib\n").unwrap(), db.find("P:app\n").unwrap());
        assert!(l < a, "lib is installed before app, which needs it:\n{db}");

        let err = run(&ctx, "apk-install", 1, &args("etc/none"), &dir.path().join("o2")).unwrap_err().to_string();
        assert!(err.contains("holds no key files in etc/none"), "{err}");
    }

    #[test]
    fn apk_install_refuses_an_apk_signed_by_a_key_not_given() {
        let dir = tempfile::tempdir().unwrap();
        let (apk, _key) = signed_apk(dir.path());
        let args = serde_json::json!({ "apks": [{"path": apk}] });
        let physical = ctx_for(dir.path());
        let err = run(&Ctx { physical: &physical }, "apk-install", 1, &args, &dir.path().join("o")).unwrap_err();
        assert!(err.to_string().contains("forge-test@example.invalid-1.rsa.pub"), "{err}");
        assert!(!dir.path().join("o").exists());
    }

    #[test]
    fn an_unknown_builtin_or_version_lists_the_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let physical = ctx_for(dir.path());
        let err =
            run(&Ctx { physical: &physical }, "text", 9, &serde_json::json!({}), &dir.path().join("o")).unwrap_err();
        assert!(err.to_string().contains("text@1"), "{err}");
    }
}
