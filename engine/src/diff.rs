//! Comparing two root filesystems: store paths or directories, tarballs, ext4 images (raw
//! or Android sparse) or manifests, entry by entry.
//!
//! Both sides are brought to the common form of manifest entries (docs/manifest.md), so
//! a tarball, the image made from it and its manifest file compare equal. When both sides
//! still hold file contents (everything but a manifest file), a content difference also
//! says where: the first differing lines of small text files, or the offset of the first
//! differing byte.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::ext4::{Ext4Error, Ext4Image};
use crate::fstree::{FsTree, FsTreeError, Kind, TreePath};
use crate::manifest::{self, ManifestError};
use crate::sparse::SparseError;
use crate::tar::TarError;

/// Text files up to this size get a line diff; larger ones only the first differing byte.
const TEXT_LIMIT: u64 = 64 * 1024;
/// Lines shown on each side of a text difference.
const CONTEXT_LINES: usize = 5;

/// What went wrong reading one side of a comparison. Every variant names the input.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// A side could not be read.
    #[error("{path}: cannot read it: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A manifest line is not valid.
    #[error("{path}: line {line} is not a manifest line ({why}); see docs/manifest.md")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// The line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// A side is not a directory, tarball, ext4 image or manifest.
    #[error("{path}: not a directory, tarball, ext4 image or manifest: {source}")]
    Tar {
        /// The path.
        path: PathBuf,
        /// The error of reading it as a tarball.
        source: TarError,
    },
    /// An ext4 image could not be read.
    #[error("{path}: {source}")]
    Ext4 {
        /// The image.
        path: PathBuf,
        /// The error.
        source: Ext4Error,
    },
    /// A sparse image could not be read.
    #[error("{path}: {source}")]
    Sparse {
        /// The image.
        path: PathBuf,
        /// The error.
        source: SparseError,
    },
    /// A directory could not be read as a tree.
    #[error("{path}: {source}")]
    Tree {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: FsTreeError,
    },
    /// A tree could not be listed.
    #[error("{path}: {source}")]
    Listing {
        /// The path.
        path: PathBuf,
        /// The error.
        source: ManifestError,
    },
}

/// One path's manifest fields; optional fields are those its type does not carry.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Entry {
    /// `file`, `dir`, `symlink`, `hardlink`, `char`, `block` or `fifo`.
    pub kind: String,
    /// Permission bits, four octal digits as in the manifest (`0755`).
    pub mode: String,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// A regular file's size in bytes.
    pub size: Option<u64>,
    /// A regular file's sha256, in hex.
    pub sha256: Option<String>,
    /// A symlink's target, escaped as in the manifest.
    pub target: Option<String>,
    /// A hard link's first path.
    pub link: Option<String>,
    /// A device's `MAJOR,MINOR`.
    pub dev: Option<String>,
    /// Extended attributes by name: `security.capability` as capability text
    /// (`cap_net_raw+ep`), any other as lower-case hex.
    pub xattrs: BTreeMap<String, String>,
}

/// One side of a comparison: its entries by (escaped) path, and the tree when contents
/// are available.
pub struct Side {
    /// Entries by path as the manifest writes it.
    pub entries: BTreeMap<String, Entry>,
    tree: Option<FsTree>,
    // A sparse image expanded for reading; lives as long as the tree reading it.
    _expanded: Option<tempfile::NamedTempFile>,
}

/// The aspect of an entry a [`Difference`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Aspect {
    /// The path exists only on the second side.
    Added,
    /// The path exists only on the first side.
    Removed,
    /// The kind differs (file, dir, symlink...).
    Type,
    /// A file's content differs.
    Content,
    /// Permission bits differ.
    Mode,
    /// uid or gid differ.
    Owner,
    /// Extended attributes differ.
    Xattr,
    /// A symlink's target differs.
    Target,
    /// Hardlink grouping differs.
    Link,
    /// A device node's numbers differ.
    Device,
}

