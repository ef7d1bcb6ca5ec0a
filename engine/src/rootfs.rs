//! The `rootfs` and `image` builtins: compose a root filesystem from store paths
//! and explicit operations, then write the flashable image.
//!
//! `rootfs` (version 1) starts from a base tarball (an Alpine minirootfs), adds
//! trees copied out of store paths, converts systemd units to OpenRC services and
//! applies explicit operations, all in an [`FsTree`]: ownership, modes,
//! capabilities and device nodes are metadata, never host file ownership. Its
//! output is a deterministic tar. `image` (version 1) writes that tar as ext4 of a
//! fixed size, then as an Android sparse image, with the manifest auditors diff and,
//! when asked (`sbom`), an SPDX 2.3 bill of materials: the apks of the tree's
//! `lib/apk/db/installed` and the inputs the recipe passes ([`SbomArgs::for_rootfs`]).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use forge_store::StorePath;
use serde::Deserialize;

use crate::builtins::Ctx;
use crate::error::{Error, Result};
use crate::fstree::FsTree;

mod layout;
pub mod lfs;

/// Arguments of `rootfs`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootfsArgs {
    /// A tarball (plain, gz, xz or zst) the tree starts from.
    pub base: Option<StorePath>,
    /// Every entry's mtime.
    pub epoch: i64,
    /// Operations, in order.
    #[serde(default)]
    pub ops: Vec<Op>,
}

/// One explicit operation on the tree.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Op {
    /// Copies `src` (a store path) or its subfolder `from` to `to`. Files and folders
    /// get back the owner write bit the store removed (0444 -> 0644, 0555 -> 0755).
    Copy {
        /// The store path to copy from.
        src: StorePath,
        /// Its subfolder to copy (empty: all of it).
        #[serde(default)]
        from: String,
        /// Where it goes in the root.
        to: String,
    },
    /// Creates a directory and its missing parents.
    Mkdir {
        /// The directory.
        path: String,
        /// Its mode.
        mode: u32,
    },
    /// Writes a file (replacing one), creating missing parents.
    Write {
        /// The file.
        path: String,
        /// Its content.
        content: String,
        /// Its mode.
        mode: u32,
    },
    /// Appends to an existing file (created empty with mode 644 when missing).
    Append {
        /// The file.
        path: String,
        /// What to append.
        content: String,
    },
    /// Makes a symlink, creating missing parents.
    Symlink {
        /// The symlink.
        path: String,
        /// What it points to.
        target: String,
    },
    /// Sets a path's mode.
    Chmod {
        /// The path.
        path: String,
        /// The mode.
        mode: u32,
    },
    /// Sets a path's owner.
    Chown {
        /// The path.
        path: String,
        /// Owner uid.
        uid: u32,
        /// Owner gid.
        gid: u32,
    },
    /// `setcap` text, e.g. `cap_net_raw+ep`.
    Setcap {
        /// The file.
        path: String,
        /// The capabilities, as `setcap` takes them.
        caps: String,
    },
    /// Removes a path from the tree.
    Remove {
        /// The path.
        path: String,
    },
    /// Converts every `.service`, `.timer` and `.path` unit in `dir` of `src` to
    /// OpenRC; unmapped directives go to `/etc/forge/openrc-report.txt`.
    SystemdUnits {
        /// The store path holding the units.
        src: StorePath,
        /// Their folder in it.
        dir: String,
        /// Unit file names to leave out.
        #[serde(default)]
        skip: Vec<String>,
    },
    /// The `magic` service: `/usr/comma/magic.py` at boot, logging to /var/log/magic.log.
    MagicService,
    /// The `magic` service converted from `path` of `src` (comma's magic.service at
    /// the pinned revision) with [`crate::openrc::magic::magic_override`].
    MagicUnit {
        /// The store path it reads from.
        src: StorePath,
        /// The file or path concerned.
        path: String,
    },
    /// Checks every Git LFS pointer of the checkout `src` against `pins` and writes
    /// the installed objects into the tree ([`lfs`]); `table` names where the pins
    /// live, for the error messages.
    LfsObjects {
        /// The store path it reads from.
        src: StorePath,
        /// The pinned objects.
        pins: Vec<LfsPin>,
        /// Where the pins are kept, for error messages.
        table: String,
    },
    /// Copies the file `from` of `src` to `to`, with `mode` or the file's own bits.
    CopyFile {
        /// The store path it reads from.
        src: StorePath,
        /// The source path.
        from: String,
        /// The destination path in the tree.
        to: String,
        /// The mode to set (default: the source's, with the owner write bit the store removed).
        #[serde(default)]
        mode: Option<u32>,
    },
    /// Copies every file of `dir` in `src` whose name ends with `suffix`, except
    /// `skip`, into the directory `to`; none at all is an error.
    CopyMatching {
        /// The store path it reads from.
        src: StorePath,
        /// The source directory.
        dir: String,
        /// The file name suffix selected.
        suffix: String,
        /// The destination path in the tree.
        to: String,
        /// File names to leave out.
        #[serde(default)]
        skip: Vec<String>,
        /// The mode to set (default: the source's, with the owner write bit the store removed).
        #[serde(default)]
        mode: Option<u32>,
    },
    /// Replaces `[from, to]` pairs in a file; each `from` must occur exactly once.
    Edit {
        /// The file or path concerned.
        path: String,
        /// `[old, new]` pairs; each old text must occur exactly once.
        replace: Vec<[String; 2]>,
    },
    /// Drops the mount options starting with `prefix` from the fstab at `path`.
    FstabDropOptions {
        /// The file or path concerned.
        path: String,
        /// The text to add at the start.
        prefix: String,
    },
    /// Moves an entry and everything under it; `to` must not exist.
    Move {
        /// The source path.
        from: String,
        /// The destination path in the tree.
        to: String,
    },
}

