//! A package builder in the spirit of abuild and melange: a source, patches, build
//! dependencies stacked as the sysroot, and phases (configure, build, check,
//! install into `DESTDIR=$out`), with defaults for autotools, meson, cmake and qmake.
//!
//! The result is one sandboxed [`Forge::run`] step whose output is a layer.
//!
//! ```
//! use forge_engine::dsl::{Forge, Input};
//! let mut f = Forge::new();
//! let toolchain = f.text("toolchain-stand-in", "").unwrap().as_package();
//! let src = f.fetch("hello-2.10.tar.gz", &["https://ftp.gnu.org/gnu/hello/hello-2.10.tar.gz"],
//!     "sha256:31e066137a962676e89f69d1b65382de95a7ef7d914b8cb956f41ea72e0f516b").unwrap();
//! let hello = f.package("hello", "2.10")
//!     .source(&src)
//!     .build_dep(&toolchain)
//!     .autotools(&["--disable-nls"])
//!     .finish()
//!     .unwrap();
//! assert!(hello.path().name() == "hello-2.10");
//! ```

use std::collections::BTreeMap;

use crate::dsl::{Forge, Input, Package, PackageInfo, RunStep, Source, Target};
use crate::error::{Error, Result};

/// The default `SOURCE_DATE_EPOCH`: 2024-01-01T00:00:00Z. Packages that know their
/// release date set their own.
pub const DEFAULT_SOURCE_DATE_EPOCH: u64 = 1_704_067_200;

/// How the phases are filled in when a recipe does not set them.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Style {
    Custom,
    Autotools(Vec<String>),
    Meson(Vec<String>),
    Cmake(Vec<String>),
    Qmake(Vec<String>),
}

/// Declares one package; see the module docs.
pub struct PackageBuilder<'f> {
    forge: &'f mut Forge,
    name: String,
    version: String,
    source: Option<(Source, bool)>,
    patches: Vec<Source>,
    deps: Vec<Package>,
    inputs: Vec<Target>,
    env: BTreeMap<String, String>,
    style: Style,
    phases: BTreeMap<&'static str, String>,
    check: bool,
    source_date_epoch: u64,
}

impl Forge {
    /// Starts declaring package `name` at `version`.
    pub fn package(&mut self, name: &str, version: &str) -> PackageBuilder<'_> {
        PackageBuilder {
            forge: self,
            name: name.to_owned(),
            version: version.to_owned(),
            source: None,
            patches: Vec::new(),
            deps: Vec::new(),
            inputs: Vec::new(),
            env: BTreeMap::new(),
            style: Style::Custom,
            phases: BTreeMap::new(),
            check: false,
            source_date_epoch: DEFAULT_SOURCE_DATE_EPOCH,
        }
    }
}

/// The phases in the order they run. `prepare` (empty unless a recipe sets it) runs
/// after patching and before `configure`: for setting up what configure needs, such
/// as a cross sysroot.
const PHASES: [&str; 5] = ["prepare", "configure", "build", "check", "install"];

impl<'f> PackageBuilder<'f> {
    /// The source archive; it is unpacked with its top folder stripped.
    pub fn source(mut self, archive: &Source) -> Self {
        self.source = Some((archive.clone(), true));
        self
    }

    /// A source that is already a tree (a git checkout, an unpacked archive).
    pub fn source_tree(mut self, tree: &Source) -> Self {
        self.source = Some((tree.clone(), false));
        self
    }

    /// A patch applied with `patch -p1` after unpacking, in the order given.
    pub fn patch(mut self, patch: &Source) -> Self {
        self.patches.push(patch.clone());
        self
    }

    /// A layer stacked into the sysroot the build runs on (toolchain, libraries).
    pub fn build_dep(mut self, layer: &Package) -> Self {
        self.deps.push(layer.clone());
        self
    }

    /// An extra input readable at its store path, not stacked into the sysroot: a
    /// source, or a layer built for another machine (its path is in `$name` only if
    /// you also set an env var to it).
    pub fn input(mut self, input: &dyn Input) -> Self {
        self.inputs.push(Target::of(input));
        self
    }

