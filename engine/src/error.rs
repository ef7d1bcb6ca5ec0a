//! The engine's error type: one enum, wrapping each format module's own error.

/// A result whose error is the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong between a recipe and a store path; format modules' errors are wrapped as they are.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] forge_store::Error),

    /// A derivation is not valid (bad name, system, outputs, env, JSON).
    #[error("derivation `{name}` is invalid: {why}")]
    BadDerivation {
        /// The derivation's name.
        name: String,
        /// What is wrong.
        why: String,
    },

    /// No recipe has this name.
    #[error("there is no recipe `{name}`{}; `forge list` shows them all", did_you_mean(close))]
    UnknownRecipe {
        /// The name asked for.
        name: String,
        /// Recipe names close to it.
        close: Vec<String>,
    },

    /// A derivation names a builtin or version this forge does not have.
    #[error("this forge has no builtin `{name}` version {version} (it has {known}); a newer forge may")]
    UnknownBuiltin {
        /// The builtin's name.
        name: String,
        /// Its version.
        version: u32,
        /// The builtins this forge has.
        known: String,
    },

    /// A record of the store database could not be read or written.
    #[error("{path}: cannot {context}: {why}")]
    Record {
        /// The database.
        path: std::path::PathBuf,
        /// What forge was doing.
        context: String,
        /// What went wrong.
        why: String,
    },

    /// A fetched or built result does not have its declared hash.
    #[error("{what}: expected {expected}, got {actual}; nothing was registered")]
    HashMismatch {
        /// What was checked.
        what: String,
        /// The declared hash.
        expected: String,
        /// The hash found.
        actual: String,
    },

    /// A build step failed.
    #[error("step `{name}` failed: {why}")]
    StepFailed {
        /// The step's name.
        name: String,
        /// How it failed.
        why: String,
    },

    /// A step's input is not in the store.
    #[error("{path}, an input of `{step}`, is not in the store; build the graph it belongs to first")]
    MissingInput {
        /// The input's store path.
        path: String,
        /// The step's name.
        step: String,
    },

    #[error(
        "`{name}` is {kind}, not a run step: forge shell opens the sandbox of run steps only \
         (package builds and other sandboxed scripts){}",
        run_steps_hint(run_steps)
    )]
    /// `forge shell` was asked to open a step that is not a run step.
    NotRunStep {
        /// The step's name.
        name: String,
        /// What kind of step it is.
        kind: String,
        /// The run steps of its closure, which can be opened.
        run_steps: Vec<String>,
    },

    /// `forge shell --step` named no run step of the recipe's closure.
    #[error("`{target}` needs no run step named `{step}`{}", run_steps_hint(run_steps))]
    NoSuchStep {
        /// The name asked for.
        step: String,
        /// The recipe's target.
        target: String,
        /// The run steps of its closure.
        run_steps: Vec<String>,
    },

    /// A recipe function failed.
    #[error("recipe `{recipe}`: {why}")]
    Recipe {
        /// The recipe.
        recipe: String,
        /// Why.
        why: String,
    },

    /// Recipes call each other in a cycle.
    #[error("the recipes form a cycle: {}", cycle.join(" -> "))]
    Cycle {
        /// The recipes of the cycle, the first repeated at the end.
        cycle: Vec<String>,
    },

    /// Two different derivations claim the same output path.
    #[error("two different derivations, `{first}` and `{second}`, claim the output {path}")]
    ConflictingOutputs {
        /// The file or path concerned.
        path: String,
        /// One derivation's name.
        first: String,
        /// The other's.
        second: String,
    },

    /// World.
    #[error("package world `{world}`: {context}: {source}")]
    World {
        /// The world's name.
        world: String,
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: Box<Error>,
    },

    #[error(
        "package world `{world}`: the lock {} was made for another world ({why}); run `forge lock {recipe}` to \
         resolve it again",
        path.display()
    )]
    /// The value.
    StaleLock {
        /// The world's name.
        world: String,
        /// The file or path concerned.
        path: std::path::PathBuf,
        /// What is wrong.
        why: String,
        /// The recipe that declares it.
        recipe: String,
    },
    /// A file tree operation failed.
    #[error(transparent)]
    FsTree(#[from] crate::fstree::FsTreeError),

    /// Reading or writing a tar archive failed.
    #[error(transparent)]
    Tar(#[from] crate::tar::TarError),

    /// Reading or writing an ext4 image failed.
    #[error(transparent)]
    Ext4(#[from] crate::ext4::Ext4Error),
    /// The sandbox could not run a step.
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    /// An archive could not be unpacked.
    #[error(transparent)]
    Archive(#[from] crate::archive::Error),

    /// A download failed.
    #[error(transparent)]
    Fetch(#[from] crate::fetch::Error),

    /// A git checkout failed.
    #[error(transparent)]
    Git(#[from] crate::git::Error),
    /// An Alpine package or index is bad, untrusted or unsatisfiable.
    #[error(transparent)]
    Apk(#[from] crate::apk::Error),

    /// Reading or writing an Android sparse image failed.
    #[error(transparent)]
    Sparse(#[from] crate::sparse::SparseError),

    /// A manifest could not be made.
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),

    /// A systemd unit could not be converted.
    #[error(transparent)]
    Openrc(#[from] crate::openrc::Error),

    /// An ELF file could not be read.
    #[error(transparent)]
    Lfs(#[from] crate::rootfs::lfs::LfsError),

    /// A elf error.
    #[error(transparent)]
    Elf(#[from] crate::elf::ElfError),

    /// An ABI check could not run.
    #[error(transparent)]
    Abi(#[from] crate::abi::AbiError),

    /// A sbom error.
    #[error(transparent)]
    Sbom(#[from] crate::sbom::SbomError),

    /// A config error.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),

    /// An I/O error.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
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