/// One pinned Git LFS object of an [`Op::LfsObjects`].
#[derive(Deserialize, Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LfsPin {
    /// The pointer's path in the checkout.
    pub path: String,
    /// sha256 of the object, hex.
    pub oid: String,
    /// The size in bytes.
    pub size: u64,
    /// Where the object goes in the image (`None`: pinned, not installed).
    #[serde(default)]
    pub to: Option<String>,
    /// The fetched object; required with `to`.
    #[serde(default)]
    pub object: Option<StorePath>,
}

/// Runs `rootfs`: the output `out` is a tar file.
pub fn rootfs(ctx: &Ctx<'_>, args: RootfsArgs, out: &Path) -> Result<()> {
    let mut tree = FsTree::new(args.epoch);
    if let Some(base) = &args.base {
        tree.add_tar_file(&(ctx.physical)(base))?;
    }
    let mut report = String::new();
    for op in &args.ops {
        apply(ctx, &mut tree, op, &mut report)?;
    }
    if !report.is_empty() {
        tree.mkdir_p("etc/forge", 0o755)?;
        tree.write("etc/forge/openrc-report.txt", report.into_bytes(), 0o644)?;
    }
    let file = fs::File::create(out).map_err(Error::io(out))?;
    let mut w = std::io::BufWriter::new(file);
    crate::tar::write_tar(&tree, &mut w)?;
    std::io::Write::flush(&mut w).map_err(Error::io(out))?;
    Ok(())
}

fn apply(ctx: &Ctx<'_>, tree: &mut FsTree, op: &Op, report: &mut String) -> Result<()> {
    match op {
        Op::Copy { src, from, to } => {
            let host = (ctx.physical)(src).join(from.trim_start_matches('/'));
            tree.add_store_dir(&host, rel(to))?;
        }
        Op::Mkdir { path, mode } => tree.mkdir_p(rel(path), *mode)?,
        Op::Write { path, content, mode } => write_with_parents(tree, path, content.as_bytes().to_vec(), *mode)?,
        Op::Append { path, content } => {
            let (mut bytes, mode) = match tree.get(rel(path)) {
                Some(node) => match &node.kind {
                    crate::fstree::Kind::File(c) => (c.read_all().map_err(Error::io(path))?, node.meta.mode),
                    _ => return Err(op_error(op, "is not a regular file")),
                },
                None => (Vec::new(), 0o644),
            };
            bytes.extend_from_slice(content.as_bytes());
            write_with_parents(tree, path, bytes, mode)?;
        }
        Op::Symlink { path, target } => {
            mkdir_parent(tree, path)?;
            tree.symlink(rel(path), target)?;
        }
        Op::Chmod { path, mode } => tree.chmod(rel(path), *mode)?,
        Op::Chown { path, uid, gid } => tree.chown(rel(path), *uid, *gid)?,
        Op::Setcap { path, caps } => tree.setcap(rel(path), caps)?,
        Op::Remove { path } => {
            tree.remove(rel(path))?;
        }
        Op::SystemdUnits { src, dir, skip } => systemd_units(ctx, tree, src, dir, skip, report)?,
        Op::MagicService => install_service(tree, &crate::openrc::magic_service()?, report)?,
        Op::MagicUnit { src, path } => {
            let host = (ctx.physical)(src).join(rel(path));
            let text = fs::read_to_string(&host).map_err(Error::io(&host))?;
            let unit = crate::openrc::convert_unit("magic.service", &text, &crate::openrc::magic::magic_override())?;
            install_service(tree, &unit, report)?
        }
        Op::LfsObjects { src, pins, table } => lfs_objects(ctx, tree, src, pins, table)?,
        Op::CopyFile { src, from, to, mode } => {
            layout::copy_file(tree, &(ctx.physical)(src).join(rel(from)), to, *mode)?
        }
        Op::CopyMatching { src, dir, suffix, to, skip, mode } => {
            layout::copy_matching(tree, &(ctx.physical)(src).join(rel(dir)), suffix, skip, to, *mode)?
        }
        Op::Edit { path, replace } => layout::edit(tree, path, replace)?,
        Op::Move { from, to } => layout::move_entry(tree, from, to)?,
        Op::FstabDropOptions { path, prefix } => layout::fstab_drop_options(tree, path, prefix)?,
    }
    Ok(())
}

