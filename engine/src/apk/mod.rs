//! Alpine packages as apk-tools 2.x speaks them: versions, dependencies, signed apk v2
//! packages and APKINDEX files, a resolver, the lock file, producing apks, and the pure
//! parts of an installed database.
//!
//! Trust chain: keys directory -> signed APKINDEX (`C:` checksum, `S:` size) -> the apk's
//! control stream (signature, `Q1` checksum) -> `datahash` of the data stream -> each
//! file's `APK-TOOLS.checksum.SHA1`.

pub mod build;
pub mod checksum;
pub mod db;
pub mod dep;
pub mod index;
pub mod install;
pub mod keys;
pub mod lock;
pub mod package;
pub mod pkginfo;
pub mod resolve;
pub mod sign;
pub mod streams;
pub mod tarball;
pub mod version;

#[cfg(test)]
pub(crate) mod testutil;

use std::path::PathBuf;

/// Everything that can go wrong reading, verifying, resolving or writing Alpine data.
/// Each variant names the input it is about (`what`: a path or a description).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{what}: malformed: {reason}")]
    Format { what: String, reason: String },

    #[error("{what}: invalid dependency {dep:?}: {reason}")]
    Dependency { what: String, dep: String, reason: String },

    #[error("{what}: unsigned: no .SIGN.RSA.* or .SIGN.RSA256.* entry in the signature stream")]
    Unsigned { what: String },

    #[error(
        "{what}: signed by {signers}, but no such key is in {dir}: add the publisher's public key there \
         (only a key you trust)"
    )]
    UntrustedKey { what: String, signers: String, dir: PathBuf },

    #[error(
        "{what}: the {algo} signature does not verify with key {key}: the file was altered or signed by another key"
    )]
    BadSignature { what: String, key: String, algo: &'static str },

    #[error("{what}: {field} mismatch: expected {expected}, found {actual}")]
    Mismatch { what: String, field: String, expected: String, actual: String },

    #[error("{path}: not a usable RSA key: {reason}")]
    Key { path: PathBuf, reason: String },

    #[error("{0}")]
    Unsatisfiable(String),

    #[error(
        "file conflict: /{path} is in both {first} and {second}, and neither may replace the other \
         (add `replaces` to one of them, or drop one from the world)"
    )]
    Conflict { path: String, first: String, second: String },
}

impl Error {
    pub(crate) fn format(what: &str, reason: impl Into<String>) -> Error {
        Error::Format { what: what.to_owned(), reason: reason.into() }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    /// Whether this is a failed resolution (the inputs were fine, the world cannot be
    /// met), as opposed to missing, malformed, altered or untrusted input.
    pub fn is_unsatisfiable(&self) -> bool {
        matches!(self, Error::Unsatisfiable(_))
    }
}

/// The module's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
