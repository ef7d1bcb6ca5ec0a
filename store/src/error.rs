//! The store's one error type. Every variant names the path or text it is about,
//! so a message can be shown to the user as it is.

use std::path::PathBuf;

/// A result whose error is the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the store, each naming what it is about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A hash in text form could not be parsed.
    #[error("invalid hash `{text}`: {why}")]
    BadHash {
        /// The text as given.
        text: String,
        /// What is wrong with it.
        why: String,
    },

    /// A store path could not be parsed (wrong directory, hash or name).
    #[error("invalid store path `{path}`: {why}")]
    BadStorePath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        why: String,
    },

    /// The name part of a store path is empty, too long or has forbidden characters.
    #[error("invalid store path name `{name}`: {why}")]
    BadName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        why: String,
    },

    /// An I/O error on a file or directory.
    #[error("{path}: {source}")]
    Io {
        /// The path the operation was on.
        path: PathBuf,
        /// The error the system gave.
        source: std::io::Error,
    },

    /// A tree holds a file kind a store path cannot (device node, fifo, socket).
    #[error("{path}: {kind} cannot go into the store (only regular files, directories and symlinks can); remove it")]
    UnsupportedFile {
        /// The offending file.
        path: PathBuf,
        /// What it is, in words.
        kind: &'static str,
    },

    /// A file changed size while it was hashed or copied.
    #[error("{path}: the file changed size while it was being read; make sure nothing writes to it and retry")]
    FileChanged {
        /// The file.
        path: PathBuf,
    },

    /// A NAR stream is not well formed.
    #[error("malformed NAR at byte {offset}: {why}")]
    BadNar {
        /// Where in the stream the problem was found.
        offset: u64,
        /// What is wrong.
        why: String,
    },

    /// Writing a NAR stream failed.
    #[error("cannot write the NAR stream: {source}")]
    NarOutput {
        /// The error of the writer.
        source: std::io::Error,
    },

    /// A NAR cannot be restored at this path (it exists, or its parent is missing).
    #[error("{path}: cannot restore a NAR there: {why}")]
    RestoreTarget {
        /// The target path.
        path: PathBuf,
        /// Why not.
        why: String,
    },

    /// The store database failed.
    #[error("store database {path}: {context}: {source}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// What forge was doing.
        context: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },

    /// The database has a schema newer than this forge knows.
    #[error("store database {path} was written by a newer forge (schema {found}, this forge knows up to {known}); upgrade forge")]
    DbTooNew {
        /// The database file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest schema this forge knows.
        known: i64,
    },

    /// A path is not registered as valid in the store.
    #[error("{path} is not a valid path in this store; add it with `forge store add` or build it first")]
    NotValid {
        /// The store path.
        path: String,
    },

    /// A tree to register is not in the store's tmp directory (so it cannot be renamed in).
    #[error("{path} is not inside the store's tmp directory {tmp}; create it with Store::new_temp_dir")]
    NotInTemp {
        /// The tree.
        path: PathBuf,
        /// The store's tmp directory.
        tmp: PathBuf,
    },

    /// A new path refers to a path that is not valid (any more).
    #[error(
        "{path}: refers to {reference}, which is no longer valid (was it garbage-collected during the build?); rebuild"
    )]
    InvalidReference {
        /// The path being registered.
        path: String,
        /// The path it refers to.
        reference: String,
    },

    /// A path was registered without holding its exclusive lock.
    #[error("{path}: registering needs an exclusive lock on the path; take it with Store::lock_path")]
    NotLocked {
        /// The store path.
        path: String,
    },

    /// A gc root name or target is not acceptable.
    #[error("gc root `{name}`: {why}")]
    BadRoot {
        /// The root's name.
        name: String,
        /// What is wrong with it.
        why: String,
    },

    /// No store root was given and none can be derived from the environment.
    #[error("cannot tell where the store lives: set $FORGE_STORE or $HOME, or pass --store DIR")]
    NoRoot,

    /// The store's files disagree with its database.
    #[error("{path}: {why}")]
    Corrupt {
        /// The path found corrupt.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