fn lfs_objects(ctx: &Ctx<'_>, tree: &mut FsTree, src: &StorePath, pins: &[LfsPin], table: &str) -> Result<()> {
    let mut resolved = Vec::with_capacity(pins.len());
    for pin in pins {
        let install = match (&pin.to, &pin.object) {
            (Some(to), Some(object)) => Some((to.clone(), (ctx.physical)(object))),
            (None, None) => None,
            _ => {
                let why = format!("LFS pin {}: `to` and `object` go together", pin.path);
                return Err(Error::BadDerivation { name: "builtin rootfs".into(), why });
            }
        };
        resolved.push(lfs::Pin { path: pin.path.clone(), oid: pin.oid.clone(), size: pin.size, install });
    }
    lfs::resolve(tree, &(ctx.physical)(src), &resolved, table)?;
    Ok(())
}

fn rel(path: &str) -> &str {
    path.trim_start_matches('/')
}

fn op_error(op: &Op, why: &str) -> Error {
    Error::BadDerivation { name: "builtin rootfs".into(), why: format!("{op:?}: {why}") }
}

fn mkdir_parent(tree: &mut FsTree, path: &str) -> Result<()> {
    if let Some((parent, _)) = rel(path).rsplit_once('/') {
        if tree.get(parent).is_none() {
            tree.mkdir_p(parent, 0o755)?;
        }
    }
    Ok(())
}

fn write_with_parents(tree: &mut FsTree, path: &str, bytes: Vec<u8>, mode: u32) -> Result<()> {
    mkdir_parent(tree, path)?;
    tree.write(rel(path), bytes, mode)?;
    Ok(())
}

/// Converts the units of `src/dir` in name order and installs the results.
fn systemd_units(
    ctx: &Ctx<'_>,
    tree: &mut FsTree,
    src: &StorePath,
    dir: &str,
    skip: &[String],
    report: &mut String,
) -> Result<()> {
    let host = (ctx.physical)(src).join(dir.trim_start_matches('/'));
    let mut units: BTreeMap<String, String> = BTreeMap::new();
    for entry in fs::read_dir(&host).map_err(Error::io(&host))? {
        let entry = entry.map_err(Error::io(&host))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_unit = [".service", ".timer", ".path"].iter().any(|s| name.ends_with(s));
        if is_unit && !skip.contains(&name) && entry.file_type().map_err(Error::io(&host))?.is_file() {
            let text = fs::read_to_string(entry.path()).map_err(Error::io(entry.path()))?;
            units.insert(name, text);
        }
    }
    let converter = crate::openrc::Converter::default();
    for (name, text) in &units {
        let conversion = converter.convert(name, text)?;
        install_service(tree, &conversion, report)?;
    }
    Ok(())
}

/// Writes one converted unit: init script, conf.d, runlevel link, cron lines.
fn install_service(tree: &mut FsTree, c: &crate::openrc::Conversion, report: &mut String) -> Result<()> {
    if let (Some(service), Some(script)) = (&c.service, &c.script) {
        write_with_parents(tree, &format!("etc/init.d/{service}"), script.clone().into_bytes(), 0o755)?;
        if let Some(conf) = &c.conf {
            write_with_parents(tree, &format!("etc/conf.d/{service}"), conf.clone().into_bytes(), 0o644)?;
        }
        if let Some(level) = &c.runlevel {
            let link = format!("etc/runlevels/{level}/{service}");
            mkdir_parent(tree, &link)?;
            tree.symlink(&link, format!("/etc/init.d/{service}"))?;
        }
    }
    if !c.cron.is_empty() {
        let lines: String = c.cron.iter().map(|l| format!("{l}\n")).collect();
        let (mut bytes, _) = match tree.get("etc/crontabs/root") {
            Some(crate::fstree::Node { kind: crate::fstree::Kind::File(content), .. }) => {
                (content.read_all().map_err(Error::io("etc/crontabs/root"))?, 0)
            }
            _ => (Vec::new(), 0),
        };
        bytes.extend_from_slice(lines.as_bytes());
        write_with_parents(tree, "etc/crontabs/root", bytes, 0o600)?;
    }
    if !c.report.is_empty() {
        report.push_str(&crate::openrc::report::render(&c.report));
    }
    Ok(())
}

