//! The store on disk: layout, registration, roots, garbage collection, verification.
//!
//! ```text
//! <root>/store/<hash>-<name>   store paths, read-only once registered
//! <root>/db.sqlite             the database (WAL), see `db`
//! <root>/logs/                 build logs
//! <root>/tmp/                  temp dirs, each flock'ed by its owner; swept on open
//! <root>/gcroots/              symlinks to store paths (direct roots), and
//! <root>/gcroots/auto/         symlinks to symlinks elsewhere (indirect roots)
//! <root>/locks/                one lock file per store path being added or used
//! ```
//!
//! Registration protocol (crash-safe): the tree is built in a temp dir, made
//! canonical, NAR-hashed and scanned for references; under the path's exclusive lock
//! it is renamed into `store/` and then inserted in the database in one transaction.
//! A path is valid only once its row is committed, so a crash leaves at worst an
//! unregistered directory in `store/` (swept on the next open, or replaced by the
//! next registration of that path) or a temp dir (swept on the next open).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::db::{closure, Db, PathInfo};
use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::lock::{sweep_temp, LockMode, PathLock, TempPath};
use crate::nar;
use crate::path::{validate_name, StorePath, STORE_DIR};
use crate::refs::RefScanner;
use crate::tree;

/// An open store. Shareable between threads; several processes may open one root.
pub struct Store {
    root: PathBuf,
    db: Mutex<Db>,
}

/// One output for [`Store::register_outputs`].
#[derive(Clone, Copy, Debug)]
pub struct Output<'a> {
    /// The built tree, inside a temp dir of the store.
    pub src: &'a Path,
    /// The exclusive lock on the store path it becomes.
    pub lock: &'a PathLock,
    /// Its content address, for fixed outputs (`fixed:r:sha256:...`, `fixed:sha256:...`).
    pub ca: Option<&'a str>,
}

/// What [`Store::gc`] removed (or would remove, in a dry run).
#[derive(Debug, Default)]
pub struct GcReport {
    /// Paths deleted (or that would be), sorted.
    pub deleted: Vec<StorePath>,
    /// Sum of their NAR sizes.
    pub bytes: u64,
    /// Unreachable paths kept because a running forge process holds them.
    pub in_use: Vec<StorePath>,
    /// Indirect roots whose link no longer exists (removed unless dry run).
    pub stale_roots: Vec<PathBuf>,
    /// Unregistered leftovers removed from `store/` and `tmp/`.
    pub leftovers: Vec<PathBuf>,
}

/// What [`Store::verify`] found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Valid paths checked.
    pub checked: usize,
    /// Each bad path, with what is wrong with it.
    pub bad: Vec<(StorePath, String)>,
    /// Problems with the database itself.
    pub database: Vec<String>,
}

impl VerifyReport {
    /// No bad path and no database problem.
    pub fn is_clean(&self) -> bool {
        self.bad.is_empty() && self.database.is_empty()
    }
}

impl Store {
    /// Opens the store at `root`, creating its layout and database when missing, and
    /// sweeps what crashed processes left in `tmp/` and `store/`.
    pub fn open(root: impl AsRef<Path>) -> Result<Store> {
        let root = root.as_ref();
        for dir in ["", "store", "logs", "tmp", "gcroots", "gcroots/auto", "locks"] {
            let d = root.join(dir);
            fs::create_dir_all(&d).map_err(Error::io(&d))?;
        }
        let root = fs::canonicalize(root).map_err(Error::io(root))?;
        // SQLite refuses the switch to WAL (and the first migration) with SQLITE_BUSY,
        // without waiting, when another process opens a fresh store at the same
        // moment; opening under one lock file makes that a wait instead.
        let db = {
            let _opening = crate::lock::hold_open_lock(&root.join("locks").join("db-open.lock"))?;
            Db::open(&root.join("db.sqlite"))?
        };
        let store = Store { root, db: Mutex::new(db) };
        store.sweep()?;
        Ok(store)
    }

    /// Where the store lives when `--store` is not given: `$FORGE_STORE`, else
    /// `$XDG_DATA_HOME/forge`, else `~/.local/share/forge`.
    pub fn default_root() -> Result<PathBuf> {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(dir) = var("FORGE_STORE") {
            return Ok(dir);
        }
        if let Some(dir) = var("XDG_DATA_HOME").filter(|d| d.is_absolute()) {
            return Ok(dir.join("forge"));
        }
        var("HOME").map(|home| home.join(".local/share/forge")).ok_or(Error::NoRoot)
    }

    /// The physical root (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/store`: where store paths physically are.
    pub fn store_dir(&self) -> PathBuf {
        self.root.join("store")
    }

