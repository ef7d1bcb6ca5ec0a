//! The ext4 writer: plans inodes and blocks from the tree (no I/O), then streams file
//! contents into their blocks in increasing block order and writes the metadata last.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::disk::*;
use super::xattr::{self, Placement};
use super::Ext4Error;
use crate::fstree::{Content, FsTree, Kind, Meta, TreePath};

/// How to write the image.
#[derive(Clone, Debug, Default)]
pub struct Ext4Options {
    /// Image size in bytes; `None` makes the smallest image that holds the tree.
    pub size: Option<u64>,
    /// Volume label, at most 16 bytes.
    pub label: String,
}

/// What was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ext4Summary {
    /// Length of the image file in bytes.
    pub image_bytes: u64,
    /// Filesystem blocks (4096 bytes) and how many are free.
    pub blocks: u64,
    /// Blocks left free.
    pub free_blocks: u64,
    /// Inodes in the filesystem and how many are used.
    pub inodes: u64,
    /// Inodes in use.
    pub used_inodes: u64,
    /// The UUID, derived from the content.
    pub uuid: [u8; 16],
}

/// Writes `tree` as an ext4 filesystem image at `out` (through a temporary file in the
/// same directory, renamed into place only when complete, so a failure leaves whatever
/// was at `out` untouched). The same tree and options always give the same bytes: every
/// timestamp is the tree's epoch and the UUID and directory hash seed are hashes of the
/// content. A `/lost+found` (0700, 0:0) is added when the tree has none, as e2fsck
/// expects one.
///
/// ```
/// use forge_engine::{ext4::{write_ext4, Ext4Options}, fstree::FsTree};
/// let mut tree = FsTree::new(0);
/// tree.write("/etc/motd", "hi\n", 0o644)?;
/// let dir = tempfile::tempdir()?;
/// let img = dir.path().join("root.img");
/// let summary = write_ext4(&tree, &img, &Ext4Options { size: Some(8 << 20), label: "root".into() })?;
/// assert_eq!(std::fs::metadata(&img)?.len(), 8 << 20);
/// assert_eq!(summary.used_inodes, 13); // 1-10 reserved, root, lost+found, etc, motd - 1
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_ext4(tree: &FsTree, out: &Path, opts: &Ext4Options) -> Result<Ext4Summary, Ext4Error> {
    if opts.label.len() > 16 {
        return Err(Ext4Error::Label { label: opts.label.clone(), reason: "longer than 16 bytes" });
    }
    let lost_found = Meta { mode: 0o700, uid: 0, gid: 0, mtime: tree.epoch(), xattrs: BTreeMap::new() };
    let inodes = collect(tree, &lost_found)?;
    let plan = plan_for(&inodes, opts.size)?;
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let io = |source| Ext4Error::Io { path: out.display().to_string(), source };
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    // Temporary files are private (0600); an image is an ordinary output file.
    tmp.as_file().set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644)).map_err(io)?;
    let image_bytes = opts.size.unwrap_or(plan.geo.blocks * BLOCK_U64);
    tmp.as_file().set_len(image_bytes).map_err(io)?;
    let summary = Writer { file: tmp.as_file(), out, plan: &plan, inodes: &inodes, epoch: tree.epoch() }
        .write(&opts.label, image_bytes)?;
    tmp.persist(out).map_err(|e| io(e.error))?;
    Ok(summary)
}

/// What an inode holds.
enum Data<'a> {
    File(&'a Content),
    Dir(Vec<DirEnt>),
    Symlink(&'a [u8]),
    Dev { mode: u16, major: u32, minor: u32 },
    Fifo,
}

struct DirEnt {
    name: Vec<u8>,
    ino: u32,
    ftype: u8,
}

struct Inode<'a> {
    path: TreePath,
    meta: &'a Meta,
    data: Data<'a>,
    links: u32,
    subdirs: u32,
}

impl Inode<'_> {
    fn err(&self, reason: impl Into<String>) -> Ext4Error {
        Ext4Error::Entry { path: self.path.display(), reason: reason.into() }
    }

    /// Data blocks the inode needs (extent tree and xattr blocks not included).
    fn data_blocks(&self) -> u64 {
        match &self.data {
            Data::File(c) => c.size().div_ceil(BLOCK_U64),
            Data::Dir(ents) => dir_blocks(ents).len() as u64,
            Data::Symlink(t) if t.len() >= 60 => 1,
            _ => 0,
        }
    }

    fn mode_type(&self) -> u16 {
        match &self.data {
            Data::File(_) => S_IFREG,
            Data::Dir(_) => S_IFDIR,
            Data::Symlink(_) => S_IFLNK,
            Data::Dev { mode, .. } => *mode,
            Data::Fifo => S_IFIFO,
        }
    }
}

