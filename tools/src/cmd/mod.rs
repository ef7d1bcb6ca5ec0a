//! One module per subcommand.

pub mod build;
pub mod hash;
pub mod store;
pub mod image;
pub mod sandbox;

use crate::exit;

/// Picks the exit code for an error that reached the top.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<forge_engine::sandbox::SandboxError>() {
            return sandbox_exit_code(e);
        }
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

fn sandbox_exit_code(e: &forge_engine::sandbox::SandboxError) -> u8 {
    use forge_engine::sandbox::SandboxError as E;
    match e {
        _ if e.is_environment() => exit::ENVIRONMENT,
        E::InvalidSpec { .. } | E::Io { .. } | E::Exec { .. } => exit::BAD_INPUT,
        _ => exit::FAILED,
    }
}
