//! The `apk-package` builtin: a store output (a package's install tree) made into an
//! unsigned apk v2 package in the store, the way abuild packages `$pkgdir`.
//!
//! Metadata comes from an [`ApkSpec`] the recipe declares; `size`, `datahash` and (with
//! `autoDeps`) the `so:`/`cmd:` provides and `so:` dependencies come from the files
//! ([`super::autodeps`]). The store keeps no ownership and only the executable bit, so
//! the entries are root-owned with abuild's usual modes (directories and executables
//! 0755, other files 0644) unless `permissions` says otherwise for a path.
//!
//! The package is unsigned: a private key must never enter a derivation or the store.
//! `forge build --apk-key` (and `forge apk sign`) put the signature in front afterwards,
//! outside the store ([`super::repo`]); signing leaves the control stream, and so the
//! `Q1` checksum, unchanged.

use std::collections::BTreeMap;
use std::path::Path;

use forge_store::StorePath;
use serde::{Deserialize, Serialize};

use super::build::{self, BuildEntry};
use super::dep::Dep;
use super::package::{Script, ScriptKind};
use super::pkginfo::PkgInfo;
use super::tarball::Kind;
use crate::builtins::Ctx;
use crate::error::{Error, Result};

/// The builtin's name.
pub const BUILTIN: &str = "apk-package";
/// The builtin's version (part of every apk derivation's hash).
pub const VERSION: u32 = 1;

/// What a recipe declares about a package; every field but the name, version and arch
/// may be left at its default. Serialized into the derivation, so part of its hash.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApkSpec {
    /// `pkgname`.
    pub name: String,
    /// `pkgver`: the version and release, `2.10-r0`.
    pub version: String,
    /// `arch`: `x86_64`, `aarch64`, or `noarch` (which must hold no ELF file).
    pub arch: String,
    /// `pkgdesc`.
    #[serde(default)]
    pub description: String,
    /// `url`: the project's home page.
    #[serde(default)]
    pub url: String,
    /// `license` (an SPDX expression).
    #[serde(default)]
    pub license: String,
    /// `origin`: the source package [default: the name].
    #[serde(default)]
    pub origin: Option<String>,
    /// `maintainer`.
    #[serde(default)]
    pub maintainer: Option<String>,
    /// `packager`.
    #[serde(default)]
    pub packager: Option<String>,
    /// `depend` lines, as apk dependencies (`musl>=1.2`, `/bin/sh`, `so:libz.so.1`).
    #[serde(default)]
    pub depends: Vec<String>,
    /// `provides` lines.
    #[serde(default)]
    pub provides: Vec<String>,
    /// `replaces` lines.
    #[serde(default)]
    pub replaces: Vec<String>,
    /// `install_if` lines.
    #[serde(default)]
    pub install_if: Vec<String>,
    /// `triggers`: folders whose changes run the `trigger` script.
    #[serde(default)]
    pub triggers: Vec<String>,
    /// `provider_priority`.
    #[serde(default)]
    pub provider_priority: Option<u64>,
    /// Install scripts by apk's name (`pre-install`, `post-install`, `trigger`...).
    #[serde(default)]
    pub scripts: BTreeMap<String, String>,
    /// Add `so:`/`cmd:` provides and `so:` dependencies found in the files.
    #[serde(default = "yes")]
    pub auto_deps: bool,
    /// `builddate` and every tar entry's mtime: the package's SOURCE_DATE_EPOCH.
    #[serde(default)]
    pub build_date: u64,
    /// Modes and owners for paths (relative, like `usr/bin/ping`) that need other
    /// than the defaults: setuid programs, private files.
    #[serde(default)]
    pub permissions: BTreeMap<String, Permission>,
}

fn yes() -> bool {
    true
}

/// A path's mode and owner in the package.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permission {
    /// Permission bits, setuid/setgid/sticky included.
    pub mode: u32,
    /// Owner uid.
    #[serde(default)]
    pub uid: u64,
    /// Owner gid.
    #[serde(default)]
    pub gid: u64,
}

impl ApkSpec {
    /// A spec with the required fields and abuild's defaults for the others.
    ///
    /// ```
    /// use forge_engine::apk::make::ApkSpec;
    /// let spec = ApkSpec::new("hello", "2.10-r0", "x86_64");
    /// assert!(spec.auto_deps && spec.validate().is_ok());
    /// assert!(ApkSpec::new("hello", "2.10", "x86_64").validate().is_err());
    /// ```
    pub fn new(name: &str, version: &str, arch: &str) -> ApkSpec {
        ApkSpec {
            name: name.to_owned(),
            version: version.to_owned(),
            arch: arch.to_owned(),
            auto_deps: true,
            ..ApkSpec::default()
        }
    }

    /// The package's file name, `name-version.apk` (also its store name).
    pub fn file_name(&self) -> String {
        format!("{}-{}.apk", self.name, self.version)
    }

    /// Checks what abuild checks before packaging: a plain name, a valid version with a
    /// `-rN` release, an arch, valid dependencies and script names, relative
    /// permission paths. Errors name the package and the field.
    pub fn validate(&self) -> Result<()> {
        self.pkginfo().map(drop)
    }