impl Aspect {
    fn name(self) -> &'static str {
        match self {
            Aspect::Added => "added",
            Aspect::Removed => "removed",
            Aspect::Type => "type",
            Aspect::Content => "content",
            Aspect::Mode => "mode",
            Aspect::Owner => "owner",
            Aspect::Xattr => "xattr",
            Aspect::Target => "target",
            Aspect::Link => "link",
            Aspect::Device => "dev",
        }
    }
}

/// One way an entry differs between the two sides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The path, relative to the tree's root.
    pub path: String,
    /// What differs.
    pub aspect: Aspect,
    /// The value on the first side (empty for `added`).
    pub old: String,
    /// The value on the second side (empty for `removed`).
    pub new: String,
    /// Where contents differ: `first differing byte at offset N`, or unified-style lines
    /// (`@@ line N @@`, `-old`, `+new`) for small text files. Empty when unknown.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub detail: Vec<String>,
}

impl std::fmt::Display for Difference {
    /// `path: mode 0755 -> 0644`, then the detail lines indented by two spaces.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.aspect {
            Aspect::Added => write!(f, "{}: added {}", self.path, self.new)?,
            Aspect::Removed => write!(f, "{}: removed {}", self.path, self.old)?,
            a => write!(f, "{}: {} {} -> {}", self.path, a.name(), self.old, self.new)?,
        }
        for line in &self.detail {
            write!(f, "\n  {line}")?;
        }
        Ok(())
    }
}

/// Reads `path` (a directory, a tarball, a raw or sparse ext4 image, or a manifest file,
/// told apart by their magic numbers) into a [`Side`].
pub fn load(path: &Path) -> Result<Side, DiffError> {
    let read_err = |source| DiffError::Read { path: path.to_path_buf(), source };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.is_dir() {
        let mut tree = FsTree::new(0);
        tree.add_dir(path, "/").map_err(|source| DiffError::Tree { path: path.to_path_buf(), source })?;
        return from_tree(path, tree, None);
    }
    let mut head = Vec::new();
    std::fs::File::open(path).and_then(|f| f.take(2048).read_to_end(&mut head)).map_err(read_err)?;
    if head.starts_with(b"/ ") {
        let text = std::fs::read_to_string(path).map_err(read_err)?;
        let entries =
            parse_manifest(&text).map_err(|(line, why)| DiffError::Manifest { path: path.to_path_buf(), line, why })?;
        return Ok(Side { entries, tree: None, _expanded: None });
    }
    if crate::sparse::is_sparse(&head) {
        let tmp = tempfile::NamedTempFile::new().map_err(read_err)?;
        crate::sparse::unsparse(path, tmp.path())
            .map_err(|source| DiffError::Sparse { path: path.to_path_buf(), source })?;
        let tree = ext4_tree(path, tmp.path())?;
        return from_tree(path, tree, Some(tmp));
    }
    if head.get(1080..1082) == Some(&[0x53, 0xEF][..]) {
        let tree = ext4_tree(path, path)?;
        return from_tree(path, tree, None);
    }
    let mut tree = FsTree::new(0);
    tree.add_tar_file(path).map_err(|source| DiffError::Tar { path: path.to_path_buf(), source })?;
    from_tree(path, tree, None)
}

fn ext4_tree(input: &Path, image: &Path) -> Result<FsTree, DiffError> {
    let err = |source| DiffError::Ext4 { path: input.to_path_buf(), source };
    Ext4Image::open_file(image).and_then(|img| img.to_fstree(image, 0)).map_err(err)
}

fn from_tree(path: &Path, tree: FsTree, expanded: Option<tempfile::NamedTempFile>) -> Result<Side, DiffError> {
    let mut side = Side::from_tree_named(path, tree)?;
    side._expanded = expanded;
    Ok(side)
}

impl Side {
    /// The side of an in-memory tree (its contents are available for details).
    pub fn from_tree(tree: FsTree) -> Result<Side, DiffError> {
        Side::from_tree_named(Path::new("(tree)"), tree)
    }

