//! Exit codes, documented in `forge --help`. Scripts rely on them: never renumber.

use std::process::ExitCode;

/// The command did what was asked.
pub const OK: u8 = 0;
/// The work failed: a build failed, a check found a difference, verify found bad paths.
pub const FAILED: u8 = 1;
/// The command line was wrong (unknown flag, missing argument).
pub const USAGE: u8 = 2;
/// An input was invalid or missing: a file, a store path, a hash, a recipe name.
pub const BAD_INPUT: u8 = 3;
/// The machine cannot do it: the sandbox cannot be set up, a tool is missing.
pub const ENVIRONMENT: u8 = 4;

/// The exit codes as `forge --help` lists them.
pub const HELP: &str = "\
Exit status:
  0  success
  1  the work failed (a build, a check, a verification)
  2  the command line was wrong
  3  an input was invalid or missing (file, store path, hash, recipe)
  4  this machine cannot do it (sandbox setup, a missing tool); the message says how to fix it";

/// `n` as the process's exit code.
pub fn code(n: u8) -> ExitCode {
    ExitCode::from(n)
}

/// The number `code` makes the process exit with. `ExitCode` keeps it private on
/// stable Rust; the binary's own `main` (see src/main.rs) needs it to exit by itself.
pub fn number(code: ExitCode) -> u8 {
    (0..=u8::MAX).find(|&n| ExitCode::from(n) == code).unwrap_or(FAILED)
}
