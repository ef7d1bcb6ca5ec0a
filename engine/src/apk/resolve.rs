//! A resolver over one or more repositories: picks one package per name so that every
//! dependency of the world (and of what it pulls in) is met.
//!
//! Rules, as apk-tools applies them:
//! - a dependency `name op version` is met by the package called `name` or by one that
//!   `provides` it; a provide without a version meets only unversioned dependencies;
//! - `!name[op version]` forbids those packages; two packages may not provide the same
//!   name with a version (nor one provide another's name);
//! - packages of a tagged repository are used only for `name@tag` and, inherited, for
//!   what such a package depends on;
//! - among candidates the package called `name` comes first, highest version first;
//!   then providers by `k:` provider priority (highest first), provided version, name;
//! - `install_if` packages join when all their conditions are installed;
//! - `replaces` does not affect the choice (it governs file ownership at install time).
//!
//! The search is depth-first with backtracking over the candidates, deterministic for a
//! given input. An unsatisfiable world fails with the first dead end found, named by its
//! chain: `world -> a-1.0-r0 -> b>=2: no such version (available: 1.0-r0)`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;

use super::dep::Dep;
use super::index::IndexPackage;
use super::version;
use super::{Error, Result};

/// One repository: a label (its URL), an optional tag, and its packages.
#[derive(Clone, Debug)]
pub struct Repository {
    /// A label for messages and `/etc/apk/repositories` (its URL).
    pub url: String,
    /// The repository's tag (`@tag` dependencies need it).
    pub tag: Option<String>,
    /// Its packages.
    pub packages: Vec<IndexPackage>,
}

/// A chosen package and the index of the repository it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The chosen package.
    pub package: IndexPackage,
    /// Index of its repository in the list given.
    pub repository: usize,
}

/// The result: packages sorted by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// The chosen packages, sorted by name.
    pub packages: Vec<Resolved>,
}

/// How many steps the search may take before it gives up (pathological inputs).
const STEP_LIMIT: usize = 2_000_000;

/// Resolves `world` for `arch` (packages of that arch or `noarch`).
pub fn resolve(repos: &[Repository], arch: &str, world: &[Dep]) -> Result<Resolution> {
    let mut r = Resolver::new(repos, arch);
    let root = Rc::new(Link { label: "world".into(), parent: None });
    let pending: Vec<Pending> = r
        .processing_order(world)
        .into_iter()
        .rev()
        .map(|d| Pending { dep: d.clone(), chain: root.clone(), tags: Rc::default() })
        .collect();
    r.solve(pending).map_err(|f| Error::Unsatisfiable(format!("cannot resolve the world: {f}")))?;
    r.add_install_if();
    let mut packages: Vec<Resolved> =
        r.chosen.iter().map(|&i| Resolved { package: r.pkgs[i].pkg.clone(), repository: r.pkgs[i].repo }).collect();
    packages.sort_by(|a, b| a.package.name.cmp(&b.package.name));
    Ok(Resolution { packages })
}

struct Cand<'a> {
    pkg: &'a IndexPackage,
    repo: usize,
    tag: Option<&'a str>,
}

/// The path of packages that led to a dependency, for error messages.
struct Link {
    label: String,
    parent: Option<Rc<Link>>,
}

impl Link {
    fn render(&self) -> String {
        let mut parts = vec![self.label.as_str()];
        let mut at = self.parent.as_deref();
        while let Some(l) = at {
            parts.push(&l.label);
            at = l.parent.as_deref();
        }
        parts.reverse();
        parts.join(" -> ")
    }
}

#[derive(Clone)]
struct Pending {
    dep: Dep,
    chain: Rc<Link>,
    /// Repository tags this dependency may draw from (inherited from tagged parents).
    tags: Rc<BTreeSet<String>>,
}

struct Choice {
    stack: Vec<Pending>,
    pending: Pending,
    cands: Vec<usize>,
    next: usize,
    chosen_len: usize,
    conflicts_len: usize,
}

enum Step {
    Done,
    /// A conflict that holds now; record it so later choices respect it.
    Conflict,
    Choose(Vec<usize>),
    Fail(String),
}

struct Resolver<'a> {
    pkgs: Vec<Cand<'a>>,
    by_name: HashMap<&'a str, Vec<usize>>,
    providers: HashMap<&'a str, Vec<(usize, Option<&'a str>)>>,
    other_arch: HashMap<&'a str, BTreeSet<&'a str>>,
    chosen: Vec<usize>,
    name_of: HashMap<&'a str, usize>,
    provided: HashMap<&'a str, Vec<(usize, Option<&'a str>)>>,
    conflicts: Vec<Pending>,
}