fn ftype_of(kind: &Kind) -> u8 {
    match kind {
        Kind::File(_) | Kind::Hardlink(_) => FT_REG,
        Kind::Dir(_) => FT_DIR,
        Kind::Symlink(_) => FT_SYMLINK,
        Kind::Char { .. } => FT_CHR,
        Kind::Block { .. } => FT_BLK,
        Kind::Fifo => FT_FIFO,
    }
}

/// Inodes indexed by number - 1; reserved numbers hold `None`.
type Inodes<'a> = Vec<Option<Inode<'a>>>;

/// Numbers every inode in tree order (root 2, lost+found 11, the rest from 12), shares one
/// inode between the names of a hard-linked file, and lists each directory's entries.
fn collect<'a>(tree: &'a FsTree, lost_found: &'a Meta) -> Result<Inodes<'a>, Ext4Error> {
    let targets = tree.hardlink_targets()?;
    let mut inodes: Inodes<'a> = (0..LOST_FOUND_INO).map(|_| None).collect();
    let mut linked: HashMap<TreePath, u32> = HashMap::new();
    let mut stack: Vec<u32> = Vec::new();
    let has_lf = tree.root().children().any(|(n, _)| n.as_slice() == b"lost+found");
    for (path, node) in tree.iter() {
        let depth = path.components().len();
        if depth == 0 {
            inodes[ROOT_INO as usize - 1] = Some(dir_inode(path, &node.meta, ROOT_INO));
            stack.push(ROOT_INO);
            if !has_lf {
                inodes[LOST_FOUND_INO as usize - 1] =
                    Some(dir_inode(TreePath::parse("lost+found")?, lost_found, ROOT_INO));
                add_dirent(&mut inodes, ROOT_INO, b"lost+found", LOST_FOUND_INO, FT_DIR);
                inodes[ROOT_INO as usize - 1].as_mut().expect("set above").subdirs += 1;
            }
            continue;
        }
        stack.truncate(depth);
        let parent = stack[depth - 1];
        let name = path.components()[depth - 1].as_slice();
        let (key, data) = tree.data_node(&path, node)?;
        let shared = targets.contains(&key);
        if let Some(&ino) = linked.get(&key).filter(|_| shared) {
            let inode = inodes[ino as usize - 1].as_mut().expect("numbered above");
            inode.links += 1;
            if inode.links > LINK_MAX {
                return Err(inode.err("more than 65000 hard links"));
            }
            add_dirent(&mut inodes, parent, name, ino, ftype_of(&data.kind));
            continue;
        }
        let is_lf = depth == 1 && name == b"lost+found";
        let ino = if is_lf { LOST_FOUND_INO } else { inodes.len() as u32 + 1 };
        if is_lf && !data.is_dir() {
            return Err(Ext4Error::Entry { path: path.display(), reason: "lost+found must be a directory".into() });
        }
        let inode = match &data.kind {
            Kind::Dir(_) => dir_inode(path.clone(), &data.meta, parent),
            Kind::File(c) => leaf_inode(path.clone(), &data.meta, Data::File(c)),
            Kind::Symlink(t) => leaf_inode(path.clone(), &data.meta, Data::Symlink(t)),
            Kind::Char { major, minor } => {
                leaf_inode(path.clone(), &data.meta, Data::Dev { mode: S_IFCHR, major: *major, minor: *minor })
            }
            Kind::Block { major, minor } => {
                leaf_inode(path.clone(), &data.meta, Data::Dev { mode: S_IFBLK, major: *major, minor: *minor })
            }
            Kind::Fifo => leaf_inode(path.clone(), &data.meta, Data::Fifo),
            Kind::Hardlink(_) => unreachable!("data_node resolves hard links"),
        };
        if is_lf {
            inodes[LOST_FOUND_INO as usize - 1] = Some(inode);
        } else {
            inodes.push(Some(inode));
        }
        if data.is_dir() {
            stack.push(ino);
            inodes[parent as usize - 1].as_mut().expect("parents come first").subdirs += 1;
        }
        if shared {
            linked.insert(key, ino);
        }
        add_dirent(&mut inodes, parent, name, ino, ftype_of(&data.kind));
    }
    Ok(inodes)
}

fn dir_inode<'a>(path: TreePath, meta: &'a Meta, parent: u32) -> Inode<'a> {
    let ents = Vec::from([
        DirEnt { name: b".".to_vec(), ino: 0, ftype: FT_DIR },
        DirEnt { name: b"..".to_vec(), ino: parent, ftype: FT_DIR },
    ]);
    Inode { path, meta, data: Data::Dir(ents), links: 1, subdirs: 0 }
}