    /// `<root>/logs`.
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// `<root>/gcroots`.
    pub fn gcroots_dir(&self) -> PathBuf {
        self.root.join("gcroots")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where a store path is on this machine.
    pub fn physical(&self, path: &StorePath) -> PathBuf {
        self.store_dir().join(path.base_name())
    }

    /// Parses a store path given as `/forge/store/...`, as its physical location
    /// under this store, or as a bare `<hash>-<name>`. A file inside a store path
    /// names that store path.
    pub fn parse_path(&self, text: &str) -> Result<StorePath> {
        store_path_in(Path::new(text), &self.store_dir()).ok_or(()).or_else(|()| text.parse::<StorePath>()).map_err(
            |_| Error::BadStorePath {
                path: text.to_owned(),
                why: format!(
                    "expected {STORE_DIR}/<hash>-<name>, {}/<hash>-<name> or <hash>-<name>",
                    self.store_dir().display()
                ),
            },
        )
    }

    /// The database, locked for this thread (for the tables later modules own).
    pub fn db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `path` is registered (complete and immutable) in this store.
    pub fn is_valid(&self, path: &StorePath) -> Result<bool> {
        self.db().is_valid(path)
    }

    /// What the database records for `path`, or `None` when it is not valid.
    pub fn query_info(&self, path: &StorePath) -> Result<Option<PathInfo>> {
        self.db().query_info(path)
    }

    /// Like [`Store::query_info`] but a missing path is an error naming it.
    pub fn info(&self, path: &StorePath) -> Result<PathInfo> {
        self.query_info(path)?.ok_or_else(|| Error::NotValid { path: path.to_string() })
    }

    /// Every valid path, sorted.
    pub fn valid_paths(&self) -> Result<Vec<StorePath>> {
        self.db().valid_paths()
    }

    /// A fresh directory under `<root>/tmp/`, on the store's filesystem so its
    /// contents can be renamed into `store/`. Removed on drop unless kept; while it
    /// lives, no other process sweeps it.
    pub fn new_temp_dir(&self, label: &str) -> Result<TempPath> {
        TempPath::create(&self.tmp_dir(), label)
    }

    fn lock_file(&self, path: &StorePath) -> PathBuf {
        self.root.join("locks").join(format!("{}.lock", path.base_name()))
    }

    /// The exclusive lock on `path`, waiting for it: hold it while adding or building
    /// `path`, check [`Store::is_valid`] once it is held (someone else may have done
    /// the work meanwhile), then [`Store::register`].
    pub fn lock_path(&self, path: &StorePath) -> Result<PathLock> {
        PathLock::wait_for(self.lock_file(path), path, LockMode::Exclusive)
    }

    /// The exclusive lock on `path` if nobody holds it, else `None`.
    pub fn try_lock_path(&self, path: &StorePath) -> Result<Option<PathLock>> {
        PathLock::acquire(self.lock_file(path), path, LockMode::Exclusive, false)
    }

    /// A shared lock on `path`, waiting for it: hold it while a build uses `path`
    /// as an input, so that gc does not delete it meanwhile.
    pub fn hold_path(&self, path: &StorePath) -> Result<PathLock> {
        PathLock::wait_for(self.lock_file(path), path, LockMode::Shared)
    }

    /// Registers the tree at `src` (inside a temp dir of this store) as `lock.path()`:
    /// makes it canonical, NAR-hashes it, finds which `reference_candidates` it
    /// mentions (itself included if listed), moves it into `store/` and records it
    /// in one transaction. `lock` must be the exclusive lock on the path. When the
    /// path is already valid, its record is returned and `src` is left alone.
    pub fn register(
        &self,
        src: &Path,
        lock: &PathLock,
        reference_candidates: &[StorePath],
        deriver: Option<&str>,
        ca: Option<&str>,
    ) -> Result<PathInfo> {
        let mut infos = self.register_outputs(&[Output { src, lock, ca }], reference_candidates, deriver)?;
        infos.pop().ok_or_else(|| Error::NotValid { path: lock.path().to_string() })
    }

    /// Registers several outputs (of one derivation) at once, as [`Store::register`]
    /// does one: they may refer to each other, and all become valid in the same
    /// transaction or none does. Returns their records in the same order.
    pub fn register_outputs(
        &self,
        outputs: &[Output<'_>],
        reference_candidates: &[StorePath],
        deriver: Option<&str>,
    ) -> Result<Vec<PathInfo>> {
        let mut new = Vec::new();
        for out in outputs {
            let path = out.lock.path();
            if out.lock.mode() != LockMode::Exclusive {
                return Err(Error::NotLocked { path: path.to_string() });
            }
            self.check_in_temp(out.src)?;
            if self.is_valid(path)? {
                continue;
            }
            tree::normalize(out.src, true)?;
            let mut scanner = RefScanner::new(reference_candidates);
            let (nar_hash, nar_size) = nar::hash_tree(out.src, None, |bytes| scanner.scan(bytes))?;
            let info = PathInfo {
                path: path.clone(),
                nar_hash,
                nar_size,
                references: scanner.found(),
                deriver: deriver.map(str::to_owned),
                registration_time: now(),
                ca: out.ca.map(str::to_owned),
            };
            new.push((out.src, info));
        }
        self.install(new)?;
        outputs.iter().map(|o| self.info(o.lock.path())).collect()
    }

    fn check_in_temp(&self, src: &Path) -> Result<()> {
        let tmp = self.tmp_dir();
        // The parent is canonicalized, not `src`: a symlink output must not be followed.
        let parent = src.parent().and_then(|p| fs::canonicalize(p).ok());
        match (parent, src.file_name()) {
            (Some(p), Some(_)) if p.starts_with(&tmp) => Ok(()),
            _ => Err(Error::NotInTemp { path: src.to_owned(), tmp }),
        }
    }

    /// Moves canonical trees into `store/` and commits their rows in one
    /// transaction. The caller holds each path's exclusive lock. On failure the
    /// trees go back where they were (the caller's output is not lost) and none
    /// becomes valid.
    fn install(&self, items: Vec<(&Path, PathInfo)>) -> Result<()> {
        let mut moved: Vec<(PathBuf, &Path)> = Vec::with_capacity(items.len());
        let mut move_all = || -> Result<()> {
            for (src, info) in &items {
                let dest = self.physical(&info.path);
                // An unregistered directory here is a leftover of a crash: ours to replace.
                tree::remove(&dest)?;
                fs::rename(src, &dest).map_err(Error::io(&dest))?;
                moved.push((dest.clone(), src));
                tree::seal_top(&dest)?;
            }
            Ok(())
        };
        let infos: Vec<PathInfo> = items.iter().map(|(_, info)| info.clone()).collect();
        let result = move_all().and_then(|()| self.db().register_all(&infos));
        if let Err(e) = result {
            for (dest, src) in moved.iter().rev() {
                if tree::unseal_top(dest).and_then(|()| fs::rename(dest, src).map_err(Error::io(src))).is_err() {
                    let _ = tree::remove(dest);
                }
            }
            return Err(e);
        }
        Ok(())
    }

    /// Adds the tree at `src` by content, like `nix-store --add`: copied into a temp
    /// dir (read once, hashed as written), named by its NAR hash and `name`.
    pub fn add_path(&self, src: &Path, name: &str) -> Result<PathInfo> {
        self.add_path_rooted(src, name, None)
    }

    /// [`Store::add_path`], also making `gcroots/<root>` point at the result before
    /// the path's lock is released, so no gc can slip in between.
    pub fn add_path_rooted(&self, src: &Path, name: &str, root: Option<&str>) -> Result<PathInfo> {
        validate_name(name)?;
        fs::symlink_metadata(src).map_err(Error::io(src))?;
        let temp = self.new_temp_dir(&format!("add-{name}"))?;
        let copy = temp.path().join("tree");
        let (nar_hash, nar_size) = nar::hash_tree(src, Some(&copy), |_| ())?;
        self.install_by_content(&copy, nar_hash, nar_size, name, root)
    }

    /// Restores a NAR stream into the store, named by its hash and `name` (no
    /// references, as for [`Store::add_path`]). Malformed NARs are refused.
    pub fn import(&self, reader: impl Read, name: &str) -> Result<PathInfo> {
        validate_name(name)?;
        let temp = self.new_temp_dir(&format!("import-{name}"))?;
        let dest = temp.path().join("tree");
        let (nar_hash, nar_size) = nar::restore(reader, &dest)?;
        tree::normalize(&dest, true)?;
        self.install_by_content(&dest, nar_hash, nar_size, name, None)
    }

    fn install_by_content(
        &self,
        tree: &Path,
        nar_hash: Hash,
        nar_size: u64,
        name: &str,
        root: Option<&str>,
    ) -> Result<PathInfo> {
        let path = StorePath::for_source(&nar_hash, name, &[])?;
        let _lock = self.lock_path(&path)?;
        let info = match self.query_info(&path)? {
            Some(info) => info,
            None => self.install_new_by_content(tree, path, nar_hash, nar_size)?,
        };
        if let Some(root) = root {
            self.add_root(root, &info.path)?;
        }
        Ok(info)
    }

    fn install_new_by_content(&self, tree: &Path, path: StorePath, nar_hash: Hash, nar_size: u64) -> Result<PathInfo> {
        let ca = format!("fixed:r:{nar_hash}");
        let info = PathInfo {
            path,
            nar_hash,
            nar_size,
            references: Vec::new(),
            deriver: None,
            registration_time: now(),
            ca: Some(ca),
        };
        self.install(vec![(tree, info.clone())])?;
        Ok(info)
    }

    /// Writes the NAR of a valid path, holding a shared lock on it meanwhile (so do
    /// not call it while this process holds the path's exclusive lock).
    pub fn export(&self, path: &StorePath, out: &mut impl Write) -> Result<()> {
        let _hold = self.hold_path(path)?;
        if !self.is_valid(path)? {
            return Err(Error::NotValid { path: path.to_string() });
        }
        nar::dump(&self.physical(path), out)
    }

    /// Makes `gcroots/<name>` a root for `path` (replacing a root of that name).
    pub fn add_root(&self, name: &str, path: &StorePath) -> Result<PathBuf> {
        let bad = |why: &str| Error::BadRoot { name: name.to_owned(), why: why.to_owned() };
        if name.is_empty() || name.starts_with('.') || name.contains('/') || name == "auto" {
            return Err(bad("a root name is one file name, not starting with `.` and not `auto`"));
        }
        if !self.is_valid(path)? {
            return Err(Error::NotValid { path: path.to_string() });
        }
        let link = self.gcroots_dir().join(name);
        replace_symlink(&self.physical(path), &link)?;
        Ok(link)
    }

    /// Makes the symlink at `link` (for example `output/alpine/system`) an indirect
    /// root: whatever store path it points to stays alive while the link exists.
    pub fn add_indirect_root(&self, link: &Path) -> Result<PathBuf> {
        let abs = std::path::absolute(link).map_err(Error::io(link))?;
        let id = Hash::of(crate::hash::Algo::Sha256, abs.as_os_str().as_encoded_bytes()).to_base32();
        let root = self.gcroots_dir().join("auto").join(&id[..32]);
        replace_symlink(&abs, &root)?;
        Ok(root)
    }

    /// Every root link and the valid store path it keeps alive. Indirect roots whose
    /// link is gone are returned apart.
    pub fn roots(&self) -> Result<(BTreeMap<PathBuf, StorePath>, Vec<PathBuf>)> {
        let mut roots = BTreeMap::new();
        let mut stale = Vec::new();
        let mut todo = vec![self.gcroots_dir()];
        while let Some(dir) = todo.pop() {
            for entry in fs::read_dir(&dir).map_err(Error::io(&dir))? {
                let link = entry.map_err(Error::io(&dir))?.path();
                let md = fs::symlink_metadata(&link).map_err(Error::io(&link))?;
                if md.is_dir() {
                    todo.push(link);
                } else if md.file_type().is_symlink() {
                    match self.resolve_root(&link) {
                        Some(p) => {
                            roots.insert(link, p);
                        }
                        None if dir.ends_with("auto") => stale.push(link),
                        None => {}
                    }
                }
            }
        }
        Ok((roots, stale))
    }

    /// Follows a root through symlinks (at most 16) until it lands in the store.
    fn resolve_root(&self, link: &Path) -> Option<StorePath> {
        let mut at = link.to_owned();
        for _ in 0..16 {
            let target = fs::read_link(&at).ok()?;
            let target = match at.parent() {
                Some(dir) if target.is_relative() => dir.join(target),
                _ => target,
            };
            if let Some(p) = store_path_in(&target, &self.store_dir()) {
                return Some(p);
            }
            at = target;
        }
        None
    }

    /// Deletes every valid path not reachable from a root through references,
    /// except paths a running forge process holds (and what they reach). Also
    /// removes stale indirect roots and unregistered leftovers.
    pub fn gc(&self, dry_run: bool) -> Result<GcReport> {
        let (roots, stale_roots) = self.roots()?;
        let graph = self.db().reference_graph()?;
        let live = closure(&graph, roots.values());
        let mut report = GcReport { stale_roots, ..GcReport::default() };
        let mut locks = BTreeMap::new();
        for p in graph.keys().filter(|p| !live.contains(*p)) {
            match self.try_lock_path(p)? {
                Some(lock) => {
                    locks.insert(p.clone(), lock);
                }
                None => report.in_use.push(p.clone()),
            }
        }
        // What a busy path refers to must stay too.
        for p in closure(&graph, &report.in_use) {
            locks.remove(&p);
        }
        report.in_use.sort();
        let candidates: BTreeSet<StorePath> = locks.keys().cloned().collect();
        let sizes = |paths: &mut dyn Iterator<Item = &StorePath>| -> Result<u64> {
            let mut total = 0;
            for p in paths {
                total += self.query_info(p)?.map_or(0, |i| i.nar_size);
            }
            Ok(total)
        };
        if dry_run {
            report.bytes = sizes(&mut candidates.iter())?;
            report.deleted = candidates.into_iter().collect();
            return Ok(report);
        }
        for link in &report.stale_roots {
            fs::remove_file(link).map_err(Error::io(link))?;
        }
        report.bytes = sizes(&mut candidates.iter())?;
        let dead = self.db().delete_unreachable(&candidates)?;
        for p in &dead {
            tree::remove(&self.physical(p))?;
            if let Some(lock) = locks.remove(p) {
                lock.remove()?;
            }
        }
        let kept: BTreeSet<&StorePath> = candidates.iter().filter(|p| !dead.contains(p)).collect();
        report.bytes -= sizes(&mut kept.into_iter())?;
        report.deleted = dead;
        drop(locks);
        report.leftovers = self.sweep()?;
        Ok(report)
    }

    /// Checks every valid path exists, and with `check_contents` that its NAR hash
    /// and size match the database. Reports each bad path by name.
    pub fn verify(&self, check_contents: bool) -> Result<VerifyReport> {
        let paths = self.valid_paths()?;
        let mut report =
            VerifyReport { checked: paths.len(), database: self.db().check_integrity()?, ..Default::default() };
        for p in paths {
            if let Some(problem) = self.verify_path(&p, check_contents)? {
                report.bad.push((p, problem));
            }
        }
        Ok(report)
    }

    fn verify_path(&self, path: &StorePath, check_contents: bool) -> Result<Option<String>> {
        let Some(info) = self.query_info(path)? else { return Ok(None) }; // deleted meanwhile
        let physical = self.physical(path);
        if fs::symlink_metadata(&physical).is_err() {
            return Ok(Some(format!("missing: {} does not exist", physical.display())));
        }
        if !check_contents {
            return Ok(None);
        }
        match nar::hash_path(&physical) {
            Ok((hash, size)) if hash != info.nar_hash || size != info.nar_size => Ok(Some(format!(
                "modified: NAR hash {hash} ({size} bytes), the database says {} ({} bytes)",
                info.nar_hash, info.nar_size
            ))),
            Ok(_) => Ok(None),
            Err(e) => Ok(Some(format!("unreadable: {e}"))),
        }
    }

    /// Removes unlocked temp dirs and unregistered entries of `store/`.
    fn sweep(&self) -> Result<Vec<PathBuf>> {
        let mut swept = sweep_temp(&self.tmp_dir())?;
        let store_dir = self.store_dir();
        let valid: BTreeSet<String> = self.valid_paths()?.iter().map(StorePath::base_name).collect();
        for entry in fs::read_dir(&store_dir).map_err(Error::io(&store_dir))? {
            let entry = entry.map_err(Error::io(&store_dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if valid.contains(&name) {
                continue;
            }
            let Ok(path) = StorePath::from_base_name(&name) else { continue };
            // Re-check under the lock: it may have been registered since we listed.
            let Some(lock) = self.try_lock_path(&path)? else { continue };
            if self.is_valid(&path)? {
                continue;
            }
            tree::remove(&entry.path())?;
            swept.push(entry.path());
            lock.remove()?;
        }
        Ok(swept)
    }
}

/// The store path a physical or logical path points into, if any.
fn store_path_in(path: &Path, store_dir: &Path) -> Option<StorePath> {
    let rest = path.strip_prefix(STORE_DIR).or_else(|_| path.strip_prefix(store_dir)).ok()?;
    match rest.components().next()? {
        Component::Normal(base) => StorePath::from_base_name(base.to_str()?).ok(),
        _ => None,
    }
}

/// Points `link` at `target` atomically (a new link renamed over the old one).
fn replace_symlink(target: &Path, link: &Path) -> Result<()> {
    let dir = link.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".new-{}-{}", std::process::id(), now_nanos()));
    std::os::unix::fs::symlink(target, &tmp).map_err(Error::io(&tmp))?;
    fs::rename(&tmp, link).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(link)(e)
    })
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("root")).unwrap();
        (dir, store)
    }

    fn output_path(name: &str) -> StorePath {
        StorePath::make("output:out", &Hash::of(crate::hash::Algo::Sha256, name.as_bytes()), name).unwrap()
    }

    /// Builds `files` in a temp dir and registers them as `path` with `candidates`.
    fn build(store: &Store, path: &StorePath, files: &[(&str, String)], candidates: &[StorePath]) -> PathInfo {
        let lock = store.lock_path(path).unwrap();
        let temp = store.new_temp_dir("build").unwrap();
        let out = temp.path().join("out");
        fs::create_dir(&out).unwrap();
        for (name, text) in files {
            fs::write(out.join(name), text).unwrap();
        }
        store.register(&out, &lock, candidates, Some("/forge/store/x.drv"), None).unwrap()
    }

    #[test]
    fn a_store_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Store>();
    }

    #[test]
    fn a_temp_dir_itself_can_be_registered_and_its_drop_is_harmless() {
        let (_dir, store) = store();
        let p = output_path("whole-temp");
        let lock = store.lock_path(&p).unwrap();
        let temp = store.new_temp_dir("out").unwrap();
        fs::write(temp.path().join("f"), b"x").unwrap();
        store.register(temp.path(), &lock, &[], None, None).unwrap();
        drop(temp);
        assert!(store.physical(&p).join("f").exists());
        assert!(store.verify(true).unwrap().is_clean());
    }

    #[test]
    fn a_symlink_or_a_file_can_be_a_store_path() {
        let (_dir, store) = store();
        let temp = store.new_temp_dir("out").unwrap();
        let (link, file) = (output_path("link"), output_path("file"));
        std::os::unix::fs::symlink("/forge/store/elsewhere", temp.path().join("l")).unwrap();
        fs::write(temp.path().join("f"), b"flat").unwrap();
        store.register(&temp.path().join("l"), &store.lock_path(&link).unwrap(), &[], None, None).unwrap();
        store.register(&temp.path().join("f"), &store.lock_path(&file).unwrap(), &[], None, None).unwrap();
        assert_eq!(fs::read_link(store.physical(&link)).unwrap(), Path::new("/forge/store/elsewhere"));
        assert_eq!(fs::metadata(store.physical(&file)).unwrap().mode() & 0o777, 0o444);
        assert!(store.verify(true).unwrap().is_clean());
    }

    #[test]
    fn register_refuses_a_fifo_and_registers_nothing() {
        let (_dir, store) = store();
        let p = output_path("with-fifo");
        let lock = store.lock_path(&p).unwrap();
        let temp = store.new_temp_dir("out").unwrap();
        let out = temp.path().join("out");
        fs::create_dir(&out).unwrap();
        let c = std::ffi::CString::new(out.join("fifo").into_os_string().into_encoded_bytes()).unwrap();
        // SAFETY: valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let err = store.register(&out, &lock, &[], None, None).unwrap_err().to_string();
        assert!(err.contains("fifo"), "{err}");
        assert!(!store.is_valid(&p).unwrap() && !store.physical(&p).exists());
    }

    #[test]
    fn open_creates_the_layout_and_a_migrated_database() {
        let (_dir, store) = store();
        for d in ["store", "logs", "tmp", "gcroots", "locks"] {
            assert!(store.root().join(d).is_dir(), "{d}");
        }
        assert_eq!(store.db().schema_version().unwrap(), crate::db::MIGRATIONS.len() as i64);
    }

    #[test]
    fn register_moves_a_canonical_tree_into_the_store_with_its_references() {
        let (_dir, store) = store();
        let dep = output_path("dep");
        build(&store, &dep, &[("f", "dep".into())], &[]);
        let me = output_path("me");
        let unrelated = output_path("unrelated");
        let text = format!("#!{}/bin/sh\nself={}", dep, me);
        let info = build(&store, &me, &[("run", text)], &[dep.clone(), me.clone(), unrelated]);
        assert_eq!(info.references, {
            let mut v = vec![dep, me.clone()];
            v.sort();
            v
        });
        assert_eq!(store.query_info(&me).unwrap().unwrap(), info);
        let phys = store.physical(&me);
        assert_eq!(fs::metadata(&phys).unwrap().mode() & 0o7777, 0o555);
        assert_eq!(fs::metadata(phys.join("run")).unwrap().mode() & 0o7777, 0o444);
        assert_eq!(fs::metadata(phys.join("run")).unwrap().mtime(), 1);
        assert_eq!(nar::hash_path(&phys).unwrap(), (info.nar_hash, info.nar_size));
    }

    #[test]
    fn outputs_that_refer_to_each_other_register_together_or_not_at_all() {
        let (_dir, store) = store();
        let (out, dev) = (output_path("out"), output_path("dev"));
        let (lock_out, lock_dev) = (store.lock_path(&out).unwrap(), store.lock_path(&dev).unwrap());
        let temp = store.new_temp_dir("build").unwrap();
        let (src_out, src_dev) = (temp.path().join("out"), temp.path().join("dev"));
        fs::write(&src_out, format!("see {dev}")).unwrap();
        fs::write(&src_dev, format!("see {out}")).unwrap();
        let candidates = [out.clone(), dev.clone()];
        let outputs =
            [Output { src: &src_out, lock: &lock_out, ca: None }, Output { src: &src_dev, lock: &lock_dev, ca: None }];
        // A reference to a path that is not valid fails the whole batch and loses nothing.
        let ghost = output_path("ghost");
        fs::write(&src_out, format!("see {dev} and {ghost}")).unwrap();
        let with_ghost = [out.clone(), dev.clone(), ghost];
        assert!(matches!(store.register_outputs(&outputs, &with_ghost, None), Err(Error::InvalidReference { .. })));
        assert!(!store.is_valid(&dev).unwrap() && !store.physical(&dev).exists());
        assert_eq!(fs::read_to_string(&src_dev).unwrap(), format!("see {out}"));
        // Without the bad reference, both become valid, each naming the other.
        tree::remove(&src_out).unwrap();
        fs::write(&src_out, format!("see {dev}")).unwrap();
        let infos = store.register_outputs(&outputs, &candidates, Some("/forge/store/x.drv")).unwrap();
        assert_eq!(infos[0].references, vec![dev.clone()]);
        assert_eq!(infos[1].references, vec![out.clone()]);
        assert!(store.verify(true).unwrap().is_clean());
    }

    #[test]
    fn register_refuses_a_tree_outside_tmp_and_a_shared_lock() {
        let (dir, store) = store();
        let p = output_path("p");
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let lock = store.lock_path(&p).unwrap();
        assert!(matches!(store.register(&outside, &lock, &[], None, None), Err(Error::NotInTemp { .. })));
        drop(lock);
        let shared = store.hold_path(&p).unwrap();
        let temp = store.new_temp_dir("x").unwrap();
        assert!(matches!(store.register(temp.path(), &shared, &[], None, None), Err(Error::NotLocked { .. })));
    }

    #[test]
    fn add_path_gives_the_same_path_for_the_same_content_and_name() {
        let (dir, store) = store();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("d")).unwrap();
        fs::write(src.join("d/f"), b"hello").unwrap();
        let a = store.add_path(&src, "src").unwrap();
        let b = store.add_path(&src, "src").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.nar_hash, nar::hash_path(&src).unwrap().0);
        assert_eq!(a.ca.as_deref(), Some(format!("fixed:r:{}", a.nar_hash).as_str()));
        assert_ne!(store.add_path(&src, "other").unwrap().path, a.path);
        assert!(fs::read_dir(store.root().join("tmp")).unwrap().next().is_none(), "temp dirs left behind");
    }

    #[test]
    fn gc_keeps_roots_and_their_closure_and_deletes_the_rest() {
        let (dir, store) = store();
        let dep = output_path("dep");
        build(&store, &dep, &[("f", "x".into())], &[]);
        let top = output_path("top");
        build(&store, &top, &[("f", dep.to_string())], std::slice::from_ref(&dep));
        let junk = output_path("junk");
        build(&store, &junk, &[("f", "junk".into())], &[]);
        let via_output = output_path("via-output");
        build(&store, &via_output, &[("f", "o".into())], &[]);
        store.add_root("top", &top).unwrap();
        let output_link = dir.path().join("output-link");
        std::os::unix::fs::symlink(store.physical(&via_output), &output_link).unwrap();
        store.add_indirect_root(&output_link).unwrap();

        let dry = store.gc(true).unwrap();
        assert_eq!(dry.deleted, vec![junk.clone()]);
        assert!(store.is_valid(&junk).unwrap());
        let report = store.gc(false).unwrap();
        assert_eq!(report.deleted, vec![junk.clone()]);
        assert!(!store.is_valid(&junk).unwrap() && !store.physical(&junk).exists());
        for p in [&dep, &top, &via_output] {
            assert!(store.is_valid(p).unwrap() && store.physical(p).exists(), "{p}");
        }
        // Removing the output link makes its target garbage and its root stale.
        fs::remove_file(&output_link).unwrap();
        let report = store.gc(false).unwrap();
        assert_eq!(report.deleted, vec![via_output]);
        assert_eq!(report.stale_roots.len(), 1);
        assert!(store.verify(true).unwrap().is_clean());
    }

    #[test]
    fn gc_spares_a_path_a_process_holds_and_what_it_refers_to() {
        let (_dir, store) = store();
        let dep = output_path("dep");
        build(&store, &dep, &[("f", "x".into())], &[]);
        let user = output_path("user");
        build(&store, &user, &[("f", dep.to_string())], std::slice::from_ref(&dep));
        let hold = store.hold_path(&user).unwrap();
        let report = store.gc(false).unwrap();
        assert!(report.deleted.is_empty(), "{:?}", report.deleted);
        assert_eq!(report.in_use, vec![user.clone()]);
        drop(hold);
        let mut deleted = store.gc(false).unwrap().deleted;
        deleted.sort();
        let mut want = vec![dep, user];
        want.sort();
        assert_eq!(deleted, want);
    }

    #[test]
    fn verify_names_a_modified_and_a_missing_path() {
        let (_dir, store) = store();
        let a = output_path("a");
        build(&store, &a, &[("f", "original".into())], &[]);
        let b = output_path("b");
        build(&store, &b, &[("f", "b".into())], &[]);
        assert!(store.verify(true).unwrap().is_clean());
        let f = store.physical(&a).join("f");
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&f, "tampered").unwrap();
        tree::remove(&store.physical(&b)).unwrap();
        let report = store.verify(true).unwrap();
        let bad: Vec<_> =
            report.bad.iter().map(|(p, why)| (p.clone(), why.split(':').next().unwrap().to_owned())).collect();
        let mut want = vec![(a, "modified".to_owned()), (b.clone(), "missing".to_owned())];
        want.sort();
        assert_eq!(bad, want);
        assert_eq!(store.verify(false).unwrap().bad.len(), 1);
    }

    #[test]
    fn export_then_import_round_trips_an_added_path() {
        let (dir, store) = store();
        let src = dir.path().join("src");
        fs::create_dir(&src).unwrap();
        fs::write(src.join("f"), b"data").unwrap();
        let info = store.add_path(&src, "src").unwrap();
        let mut nar_bytes = Vec::new();
        store.export(&info.path, &mut nar_bytes).unwrap();
        let (_dir2, other) = self::store();
        let imported = other.import(&nar_bytes[..], "src").unwrap();
        assert_eq!((imported.path, imported.nar_hash), (info.path, info.nar_hash));
    }

    #[test]
    fn open_sweeps_abandoned_temp_dirs_and_unregistered_store_entries_but_not_live_ones() {
        let (_dir, store) = store();
        let live = store.new_temp_dir("live").unwrap();
        let dead = store.new_temp_dir("dead").unwrap().keep();
        fs::create_dir(dead.join("sub")).unwrap();
        fs::set_permissions(dead.join("sub"), fs::Permissions::from_mode(0o555)).unwrap();
        let leftover = store.physical(&output_path("half"));
        fs::create_dir(&leftover).unwrap();
        let locked = output_path("locked");
        let lock = store.lock_path(&locked).unwrap();
        fs::create_dir(store.physical(&locked)).unwrap();
        let again = Store::open(store.root()).unwrap();
        assert!(live.path().exists() && !dead.exists() && !leftover.exists());
        assert!(again.physical(&locked).exists(), "a locked, in-progress path was swept");
        drop(lock);
    }

    #[test]
    fn default_root_prefers_forge_store_then_xdg_data_home_then_home() {
        // nextest runs each test in its own process, so the environment is ours.
        std::env::set_var("FORGE_STORE", "/a");
        std::env::set_var("XDG_DATA_HOME", "/b");
        std::env::set_var("HOME", "/c");
        assert_eq!(Store::default_root().unwrap(), Path::new("/a"));
        std::env::remove_var("FORGE_STORE");
        assert_eq!(Store::default_root().unwrap(), Path::new("/b/forge"));
        std::env::set_var("XDG_DATA_HOME", "relative");
        assert_eq!(Store::default_root().unwrap(), Path::new("/c/.local/share/forge"));
        std::env::remove_var("HOME");
        std::env::remove_var("XDG_DATA_HOME");
        assert!(matches!(Store::default_root(), Err(Error::NoRoot)));
    }

    #[test]
    fn try_lock_fails_while_another_holder_has_the_path() {
        let (_dir, store) = store();
        let p = output_path("p");
        let held = store.lock_path(&p).unwrap();
        assert!(store.try_lock_path(&p).unwrap().is_none());
        drop(held);
        assert!(store.try_lock_path(&p).unwrap().is_some());
    }

    #[test]
    fn parse_path_accepts_logical_physical_and_base_names() {
        let (_dir, store) = store();
        let p = output_path("p");
        for text in [p.to_string(), store.physical(&p).display().to_string(), p.base_name(), format!("{p}/bin/x")] {
            assert_eq!(store.parse_path(&text).unwrap(), p, "{text}");
        }
        assert!(store.parse_path("/tmp/elsewhere").is_err());
    }
}
