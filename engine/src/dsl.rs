//! The recipe DSL: a context on which recipe functions declare derivations.
//!
//! Recipes are plain Rust functions taking `&mut Forge`. Declaring a node does no
//! I/O: it computes the derivation, its hash and its output paths, and returns a
//! typed handle ([`Source`], [`Package`], [`Rootfs`], [`Image`]) that later
//! declarations take as input. Because a node can only name handles that exist,
//! node ids are a topological order of the graph.
//!
//! ```
//! use forge_engine::dsl::{Forge, Input};
//! let mut f = Forge::new();
//! let greeting = f.text("greeting", "hello\n").unwrap();
//! assert!(greeting.path().to_string().ends_with("-greeting"));
//! ```

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use forge_store::{Hash, StorePath};

use crate::apk::lock::Lock;
use crate::drv::{Builder, Derivation};
use crate::error::{Error, Result};
use crate::world::ApkWorld;

/// Index of a node in a [`Forge`] graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

/// A declared derivation with everything computed from it.
#[derive(Clone, Debug)]
pub struct Node {
    /// The derivation as declared.
    pub drv: Derivation,
    /// sha256 of the canonical JSON.
    pub hash: Hash,
    /// Output name -> store path.
    pub outputs: BTreeMap<String, StorePath>,
    /// Nodes producing this node's inputs, sorted.
    pub deps: Vec<NodeId>,
}

impl Node {
    /// The main output.
    pub fn out(&self) -> &StorePath {
        &self.outputs["out"]
    }
}

/// Anything that names a node's main output: every handle type.
pub trait Input {
    /// The node that makes it.
    fn node(&self) -> NodeId;
    /// Its main output's store path.
    fn path(&self) -> &StorePath;
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub struct $name {
            node: NodeId,
            path: StorePath,
        }

        impl Input for $name {
            fn node(&self) -> NodeId {
                self.node
            }
            fn path(&self) -> &StorePath {
                &self.path
            }
        }

    };
}

macro_rules! into_target {
    ($($name:ident),*) => {$(
        impl From<$name> for Target {
            fn from(h: $name) -> Target {
                Target { node: h.node, path: h.path }
            }
        }
    )*};
}

handle!(
    /// Source material: a fetched file, a checkout, an unpacked tree, a text file.
    Source
);
handle!(
    /// A layer: an FHS tree installed with `DESTDIR=$out`, stackable into sysroots.
    Package
);
handle!(
    /// A composed root filesystem.
    Rootfs
);
handle!(
    /// A filesystem image or other final artifact.
    Image
);
handle!(
    /// An unsigned apk package file (see [`Forge::apk_package`]).
    ApkFile
);
handle!(
    /// What a recipe returns: any handle, erased.
    Target
);

into_target!(Source, Package, Rootfs, Image, ApkFile);

impl Source {
    /// Treats this source as a layer (for example a prebuilt tree).
    pub fn as_package(&self) -> Package {
        Package { node: self.node, path: self.path.clone() }
    }
}

/// What a package builder knows of a package it declared, beyond its derivation:
/// what bills of materials list (`sbom::inputs_of`). Not part of any hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageInfo {
    /// The name.
    pub name: String,
    /// The version.
    pub version: String,
    /// The node of its source: a fetched archive or a git checkout.
    pub source: NodeId,
}

/// A package world a recipe declared (see [`Forge::apk_world`]) and its lock, if read.
#[derive(Clone, Debug)]
pub struct DeclaredWorld {
    /// The world's name.
    pub world: ApkWorld,
    /// `None`: no lock file, or locks are ignored ([`Forge::ignore_locks`]).
    pub lock: Option<Lock>,
    /// The registry recipe that declared it (`forge lock` takes this name).
    pub recipe: Option<String>,
}

/// The build graph under construction.
pub struct Forge {
    nodes: Vec<Node>,
    by_out: HashMap<StorePath, NodeId>,
    package_info: HashMap<NodeId, PackageInfo>,
    memo: HashMap<String, Box<dyn Any + Send + Sync>>,
    in_progress: Vec<String>,
    system: String,
    worlds: Vec<DeclaredWorld>,
    ignore_locks: bool,
}

impl Default for Forge {
    fn default() -> Self {
        Forge::new()
    }
}

