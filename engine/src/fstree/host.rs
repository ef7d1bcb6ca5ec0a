//! Layering a host or store directory tree into an FsTree.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{Content, FsTree, FsTreeError, Kind, Node, TreePath};

impl FsTree {
    /// Layers the directory `host` (a store path, a folder) at `dest` in the tree: its
    /// files, directories and symlinks with their permission bits, owned by 0:0 (host
    /// ownership never leaks in). File contents stay on disk and are streamed when
    /// written. Entries are visited in name order, so the result does not depend on the
    /// order the host lists them in. Device nodes, fifos and sockets are refused: store
    /// trees never hold them; add them with [`FsTree::mknod`].
    pub fn add_dir(&mut self, host: &Path, dest: impl AsRef<[u8]>) -> Result<(), FsTreeError> {
        self.add_tree(host, dest, |mode| mode)
    }

    /// [`FsTree::add_dir`] for a store path: the store keeps no write bit (files
    /// 0444/0555, folders 0555), so each file and folder gets its owner's write bit
    /// back, as an install or a git checkout has it (0644/0755).
    pub fn add_store_dir(&mut self, host: &Path, dest: impl AsRef<[u8]>) -> Result<(), FsTreeError> {
        self.add_tree(host, dest, store_mode)
    }

    fn add_tree(&mut self, host: &Path, dest: impl AsRef<[u8]>, mode_of: fn(u32) -> u32) -> Result<(), FsTreeError> {
        let dest = TreePath::parse(dest)?;
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| FsTreeError::Io { path, source }
        };
        let meta = std::fs::symlink_metadata(host).map_err(io(host))?;
        if !meta.is_dir() {
            return Err(FsTreeError::Unsupported {
                path: host.display().to_string(),
                reason: "not a directory".into(),
            });
        }
        self.insert(
            dest.to_relative_bytes(),
            Node::new(Kind::Dir(BTreeMap::new()), mode_of(meta.permissions().mode())),
        )?;
        let mut names: Vec<_> = std::fs::read_dir(host)
            .map_err(io(host))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io(host))?;
        names.sort();
        for name in names {
            let src = host.join(&name);
            let mut target = dest.clone();
            target.push(name.as_bytes());
            self.add_host_entry(&src, &target, mode_of)?;
        }
        Ok(())
    }

    fn add_host_entry(&mut self, src: &Path, dest: &TreePath, mode_of: fn(u32) -> u32) -> Result<(), FsTreeError> {
        let io = |source| FsTreeError::Io { path: src.display().to_string(), source };
        let meta = std::fs::symlink_metadata(src).map_err(io)?;
        let ft = meta.file_type();
        let mode = mode_of(meta.permissions().mode());
        let node = if ft.is_dir() {
            return self.add_tree(src, dest.to_relative_bytes(), mode_of);
        } else if ft.is_symlink() {
            let target = std::fs::read_link(src).map_err(io)?;
            Node::new(Kind::Symlink(target.as_os_str().as_bytes().to_vec()), 0o777)
        } else if ft.is_file() {
            let content = Content::File { path: src.into(), offset: 0, size: meta.len() };
            Node::new(Kind::File(content), mode)
        } else {
            let reason = "device nodes, fifos and sockets are not taken from the host; use mknod".into();
            return Err(FsTreeError::Unsupported { path: src.display().to_string(), reason });
        };
        self.insert(dest.to_relative_bytes(), node)
    }
}

/// A store path's mode with the owner's write bit the store took away.
pub fn store_mode(mode: u32) -> u32 {
    mode | 0o200
}
