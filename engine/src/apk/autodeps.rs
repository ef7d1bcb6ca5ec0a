//! Dependencies and provides found in a package's files, as abuild's
//! `scan_shared_objects` and `trace_apk_deps` find them with scanelf:
//!
//! - `so:SONAME=VERSION` for every shared library directly in `lib/`, `usr/lib/` or a
//!   folder of the package that one of its ELF files names in its RPATH/RUNPATH; the
//!   version is the file name's tail after `.so.` (`libz.so.1.3.1` -> `1.3.1`), `0` for
//!   a plain `.so`;
//! - `cmd:NAME=PKGVER` for every executable file or symlink directly in `bin/`, `sbin/`,
//!   `usr/bin/`, `usr/sbin/`;
//! - `depend = so:NAME` for every `DT_NEEDED` of every ELF file that the package does
//!   not provide itself.
//!
//! Each group is sorted, as abuild's `sort -u` leaves it. A `noarch` package holding
//! ELF files is refused, like abuild's archcheck.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::build::BuildEntry;
use super::dep::Dep;
use super::tarball::Kind;
use super::{version, Error, Result};
use crate::elf::Elf;

/// What [`scan`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AutoDeps {
    /// `so:` then `cmd:` provides.
    pub provides: Vec<Dep>,
    /// `so:` dependencies.
    pub depends: Vec<Dep>,
}

/// Scans `entries` of package version `pkgver` for `arch`; `what` names the package in
/// errors. Files that start like ELF but do not parse are not loadable, so they add
/// nothing (scanelf skips them too).
pub fn scan(entries: &[BuildEntry], pkgver: &str, arch: &str, what: &str) -> Result<AutoDeps> {
    let elves: Vec<(&BuildEntry, Elf)> = entries
        .iter()
        .filter(|e| e.kind == Kind::File && Elf::is_elf(&e.content))
        .filter_map(|e| Elf::parse(&e.content, Path::new(&e.path)).ok().map(|elf| (e, elf)))
        .collect();
    if arch == "noarch" {
        if let Some((e, elf)) = elves.first() {
            return Err(Error::format(
                what,
                format!("arch is noarch but /{} is an {} file: declare the package's arch", e.path, elf.describe()),
            ));
        }
    }
    let sonames = provided_sonames(&elves);
    let mut provides = Vec::new();
    for (soname, sover) in &sonames {
        provides.push(dep(&format!("so:{soname}={sover}"), what)?);
    }
    for cmd in commands(entries) {
        provides.push(dep(&format!("cmd:{cmd}={pkgver}"), what)?);
    }
    let needed: BTreeSet<String> = elves
        .iter()
        .flat_map(|(_, elf)| elf.needed.iter().map(|n| alpine_soname(n, elf.interpreter.as_deref(), arch)))
        .collect();
    let depends = needed
        .into_iter()
        .filter(|n| !sonames.contains_key(n))
        .map(|n| dep(&format!("so:{n}"), what))
        .collect::<Result<Vec<_>>>()?;
    Ok(AutoDeps { provides, depends })
}

/// The libraries musl's loader answers with itself (`reserved` in its dynlink.c):
/// `libc.so`, `libm.so.6`, `libpthread.so.0`, ... all name musl's libc.
const MUSL_RESERVED: &[&str] = &["c", "pthread", "rt", "m", "dl", "util", "xnet"];

/// The soname Alpine's packages provide for `needed`, in an ELF file with
/// `interpreter` of a package for `arch`. What a stock musl toolchain (forge's cross
/// gcc) links needs `libc.so`, musl's own soname; Alpine's musl is
/// `libc.musl-<arch>.so.1` and provides only that, so a dependency on `so:libc.so`
/// could never be met. A program musl's loader loads gets Alpine's name for every name
/// the loader answers with libc; a library (no interpreter) for `libc.so` only, as
/// glibc's libraries in a package need `libc.so.6` and `libm.so.6`.
fn alpine_soname(needed: &str, interpreter: Option<&str>, arch: &str) -> String {
    let reserved = needed
        .strip_prefix("lib")
        .and_then(|n| n.split_once(".so"))
        .is_some_and(|(stem, _)| MUSL_RESERVED.contains(&stem));
    match interpreter {
        None if needed == "libc.so" => format!("libc.musl-{arch}.so.1"),
        Some(interp) if reserved => match interp.strip_prefix("/lib/ld-musl-").and_then(|a| a.strip_suffix(".so.1")) {
            Some(musl_arch) => format!("libc.musl-{musl_arch}.so.1"),
            None => needed.to_owned(),
        },
        _ => needed.to_owned(),
    }
}

fn dep(text: &str, what: &str) -> Result<Dep> {
    Dep::parse(text, what)
}

/// The folders shared libraries are provided from: `lib`, `usr/lib`, and the absolute
/// RPATH/RUNPATH folders the package's own files name (`$ORIGIN` ones are relative to
/// each file, so abuild's scan does not follow them either).
fn library_dirs(elves: &[(&BuildEntry, Elf)]) -> BTreeSet<String> {
    let mut dirs: BTreeSet<String> = ["lib", "usr/lib"].into_iter().map(str::to_owned).collect();
    for (_, elf) in elves {
        for p in elf.rpath.iter().chain(&elf.runpath) {
            if p.starts_with('/') && !p.contains('$') {
                dirs.insert(p.trim_matches('/').to_owned());
            }
        }
    }
    dirs
}

/// Soname -> version of the shared libraries the package provides. Symlinks are left
/// out (they point at the real file, which carries the fullest version); of several
/// files with one soname the highest version wins, so the result does not depend on
/// directory order.
fn provided_sonames(elves: &[(&BuildEntry, Elf)]) -> BTreeMap<String, String> {
    let dirs = library_dirs(elves);
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    for (e, elf) in elves {
        let (dir, file) = e.path.rsplit_once('/').unwrap_or(("", &e.path));
        if !dirs.contains(dir) {
            continue;
        }
        // Without a soname scanelf reports the file name, as abuild then uses it.
        let soname = elf.soname.clone().unwrap_or_else(|| file.to_owned());
        if !is_shared_object_name(&soname) {
            continue;
        }
        let sover = so_version(file);
        let better = match found.get(&soname) {
            None => true,
            Some(old) => version::compare(&sover, old) == std::cmp::Ordering::Greater,
        };
        if better {
            found.insert(soname, sover);
        }
    }
    found
}

/// `*.so` or `*.so.<digit>...`, the names abuild counts as shared libraries.
fn is_shared_object_name(name: &str) -> bool {
    name.ends_with(".so") || name.rsplit_once(".so.").is_some_and(|(_, v)| v.starts_with(|c: char| c.is_ascii_digit()))
}

/// The version a library file provides its soname at: the tail after the last `.so.`
/// when it is a valid apk version, else `0`.
fn so_version(file: &str) -> String {
    match file.rsplit_once(".so.") {
        Some((_, v)) if v.starts_with(|c: char| c.is_ascii_digit()) && version::is_valid(v) => v.to_owned(),
        _ => "0".to_owned(),
    }
}

/// Names of the commands in `bin`, `sbin`, `usr/bin`, `usr/sbin`: executable files and
/// symlinks directly inside, sorted.
fn commands(entries: &[BuildEntry]) -> BTreeSet<String> {
    entries
        .iter()
        .filter(|e| (e.kind == Kind::File && e.mode & 0o111 != 0) || e.kind == Kind::Symlink)
        .filter_map(|e| {
            let (dir, name) = e.path.rsplit_once('/')?;
            ["bin", "sbin", "usr/bin", "usr/sbin"].contains(&dir).then(|| name.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests;