fn leaf_inode<'a>(path: TreePath, meta: &'a Meta, data: Data<'a>) -> Inode<'a> {
    Inode { path, meta, data, links: 1, subdirs: 0 }
}

fn add_dirent(inodes: &mut Inodes<'_>, dir: u32, name: &[u8], ino: u32, ftype: u8) {
    if let Some(Inode { data: Data::Dir(ents), .. }) = inodes[dir as usize - 1].as_mut() {
        ents.push(DirEnt { name: name.to_vec(), ino, ftype });
    }
}

/// Packs directory entries into blocks: the byte range of entries each block holds.
fn dir_blocks(ents: &[DirEnt]) -> Vec<std::ops::Range<usize>> {
    let mut blocks = Vec::new();
    let (mut start, mut used) = (0, 0);
    for (i, e) in ents.iter().enumerate() {
        let len = dirent_len(e.name.len());
        if used + len > BLOCK {
            blocks.push(start..i);
            (start, used) = (i, 0);
        }
        used += len;
    }
    blocks.push(start..ents.len());
    blocks
}

/// The layout of block groups for a given size.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    blocks: u64,
    groups: u64,
    inodes_per_group: u64,
    itable_blocks: u64,
    gdt_blocks: u64,
}

impl Geometry {
    /// Groups for `blocks` blocks, with at least `min_inodes` inodes and about one inode
    /// per 16 KiB (mke2fs's default ratio). A last group too small for its own metadata
    /// is dropped, as mke2fs does.
    fn new(mut blocks: u64, min_inodes: u64) -> Option<Geometry> {
        loop {
            let groups = blocks.div_ceil(BLOCKS_PER_GROUP);
            if groups == 0 || blocks > u64::from(u32::MAX) {
                return None;
            }
            let want = min_inodes.max(blocks / 4);
            let per_group = want.div_ceil(groups).div_ceil(u64::from(INODES_PER_BLOCK)) * u64::from(INODES_PER_BLOCK);
            if per_group > BLOCKS_PER_GROUP {
                return None;
            }
            let geo = Geometry {
                blocks,
                groups,
                inodes_per_group: per_group,
                itable_blocks: per_group / u64::from(INODES_PER_BLOCK),
                gdt_blocks: (groups * DESC_SIZE as u64).div_ceil(BLOCK_U64),
            };
            let last = groups - 1;
            if blocks - last * BLOCKS_PER_GROUP >= geo.overhead(last) + 16 {
                return Some(geo);
            }
            if last == 0 {
                return None;
            }
            blocks = last * BLOCKS_PER_GROUP;
        }
    }

    fn start(&self, g: u64) -> u64 {
        g * BLOCKS_PER_GROUP
    }

    /// End of group `g`; groups past the last are imagined whole, so a plan that
    /// overflows still says how much it needs.
    fn end(&self, g: u64) -> u64 {
        if g + 1 == self.groups {
            self.blocks
        } else {
            self.start(g) + BLOCKS_PER_GROUP
        }
    }

    fn super_blocks(&self, g: u64) -> u64 {
        if has_super(g) {
            1 + self.gdt_blocks
        } else {
            0
        }
    }

    fn overhead(&self, g: u64) -> u64 {
        self.super_blocks(g) + 2 + self.itable_blocks
    }

    fn block_bitmap(&self, g: u64) -> u64 {
        self.start(g) + self.super_blocks(g)
    }

    fn inode_table(&self, g: u64) -> u64 {
        self.block_bitmap(g) + 2
    }
}

/// Hands out data blocks in increasing order, skipping group metadata.
struct Allocator {
    geo: Geometry,
    group: u64,
    next: u64,
    /// Data blocks used per group.
    used: Vec<u64>,
}

impl Allocator {
    fn new(geo: Geometry) -> Allocator {
        Allocator { geo, group: 0, next: geo.start(0) + geo.overhead(0), used: vec![0; geo.groups as usize] }
    }

    /// `n` blocks as runs of (first block, length).
    fn take(&mut self, mut n: u64) -> Vec<(u64, u64)> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        while n > 0 {
            let end = self.geo.end(self.group);
            if self.next >= end {
                self.group += 1;
                self.next = self.geo.start(self.group) + self.geo.overhead(self.group);
                continue;
            }
            let k = n.min(end - self.next);
            match runs.last_mut() {
                Some((s, l)) if *s + *l == self.next => *l += k,
                _ => runs.push((self.next, k)),
            }
            if let Some(u) = self.used.get_mut(self.group as usize) {
                *u += k;
            }
            (self.next, n) = (self.next + k, n - k);
        }
        runs
    }

    /// Whether everything handed out lies inside the filesystem.
    fn fits(&self) -> bool {
        self.group < self.geo.groups
    }
}

