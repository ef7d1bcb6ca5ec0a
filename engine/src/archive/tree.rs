//! A write-only view of a fresh directory that hostile input cannot escape.
//!
//! Every write goes through a cap-std [`Dir`] rooted at the destination, so no path
//! can leave it even if a check here were wrong. On top of that, the writer keeps
//! the kind of every entry it created (the destination starts empty, so this record
//! is the whole truth) and refuses to write through a symlink or a file, even one
//! that points inside the tree: an archive gets the tree it describes, never one
//! reshaped by its own links.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, Permissions, PermissionsExt};

use super::{Error, Limits, Note, Result};

/// What the writer created at a path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
}

/// Mode bits an output may carry: permissions only, never setuid/setgid/sticky.
pub(crate) fn normalized_mode(mode: u32) -> u32 {
    if mode & 0o100 != 0 {
        0o755
    } else {
        0o644
    }
}

/// Turns an entry name from an archive into a relative path: refuses absolute
/// paths and `..`, drops `.` and empty components, then strips `strip` leading
/// components. `None` when nothing is left (the entry is skipped).
pub(crate) fn entry_path(source: &str, raw: &[u8], strip: usize) -> Result<Option<PathBuf>> {
    let shown = || String::from_utf8_lossy(raw).into_owned();
    if raw.first() == Some(&b'/') {
        return Err(Error::AbsolutePath { archive: source.to_owned(), entry: shown() });
    }
    let mut parts = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(Error::Traversal { archive: source.to_owned(), entry: shown() }),
            _ => parts.push(part),
        }
    }
    if parts.len() <= strip {
        return Ok(None);
    }
    Ok(Some(parts[strip..].iter().map(|p| OsStr::from_bytes(p)).collect()))
}

/// The writer over one destination directory.
pub(crate) struct TreeWriter {
    root: Dir,
    dest: PathBuf,
    /// Names the input in errors (an archive path, a repository and revision).
    source: String,
    kinds: HashMap<PathBuf, Kind>,
    limits: Limits,
    entries: u64,
    bytes: u64,
    notes: Vec<Note>,
    buf: Vec<u8>,
}

impl TreeWriter {
    /// Opens `dest` for writing, creating it when missing; it must be empty.
    pub(crate) fn new(dest: &Path, source: &str, limits: Limits) -> Result<Self> {
        std::fs::create_dir_all(dest).map_err(Error::io(dest))?;
        if std::fs::read_dir(dest).map_err(Error::io(dest))?.next().is_some() {
            return Err(Error::DestNotEmpty { dest: dest.to_owned() });
        }
        let root = Dir::open_ambient_dir(dest, ambient_authority()).map_err(Error::io(dest))?;
        Ok(TreeWriter {
            root,
            dest: dest.to_owned(),
            source: source.to_owned(),
            kinds: HashMap::new(),
            limits,
            entries: 0,
            bytes: 0,
            notes: Vec::new(),
            buf: vec![0; 1 << 20],
        })
    }

