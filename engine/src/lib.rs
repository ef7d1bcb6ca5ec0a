//! forge-engine: everything between a recipe and a store path.
//!
//! Format modules (`nar` lives in forge-store; `apk`, `ext4`, `sparse`, ...) each
//! own an error enum for their format; [`Error`] wraps them with the context of the
//! step that failed.

pub mod apk;
pub mod error;

pub use error::{Error, Result};