/// Where one inode's blocks are.
#[derive(Default)]
struct Placed {
    extents: Vec<Extent>,
    /// Extent tree blocks, leaves first, and the number of blocks on each level.
    tree_blocks: Vec<u64>,
    levels: Vec<usize>,
    xattr_block: Option<u64>,
    in_inode_xattrs: Option<Vec<u8>>,
}

struct Plan {
    geo: Geometry,
    placed: Vec<Placed>,
    /// Xattr blocks: their bytes, block number and reference count.
    xattr_blocks: Vec<(Vec<u8>, u64, u32)>,
    used_per_group: Vec<u64>,
}

/// Chooses the geometry: the given size, or the smallest that fits.
fn plan_for(inodes: &Inodes<'_>, size: Option<u64>) -> Result<Plan, Ext4Error> {
    let min_inodes = inodes.len() as u64;
    let auto = || -> Result<Plan, Ext4Error> {
        let mut blocks: u64 = inodes.iter().flatten().map(|i| i.data_blocks()).sum::<u64>() + 24;
        for _ in 0..32 {
            let geo = Geometry::new(blocks.max(64), min_inodes).ok_or_else(|| too_big(blocks))?;
            let (plan, end) = plan(inodes, geo)?;
            if let Some(plan) = plan {
                return Ok(plan);
            }
            blocks = blocks.max(end) + geo.overhead(geo.groups) + 16;
        }
        Err(too_big(blocks))
    };
    let Some(size) = size else { return auto() };
    if size / BLOCK_U64 > u64::from(u32::MAX) {
        return Err(Ext4Error::Size {
            text: size.to_string(),
            reason: "ext4 without the 64bit feature holds at most 16 TiB",
        });
    }
    let geo = Geometry::new(size / BLOCK_U64, min_inodes);
    if let Some(plan) = geo.map(|g| plan(inodes, g)).transpose()?.and_then(|(p, _)| p) {
        return Ok(plan);
    }
    let needed = auto()?.geo.blocks * BLOCK_U64;
    Err(Ext4Error::TooSmall { size, needed, needed_mib: needed.div_ceil(1 << 20) })
}

fn too_big(blocks: u64) -> Ext4Error {
    Ext4Error::Entry {
        path: "/".into(),
        reason: format!("the tree needs about {blocks} blocks, more than ext4 without the 64bit feature holds"),
    }
}

/// Places every inode's blocks in inode order. Returns the plan when it fits, and the
/// block the allocation reached either way.
fn plan(inodes: &Inodes<'_>, geo: Geometry) -> Result<(Option<Plan>, u64), Ext4Error> {
    let mut alloc = Allocator::new(geo);
    let mut placed = Vec::with_capacity(inodes.len());
    let mut xattr_blocks: Vec<(Vec<u8>, u64, u32)> = Vec::new();
    let mut xattr_index: HashMap<Vec<u8>, usize> = HashMap::new();
    for inode in inodes {
        let Some(inode) = inode else {
            placed.push(Placed::default());
            continue;
        };
        let mut p = Placed::default();
        let mut logical = 0u64;
        for (start, len) in alloc.take(inode.data_blocks()) {
            let mut done = 0;
            while done < len {
                let k = (len - done).min(EXT_MAX_LEN);
                let logical32 = u32::try_from(logical).map_err(|_| inode.err("file too large for ext4"))?;
                p.extents.push(Extent { logical: logical32, len: k as u16, start: start + done });
                (logical, done) = (logical + k, done + k);
            }
        }
        p.levels = tree_levels(p.extents.len());
        let tree_len = p.levels.iter().sum::<usize>() as u64;
        p.tree_blocks = alloc.take(tree_len).into_iter().flat_map(|(s, l)| s..s + l).collect();
        match xattr::encode(&inode.meta.xattrs).map_err(|e| inode.err(e))? {
            Placement::None => {}
            Placement::InInode(region) => p.in_inode_xattrs = Some(region),
            Placement::Block(bytes) => {
                let idx = match xattr_index.get(&bytes) {
                    Some(&i) => i,
                    None => {
                        let block = alloc.take(1)[0].0;
                        xattr_blocks.push((bytes.clone(), block, 0));
                        xattr_index.insert(bytes, xattr_blocks.len() - 1);
                        xattr_blocks.len() - 1
                    }
                };
                xattr_blocks[idx].2 += 1;
                p.xattr_block = Some(xattr_blocks[idx].1);
            }
        }
        placed.push(p);
    }
    let end = alloc.next;
    if !alloc.fits() || inodes.len() as u64 > geo.groups * geo.inodes_per_group {
        return Ok((None, end));
    }
    Ok((Some(Plan { geo, placed, xattr_blocks, used_per_group: alloc.used }), end))
}

