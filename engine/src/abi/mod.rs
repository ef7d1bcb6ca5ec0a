//! ABI check: whether a root filesystem can load given ELF files. For each file: its
//! interpreter exists in the root, every DT_NEEDED library is found the way the loader
//! searches (transitively, same class/byte order/machine), every versioned need
//! (`.gnu.version_r`) is defined by the library named, and every undefined non-weak
//! dynamic symbol is defined by some loaded object with a compatible version.
//!
//! Library search, for glibc: DT_RPATH of the needing object and its loaders (only when
//! the needing object has no DT_RUNPATH), DT_RUNPATH, the directories of the root's
//! `/etc/ld.so.conf` (includes followed), then the multiarch directory of the machine,
//! `/lib64 /usr/lib64` (64-bit) and `/lib /usr/lib`. A glibc loader built for its own
//! prefix (its cache is not `/etc/ld.so.cache`, e.g. `/usr/glibc/etc/ld.so.cache`) reads
//! the `ld.so.conf` beside that cache and searches the directories compiled into it (e.g.
//! `/usr/glibc/lib`) instead: both are read from the loader file. For musl: RPATH and RUNPATH of the
//! needing object and its loaders, then `/etc/ld-musl-<arch>.path` or
//! `/lib:/usr/local/lib:/usr/lib`; musl's libc names resolve to its loader. LD_LIBRARY_PATH
//! and the ld.so cache are not used: the root's configuration files stand for them.
//!
//! A library checked on its own is checked as if it were the program: symbols it expects
//! its host program to define (a plug-in's callbacks) are reported missing. Check the
//! programs that load it, or read those entries as what the program must provide.

mod root;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::elf::{Binding, Class, Elf, ElfError};

pub use root::resolve;

/// What stops a check from running at all (a missing need is not an error: it is in the report).
#[derive(Debug, thiserror::Error)]
pub enum AbiError {
    /// The root is not a directory.
    #[error("{path}: the root filesystem is not a directory; pass --root DIR")]
    Root {
        /// The path given.
        path: PathBuf,
    },
    /// A file to check exists neither on the host nor in the root.
    #[error("{path}: no such file on the host nor inside the root {root}")]
    NoFile {
        /// The file as given.
        path: String,
        /// The root.
        root: PathBuf,
    },
    /// A file could not be read as ELF.
    #[error(transparent)]
    Elf(#[from] ElfError),
}

/// A file to check.
#[derive(Debug, Clone)]
pub enum Target {
    /// A file on the host; `$ORIGIN` in its RPATH/RUNPATH cannot be placed in the root,
    /// so those entries are skipped (and listed as skipped).
    Host(PathBuf),
    /// A file inside the root, by its absolute path there.
    InRoot(String),
}

/// The C library a file is linked for, which decides how libraries are searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Libc {
    /// The GNU C library.
    Glibc,
    /// musl.
    Musl,
}

/// The result of [`check`]: one entry per file, in the order given.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The root filesystem checked against.
    pub root: PathBuf,
    /// One report per file, in the order given.
    pub files: Vec<FileReport>,
}

impl Report {
    /// Whether every need of every file is met.
    pub fn ok(&self) -> bool {
        self.files.iter().all(|f| f.missing.is_empty())
    }
}

/// What one file needs and what of it the root lacks.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// The file as given.
    pub file: String,
    /// `ELF64 LSB aarch64`.
    pub abi: String,
    /// Which C library it is built for, from its interpreter.
    pub libc: Libc,
    /// Whether the file is dynamically linked (a static file needs nothing).
    pub dynamic: bool,
    /// `PT_INTERP`, the loader it asks for.
    pub interpreter: Option<String>,
    /// Every object loaded, in load order (the file first), with where it was found.
    pub loaded: Vec<Loaded>,
    /// Everything the root lacks for it (empty: it loads).
    pub missing: Vec<Missing>,
}

