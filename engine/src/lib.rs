//! forge-engine: everything between a recipe and a store path.
//!
//! Format modules (`nar` lives in forge-store; `apk`, `ext4`, `sparse`, ...) each
//! own an error enum for their format; [`Error`] wraps them with the context of the
//! step that failed.

pub mod error;

pub use error::{Error, Result};
pub mod ext4;
pub mod fstree;
pub mod manifest;
pub mod sparse;
pub mod tar;
