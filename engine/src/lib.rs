//! forge-engine: everything between a recipe and a store path.
//!
//! Format modules (`nar` lives in forge-store; `apk`, `ext4`, `sparse`, ...) each
//! own an error enum for their format; [`Error`] wraps them with the context of the
//! step that failed.

#![deny(missing_docs)]

pub mod abi;
pub mod apk;
pub mod archive;
pub mod build;
pub mod builtins;
pub mod check;
pub mod config;
pub mod diff;
pub mod drv;
pub mod dsl;
pub mod dsse;
pub mod elf;
pub mod error;
pub mod ext4;
pub mod fetch;
pub mod fstree;
pub mod git;
pub mod manifest;
pub mod openrc;
pub mod package;
pub mod plan;
pub mod provenance;
pub mod record;
pub mod registry;
pub mod rootfs;
pub mod sandbox;
pub mod sbom;
pub mod sched;
pub mod shell;
pub mod sparse;
pub mod tar;
pub mod vendor;
pub mod why;
pub mod world;

pub use error::{Error, Result};
