//! Reading tar streams into an FsTree.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use ::tar::{Archive, Entry, EntryType};

use super::TarError;
use crate::fstree::{Content, FsTree, Kind, Node, TreePath};

/// The compression a stream starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Uncompressed.
    None,
    /// gzip.
    Gzip,
    /// xz.
    Xz,
    /// zstd.
    Zstd,
}

impl Compression {
    /// Recognizes a compression by the magic number at the start of `head`.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Compression::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Wraps `input` in the decompressor its magic number calls for (gzip, xz, zstd), or
/// passes it through. Concatenated gzip members are read as one stream.
pub fn decompress<'a>(mut input: impl Read + 'a) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut head = Vec::with_capacity(6);
    (&mut input).take(6).read_to_end(&mut head)?;
    let kind = Compression::detect(&head);
    let whole = io::Cursor::new(head).chain(input);
    let reader: Box<dyn Read + 'a> = match kind {
        Compression::None => Box::new(whole),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(whole)),
        Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(whole)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(whole)?),
    };
    Ok((kind, reader))
}

impl FsTree {
    /// Layers a tar stream (plain, gzip, xz or zstd) into the tree, later entries winning.
    /// File contents are copied into the tree's spool (a temporary file), never held in
    /// memory. `archive` names the stream in errors.
    ///
    /// ```
    /// use forge_engine::fstree::FsTree;
    /// let mut b = tar::Builder::new(Vec::new());
    /// let mut h = tar::Header::new_ustar();
    /// h.set_path("etc/motd").unwrap();
    /// h.set_size(3);
    /// h.set_mode(0o644);
    /// h.set_uid(1000);
    /// h.set_gid(1000);
    /// h.set_cksum();
    /// b.append(&h, &b"hi\n"[..]).unwrap();
    /// let tar = b.into_inner().unwrap();
    ///
    /// let mut tree = FsTree::new(0);
    /// tree.add_tar(&tar[..], "motd.tar").unwrap();
    /// let motd = tree.get("/etc/motd").unwrap();
    /// assert_eq!(motd.meta.uid, 1000);
    /// ```
    pub fn add_tar(&mut self, input: impl Read, archive: &str) -> Result<(), TarError> {
        let io = |source| TarError::Io { archive: archive.to_owned(), source };
        let (_, reader) = decompress(input).map_err(io)?;
        let spool = self.spool().map_err(|source| TarError::Tree { archive: archive.to_owned(), source })?;
        let mut ar = Archive::new(reader);
        for entry in ar.entries().map_err(io)? {
            let mut entry = entry.map_err(io)?;
            let read = |e: &mut Entry<'_, _>| {
                let (offset, size) = spool.append(e)?;
                Ok(Content::Spool { spool: spool.clone(), offset, size })
            };
            add_entry(self, &mut entry, archive, read)?;
        }
        Ok(())
    }

    /// Layers a tar file into the tree. An uncompressed tar is not copied: file contents
    /// are referenced as ranges of the archive, which must stay in place until the tree is
    /// written. A compressed one is streamed through the spool like [`FsTree::add_tar`].
    pub fn add_tar_file(&mut self, path: &Path) -> Result<(), TarError> {
        let archive = path.display().to_string();
        let io = |source| TarError::Io { archive: archive.clone(), source };
        let mut file = File::open(path).map_err(io)?;
        let mut head = Vec::new();
        (&mut file).take(6).read_to_end(&mut head).map_err(io)?;
        if Compression::detect(&head) != Compression::None {
            return self.add_tar(File::open(path).map_err(io)?, &archive);
        }
        let shared: Arc<Path> = path.into();
        let mut ar = Archive::new(File::open(path).map_err(io)?);
        let spool = self.spool().map_err(|source| TarError::Tree { archive: archive.clone(), source })?;
        for entry in ar.entries_with_seek().map_err(io)? {
            let mut entry = entry.map_err(io)?;
            let read = |e: &mut Entry<'_, _>| {
                if e.header().entry_type().is_gnu_sparse() {
                    let (offset, size) = spool.append(e)?;
                    return Ok(Content::Spool { spool: spool.clone(), offset, size });
                }
                Ok(Content::File { path: shared.clone(), offset: e.raw_file_position(), size: e.size() })
            };
            add_entry(self, &mut entry, &archive, read)?;
        }
        Ok(())
    }
}

/// Turns one tar member into a tree entry. `content` produces a regular file's content.
fn add_entry<'a, R: Read + 'a>(
    tree: &mut FsTree,
    entry: &mut Entry<'a, R>,
    archive: &str,
    content: impl FnOnce(&mut Entry<'a, R>) -> io::Result<Content>,
) -> Result<(), TarError> {
    let raw_path = entry.path_bytes().into_owned();
    let name = String::from_utf8_lossy(&raw_path).into_owned();
    let bad = |reason: String| TarError::Entry { archive: archive.to_owned(), entry: name.clone(), reason };
    let io = |source: io::Error| bad(source.to_string());
    let etype = entry.header().entry_type();
    if matches!(etype, EntryType::XGlobalHeader) {
        return Ok(());
    }
    let link = || entry.link_name_bytes().map(|l| l.into_owned()).ok_or_else(|| bad("it has no link target".into()));
    let device = |e: &Entry<'a, R>| -> Result<(u32, u32), TarError> {
        let h = e.header();
        Ok((h.device_major().map_err(io)?.unwrap_or(0), h.device_minor().map_err(io)?.unwrap_or(0)))
    };
    let kind = match etype {
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => None,
        EntryType::Directory => Some(Kind::Dir(BTreeMap::new())),
        EntryType::Symlink => Some(Kind::Symlink(link()?)),
        EntryType::Link => Some(Kind::Hardlink(TreePath::parse(link()?).map_err(|e| bad(e.to_string()))?)),
        EntryType::Char => device(entry).map(|(major, minor)| Some(Kind::Char { major, minor }))?,
        EntryType::Block => device(entry).map(|(major, minor)| Some(Kind::Block { major, minor }))?,
        EntryType::Fifo => Some(Kind::Fifo),
        other => return Err(bad(format!("unsupported entry type {:?}", other.as_byte() as char))),
    };
    let header = entry.header();
    let mode = header.mode().map_err(io)? & 0o7777;
    let uid = u32::try_from(header.uid().map_err(io)?).map_err(|_| bad("uid does not fit 32 bits".into()))?;
    let gid = u32::try_from(header.gid().map_err(io)?).map_err(|_| bad("gid does not fit 32 bits".into()))?;
    let xattrs = read_xattrs(entry).map_err(io)?;
    let kind = match kind {
        Some(k) => k,
        None => Kind::File(content(entry).map_err(io)?),
    };
    let mut node = Node::new(kind, mode);
    (node.meta.uid, node.meta.gid, node.meta.xattrs) = (uid, gid, xattrs);
    tree.insert(&raw_path, node).map_err(|source| TarError::Tree { archive: archive.to_owned(), source })
}

/// `SCHILY.xattr.NAME` PAX records, as GNU tar and bsdtar write them.
fn read_xattrs<R: Read>(entry: &mut Entry<'_, R>) -> io::Result<BTreeMap<String, Vec<u8>>> {
    let mut xattrs = BTreeMap::new();
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            if let Some(name) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                xattrs.insert(name.to_owned(), ext.value_bytes().to_vec());
            }
        }
    }
    Ok(xattrs)
}