impl Forge {
    /// An empty graph for the machine's own system.
    pub fn new() -> Self {
        Forge::for_system(crate::drv::host_system())
    }

    /// An empty graph whose run steps build on `system` (`aarch64-linux`...).
    pub fn for_system(system: &str) -> Self {
        Forge {
            nodes: Vec::new(),
            by_out: HashMap::new(),
            package_info: HashMap::new(),
            memo: HashMap::new(),
            in_progress: Vec::new(),
            system: system.to_owned(),
            worlds: Vec::new(),
            ignore_locks: false,
        }
    }

    /// The system run steps are declared for (`x86_64-linux`, `aarch64-linux`).
    pub fn system(&self) -> &str {
        &self.system
    }

    /// The architecture of [`Forge::system`] as Alpine and apk name it.
    ///
    /// ```
    /// let f = forge_engine::dsl::Forge::for_system("aarch64-linux");
    /// assert_eq!(f.arch(), "aarch64");
    /// ```
    pub fn arch(&self) -> &str {
        self.system.trim_end_matches("-linux")
    }

    /// Declares what `declare` declares with run steps for `system` instead of the
    /// graph's own, then restores it: for steps that run on the build machine
    /// whatever the graph targets (cross compilers, and what they compile). Without
    /// it, an aarch64 graph would declare the x86_64 cross toolchain as aarch64 steps:
    /// other hashes, built again.
    ///
    /// ```
    /// let mut f = forge_engine::dsl::Forge::for_system("aarch64-linux");
    /// let inner = f.on_system("x86_64-linux", |f| Ok(f.arch().to_owned())).unwrap();
    /// assert_eq!((inner.as_str(), f.arch()), ("x86_64", "aarch64"));
    /// ```
    pub fn on_system<T>(&mut self, system: &str, declare: impl FnOnce(&mut Forge) -> Result<T>) -> Result<T> {
        let own = std::mem::replace(&mut self.system, system.to_owned());
        let result = declare(self);
        self.system = own;
        result
    }

