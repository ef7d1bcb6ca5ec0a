//! Installing verified apks into an [`FsTree`] without running anything from them.
//!
//! Files go in with their tar metadata (owner, mode, xattrs). Ownership follows apk-tools
//! (`apk_pkg_replaces_file`/`_dir`): a path owned by an earlier package of this install may
//! be taken over by a later one only if it has the same name, a higher `replaces_priority`,
//! the same origin, or `replaces` the owner; a regular file, link or node shipped by two
//! packages otherwise is a conflict and the install fails naming both. A directory that
//! already exists keeps its owner's metadata unless the new package may take it over; a
//! directory that came from the base tree (owned by no package) takes the package's.
//! `.keep_*` placeholders are skipped, as the installed database skips them.
//!
//! Then the database: `lib/apk/db/installed`, `scripts.tar`, `triggers`, `etc/apk/world`,
//! `etc/apk/repositories`, `etc/apk/keys/*` and, when given, `etc/apk/arch`.
//!
//! # Script policy
//!
//! No install script or trigger is executed. Each one is read line by line, and the lines
//! whose effect is known are carried out declaratively on the tree:
//!
//! - `addgroup [-S] [-g GID] GROUP`, `addgroup USER GROUP`, `adduser [-S -D -H -h HOME -s
//!   SHELL -g GECOS -G GROUP -u UID] USER` (busybox semantics: free ids taken lowest first
//!   from 100..=999 for system accounts, 1000.. otherwise) edit `/etc/group`,
//!   `/etc/passwd` and, when it exists, `/etc/shadow` (see [`users::adduser`]);
//! - `busybox --install -s` (busybox's scripts) makes the applet links listed in
//!   `/etc/busybox-paths.d/*`, each a symlink to `/bin/busybox` where nothing exists yet;
//! - `update-ca-certificates` (ca-certificates' scripts) concatenates the `*.crt` under
//!   `/usr/share/ca-certificates` and `/usr/local/share/ca-certificates`, by path, into
//!   `/etc/ssl/certs/ca-certificates.crt` (the hash links are not made);
//! - `mkdir -p DIR...` (also as `busybox mkdir`) makes the directories 0755 root;
//! - `exec CMD` is CMD, and ends the script;
//! - shebangs, comments, `set -e`, `exit 0`, `:` and `true` do nothing.
//!
//! Every other line is listed in the [`InstallReport`] as not run, with the package and
//! the script kind; no ldconfig-like cache is needed on musl. Running those scripts in a
//! sandbox when the target can run (same arch or a registered emulator) is a later step.

pub mod users;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::fstree::{Content, FsTree, Kind as TreeKind, Node, Special};

use super::db;
use super::dep::Dep;
use super::package::{Apk, ScriptKind};
use super::tarball::{Entry, Kind};
use super::{Error, Result};

/// What goes into the database besides the packages.
#[derive(Clone, Debug, Default)]
pub struct InstallOptions {
    /// `etc/apk/world`.
    pub world: Vec<Dep>,
    /// `etc/apk/repositories`: `(tag, url)`.
    pub repositories: Vec<(Option<String>, String)>,
    /// `etc/apk/keys/NAME`: `(NAME, PEM bytes)`.
    pub keys: Vec<(String, Vec<u8>)>,
    /// `etc/apk/arch` (what `apk` in the finished system installs for), when given.
    pub arch: Option<String>,
}

/// A package to install and the repository tag it was pinned with (`None`: untagged).
#[derive(Clone, Copy, Debug)]
pub struct ToInstall<'a> {
    /// The package.
    pub apk: &'a Apk,
    /// Its repository tag.
    pub tag: Option<&'a str>,
}

/// What was done with one install script or trigger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptHandling {
    /// Every command had a known effect, carried out on the tree (listed).
    Declarative {
        /// The commands carried out.
        done: Vec<String>,
    },
    /// Some commands were carried out (`done`); the others were not run.
    Partial {
        /// The commands carried out.
        done: Vec<String>,
        /// The commands not run.
        not_run: Vec<String>,
    },
    /// Nothing was carried out; the commands were not run.
    NotRun {
        /// The commands not run.
        not_run: Vec<String>,
    },
}

/// One script of one package and what was done with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptReport {
    /// `name-version`.
    pub package: String,
    /// Which script.
    pub kind: ScriptKind,
    /// What was done with it.
    pub handling: ScriptHandling,
}

/// A path a later package took over from an earlier one (by apk's replace rules).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replaced {
    /// The path, relative to the root.
    pub path: String,
    /// The package that had it (`name-version`).
    pub from: String,
    /// The package that took it.
    pub by: String,
}

