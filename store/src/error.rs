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

    #[error("{path}: {kind} cannot go into the store (only regular files, directories and symlinks can); remove it")]
    UnsupportedFile { path: PathBuf, kind: &'static str },

    #[error("{path}: the file changed size while it was being read; make sure nothing writes to it and retry")]
    FileChanged { path: PathBuf },

    #[error("malformed NAR at byte {offset}: {why}")]
    BadNar { offset: u64, why: String },

    #[error("cannot write the NAR stream: {source}")]
    NarOutput { source: std::io::Error },

    #[error("{path}: cannot restore a NAR there: {why}")]
    RestoreTarget { path: PathBuf, why: String },

    #[error("store database {path}: {context}: {source}")]
    Db { path: PathBuf, context: String, source: rusqlite::Error },

    #[error("store database {path} was written by a newer forge (schema {found}, this forge knows up to {known}); upgrade forge")]
    DbTooNew { path: PathBuf, found: i64, known: i64 },

    #[error("{path} is not a valid path in this store; add it with `forge store add` or build it first")]
    NotValid { path: String },

    #[error("{path} is not inside the store's tmp directory {tmp}; create it with Store::new_temp_dir")]
    NotInTemp { path: PathBuf, tmp: PathBuf },

    #[error(
        "{path}: refers to {reference}, which is no longer valid (was it garbage-collected during the build?); rebuild"
    )]
    InvalidReference { path: String, reference: String },

    #[error("{path}: registering needs an exclusive lock on the path; take it with Store::lock_path")]
    NotLocked { path: String },

    #[error("gc root `{name}`: {why}")]
    BadRoot { name: String, why: String },

    #[error("cannot tell where the store lives: set $FORGE_STORE or $HOME, or pass --store DIR")]
    NoRoot,

    #[error("{path}: {why}")]
    Corrupt { path: PathBuf, why: String },
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