    /// Every node, in declaration order (a topological order).
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node `id`.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0 as usize]
    }

    /// Every node `targets` need, themselves included.
    pub fn closure(&self, targets: &[NodeId]) -> BTreeSet<NodeId> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<NodeId> = targets.to_vec();
        while let Some(id) = stack.pop() {
            if seen.insert(id) {
                stack.extend(self.node(id).deps.iter().copied());
            }
        }
        seen
    }

    /// What the package builder recorded about node `id`, if it declared it.
    pub fn package_info(&self, id: NodeId) -> Option<&PackageInfo> {
        self.package_info.get(&id)
    }

    /// Records what `id` is as a package (name, version, source) for bills of
    /// materials; package builders call it.
    pub fn set_package_info(&mut self, id: NodeId, info: PackageInfo) {
        self.package_info.insert(id, info);
    }

    /// The node producing `path`, if this graph has one.
    pub fn producer(&self, path: &StorePath) -> Option<NodeId> {
        self.by_out.get(path).copied()
    }

    /// Adds a derivation; an identical one declared twice is one node.
    ///
    /// Inputs that no node of this graph produces are allowed: they must be valid in
    /// the store when the graph is built (`forge build --drv` uses that).
    pub fn add(&mut self, drv: Derivation) -> Result<NodeId> {
        drv.validate()?;
        let outputs = drv.output_paths()?;
        if let Some(&id) = self.by_out.get(&outputs["out"]) {
            let existing = &self.nodes[id.0 as usize];
            if existing.drv == drv {
                return Ok(id);
            }
            return Err(Error::ConflictingOutputs {
                path: outputs["out"].to_string(),
                first: existing.drv.name.clone(),
                second: drv.name.clone(),
            });
        }
        let mut deps: Vec<NodeId> = drv.inputs.iter().filter_map(|p| self.by_out.get(p).copied()).collect();
        deps.sort();
        deps.dedup();
        let id = NodeId(self.nodes.len() as u32);
        for path in outputs.values() {
            self.by_out.insert(path.clone(), id);
        }
        self.nodes.push(Node { hash: drv.hash(), drv, outputs, deps });
        Ok(id)
    }

    fn add_as(&mut self, drv: Derivation) -> Result<(NodeId, StorePath)> {
        let id = self.add(drv)?;
        Ok((id, self.node(id).out().clone()))
    }

    /// A derivation for this graph's system.
    pub fn derivation(&self, name: &str, builder: Builder) -> Derivation {
        let mut drv = Derivation::new(name, builder);
        drv.system = self.system.clone();
        drv
    }

    /// Memoizes a recipe function: the first call runs `f`, later calls with the same
    /// `key` return its result, so `libqmi(f)` called from two recipes is one node.
    /// A recipe that reaches itself again is a cycle, reported with its path.
    pub fn memo<T: Clone + Send + Sync + 'static>(
        &mut self,
        key: &str,
        f: impl FnOnce(&mut Forge) -> Result<T>,
    ) -> Result<T> {
        // Per system: the same recipe declared for two systems is two nodes.
        let memo_key = format!("{}/{key}", self.system);
        if let Some(v) = self.memo.get(&memo_key) {
            return v.downcast_ref::<T>().cloned().ok_or_else(|| Error::Recipe {
                recipe: key.to_owned(),
                why: "memoized under the same key with two different result types".into(),
            });
        }
        if let Some(start) = self.in_progress.iter().position(|k| k == key) {
            let mut cycle: Vec<String> = self.in_progress[start..].to_vec();
            cycle.push(key.to_owned());
            return Err(Error::Cycle { cycle });
        }
        self.in_progress.push(key.to_owned());
        let result = f(self);
        self.in_progress.pop();
        let value = result?;
        self.memo.insert(memo_key, Box::new(value.clone()));
        Ok(value)
    }

    /// A file downloaded from the first of `urls` (or a mirror) that has `hash`.
    pub fn fetch(&mut self, name: &str, urls: &[&str], hash: &str) -> Result<Source> {
        let hash: Hash = hash.parse()?;
        let urls = urls.iter().map(|u| u.to_string()).collect();
        let (node, path) = self.add_as(self.derivation(name, Builder::Fetch { urls, hash, executable: false }))?;
        Ok(Source { node, path })
    }

    /// A git checkout of `rev` whose tree (without `.git`, only `subpaths` when
    /// given) has NAR hash `nar_hash`.
    pub fn git(&mut self, name: &str, url: &str, rev: &str, nar_hash: &str, subpaths: &[&str]) -> Result<Source> {
        let builder = Builder::Git {
            url: url.to_owned(),
            rev: rev.to_owned(),
            nar_hash: nar_hash.parse()?,
            subpaths: subpaths.iter().map(|s| s.to_string()).collect(),
        };
        let (node, path) = self.add_as(self.derivation(name, builder))?;
        Ok(Source { node, path })
    }

    /// A builtin step over `inputs`; the typed helpers below wrap the common ones.
    pub fn builtin(
        &mut self,
        name: &str,
        builtin: &str,
        version: u32,
        args: serde_json::Value,
        inputs: &[&dyn Input],
    ) -> Result<Target> {
        let mut drv = self.derivation(name, Builder::Builtin { name: builtin.to_owned(), version, args });
        drv.inputs.extend(inputs.iter().map(|i| i.path().clone()));
        let (node, path) = self.add_as(drv)?;
        Ok(Target { node, path })
    }

    /// A single regular file holding `content` (patches, scripts, configuration).
    pub fn text(&mut self, name: &str, content: &str) -> Result<Source> {
        let t = self.builtin(name, "text", 1, serde_json::json!({ "content": content }), &[])?;
        Ok(Source { node: t.node, path: t.path })
    }

    /// An archive (tar.*, zip, deb, apk) unpacked, dropping `strip` leading path
    /// components.
    pub fn unpack(&mut self, name: &str, archive: &Source, strip: u32) -> Result<Source> {
        let args = serde_json::json!({ "src": archive.path().to_string(), "stripComponents": strip });
        let t = self.builtin(name, "unpack", crate::archive::VERSION, args, &[archive])?;
        Ok(Source { node: t.node, path: t.path })
    }

    /// Several layers merged into one tree (later layers win), plus symlinks
    /// (`path -> target`) added on top.
    pub fn merge(&mut self, name: &str, layers: &[&dyn Input], symlinks: &[(&str, &str)]) -> Result<Package> {
        let layer_paths: Vec<String> = layers.iter().map(|l| l.path().to_string()).collect();
        let links: BTreeMap<&str, &str> = symlinks.iter().copied().collect();
        let args = serde_json::json!({ "layers": layer_paths, "symlinks": links });
        let t = self.builtin(name, "merge", 1, args, layers)?;
        Ok(Package { node: t.node, path: t.path })
    }

    /// A sandboxed script: `sysroot` layers stacked as `/`, `inputs` readable at
    /// their store paths, `$out` to write.
    pub fn run(&mut self, step: RunStep<'_>) -> Result<Package> {
        let sysroot: Vec<StorePath> = step.sysroot.iter().map(|l| l.path().clone()).collect();
        let mut drv =
            self.derivation(step.name, Builder::Run { sysroot: sysroot.clone(), script: step.script.to_owned() });
        drv.inputs.extend(sysroot);
        drv.inputs.extend(step.inputs.iter().map(|i| i.path().clone()));
        drv.env = step.env;
        let (node, path) = self.add_as(drv)?;
        Ok(Package { node, path })
    }

    /// Wraps a node as a handle of the type its recipe promises.
    pub fn target(&self, node: NodeId) -> Target {
        Target { node, path: self.node(node).out().clone() }
    }

    /// Declares an Alpine package world (see [`crate::world`]) and returns its lock when
    /// the lock file exists: the recipe installs exactly that with
    /// [`Forge::apk_install_world`]. With no lock file it gets `None` and composes without
    /// the world (`forge show` and `forge build` say so, naming `forge lock RECIPE`). A
    /// lock made for another arch, other repositories or another world is an error that
    /// says to run `forge lock` again.
    ///
    /// ```
    /// use forge_engine::dsl::Forge;
    /// use forge_engine::world::{ApkRepository, ApkWorld, PinnedKeys};
    /// let world = ApkWorld {
    ///     name: "demo-x86_64".into(),
    ///     arch: "x86_64".into(),
    ///     repositories: vec![ApkRepository::parse("https://example.invalid/alpine/v3.20/main").unwrap()],
    ///     keys: PinnedKeys {
    ///         name: "minirootfs.tar.gz".into(),
    ///         urls: vec!["https://example.invalid/minirootfs.tar.gz".into()],
    ///         hash: format!("sha256:{}", "0".repeat(64)),
    ///         dir: "etc/apk/keys".into(),
    ///     },
    ///     world: vec!["busybox".into()],
    ///     lock_file: "/nonexistent/demo.lock".into(),
    /// };
    /// let mut f = Forge::new();
    /// assert!(f.apk_world(world).unwrap().is_none());
    /// assert_eq!(f.apk_worlds()[0].world.name, "demo-x86_64");
    /// ```
    pub fn apk_world(&mut self, world: ApkWorld) -> Result<Option<Lock>> {
        let recipe = self.current_recipe();
        let lock = if self.ignore_locks { None } else { world.read_lock()? };
        if let Some(why) = lock.as_ref().and_then(|l| world.stale(l)) {
            return Err(Error::StaleLock {
                world: world.name.clone(),
                path: world.lock_file.clone(),
                why,
                recipe: recipe.clone().unwrap_or_else(|| "RECIPE".into()),
            });
        }
        self.worlds.push(DeclaredWorld { world, lock: lock.clone(), recipe });
        Ok(lock)
    }

    /// Every package world declared so far, in order.
    pub fn apk_worlds(&self) -> &[DeclaredWorld] {
        &self.worlds
    }

    /// Makes [`Forge::apk_world`] read no lock file (`forge lock`, which is about to
    /// write them, declares recipes this way).
    pub fn ignore_locks(&mut self) {
        self.ignore_locks = true;
    }

    /// The registry recipe being declared (the outermost `recipe:NAME` memo key).
    fn current_recipe(&self) -> Option<String> {
        self.in_progress.iter().find_map(|k| k.strip_prefix("recipe:")).map(str::to_owned)
    }

    /// Installs a locked world over `base` (a root filesystem tarball or tree): each
    /// locked `.apk` is a fixed-output download pinned by the lock's sha256, the world's
    /// key tarball is fetched as declared (the same node as the recipe's own fetch of
    /// it), and the `apk-install` builtin verifies every package against those keys,
    /// installs them in dependency order and writes apk's database. The result is a tar.
    pub fn apk_install_world(
        &mut self,
        name: &str,
        base: &dyn Input,
        world: &ApkWorld,
        lock: &Lock,
        epoch: i64,
    ) -> Result<Rootfs> {
        let key_urls: Vec<&str> = world.keys.urls.iter().map(String::as_str).collect();
        let keys = self.fetch(&world.keys.name, &key_urls, &world.keys.hash)?;
        let mut apks = Vec::with_capacity(lock.packages.len());
        for e in &lock.packages {
            let (file, url, hash) = crate::world::apk_download(e);
            apks.push(self.fetch(&file, &[&url], &hash)?);
        }
        let paths: Vec<String> = apks.iter().map(|a| a.path().to_string()).collect();
        let args =
            crate::world::install_args(world, lock, &base.path().to_string(), &keys.path().to_string(), &paths, epoch);
        let mut inputs: Vec<&dyn Input> = vec![base, &keys];
        inputs.extend(apks.iter().map(|a| a as &dyn Input));
        Ok(self.builtin(name, "apk-install", 1, args, &inputs)?.into_rootfs())
    }
}

