//! File locks that make several forge processes on one store safe.
//!
//! - [`PathLock`]: `<root>/locks/<hash>-<name>.lock`, an `flock` on a per-path file.
//!   Exclusive while a path is being added or built (so it is done once), shared
//!   while a path is in use as an input (so gc leaves it alone). The kernel drops
//!   the lock when the process dies, even by SIGKILL.
//! - [`TempPath`]: a directory in `<root>/tmp/`, `flock`ed for as long as it lives.
//!   Opening a store sweeps every temp directory whose lock it can take, because its
//!   owner is gone.
//!
//! Lock files may be unlinked by gc while someone waits on them; a waiter that wakes
//! up holding a lock on an unlinked file (`st_nlink == 0`) retries on a fresh file.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::path::StorePath;
use crate::tree;

/// How a lock is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// One holder: adding, building or deleting the path.
    Exclusive,
    /// Many holders: the path is in use and must not be deleted.
    Shared,
}

/// A held lock on one store path; released when dropped.
#[derive(Debug)]
pub struct PathLock {
    // Holding the descriptor holds the flock; closing it releases it.
    _held: File,
    lock_file: PathBuf,
    path: StorePath,
    mode: LockMode,
}

impl PathLock {
    /// Takes the lock on `path` through `lock_file`, waiting when `wait`, else
    /// returning `None` when someone else holds it.
    pub(crate) fn acquire(lock_file: PathBuf, path: &StorePath, mode: LockMode, wait: bool) -> Result<Option<Self>> {
        let op = match mode {
            LockMode::Exclusive => libc::LOCK_EX,
            LockMode::Shared => libc::LOCK_SH,
        } | if wait { 0 } else { libc::LOCK_NB };
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&lock_file)
                .map_err(Error::io(&lock_file))?;
            if !flock(&file, op).map_err(Error::io(&lock_file))? {
                return Ok(None);
            }
            if file.metadata().map_err(Error::io(&lock_file))?.nlink() > 0 {
                return Ok(Some(PathLock { _held: file, lock_file, path: path.clone(), mode }));
            }
        }
    }

    /// Takes the lock on `path`, waiting as long as it takes.
    pub(crate) fn wait_for(lock_file: PathBuf, path: &StorePath, mode: LockMode) -> Result<Self> {
        loop {
            // A blocking flock only returns once it holds the lock, so this loops once.
            if let Some(lock) = PathLock::acquire(lock_file.clone(), path, mode, true)? {
                return Ok(lock);
            }
        }
    }

    /// The locked store path.
    pub fn path(&self) -> &StorePath {
        &self.path
    }

    /// Whether the lock is exclusive or shared.
    pub fn mode(&self) -> LockMode {
        self.mode
    }

    /// Unlinks the lock file and releases the lock (after the path is deleted).
    pub(crate) fn remove(self) -> Result<()> {
        match fs::remove_file(&self.lock_file) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(&self.lock_file)(e)),
            _ => Ok(()),
        }
        // `self._held` closes here, releasing the lock after the unlink.
    }
}

/// An exclusive flock on `lock_file`, held until the returned file is dropped.
pub(crate) fn hold_open_lock(lock_file: &std::path::Path) -> Result<File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_file)
        .map_err(Error::io(lock_file))?;
    flock(&file, libc::LOCK_EX).map_err(Error::io(lock_file))?;
    Ok(file)
}

/// `flock(2)`: Ok(false) when non-blocking and held elsewhere.
fn flock(file: &File, op: libc::c_int) -> io::Result<bool> {
    loop {
        // SAFETY: the descriptor is open for the duration of the call.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(e),
        }
    }
}

/// A directory in the store's `tmp/`, removed on drop unless kept.
#[derive(Debug)]
pub struct TempPath {
    path: PathBuf,
    _lock: File,
    keep: bool,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl TempPath {
    /// Creates and locks a fresh directory in `tmp_dir`. Retries when a concurrent
    /// sweep removed the directory between its creation and its locking.
    pub(crate) fn create(tmp_dir: &Path, label: &str) -> Result<Self> {
        let label: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "+-._".contains(c) { c } else { '_' })
            .take(64)
            .collect();
        loop {
            let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
            let path = tmp_dir.join(format!("{label}-{}-{n}-{nanos:x}", std::process::id()));
            match fs::DirBuilder::new().mode(0o755).create(&path) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                other => other.map_err(Error::io(&path))?,
            }
            // A concurrent sweep may remove the directory before we lock it: start over.
            let dir = match File::open(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                other => other.map_err(Error::io(&path))?,
            };
            flock(&dir, libc::LOCK_EX).map_err(Error::io(&path))?;
            let held = dir.metadata().map_err(Error::io(&path))?;
            match fs::symlink_metadata(&path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                    return Ok(TempPath { path, _lock: dir, keep: false })
                }
                _ => continue,
            }
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the directory after drop (for inspection). It stays until the next
    /// `Store::open` sweeps it, since nobody holds it any more.
    pub fn keep(mut self) -> PathBuf {
        self.keep = true;
        self.path.clone()
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.keep {
            // Best effort: whatever is left is swept on the next open.
            let _ = tree::remove(&self.path);
        }
    }
}

/// Removes every entry of `tmp_dir` that no live process holds; returns their names.
pub(crate) fn sweep_temp(tmp_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut swept = Vec::new();
    for entry in fs::read_dir(tmp_dir).map_err(Error::io(tmp_dir))? {
        let path = entry.map_err(Error::io(tmp_dir))?.path();
        let md = match fs::symlink_metadata(&path) {
            Ok(md) => md,
            Err(_) => continue, // removed meanwhile by another sweeper
        };
        if md.is_dir() {
            let Ok(dir) = File::open(&path) else { continue };
            if !flock(&dir, libc::LOCK_EX | libc::LOCK_NB).map_err(Error::io(&path))? {
                continue;
            }
            tree::remove(&path)?;
            // `dir` closes after the removal, so a creator waiting on it sees it gone.
            drop(dir);
        } else {
            tree::remove(&path)?;
        }
        swept.push(path);
    }
    Ok(swept)
}
