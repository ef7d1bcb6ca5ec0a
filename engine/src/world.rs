//! Package worlds: the Alpine packages a recipe installs, declared as data.
//!
//! A recipe declares an [`ApkWorld`] with [`Forge::apk_world`](crate::dsl::Forge::apk_world):
//! the repositories, the keys it trusts (key files inside a pinned tarball: Alpine's
//! minirootfs `etc/apk/keys`, the root of trust; no key is copied into the repository),
//! the world (apk dependencies), the arch, and the lock file. Two commands use it:
//!
//! - `forge lock RECIPE` calls [`lock`], the only impure step of forge: it fetches the
//!   pinned tarball and takes its keys, fetches each repository's `APKINDEX.tar.gz`
//!   through the [`Fetcher`] (so mirrors and `file://` work), verifies the signatures,
//!   resolves the world, fetches and verifies every chosen package, and returns the
//!   [`Lock`] (format: docs/apk-lock.md), which [`write_lock`] writes.
//! - `forge build` reads only the lock: [`Forge::apk_install_world`](crate::dsl::Forge::apk_install_world)
//!   declares each locked `.apk` as a fixed-output download (its sha256 from the lock)
//!   and installs them with the `apk-install` builtin. No index is read at build time.
//!
//! ```
//! use forge_engine::world::ApkRepository;
//! let edge = ApkRepository::parse("@edge https://example.invalid/alpine/edge/testing").unwrap();
//! assert_eq!(edge.tag.as_deref(), Some("edge"));
//! assert_eq!(edge.line(), "@edge https://example.invalid/alpine/edge/testing");
//! ```

use std::path::{Path, PathBuf};

use crate::apk::checksum::hex;
use crate::apk::dep::Dep;
use crate::apk::index;
use crate::apk::keys::{self, Keys};
use crate::apk::lock::{self as apk_lock, Lock, LockInputs};
use crate::apk::resolve::{self, Repository};
use crate::error::{Error, Result};
use crate::fetch::{FetchSpec, Fetcher};
use crate::fstree::FsTree;

/// A recipe's Alpine package world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApkWorld {
    /// Names the world in messages and summaries: `alpine-3.20-x86_64`.
    pub name: String,
    /// apk architecture: `x86_64`, `aarch64`.
    pub arch: String,
    /// Searched in order; a package is fetched from the repository it was resolved from.
    pub repositories: Vec<ApkRepository>,
    /// The keys it trusts, from a pinned tarball.
    pub keys: PinnedKeys,
    /// apk dependencies: `name`, `name>=1.2`, `name@tag`, `so:libfoo.so.1`, `!name`.
    pub world: Vec<String>,
    /// The lock file (in the recipes' source tree, committed with them).
    pub lock_file: PathBuf,
}

/// One repository, as a line of `/etc/apk/repositories` spells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApkRepository {
    /// Without the arch directory: `https://dl-cdn.alpinelinux.org/alpine/v3.20/main`.
    pub url: String,
    /// A tagged repository serves only `name@tag` (and what such a package pulls in).
    pub tag: Option<String>,
}

impl ApkRepository {
    /// Parses `URL` or `@tag URL`.
    pub fn parse(line: &str) -> Result<ApkRepository> {
        let bad = |why: &str| Error::Recipe { recipe: "apk world".into(), why: format!("repository {line:?}: {why}") };
        let (tag, url) = match line.trim().strip_prefix('@') {
            Some(rest) => {
                let (tag, url) = rest.split_once(char::is_whitespace).ok_or_else(|| bad("`@tag` without a URL"))?;
                (Some(tag.to_owned()), url.trim())
            }
            None => (None, line.trim()),
        };
        if url.is_empty() || url.contains(char::is_whitespace) {
            return Err(bad("expected `URL` or `@tag URL`"));
        }
        Ok(ApkRepository { url: url.trim_end_matches('/').to_owned(), tag })
    }

    /// The `/etc/apk/repositories` line.
    pub fn line(&self) -> String {
        match &self.tag {
            Some(t) => format!("@{t} {}", self.url),
            None => self.url.clone(),
        }
    }
}