/// Arguments of `image`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageArgs {
    /// The root filesystem tar (from `rootfs`).
    pub rootfs: StorePath,
    /// `4500M`, `2G`...: the ext4 filesystem's size.
    pub size: String,
    /// The ext4 volume label.
    pub label: String,
    /// The image's base file name: `<name>.img` is sparse, `<name>.raw.img` raw.
    pub name: String,
    /// Keep the raw image too (as big as `size`, mostly holes on disk).
    #[serde(default)]
    pub raw: bool,
    /// Write `<name>.spdx.json` too. Optional, so that image derivations made before
    /// it build to the same bytes.
    #[serde(default)]
    pub sbom: Option<SbomArgs>,
}

/// What the `image` builtin's bill of materials needs beyond the tree.
#[derive(Deserialize, serde::Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SbomArgs {
    /// `versionInfo` of the image's package (the release, `12.0-alpine`).
    #[serde(default)]
    pub version: String,
    /// `creationInfo.created`, seconds since 1970: the recipe's SOURCE_DATE_EPOCH,
    /// never the wall clock.
    pub created: i64,
    /// The compiled and fetched inputs of the root filesystem's closure.
    #[serde(default)]
    pub inputs: Vec<crate::sbom::Package>,
}

impl SbomArgs {
    /// The arguments for an image of `rootfs`: its closure's inputs from the graph.
    pub fn for_rootfs(forge: &crate::dsl::Forge, rootfs: &dyn crate::dsl::Input, version: &str, created: i64) -> Self {
        let inputs = crate::sbom::inputs_of(forge, &[rootfs.node()]);
        SbomArgs { version: version.to_owned(), created, inputs }
    }
}

/// Names the `image` builtin in the SBOM's `creators`: its output depends on the
/// builtin's version, not on forge's.
const SBOM_TOOL: &str = "forge-builtin-image@1";

/// Runs `image`: `out` is a directory with the sparse image, the manifest and,
/// when asked, the raw image.
pub fn image(ctx: &Ctx<'_>, args: ImageArgs, out: &Path) -> Result<()> {
    fs::create_dir(out).map_err(Error::io(out))?;
    let mut tree = FsTree::new(0);
    tree.add_tar_file(&(ctx.physical)(&args.rootfs))?;
    let size = crate::ext4::parse_size(&args.size)?;
    let raw = out.join(format!("{}.raw.img", args.name));
    let opts = crate::ext4::Ext4Options { size: Some(size), label: args.label.clone() };
    crate::ext4::write_ext4(&tree, &raw, &opts)?;
    crate::sparse::write_sparse(&raw, &out.join(format!("{}.img", args.name)))?;
    if !args.raw {
        fs::remove_file(&raw).map_err(Error::io(&raw))?;
    }
    let manifest = out.join(format!("{}.manifest", args.name));
    let file = fs::File::create(&manifest).map_err(Error::io(&manifest))?;
    crate::manifest::write_manifest(&tree, std::io::BufWriter::new(file))?;
    if let Some(sbom) = &args.sbom {
        write_sbom(&tree, &args, sbom, out)?;
    }
    Ok(())
}

