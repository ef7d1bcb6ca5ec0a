//! The `unpack` builtin: archives into a directory, safely and deterministically.
//!
//! Formats (detected from the first bytes, never from the name): tar, tar in
//! gzip / xz / bzip2 / zstd, zip, Debian `.deb` (its `data.tar.*`) and Alpine
//! `.apk` (its data stream: the gzip streams holding `.SIGN.*` or `.PKGINFO` are
//! skipped).
//!
//! What comes out is a function of the archive's content and [`UnpackOptions`]
//! only, and [`VERSION`] names that function in derivation hashes:
//! - files get mode 644, or 755 when the owner may execute them; directories 755;
//!   owners, timestamps, xattrs and setuid/setgid/sticky bits are dropped (a
//!   dropped special bit is reported as a [`Note`]);
//! - device nodes and fifos are skipped with a [`Note`] (a store output never
//!   holds them);
//! - symlinks are kept with their target as written (absolute or relative): they
//!   are data, never followed while unpacking;
//! - entry names that are absolute or contain `..` are refused, as is any entry
//!   whose parent is a symlink or a file of the archive; hardlinks must name a file
//!   unpacked earlier; later entries replace earlier ones of the same name;
//! - [`Limits`] bound the number of entries and the bytes written; tar metadata
//!   between two entries (long names, PAX records) is bounded to 8 MiB, since the
//!   tar reader holds it in memory.
//!
//! Writes go through cap-std, so even a wrong check here cannot escape `dest`.

mod formats;
pub(crate) mod tree;

use std::fmt;
use std::path::{Path, PathBuf};

pub use formats::detect;

/// Version of the unpack builtin; bump it whenever its output for some archive
/// could change.
pub const VERSION: u32 = 1;

/// A result whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An archive format [`unpack`] understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Plain (ustar, GNU or PAX) tar.
    Tar,
    /// Tar compressed with gzip.
    TarGz,
    /// Tar compressed with xz.
    TarXz,
    /// Tar compressed with bzip2.
    TarBz2,
    /// Tar compressed with zstd.
    TarZst,
    /// Zip.
    Zip,
    /// A Debian package (its `data.tar.*`).
    Deb,
    /// An Alpine package (its data stream).
    Apk,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Tar => "tar",
            Format::TarGz => "tar.gz",
            Format::TarXz => "tar.xz",
            Format::TarBz2 => "tar.bz2",
            Format::TarZst => "tar.zst",
            Format::Zip => "zip",
            Format::Deb => "deb",
            Format::Apk => "apk",
        })
    }
}

/// Bounds on what an archive may expand to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Entries read from the archive (skipped ones included).
    pub max_entries: u64,
    /// Bytes of file content written.
    pub max_bytes: u64,
}

impl Default for Limits {
    /// One million entries and 64 GiB: far above any source tree or package, far
    /// below what fills a disk by surprise.
    fn default() -> Self {
        Limits { max_entries: 1_000_000, max_bytes: 64 << 30 }
    }
}

/// How to unpack.
#[derive(Clone, Debug, Default)]
pub struct UnpackOptions {
    /// Leading path components to drop from every entry (entries with no more
    /// components are skipped). `.` components do not count.
    pub strip_components: usize,
    /// Caps on entries and bytes, against archive bombs.
    pub limits: Limits,
}

/// Something the unpacker skipped or changed, for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The entry's name in the archive.
    pub entry: String,
    /// What was skipped or changed, and why.
    pub why: String,
}

/// What [`unpack`] did.
#[derive(Clone, Debug)]
pub struct Unpacked {
    /// The format found from the magic bytes.
    pub format: Format,
    /// Entries read (skipped ones included).
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// What was skipped or changed.
    pub notes: Vec<Note>,
}

/// Why an archive could not be unpacked. `archive` names the input.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error.
    #[error("{path}: {error}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },

    /// The magic bytes match no format forge unpacks.
    #[error("{archive}: not an archive forge can unpack (first bytes: {magic}); supported: tar, tar.gz, tar.xz, tar.bz2, tar.zst, zip, deb, apk")]
    UnknownFormat {
        /// The archive.
        archive: String,
        /// Its first bytes, in hex.
        magic: String,
    },

    /// The archive is damaged or cut short.
    #[error("{archive}: corrupt or truncated archive: {why}")]
    Corrupt {
        /// The archive.
        archive: String,
        /// What is wrong.
        why: String,
    },

    /// An entry has an absolute path.
    #[error("{archive}: entry `{entry}` has an absolute path; refusing to unpack it")]
    AbsolutePath {
        /// The archive.
        archive: String,
        /// The entry.
        entry: String,
    },

    /// An entry climbs out with `..`.
    #[error("{archive}: entry `{entry}` climbs out with `..`; refusing to unpack it")]
    Traversal {
        /// The archive.
        archive: String,
        /// The entry.
        entry: String,
    },

    /// An entry would be written through a symlink or file the archive made.
    #[error("{archive}: entry `{entry}` would be written through `{via}`, which the archive made a symlink or a file; refusing")]
    ThroughLink {
        /// The archive.
        archive: String,
        /// The entry.
        entry: String,
        /// The symlink or file in the way.
        via: String,
    },

    /// A hardlink points to something not unpacked earlier as a file.
    #[error("{archive}: hardlink `{entry}` points to `{target}`, which is not a file unpacked earlier from this archive; refusing")]
    HardlinkOutside {
        /// The archive.
        archive: String,
        /// The hardlink.
        entry: String,
        /// What it points to.
        target: String,
    },

    #[error(
        "{archive}: more than {limit} entries; refusing to go on (raise the entry limit if the archive is trusted)"
    )]
    /// More entries than the limit.
    TooManyEntries {
        /// The archive.
        archive: String,
        /// The limit.
        limit: u64,
    },

    /// More bytes than the limit.
    #[error("{archive}: expands to more than {limit} bytes; refusing to go on (raise the size limit if the archive is trusted)")]
    TooLarge {
        /// The archive.
        archive: String,
        /// The limit.
        limit: u64,
    },

    /// The destination exists and is not empty.
    #[error("{dest}: the destination must be empty or absent")]
    DestNotEmpty {
        /// The destination.
        dest: PathBuf,
    },

    /// A `.deb` without a `data.tar.*` member.
    #[error("{archive}: a .deb without a data.tar member")]
    DebWithoutData {
        /// The archive.
        archive: String,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |error| Error::Io { path, error }
    }
}

/// Unpacks `archive` into `dest` (created if absent; must be empty).
///
/// On error, `dest` holds whatever was written before the refusal: the caller
/// (a build step writing to a temporary directory) throws it away.
pub fn unpack(archive: &Path, dest: &Path, opts: &UnpackOptions) -> Result<Unpacked> {
    let format = detect(archive)?;
    let source = archive.display().to_string();
    let mut out = tree::TreeWriter::new(dest, &source, opts.limits)?;
    formats::unpack_into(format, archive, &mut out, opts.strip_components)?;
    let (entries, bytes, notes) = out.finish()?;
    Ok(Unpacked { format, entries, bytes, notes })
}
