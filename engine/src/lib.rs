//! forge-engine: everything between a recipe and a store path.
//!
//! Format modules (`nar` lives in forge-store; `apk`, `ext4`, `sparse`, ...) each
//! own an error enum for their format; [`Error`] wraps them with the context of the
//! step that failed.

pub mod archive;
pub mod error;
pub mod fetch;
pub mod git;

pub use error::{Error, Result};