impl Forge {
    /// Packages `tree` (a layer installed with `DESTDIR=$out`) as the unsigned apk
    /// `name-version.apk` with the metadata of `spec` (builtin `apk-package`, see
    /// [`crate::apk::make`]). `forge build --apk-key` signs every such package of the
    /// built closure into a repository beside the output link.
    ///
    /// ```
    /// use forge_engine::apk::make::ApkSpec;
    /// use forge_engine::dsl::{Forge, Input};
    /// let mut f = Forge::new();
    /// let tree = f.merge("tree", &[], &[("usr/bin/hi", "hello")]).unwrap();
    /// let mut spec = ApkSpec::new("hi", "1.0-r0", "x86_64");
    /// spec.build_date = 1_700_000_000;
    /// let apk = f.apk_package(&tree, &spec).unwrap();
    /// assert!(apk.path().name() == "hi-1.0-r0.apk");
    /// assert!(f.apk_package(&tree, &ApkSpec::new("hi", "1.0", "x86_64")).is_err());
    /// ```
    pub fn apk_package(&mut self, tree: &dyn Input, spec: &crate::apk::make::ApkSpec) -> Result<ApkFile> {
        use crate::apk::make::{Args, BUILTIN, VERSION};
        spec.validate()?;
        let args = Args { tree: tree.path().clone(), spec: spec.clone() };
        let args = serde_json::to_value(&args)
            .map_err(|e| Error::BadDerivation { name: spec.file_name(), why: e.to_string() })?;
        let t = self.builtin(&spec.file_name(), BUILTIN, VERSION, args, &[tree])?;
        Ok(ApkFile { node: t.node, path: t.path })
    }