/// The outcome of [`install`]: every package, every script, every takeover, notes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstallReport {
    /// `name-version`, in installation order.
    pub packages: Vec<String>,
    /// What happened to each install script.
    pub scripts: Vec<ScriptReport>,
    /// Paths a later package took over.
    pub replaced: Vec<Replaced>,
    /// Things the reader should know (missing busybox path lists, ...).
    pub notes: Vec<String>,
}

impl InstallReport {
    /// The report as text, one line per package, script, takeover and note.
    pub fn to_text(&self) -> String {
        let mut s = String::from("forge apk install report\n");
        for p in &self.packages {
            let _ = writeln!(s, "package {p}");
        }
        for r in &self.replaced {
            let _ = writeln!(s, "replaced /{} of {} by {}", r.path, r.from, r.by);
        }
        for sc in &self.scripts {
            let (what, done, not_run): (&str, &[String], &[String]) = match &sc.handling {
                ScriptHandling::Declarative { done } => ("done declaratively", done, &[]),
                ScriptHandling::Partial { done, not_run } => ("partly done, rest NOT RUN", done, not_run),
                ScriptHandling::NotRun { not_run } => ("NOT RUN", &[], not_run),
            };
            let _ = writeln!(s, "script {} .{}: {what}", sc.package, sc.kind.name());
            done.iter().for_each(|d| {
                let _ = writeln!(s, "  done: {d}");
            });
            not_run.iter().for_each(|d| {
                let _ = writeln!(s, "  not run: {d}");
            });
        }
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        s
    }
}

/// Who owns a path in this install: the package index in the install list.
type Owners = BTreeMap<String, usize>;

