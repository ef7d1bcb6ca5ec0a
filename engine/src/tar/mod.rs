//! Tar archives and FsTree: a reader that layers a tar stream (plain, gzip, xz or zstd)
//! into a tree, and a deterministic writer (PAX, sorted, fixed mtime, numeric owners,
//! xattrs as `SCHILY.xattr.*`).

mod reader;
mod writer;

pub use reader::{decompress, Compression};
pub use writer::write_tar;

/// What went wrong reading or writing a tar; each variant names the archive or entry.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    /// An I/O error.
    #[error("{archive}: {source}")]
    Io {
        /// The archive.
        archive: String,
        /// The error.
        source: std::io::Error,
    },
    /// An entry cannot be read.
    #[error("{archive}: entry `{entry}`: {reason}")]
    Entry {
        /// The archive.
        archive: String,
        /// The entry.
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// The entries do not make a valid tree.
    #[error("{archive}: {source}")]
    Tree {
        /// The archive.
        archive: String,
        /// The tree's error.
        source: crate::fstree::FsTreeError,
    },
    /// An entry cannot be written.
    #[error("writing the tar: `{path}`: {reason}")]
    Write {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
}
