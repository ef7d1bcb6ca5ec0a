//! `forge build --check`: rebuild derivations whose outputs are already valid and
//! compare NAR hashes, the everyday test of reproducibility.
//!
//! A rebuild is never registered. When its NAR hash differs from the store's, the
//! rebuilt tree is kept under `<store root>/check/<name>` beside the registered one,
//! and the report says which files differ and how (sizes, first differing byte,
//! first differing line of text); `diffoscope` gives the full story when installed.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use forge_store::{Hash, Store, StorePath};

use crate::build::{run_builder_for_check, Options};
use crate::dsl::{Forge, NodeId};
use crate::error::{Error, Result};

/// One output that did not rebuild to the same bytes.
#[derive(Debug)]
pub struct Difference {
    /// The derivation's name.
    pub name: String,
    /// The output that differs.
    pub path: StorePath,
    /// The NAR hash registered in the store.
    pub expected: Hash,
    /// The NAR hash of the rebuild.
    pub actual: Hash,
    /// Where the registered output is.
    pub registered: PathBuf,
    /// Where the rebuilt output was kept.
    pub rebuilt: PathBuf,
    /// One line per differing file.
    pub files: Vec<String>,
}

/// What `--check` found.
#[derive(Debug, Default)]
pub struct Report {
    /// Derivations rebuilt and compared (each round counts).
    pub checked: usize,
    /// Every output that did not rebuild the same.
    pub differences: Vec<Difference>,
    /// Derivations that could not be checked: not built yet, or fixed-output (their
    /// hash is checked on every fetch).
    pub skipped: usize,
}

/// Which derivations a check rebuilds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every derivation of the targets' closure: the auditor's check, from the
    /// toolchain up.
    Closure,
    /// Only the targets' own derivations, against the inputs already in the store (as
    /// Nix's `--check`): minutes instead of hours when the closure holds a compiler.
    Targets,
}

/// What a check rebuilds, and how often.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    /// Rebuilds of each derivation (at least one).
    pub rounds: usize,
    /// Which derivations.
    pub scope: Scope,
}

/// Rebuilds every valid, non-fixed-output derivation of `targets`' closure (or, with
/// [`Scope::Targets`], of the targets alone) `req.rounds` times and compares each
/// output with the store's. `on_rebuild` hears of each rebuild (name, round) as it
/// starts: one can take as long as the original build.
pub fn check(
    store: &Store,
    forge: &Forge,
    targets: &[NodeId],
    opts: &Options,
    req: Request,
    on_rebuild: &mut dyn FnMut(&str, usize),
) -> Result<Report> {
    let plan = crate::plan::plan(forge, targets, true, |p| Ok(store.is_valid(p)?))?;
    let mut report = Report::default();
    for (&id, &state) in &plan.steps {
        let node = forge.node(id);
        if req.scope == Scope::Targets && !targets.contains(&id) {
            continue;
        }
        if state != crate::plan::State::Valid || node.drv.builder.is_fixed_output() {
            report.skipped += 1;
            continue;
        }
        for round in 1..=req.rounds.max(1) {
            report.checked += 1;
            on_rebuild(&node.drv.name, round);
            let temp = store.new_temp_dir(&format!("check-{}", node.drv.name))?;
            run_builder_for_check(store, node, temp.path(), opts)?;
            let mut differs = false;
            for (out_id, path) in &node.outputs {
                let rebuilt = temp.path().join(out_id);
                forge_store::tree::normalize(&rebuilt, false)?;
                let (actual, _) = forge_store::nar::hash_path(&rebuilt)?;
                let expected = store.info(path)?.nar_hash;
                if actual != expected {
                    differs = true;
                    let kept = keep(store, &rebuilt, path)?;
                    let registered = store.physical(path);
                    let files = differing_files(&registered, &kept);
                    let name = node.drv.name.clone();
                    report.differences.push(Difference {
                        name,
                        path: path.clone(),
                        expected,
                        actual,
                        registered,
                        rebuilt: kept,
                        files,
                    });
                }
            }
            if differs {
                break;
            }
        }
    }
    Ok(report)
}

/// Moves a rebuilt output to `<root>/check/<base name>`, replacing an older one.
fn keep(store: &Store, rebuilt: &Path, path: &StorePath) -> Result<PathBuf> {
    let dir = store.root().join("check");
    fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    let dest = dir.join(path.base_name());
    if dest.exists() {
        forge_store::tree::remove(&dest)?;
    }
    fs::rename(rebuilt, &dest).map_err(Error::io(&dest))?;
    Ok(dest)
}

/// Lists the files that differ between two trees, one line each.
pub fn differing_files(a: &Path, b: &Path) -> Vec<String> {
    let (left, right) = (listing(a), listing(b));
    let mut out = Vec::new();
    for (rel, kind) in &left {
        match right.get(rel) {
            None => out.push(format!("{rel}: only in the registered output")),
            Some(other) if other != kind => out.push(format!("{rel}: {kind} -> {other}")),
            Some(_) if *kind == "file" => {
                if let Some(why) = compare_files(&a.join(rel), &b.join(rel)) {
                    out.push(format!("{rel}: {why}"));
                }
            }
            Some(_) if *kind == "symlink" => {
                let (x, y) = (fs::read_link(a.join(rel)).ok(), fs::read_link(b.join(rel)).ok());
                if x != y {
                    out.push(format!("{rel}: link target {x:?} -> {y:?}"));
                }
            }
            Some(_) => {}
        }
    }
    out.extend(right.keys().filter(|k| !left.contains_key(*k)).map(|k| format!("{k}: only in the rebuilt output")));
    out
}

/// Relative path -> kind, for every entry under `root` (the root itself is ``).
fn listing(root: &Path) -> BTreeMap<String, &'static str> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_owned()];
    while let Some(p) = todo.pop() {
        let Ok(md) = fs::symlink_metadata(&p) else { continue };
        let rel = p.strip_prefix(root).map(|r| r.to_string_lossy().into_owned()).unwrap_or_default();
        let kind = if md.is_dir() {
            if let Ok(rd) = fs::read_dir(&p) {
                todo.extend(rd.flatten().map(|e| e.path()));
            }
            "directory"
        } else if md.file_type().is_symlink() {
            "symlink"
        } else {
            "file"
        };
        out.insert(rel, kind);
    }
    out
}

/// How two files differ: size, first differing byte, first differing text line.
fn compare_files(a: &Path, b: &Path) -> Option<String> {
    let (x, y) = (fs::read(a).ok()?, fs::read(b).ok()?);
    if x == y {
        return None;
    }
    let offset = x.iter().zip(&y).position(|(p, q)| p != q).unwrap_or(x.len().min(y.len()));
    let mut why = format!("{} -> {} bytes, first difference at byte {offset}", x.len(), y.len());
    if let (Ok(s), Ok(t)) = (std::str::from_utf8(&x), std::str::from_utf8(&y)) {
        if let Some((l, (p, q))) = s.lines().zip(t.lines()).enumerate().find(|(_, (p, q))| p != q) {
            why.push_str(&format!("; line {}: {p:?} -> {q:?}", l + 1));
        }
    }
    Some(why)
}
