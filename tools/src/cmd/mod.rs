//! One module per subcommand.

pub mod apk;
pub mod hash;

use crate::exit;

/// Picks the exit code for an error that reached the top.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<forge_engine::apk::Error>() {
            // An unsatisfiable world is a failed resolution; anything else (missing,
            // malformed, altered or untrusted input) is bad input.
            return if e.is_unsatisfiable() { exit::FAILED } else { exit::BAD_INPUT };
        }
        if let Some(e) = cause.downcast_ref::<forge_store::Error>() {
            return match e {
                forge_store::Error::Io { .. } => exit::FAILED,
                _ => exit::BAD_INPUT,
            };
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return exit::BAD_INPUT;
        }
    }
    exit::FAILED
}
