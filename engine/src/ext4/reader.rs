//! A bounds-checked ext4 reader: superblock, group descriptors, inodes, extent trees,
//! directories, symlinks, device numbers and xattrs. Hostile images give an error, never
//! a panic, an endless loop or an allocation the image does not justify.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::disk::*;
use super::xattr;
use super::Ext4Error;
use crate::fstree::{Content, FsTree, Kind, Node, Run, TreePath};

/// A source of image bytes read by position.
pub trait ReadAt {
    /// Fills `buf` from `offset`, failing if the source ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// The source's length in bytes.
    fn len(&self) -> u64;
    /// Whether the source is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ReadAt for File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }
    fn len(&self) -> u64 {
        self.metadata().map(|m| m.len()).unwrap_or(0)
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let src = start.checked_add(buf.len()).and_then(|end| self.get(start..end));
        buf.copy_from_slice(src.ok_or(io::ErrorKind::UnexpectedEof)?);
        Ok(())
    }
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
}

/// The superblock fields the reader uses.
#[derive(Clone, Debug)]
struct Super {
    blocks: u64,
    block_size: u64,
    first_data_block: u64,
    blocks_per_group: u64,
    inodes_per_group: u64,
    inodes: u64,
    inode_size: u64,
    desc_size: u64,
    groups: u64,
}

/// Where one group's bitmaps and inode table are.
#[derive(Clone, Copy, Debug)]
struct Group {
    block_bitmap: u64,
    inode_table: u64,
    /// EXT4_BG_BLOCK_UNINIT: the bitmap on disk was never written.
    block_uninit: bool,
}

/// What an inode is, as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageKind {
    /// A regular file.
    File {
        /// Its size in bytes.
        size: u64,
        /// Where its blocks are in the image.
        runs: Vec<Run>,
    },
    /// A directory.
    Dir,
    /// A symlink and its target.
    Symlink(Vec<u8>),
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
    /// A unix socket.
    Socket,
}

/// One path of the image with its inode's metadata.
#[derive(Clone, Debug)]
pub struct ImageEntry {
    /// The path, relative to the root.
    pub path: TreePath,
    /// Its inode number (hard links share one).
    pub ino: u32,
    /// Permission bits.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// What it is.
    pub kind: ImageKind,
    /// Extended attributes by full name (`security.capability`, ...).
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

/// An opened ext4 image.
pub struct Ext4Image<R: ReadAt + ?Sized> {
    sb: Super,
    groups: Vec<Group>,
    src: Box<R>,
}

/// Upper bounds that keep hostile images from making the reader loop or allocate forever.
const MAX_EXTENT_NODES: usize = 1 << 14;
const MAX_EXTENTS: usize = 1 << 20;
const MAX_DEPTH: u16 = 5;
const MAX_ENTRIES: usize = 1 << 22;

fn corrupt(reason: impl Into<String>) -> Ext4Error {
    Ext4Error::corrupt(reason)
}

impl<R: ReadAt + ?Sized> Ext4Image<R> {
    /// Reads and checks the superblock and group descriptors.
    pub fn open(src: Box<R>) -> Result<Ext4Image<R>, Ext4Error> {
        let mut raw = vec![0u8; 1024];
        src.read_exact_at(&mut raw, 1024).map_err(|_| corrupt("too short for a superblock"))?;
        let sb = parse_super(&raw)?;
        if sb.blocks.checked_mul(sb.block_size).is_none_or(|n| n > src.len()) {
            return Err(corrupt(format!("the image is shorter than its {} blocks", sb.blocks)));
        }
        let mut img = Ext4Image { sb, groups: Vec::new(), src };
        img.groups = img.read_groups()?;
        Ok(img)
    }

    fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, Ext4Error> {
        if offset.checked_add(len as u64).is_none_or(|end| end > self.src.len()) {
            return Err(corrupt(format!("a read of {len} bytes at {offset} is past the end of the image")));
        }
        let mut buf = vec![0u8; len];
        self.src.read_exact_at(&mut buf, offset).map_err(|e| corrupt(format!("reading at {offset}: {e}")))?;
        Ok(buf)
    }