/// Blocks per level of the extent tree for `n` extents (leaves first); empty when the
/// four slots in the inode hold them all.
fn tree_levels(n: usize) -> Vec<usize> {
    let mut levels = Vec::new();
    let mut count = n;
    while count > EXT_IN_INODE {
        count = count.div_ceil(EXT_PER_BLOCK);
        levels.push(count);
    }
    levels
}

struct Writer<'a> {
    file: &'a File,
    out: &'a Path,
    plan: &'a Plan,
    inodes: &'a Inodes<'a>,
    epoch: i64,
}

impl Writer<'_> {
    fn io(&self) -> impl Fn(std::io::Error) -> Ext4Error + '_ {
        move |source| Ext4Error::Io { path: self.out.display().to_string(), source }
    }

    fn write_at(&self, buf: &[u8], block: u64) -> Result<(), Ext4Error> {
        self.file.write_all_at(buf, block * BLOCK_U64).map_err(self.io())
    }

    fn write(&self, label: &str, image_bytes: u64) -> Result<Ext4Summary, Ext4Error> {
        let mut fingerprint = Sha256::new();
        let geo = self.plan.geo;
        let mut tables: Vec<Vec<u8>> = vec![Vec::new(); geo.groups as usize];
        let mut dirs_per_group = vec![0u64; geo.groups as usize];
        for (i, inode) in self.inodes.iter().enumerate() {
            let ino = i as u32 + 1;
            let group = (u64::from(ino) - 1) / geo.inodes_per_group;
            let mut raw = [0u8; INODE_SIZE];
            if let Some(inode) = inode {
                raw = self.write_inode(ino, inode, &self.plan.placed[i], &mut fingerprint)?;
                if matches!(inode.data, Data::Dir(_)) {
                    dirs_per_group[group as usize] += 1;
                }
            }
            tables[group as usize].extend_from_slice(&raw);
        }
        for (bytes, block, refs) in &self.plan.xattr_blocks {
            let mut b = bytes.clone();
            xattr::set_refcount(&mut b, *refs);
            self.write_at(&b, *block)?;
        }
        for (g, table) in tables.iter().enumerate() {
            self.file.write_all_at(table, geo.inode_table(g as u64) * BLOCK_U64).map_err(self.io())?;
        }
        let digest = fingerprint.finalize();
        self.write_metadata(label, &digest, &dirs_per_group, image_bytes)
    }

    /// Writes an inode's blocks and returns its 256 bytes.
    fn write_inode(
        &self,
        ino: u32,
        inode: &Inode<'_>,
        p: &Placed,
        fp: &mut Sha256,
    ) -> Result<[u8; INODE_SIZE], Ext4Error> {
        let m = inode.meta;
        fp.update(ino.to_le_bytes());
        fp.update([m.mode, m.uid, m.gid, inode.links].map(u32::to_le_bytes).concat());
        if let Data::File(c) = &inode.data {
            fp.update(c.size().to_le_bytes());
        }
        for (k, v) in &m.xattrs {
            fp.update([k.as_bytes(), b"\0", &(v.len() as u64).to_le_bytes(), v].concat());
        }
        let mut raw = [0u8; INODE_SIZE];
        let mut size = 0u64;
        let mut flags = 0u32;
        match &inode.data {
            Data::File(content) => {
                size = content.size();
                self.write_file(inode, content, &p.extents, fp)?;
                flags = EXTENTS_FL;
            }
            Data::Dir(ents) => {
                size = self.write_dir(ino, ents, &p.extents, fp)?;
                flags = EXTENTS_FL;
            }
            Data::Symlink(target) => {
                size = target.len() as u64;
                fp.update(target);
                if target.len() >= 4096 {
                    return Err(inode.err("symlink target longer than 4095 bytes"));
                }
                if target.len() < 60 {
                    raw[0x28..0x28 + target.len()].copy_from_slice(target);
                } else {
                    let mut block = vec![0u8; BLOCK];
                    block[..target.len()].copy_from_slice(target);
                    self.write_at(&block, p.extents[0].start)?;
                    flags = EXTENTS_FL;
                }
            }
            Data::Dev { major, minor, .. } => {
                fp.update([major.to_le_bytes(), minor.to_le_bytes()].concat());
                let (w0, w1) = encode_dev(*major, *minor);
                put32(&mut raw, 0x28, w0);
                put32(&mut raw, 0x2C, w1);
            }
            Data::Fifo => {}
        }
        if flags == EXTENTS_FL {
            self.write_extent_tree(&mut raw, p)?;
        }
        let blocks = (p.extents.iter().map(|e| u64::from(e.len)).sum::<u64>()
            + p.tree_blocks.len() as u64
            + u64::from(p.xattr_block.is_some()))
            * (BLOCK_U64 / 512);
        let links = if matches!(inode.data, Data::Dir(_)) {
            let n = 2 + inode.subdirs;
            if n >= LINK_MAX {
                1
            } else {
                n
            }
        } else {
            inode.links
        };
        let time = self.epoch as u32;
        put16(&mut raw, 0x00, inode.mode_type() | (m.mode & 0o7777) as u16);
        put16(&mut raw, 0x02, m.uid as u16);
        put32(&mut raw, 0x04, size as u32);
        for off in [0x08, 0x0C, 0x10, 0x90] {
            put32(&mut raw, off, time);
        }
        put16(&mut raw, 0x18, m.gid as u16);
        put16(&mut raw, 0x1A, links as u16);
        put32(&mut raw, 0x1C, blocks as u32);
        put32(&mut raw, 0x20, flags);
        put32(&mut raw, 0x68, p.xattr_block.unwrap_or(0) as u32);
        put32(&mut raw, 0x6C, (size >> 32) as u32);
        put16(&mut raw, 0x74, (blocks >> 32) as u16);
        put16(&mut raw, 0x78, (m.uid >> 16) as u16);
        put16(&mut raw, 0x7A, (m.gid >> 16) as u16);
        put16(&mut raw, 0x80, EXTRA_ISIZE);
        if let Some(region) = &p.in_inode_xattrs {
            let at = GOOD_OLD_INODE_SIZE + EXTRA_ISIZE as usize;
            raw[at..at + region.len()].copy_from_slice(region);
        }
        Ok(raw)
    }

    /// Streams a file's content into its extents. Only the content's data ranges are
    /// read (a host file's holes are skipped) and all-zero blocks are left unwritten: the
    /// image starts as a hole, which reads as zeros. The fingerprint covers each non-zero
    /// block with its index, so how zeros were stored never changes the result.
    fn write_file(
        &self,
        inode: &Inode<'_>,
        content: &Content,
        extents: &[Extent],
        fp: &mut Sha256,
    ) -> Result<(), Ext4Error> {
        let read_err = |e: std::io::Error| inode.err(format!("reading its content: {e}"));
        let ranges = content.data_ranges(BLOCK_U64).map_err(read_err)?;
        let mut reader = content.open().map_err(read_err)?;
        let mut buf = vec![0u8; 1 << 20];
        let size = content.size();
        for (start, end) in ranges {
            let mut pos = start;
            while pos < end {
                let logical = pos / BLOCK_U64;
                let (physical, left_in_extent) =
                    locate(extents, logical).ok_or_else(|| inode.err("content outside its extents"))?;
                let span = (end - pos).min(left_in_extent * BLOCK_U64).min(buf.len() as u64);
                let bytes = span.min(size - pos) as usize;
                reader.set_position(pos);
                reader.read_exact(&mut buf[..bytes]).map_err(read_err)?;
                let padded = bytes.div_ceil(BLOCK) * BLOCK;
                buf[bytes..padded].fill(0);
                self.write_nonzero(&buf[..padded], physical, logical, fp)?;
                pos += span;
            }
        }
        Ok(())
    }

    /// Writes the runs of blocks in `buf` that are not all zeros, hashing each with its
    /// logical index.
    fn write_nonzero(&self, buf: &[u8], first_block: u64, logical: u64, fp: &mut Sha256) -> Result<(), Ext4Error> {
        let nonzero: Vec<bool> = buf.chunks(BLOCK).map(|b| !is_zero(b)).collect();
        let mut i = 0;
        while i < nonzero.len() {
            if !nonzero[i] {
                i += 1;
                continue;
            }
            let start = i;
            while i < nonzero.len() && nonzero[i] {
                fp.update((logical + i as u64).to_le_bytes());
                fp.update(&buf[i * BLOCK..(i + 1) * BLOCK]);
                i += 1;
            }
            self.write_at(&buf[start * BLOCK..i * BLOCK], first_block + start as u64)?;
        }
        Ok(())
    }

    /// Writes a linear directory; returns its size in bytes.
    fn write_dir(&self, ino: u32, ents: &[DirEnt], extents: &[Extent], fp: &mut Sha256) -> Result<u64, Ext4Error> {
        let ranges = dir_blocks(ents);
        let mut data = vec![0u8; ranges.len() * BLOCK];
        for (b, range) in ranges.iter().enumerate() {
            let block = &mut data[b * BLOCK..(b + 1) * BLOCK];
            let mut off = 0;
            for (k, i) in range.clone().enumerate() {
                let e = &ents[i];
                let target = if i == 0 { ino } else { e.ino };
                fp.update([&target.to_le_bytes()[..], &e.name, b"/"].concat());
                let last = k + 1 == range.len();
                let len = if last { BLOCK - off } else { dirent_len(e.name.len()) };
                put_dirent(block, off, target, len, e.ftype, &e.name);
                off += len;
            }
        }
        let mut at = 0;
        for e in extents {
            let len = usize::from(e.len) * BLOCK;
            self.write_at(&data[at..at + len], e.start)?;
            at += len;
        }
        Ok(data.len() as u64)
    }

    /// Fills `i_block` with the extent tree root and writes the tree's blocks.
    fn write_extent_tree(&self, raw: &mut [u8; INODE_SIZE], p: &Placed) -> Result<(), Ext4Error> {
        let mut entries: Vec<[u8; 12]> = p.extents.iter().map(leaf_entry).collect();
        let mut firsts: Vec<u32> = p.extents.iter().map(|e| e.logical).collect();
        let mut blocks = p.tree_blocks.iter();
        for (depth, &count) in p.levels.iter().enumerate() {
            let (mut next_entries, mut next_firsts) = (Vec::with_capacity(count), Vec::with_capacity(count));
            for (chunk, chunk_firsts) in entries.chunks(EXT_PER_BLOCK).zip(firsts.chunks(EXT_PER_BLOCK)) {
                let block = *blocks.next().expect("tree blocks were planned per level");
                let mut buf = vec![0u8; BLOCK];
                extent_node(&mut buf, EXT_PER_BLOCK as u16, depth as u16, chunk);
                self.write_at(&buf, block)?;
                next_entries.push(index_entry(chunk_firsts[0], block));
                next_firsts.push(chunk_firsts[0]);
            }
            (entries, firsts) = (next_entries, next_firsts);
        }
        extent_node(&mut raw[0x28..0x28 + 60], EXT_IN_INODE as u16, p.levels.len() as u16, &entries);
        Ok(())
    }

    /// Writes bitmaps, group descriptors and the superblock with its backups.
    fn write_metadata(
        &self,
        label: &str,
        digest: &[u8],
        dirs: &[u64],
        image_bytes: u64,
    ) -> Result<Ext4Summary, Ext4Error> {
        let geo = self.plan.geo;
        let used_inodes = self.inodes.len() as u64;
        let mut gdt = vec![0u8; (geo.gdt_blocks * BLOCK_U64) as usize];
        let (mut free_blocks, mut free_inodes) = (0u64, 0u64);
        for g in 0..geo.groups {
            let len = geo.end(g) - geo.start(g);
            let used = geo.overhead(g) + self.plan.used_per_group[g as usize];
            self.write_at(&bitmap(used, len), geo.block_bitmap(g))?;
            let inodes_used = used_inodes.saturating_sub(g * geo.inodes_per_group).min(geo.inodes_per_group);
            self.write_at(&bitmap(inodes_used, geo.inodes_per_group), geo.block_bitmap(g) + 1)?;
            let d = &mut gdt[g as usize * DESC_SIZE..(g as usize + 1) * DESC_SIZE];
            put32(d, 0, geo.block_bitmap(g) as u32);
            put32(d, 4, (geo.block_bitmap(g) + 1) as u32);
            put32(d, 8, geo.inode_table(g) as u32);
            put16(d, 12, (len - used) as u16);
            put16(d, 14, (geo.inodes_per_group - inodes_used) as u16);
            put16(d, 16, dirs[g as usize] as u16);
            free_blocks += len - used;
            free_inodes += geo.inodes_per_group - inodes_used;
        }
        let uuid = uuid_from(digest);
        let sb = superblock(&geo, label, &uuid, digest, free_blocks, free_inodes, self.epoch as u32);
        for g in (0..geo.groups).filter(|g| has_super(*g)) {
            let mut copy = sb.clone();
            put16(&mut copy, 0x5A, g as u16);
            let at = geo.start(g) * BLOCK_U64 + if g == 0 { 1024 } else { 0 };
            self.file.write_all_at(&copy, at).map_err(self.io())?;
            self.write_at(&gdt, geo.start(g) + 1)?;
        }
        Ok(Ext4Summary {
            image_bytes,
            blocks: geo.blocks,
            free_blocks,
            inodes: geo.groups * geo.inodes_per_group,
            used_inodes,
            uuid,
        })
    }
}

