//! One module per subcommand.

pub mod build;
pub mod hash;
pub mod store;
pub mod image;

use crate::exit;

/// Picks the exit code for an error that reached the top.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<forge_store::Error>() {
            return match e {
                forge_store::Error::NoRoot => exit::ENVIRONMENT,
                forge_store::Error::Io { .. }
                | forge_store::Error::Db { .. }
                | forge_store::Error::DbTooNew { .. }
                | forge_store::Error::NarOutput { .. }
                | forge_store::Error::Corrupt { .. } => exit::FAILED,
                _ => exit::BAD_INPUT,
            };
        }
        if let Some(code) = image::exit_code_for(cause) {
            return code;
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return exit::BAD_INPUT;
        }
    }
    exit::FAILED
}
