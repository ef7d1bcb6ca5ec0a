//! ext4: a pure-Rust writer from an [`FsTree`](crate::fstree::FsTree) and a bounds-checked
//! reader. The layout written and the features chosen are described in
//! docs/architecture.md ("ext4").

mod disk;
mod reader;
mod size;
mod writer;
mod xattr;

pub use reader::{Ext4Image, ImageEntry, ImageKind, ReadAt};
pub use size::parse_size;
pub use writer::{write_ext4, Ext4Options, Ext4Summary};

/// What went wrong writing or reading an ext4 image; each variant names its subject.
#[derive(Debug, thiserror::Error)]
pub enum Ext4Error {
    /// An I/O error.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The tree does not fit in the image.
    #[error("the tree does not fit in {size} bytes: it needs at least {needed} bytes ({needed_mib} MiB); use a larger --size")]
    TooSmall {
        /// The image size asked for.
        size: u64,
        /// Bytes the tree needs.
        needed: u64,
        /// The same in MiB, rounded up.
        needed_mib: u64,
    },
    /// An entry cannot be written.
    #[error("`{path}`: {reason}")]
    Entry {
        /// The entry.
        path: String,
        /// Why.
        reason: String,
    },
    /// The tree is not valid.
    #[error("{0}")]
    Tree(#[from] crate::fstree::FsTreeError),
    /// An image size is not valid.
    #[error("invalid size `{text}`: {reason}")]
    Size {
        /// The size as given.
        text: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A volume label is not valid.
    #[error("invalid label `{label}`: {reason}")]
    Label {
        /// The label.
        label: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An image is not ext4 or uses features the reader does not know.
    #[error("not a supported ext4 image: {reason}")]
    Corrupt {
        /// What is wrong.
        reason: String,
    },
}

impl Ext4Error {
    pub(crate) fn corrupt(reason: impl Into<String>) -> Ext4Error {
        Ext4Error::Corrupt { reason: reason.into() }
    }
}

#[cfg(test)]
mod tests;
