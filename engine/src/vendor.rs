//! `forge vendor`: copy every fixed-output input of a recipe's closure into a
//! folder laid out as a mirror, so the recipe builds on a machine with no network
//! (`forge build RECIPE --mirror DIR --offline`).
//!
//! Each file is stored once as `<algo>/<hex>` and linked under every file name its
//! URLs give (the two ways a mirror is looked up). Files already in the store are
//! copied from there; others are fetched (and hash-checked) first.

use std::fs;
use std::path::{Path, PathBuf};

use forge_store::{Hash, Store};

use crate::drv::Builder;
use crate::dsl::{Forge, NodeId};
use crate::error::{Error, Result};
use crate::fetch::{mirror, FetchSpec, Fetcher};

/// What [`vendor`] did.
#[derive(Debug, Default)]
pub struct Report {
    /// Files now in the mirror: (name, hash).
    pub files: Vec<(String, Hash)>,
    /// Git inputs, which a file mirror cannot serve: (url, rev). Mirror those
    /// repositories with `git clone --mirror` and `--git-mirror URL=DIR`.
    pub git: Vec<(String, String)>,
}

/// Vendors the fixed-output inputs of `targets` into `dir`.
pub fn vendor(store: &Store, forge: &Forge, targets: &[NodeId], fetcher: &Fetcher, dir: &Path) -> Result<Report> {
    let plan = crate::plan::plan(forge, targets, true, |_| Ok(false))?;
    let mut report = Report::default();
    for &id in plan.steps.keys() {
        let node = forge.node(id);
        match &node.drv.builder {
            Builder::Fetch { urls, hash, .. } => {
                let source = match store.is_valid(node.out())? {
                    true => store.physical(node.out()),
                    false => fetch_to_temp(store, fetcher, &node.drv.name, urls, hash)?,
                };
                place(dir, &source, hash, names(&node.drv.name, urls))?;
                report.files.push((node.drv.name.clone(), hash.clone()));
            }
            Builder::Git { url, rev, .. } => report.git.push((url.clone(), rev.clone())),
            _ => {}
        }
    }
    Ok(report)
}

/// The file names a mirror is asked for: each URL's last segment, and the name.
fn names(name: &str, urls: &[String]) -> Vec<String> {
    let mut out: Vec<String> = urls.iter().filter_map(|u| mirror::name_key(u)).collect();
    out.extend(mirror::name_key(name));
    out.sort();
    out.dedup();
    out
}

fn fetch_to_temp(store: &Store, fetcher: &Fetcher, name: &str, urls: &[String], hash: &Hash) -> Result<PathBuf> {
    let temp = store.new_temp_dir(&format!("vendor-{name}"))?;
    let file = temp.path().join("file");
    let spec = FetchSpec { name: name.to_owned(), urls: urls.to_vec(), hash: hash.clone() };
    fetcher.fetch(&spec, &file)?;
    // Kept until the process ends: the caller copies it right away.
    Ok(temp.keep().join("file"))
}

/// Copies `source` to `<dir>/<algo>/<hex>` (checking its hash) and hard-links each name to it.
fn place(dir: &Path, source: &Path, hash: &Hash, names: Vec<String>) -> Result<()> {
    let by_hash = dir.join(mirror::hash_key(hash));
    if !by_hash.exists() {
        let parent = by_hash.parent().unwrap_or(dir);
        fs::create_dir_all(parent).map_err(Error::io(parent))?;
        let part = by_hash.with_extension("part");
        fs::copy(source, &part).map_err(Error::io(&part))?;
        let actual = hash_file(&part, hash.algo()).map_err(Error::io(&part))?;
        if &actual != hash {
            return Err(Error::HashMismatch {
                what: format!("vendoring {}", source.display()),
                expected: hash.to_string(),
                actual: actual.to_string(),
            });
        }
        // Store files are read-only; the mirror's copy should be writable by its owner.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&part, fs::Permissions::from_mode(0o644)).map_err(Error::io(&part))?;
        fs::rename(&part, &by_hash).map_err(Error::io(&by_hash))?;
    }
    for name in names {
        let link = dir.join(&name);
        let _ = fs::remove_file(&link);
        fs::hard_link(&by_hash, &link).map_err(Error::io(&link))?;
    }
    Ok(())
}

fn hash_file(path: &Path, algo: forge_store::Algo) -> std::io::Result<Hash> {
    let mut hasher = algo.hasher();
    std::io::copy(&mut fs::File::open(path)?, &mut hasher)?;
    Ok(hasher.finish())
}
