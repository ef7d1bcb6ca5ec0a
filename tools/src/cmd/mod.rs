//! One module per subcommand.

pub mod fetch;
pub mod fetch_git;
pub mod hash;
pub mod unpack;

use crate::exit;

/// Picks the exit code for an error that reached the top.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<forge_store::Error>() {
            return match e {
                forge_store::Error::Io { .. } => exit::FAILED,
                _ => exit::BAD_INPUT,
            };
        }
        if let Some(e) = cause.downcast_ref::<forge_engine::archive::Error>() {
            return match e {
                forge_engine::archive::Error::Io { error, .. } if error.kind() != std::io::ErrorKind::NotFound => {
                    exit::FAILED
                }
                _ => exit::BAD_INPUT,
            };
        }
        if let Some(e) = cause.downcast_ref::<forge_engine::fetch::Error>() {
            use forge_engine::fetch::Error as F;
            return match e {
                F::Failed { .. } | F::Io { .. } => exit::FAILED,
                F::Client { .. } => exit::ENVIRONMENT,
                _ => exit::BAD_INPUT,
            };
        }
        if let Some(e) = cause.downcast_ref::<forge_engine::git::Error>() {
            use forge_engine::git::Error as G;
            return match e {
                G::GitMissing { .. } => exit::ENVIRONMENT,
                G::Git { .. } | G::Io { .. } => exit::FAILED,
                _ => exit::BAD_INPUT,
            };
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return exit::BAD_INPUT;
        }
    }
    exit::FAILED
}
