//! FsTree: the in-memory model of a root filesystem.
//!
//! Every entry has a kind, permission bits, an owner, xattrs and (for regular files) a
//! [`Content`] reference; nothing is ever taken from the host's ownership, so a tree is
//! built rootless and written byte-stable by the image writers.
//!
//! A tree is built from layers with overlay semantics — a later entry replaces an earlier
//! one at the same path, and a directory created implicitly as a parent takes its own
//! metadata when its entry arrives — and from explicit operations:
//!
//! ```
//! use forge_engine::fstree::{FsTree, Special};
//!
//! let mut tree = FsTree::new(1_700_000_000);
//! tree.write("/etc/hostname", "comma\n", 0o644)?;          // parents made implicitly
//! tree.mkdir_p("/var/log", 0o755)?;
//! tree.symlink("/bin/sh", "busybox")?;
//! tree.mknod("/dev/null", Special::Char { major: 1, minor: 3 }, 0o666)?;
//! tree.write("/usr/bin/ping", vec![0x7f, b'E', b'L', b'F'], 0o4755)?;
//! tree.setcap("/usr/bin/ping", "cap_net_raw+ep")?;
//! tree.chown("/var/log", 0, 4)?;
//! tree.remove("/etc/hostname")?;
//!
//! let paths: Vec<String> = tree.iter().map(|(p, _)| p.display().to_string()).collect();
//! assert_eq!(paths, ["/", "/bin", "/bin/sh", "/dev", "/dev/null", "/etc", "/usr", "/usr/bin",
//!                    "/usr/bin/ping", "/var", "/var/log"]);
//! # Ok::<(), forge_engine::fstree::FsTreeError>(())
//! ```
//!
//! Paths are byte strings, normalized (`//`, `.` and a leading `/` dropped) and checked:
//! `..`, NUL bytes and names over 255 bytes are refused, so no input can name a path
//! outside the tree. Iteration is depth-first with names in byte order: parents before
//! their children, the same order every time.

mod caps;
mod content;
mod host;
pub use host::store_mode;

use std::collections::BTreeMap;
use std::fmt;

pub use caps::{capability_text, capability_xattr, XATTR_NAME as CAPABILITY_XATTR};
pub use content::{Content, ContentReader, Run, Spool};

/// The longest file name ext4 (and this tree) accepts, in bytes.
pub const NAME_MAX: usize = 255;