/// The physical block of logical block `logical` and how many blocks of its extent
/// follow from there.
fn locate(extents: &[Extent], logical: u64) -> Option<(u64, u64)> {
    let i = extents.partition_point(|e| u64::from(e.logical) + u64::from(e.len) <= logical);
    let e = extents.get(i).filter(|e| u64::from(e.logical) <= logical)?;
    let within = logical - u64::from(e.logical);
    Some((e.start + within, u64::from(e.len) - within))
}

/// Whether a block is all zeros, 16 bytes at a time.
fn is_zero(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(16);
    chunks.all(|c| u128::from_ne_bytes(c.try_into().unwrap_or([1; 16])) == 0)
        && chunks.remainder().iter().all(|&x| x == 0)
}

/// A bitmap block with the first `used` bits set and the bits past `len` set as padding.
fn bitmap(used: u64, len: u64) -> Vec<u8> {
    let mut b = vec![0u8; BLOCK];
    for bit in (0..used).chain(len..BLOCK_U64 * 8) {
        b[(bit / 8) as usize] |= 1 << (bit % 8);
    }
    b
}

/// A random-looking (version 4 layout) UUID taken from the content hash.
fn uuid_from(digest: &[u8]) -> [u8; 16] {
    let mut u = [0u8; 16];
    u.copy_from_slice(&digest[..16]);
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

fn superblock(
    geo: &Geometry,
    label: &str,
    uuid: &[u8; 16],
    digest: &[u8],
    free_blocks: u64,
    free_inodes: u64,
    time: u32,
) -> Vec<u8> {
    let mut s = vec![0u8; 1024];
    put32(&mut s, 0x00, (geo.groups * geo.inodes_per_group) as u32);
    put32(&mut s, 0x04, geo.blocks as u32);
    put32(&mut s, 0x0C, free_blocks as u32);
    put32(&mut s, 0x10, free_inodes as u32);
    put32(&mut s, 0x18, 2); // log2(4096) - 10
    put32(&mut s, 0x1C, 2);
    put32(&mut s, 0x20, BLOCKS_PER_GROUP as u32);
    put32(&mut s, 0x24, BLOCKS_PER_GROUP as u32);
    put32(&mut s, 0x28, geo.inodes_per_group as u32);
    put32(&mut s, 0x30, time); // s_wtime
    put16(&mut s, 0x36, 0xFFFF); // s_max_mnt_count: no forced checks
    put16(&mut s, 0x38, SUPER_MAGIC);
    put16(&mut s, 0x3A, 1); // clean
    put16(&mut s, 0x3C, 1); // errors: continue
    put32(&mut s, 0x40, time); // s_lastcheck
    put32(&mut s, 0x4C, 1); // dynamic revision
    put32(&mut s, 0x54, FIRST_INO);
    put16(&mut s, 0x58, INODE_SIZE as u16);
    put32(&mut s, 0x5C, COMPAT_EXT_ATTR | COMPAT_DIR_INDEX);
    put32(&mut s, 0x60, INCOMPAT_FILETYPE | INCOMPAT_EXTENTS);
    put32(
        &mut s,
        0x64,
        RO_COMPAT_SPARSE_SUPER
            | RO_COMPAT_LARGE_FILE
            | RO_COMPAT_HUGE_FILE
            | RO_COMPAT_DIR_NLINK
            | RO_COMPAT_EXTRA_ISIZE,
    );
    s[0x68..0x78].copy_from_slice(uuid);
    s[0x78..0x78 + label.len()].copy_from_slice(label.as_bytes());
    let seed = Sha256::new().chain_update(b"forge ext4 directory hash seed").chain_update(digest).finalize();
    s[0xEC..0xFC].copy_from_slice(&seed[..16]);
    s[0xFC] = 1; // half_md4
    put32(&mut s, 0x100, 0x000C); // default mount options: user_xattr, acl
    put32(&mut s, 0x108, time); // s_mkfs_time
    put16(&mut s, 0x15C, EXTRA_ISIZE);
    put16(&mut s, 0x15E, EXTRA_ISIZE);
    put32(&mut s, 0x160, 1); // signed directory hash
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extent_trees_grow_a_level_per_340_fold() {
        assert!(tree_levels(4).is_empty());
        assert_eq!(tree_levels(5), [1]);
        assert_eq!(tree_levels(340 * 4), [4]);
        assert_eq!(tree_levels(340 * 4 + 1), [5, 1]);
    }

    #[test]
    fn geometry_drops_a_last_group_too_small_for_its_metadata() {
        let g = Geometry::new(32768 + 10, 100).unwrap();
        assert_eq!((g.groups, g.blocks), (1, 32768));
        let g = Geometry::new(4500 << 8, 0).unwrap();
        assert_eq!(g.groups, 36);
        assert_eq!(g.inodes_per_group % 16, 0);
    }

    #[test]
    fn bitmaps_mark_used_blocks_and_padding() {
        let b = bitmap(9, 32760);
        assert_eq!(&b[..2], &[0xff, 0x01]);
        assert_eq!(b[4095], 0xff);
        assert_eq!(b[4094], 0);
    }
}