/// Writes `<name>.spdx.json`: the image (by the sha256 of `<name>.img`) CONTAINS the
/// apks of the tree's apk database and is GENERATED_FROM the recipe's inputs.
fn write_sbom(tree: &FsTree, args: &ImageArgs, sbom: &SbomArgs, out: &Path) -> Result<()> {
    let image_file = format!("{}.img", args.name);
    let sha = crate::provenance::sha256_file(&out.join(&image_file)).map_err(Error::io(out.join(&image_file)))?;
    let mut packages = vec![crate::sbom::Package {
        name: args.name.clone(),
        version: sbom.version.clone(),
        checksums: [("SHA256".to_owned(), sha)].into(),
        file_name: Some(image_file),
        comment: Some(format!("the Android sparse image of the ext4 filesystem labelled {}", args.label)),
        ..Default::default()
    }];
    const INSTALLED: &str = "lib/apk/db/installed";
    if let Some(node) = tree.get(INSTALLED) {
        let crate::fstree::Kind::File(content) = &node.kind else {
            return Err(Error::BadDerivation {
                name: "builtin image".into(),
                why: format!("/{INSTALLED} is not a file"),
            });
        };
        let bytes = content.read_all().map_err(Error::io(INSTALLED))?;
        let what = format!("/{INSTALLED} of the image");
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::BadDerivation { name: "builtin image".into(), why: format!("{what} is not UTF-8") })?;
        packages.extend(crate::sbom::apk_packages(&text, &what)?);
    }
    packages.extend(sbom.inputs.iter().cloned());
    let doc = crate::sbom::spdx(&args.name, &packages, sbom.created, SBOM_TOOL);
    let path = out.join(format!("{}.spdx.json", args.name));
    fs::write(&path, crate::sbom::to_canonical_json(&doc)).map_err(Error::io(&path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A rootfs tar at a store path under `root` holding `/lib/apk/db/installed`.
    fn rootfs_with_db(root: &Path, installed: &str) -> StorePath {
        let name = "rootfs.tar";
        let p =
            StorePath::for_source(&forge_store::Hash::of(forge_store::Algo::Sha256, installed.as_bytes()), name, &[])
                .unwrap();
        let mut tree = FsTree::new(0);
        tree.mkdir_p("lib/apk/db", 0o755).unwrap();
        tree.write("lib/apk/db/installed", installed.as_bytes().to_vec(), 0o644).unwrap();
        let mut bytes = Vec::new();
        crate::tar::write_tar(&tree, &mut bytes).unwrap();
        fs::write(root.join(p.base_name()), bytes).unwrap();
        p
    }

    fn run_image(root: &Path, rootfs: &StorePath, sbom: Option<serde_json::Value>, out: &Path) -> Result<()> {
        let physical = |p: &StorePath| -> PathBuf { root.join(p.base_name()) };
        let mut args =
            serde_json::json!({ "rootfs": rootfs.to_string(), "size": "4M", "label": "t", "name": "system" });
        if let Some(s) = sbom {
            args["sbom"] = s;
        }
        crate::builtins::run(&Ctx { physical: &physical }, "image", 1, &args, out)
    }

    const MUSL: &str =
        "C:Q1Ws0QU6ZK6X4Cy1kzyS1wL4Pf7Ww=\nP:musl\nV:1.2.5-r0\nA:x86_64\nL:MIT\nU:https://musl.libc.org/\n\n";

    #[test]
    fn image_writes_an_sbom_of_the_tree_apks_and_the_inputs_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = rootfs_with_db(dir.path(), MUSL);
        let input = crate::sbom::Package {
            name: "minirootfs.tar.gz".into(),
            role: crate::sbom::Role::Input,
            ..Default::default()
        };
        let sbom = serde_json::json!({ "version": "1.0", "created": 86_400, "inputs": [input] });
        run_image(dir.path(), &rootfs, Some(sbom.clone()), &dir.path().join("a")).unwrap();
        run_image(dir.path(), &rootfs, Some(sbom), &dir.path().join("b")).unwrap();
        let text = fs::read_to_string(dir.path().join("a/system.spdx.json")).unwrap();
        assert_eq!(text, fs::read_to_string(dir.path().join("b/system.spdx.json")).unwrap());
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["creationInfo"]["created"], "1970-01-02T00:00:00Z");
        let names: Vec<&str> =
            doc["packages"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["minirootfs.tar.gz", "musl", "system"]);
        let image_sha = crate::provenance::sha256_file(&dir.path().join("a/system.img")).unwrap();
        assert!(text.contains(&image_sha), "the image is named by its sha256");

        // Without `sbom` the output is what image@1 always wrote.
        run_image(dir.path(), &rootfs, None, &dir.path().join("c")).unwrap();
        assert!(!dir.path().join("c/system.spdx.json").exists());
    }

    #[test]
    fn a_broken_apk_database_fails_the_image_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = rootfs_with_db(dir.path(), "P:musl\nV:1.2.5-r0\n\n");
        let sbom = serde_json::json!({ "created": 0 });
        let err = run_image(dir.path(), &rootfs, Some(sbom), &dir.path().join("a")).unwrap_err().to_string();
        assert!(err.contains("/lib/apk/db/installed of the image") && err.contains("C:"), "{err}");
    }
}