    /// A variable for every phase.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_owned(), value.to_owned());
        self
    }

    /// `./configure --prefix=/usr FLAGS; make; make DESTDIR=$out install`.
    pub fn autotools(mut self, flags: &[&str]) -> Self {
        self.style = Style::Autotools(owned(flags));
        self
    }

    /// `meson setup build --prefix=/usr FLAGS; meson compile; meson install`.
    pub fn meson(mut self, flags: &[&str]) -> Self {
        self.style = Style::Meson(owned(flags));
        self
    }

    /// `cmake -B build -DCMAKE_INSTALL_PREFIX=/usr FLAGS; cmake --build; cmake --install`.
    pub fn cmake(mut self, flags: &[&str]) -> Self {
        self.style = Style::Cmake(owned(flags));
        self
    }

    /// `qmake FLAGS; make; make INSTALL_ROOT=$out install`.
    pub fn qmake(mut self, flags: &[&str]) -> Self {
        self.style = Style::Qmake(owned(flags));
        self
    }

    /// Replaces one phase's script (`prepare`, `configure`, `build`, `check` or `install`).
    pub fn phase(mut self, phase: &'static str, script: &str) -> Self {
        self.phases.insert(phase, script.to_owned());
        self
    }

    /// Runs the check phase (off by default: test suites often need more than a
    /// sandbox offers; turn it on where they pass).
    pub fn check(mut self, on: bool) -> Self {
        self.check = on;
        self
    }

    /// The `SOURCE_DATE_EPOCH` the build sees.
    pub fn source_date_epoch(mut self, epoch: u64) -> Self {
        self.source_date_epoch = epoch;
        self
    }

    /// Declares the derivations and returns the installed layer.
    pub fn finish(self) -> Result<Package> {
        let full = format!("{}-{}", self.name, self.version);
        let (archive, is_archive) = self
            .source
            .clone()
            .ok_or_else(|| Error::Recipe { recipe: full.clone(), why: "no source was given".into() })?;
        for phase in self.phases.keys() {
            if !PHASES.contains(phase) {
                return Err(Error::Recipe {
                    recipe: full,
                    why: format!("unknown phase `{phase}`; phases are {PHASES:?}"),
                });
            }
        }
        let source = archive.node();
        let src = if is_archive { self.forge.unpack(&format!("{full}-src"), &archive, 1)? } else { archive };
        let script = self.script(&src);
        let mut env = self.env.clone();
        env.insert("src".into(), src.path().to_string());
        env.insert("SOURCE_DATE_EPOCH".into(), self.source_date_epoch.to_string());
        let mut inputs: Vec<&dyn Input> = vec![&src];
        inputs.extend(self.patches.iter().map(|p| p as &dyn Input));
        inputs.extend(self.inputs.iter().map(|p| p as &dyn Input));
        let sysroot: Vec<&dyn Input> = self.deps.iter().map(|d| d as &dyn Input).collect();
        let step = RunStep { name: &full, sysroot, inputs, script: &script, env };
        let package = self.forge.run(step)?;
        let info = PackageInfo { name: self.name.clone(), version: self.version.clone(), source };
        self.forge.set_package_info(package.node(), info);
        Ok(package)
    }

    fn script(&self, src: &Source) -> String {
        let mut s = format!(
            "# {} {}: unpack, patch, configure, build{}, install\n",
            self.name,
            self.version,
            if self.check { ", check" } else { "" }
        );
        // -p keeps the store's single canonical mtime on every file: with equal times, make
        // never thinks generated files (configure, aclocal.m4) are stale.
        s.push_str(&format!("cp -Rp {} /build/src\nchmod -R u+w /build/src\ncd /build/src\n", src.path()));
        for p in &self.patches {
            s.push_str(&format!("patch -p1 -i {}\n", p.path()));
        }
        for phase in PHASES {
            if phase == "check" && !self.check {
                continue;
            }
            if let Some(body) = self.phases.get(phase).cloned().or_else(|| default_phase(&self.style, phase)) {
                s.push_str(&format!("# {phase}\n{body}\n"));
            }
        }
        s
    }
}

