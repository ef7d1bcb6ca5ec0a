//! `forge lock`: resolve a recipe's package worlds against their live repositories and
//! write the lock files that builds read.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use forge_engine::dsl::DeclaredWorld;
use forge_engine::registry::Registry;
use forge_engine::world::{self, ApkWorld, Locked};

use super::build::{ArchArg, FetchArgs};
use crate::exit;

pub const LONG_ABOUT: &str = "\
Resolve a recipe's package worlds against their live repositories and write the lock
files that builds read. This is the only step of forge that reads something unpinned.

For each Alpine package world the recipe declares (its repositories, the keys it
trusts, its world, its arch and its lock file), forge:
  1. fetches the tarball that holds the trusted keys (for alpine-system the minirootfs,
     pinned by sha256: its /etc/apk/keys is the root of trust) and takes its key files;
  2. fetches each repository's <repository>/<arch>/APKINDEX.tar.gz and verifies its
     signature against those keys;
  3. resolves the world (the highest version that satisfies everything wins);
  4. fetches every chosen .apk and verifies it in full (signature, checksum and size
     against the signed index, datahash, every file's checksum);
  5. writes the lock (sorted by name, byte-stable; format in docs/apk-lock.md) and
     prints what changed since the previous one.

`forge build` then reads only the lock: each package is a fixed-output download
pinned by the sha256 written here; no index is read. Commit the lock with the recipes.

Mirrors (--mirror, $FORGE_MIRRORS, the config file) are asked for indexes and
packages under the URL's path (a copy of the repository tree serves them) and for the
key tarball by hash or file name; see docs/mirrors.md. With --offline only local
mirrors and file:// repositories are used.

Errors name what failed: an unreachable repository (every source tried), an index or
package whose signature does not verify, or an unsatisfiable world (the chain of
packages that leads to the missing or conflicting dependency, exit status 1).";

#[derive(Args)]
pub struct LockArgs {
    /// The recipe whose package worlds to lock (`forge list` shows the recipes)
    recipe: String,
    #[command(flatten)]
    fetch: FetchArgs,
    #[command(flatten)]
    arch: ArchArg,
}

pub fn lock(registry: &Registry, a: LockArgs) -> anyhow::Result<ExitCode> {
    let mut f = a.arch.forge();
    // The lock files are about to be rewritten: a stale or missing one must not stop it.
    f.ignore_locks();
    registry.call(&a.recipe, &mut f)?;
    let worlds: Vec<DeclaredWorld> = f.apk_worlds().to_vec();
    if worlds.is_empty() {
        bail!("recipe `{}` declares no package world, so there is nothing to lock", a.recipe);
    }
    let fetcher = a.fetch.fetcher()?;
    for d in &worlds {
        let w = &d.world;
        eprintln!("locking {} for {} from {} repositories", w.name, w.arch, w.repositories.len());
        let locked = world::lock(w, &fetcher, &mut |line| eprintln!("  {line}"))?;
        let wrote = world::write_lock(w, &locked.lock)?;
        print!("{}", summary(w, &locked, wrote));
    }
    Ok(exit::code(exit::OK))
}

/// What `forge lock` prints for one world: count, size, where, and what changed.
fn summary(w: &ApkWorld, locked: &Locked, wrote: bool) -> String {
    let lock = &locked.lock;
    let size = lock.total_size();
    let mut s = format!(
        "{}: {} packages, {:.1} MiB ({size} bytes), {} {}\n",
        w.name,
        lock.packages.len(),
        size as f64 / (1024.0 * 1024.0),
        if wrote { "written to" } else { "unchanged in" },
        shown(&w.lock_file)
    );
    match &locked.previous {
        None => s.push_str("  a new lock (there was no readable lock before)\n"),
        Some(old) => {
            let changes = world::changes(old, lock);
            if changes.is_empty() {
                s.push_str("  no package changed\n");
            }
            for c in changes {
                s.push_str(&format!("  {c}\n"));
            }
        }
    }
    s
}

/// A path relative to the current directory when it is under it.
pub(crate) fn shown(path: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    let rel = cwd.as_deref().and_then(|c| path.strip_prefix(c).ok());
    rel.unwrap_or(path).display().to_string()
}
