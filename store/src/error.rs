//! The store's one error type. Every variant names the path or text it is about,
//! so a message can be shown to the user as it is.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid hash `{text}`: {why}")]
    BadHash { text: String, why: String },

    #[error("invalid store path `{path}`: {why}")]
    BadStorePath { path: String, why: String },

    #[error("invalid store path name `{name}`: {why}")]
    BadName { name: String, why: String },

    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