    /// A folder of links `name-version.apk -> /forge/store/...` to `apks`: one output
    /// naming several packages (what a recipe returns when it makes more than one).
    pub fn apk_set(&mut self, name: &str, apks: &[&ApkFile]) -> Result<Target> {
        let links: BTreeMap<String, String> = apks
            .iter()
            .map(|a| {
                let file = a.path().name().to_owned();
                (file, a.path().to_string())
            })
            .collect();
        if links.len() != apks.len() {
            return Err(Error::BadDerivation { name: name.to_owned(), why: "an apk is named twice".into() });
        }
        let inputs: Vec<&dyn Input> = apks.iter().map(|a| *a as &dyn Input).collect();
        self.builtin(name, "merge", 1, serde_json::json!({ "layers": [], "symlinks": links }), &inputs)
    }

    /// The unsigned apks (`apk-package` outputs) among the nodes `targets` need, in
    /// node order: what `forge build --apk-key` signs.
    pub fn apk_packages(&self, targets: &[NodeId]) -> Vec<StorePath> {
        self.closure(targets)
            .into_iter()
            .filter(|&id| {
                matches!(&self.node(id).drv.builder, Builder::Builtin { name, .. } if name == crate::apk::make::BUILTIN)
            })
            .map(|id| self.node(id).out().clone())
            .collect()
    }
}