/// Installs `packages` (already verified, in dependency order) into `tree`, writes apk's
/// database, and carries out the known effects of their scripts (see the module
/// documentation for the policy). A file conflict fails naming both packages.
pub fn install(tree: &mut FsTree, packages: &[ToInstall<'_>], opts: &InstallOptions) -> Result<InstallReport> {
    let mut report = InstallReport::default();
    let mut owners = Owners::new();
    let mut dir_owners = Owners::new();
    let mut pending = Vec::new();
    for (i, p) in packages.iter().enumerate() {
        report.packages.push(label(p.apk));
        for script in p.apk.scripts.iter().filter(|s| s.kind == ScriptKind::PreInstall) {
            report.scripts.push(run_declaratively(tree, p.apk, script.kind, &script.content)?);
        }
        add_files(tree, packages, i, &mut owners, &mut dir_owners, &mut report)?;
        pending.extend(p.apk.scripts.iter().filter(|s| s.kind != ScriptKind::PreInstall).map(|s| (p.apk, s)));
    }
    // Post-install scripts and triggers after every file is in, as apk runs triggers last.
    pending.sort_by_key(|(_, s)| s.kind == ScriptKind::Trigger);
    for (apk, script) in pending {
        report.scripts.push(run_declaratively(tree, apk, script.kind, &script.content)?);
    }
    let dropped = dropped_from_base_db(tree, packages);
    if !dropped.is_empty() {
        report.notes.push(format!(
            "the base's /lib/apk/db/installed lists {} not installed here, so the new database omits \
             them while their files stay (add them to the world)",
            dropped.join(" ")
        ));
    }
    write_database(tree, packages, opts)?;
    Ok(report)
}

/// An installation order for `apks` (indices into it), as apk-tools sorts its changes:
/// each package after those that provide what it depends on and what its `install_if`
/// names; otherwise by name. A dependency cycle is cut where the walk, in name order,
/// comes back to a package it is still visiting. Deterministic for a given set.
pub fn dependency_order(apks: &[&Apk]) -> Vec<usize> {
    let mut providers: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, a) in apks.iter().enumerate() {
        providers.entry(&a.info.name).or_default().push(i);
        for p in &a.info.provides {
            providers.entry(&p.name).or_default().push(i);
        }
    }
    let mut by_name: Vec<usize> = (0..apks.len()).collect();
    by_name.sort_by(|&a, &b| apks[a].info.name.cmp(&apks[b].info.name).then(a.cmp(&b)));
    for list in providers.values_mut() {
        list.sort_by(|&a, &b| apks[a].info.name.cmp(&apks[b].info.name).then(a.cmp(&b)));
    }
    let mut state = vec![Visit::New; apks.len()];
    let mut order = Vec::with_capacity(apks.len());
    for i in by_name {
        visit(i, apks, &providers, &mut state, &mut order);
    }
    order
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Visit {
    New,
    Visiting,
    Done,
}

fn visit(i: usize, apks: &[&Apk], providers: &BTreeMap<&str, Vec<usize>>, state: &mut [Visit], order: &mut Vec<usize>) {
    if state[i] != Visit::New {
        return;
    }
    state[i] = Visit::Visiting;
    let info = &apks[i].info;
    for d in info.depends.iter().chain(&info.install_if).filter(|d| !d.conflict) {
        for &j in providers.get(d.name.as_str()).into_iter().flatten() {
            visit(j, apks, providers, state, order);
        }
    }
    state[i] = Visit::Done;
    order.push(i);
}

/// Packages the base tree's `/lib/apk/db/installed` lists that this install does not:
/// their files stay in the tree, but the database written here no longer names them.
fn dropped_from_base_db(tree: &FsTree, packages: &[ToInstall<'_>]) -> Vec<String> {
    let Some(TreeKind::File(content)) = tree.get("/lib/apk/db/installed").map(|n| &n.kind) else { return Vec::new() };
    let text = String::from_utf8_lossy(&content.read_all().unwrap_or_default()).into_owned();
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("P:"))
        .filter(|n| !packages.iter().any(|p| p.apk.info.name == *n))
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

fn label(apk: &Apk) -> String {
    format!("{}-{}", apk.info.name, apk.info.version)
}

fn tree_err(what: &str) -> impl FnOnce(crate::fstree::FsTreeError) -> Error + '_ {
    move |e| Error::format(what, e.to_string())
}

/// apk's `apk_pkg_replaces_file`: may `new` take over a path owned by `old`?
fn may_replace(old: &Apk, new: &Apk) -> bool {
    if old.info.name == new.info.name {
        return true;
    }
    let (po, pn) = (old.info.replaces_priority.unwrap_or(0), new.info.replaces_priority.unwrap_or(0));
    if po != pn {
        return pn > po;
    }
    if old.info.origin.is_some() && old.info.origin == new.info.origin {
        return true;
    }
    new.info.replaces.iter().any(|r| r.name == old.info.name)
        && !old.info.replaces.iter().any(|r| r.name == new.info.name)
}

fn add_files(
    tree: &mut FsTree,
    packages: &[ToInstall<'_>],
    i: usize,
    owners: &mut Owners,
    dir_owners: &mut Owners,
    report: &mut InstallReport,
) -> Result<()> {
    let apk = packages[i].apk;
    let what = label(apk);
    for e in &apk.files {
        let path = e.path.trim_end_matches('/').to_owned();
        check_kind_clash(tree, &path, e.kind == Kind::Dir, &what)?;
        if e.kind == Kind::Dir {
            let keep = dir_owners.get(&path).is_some_and(|&o| !may_replace(packages[o].apk, apk));
            if !keep {
                tree.insert(&path, node_of(apk, e)?).map_err(tree_err(&what))?;
                dir_owners.insert(path, i);
            }
            continue;
        }
        if path.rsplit('/').next().is_some_and(|n| n.starts_with(".keep_")) {
            continue;
        }
        if let Some(&o) = owners.get(&path) {
            let old = packages[o].apk;
            if !may_replace(old, apk) {
                return Err(Error::Conflict { path, first: label(old), second: what });
            }
            report.replaced.push(Replaced { path: path.clone(), from: label(old), by: what.clone() });
        }
        tree.insert(&path, node_of(apk, e)?).map_err(tree_err(&what))?;
        owners.insert(path, i);
    }
    Ok(())
}

/// A directory over a non-directory (a symlinked directory included: apk would go through
/// it, the tree would replace it) or the reverse would silently drop what was there.
fn check_kind_clash(tree: &FsTree, path: &str, is_dir: bool, what: &str) -> Result<()> {
    match tree.get(path) {
        Some(n) if n.is_dir() != is_dir => Err(Error::format(
            what,
            format!(
                "/{path} is a {} in the tree but a {} in the package; installing across that is not supported",
                n.kind.name(),
                if is_dir { "directory" } else { "non-directory" }
            ),
        )),
        _ => Ok(()),
    }
}

/// The tree node for a data entry, with its owner, mode and xattrs.
fn node_of(apk: &Apk, e: &Entry) -> Result<Node> {
    let what = || format!("{}: {}", label(apk), e.path);
    let dev = || e.device.unwrap_or((0, 0));
    let kind = match e.kind {
        Kind::File => TreeKind::File(Content::from(apk.content(e))),
        Kind::Dir => TreeKind::Dir(BTreeMap::new()),
        Kind::Symlink => TreeKind::Symlink(e.link_target.clone().unwrap_or_default().into_bytes()),
        Kind::Hardlink => {
            let target = e.link_target.as_deref().unwrap_or_default();
            TreeKind::Hardlink(crate::fstree::TreePath::parse(target).map_err(tree_err(&what()))?)
        }
        Kind::CharDevice => Special::Char { major: dev().0, minor: dev().1 }.into(),
        Kind::BlockDevice => Special::Block { major: dev().0, minor: dev().1 }.into(),
        Kind::Fifo => Special::Fifo.into(),
    };
    let mut node = Node::new(kind, e.mode);
    let id = |v: u64| u32::try_from(v).map_err(|_| Error::format(&what(), format!("owner id {v} over 32 bits")));
    (node.meta.uid, node.meta.gid) = (id(e.uid)?, id(e.gid)?);
    node.meta.xattrs = e.xattrs().map(|(k, v)| (k.to_owned(), v.to_vec())).collect();
    Ok(node)
}

/// Carries out the known lines of one script; see the module documentation.
fn run_declaratively(tree: &mut FsTree, apk: &Apk, kind: ScriptKind, content: &[u8]) -> Result<ScriptReport> {
    let what = format!("{} .{}", label(apk), kind.name());
    let text = String::from_utf8_lossy(content);
    let (mut done, mut not_run) = (Vec::new(), Vec::new());
    for line in text.lines().map(str::trim) {
        if is_noop(line) {
            continue;
        }
        // `exec CMD` has CMD's effect, and nothing after it runs.
        let (line, last) = match line.strip_prefix("exec ") {
            Some(rest) => (rest.trim_start(), true),
            None => (line, false),
        };
        match known_effect(tree, line, &what)? {
            Ok(effect) => done.push(effect),
            Err(why) => not_run.push(why),
        }
        if last {
            break;
        }
    }
    let handling = match (done.is_empty(), not_run.is_empty()) {
        (_, true) => ScriptHandling::Declarative { done },
        (true, false) => ScriptHandling::NotRun { not_run },
        (false, false) => ScriptHandling::Partial { done, not_run },
    };
    Ok(ScriptReport { package: label(apk), kind, handling })
}

fn is_noop(line: &str) -> bool {
    line.is_empty() || line.starts_with('#') || matches!(line, "set -e" | "exit 0" | "exit" | ":" | "true")
}

/// Carries out one line if its effect is known: `Ok(effect)`, or `Err(the line, and why
/// it was not run when that is not plain)`.
fn known_effect(tree: &mut FsTree, line: &str, what: &str) -> Result<Result<String, String>> {
    let unknown = || Ok(Err(line.to_owned()));
    let Some(words) = users::words(strip_redirections(line)) else { return unknown() };
    let Some(cmd) = words.first() else { return unknown() };
    let found = match cmd.rsplit('/').next().unwrap_or_default() {
        "addgroup" => users::addgroup(tree, &words[1..], what)?,
        "adduser" => users::adduser(tree, &words[1..], what)?,
        "busybox" if words[1..] == ["--install", "-s"] => {
            return Ok(busybox_links(tree, what)?.ok_or_else(|| {
                format!("{line} (no path list in /etc/busybox-paths.d, so the applet links are unknown)")
            }))
        }
        "update-ca-certificates" => Some(ca_bundle(tree, what)?),
        "busybox" if words.get(1).is_some_and(|w| w == "mkdir") => mkdir_p(tree, &words[2..], what)?,
        "mkdir" => mkdir_p(tree, &words[1..], what)?,
        _ => None,
    };
    Ok(found.ok_or_else(|| line.to_owned()))
}

/// `mkdir -p DIR...` (busybox's script makes the applet directories first): 0755 root.
fn mkdir_p(tree: &mut FsTree, args: &[String], what: &str) -> Result<Option<String>> {
    let Some(("-p", dirs)) = args.split_first().map(|(f, d)| (f.as_str(), d)) else { return Ok(None) };
    if dirs.is_empty() || dirs.iter().any(|d| d.starts_with('-')) {
        return Ok(None);
    }
    for d in dirs {
        tree.mkdir_p(d, 0o755).map_err(tree_err(what))?;
    }
    Ok(Some(format!("mkdir -p {}", dirs.join(" "))))
}

/// Drops the error-silencing tails scripts put on commands whose failure they ignore.
fn strip_redirections(line: &str) -> &str {
    let mut l = line.trim();
    loop {
        let before = l;
        for tail in ["|| true", "|| :", "2>/dev/null", ">/dev/null", "2>&1", ";"] {
            l = l.strip_suffix(tail).unwrap_or(l).trim_end();
        }
        if l == before {
            return l;
        }
    }
}

/// Symlinks to `/bin/busybox` for every path in `/etc/busybox-paths.d/*` not yet present;
/// `None` when there is no list.
fn busybox_links(tree: &mut FsTree, what: &str) -> Result<Option<String>> {
    let lists: Vec<Vec<u8>> = match tree.get("/etc/busybox-paths.d") {
        Some(dir) => dir.children().filter_map(|(_, n)| file_bytes(n)).collect(),
        None => Vec::new(),
    };
    if lists.is_empty() {
        return Ok(None);
    }
    let mut made = 0;
    for list in lists {
        for path in String::from_utf8_lossy(&list).lines().map(str::trim).filter(|p| !p.is_empty()) {
            if tree.get(path).is_none() {
                tree.symlink(path, "/bin/busybox").map_err(tree_err(what))?;
                made += 1;
            }
        }
    }
    Ok(Some(format!("busybox applet links from /etc/busybox-paths.d: {made} made")))
}

fn file_bytes(node: &Node) -> Option<Vec<u8>> {
    match &node.kind {
        TreeKind::File(c) => c.read_all().ok(),
        _ => None,
    }
}

/// `/etc/ssl/certs/ca-certificates.crt` from the certificates in the tree, by path.
fn ca_bundle(tree: &mut FsTree, what: &str) -> Result<String> {
    let mut bundle = Vec::new();
    let mut count = 0;
    let certs: Vec<(String, Vec<u8>)> = tree
        .iter()
        .filter_map(|(p, n)| {
            let p = p.display();
            let under =
                p.starts_with("/usr/share/ca-certificates/") || p.starts_with("/usr/local/share/ca-certificates/");
            (under && p.ends_with(".crt")).then(|| file_bytes(n).map(|b| (p, b))).flatten()
        })
        .collect();
    for (_, mut pem) in certs {
        if !pem.ends_with(b"\n") {
            pem.push(b'\n');
        }
        bundle.extend_from_slice(&pem);
        count += 1;
    }
    tree.mkdir_p("/etc/ssl/certs", 0o755).map_err(tree_err(what))?;
    tree.write("/etc/ssl/certs/ca-certificates.crt", bundle, 0o644).map_err(tree_err(what))?;
    Ok(format!("update-ca-certificates: {count} certificates into /etc/ssl/certs/ca-certificates.crt"))
}

fn write_database(tree: &mut FsTree, packages: &[ToInstall<'_>], opts: &InstallOptions) -> Result<()> {
    let w = "apk database";
    let pairs: Vec<(&Apk, Option<&str>)> = packages.iter().map(|p| (p.apk, p.tag)).collect();
    let apks: Vec<&Apk> = packages.iter().map(|p| p.apk).collect();
    let installed = db::installed_db(&pairs)?;
    let repos: Vec<(Option<&str>, &str)> = opts.repositories.iter().map(|(t, u)| (t.as_deref(), u.as_str())).collect();
    let epoch = u64::try_from(tree.epoch()).unwrap_or(0);
    for d in ["/lib/apk/db", "/etc/apk/keys"] {
        tree.mkdir_p(d, 0o755).map_err(tree_err(w))?;
    }
    tree.write("/lib/apk/db/installed", installed, 0o644).map_err(tree_err(w))?;
    tree.write("/lib/apk/db/scripts.tar", db::scripts_tar(&apks, epoch), 0o644).map_err(tree_err(w))?;
    tree.write("/lib/apk/db/triggers", db::triggers(&apks), 0o644).map_err(tree_err(w))?;
    tree.write("/etc/apk/world", db::world(&opts.world), 0o644).map_err(tree_err(w))?;
    tree.write("/etc/apk/repositories", db::repositories(&repos), 0o644).map_err(tree_err(w))?;
    if let Some(arch) = &opts.arch {
        if arch.is_empty() || arch.contains(['/', '\n']) {
            return Err(Error::format(w, format!("architecture {arch:?} is not a plain name")));
        }
        tree.write("/etc/apk/arch", format!("{arch}\n"), 0o644).map_err(tree_err(w))?;
    }
    for (name, pem) in &opts.keys {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(Error::format(w, format!("key file name {name:?} is not a plain file name")));
        }
        tree.write(format!("/etc/apk/keys/{name}"), pem.clone(), 0o644).map_err(tree_err(w))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