/// What went wrong building or changing a tree; each variant names the path.
#[derive(Debug, thiserror::Error)]
pub enum FsTreeError {
    /// A path is not a clean relative path.
    #[error("invalid path `{path}`: {reason}")]
    InvalidPath {
        /// The path.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A parent of the path is not a directory.
    #[error("cannot create `{path}`: `{parent}` exists and is not a directory")]
    NotADirectory {
        /// The path.
        path: String,
        /// The parent in the way.
        parent: String,
    },
    /// The path is not in the tree.
    #[error("`{path}` does not exist in the tree")]
    NotFound {
        /// The path.
        path: String,
    },
    /// A hard link cannot be made.
    #[error("hard link `{path}` -> `{target}`: {reason}")]
    Hardlink {
        /// The link.
        path: String,
        /// Its target.
        target: String,
        /// Why not.
        reason: &'static str,
    },
    /// A symlink's target is empty.
    #[error("symlink `{path}` has an empty target")]
    EmptySymlink {
        /// The symlink.
        path: String,
    },
    /// A `setcap` text is not valid.
    #[error("invalid capability text `{text}`: {reason}")]
    Capability {
        /// The text.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// An I/O error.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Something the tree cannot hold or do.
    #[error("{path}: {reason}")]
    Unsupported {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// A normalized path inside a tree: its components, without `.`, `..` or empty ones.
/// The root is the empty path. Displays as an absolute path (`/usr/bin`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TreePath(Vec<Vec<u8>>);

impl TreePath {
    /// Normalizes and checks a path given as bytes (`/usr//bin/./x` is `usr/bin/x`).
    pub fn parse(path: impl AsRef<[u8]>) -> Result<TreePath, FsTreeError> {
        let raw = path.as_ref();
        let bad = |reason| FsTreeError::InvalidPath { path: String::from_utf8_lossy(raw).into_owned(), reason };
        if raw.contains(&0) {
            return Err(bad("it contains a NUL byte"));
        }
        let mut parts = Vec::new();
        for part in raw.split(|&b| b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => return Err(bad("`..` would leave the tree")),
                p if p.len() > NAME_MAX => return Err(bad("a name is longer than 255 bytes")),
                p => parts.push(p.to_vec()),
            }
        }
        Ok(TreePath(parts))
    }

    /// The components, outermost first.
    pub fn components(&self) -> &[Vec<u8>] {
        &self.0
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path as bytes, relative (`usr/bin`; empty for the root).
    pub fn to_relative_bytes(&self) -> Vec<u8> {
        self.0.join(&b'/')
    }

    /// Shows the path as an absolute path, lossily for non-UTF-8 names.
    pub fn display(&self) -> String {
        format!("/{}", String::from_utf8_lossy(&self.to_relative_bytes()))
    }

    fn parent_and_name(&self) -> Option<(&[Vec<u8>], &[u8])> {
        self.0.split_last().map(|(name, parent)| (parent, name.as_slice()))
    }

    fn push(&mut self, name: &[u8]) {
        self.0.push(name.to_vec());
    }
}

impl fmt::Display for TreePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

/// Owner, permissions, time and xattrs of an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits including setuid, setgid and sticky (`0o7777` at most).
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Seconds since the epoch; every entry of a tree gets the tree's SOURCE_DATE_EPOCH.
    pub mtime: i64,
    /// Extended attributes by full name (`security.capability`).
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl Meta {
    fn new(mode: u32, mtime: i64) -> Meta {
        Meta { mode: mode & 0o7777, uid: 0, gid: 0, mtime, xattrs: BTreeMap::new() }
    }
}

/// Device nodes and fifos, for [`FsTree::mknod`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    /// A character device.
    Char {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A block device.
    Block {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A named pipe.
    Fifo,
}

/// What an entry is.
#[derive(Clone, Debug)]
pub enum Kind {
    /// A regular file with this content.
    File(Content),
    /// Children by name, in byte order.
    Dir(BTreeMap<Vec<u8>, Node>),
    /// The link target, as stored (relative or absolute, never resolved).
    Symlink(Vec<u8>),
    /// Another name for the (non-directory) entry at this path; it shares that entry's
    /// inode, metadata and content.
    Hardlink(TreePath),
    /// A character device.
    Char {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A block device.
    Block {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A named pipe.
    Fifo,
}

impl Kind {
    /// A short lower-case name: `file`, `dir`, `symlink`, `hardlink`, `char`, `block`, `fifo`.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::File(_) => "file",
            Kind::Dir(_) => "dir",
            Kind::Symlink(_) => "symlink",
            Kind::Hardlink(_) => "hardlink",
            Kind::Char { .. } => "char",
            Kind::Block { .. } => "block",
            Kind::Fifo => "fifo",
        }
    }
}

impl From<Special> for Kind {
    fn from(s: Special) -> Kind {
        match s {
            Special::Char { major, minor } => Kind::Char { major, minor },
            Special::Block { major, minor } => Kind::Block { major, minor },
            Special::Fifo => Kind::Fifo,
        }
    }
}

/// One entry of the tree.
#[derive(Clone, Debug)]
pub struct Node {
    /// Mode, owner, times, xattrs.
    pub meta: Meta,
    /// What it is.
    pub kind: Kind,
}

impl Node {
    /// An entry of the given kind and permission bits, owned by root.
    pub fn new(kind: Kind, mode: u32) -> Node {
        Node { meta: Meta::new(mode, 0), kind }
    }

    /// Children of a directory (none for other kinds).
    pub fn children(&self) -> impl Iterator<Item = (&Vec<u8>, &Node)> {
        let map = match &self.kind {
            Kind::Dir(c) => Some(c),
            _ => None,
        };
        map.into_iter().flatten()
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir(_))
    }
}

/// The in-memory root filesystem. See the module documentation.
#[derive(Clone, Debug)]
pub struct FsTree {
    root: Node,
    epoch: i64,
    spool: Option<std::sync::Arc<Spool>>,
}

impl FsTree {
    /// An empty tree (a root directory 0755 owned by 0:0); every entry's mtime is `epoch`
    /// (SOURCE_DATE_EPOCH).
    pub fn new(epoch: i64) -> FsTree {
        FsTree { root: Node { meta: Meta::new(0o755, epoch), kind: Kind::Dir(BTreeMap::new()) }, epoch, spool: None }
    }

    /// The SOURCE_DATE_EPOCH every entry's mtime is normalized to.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// The root directory.
    pub fn root(&self) -> &Node {
        &self.root
    }

    /// The spool that streamed tar contents are copied into, made on first use.
    pub fn spool(&mut self) -> Result<std::sync::Arc<Spool>, FsTreeError> {
        if self.spool.is_none() {
            let spool = Spool::new().map_err(|source| FsTreeError::Io { path: "(spool in $TMPDIR)".into(), source })?;
            self.spool = Some(std::sync::Arc::new(spool));
        }
        Ok(self.spool.clone().expect("set above"))
    }

    /// Puts `node` at `path` with overlay semantics: a directory over a directory takes
    /// the new metadata and keeps the children; anything else replaces what was there
    /// (a whole subtree included). Missing parents are created as directories 0755 0:0
    /// and take their own metadata when their entry arrives later. The mtime becomes the
    /// tree's epoch.
    ///
    /// ```
    /// use forge_engine::fstree::{FsTree, Kind, Node};
    /// use std::collections::BTreeMap;
    ///
    /// let mut tree = FsTree::new(0);
    /// tree.write("/var/empty/x", "", 0o600)?;                 // /var/empty made implicitly
    /// let mut dir = Node::new(Kind::Dir(BTreeMap::new()), 0o555);
    /// dir.meta.uid = 22;
    /// tree.insert("/var/empty", dir)?;                       // its own entry fixes it up
    /// let node = tree.get("/var/empty").unwrap();
    /// assert_eq!((node.meta.mode, node.meta.uid, node.children().count()), (0o555, 22, 1));
    /// # Ok::<(), forge_engine::fstree::FsTreeError>(())
    /// ```
    pub fn insert(&mut self, path: impl AsRef<[u8]>, mut node: Node) -> Result<(), FsTreeError> {
        let path = TreePath::parse(path)?;
        node.meta.mtime = self.epoch;
        node.meta.mode &= 0o7777;
        self.check_kind(&path, &mut node)?;
        let Some((parent, name)) = path.parent_and_name() else {
            return self.replace_root(node, &path);
        };
        let dir = self.dir_mut_creating(parent, &path)?;
        match dir.get_mut(name) {
            Some(old) if old.is_dir() && node.is_dir() => old.meta = node.meta,
            _ => {
                dir.insert(name.to_vec(), node);
            }
        }
        Ok(())
    }

    fn replace_root(&mut self, node: Node, path: &TreePath) -> Result<(), FsTreeError> {
        if !node.is_dir() {
            return Err(FsTreeError::InvalidPath { path: path.display(), reason: "the root must be a directory" });
        }
        self.root.meta = node.meta;
        Ok(())
    }

    /// Validates a new node; a hard link takes its target's metadata and points at the
    /// final target (never at another hard link).
    fn check_kind(&self, path: &TreePath, node: &mut Node) -> Result<(), FsTreeError> {
        match &node.kind {
            Kind::Symlink(t) if t.is_empty() => Err(FsTreeError::EmptySymlink { path: path.display() }),
            Kind::Hardlink(target) => {
                let err = |reason| FsTreeError::Hardlink { path: path.display(), target: target.display(), reason };
                let resolved = self.resolve_hardlink(target).ok_or_else(|| err("the target does not exist"))?;
                if resolved == *path {
                    return Err(err("a hard link cannot point at itself"));
                }
                let t = self.get_path(&resolved).ok_or_else(|| err("the target does not exist"))?;
                if t.is_dir() {
                    return Err(err("the target is a directory"));
                }
                node.meta = t.meta.clone();
                node.kind = Kind::Hardlink(resolved);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Follows hard links to the entry that holds the data; `None` when one is missing.
    pub fn resolve_hardlink(&self, path: &TreePath) -> Option<TreePath> {
        let mut p = path.clone();
        for _ in 0..64 {
            match &self.get_path(&p)?.kind {
                Kind::Hardlink(t) => p = t.clone(),
                _ => return Some(p),
            }
        }
        None
    }

    /// The entry that holds the data for `node` at `path`: itself, or for a hard link the
    /// entry it names (which must still exist and not be a directory).
    pub fn data_node<'a>(&'a self, path: &TreePath, node: &'a Node) -> Result<(TreePath, &'a Node), FsTreeError> {
        let Kind::Hardlink(target) = &node.kind else { return Ok((path.clone(), node)) };
        let err = |reason| FsTreeError::Hardlink { path: path.display(), target: target.display(), reason };
        let resolved = self.resolve_hardlink(target).ok_or_else(|| err("the target is gone"))?;
        match self.get_path(&resolved) {
            Some(n) if !n.is_dir() => Ok((resolved, n)),
            Some(_) => Err(err("the target is now a directory")),
            None => Err(err("the target is gone")),
        }
    }

    /// Paths that some hard link points at (after resolution), so writers know which
    /// entries share an inode.
    pub fn hardlink_targets(&self) -> Result<std::collections::BTreeSet<TreePath>, FsTreeError> {
        let mut set = std::collections::BTreeSet::new();
        for (path, node) in self.iter() {
            if matches!(node.kind, Kind::Hardlink(_)) {
                set.insert(self.data_node(&path, node)?.0);
            }
        }
        Ok(set)
    }

    fn dir_mut_creating(
        &mut self,
        parent: &[Vec<u8>],
        path: &TreePath,
    ) -> Result<&mut BTreeMap<Vec<u8>, Node>, FsTreeError> {
        let epoch = self.epoch;
        let mut node = &mut self.root;
        for (depth, name) in parent.iter().enumerate() {
            let Kind::Dir(children) = &mut node.kind else { unreachable!("checked before descending") };
            let child = children
                .entry(name.clone())
                .or_insert_with(|| Node { meta: Meta::new(0o755, epoch), kind: Kind::Dir(BTreeMap::new()) });
            if !child.is_dir() {
                let parent = TreePath(parent[..=depth].to_vec()).display();
                return Err(FsTreeError::NotADirectory { path: path.display(), parent });
            }
            node = child;
        }
        match &mut node.kind {
            Kind::Dir(children) => Ok(children),
            _ => unreachable!("only directories are descended into"),
        }
    }

    /// The entry at `path`, if any.
    pub fn get(&self, path: impl AsRef<[u8]>) -> Option<&Node> {
        self.get_path(&TreePath::parse(path).ok()?)
    }

    /// The entry at a parsed path, if any.
    pub fn get_path(&self, path: &TreePath) -> Option<&Node> {
        let mut node = &self.root;
        for name in path.components() {
            match &node.kind {
                Kind::Dir(children) => node = children.get(name)?,
                _ => return None,
            }
        }
        Some(node)
    }

    fn get_mut_path(&mut self, path: &TreePath) -> Option<&mut Node> {
        let mut node = &mut self.root;
        for name in path.components() {
            match &mut node.kind {
                Kind::Dir(children) => node = children.get_mut(name)?,
                _ => return None,
            }
        }
        Some(node)
    }

    /// The entry whose metadata a change at `path` must touch: hard links share their
    /// target's, so the target changes (and the links are brought in line when written).
    fn meta_target(&mut self, path: impl AsRef<[u8]>) -> Result<&mut Node, FsTreeError> {
        let parsed = TreePath::parse(path)?;
        let not_found = || FsTreeError::NotFound { path: parsed.display() };
        let target = self.resolve_hardlink(&parsed).ok_or_else(not_found)?;
        self.get_mut_path(&target).ok_or_else(not_found)
    }

    /// Creates `path` and its missing parents as directories with `mode`, owned by 0:0;
    /// directories that exist keep their metadata. Fails if a component is not a directory.
    pub fn mkdir_p(&mut self, path: impl AsRef<[u8]>, mode: u32) -> Result<(), FsTreeError> {
        let path = TreePath::parse(path)?;
        let mut prefix = TreePath::default();
        for name in path.components() {
            prefix.push(name);
            match self.get_path(&prefix) {
                Some(n) if n.is_dir() => {}
                Some(_) => return Err(FsTreeError::NotADirectory { path: path.display(), parent: prefix.display() }),
                None => self.insert(prefix.to_relative_bytes(), Node::new(Kind::Dir(BTreeMap::new()), mode))?,
            }
        }
        Ok(())
    }

    /// Writes a regular file owned by 0:0, replacing whatever was at `path`.
    pub fn write(&mut self, path: impl AsRef<[u8]>, content: impl Into<Content>, mode: u32) -> Result<(), FsTreeError> {
        self.insert(path, Node::new(Kind::File(content.into()), mode))
    }

    /// Creates a symlink (mode 0777, owner 0:0) pointing at `target`, stored verbatim.
    pub fn symlink(&mut self, path: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Result<(), FsTreeError> {
        self.insert(path, Node::new(Kind::Symlink(target.as_ref().to_vec()), 0o777))
    }

    /// Makes `path` another name for the existing non-directory entry at `target`.
    pub fn hardlink(&mut self, path: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Result<(), FsTreeError> {
        let target = TreePath::parse(target)?;
        self.insert(path, Node::new(Kind::Hardlink(target), 0))
    }

    /// Creates a device node or fifo owned by 0:0.
    pub fn mknod(&mut self, path: impl AsRef<[u8]>, special: Special, mode: u32) -> Result<(), FsTreeError> {
        self.insert(path, Node::new(special.into(), mode))
    }

    /// Sets the permission bits (`0o7777` at most) of an existing entry.
    pub fn chmod(&mut self, path: impl AsRef<[u8]>, mode: u32) -> Result<(), FsTreeError> {
        self.meta_target(path)?.meta.mode = mode & 0o7777;
        Ok(())
    }

    /// Sets the owner of an existing entry.
    pub fn chown(&mut self, path: impl AsRef<[u8]>, uid: u32, gid: u32) -> Result<(), FsTreeError> {
        let node = self.meta_target(path)?;
        (node.meta.uid, node.meta.gid) = (uid, gid);
        Ok(())
    }

    /// Sets an extended attribute (`security.capability`, `user.x`, ...).
    pub fn set_xattr(&mut self, path: impl AsRef<[u8]>, name: &str, value: Vec<u8>) -> Result<(), FsTreeError> {
        self.meta_target(path)?.meta.xattrs.insert(name.to_owned(), value);
        Ok(())
    }

    /// Gives a file capabilities, as `setcap TEXT PATH` would (`cap_net_raw+ep`).
    pub fn setcap(&mut self, path: impl AsRef<[u8]>, text: &str) -> Result<(), FsTreeError> {
        let value = capability_xattr(text)?;
        self.set_xattr(path, CAPABILITY_XATTR, value)
    }

    /// Removes the entry at `path` (a directory with everything under it). Returns whether
    /// there was one. The root cannot be removed.
    pub fn remove(&mut self, path: impl AsRef<[u8]>) -> Result<bool, FsTreeError> {
        let path = TreePath::parse(path)?;
        let Some((parent, name)) = path.parent_and_name() else {
            return Err(FsTreeError::InvalidPath { path: path.display(), reason: "the root cannot be removed" });
        };
        match self.get_mut_path(&TreePath(parent.to_vec())).map(|n| &mut n.kind) {
            Some(Kind::Dir(children)) => Ok(children.remove(name).is_some()),
            _ => Ok(false),
        }
    }

    /// Every entry, depth first, names in byte order, parents before children; the root
    /// comes first with the empty path.
    pub fn iter(&self) -> Iter<'_> {
        Iter { first: Some(&self.root), stack: Vec::new(), path: TreePath::default() }
    }

    /// Number of entries, the root included.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether the tree holds only its root.
    pub fn is_empty(&self) -> bool {
        self.root.children().next().is_none()
    }
}

/// Depth-first iterator over a tree; see [`FsTree::iter`].
pub struct Iter<'a> {
    first: Option<&'a Node>,
    stack: Vec<std::collections::btree_map::Iter<'a, Vec<u8>, Node>>,
    path: TreePath,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (TreePath, &'a Node);

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(root) = self.first.take() {
            if let Kind::Dir(c) = &root.kind {
                self.stack.push(c.iter());
            }
            return Some((TreePath::default(), root));
        }
        loop {
            let top = self.stack.last_mut()?;
            match top.next() {
                Some((name, node)) => {
                    // The path holds one component per open directory below the root.
                    self.path.0.truncate(self.stack.len() - 1);
                    self.path.push(name);
                    let item = (self.path.clone(), node);
                    if let Kind::Dir(c) = &node.kind {
                        self.stack.push(c.iter());
                    }
                    return Some(item);
                }
                None => {
                    self.stack.pop();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