    fn from_tree_named(path: &Path, tree: FsTree) -> Result<Side, DiffError> {
        let text =
            manifest::manifest(&tree).map_err(|source| DiffError::Listing { path: path.to_path_buf(), source })?;
        let entries =
            parse_manifest(&text).map_err(|(line, why)| DiffError::Manifest { path: path.to_path_buf(), line, why })?;
        Ok(Side { entries, tree: Some(tree), _expanded: None })
    }

    /// The side of a manifest's text (no contents: content differences carry no detail).
    pub fn from_manifest(text: &str) -> Result<Side, (usize, String)> {
        Ok(Side { entries: parse_manifest(text)?, tree: None, _expanded: None })
    }
}

/// Parses manifest text (docs/manifest.md) into entries by path. On error, returns the
/// 1-based line number and what is wrong with it.
pub fn parse_manifest(text: &str) -> Result<BTreeMap<String, Entry>, (usize, String)> {
    let mut entries = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let (path, entry) = parse_line(line).map_err(|why| (i + 1, why))?;
        if entries.insert(path.clone(), entry).is_some() {
            return Err((i + 1, format!("{path} is listed twice")));
        }
    }
    Ok(entries)
}

fn parse_line(line: &str) -> Result<(String, Entry), String> {
    let mut fields = line.split(' ');
    let mut next = |what: &str| fields.next().filter(|f| !f.is_empty()).ok_or(format!("no {what}"));
    let path = next("path")?.to_string();
    let kind = next("type")?.to_string();
    let mode = next("mode")?.to_string();
    let number = |s: &str, what: &str| s.parse::<u32>().map_err(|_| format!("{what} {s:?} is not a number"));
    let uid = number(next("uid")?, "uid")?;
    let gid = number(next("gid")?, "gid")?;
    if !path.starts_with('/') || u32::from_str_radix(&mode, 8).is_err() || mode.len() != 4 {
        return Err(format!("path {path:?} or mode {mode:?} is malformed"));
    }
    let mut e = Entry { kind, mode, uid, gid, ..Entry::default() };
    for field in fields {
        let (key, value) = field.split_once('=').ok_or(format!("field {field:?} has no `=`"))?;
        let value = value.to_string();
        match key {
            "size" => e.size = Some(value.parse().map_err(|_| format!("size {value:?} is not a number"))?),
            "sha256" => e.sha256 = Some(value),
            "target" => e.target = Some(value),
            "link" => e.link = Some(value),
            "dev" => e.dev = Some(value),
            "cap" => {
                e.xattrs.insert(crate::fstree::CAPABILITY_XATTR.to_string(), value);
            }
            _ => match key.strip_prefix("xattr.") {
                Some(name) => {
                    e.xattrs.insert(name.to_string(), value);
                }
                None => return Err(format!("unknown field {key:?}")),
            },
        }
    }
    Ok((path, e))
}

/// Every difference between `a` and `b`, sorted by path, then by aspect.
pub fn diff(a: &Side, b: &Side) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut paths: Vec<&String> = a.entries.keys().chain(b.entries.keys()).collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        match (a.entries.get(path), b.entries.get(path)) {
            (Some(x), None) => out.push(difference(path, Aspect::Removed, &x.kind, "")),
            (None, Some(y)) => out.push(difference(path, Aspect::Added, "", &y.kind)),
            (Some(x), Some(y)) => entry_differences(path, x, y, a, b, &mut out),
            (None, None) => {}
        }
    }
    out
}

fn difference(path: &str, aspect: Aspect, old: &str, new: &str) -> Difference {
    Difference { path: path.to_string(), aspect, old: old.to_string(), new: new.to_string(), detail: Vec::new() }
}

