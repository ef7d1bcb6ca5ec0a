//! forge-store: where everything forge builds lives.
//!
//! A store path is named by a hash of its content or of the derivation that made it
//! (see [`path`]), serialized as a NAR exactly as Nix does (so `nix-hash` agrees),
//! recorded in a SQLite database and immutable once registered. This crate knows
//! nothing of how paths are built.

#![deny(missing_docs)]

pub mod base32;
pub mod db;
pub mod error;
pub mod hash;
pub mod lock;
pub mod nar;
pub mod path;
pub mod refs;
pub mod store;
pub mod tree;

pub use db::PathInfo;
pub use error::{Error, Result};
pub use hash::{Algo, Hash};
pub use lock::{LockMode, PathLock, TempPath};
pub use path::{StorePath, STORE_DIR};
pub use store::{GcReport, Output, Store, VerifyReport};