    /// Names the input in errors.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// Counts one entry of the input against the limit (skipped ones too: they cost
    /// work all the same).
    pub(crate) fn count_entry(&mut self) -> Result<()> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(Error::TooManyEntries { archive: self.source.clone(), limit: self.limits.max_entries });
        }
        Ok(())
    }

    /// Records that an entry was skipped or changed, and why.
    pub(crate) fn note(&mut self, entry: &Path, why: impl Into<String>) {
        self.notes.push(Note { entry: entry.display().to_string(), why: why.into() });
    }

    pub(crate) fn dir(&mut self, rel: &Path) -> Result<()> {
        if self.kinds.get(rel) == Some(&Kind::Dir) {
            return Ok(());
        }
        self.prepare(rel)?;
        self.root.create_dir(rel).map_err(self.io_err(rel))?;
        self.kinds.insert(rel.to_owned(), Kind::Dir);
        Ok(())
    }

    /// Writes a regular file from `data`, counting its bytes against the limit.
    pub(crate) fn file(&mut self, rel: &Path, mode: u32, data: &mut dyn Read) -> Result<()> {
        self.prepare(rel)?;
        let mut file = self.root.create(rel).map_err(self.io_err(rel))?;
        loop {
            let n = match data.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Corrupt { archive: self.source.clone(), why: e.to_string() }),
            };
            self.bytes += n as u64;
            if self.bytes > self.limits.max_bytes {
                return Err(Error::TooLarge { archive: self.source.clone(), limit: self.limits.max_bytes });
            }
            file.write_all(&self.buf[..n]).map_err(self.io_err(rel))?;
        }
        file.set_permissions(Permissions::from_mode(normalized_mode(mode))).map_err(self.io_err(rel))?;
        self.kinds.insert(rel.to_owned(), Kind::File);
        Ok(())
    }

    /// Creates a symlink. Its target is data, kept as it is (absolute or not): it
    /// is never followed by this writer.
    pub(crate) fn symlink(&mut self, rel: &Path, target: &Path) -> Result<()> {
        self.prepare(rel)?;
        self.root.symlink_contents(target, rel).map_err(self.io_err(rel))?;
        self.kinds.insert(rel.to_owned(), Kind::Symlink(target.to_owned()));
        Ok(())
    }

    /// Links `rel` to `target`, an entry this writer created earlier; anything
    /// else (a path outside the tree, a directory, a missing entry) is refused.
    pub(crate) fn hardlink(&mut self, rel: &Path, target: &Path) -> Result<()> {
        let refuse = || Error::HardlinkOutside {
            archive: self.source.clone(),
            entry: rel.display().to_string(),
            target: target.display().to_string(),
        };
        match self.kinds.get(target).cloned() {
            Some(Kind::File) if target != rel => {
                self.prepare(rel)?;
                self.root.hard_link(target, &self.root, rel).map_err(self.io_err(rel))?;
                self.kinds.insert(rel.to_owned(), Kind::File);
                Ok(())
            }
            Some(Kind::Symlink(to)) => self.symlink(rel, &to),
            _ => Err(refuse()),
        }
    }

    /// Makes room for a new entry at `rel`: its parents must be directories this
    /// writer made (created now when missing), and whatever was at `rel` goes
    /// (later entries of an archive replace earlier ones, as with tar).
    fn prepare(&mut self, rel: &Path) -> Result<()> {
        if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            match self.kinds.get(parent) {
                Some(Kind::Dir) => {}
                None => {
                    self.check_ancestors(parent)?;
                    self.create_parents(parent)?;
                }
                Some(_) => return Err(self.through_link(rel, parent)),
            }
        }
        match self.kinds.get(rel) {
            None => Ok(()),
            Some(Kind::Dir) => {
                self.root.remove_dir_all(rel).map_err(self.io_err(rel))?;
                self.kinds.retain(|p, _| !p.starts_with(rel));
                Ok(())
            }
            Some(_) => {
                self.root.remove_file(rel).map_err(self.io_err(rel))?;
                self.kinds.remove(rel);
                Ok(())
            }
        }
    }

    fn check_ancestors(&self, dir: &Path) -> Result<()> {
        for a in dir.ancestors().filter(|p| !p.as_os_str().is_empty()) {
            match self.kinds.get(a) {
                None => {}
                Some(Kind::Dir) => return Ok(()),
                Some(_) => return Err(self.through_link(dir, a)),
            }
        }
        Ok(())
    }

    fn create_parents(&mut self, dir: &Path) -> Result<()> {
        let mut cur = PathBuf::new();
        for c in dir.components() {
            if let Component::Normal(name) = c {
                cur.push(name);
                if !self.kinds.contains_key(&cur) {
                    self.root.create_dir(&cur).map_err(self.io_err(&cur))?;
                    self.kinds.insert(cur.clone(), Kind::Dir);
                }
            }
        }
        Ok(())
    }

    fn through_link(&self, entry: &Path, via: &Path) -> Error {
        Error::ThroughLink {
            archive: self.source.clone(),
            entry: entry.display().to_string(),
            via: via.display().to_string(),
        }
    }

    fn io_err(&self, rel: &Path) -> impl FnOnce(io::Error) -> Error {
        let path = self.dest.join(rel);
        move |error| Error::Io { path, error }
    }

    /// Applies the normalized directory mode and returns what was done.
    pub(crate) fn finish(self) -> Result<(u64, u64, Vec<Note>)> {
        let mut dirs: Vec<&PathBuf> = self.kinds.iter().filter(|(_, k)| **k == Kind::Dir).map(|(p, _)| p).collect();
        dirs.sort();
        for d in dirs {
            self.root.set_permissions(d, Permissions::from_mode(0o755)).map_err(Error::io(self.dest.join(d)))?;
        }
        Ok((self.entries, self.bytes, self.notes))
    }
}
