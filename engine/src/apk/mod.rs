//! Alpine packages as apk-tools 2.x speaks them: versions, dependencies, signed apk v2
//! packages and APKINDEX files, a resolver, the lock file, producing apks, and the pure
//! parts of an installed database.
//!
//! Trust chain: keys directory -> signed APKINDEX (`C:` checksum, `S:` size) -> the apk's
//! control stream (signature, `Q1` checksum) -> `datahash` of the data stream -> each
//! file's `APK-TOOLS.checksum.SHA1`.

pub mod autodeps;
pub mod build;
pub mod checksum;
pub mod db;
pub mod dep;
pub mod index;
pub mod install;
pub mod keys;
pub mod lock;
pub mod make;
pub mod package;
pub mod pkginfo;
pub mod repo;
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
    /// An I/O error.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },

    /// A file or record is malformed.
    #[error("{what}: malformed: {reason}")]
    Format {
        /// What was read.
        what: String,
        /// What is wrong.
        reason: String,
    },

    /// A dependency is not valid.
    #[error("{what}: invalid dependency {dep:?}: {reason}")]
    Dependency {
        /// Where it was read.
        what: String,
        /// The dependency text.
        dep: String,
        /// What is wrong.
        reason: String,
    },

    /// A file that must be signed is not.
    #[error("{what}: unsigned: no .SIGN.RSA.* or .SIGN.RSA256.* entry in the signature stream")]
    Unsigned {
        /// The file.
        what: String,
    },

    #[error(
        "{what}: signed by {signers}, but no such key is in {dir}: add the publisher's public key there \
         (only a key you trust)"
    )]
    /// No signer's key is in the trusted keys directory.
    UntrustedKey {
        /// The signed file.
        what: String,
        /// The key names it was signed with.
        signers: String,
        /// The keys directory.
        dir: PathBuf,
    },

    #[error(
        "{what}: the {algo} signature does not verify with key {key}: the file was altered or signed by another key"
    )]
    /// A signature does not verify.
    BadSignature {
        /// The signed file.
        what: String,
        /// The key.
        key: String,
        /// The digest algorithm (`SHA1`, `SHA256`, `SHA512`).
        algo: &'static str,
    },

    /// A checksum or field differs from what its record declares.
    #[error("{what}: {field} mismatch: expected {expected}, found {actual}")]
    Mismatch {
        /// The file.
        what: String,
        /// The field.
        field: String,
        /// What the record declares.
        expected: String,
        /// What was found.
        actual: String,
    },

    /// A key file is not a usable RSA key.
    #[error("{path}: not a usable RSA key: {reason}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// The world cannot be resolved; the text says what conflicts or is missing.
    #[error("{0}")]
    Unsatisfiable(String),

    #[error(
        "file conflict: /{path} is in both {first} and {second}, and neither may replace the other \
         (add `replaces` to one of them, or drop one from the world)"
    )]
    /// Two packages install the same file and neither may replace the other.
    Conflict {
        /// The file, relative to the root.
        path: String,
        /// The package installed first.
        first: String,
        /// The other package.
        second: String,
    },
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