/// One loaded object: the name it was needed by, and its path inside the root.
#[derive(Debug, Clone, Serialize)]
pub struct Loaded {
    /// The name it was needed as (`DT_NEEDED`, or the file itself).
    pub name: String,
    /// Where it was found, inside the root.
    pub path: String,
}

/// One unmet need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Missing {
    /// PT_INTERP names a loader the root lacks (or one of another machine).
    Interpreter {
        /// The interpreter's path.
        path: String,
        /// Why it is not usable.
        why: String,
    },
    /// No directory searched holds a usable `name`.
    Library {
        /// The library's name.
        name: String,
        /// The object that needs it.
        needed_by: String,
        /// The directories searched.
        searched: Vec<String>,
        /// Candidates found but unusable, with why.
        rejected: Vec<String>,
    },
    /// `library` is loaded but does not define `version` (the loader refuses to start).
    Version {
        /// The version.
        version: String,
        /// The library that should define it.
        library: String,
        /// The object that needs it.
        needed_by: String,
    },
    /// No loaded object defines `symbol` (at `version`).
    Symbol {
        /// The symbol.
        symbol: String,
        /// Its version, if versioned.
        version: Option<String>,
        /// The object that needs it.
        needed_by: String,
        /// The library its version belongs to, if known.
        expected_from: Option<String>,
    },
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::Interpreter { path, why } => write!(f, "interpreter {path}: {why}"),
            Missing::Library { name, needed_by, searched, rejected } => {
                write!(f, "library {name}, needed by {needed_by}: not found in {}", searched.join(":"))?;
                if !rejected.is_empty() {
                    write!(f, " (unusable: {})", rejected.join("; "))?;
                }
                Ok(())
            }
            Missing::Version { version, library, needed_by } => {
                write!(f, "version {version} of {library}, needed by {needed_by}: {library} does not define it")
            }
            Missing::Symbol { symbol, version, needed_by, expected_from } => {
                write!(f, "symbol {symbol}")?;
                if let Some(v) = version {
                    write!(f, "@{v}")?;
                }
                write!(f, ", needed by {needed_by}")?;
                match expected_from {
                    Some(lib) => write!(f, ", expected from {lib}: no loaded object defines it"),
                    None => write!(f, ": no loaded object defines it"),
                }
            }
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for file in &self.files {
            let libc = match file.libc {
                Libc::Glibc => "glibc",
                Libc::Musl => "musl",
            };
            let verdict = match file.missing.len() {
                0 if !file.dynamic => "ok (statically linked)".to_owned(),
                0 => format!("ok, {} objects loaded", file.loaded.len()),
                n => format!("{n} missing"),
            };
            writeln!(f, "{} ({}, {libc}): {verdict}", file.file, file.abi)?;
            for m in &file.missing {
                writeln!(f, "  missing {m}")?;
            }
            for l in file.loaded.iter().skip(1) {
                writeln!(f, "  {} -> {}", l.name, l.path)?;
            }
        }
        Ok(())
    }
}

/// Checks every target against the root filesystem at `root`.
pub fn check(root: &Path, targets: &[Target]) -> Result<Report, AbiError> {
    if !root.is_dir() {
        return Err(AbiError::Root { path: root.to_owned() });
    }
    let mut cache = Cache::default();
    let mut files = Vec::new();
    for target in targets {
        files.push(check_one(root, target, &mut cache)?);
    }
    Ok(Report { root: root.to_owned(), files })
}

/// Parsed libraries by host path, shared between targets (`None`: not a usable ELF).
#[derive(Default)]
struct Cache(HashMap<PathBuf, Option<Arc<Elf>>>);

impl Cache {
    fn get(&mut self, host: &Path) -> Option<Arc<Elf>> {
        self.0.entry(host.to_owned()).or_insert_with(|| Elf::open(host).ok().map(Arc::new)).clone()
    }
}