/// Arguments of [`Forge::run`].
pub struct RunStep<'a> {
    /// The derivation's name (and its output's).
    pub name: &'a str,
    /// Layers stacked as the root filesystem, bottom first.
    pub sysroot: Vec<&'a dyn Input>,
    /// Further inputs, readable at their store paths.
    pub inputs: Vec<&'a dyn Input>,
    /// The script, run with `/bin/sh -e -c`.
    pub script: &'a str,
    /// Variables of the step (part of its hash).
    pub env: BTreeMap<String, String>,
}

impl Target {
    /// Erases any handle's type.
    pub fn of(input: &dyn Input) -> Target {
        Target { node: input.node(), path: input.path().clone() }
    }
    /// Converts to a typed handle; the type is the recipe author's promise.
    pub fn into_package(self) -> Package {
        Package { node: self.node, path: self.path }
    }
    /// Converts to a root filesystem handle; the type is the recipe author's promise.
    pub fn into_rootfs(self) -> Rootfs {
        Rootfs { node: self.node, path: self.path }
    }
    /// Converts to an image handle; the type is the recipe author's promise.
    pub fn into_image(self) -> Image {
        Image { node: self.node, path: self.path }
    }
    /// Converts to a source handle; the type is the recipe author's promise.
    pub fn into_source(self) -> Source {
        Source { node: self.node, path: self.path }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn libfoo(f: &mut Forge) -> Result<Source> {
        f.memo("libfoo", |f| f.text("libfoo", "foo"))
    }

    #[test]
    fn memoized_recipes_called_twice_give_one_node() {
        let mut f = Forge::new();
        let a = libfoo(&mut f).unwrap();
        let b = libfoo(&mut f).unwrap();
        assert_eq!(a, b);
        assert_eq!(f.nodes().len(), 1);
    }

    #[test]
    fn a_recipe_declared_on_another_system_is_memoized_apart_and_the_system_comes_back() {
        fn step(f: &mut Forge) -> Result<Package> {
            f.memo("step", |f| {
                let step =
                    RunStep { name: "step", sysroot: vec![], inputs: vec![], script: "true", env: BTreeMap::new() };
                f.run(step)
            })
        }
        let mut f = Forge::for_system("aarch64-linux");
        let own = step(&mut f).unwrap();
        let build = f.on_system("x86_64-linux", step).unwrap();
        assert_ne!(own, build);
        assert_eq!(f.node(build.node()).drv.system, "x86_64-linux");
        assert_eq!(f.on_system("x86_64-linux", step).unwrap(), build);
        assert_eq!(f.system(), "aarch64-linux");
    }

    #[test]
    fn identical_declarations_are_one_node_even_without_memo() {
        let mut f = Forge::new();
        f.text("x", "1").unwrap();
        f.text("x", "1").unwrap();
        assert_eq!(f.nodes().len(), 1);
    }

    fn ping(f: &mut Forge) -> Result<Source> {
        f.memo("ping", pong)
    }
    fn pong(f: &mut Forge) -> Result<Source> {
        f.memo("pong", ping)
    }

    #[test]
    fn a_recipe_cycle_is_an_error_naming_the_cycle() {
        let err = ping(&mut Forge::new()).unwrap_err().to_string();
        assert!(err.contains("ping -> pong -> ping"), "{err}");
    }

    #[test]
    fn deps_point_at_the_producers_of_inputs() {
        let mut f = Forge::new();
        let archive = f.text("a.tar", "not really a tar").unwrap();
        let tree = f.unpack("a", &archive, 1).unwrap();
        assert_eq!(f.node(tree.node()).deps, vec![archive.node()]);
    }

    #[test]
    fn a_changed_leaf_changes_every_path_above_it() {
        let build = |content: &str| {
            let mut f = Forge::new();
            let patch = f.text("fix.patch", content).unwrap();
            let layer = f.merge("layer", &[&patch], &[]).unwrap();
            f.run(RunStep { name: "app", sysroot: vec![&layer], inputs: vec![], script: "true", env: BTreeMap::new() })
                .unwrap()
                .path()
                .clone()
        };
        assert_eq!(build("a"), build("a"));
        assert_ne!(build("a"), build("b"));
    }
}
