//! The `rootfs` and `image` builtins: compose a root filesystem from store paths
//! and explicit operations, then write the flashable image.
//!
//! `rootfs` (version 1) starts from a base tarball (an Alpine minirootfs), adds
//! trees copied out of store paths, converts systemd units to OpenRC services and
//! applies explicit operations, all in an [`FsTree`]: ownership, modes,
//! capabilities and device nodes are metadata, never host file ownership. Its
//! output is a deterministic tar. `image` (version 1) writes that tar as ext4 of a
//! fixed size, then as an Android sparse image, with the manifest auditors diff.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use forge_store::StorePath;
use serde::Deserialize;

use crate::builtins::Ctx;
use crate::error::{Error, Result};
use crate::fstree::FsTree;

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
    /// Copies `src` (a store path) or its subfolder `from` to `to`.
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
            tree.add_dir(&host, rel(to))?;
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
    }
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
}

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
    Ok(())
}