/// One object in the load set of a target.
struct Object {
    /// What it was needed as (DT_NEEDED name, the interpreter path, or the file).
    name: String,
    /// Its path inside the root; `None` for a target on the host.
    in_root: Option<String>,
    host: PathBuf,
    elf: Arc<Elf>,
    /// The object that first needed it (its loader, for RPATH inheritance).
    parent: Option<usize>,
}

struct LoadSet<'a> {
    root: &'a Path,
    libc: Libc,
    main: Arc<Elf>,
    objects: Vec<Object>,
    missing: Vec<Missing>,
    conf_dirs: Vec<String>,
    /// The loader's own directories when it was built for a prefix; else the standard ones.
    system_dirs: Option<Vec<String>>,
}

fn check_one(root: &Path, target: &Target, cache: &mut Cache) -> Result<FileReport, AbiError> {
    let (label, in_root, host) = match target {
        Target::Host(p) => (p.display().to_string(), None, p.clone()),
        Target::InRoot(p) => match root::resolve(root, p) {
            Some((inside, host)) => (p.clone(), Some(inside), host),
            None => return Err(AbiError::NoFile { path: p.clone(), root: root.to_owned() }),
        },
    };
    let elf = Arc::new(Elf::open(&host)?);
    let libc = libc_of(&elf);
    // A glibc loader built for its own prefix searches its own configuration and
    // directories. A library names no loader: the one that loads it is the root's
    // glibc loader at the machine's standard path.
    let loader = elf.interpreter.as_deref().or_else(|| standard_glibc_loader(&elf));
    let prefixed = match (libc, loader) {
        (Libc::Glibc, Some(interp)) => root::resolve(root, interp).and_then(|(_, h)| root::prefixed_glibc_loader(&h)),
        _ => None,
    };
    let conf_dirs = match (&prefixed, libc) {
        (Some(p), _) => root::conf_dirs(root, &p.conf),
        (None, Libc::Glibc) => root::ld_so_conf_dirs(root),
        (None, Libc::Musl) => Vec::new(),
    };
    let system_dirs = prefixed.map(|p| p.system_dirs);
    let main = Object { name: label.clone(), in_root, host, elf: elf.clone(), parent: None };
    let objects = vec![main];
    let mut set = LoadSet { root, libc, main: elf.clone(), objects, missing: Vec::new(), conf_dirs, system_dirs };
    if elf.dynamic {
        set.load_interpreter(cache);
        set.load_needed(cache);
        if libc == Libc::Glibc {
            set.check_versions();
        }
        set.check_symbols();
    }
    Ok(FileReport {
        file: label,
        abi: elf.describe(),
        libc,
        dynamic: elf.dynamic,
        interpreter: elf.interpreter.clone(),
        loaded: set
            .objects
            .iter()
            .map(|o| Loaded {
                name: o.name.clone(),
                path: o.in_root.clone().unwrap_or_else(|| o.host.display().to_string()),
            })
            .collect(),
        missing: set.missing,
    })
}

/// musl when the interpreter is musl's, or (for a library) when it needs musl's libc.
fn libc_of(elf: &Elf) -> Libc {
    let musl_interp = elf.interpreter.as_deref().is_some_and(|i| i.contains("ld-musl-"));
    let musl_libc = elf.needed.iter().any(|n| n.starts_with("libc.musl-") || n == "libc.so");
    if musl_interp || (elf.interpreter.is_none() && musl_libc) {
        Libc::Musl
    } else {
        Libc::Glibc
    }
}

/// musl's loader is its libc too: these names resolve to it.
fn is_musl_libc_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("lib") else { return name.starts_with("ld-musl-") };
    ["c", "pthread", "rt", "m", "dl", "util", "xnet"].iter().any(|l| {
        rest.strip_prefix(l).and_then(|r| r.strip_prefix(".so")).is_some_and(|r| r.is_empty() || r.starts_with('.'))
    }) || rest.starts_with("c.musl-")
}

