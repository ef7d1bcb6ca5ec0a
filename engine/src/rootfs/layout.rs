//! The rootfs ops that place configuration files and shape the read-only root:
//! copy one file or a set of files out of a store path, edit a copied file, move
//! a directory. Each refuses to guess: a missing source, an edit whose text is not
//! found exactly once, or a move onto an existing path is an error naming it, so a
//! change upstream fails the build instead of silently shipping the old layout.

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::{Error, Result};
use crate::fstree::{Content, FsTree, Kind, TreePath};

fn fail(why: String) -> Error {
    Error::BadDerivation { name: "builtin rootfs".into(), why }
}

fn rel(path: &str) -> &str {
    path.trim_start_matches('/')
}

fn mkdir_parent(tree: &mut FsTree, path: &str) -> Result<()> {
    if let Some((parent, _)) = rel(path).rsplit_once('/') {
        if tree.get(parent).is_none() {
            tree.mkdir_p(parent, 0o755)?;
        }
    }
    Ok(())
}

/// Copies the regular file `host` to `to`, with `mode` or the file's own bits.
pub(super) fn copy_file(tree: &mut FsTree, host: &Path, to: &str, mode: Option<u32>) -> Result<()> {
    let meta = std::fs::symlink_metadata(host).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => fail(format!(
            "{} does not exist in the pinned input; the recipe names a file it no longer has",
            host.display()
        )),
        _ => Error::Io { path: host.to_owned(), source: e },
    })?;
    if !meta.is_file() {
        return Err(fail(format!("{} is not a regular file", host.display())));
    }
    let mode =
        mode.unwrap_or_else(|| crate::fstree::store_mode(std::os::unix::fs::PermissionsExt::mode(&meta.permissions())));
    mkdir_parent(tree, to)?;
    tree.write(rel(to), Content::host_file(host).map_err(Error::io(host))?, mode & 0o7777)?;
    Ok(())
}

/// Copies every regular file of `dir` whose name ends with `suffix` (except
/// `skip`) into the directory `to`, in name order. Finding none is an error: the
/// recipe expects these files.
pub(super) fn copy_matching(
    tree: &mut FsTree,
    dir: &Path,
    suffix: &str,
    skip: &[String],
    to: &str,
    mode: Option<u32>,
) -> Result<()> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir).map_err(Error::io(dir))? {
        let entry = entry.map_err(Error::io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(suffix) && !skip.contains(&name) && entry.file_type().map_err(Error::io(dir))?.is_file() {
            names.insert(name);
        }
    }
    if names.is_empty() {
        return Err(fail(format!("{} has no `*{suffix}` file; the recipe expects some", dir.display())));
    }
    tree.mkdir_p(rel(to), 0o755)?;
    for name in names {
        copy_file(tree, &dir.join(&name), &format!("{}/{name}", to.trim_end_matches('/')), mode)?;
    }
    Ok(())
}

/// Replaces each `[from, to]` in the file at `path`; every `from` must occur
/// exactly once. Mode and owner are kept.
pub(super) fn edit(tree: &mut FsTree, path: &str, replace: &[[String; 2]]) -> Result<()> {
    let node = tree.get(rel(path)).ok_or_else(|| fail(format!("edit: {path} is not in the tree")))?;
    let Kind::File(content) = &node.kind else {
        return Err(fail(format!("edit: {path} is a {}, not a regular file", node.kind.name())));
    };
    let (mode, uid, gid) = (node.meta.mode, node.meta.uid, node.meta.gid);
    let bytes = content.read_all().map_err(Error::io(path))?;
    let mut text = String::from_utf8(bytes).map_err(|_| fail(format!("edit: {path} is not UTF-8 text")))?;
    for [from, to] in replace {
        let found = text.matches(from.as_str()).count();
        if found != 1 {
            return Err(fail(format!(
                "edit: {path} holds `{from}` {found} times, not once; the file changed upstream: review the recipe's \
                 edit of it"
            )));
        }
        text = text.replacen(from.as_str(), to, 1);
    }
    tree.write(rel(path), text.into_bytes(), mode)?;
    tree.chown(rel(path), uid, gid)?;
    Ok(())
}

/// Drops every mount option starting with `prefix` from the fstab at `path`,
/// with a comment above each changed line saying what went; an entry left with
/// no option gets `defaults`. Used for `x-systemd.*`, which OpenRC's mount does
/// not know (busybox mount hands unknown options to the kernel, which refuses them).
pub(super) fn fstab_drop_options(tree: &mut FsTree, path: &str, prefix: &str) -> Result<()> {
    let node = tree.get(rel(path)).ok_or_else(|| fail(format!("fstab: {path} is not in the tree")))?;
    let Kind::File(content) = &node.kind else {
        return Err(fail(format!("fstab: {path} is a {}, not a regular file", node.kind.name())));
    };
    let mode = node.meta.mode;
    let bytes = content.read_all().map_err(Error::io(path))?;
    let text = String::from_utf8(bytes).map_err(|_| fail(format!("fstab: {path} is not UTF-8 text")))?;
    let mut out = String::with_capacity(text.len() + 256);
    for line in text.lines() {
        let mut fields: Vec<&str> = line.split_whitespace().collect();
        let (kept, dropped): (Vec<&str>, Vec<&str>) = match fields.get(3) {
            Some(opts) if !line.trim_start().starts_with('#') => opts.split(',').partition(|o| !o.starts_with(prefix)),
            _ => (Vec::new(), Vec::new()),
        };
        if dropped.is_empty() {
            out.push_str(line);
        } else {
            out.push_str(&format!("# forge: dropped {} (systemd-only; see docs/alpine.md)\n", dropped.join(",")));
            let kept = if kept.is_empty() { "defaults".to_owned() } else { kept.join(",") };
            fields[3] = &kept;
            out.push_str(&fields.join(" "));
        }
        out.push('\n');
    }
    tree.write(rel(path), out.into_bytes(), mode)?;
    Ok(())
}