/// Trusted keys: the files of `dir` inside a tarball pinned by hash, fetched like any
/// fixed-output input (so `forge vendor` mirrors it and an offline lock works).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedKeys {
    /// The tarball's store name: the recipe's own fetch of it is the same node.
    pub name: String,
    /// Where the tarball is fetched from.
    pub urls: Vec<String>,
    /// `sha256:<hex or nix32>`.
    pub hash: String,
    /// The directory of key files inside it: `etc/apk/keys`.
    pub dir: String,
}

impl PinnedKeys {
    fn spec(&self) -> Result<FetchSpec> {
        Ok(FetchSpec { name: self.name.clone(), urls: self.urls.clone(), hash: self.hash.parse()? })
    }
}

impl ApkWorld {
    /// What a lock of this world records it was resolved from.
    pub fn inputs(&self) -> LockInputs {
        LockInputs {
            arch: self.arch.clone(),
            repositories: self.repositories.iter().map(ApkRepository::line).collect(),
            world: self.world.clone(),
        }
    }

    /// The world as parsed dependencies.
    pub fn deps(&self) -> Result<Vec<Dep>> {
        let what = format!("the world of {}", self.name);
        Ok(self.world.iter().map(|w| Dep::parse(w, &what)).collect::<Result<Vec<_>, _>>()?)
    }

    /// The lock file, when there is one.
    pub fn read_lock(&self) -> Result<Option<Lock>> {
        match std::fs::metadata(&self.lock_file) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io { path: self.lock_file.clone(), source: e }),
            Ok(_) => Ok(Some(Lock::read(&self.lock_file)?)),
        }
    }

    /// Why `lock` does not fit this world (resolved for another arch, repositories or
    /// world), or `None` when it does or when the lock does not record its inputs.
    pub fn stale(&self, lock: &Lock) -> Option<String> {
        let had = lock.inputs.as_ref()?;
        let now = self.inputs();
        let differs = |what: &str, had: &[String], now: &[String]| {
            let added: Vec<&str> = now.iter().filter(|x| !had.contains(x)).map(String::as_str).collect();
            let dropped: Vec<&str> = had.iter().filter(|x| !now.contains(x)).map(String::as_str).collect();
            let mut parts = Vec::new();
            if !added.is_empty() {
                parts.push(format!("the recipe's {what} adds {}", added.join(" ")));
            }
            if !dropped.is_empty() {
                parts.push(format!("drops {}", dropped.join(" ")));
            }
            if parts.is_empty() && had != now {
                parts.push(format!("the recipe's {what} is in another order"));
            }
            parts.join(" and ")
        };
        let why = if had.arch != now.arch {
            format!("it was made for {}, the recipe builds for {}", had.arch, now.arch)
        } else if had.repositories != now.repositories {
            differs("repositories", &had.repositories, &now.repositories)
        } else if had.world != now.world {
            differs("world", &had.world, &now.world)
        } else {
            return None;
        };
        Some(why)
    }
}

/// One repository index as `forge lock` read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexSummary {
    /// The index URL.
    pub url: String,
    /// How many packages.
    pub packages: usize,
    /// The key file that signed it.
    pub signer: String,
}

/// What [`lock`] made.
#[derive(Clone, Debug)]
pub struct Locked {
    /// The new lock, with the inputs it was resolved from.
    pub lock: Lock,
    /// The lock file as it was: `None` when there was none or it did not parse.
    pub previous: Option<Lock>,
    /// One summary per index read.
    pub indexes: Vec<IndexSummary>,
}

