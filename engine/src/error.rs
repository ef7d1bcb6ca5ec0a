//! The engine's error type: one enum, wrapping each format module's own error.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] forge_store::Error),

    #[error(transparent)]
    FsTree(#[from] crate::fstree::FsTreeError),

    #[error(transparent)]
    Tar(#[from] crate::tar::TarError),

    #[error(transparent)]
    Ext4(#[from] crate::ext4::Ext4Error),

    #[error(transparent)]
    Sparse(#[from] crate::sparse::SparseError),

    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),

    #[error("{path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<std::path::PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