/// Moves the entry at `from` (with everything under it) to `to`, which must not
/// exist; hard links into the moved tree would dangle, so they are refused.
pub(super) fn move_entry(tree: &mut FsTree, from: &str, to: &str) -> Result<()> {
    let node = tree.get(rel(from)).cloned().ok_or_else(|| fail(format!("move: {from} is not in the tree")))?;
    if tree.get(rel(to)).is_some() {
        return Err(fail(format!("move: {to} already exists; remove it first or move elsewhere")));
    }
    let prefix = TreePath::parse(rel(from))?;
    let linked = tree.hardlink_targets()?.into_iter().find(|t| t.components().starts_with(prefix.components()));
    if let Some(target) = linked {
        return Err(fail(format!("move: {from} holds {target}, the target of hard links, which would dangle")));
    }
    mkdir_parent(tree, to)?;
    tree.insert(rel(to), node)?;
    tree.remove(rel(from))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_with(path: &str, text: &str) -> FsTree {
        let mut tree = FsTree::new(0);
        tree.mkdir_p("etc", 0o755).unwrap();
        tree.write(path, text.as_bytes().to_vec(), 0o640).unwrap();
        tree.chown(path, 0, 4).unwrap();
        tree
    }

    fn text(tree: &FsTree, path: &str) -> String {
        let Kind::File(c) = &tree.get(path).unwrap().kind else { panic!("{path} is not a file") };
        String::from_utf8(c.read_all().unwrap()).unwrap()
    }

    #[test]
    fn edit_replaces_each_text_once_and_keeps_mode_and_owner() {
        let mut tree = tree_with("etc/x.conf", "a=1\ndns=systemd-resolved\n");
        edit(&mut tree, "/etc/x.conf", &[["dns=systemd-resolved".into(), "dns=default".into()]]).unwrap();
        assert_eq!(text(&tree, "etc/x.conf"), "a=1\ndns=default\n");
        let meta = &tree.get("etc/x.conf").unwrap().meta;
        assert_eq!((meta.mode, meta.uid, meta.gid), (0o640, 0, 4));
    }

    #[test]
    fn edit_of_text_that_is_absent_or_repeated_fails_loudly() {
        let mut tree = tree_with("etc/x.conf", "a=1\na=1\n");
        for needle in ["b=2", "a=1"] {
            let err = edit(&mut tree, "/etc/x.conf", &[[needle.into(), "c".into()]]).unwrap_err().to_string();
            assert!(err.contains("changed upstream"), "{err}");
        }
        assert_eq!(text(&tree, "etc/x.conf"), "a=1\na=1\n", "nothing is changed on error");
    }

    #[test]
    fn fstab_loses_only_the_systemd_options_with_a_note() {
        let fstab = "# comment,x-systemd.keep\n/dev/a /cache ext4 relatime,x-systemd.makefs 0 0\n\
                     /dev/b /m auto x-systemd.device-timeout=5s 0 0\ntmpfs /tmp tmpfs rw,mode=1777 0 0\n";
        let mut tree = tree_with("etc/fstab", fstab);
        fstab_drop_options(&mut tree, "/etc/fstab", "x-systemd.").unwrap();
        assert_eq!(
            text(&tree, "etc/fstab"),
            "# comment,x-systemd.keep\n# forge: dropped x-systemd.makefs (systemd-only; see docs/alpine.md)\n\
             /dev/a /cache ext4 relatime 0 0\n\
             # forge: dropped x-systemd.device-timeout=5s (systemd-only; see docs/alpine.md)\n\
             /dev/b /m auto defaults 0 0\ntmpfs /tmp tmpfs rw,mode=1777 0 0\n"
        );
    }

    #[test]
    fn move_carries_a_directory_and_refuses_an_existing_target() {
        let mut tree = tree_with("var/lib/x", "state");
        tree.mkdir_p("var/log", 0o750).unwrap();
        move_entry(&mut tree, "/var", "/usr/default/var").unwrap();
        assert!(tree.get("var").is_none());
        assert_eq!(text(&tree, "usr/default/var/lib/x"), "state");
        assert_eq!(tree.get("usr/default/var/log").unwrap().meta.mode, 0o750);
        let err = move_entry(&mut tree, "/usr/default/var/lib", "/usr/default/var/log").unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
    }

    #[test]
    fn copy_matching_takes_files_by_suffix_in_name_order_and_needs_one() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["99-b.rules", "10-a.rules", "comma-polkit.rules", "fstab"] {
            std::fs::write(dir.path().join(name), name).unwrap();
        }
        let mut tree = FsTree::new(0);
        let skip = vec!["comma-polkit.rules".to_owned()];
        copy_matching(&mut tree, dir.path(), ".rules", &skip, "/etc/udev/rules.d", Some(0o644)).unwrap();
        let names: Vec<String> =
            tree.get("etc/udev/rules.d").unwrap().children().map(|(n, _)| String::from_utf8_lossy(n).into()).collect();
        assert_eq!(names, ["10-a.rules", "99-b.rules"]);
        let err = copy_matching(&mut tree, dir.path(), ".none", &[], "/x", None).unwrap_err().to_string();
        assert!(err.contains("has no `*.none` file"), "{err}");
    }

    #[test]
    fn copy_file_of_a_missing_source_says_the_input_lacks_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = copy_file(&mut FsTree::new(0), &dir.path().join("fstab"), "/etc/fstab", None).unwrap_err();
        assert!(err.to_string().contains("does not exist in the pinned input"), "{err}");
    }
}
