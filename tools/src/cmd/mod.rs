//! One module per subcommand.

pub mod abi;
pub mod apk;
pub mod build;
pub mod diff;
pub mod fetch;
pub mod fetch_git;
pub mod hash;
pub mod image;
pub mod lock;
pub mod openrc;
pub mod sandbox;
pub mod shell;
pub mod sign;
pub mod store;
pub mod unpack;
pub mod verify;

use crate::exit;

/// Picks the exit code for an error that reached the top.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    err.chain().find_map(code_for).unwrap_or(exit::FAILED)
}

/// The engine's error wraps module errors transparently, so they are not in the
/// source chain themselves: unwrap them here.
fn engine_code(e: &forge_engine::Error) -> u8 {
    use forge_engine::Error as E;
    if let E::World { source, .. } = e {
        return engine_code(source);
    }
    let inner: Option<&(dyn std::error::Error + 'static)> = match e {
        E::Store(x) => Some(x),
        E::Sandbox(x) => Some(x),
        E::Archive(x) => Some(x),
        E::Fetch(x) => Some(x),
        E::Git(x) => Some(x),
        E::Openrc(x) => Some(x),
        E::Ext4(x) => Some(x),
        E::FsTree(x) => Some(x),
        E::Tar(x) => Some(x),
        E::Apk(x) => Some(x),
        E::Abi(x) => Some(x),
        E::Elf(x) => Some(x),
        _ => None,
    };
    if let Some(code) = inner.and_then(code_for) {
        return code;
    }
    match e {
        E::BadDerivation { .. } | E::UnknownRecipe { .. } | E::Cycle { .. } | E::MissingInput { .. } => exit::BAD_INPUT,
        E::ConflictingOutputs { .. } | E::Recipe { .. } | E::UnknownBuiltin { .. } | E::StaleLock { .. } => {
            exit::BAD_INPUT
        }
        E::NotRunStep { .. } | E::NoSuchStep { .. } => exit::BAD_INPUT,
        _ => exit::FAILED,
    }
}

fn code_for(cause: &(dyn std::error::Error + 'static)) -> Option<u8> {
    if let Some(e) = cause.downcast_ref::<forge_engine::Error>() {
        return Some(engine_code(e));
    }
    if let Some(e) = cause.downcast_ref::<forge_engine::sandbox::SandboxError>() {
        return Some(sandbox_exit_code(e));
    }
    if let Some(e) = cause.downcast_ref::<forge_engine::apk::Error>() {
        // An unsatisfiable world is a failed resolution; anything else (missing,
        // malformed, altered or untrusted input) is bad input.
        return Some(if e.is_unsatisfiable() { exit::FAILED } else { exit::BAD_INPUT });
    }
    if let Some(e) = cause.downcast_ref::<forge_store::Error>() {
        return Some(match e {
            forge_store::Error::NoRoot => exit::ENVIRONMENT,
            forge_store::Error::Io { .. }
            | forge_store::Error::Db { .. }
            | forge_store::Error::DbTooNew { .. }
            | forge_store::Error::NarOutput { .. }
            | forge_store::Error::Corrupt { .. } => exit::FAILED,
            _ => exit::BAD_INPUT,
        });
    }
    if let Some(code) = image::exit_code_for(cause) {
        return Some(code);
    }
    if let Some(e) = cause.downcast_ref::<forge_engine::archive::Error>() {
        return Some(match e {
            forge_engine::archive::Error::Io { error, .. } if error.kind() != std::io::ErrorKind::NotFound => {
                exit::FAILED
            }
            _ => exit::BAD_INPUT,
        });
    }
    if let Some(e) = cause.downcast_ref::<forge_engine::fetch::Error>() {
        use forge_engine::fetch::Error as F;
        return Some(match e {
            F::Failed { .. } | F::Unreachable { .. } | F::Io { .. } => exit::FAILED,
            F::Client { .. } => exit::ENVIRONMENT,
            _ => exit::BAD_INPUT,
        });
    }
    if let Some(e) = cause.downcast_ref::<forge_engine::git::Error>() {
        use forge_engine::git::Error as G;
        return Some(match e {
            G::GitMissing { .. } => exit::ENVIRONMENT,
            G::Git { .. } | G::Io { .. } => exit::FAILED,
            _ => exit::BAD_INPUT,
        });
    }
    if cause.downcast_ref::<forge_engine::diff::DiffError>().is_some() {
        // Every diff error is about an input that could not be read as a tree.
        return Some(exit::BAD_INPUT);
    }
    if let Some(e) = cause.downcast_ref::<forge_engine::dsse::DsseError>() {
        use forge_engine::dsse::DsseError as D;
        // A key that cannot be read is bad input; a signature that does not verify is
        // a failed verification.
        return Some(if matches!(e, D::Key { .. } | D::Io { .. }) { exit::BAD_INPUT } else { exit::FAILED });
    }
    if cause.downcast_ref::<forge_engine::config::ConfigError>().is_some() {
        return Some(exit::BAD_INPUT);
    }
    if cause.downcast_ref::<forge_engine::openrc::Error>().is_some() {
        return Some(exit::BAD_INPUT);
    }
    if cause.downcast_ref::<forge_engine::abi::AbiError>().is_some()
        || cause.downcast_ref::<forge_engine::elf::ElfError>().is_some()
    {
        return Some(exit::BAD_INPUT);
    }
    if cause.downcast_ref::<std::io::Error>().is_some() {
        return Some(exit::BAD_INPUT);
    }
    None
}

fn sandbox_exit_code(e: &forge_engine::sandbox::SandboxError) -> u8 {
    use forge_engine::sandbox::SandboxError as E;
    match e {
        _ if e.is_environment() => exit::ENVIRONMENT,
        E::InvalidSpec { .. } | E::Io { .. } | E::Exec { .. } => exit::BAD_INPUT,
        _ => exit::FAILED,
    }
}