impl<'a> Resolver<'a> {
    fn new(repos: &'a [Repository], arch: &str) -> Resolver<'a> {
        let mut r = Resolver {
            pkgs: vec![],
            by_name: HashMap::new(),
            providers: HashMap::new(),
            other_arch: HashMap::new(),
            chosen: vec![],
            name_of: HashMap::new(),
            provided: HashMap::new(),
            conflicts: vec![],
        };
        for (ri, repo) in repos.iter().enumerate() {
            for pkg in &repo.packages {
                if pkg.arch != arch && pkg.arch != "noarch" {
                    r.other_arch.entry(&pkg.name).or_default().insert(&pkg.arch);
                    continue;
                }
                let i = r.pkgs.len();
                r.pkgs.push(Cand { pkg, repo: ri, tag: repo.tag.as_deref() });
                r.by_name.entry(&pkg.name).or_default().push(i);
                for p in &pkg.provides {
                    let v = p.constraint.as_ref().map(|c| c.version.as_str());
                    r.providers.entry(&p.name).or_default().push((i, v));
                }
            }
        }
        r.sort_candidates();
        r
    }

    fn sort_candidates(&mut self) {
        let pkgs = &self.pkgs;
        for list in self.by_name.values_mut() {
            list.sort_by(|&a, &b| {
                version::compare(&pkgs[b].pkg.version, &pkgs[a].pkg.version).then(pkgs[a].repo.cmp(&pkgs[b].repo))
            });
        }
        for list in self.providers.values_mut() {
            list.sort_by(|&(a, av), &(b, bv)| {
                let (pa, pb) = (pkgs[a].pkg, pkgs[b].pkg);
                let prio = pb.provider_priority.unwrap_or(0).cmp(&pa.provider_priority.unwrap_or(0));
                let provided = version::compare(bv.unwrap_or(""), av.unwrap_or(""));
                prio.then(provided)
                    .then(pa.name.cmp(&pb.name))
                    .then(version::compare(&pb.version, &pa.version))
                    .then(pkgs[a].repo.cmp(&pkgs[b].repo))
            });
        }
    }

    /// Dependencies on real package names first, then on names only provided: so that a
    /// provider asked for by name is chosen before a virtual could pick another one.
    fn processing_order<'d>(&self, deps: &'d [Dep]) -> Vec<&'d Dep> {
        let (real, virtual_): (Vec<&Dep>, Vec<&Dep>) =
            deps.iter().partition(|d| d.conflict || self.by_name.contains_key(d.name.as_str()));
        real.into_iter().chain(virtual_).collect()
    }

    fn label(&self, i: usize) -> String {
        format!("{}-{}", self.pkgs[i].pkg.name, self.pkgs[i].pkg.version)
    }

    fn tag_allowed(&self, i: usize, p: &Pending) -> bool {
        match self.pkgs[i].tag {
            None => true,
            Some(t) => p.dep.tag.as_deref() == Some(t) || p.tags.contains(t),
        }
    }

    /// Depth-first search with backtracking; on failure the state is as it was.
    fn solve(&mut self, mut stack: Vec<Pending>) -> Result<(), String> {
        let (start_chosen, start_conflicts) = (self.chosen.len(), self.conflicts.len());
        let mut choices: Vec<Choice> = Vec::new();
        let mut first_failure: Option<String> = None;
        let mut steps = 0usize;
        loop {
            steps += 1;
            if steps > STEP_LIMIT {
                self.undo(start_chosen, start_conflicts);
                return Err(format!("gave up after {STEP_LIMIT} steps: the dependencies are too entangled"));
            }
            let Some(p) = stack.pop() else { return Ok(()) };
            match self.step(&p) {
                Step::Done => {}
                Step::Conflict => self.conflicts.push(p),
                Step::Choose(cands) => {
                    if cands.len() > 1 {
                        choices.push(Choice {
                            stack: stack.clone(),
                            pending: p.clone(),
                            cands: cands.clone(),
                            next: 1,
                            chosen_len: self.chosen.len(),
                            conflicts_len: self.conflicts.len(),
                        });
                    }
                    self.choose(cands[0], &p, &mut stack);
                }
                Step::Fail(msg) => {
                    first_failure.get_or_insert(msg);
                    if !self.backtrack(&mut choices, &mut stack) {
                        self.undo(start_chosen, start_conflicts);
                        return Err(first_failure.unwrap_or_default());
                    }
                }
            }
        }
    }

    fn backtrack(&mut self, choices: &mut Vec<Choice>, stack: &mut Vec<Pending>) -> bool {
        while let Some(ch) = choices.last_mut() {
            if ch.next < ch.cands.len() {
                let (c, p) = (ch.cands[ch.next], ch.pending.clone());
                ch.next += 1;
                *stack = ch.stack.clone();
                let (cl, fl) = (ch.chosen_len, ch.conflicts_len);
                self.undo(cl, fl);
                self.choose(c, &p, stack);
                return true;
            }
            choices.pop();
        }
        false
    }

    fn undo(&mut self, chosen_len: usize, conflicts_len: usize) {
        while self.chosen.len() > chosen_len {
            let Some(i) = self.chosen.pop() else { break };
            let pkg = self.pkgs[i].pkg;
            self.name_of.remove(pkg.name.as_str());
            for name in std::iter::once(pkg.name.as_str()).chain(pkg.provides.iter().map(|p| p.name.as_str())) {
                if let Some(list) = self.provided.get_mut(name) {
                    list.retain(|&(j, _)| j != i);
                }
            }
        }
        self.conflicts.truncate(conflicts_len);
    }

    fn choose(&mut self, i: usize, p: &Pending, stack: &mut Vec<Pending>) {
        let cand = &self.pkgs[i];
        let pkg = cand.pkg;
        self.chosen.push(i);
        self.name_of.insert(&pkg.name, i);
        self.provided.entry(&pkg.name).or_default().push((i, Some(&pkg.version)));
        for prov in &pkg.provides {
            let v = prov.constraint.as_ref().map(|c| c.version.as_str());
            self.provided.entry(&prov.name).or_default().push((i, v));
        }
        let chain = Rc::new(Link { label: self.label(i), parent: Some(p.chain.clone()) });
        let tags = match cand.tag {
            Some(t) if !p.tags.contains(t) => {
                let mut set = (*p.tags).clone();
                set.insert(t.to_owned());
                Rc::new(set)
            }
            _ => p.tags.clone(),
        };
        for d in self.processing_order(&pkg.depends).into_iter().rev() {
            stack.push(Pending { dep: d.clone(), chain: chain.clone(), tags: tags.clone() });
        }
    }

    /// Version (and checksum) that package `i` offers for `name`, if it offers it.
    fn offers(&self, i: usize, name: &str) -> Option<Option<&'a str>> {
        let pkg = self.pkgs[i].pkg;
        if pkg.name == name {
            return Some(Some(pkg.version.as_str()));
        }
        pkg.provides.iter().find(|p| p.name == name).map(|p| p.constraint.as_ref().map(|c| c.version.as_str()))
    }

    fn meets(&self, dep: &Dep, i: usize) -> bool {
        match self.offers(i, &dep.name) {
            Some(v) => dep.matches(v, Some(&self.pkgs[i].pkg.checksum)),
            None => false,
        }
    }

    fn step(&self, p: &Pending) -> Step {
        let dep = &p.dep;
        if dep.conflict {
            let positive = dep.positive();
            let offenders = self.provided.get(dep.name.as_str()).into_iter().flatten();
            if let Some(&(j, _)) = offenders.clone().find(|&&(j, _)| self.meets(&positive, j)) {
                return Step::Fail(format!("{} -> {dep}: conflicts with {}", p.chain.render(), self.label(j)));
            }
            return Step::Conflict;
        }
        if let Some(&j) = self.name_of.get(dep.name.as_str()) {
            if self.meets(dep, j) {
                return Step::Done;
            }
            return Step::Fail(format!("{} -> {dep}: {} is already chosen", p.chain.render(), self.label(j)));
        }
        let provided = self.provided.get(dep.name.as_str()).into_iter().flatten();
        if provided.clone().any(|&(j, v)| dep.matches(v, Some(&self.pkgs[j].pkg.checksum))) {
            return Step::Done;
        }
        self.candidates(p)
    }

    fn candidates(&self, p: &Pending) -> Step {
        let dep = &p.dep;
        let named = self.by_name.get(dep.name.as_str()).into_iter().flatten().copied();
        let provs = self.providers.get(dep.name.as_str()).into_iter().flatten().map(|&(i, _)| i);
        let mut seen = HashSet::new();
        let matching: Vec<usize> =
            named.chain(provs).filter(|&i| self.tag_allowed(i, p) && self.meets(dep, i) && seen.insert(i)).collect();
        if matching.is_empty() {
            return Step::Fail(format!("{} -> {dep}: {}", p.chain.render(), self.why_none(p)));
        }
        let mut first_reason = None;
        let viable: Vec<usize> = matching
            .into_iter()
            .filter(|&i| match self.blocker(i) {
                None => true,
                Some(r) => {
                    first_reason.get_or_insert(r);
                    false
                }
            })
            .collect();
        if viable.is_empty() {
            return Step::Fail(format!("{} -> {dep}: {}", p.chain.render(), first_reason.unwrap_or_default()));
        }
        Step::Choose(viable)
    }

    /// Why package `i` cannot join the current choice, if it cannot.
    fn blocker(&self, i: usize) -> Option<String> {
        let pkg = self.pkgs[i].pkg;
        if let Some(&j) = self.name_of.get(pkg.name.as_str()) {
            return Some(format!("{} is already chosen", self.label(j)));
        }
        for c in &self.conflicts {
            let positive = c.dep.positive();
            if self.meets(&positive, i) {
                return Some(format!("{} is forbidden by {} -> {}", self.label(i), c.chain.render(), c.dep));
            }
        }
        // Versioned provides (and the package's own name) must be unique.
        let names = std::iter::once((pkg.name.as_str(), true))
            .chain(pkg.provides.iter().map(|p| (p.name.as_str(), p.constraint.is_some())));
        for (name, versioned) in names {
            let clash = self.provided.get(name).into_iter().flatten().find(|&&(_, v)| versioned && v.is_some());
            if let Some(&(j, _)) = clash {
                return Some(format!("{} and {} both provide {name}", self.label(i), self.label(j)));
            }
        }
        None
    }

    fn why_none(&self, p: &Pending) -> String {
        let dep = &p.dep;
        let all: Vec<usize> = self.by_name.get(dep.name.as_str()).into_iter().flatten().copied().collect();
        let allowed: Vec<usize> = all.iter().copied().filter(|&i| self.tag_allowed(i, p)).collect();
        if let (Some(&first), true) = (all.first(), allowed.is_empty()) {
            let tag = self.pkgs[first].tag.unwrap_or_default();
            return format!("only in the repository tagged @{tag} (ask for {}@{tag})", dep.name);
        }
        if !allowed.is_empty() {
            let mut versions: Vec<&str> = allowed.iter().map(|&i| self.pkgs[i].pkg.version.as_str()).collect();
            versions.dedup();
            return format!("no such version (available: {})", versions.join(", "));
        }
        if let Some(arches) = self.other_arch.get(dep.name.as_str()) {
            return format!("only for {}", arches.iter().copied().collect::<Vec<_>>().join(", "));
        }
        if self.providers.contains_key(dep.name.as_str()) {
            return "no provider offers such a version".into();
        }
        "no package has or provides that name".into()
    }

    /// Adds packages whose `install_if` conditions are all installed, until none is left;
    /// one whose own dependencies cannot be met is left out, as apk leaves it.
    fn add_install_if(&mut self) {
        let mut declined: HashSet<usize> = HashSet::new();
        loop {
            let next = self.pkgs.iter().enumerate().find_map(|(i, c)| {
                let ready = !c.pkg.install_if.is_empty()
                    && c.tag.is_none()
                    && !declined.contains(&i)
                    && !self.name_of.contains_key(c.pkg.name.as_str())
                    && self.by_name[c.pkg.name.as_str()].first() == Some(&i)
                    && c.pkg.install_if.iter().all(|d| self.installed(d));
                ready.then_some(i)
            });
            let Some(i) = next else { return };
            let conds = super::dep::join(&self.pkgs[i].pkg.install_if);
            let root = Rc::new(Link { label: format!("install_if({conds})"), parent: None });
            let pkg = self.pkgs[i].pkg;
            let exact = Dep::parse(&format!("{}={}", pkg.name, pkg.version), "install_if");
            declined.insert(i);
            if let Ok(dep) = exact {
                let _ = self.solve(vec![Pending { dep, chain: root, tags: Rc::default() }]);
            }
        }
    }

    fn installed(&self, d: &Dep) -> bool {
        let hit = self
            .provided
            .get(d.name.as_str())
            .into_iter()
            .flatten()
            .any(|&(j, v)| d.positive().matches(v, Some(&self.pkgs[j].pkg.checksum)));
        hit != d.conflict
    }
}

#[cfg(test)]
mod tests;