fn default_phase(style: &Style, phase: &str) -> Option<String> {
    let line = match (style, phase) {
        (Style::Custom, _) => return None,
        (Style::Autotools(f), "configure") => {
            format!("./configure --prefix=/usr --sysconfdir=/etc --localstatedir=/var{}", quoted(f))
        }
        (Style::Autotools(_) | Style::Qmake(_), "build") => "make -j\"$FORGE_BUILD_CORES\"".to_owned(),
        (Style::Autotools(_) | Style::Qmake(_), "check") => "make check".to_owned(),
        (Style::Autotools(_), "install") => "make DESTDIR=\"$out\" install".to_owned(),
        (Style::Meson(f), "configure") => format!("meson setup build --prefix=/usr --buildtype=release{}", quoted(f)),
        (Style::Meson(_), "build") => "meson compile -C build -j \"$FORGE_BUILD_CORES\"".to_owned(),
        (Style::Meson(_), "check") => "meson test -C build".to_owned(),
        (Style::Meson(_), "install") => "DESTDIR=\"$out\" meson install -C build".to_owned(),
        (Style::Cmake(f), "configure") => {
            format!("cmake -B build -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=Release{}", quoted(f))
        }
        (Style::Cmake(_), "build") => "cmake --build build -j \"$FORGE_BUILD_CORES\"".to_owned(),
        (Style::Cmake(_), "check") => "ctest --test-dir build".to_owned(),
        (Style::Cmake(_), "install") => "DESTDIR=\"$out\" cmake --install build".to_owned(),
        (Style::Qmake(f), "configure") => format!("qmake{}", quoted(f)),
        (Style::Qmake(_), "install") => "make INSTALL_ROOT=\"$out\" install".to_owned(),
        _ => return None,
    };
    Some(line)
}

fn owned(flags: &[&str]) -> Vec<String> {
    flags.iter().map(|f| f.to_string()).collect()
}

/// Each flag single-quoted for `sh`, with a leading space.
fn quoted(flags: &[String]) -> String {
    flags.iter().map(|f| format!(" '{}'", f.replace('\'', r"'\''"))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script_of(f: &Forge, p: &Package) -> String {
        f.node(p.node()).drv.builder.script().expect("a run step").to_owned()
    }

    fn setup(f: &mut Forge) -> (Source, Package) {
        let src = f.text("src.tar", "x").unwrap();
        let tc = f.text("tc", "").unwrap().as_package();
        (src, tc)
    }

    #[test]
    fn autotools_flags_are_quoted_and_install_goes_to_destdir() {
        let mut f = Forge::new();
        let (src, tc) = setup(&mut f);
        let p = f.package("demo", "1.0").source(&src).build_dep(&tc).autotools(&["--with-x=it's"]).finish().unwrap();
        let s = script_of(&f, &p);
        assert!(s.contains(r"--localstatedir=/var '--with-x=it'\''s'"), "{s}");
        assert!(s.contains("make DESTDIR=\"$out\" install"), "{s}");
        assert!(!s.contains("make check"), "check is off by default: {s}");
    }

    #[test]
    fn patches_apply_in_order_after_unpacking() {
        let mut f = Forge::new();
        let (src, tc) = setup(&mut f);
        let p1 = f.text("1.patch", "a").unwrap();
        let p2 = f.text("2.patch", "b").unwrap();
        let p = f.package("demo", "1.0").source(&src).build_dep(&tc).patch(&p1).patch(&p2).meson(&[]).finish().unwrap();
        let s = script_of(&f, &p);
        let (i1, i2) = (s.find(&p1.path().to_string()).unwrap(), s.find(&p2.path().to_string()).unwrap());
        assert!(i1 < i2 && i2 < s.find("meson setup").unwrap(), "{s}");
        assert!(f.node(p.node()).drv.inputs.contains(p2.path()));
    }

    #[test]
    fn a_phase_override_replaces_the_default_and_unknown_phases_are_refused() {
        let mut f = Forge::new();
        let (src, tc) = setup(&mut f);
        let p =
            f.package("demo", "1.0").source(&src).build_dep(&tc).cmake(&[]).phase("build", "ninja").finish().unwrap();
        assert!(script_of(&f, &p).contains("# build\nninja\n"));
        let p = f
            .package("demo", "1.2")
            .source(&src)
            .build_dep(&tc)
            .meson(&[])
            .phase("prepare", "mkdir x")
            .finish()
            .unwrap();
        let s = script_of(&f, &p);
        assert!(s.find("# prepare\nmkdir x\n").unwrap() < s.find("meson setup").unwrap(), "{s}");
        let err = f.package("demo", "1.1").source(&src).phase("compile", "x").finish().unwrap_err();
        assert!(err.to_string().contains("unknown phase `compile`"));
    }

    #[test]
    fn source_date_epoch_is_part_of_the_derivation() {
        let mut f = Forge::new();
        let (src, tc) = setup(&mut f);
        let a = f.package("demo", "1").source(&src).build_dep(&tc).source_date_epoch(1).finish().unwrap();
        let b = f.package("demo", "1").source(&src).build_dep(&tc).source_date_epoch(2).finish().unwrap();
        assert_ne!(a.path(), b.path());
    }
}
