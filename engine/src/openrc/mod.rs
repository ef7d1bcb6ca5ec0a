//! systemd units to OpenRC: `.service` units become `openrc-run` init scripts,
//! `.timer` units busybox crond lines, `.path` units `inotifyd` watcher services.
//!
//! The converter is pure: it takes a unit's text and returns the script, the
//! runlevel to enable it in, cron lines and a report of every directive it could
//! not map exactly. Writing files and runlevel links is the caller's job (the
//! `forge openrc convert` command, or the system recipe writing into an FsTree).
//! docs/openrc.md holds the mapping tables.

pub mod convert;
pub mod cron;
pub mod depend;
pub mod magic;
pub mod path;
pub mod report;
pub mod script;
pub mod unit;

pub use convert::{convert_unit, Conversion, Converter, Override};
pub use magic::magic_service;
pub use report::{ReportEntry, Severity};

/// What can go wrong reading a unit. Unmappable directives are not errors: they
/// go into the conversion's report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file is not a unit file systemd would read.
    #[error("{file}:{line}: {why}")]
    Parse {
        /// The unit file.
        file: String,
        /// The line number.
        line: usize,
        /// What is wrong.
        why: String,
    },

    /// A directive's value cannot be read (bad quoting, a bad time span...).
    #[error("{file}:{line}: {key}={value}: {why}")]
    BadValue {
        /// The unit file.
        file: String,
        /// The line number.
        line: usize,
        /// The directive.
        key: String,
        /// Its value.
        value: String,
        /// What is wrong.
        why: String,
    },

    /// The unit's name cannot name an OpenRC service.
    #[error("{file}: {why}")]
    BadName {
        /// The unit file.
        file: String,
        /// What is wrong.
        why: String,
    },
}
