//! `forge fetch-git`: the git fetcher by hand, to debug a pinned checkout.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use forge_engine::fetch::Mirrors;
use forge_engine::git::{self, GitSpec};

/// Check out one commit of a git repository the way a build does.
///
/// The output is a directory without `.git` holding the files exactly as git stores
/// them: no attribute filters, no line-ending conversion, no LFS smudging;
/// submodules are empty directories. Git mirrors map a repository URL to a local
/// repository: --git-mirror URL=DIR, $FORGE_GIT_MIRRORS (URL=DIR words), or
/// `git-mirror = URL DIR` lines in the config file (see docs/mirrors.md).
#[derive(Args)]
pub struct FetchGitArgs {
    /// The repository (any URL or path git understands)
    url: String,
    /// The full commit id to check out
    #[arg(long)]
    rev: String,
    /// Only this path of the tree (repeatable); kept at its place
    #[arg(long, value_name = "PATH")]
    subpath: Vec<String>,
    /// A local repository standing in for URL (repeatable)
    #[arg(long, value_name = "URL=DIR")]
    git_mirror: Vec<String>,
    /// Use no network: only git mirrors and local repositories
    #[arg(long)]
    offline: bool,
    /// Where to put the checkout (created; must be absent or empty)
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
}

impl FetchGitArgs {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let mirrors = Mirrors::load(&[], &self.git_mirror)?;
        let spec = GitSpec { url: self.url, rev: self.rev, subpaths: self.subpath };
        let done = git::fetch(&spec, &mirrors, self.offline, &self.output)
            .with_context(|| format!("cannot check out {} at {}", spec.url, spec.rev))?;
        println!("{}", self.output.display());
        eprintln!("checked out {} at {} from {}: {} entries", spec.url, spec.rev, done.source, done.entries);
        Ok(ExitCode::SUCCESS)
    }
}