/// Resolves `world` against its live repositories and returns the lock (see the module
/// documentation); `log` receives one line per step. Nothing is written.
pub fn lock(world: &ApkWorld, fetcher: &Fetcher, log: &mut dyn FnMut(&str)) -> Result<Locked> {
    let context = |what: &str| {
        let world = world.name.clone();
        let context = what.to_owned();
        move |e: Error| Error::World { world, context, source: Box::new(e) }
    };
    let scratch = tempfile::tempdir().map_err(Error::io(std::env::temp_dir()))?;
    let keys = trusted_keys(world, fetcher, scratch.path(), log).map_err(context("taking its keys"))?;
    let mut repos = Vec::new();
    let mut indexes = Vec::new();
    for (i, r) in world.repositories.iter().enumerate() {
        let (repo, summary) = read_index(world, r, i, fetcher, &keys, scratch.path())
            .map_err(context(&format!("repository {}", r.url)))?;
        log(&format!("{}: {} packages, signed by {}", summary.url, summary.packages, summary.signer));
        repos.push(repo);
        indexes.push(summary);
    }
    let deps = world.deps()?;
    let resolution = resolve::resolve(&repos, &world.arch, &deps).map_err(|e| context("resolving")(e.into()))?;
    log(&format!("resolved {} packages; fetching and verifying each", resolution.packages.len()));
    let lock = fetch_and_verify(world, &resolution, &repos, &keys, fetcher, scratch.path())
        .map_err(context("fetching the resolved packages"))?;
    // An unreadable previous lock is about to be replaced; it only loses the change list.
    let previous = world.read_lock().ok().flatten();
    Ok(Locked { lock: lock.with_inputs(world.inputs()), previous, indexes })
}

/// Fetches the pinned tarball and puts its key files into `scratch/keys`.
fn trusted_keys(world: &ApkWorld, fetcher: &Fetcher, scratch: &Path, log: &mut dyn FnMut(&str)) -> Result<Keys> {
    let spec = world.keys.spec()?;
    let tarball = scratch.join("keys-tarball");
    let got = fetcher.fetch(&spec, &tarball)?;
    let mut tree = FsTree::new(0);
    tree.add_tar_file(&tarball)?;
    let found = keys::in_tree(&tree, &world.keys.dir)?;
    if found.is_empty() {
        return Err(Error::Recipe {
            recipe: world.name.clone(),
            why: format!("{} ({}) holds no key files in {}", spec.name, spec.hash, world.keys.dir),
        });
    }
    let dir = scratch.join("keys");
    std::fs::create_dir(&dir).map_err(Error::io(&dir))?;
    for (name, pem) in &found {
        let at = dir.join(name);
        std::fs::write(&at, pem).map_err(Error::io(&at))?;
    }
    let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    log(&format!("trusting {} key(s) of {} ({}): {}", found.len(), spec.name, got.source, names.join(", ")));
    Ok(Keys::open(dir)?)
}

/// Fetches and verifies one repository's index.
fn read_index(
    world: &ApkWorld,
    repo: &ApkRepository,
    i: usize,
    fetcher: &Fetcher,
    keys: &Keys,
    scratch: &Path,
) -> Result<(Repository, IndexSummary)> {
    let url = format!("{}/{}/APKINDEX.tar.gz", repo.url, world.arch);
    let dest = scratch.join(format!("APKINDEX-{i}.tar.gz"));
    fetcher.fetch_unpinned(&format!("the index {url}"), std::slice::from_ref(&url), &dest)?;
    let bytes = std::fs::read(&dest).map_err(Error::io(&dest))?;
    let index = index::read(&bytes, &url, keys)?;
    let signer = index.signer.map(|s| s.key_name).unwrap_or_default();
    let summary = IndexSummary { url, packages: index.packages.len(), signer };
    Ok((Repository { url: repo.url.clone(), tag: repo.tag.clone(), packages: index.packages }, summary))
}

/// Fetches every resolved package and verifies it against the keys and its index record
/// ([`apk_lock::from_resolution`]).
fn fetch_and_verify(
    world: &ApkWorld,
    resolution: &resolve::Resolution,
    repos: &[Repository],
    keys: &Keys,
    fetcher: &Fetcher,
    scratch: &Path,
) -> Result<Lock> {
    // from_resolution speaks apk errors; a fetch error is kept here and returned as itself.
    let mut fetch_error: Option<Error> = None;
    let dest = scratch.join("package.apk");
    let mut fetch = |url: &str| -> crate::apk::Result<Vec<u8>> {
        let name = url.rsplit('/').next().unwrap_or(url).to_owned();
        let got = fetcher.fetch_unpinned(&name, &[url.to_owned()], &dest).map_err(Error::from);
        let bytes = got.and_then(|_| std::fs::read(&dest).map_err(Error::io(&dest)));
        bytes.map_err(|e| {
            fetch_error = Some(e);
            crate::apk::Error::format(url, "could not be fetched")
        })
    };
    let result = apk_lock::from_resolution(resolution, repos, &world.arch, keys, &mut fetch);
    match (result, fetch_error) {
        (Ok(lock), _) => Ok(lock),
        (Err(_), Some(e)) => Err(e),
        (Err(e), None) => Err(e.into()),
    }
}