    fn bad(&self, why: String) -> Error {
        Error::BadDerivation { name: self.file_name(), why }
    }

    /// The `.PKGINFO` fields the spec declares (no size, datahash or found deps yet).
    fn pkginfo(&self) -> Result<PkgInfo> {
        let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-._".contains(c));
        if !plain(&self.name) || self.name.starts_with(['-', '.']) {
            return Err(self.bad(format!("package name {:?} must be letters, digits and + - . _", self.name)));
        }
        let has_release = self.version.rsplit_once("-r").is_some_and(|(_, r)| r.parse::<u64>().is_ok());
        if !super::version::is_valid(&self.version) || !has_release {
            return Err(self.bad(format!("version {:?} is not an apk version with a release (2.10-r0)", self.version)));
        }
        if !plain(&self.arch) {
            return Err(self.bad(format!("arch {:?} is not an architecture name", self.arch)));
        }
        for (field, value) in [("description", &self.description), ("url", &self.url), ("license", &self.license)] {
            if value.contains('\n') {
                return Err(self.bad(format!("{field} must be one line")));
            }
        }
        let what = format!("{} (recipe)", self.file_name());
        let deps = |list: &[String]| list.iter().map(|d| Dep::parse(d, &what)).collect::<Result<Vec<_>, _>>();
        let info = PkgInfo {
            name: self.name.clone(),
            version: self.version.clone(),
            description: self.description.clone(),
            url: self.url.clone(),
            license: self.license.clone(),
            arch: self.arch.clone(),
            origin: Some(self.origin.clone().unwrap_or_else(|| self.name.clone())),
            maintainer: self.maintainer.clone(),
            packager: self.packager.clone(),
            build_date: Some(self.build_date),
            provider_priority: self.provider_priority,
            depends: deps(&self.depends)?,
            provides: deps(&self.provides)?,
            install_if: deps(&self.install_if)?,
            replaces: deps(&self.replaces)?,
            triggers: self.triggers.clone(),
            ..PkgInfo::default()
        };
        self.scripts()?;
        if let Some(p) = self.permissions.keys().find(|p| p.is_empty() || p.starts_with('/') || p.contains("..")) {
            return Err(self.bad(format!("permissions path {p:?} must be relative to the package root")));
        }
        Ok(info)
    }

    fn scripts(&self) -> Result<Vec<Script>> {
        self.scripts
            .iter()
            .map(|(name, content)| match ScriptKind::ALL.into_iter().find(|k| k.name() == name) {
                Some(kind) => Ok(Script { kind, content: content.as_bytes().to_vec() }),
                None => Err(self.bad(format!(
                    "no install script is called {name:?} (apk knows {})",
                    ScriptKind::ALL.map(ScriptKind::name).join(", ")
                ))),
            })
            .collect()
    }
}

/// The builtin's arguments: the tree to package and the spec.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The install tree (a store directory).
    pub tree: StorePath,
    /// What to write into `.PKGINFO`.
    pub spec: ApkSpec,
}

/// `apk-package@1`: packages the tree of `args` into the unsigned apk `out`.
pub fn run(ctx: &Ctx<'_>, args: Args, out: &Path) -> Result<()> {
    let spec = &args.spec;
    let mut info = spec.pkginfo()?;
    let root = (ctx.physical)(&args.tree);
    if !root.is_dir() {
        return Err(spec.bad(format!("{} is not a directory to package", args.tree)));
    }
    let mut entries = build::entries_from_dir(&root)?;
    normalize(spec, &mut entries)?;
    if spec.auto_deps {
        let found = super::autodeps::scan(&entries, &spec.version, &spec.arch, &spec.file_name())?;
        // What the recipe declared itself is not repeated.
        let declared = |list: &[Dep], d: &Dep| list.iter().any(|x| x.name == d.name);
        info.auto_provides = found.provides.into_iter().filter(|d| !declared(&info.provides, d)).collect();
        info.auto_depends = found.depends.into_iter().filter(|d| !declared(&info.depends, d)).collect();
    }
    let bytes = build::build_unsigned(&entries, &info, &spec.scripts()?, spec.build_date)?;
    std::fs::write(out, bytes).map_err(Error::io(out))
}

/// Root-owned entries with abuild's modes, then the declared permissions (each of which
/// must name an entry: a typo must not pass silently).
fn normalize(spec: &ApkSpec, entries: &mut [BuildEntry]) -> Result<()> {
    for e in entries.iter_mut() {
        e.mode = match e.kind {
            Kind::Dir => 0o755,
            Kind::File if e.mode & 0o111 != 0 => 0o755,
            Kind::Symlink => 0o777,
            _ => 0o644,
        };
    }
    for (path, p) in &spec.permissions {
        let path = path.trim_end_matches('/');
        let e = entries
            .iter_mut()
            .find(|e| e.path == path)
            .ok_or_else(|| spec.bad(format!("permissions name {path:?}, which is not in the package")))?;
        (e.mode, e.uid, e.gid) = (p.mode & 0o7777, p.uid, p.gid);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
