//! Operations on whole trees on disk: making a tree canonical before it enters the
//! store, and removing read-only trees when they leave it.
//!
//! Canonical means what Nix's `canonicalisePathMetaData` makes of a path: mtime 1,
//! regular files 0444 (0555 when the owner could execute), directories 0555, no
//! setuid/setgid/sticky bits. Anything but regular files, directories and symlinks
//! is refused: a store path cannot hold a device node, a fifo or a socket.

use std::ffi::CString;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// The mtime every store file gets (one second after the epoch, as in Nix).
pub const CANONICAL_MTIME: i64 = 1;

/// Mode of a canonical regular file: executable iff the owner could execute it,
/// which is also what decides `executable` in a NAR.
pub fn file_mode(md: &Metadata) -> u32 {
    if md.mode() & 0o100 != 0 {
        0o555
    } else {
        0o444
    }
}

/// Makes the tree at `path` canonical. The top directory keeps mode 0755 when
/// `keep_top_writable`, because moving a directory to another parent needs write
/// permission on it (its `..` entry changes); the caller seals it after the move.
pub fn normalize(path: &Path, keep_top_writable: bool) -> Result<()> {
    let md = fs::symlink_metadata(path).map_err(Error::io(path))?;
    let ft = md.file_type();
    if ft.is_symlink() {
        return set_canonical_mtime(path);
    }
    if ft.is_file() {
        chmod(path, file_mode(&md))?;
        return set_canonical_mtime(path);
    }
    if !ft.is_dir() {
        return Err(Error::UnsupportedFile { path: path.to_owned(), kind: kind_name(&md) });
    }
    // Listing needs r and x; a builder may have left a directory without them.
    if md.mode() & 0o500 != 0o500 {
        chmod(path, 0o755)?;
    }
    for entry in fs::read_dir(path).map_err(Error::io(path))? {
        let entry = entry.map_err(Error::io(path))?;
        normalize(&entry.path(), false)?;
    }
    chmod(path, if keep_top_writable { 0o755 } else { 0o555 })?;
    set_canonical_mtime(path)
}

/// Seals the top of a tree made canonical with `keep_top_writable`.
pub fn seal_top(path: &Path) -> Result<()> {
    let md = fs::symlink_metadata(path).map_err(Error::io(path))?;
    if md.is_dir() {
        chmod(path, 0o555)?;
    }
    set_canonical_mtime(path)
}

/// Undoes [`seal_top`] so the tree can be moved out of the store again.
pub fn unseal_top(path: &Path) -> Result<()> {
    let md = fs::symlink_metadata(path).map_err(Error::io(path))?;
    if md.is_dir() {
        chmod(path, 0o755)?;
    }
    Ok(())
}

/// Removes a tree even when its directories are read-only. A missing path is fine.
pub fn remove(path: &Path) -> Result<()> {
    let md = match fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path)(e)),
    };
    if !md.is_dir() {
        return fs::remove_file(path).map_err(Error::io(path));
    }
    if md.mode() & 0o700 != 0o700 {
        chmod(path, 0o700)?;
    }
    for entry in fs::read_dir(path).map_err(Error::io(path))? {
        remove(&entry.map_err(Error::io(path))?.path())?;
    }
    match fs::remove_dir(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(path)(e)),
        _ => Ok(()),
    }
}

/// Sets mtime to [`CANONICAL_MTIME`] without following a symlink; atime is left alone.
pub fn set_canonical_mtime(path: &Path) -> Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::io(path)(io::Error::new(io::ErrorKind::InvalidInput, "NUL in path")))?;
    let times = [
        libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT },
        libc::timespec { tv_sec: CANONICAL_MTIME, tv_nsec: 0 },
    ];
    // SAFETY: `c` is a valid NUL-terminated string and `times` has the two entries utimensat reads.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    if rc != 0 {
        return Err(Error::io(path)(io::Error::last_os_error()));
    }
    Ok(())
}

fn chmod(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(Error::io(path))
}

/// A word for what a non-storable file is, for error messages.
pub fn kind_name(md: &Metadata) -> &'static str {
    let ft = md.file_type();
    if ft.is_block_device() {
        "a block device"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_fifo() {
        "a fifo"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "a file of unknown type"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn normalize_sets_modes_and_mtime_and_clears_setuid() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("t");
        fs::create_dir_all(t.join("sub")).unwrap();
        fs::write(t.join("sub/f"), b"x").unwrap();
        fs::write(t.join("x"), b"#!").unwrap();
        fs::set_permissions(t.join("x"), fs::Permissions::from_mode(0o4751)).unwrap();
        fs::set_permissions(t.join("sub"), fs::Permissions::from_mode(0o1777)).unwrap();
        symlink("dangling", t.join("l")).unwrap();
        normalize(&t, true).unwrap();
        let mode = |p: &str| fs::symlink_metadata(t.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode("sub/f"), 0o444);
        assert_eq!(mode("x"), 0o555);
        assert_eq!(mode("sub"), 0o555);
        assert_eq!(mode(""), 0o755);
        assert_eq!(fs::symlink_metadata(t.join("l")).unwrap().mtime(), 1);
        assert_eq!(fs::metadata(t.join("sub/f")).unwrap().mtime(), 1);
        seal_top(&t).unwrap();
        assert_eq!(mode(""), 0o555);
        remove(&t).unwrap();
        assert!(!t.exists());
    }

    #[test]
    fn normalize_refuses_a_fifo_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let err = normalize(dir.path(), true).unwrap_err().to_string();
        assert!(err.contains("pipe") && err.contains("fifo"), "{err}");
    }
}
