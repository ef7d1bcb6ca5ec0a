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
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("the tree does not fit in {size} bytes: it needs at least {needed} bytes ({needed_mib} MiB); use a larger --size")]
    TooSmall { size: u64, needed: u64, needed_mib: u64 },
    #[error("`{path}`: {reason}")]
    Entry { path: String, reason: String },
    #[error("{0}")]
    Tree(#[from] crate::fstree::FsTreeError),
    #[error("invalid size `{text}`: {reason}")]
    Size { text: String, reason: &'static str },
    #[error("invalid label `{label}`: {reason}")]
    Label { label: String, reason: &'static str },
    #[error("not a supported ext4 image: {reason}")]
    Corrupt { reason: String },
}

impl Ext4Error {
    pub(crate) fn corrupt(reason: impl Into<String>) -> Ext4Error {
        Ext4Error::Corrupt { reason: reason.into() }
    }
}

#[cfg(test)]
mod tests;