/// The multiarch directory name Debian and Ubuntu use for this machine.
fn multiarch(elf: &Elf) -> Option<&'static str> {
    Some(match (elf.machine.name().as_str(), elf.class) {
        ("x86_64", Class::Elf64) => "x86_64-linux-gnu",
        ("aarch64", Class::Elf64) => "aarch64-linux-gnu",
        ("i386", _) => "i386-linux-gnu",
        // EF_ARM_ABI_FLOAT_HARD tells armhf from armel.
        ("arm", _) if elf.flags & 0x400 != 0 => "arm-linux-gnueabihf",
        ("arm", _) => "arm-linux-gnueabi",
        ("riscv", Class::Elf64) => "riscv64-linux-gnu",
        _ => return None,
    })
}

/// The program interpreter glibc's ABI fixes for this machine (PT_INTERP of its programs).
fn standard_glibc_loader(elf: &Elf) -> Option<&'static str> {
    Some(match multiarch(elf)? {
        "x86_64-linux-gnu" => "/lib64/ld-linux-x86-64.so.2",
        "aarch64-linux-gnu" => "/lib/ld-linux-aarch64.so.1",
        "i386-linux-gnu" => "/lib/ld-linux.so.2",
        "arm-linux-gnueabihf" => "/lib/ld-linux-armhf.so.3",
        "arm-linux-gnueabi" => "/lib/ld-linux.so.3",
        "riscv64-linux-gnu" => "/lib/ld-linux-riscv64-lp64d.so.1",
        _ => return None,
    })
}

/// musl's arch name in `ld-musl-<arch>.so.1`, taken from the interpreter when it has one.
fn musl_arch(elf: &Elf) -> String {
    let from_interp =
        elf.interpreter.as_deref().and_then(|i| i.rsplit_once("ld-musl-")?.1.split_once(".so").map(|s| s.0));
    from_interp.map(str::to_owned).unwrap_or_else(|| elf.machine.name())
}