fn entry_differences(path: &str, x: &Entry, y: &Entry, a: &Side, b: &Side, out: &mut Vec<Difference>) {
    if x.kind != y.kind {
        out.push(difference(path, Aspect::Type, &x.kind, &y.kind));
    } else {
        if x.size != y.size || x.sha256 != y.sha256 {
            let mut d = difference(path, Aspect::Content, &content_text(x), &content_text(y));
            d.detail = content_detail(path, a, b);
            out.push(d);
        }
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        if x.target != y.target {
            out.push(difference(path, Aspect::Target, &opt(&x.target), &opt(&y.target)));
        }
        if x.link != y.link {
            out.push(difference(path, Aspect::Link, &opt(&x.link), &opt(&y.link)));
        }
        if x.dev != y.dev {
            out.push(difference(path, Aspect::Device, &opt(&x.dev), &opt(&y.dev)));
        }
    }
    if x.mode != y.mode {
        out.push(difference(path, Aspect::Mode, &x.mode, &y.mode));
    }
    if (x.uid, x.gid) != (y.uid, y.gid) {
        out.push(difference(path, Aspect::Owner, &format!("{}:{}", x.uid, x.gid), &format!("{}:{}", y.uid, y.gid)));
    }
    let mut names: Vec<&String> = x.xattrs.keys().chain(y.xattrs.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let (old, new) = (x.xattrs.get(name), y.xattrs.get(name));
        if old != new {
            let show = |v: Option<&String>| v.map_or("(none)".to_string(), |v| format!("{name}={v}"));
            out.push(difference(path, Aspect::Xattr, &show(old), &show(new)));
        }
    }
}

fn content_text(e: &Entry) -> String {
    let sha = e.sha256.as_deref().unwrap_or("");
    format!("size={} sha256={}", e.size.unwrap_or(0), sha)
}

/// Reads the content of the file at the escaped manifest `path`, when the side has a tree.
pub fn content(side: &Side, path: &str) -> Option<io::Result<Vec<u8>>> {
    let tree = side.tree.as_ref()?;
    let tp = TreePath::parse(unescape(path)).ok()?;
    let node = tree.get_path(&tp)?;
    let (_, data) = tree.data_node(&tp, node).ok()?;
    match &data.kind {
        Kind::File(c) => Some(c.read_all()),
        _ => None,
    }
}

fn content_detail(path: &str, a: &Side, b: &Side) -> Vec<String> {
    let (Some(Ok(x)), Some(Ok(y))) = (content(a, path), content(b, path)) else {
        return Vec::new();
    };
    if let (Some(tx), Some(ty)) = (as_text(&x), as_text(&y)) {
        return line_diff(tx, ty);
    }
    let offset = x.iter().zip(&y).position(|(p, q)| p != q).unwrap_or(x.len().min(y.len()));
    vec![format!("first differing byte at offset {offset}")]
}

fn as_text(b: &[u8]) -> Option<&str> {
    if b.len() as u64 > TEXT_LIMIT || b.contains(&0) {
        return None;
    }
    std::str::from_utf8(b).ok()
}

/// The first run of differing lines: common leading and trailing lines trimmed, at most
/// [`CONTEXT_LINES`] shown on each side.
fn line_diff(x: &str, y: &str) -> Vec<String> {
    let (xl, yl): (Vec<&str>, Vec<&str>) = (x.split_inclusive('\n').collect(), y.split_inclusive('\n').collect());
    let start = xl.iter().zip(&yl).take_while(|(p, q)| p == q).count();
    let tail = xl[start..].iter().rev().zip(yl[start..].iter().rev()).take_while(|(p, q)| p == q).count();
    let mut out = vec![format!("@@ line {} @@", start + 1)];
    let show = |sign: char, lines: &[&str]| -> Vec<String> {
        lines.iter().take(CONTEXT_LINES).map(|l| format!("{sign}{}", l.strip_suffix('\n').unwrap_or(l))).collect()
    };
    out.extend(show('-', &xl[start..xl.len() - tail]));
    out.extend(show('+', &yl[start..yl.len() - tail]));
    out
}

/// Undoes the manifest's `\xHH` escaping of a path.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b.get(i + 2..i + 4).and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], b.get(i + 1), hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'\\', Some(b'x'), Some(v)) => {
                out.push(v);
                i += 4;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
