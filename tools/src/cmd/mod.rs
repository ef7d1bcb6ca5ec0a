//! One module per subcommand.

pub mod hash;
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

fn sandbox_exit_code(e: &forge_engine::sandbox::SandboxError) -> u8 {
    use forge_engine::sandbox::SandboxError as E;
    match e {
        _ if e.is_environment() => exit::ENVIRONMENT,
        E::InvalidSpec { .. } | E::Io { .. } | E::Exec { .. } => exit::BAD_INPUT,
        _ => exit::FAILED,
    }
}