    fn block(&self, n: u64) -> Result<Vec<u8>, Ext4Error> {
        if n >= self.sb.blocks {
            return Err(corrupt(format!("block {n} is past the filesystem's {} blocks", self.sb.blocks)));
        }
        self.read(n * self.sb.block_size, self.sb.block_size as usize)
    }

    fn read_groups(&self) -> Result<Vec<Group>, Ext4Error> {
        let sb = &self.sb;
        let gdt_start = (sb.first_data_block + 1) * sb.block_size;
        let bytes = self.read(gdt_start, (sb.groups * sb.desc_size) as usize)?;
        let mut groups = Vec::with_capacity(sb.groups as usize);
        for g in 0..sb.groups as usize {
            let d = &bytes[g * sb.desc_size as usize..];
            let hi = |off| if sb.desc_size >= 64 { u64::from(get32(d, off).unwrap_or(0)) << 32 } else { 0 };
            let lo = |off| u64::from(get32(d, off).unwrap_or(0));
            let block_uninit = get16(d, 0x12).unwrap_or(0) & 0x2 != 0;
            let group = Group { block_bitmap: lo(0) | hi(0x20), inode_table: lo(8) | hi(0x28), block_uninit };
            if group.block_bitmap >= sb.blocks || group.inode_table >= sb.blocks {
                return Err(corrupt(format!("group {g} points past the end of the filesystem")));
            }
            groups.push(group);
        }
        Ok(groups)
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u64 {
        self.sb.block_size
    }

    /// Blocks in the filesystem.
    pub fn blocks(&self) -> u64 {
        self.sb.blocks
    }

    /// Whether each block is in use according to the block bitmaps (one flag a block).
    /// Groups whose bitmap was never initialized count as wholly in use.
    pub fn used_blocks(&self) -> Result<Vec<bool>, Ext4Error> {
        let mut used = vec![true; self.sb.blocks as usize];
        for (g, group) in self.groups.iter().enumerate().filter(|(_, g)| !g.block_uninit) {
            let bitmap = self.block(group.block_bitmap)?;
            let first = self.sb.first_data_block + g as u64 * self.sb.blocks_per_group;
            for i in 0..self.sb.blocks_per_group.min(bitmap.len() as u64 * 8) {
                let Some(slot) = used.get_mut((first + i) as usize) else { break };
                *slot = bitmap[(i / 8) as usize] >> (i % 8) & 1 == 1;
            }
        }
        Ok(used)
    }

    /// The raw bytes of inode `ino`.
    fn inode(&self, ino: u32) -> Result<Vec<u8>, Ext4Error> {
        let ino64 = u64::from(ino);
        if ino == 0 || ino64 > self.sb.inodes {
            return Err(corrupt(format!("inode {ino} is out of range")));
        }
        let g = (ino64 - 1) / self.sb.inodes_per_group;
        let index = (ino64 - 1) % self.sb.inodes_per_group;
        let group = self.groups.get(g as usize).ok_or_else(|| corrupt(format!("inode {ino} has no group")))?;
        let at = group.inode_table * self.sb.block_size + index * self.sb.inode_size;
        self.read(at, self.sb.inode_size as usize)
    }

    /// Every path from the root, depth first with names in byte order; the root first.
    pub fn entries(&self) -> Result<Vec<ImageEntry>, Ext4Error> {
        let mut out = Vec::new();
        let mut seen_dirs = HashSet::new();
        let mut stack = vec![(TreePath::default(), ROOT_INO)];
        while let Some((path, ino)) = stack.pop() {
            if out.len() >= MAX_ENTRIES {
                return Err(corrupt("more entries than any image this reader accepts"));
            }
            let entry = self.entry(path, ino)?;
            if entry.kind == ImageKind::Dir {
                if !seen_dirs.insert(ino) {
                    return Err(corrupt(format!("directory inode {ino} appears twice (a loop)")));
                }
                let mut children = self.read_dir(&entry)?;
                children.sort();
                for (name, child) in children.into_iter().rev() {
                    let mut p = entry.path.to_relative_bytes();
                    if !p.is_empty() {
                        p.push(b'/');
                    }
                    p.extend_from_slice(&name);
                    stack.push((TreePath::parse(&p).map_err(|e| corrupt(e.to_string()))?, child));
                }
            } else if entry.path.is_root() {
                return Err(corrupt("the root inode is not a directory"));
            }
            out.push(entry);
        }
        Ok(out)
    }

    fn entry(&self, path: TreePath, ino: u32) -> Result<ImageEntry, Ext4Error> {
        let raw = self.inode(ino)?;
        let at = |off| get32(&raw, off).unwrap_or(0);
        let mode16 = get16(&raw, 0).unwrap_or(0);
        let flags = at(0x20);
        let size = u64::from(at(0x04)) | u64::from(at(0x6C)) << 32;
        let uid = u32::from(get16(&raw, 2).unwrap_or(0)) | u32::from(get16(&raw, 0x78).unwrap_or(0)) << 16;
        let gid = u32::from(get16(&raw, 0x18).unwrap_or(0)) | u32::from(get16(&raw, 0x7A).unwrap_or(0)) << 16;
        let bad = |what: &str| corrupt(format!("inode {ino} ({}): {what}", path.display()));
        if flags & INLINE_DATA_FL != 0 {
            return Err(bad("inline data is not supported"));
        }
        let kind = match mode16 & S_IFMT {
            S_IFREG => ImageKind::File { size, runs: self.runs(&raw, size, ino)? },
            S_IFDIR => ImageKind::Dir,
            S_IFLNK => ImageKind::Symlink(self.symlink(&raw, size, ino)?),
            S_IFCHR | S_IFBLK => {
                let (major, minor) = decode_dev(at(0x28), at(0x2C));
                if mode16 & S_IFMT == S_IFCHR {
                    ImageKind::Char { major, minor }
                } else {
                    ImageKind::Block { major, minor }
                }
            }
            S_IFIFO => ImageKind::Fifo,
            S_IFSOCK => ImageKind::Socket,
            _ => return Err(bad("unknown file type")),
        };
        let xattrs = self.xattrs(&raw, ino)?;
        Ok(ImageEntry { path, ino, mode: u32::from(mode16 & 0o7777), uid, gid, kind, xattrs })
    }

    fn xattrs(&self, raw: &[u8], ino: u32) -> Result<BTreeMap<String, Vec<u8>>, Ext4Error> {
        let bad = |e: String| corrupt(format!("inode {ino}: {e}"));
        let mut out = BTreeMap::new();
        let extra = usize::from(get16(raw, 0x80).unwrap_or(0));
        let start = GOOD_OLD_INODE_SIZE + extra;
        if raw.len() > GOOD_OLD_INODE_SIZE && start + 4 <= raw.len() && get32(raw, start) == Some(xattr::MAGIC) {
            out.extend(xattr::parse(&raw[start + 4..], 0).map_err(bad)?);
        }
        let block = u64::from(get32(raw, 0x68).unwrap_or(0)) | u64::from(get16(raw, 0x76).unwrap_or(0)) << 32;
        if block != 0 {
            let b = self.block(block)?;
            if get32(&b, 0) != Some(xattr::MAGIC) {
                return Err(bad(format!("xattr block {block} has a bad magic")));
            }
            out.extend(xattr::parse(&b, 32).map_err(bad)?);
        }
        Ok(out)
    }

    fn symlink(&self, raw: &[u8], size: u64, ino: u32) -> Result<Vec<u8>, Ext4Error> {
        if size >= self.sb.block_size || size == 0 {
            return Err(corrupt(format!("inode {ino}: symlink of {size} bytes")));
        }
        let flags = get32(raw, 0x20).unwrap_or(0);
        if size < 60 && flags & EXTENTS_FL == 0 {
            return Ok(raw[0x28..0x28 + size as usize].to_vec());
        }
        let runs = self.runs(raw, size, ino)?;
        let run = runs.first().ok_or_else(|| corrupt(format!("inode {ino}: symlink without a block")))?;
        self.read(run.physical, size as usize)
    }

    /// The extents of a file as byte runs; `size` bounds them.
    fn runs(&self, raw: &[u8], size: u64, ino: u32) -> Result<Vec<Run>, Ext4Error> {
        if get32(raw, 0x20).unwrap_or(0) & EXTENTS_FL == 0 {
            if size == 0 {
                return Ok(Vec::new());
            }
            return Err(corrupt(format!("inode {ino}: block-mapped (non-extent) files are not supported")));
        }
        let mut extents = Vec::new();
        let mut budget = MAX_EXTENT_NODES;
        self.walk_extents(&raw[0x28..0x28 + 60], MAX_DEPTH + 1, &mut extents, &mut budget, ino)?;
        extents.sort_by_key(|e: &Extent| e.logical);
        let bs = self.sb.block_size;
        let mut runs = Vec::new();
        let mut end = 0u64;
        for e in extents {
            let logical = u64::from(e.logical) * bs;
            if logical < end {
                return Err(corrupt(format!("inode {ino}: overlapping extents")));
            }
            if e.start.checked_add(u64::from(e.len)).is_none_or(|last| last > self.sb.blocks) {
                return Err(corrupt(format!("inode {ino}: an extent points past the filesystem")));
            }
            let len = (u64::from(e.len) * bs).min(size.saturating_sub(logical));
            if len > 0 {
                runs.push(Run { logical, physical: e.start * bs, len });
            }
            end = logical + u64::from(e.len) * bs;
        }
        Ok(runs)
    }

    fn walk_extents(
        &self,
        node: &[u8],
        depth_left: u16,
        out: &mut Vec<Extent>,
        budget: &mut usize,
        ino: u32,
    ) -> Result<(), Ext4Error> {
        // Each node is a block read: the budget bounds the work a looping tree can cause.
        let bad = |what: &str| corrupt(format!("inode {ino}: extent tree {what}"));
        *budget = budget.checked_sub(1).ok_or_else(|| bad("is too large"))?;
        if get16(node, 0) != Some(EXT_MAGIC) {
            return Err(bad("has a bad magic"));
        }
        let entries = usize::from(get16(node, 2).unwrap_or(0));
        let depth = get16(node, 6).unwrap_or(0);
        if depth >= depth_left || 12 + entries * 12 > node.len() {
            return Err(bad("is malformed"));
        }
        for i in 0..entries {
            let e = &node[12 + 12 * i..24 + 12 * i];
            let logical = get32(e, 0).unwrap_or(0);
            if depth == 0 {
                let len = get16(e, 4).unwrap_or(0);
                if u64::from(len) > EXT_MAX_LEN {
                    continue; // an uninitialized extent: a hole that reads as zeros
                }
                let start = u64::from(get16(e, 6).unwrap_or(0)) << 32 | u64::from(get32(e, 8).unwrap_or(0));
                out.push(Extent { logical, len, start });
                if out.len() > MAX_EXTENTS {
                    return Err(bad("has too many extents"));
                }
            } else {
                let leaf = u64::from(get16(e, 8).unwrap_or(0)) << 32 | u64::from(get32(e, 4).unwrap_or(0));
                let child = self.block(leaf)?;
                self.walk_extents(&child, depth, out, budget, ino)?;
            }
        }
        Ok(())
    }

    /// Names and inodes of a directory, `.` and `..` left out.
    fn read_dir(&self, dir: &ImageEntry) -> Result<Vec<(Vec<u8>, u32)>, Ext4Error> {
        let raw = self.inode(dir.ino)?;
        let size = u64::from(get32(&raw, 4).unwrap_or(0));
        let runs = self.runs(&raw, size, dir.ino)?;
        let bad = |what: &str| corrupt(format!("directory {}: {what}", dir.path.display()));
        let mut out = Vec::new();
        for run in runs {
            let data = self.read(run.physical, run.len as usize)?;
            let mut at = 0usize;
            while at + 8 <= data.len() {
                let ino = get32(&data, at).unwrap_or(0);
                let rec_len = usize::from(get16(&data, at + 4).unwrap_or(0));
                let name_len = usize::from(data[at + 6]);
                if rec_len < 8 || rec_len % 4 != 0 || at + rec_len > data.len() || 8 + name_len > rec_len {
                    return Err(bad("has a malformed entry"));
                }
                let name = &data[at + 8..at + 8 + name_len];
                if ino != 0 && name != b"." && name != b".." {
                    if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
                        return Err(bad("has an entry with an invalid name"));
                    }
                    out.push((name.to_vec(), ino));
                    if out.len() > MAX_ENTRIES {
                        return Err(bad("has too many entries"));
                    }
                }
                at += rec_len;
            }
        }
        Ok(out)
    }
}

fn parse_super(raw: &[u8]) -> Result<Super, Ext4Error> {
    let g32 = |off| u64::from(get32(raw, off).unwrap_or(0));
    if get16(raw, 0x38) != Some(SUPER_MAGIC) {
        return Err(corrupt("no ext2/3/4 superblock magic (0xEF53) at byte 1080"));
    }
    let log = g32(0x18);
    if log > 6 {
        return Err(corrupt(format!("block size 2^{} is out of range", log + 10)));
    }
    let incompat = g32(0x60);
    let is64 = incompat & 0x80 != 0;
    let blocks = g32(0x04) | if is64 { g32(0x150) << 32 } else { 0 };
    let rev = g32(0x4C);
    let inode_size = if rev == 0 { 128 } else { u64::from(get16(raw, 0x58).unwrap_or(0)) };
    let desc_size = if is64 { u64::from(get16(raw, 0xFE).unwrap_or(0)) } else { 32 };
    let sb = Super {
        blocks,
        block_size: 1024 << log,
        first_data_block: g32(0x14),
        blocks_per_group: g32(0x20),
        inodes_per_group: g32(0x28),
        inodes: g32(0x00),
        inode_size,
        desc_size,
        groups: 0,
    };
    let valid = sb.blocks_per_group > 0
        && sb.blocks_per_group <= sb.block_size * 8
        && sb.inodes_per_group > 0
        && sb.inodes_per_group <= sb.block_size * 8
        && (128..=sb.block_size).contains(&sb.inode_size)
        && sb.inode_size.is_power_of_two()
        && (32..=1024).contains(&sb.desc_size)
        && sb.desc_size.is_power_of_two()
        && sb.first_data_block < sb.blocks;
    if !valid {
        return Err(corrupt("the superblock's geometry is inconsistent"));
    }
    let groups = (sb.blocks - sb.first_data_block).div_ceil(sb.blocks_per_group);
    if groups.checked_mul(sb.inodes_per_group).is_none_or(|n| n < sb.inodes) || groups > 1 << 24 {
        return Err(corrupt("the superblock's inode count does not match its groups"));
    }
    Ok(Super { groups, ..sb })
}

impl Ext4Image<File> {
    /// Opens an image file.
    pub fn open_file(path: &Path) -> Result<Ext4Image<File>, Ext4Error> {
        let file = File::open(path).map_err(|source| Ext4Error::Io { path: path.display().to_string(), source })?;
        Ext4Image::open(Box::new(file))
    }
}

impl<R: ReadAt + ?Sized> Ext4Image<R> {
    /// The image as an FsTree whose file contents are runs of `image` (the file this
    /// image was opened from). Names sharing an inode become hard links to the first
    /// one in tree order; mtimes are normalized to `epoch` like any tree's.
    pub fn to_fstree(&self, image: &Path, epoch: i64) -> Result<FsTree, Ext4Error> {
        let mut tree = FsTree::new(epoch);
        let image: Arc<Path> = image.into();
        let mut first_path: HashMap<u32, TreePath> = HashMap::new();
        for e in self.entries()? {
            let rel = e.path.to_relative_bytes();
            if let Some(first) = first_path.get(&e.ino).filter(|_| e.kind != ImageKind::Dir) {
                tree.hardlink(&rel, first.to_relative_bytes())?;
                continue;
            }
            first_path.insert(e.ino, e.path.clone());
            let kind = match e.kind {
                ImageKind::File { size, runs } => {
                    Kind::File(Content::Runs { path: image.clone(), runs: runs.into(), size })
                }
                ImageKind::Dir => Kind::Dir(BTreeMap::new()),
                ImageKind::Symlink(t) => Kind::Symlink(t),
                ImageKind::Char { major, minor } => Kind::Char { major, minor },
                ImageKind::Block { major, minor } => Kind::Block { major, minor },
                ImageKind::Fifo => Kind::Fifo,
                ImageKind::Socket => {
                    return Err(Ext4Error::Entry { path: e.path.display(), reason: "sockets are not supported".into() })
                }
            };
            let mut node = Node::new(kind, e.mode);
            (node.meta.uid, node.meta.gid, node.meta.xattrs) = (e.uid, e.gid, e.xattrs);
            tree.insert(&rel, node)?;
        }
        Ok(tree)
    }
}
