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
    #[error("{archive}: {source}")]
    Io { archive: String, source: std::io::Error },
    #[error("{archive}: entry `{entry}`: {reason}")]
    Entry { archive: String, entry: String, reason: String },
    #[error("{archive}: {source}")]
    Tree { archive: String, source: crate::fstree::FsTreeError },
    #[error("writing the tar: `{path}`: {reason}")]
    Write { path: String, reason: String },
}