impl LoadSet<'_> {
    /// Loads the interpreter first, as the kernel does. A glibc library checked alone
    /// names none, but whatever program loads it, the root's glibc loader at the
    /// machine's standard path comes first (libc's DT_NEEDED on it means that object);
    /// a library does not name its loader, so nothing is missing when the root has none.
    fn load_interpreter(&mut self, cache: &mut Cache) {
        let (interp, named) = match &self.main.interpreter {
            Some(interp) => (interp.clone(), true),
            None => match standard_glibc_loader(&self.main).filter(|_| self.libc == Libc::Glibc) {
                Some(path) => (path.to_owned(), false),
                None => return,
            },
        };
        let why = match root::resolve(self.root, &interp) {
            None => "not in the root".to_owned(),
            Some((inside, host)) => match cache.get(&host) {
                Some(elf) if elf.same_abi(&self.main) => {
                    self.objects.push(Object { name: interp, in_root: Some(inside), host, elf, parent: Some(0) });
                    return;
                }
                Some(elf) => format!("{inside} is {}, not {}", elf.describe(), self.main.describe()),
                None => format!("{inside} is not a readable ELF file"),
            },
        };
        if named {
            self.missing.push(Missing::Interpreter { path: interp, why });
        }
    }

    /// Breadth-first over DT_NEEDED, as the loader orders its search list.
    fn load_needed(&mut self, cache: &mut Cache) {
        let mut next = 0;
        while next < self.objects.len() {
            for name in self.objects[next].elf.needed.clone() {
                if self.find_loaded(&name).is_none() {
                    self.load(&name, next, cache);
                }
            }
            next += 1;
        }
    }

    /// A loaded object answering to `name` (by the name it was needed as, or its soname).
    fn find_loaded(&self, name: &str) -> Option<usize> {
        if self.libc == Libc::Musl && is_musl_libc_name(name) {
            // The interpreter is musl's libc; without one (a library checked alone) search on.
            if let Some(i) = self.objects.iter().position(|o| Some(&o.name) == self.main.interpreter.as_ref()) {
                return Some(i);
            }
        }
        self.objects.iter().position(|o| o.name == name || o.elf.soname.as_deref() == Some(name))
    }

    fn load(&mut self, name: &str, parent: usize, cache: &mut Cache) {
        let dirs = if name.contains('/') { vec![String::new()] } else { self.search_dirs(parent) };
        let mut rejected = Vec::new();
        for dir in &dirs {
            let Some((inside, host)) = root::resolve(self.root, &format!("{dir}/{name}")) else { continue };
            if self.objects.iter().any(|o| o.host == host) {
                // The same file under another name (a symlink): already loaded.
                return;
            }
            match cache.get(&host) {
                Some(elf) if elf.same_abi(&self.main) => {
                    let o = Object { name: name.to_owned(), in_root: Some(inside), host, elf, parent: Some(parent) };
                    self.objects.push(o);
                    return;
                }
                Some(elf) => rejected.push(format!("{inside} is {}", elf.describe())),
                None => rejected.push(format!("{inside} is not a readable ELF file")),
            }
        }
        let needed_by = self.label(parent);
        self.missing.push(Missing::Library { name: name.to_owned(), needed_by, searched: dirs, rejected });
    }

    fn label(&self, i: usize) -> String {
        let o = &self.objects[i];
        if i == 0 {
            o.name.clone()
        } else {
            o.in_root.clone().unwrap_or_else(|| o.name.clone())
        }
    }

    /// Directories searched for a library `self.objects[needer]` needs, in order, without duplicates.
    fn search_dirs(&self, needer: usize) -> Vec<String> {
        let mut dirs = Vec::new();
        let chain: Vec<usize> = std::iter::successors(Some(needer), |&i| self.objects[i].parent).collect();
        let elf = &self.objects[needer].elf;
        match self.libc {
            Libc::Glibc => {
                if elf.runpath.is_empty() {
                    for &i in &chain {
                        dirs.extend(self.expand(i, &self.objects[i].elf.rpath));
                    }
                }
                dirs.extend(self.expand(needer, &elf.runpath));
                dirs.extend(self.conf_dirs.iter().cloned());
                if let Some(system) = &self.system_dirs {
                    dirs.extend(system.iter().cloned());
                } else {
                    if let Some(m) = multiarch(&self.main) {
                        dirs.extend([format!("/lib/{m}"), format!("/usr/lib/{m}")]);
                    }
                    if self.main.class == Class::Elf64 {
                        dirs.extend(["/lib64".to_owned(), "/usr/lib64".to_owned()]);
                    }
                    dirs.extend(["/lib".to_owned(), "/usr/lib".to_owned()]);
                }
            }
            Libc::Musl => {
                for &i in &chain {
                    let o = &self.objects[i].elf;
                    dirs.extend(self.expand(i, &o.rpath));
                    dirs.extend(self.expand(i, &o.runpath));
                }
                dirs.extend(root::musl_dirs(self.root, &musl_arch(&self.main)));
            }
        }
        let mut seen = std::collections::HashSet::new();
        dirs.retain(|d| seen.insert(d.clone()));
        dirs
    }

    /// RPATH/RUNPATH entries of object `i` with `$ORIGIN`, `$LIB` and `$PLATFORM` expanded;
    /// `$ORIGIN` entries of a file outside the root are dropped.
    fn expand(&self, i: usize, entries: &[String]) -> Vec<String> {
        let o = &self.objects[i];
        let origin = o.in_root.as_deref().map(|p| p.rsplit_once('/').map(|(d, _)| d).unwrap_or("").to_owned());
        let lib = if o.elf.class == Class::Elf64 && self.libc == Libc::Glibc { "lib64" } else { "lib" };
        let mut out = Vec::new();
        for e in entries.iter().filter(|e| !e.is_empty()) {
            let e = e.replace("${LIB}", lib).replace("$LIB", lib);
            let e = e.replace("${PLATFORM}", &o.elf.machine.name()).replace("$PLATFORM", &o.elf.machine.name());
            if e.contains("$ORIGIN") || e.contains("${ORIGIN}") {
                let Some(origin) = &origin else { continue };
                out.push(e.replace("${ORIGIN}", origin).replace("$ORIGIN", origin));
            } else {
                out.push(e);
            }
        }
        out
    }

    /// glibc refuses to start when a library lacks a version a `.gnu.version_r` entry
    /// names (unless the entry is weak, or the library has no version definitions at all).
    fn check_versions(&mut self) {
        let mut missing = Vec::new();
        for (i, o) in self.objects.iter().enumerate() {
            for need in &o.elf.version_needs {
                let Some(lib) = self.find_loaded(&need.file) else { continue };
                let defs = &self.objects[lib].elf.version_defs;
                if defs.is_empty() {
                    continue;
                }
                for v in need.versions.iter().filter(|v| !v.weak) {
                    if !defs.iter().any(|d| !d.base && d.name == v.name) {
                        let library = need.file.clone();
                        missing.push(Missing::Version { version: v.name.clone(), library, needed_by: self.label(i) });
                    }
                }
            }
        }
        self.missing.extend(missing);
    }

    fn check_symbols(&mut self) {
        let defs = Definitions::of(&self.objects);
        let mut missing = Vec::new();
        for (i, o) in self.objects.iter().enumerate() {
            for s in &o.elf.symbols {
                let strong = matches!(s.binding, Binding::Global | Binding::Unique);
                if s.defined || !strong || s.name.is_empty() {
                    continue;
                }
                let version = if self.libc == Libc::Glibc { s.version.as_ref() } else { None };
                // A symbol versioned for a library that is missing is that library's absence, reported once.
                let lib = version.and_then(|v| v.file.as_deref());
                if lib.is_some_and(|l| self.find_loaded(l).is_none()) {
                    continue;
                }
                if !defs.satisfies(&s.name, version.map(|v| v.name.as_str()), self.libc) {
                    missing.push(Missing::Symbol {
                        symbol: s.name.clone(),
                        version: version.map(|v| v.name.clone()),
                        needed_by: self.label(i),
                        expected_from: version.and_then(|v| v.file.clone()),
                    });
                }
            }
        }
        self.missing.extend(missing);
    }
}

