//! The engine's error type: one enum, wrapping each format module's own error.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] forge_store::Error),

    #[error("derivation `{name}` is invalid: {why}")]
    BadDerivation { name: String, why: String },

    #[error("there is no recipe `{name}`{}; `forge list` shows them all", did_you_mean(close))]
    UnknownRecipe { name: String, close: Vec<String> },

    #[error("this forge has no builtin `{name}` version {version} (it has {known}); a newer forge may")]
    UnknownBuiltin { name: String, version: u32, known: String },

    #[error("{path}: cannot {context}: {why}")]
    Record { path: std::path::PathBuf, context: String, why: String },

    #[error("{what}: expected {expected}, got {actual}; nothing was registered")]
    HashMismatch { what: String, expected: String, actual: String },

    #[error("step `{name}` failed: {why}")]
    StepFailed { name: String, why: String },

    #[error("{path}, an input of `{step}`, is not in the store; build the graph it belongs to first")]
    MissingInput { path: String, step: String },

    #[error(
        "`{name}` is {kind}, not a run step: forge shell opens the sandbox of run steps only \
         (package builds and other sandboxed scripts){}",
        run_steps_hint(run_steps)
    )]
    NotRunStep { name: String, kind: String, run_steps: Vec<String> },

    #[error("`{target}` needs no run step named `{step}`{}", run_steps_hint(run_steps))]
    NoSuchStep { step: String, target: String, run_steps: Vec<String> },

    #[error("recipe `{recipe}`: {why}")]
    Recipe { recipe: String, why: String },

    #[error("the recipes form a cycle: {}", cycle.join(" -> "))]
    Cycle { cycle: Vec<String> },

    #[error("two different derivations, `{first}` and `{second}`, claim the output {path}")]
    ConflictingOutputs { path: String, first: String, second: String },
    #[error(transparent)]
    FsTree(#[from] crate::fstree::FsTreeError),

    #[error(transparent)]
    Tar(#[from] crate::tar::TarError),

    #[error(transparent)]
    Ext4(#[from] crate::ext4::Ext4Error),
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    #[error(transparent)]
    Archive(#[from] crate::archive::Error),

    #[error(transparent)]
    Fetch(#[from] crate::fetch::Error),

    #[error(transparent)]
    Git(#[from] crate::git::Error),
    #[error(transparent)]
    Apk(#[from] crate::apk::Error),

    #[error(transparent)]
    Sparse(#[from] crate::sparse::SparseError),

    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),

    #[error(transparent)]
    Openrc(#[from] crate::openrc::Error),

    #[error(transparent)]
    Elf(#[from] crate::elf::ElfError),

    #[error(transparent)]
    Abi(#[from] crate::abi::AbiError),

    #[error("{path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<std::path::PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

fn run_steps_hint(steps: &[String]) -> String {
    if steps.is_empty() {
        "; it needs no run step".to_owned()
    } else {
        format!("; run steps to pick from: {} (--step NAME)", steps.join(", "))
    }
}

fn did_you_mean(close: &[String]) -> String {
    if close.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", close.join(", "))
    }
}