/// Writes `lock` to the world's lock file unless it already holds these bytes; returns
/// whether it wrote.
pub fn write_lock(world: &ApkWorld, lock: &Lock) -> Result<bool> {
    let text = lock.to_text();
    if std::fs::read(&world.lock_file).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(false);
    }
    if let Some(dir) = world.lock_file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    }
    lock.write(&world.lock_file)?;
    Ok(true)
}

/// How one package differs between two locks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Added.
    Added {
        /// The name.
        name: String,
        /// The version.
        version: String,
    },
    /// Removed.
    Removed {
        /// The name.
        name: String,
        /// The version.
        version: String,
    },
    /// Another version, or the same version with other bytes (a rebuild).
    Changed {
        /// The name.
        name: String,
        /// The version before.
        old: String,
        /// The version now.
        new: String,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Added { name, version } => write!(f, "+ {name} {version}"),
            Change::Removed { name, version } => write!(f, "- {name} {version}"),
            Change::Changed { name, old, new } if old == new => write!(f, "~ {name} {new} (rebuilt: new checksum)"),
            Change::Changed { name, old, new } => write!(f, "~ {name} {old} -> {new}"),
        }
    }
}

/// What changed from `old` to `new`, by package name.
pub fn changes(old: &Lock, new: &Lock) -> Vec<Change> {
    let mut out = Vec::new();
    for e in &new.packages {
        match old.get(&e.name) {
            None => out.push(Change::Added { name: e.name.clone(), version: e.version.clone() }),
            Some(o) if o.version != e.version || o.sha256 != e.sha256 || o.checksum != e.checksum => {
                out.push(Change::Changed { name: e.name.clone(), old: o.version.clone(), new: e.version.clone() })
            }
            Some(_) => {}
        }
    }
    for o in old.packages.iter().filter(|o| new.get(&o.name).is_none()) {
        out.push(Change::Removed { name: o.name.clone(), version: o.version.clone() });
    }
    out.sort_by(|a, b| change_name(a).cmp(change_name(b)));
    out
}

fn change_name(c: &Change) -> &str {
    match c {
        Change::Added { name, .. } | Change::Removed { name, .. } | Change::Changed { name, .. } => name,
    }
}

/// The `apk-install` arguments of a locked world (see [`crate::dsl::Forge::apk_install_world`]).
pub(crate) fn install_args(
    world: &ApkWorld,
    lock: &Lock,
    base: &str,
    keys_tarball: &str,
    apks: &[String],
    epoch: i64,
) -> serde_json::Value {
    let entries: Vec<serde_json::Value> = lock
        .packages
        .iter()
        .zip(apks)
        .map(|(e, path)| {
            let tag = world.repositories.iter().find(|r| r.url == e.repository).and_then(|r| r.tag.as_ref());
            let repository = tag.map(|t| format!("@{t}")).unwrap_or_else(|| e.repository.clone());
            serde_json::json!({ "path": path, "repository": repository })
        })
        .collect();
    serde_json::json!({
        "base": base,
        "apks": entries,
        "keysFrom": { "tarball": keys_tarball, "dir": world.keys.dir },
        "world": world.world,
        "repositories": world.repositories.iter().map(ApkRepository::line).collect::<Vec<_>>(),
        "arch": world.arch,
        "epoch": epoch,
        "order": "dependencies",
    })
}

/// The fixed-output `(store name, url, hash)` of a locked package.
pub(crate) fn apk_download(e: &apk_lock::LockEntry) -> (String, String, String) {
    (format!("{}-{}.apk", e.name, e.version), e.url.clone(), format!("sha256:{}", hex(&e.sha256)))
}

#[cfg(test)]
mod tests;