/// Every exported definition of the load set: name -> (version, hidden) of each.
struct Definitions<'a>(HashMap<&'a str, Vec<(Option<&'a str>, bool)>>);

impl<'a> Definitions<'a> {
    fn of(objects: &'a [Object]) -> Definitions<'a> {
        let mut map: HashMap<&str, Vec<(Option<&str>, bool)>> = HashMap::new();
        for o in objects {
            for s in o.elf.symbols.iter().filter(|s| s.defined && !matches!(s.binding, Binding::Local)) {
                let v = s.version.as_ref();
                map.entry(s.name.as_str()).or_default().push((v.map(|v| v.name.as_str()), v.is_some_and(|v| v.hidden)));
            }
        }
        Definitions(map)
    }

    /// glibc's matching rule (dl-lookup.c): a versioned reference binds to the definition
    /// of that version, hidden or not, or to an unversioned one; an unversioned reference
    /// binds to any non-hidden definition. musl ignores versions except hidden ones.
    fn satisfies(&self, name: &str, version: Option<&str>, libc: Libc) -> bool {
        let Some(defs) = self.0.get(name) else { return false };
        defs.iter().any(|&(def, hidden)| match (libc, version) {
            (Libc::Glibc, Some(want)) => def == Some(want) || (def.is_none() && !hidden),
            _ => !hidden,
        })
    }
}
