//! `forge shell`: the sandbox of a run step, opened for a person debugging it.
//!
//! The session gets exactly what the step's builder would get (sysroot layers as
//! `/`, the input closure read-only at its store paths, the step's environment,
//! each output writable at its store path), with three differences made for
//! debugging: the command is the caller's (a shell by default) and reads the
//! caller's stdin, with a terminal of its own when there is one; the step's source
//! (`$src`, when it is a tree) is already copied, writable, to `/build/src`, where
//! the command starts; and the step's script is at `/build/.forge-script`. Nothing is
//! registered: the outputs and the build directory live in a scratch folder of the
//! store that is removed when the session ends.
//!
//! ```no_run
//! # fn demo(store: &forge_store::Store, f: &forge_engine::dsl::Forge, target: forge_engine::dsl::NodeId)
//! # -> forge_engine::Result<()> {
//! use forge_engine::sandbox::{Cancel, Inherit, Interactive};
//! use forge_engine::shell::{self, Shell};
//! let step = shell::select(f, target, None)?; // the target itself must be a run step
//! // ... build the inputs of `step` first (forge_engine::build::build on its deps) ...
//! let shell = Shell::prepare(store, f.node(step), vec!["/bin/sh".into()], Interactive::for_stdin())?;
//! let outcome = shell.run(&mut Inherit, &Cancel::default())?;
//! std::process::exit(outcome.status.shell_code());
//! # }
//! ```

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use forge_store::{PathLock, Store, StorePath, TempPath};

use crate::build;
use crate::drv::Builder;
use crate::dsl::{Forge, Node, NodeId};
use crate::error::{Error, Result};
use crate::sandbox::{self, Cancel, Interactive, Outcome, OutputSink, SandboxSpec};

/// Where the step's source is copied inside the sandbox (the package builder's
/// scripts work there too).
pub const SOURCE_DIR: &str = "/build/src";
/// Where the step's script is inside the sandbox.
pub const SCRIPT_FILE: &str = "/build/.forge-script";

/// The node `forge shell` opens: `target` itself, which must be a run step, or the
/// run step named `step` in its closure.
pub fn select(forge: &Forge, target: NodeId, step: Option<&str>) -> Result<NodeId> {
    let closure = run_steps(forge, target);
    let names = || closure.iter().map(|&id| forge.node(id).drv.name.clone()).collect::<Vec<_>>();
    match step {
        Some(name) => closure.iter().copied().find(|&id| forge.node(id).drv.name == name).ok_or_else(|| {
            Error::NoSuchStep { step: name.to_owned(), target: forge.node(target).drv.name.clone(), run_steps: names() }
        }),
        None if matches!(forge.node(target).drv.builder, Builder::Run { .. }) => Ok(target),
        None => Err(Error::NotRunStep {
            name: forge.node(target).drv.name.clone(),
            kind: kind(&forge.node(target).drv.builder),
            run_steps: names(),
        }),
    }
}

/// The run steps among `target` and everything it needs, in node order.
fn run_steps(forge: &Forge, target: NodeId) -> Vec<NodeId> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![target];
    while let Some(id) = todo.pop() {
        if seen.insert(id) {
            todo.extend(forge.node(id).deps.iter().copied());
        }
    }
    seen.into_iter().filter(|&id| matches!(forge.node(id).drv.builder, Builder::Run { .. })).collect()
}

/// What kind of step a builder makes, for the error that it cannot be opened.
fn kind(b: &Builder) -> String {
    match b {
        Builder::Fetch { .. } => "a download (fetch)".to_owned(),
        Builder::Git { .. } => "a git checkout".to_owned(),
        Builder::Builtin { name, .. } => format!("the builtin `{name}`, which runs inside forge"),
        Builder::Run { .. } => "a run step".to_owned(),
    }
}

/// A run step's sandbox, ready to open with the caller's command.
pub struct Shell {
    /// The sandbox; callers may adjust it (a timeout, say) before [`Shell::run`].
    pub spec: SandboxSpec,
    source: Option<PathBuf>,
    /// Outputs and build directory; removed on drop.
    scratch: TempPath,
    /// Shared locks on the input closure, so gc leaves it alone meanwhile.
    _held: Vec<PathLock>,
}

impl Shell {
    /// Prepares the sandbox of `node`, a run step whose inputs are all in the store,
    /// to run `command` with `interactive` stdin.
    pub fn prepare(store: &Store, node: &Node, command: Vec<String>, interactive: Interactive) -> Result<Shell> {
        let inputs = build::input_closure(store, node)?;
        let held = inputs.iter().map(|p| store.hold_path(p)).collect::<std::result::Result<_, _>>()?;
        let scratch = store.new_temp_dir(&format!("shell-{}", node.drv.name))?;
        let mut spec = build::step_sandbox(store, node, &inputs, scratch.path())?;
        let build_dir = scratch.path().join("build");
        fs::create_dir(&build_dir).map_err(Error::io(&build_dir))?;
        if let Builder::Run { script, .. } = &node.drv.builder {
            let file = build_dir.join(".forge-script");
            fs::write(&file, script).map_err(Error::io(&file))?;
        }
        let source = source_tree(store, node, &inputs);
        if let Some(src) = &source {
            copy_writable(src, &build_dir.join("src"))?;
            spec.cwd = Some(PathBuf::from(SOURCE_DIR));
        }
        spec.build_dir_host = Some(build_dir);
        spec.argv = command;
        spec.interactive = Some(interactive);
        Ok(Shell { spec, source, scratch, _held: held })
    }

    /// The store path whose tree was copied to [`SOURCE_DIR`], if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Runs the command until it exits; then everything it wrote is removed.
    pub fn run(self, sink: &mut dyn OutputSink, cancel: &Cancel) -> Result<Outcome> {
        let outcome = sandbox::run_with(&self.spec, sink, cancel)?;
        drop(self.scratch);
        Ok(outcome)
    }
}

/// `$src` of the step, when it is a directory among its inputs (the unpacked source
/// of a package): its physical path.
fn source_tree(store: &Store, node: &Node, inputs: &BTreeSet<StorePath>) -> Option<PathBuf> {
    let src = node.drv.env.get("src")?;
    let path = inputs.iter().find(|p| p.to_string() == *src)?;
    let physical = store.physical(path);
    physical.is_dir().then_some(physical)
}

/// `cp -Rp SRC DST; chmod -R u+w DST`, as the package builder's script begins: the
/// store's modes (plus owner write) and its single mtime, so make never thinks a
/// generated file is stale.
fn copy_writable(src: &Path, dst: &Path) -> Result<()> {
    let md = fs::symlink_metadata(src).map_err(Error::io(src))?;
    if md.file_type().is_symlink() {
        let target = fs::read_link(src).map_err(Error::io(src))?;
        std::os::unix::fs::symlink(target, dst).map_err(Error::io(dst))?;
    } else if md.is_dir() {
        fs::create_dir(dst).map_err(Error::io(dst))?;
        for entry in fs::read_dir(src).map_err(Error::io(src))? {
            let entry = entry.map_err(Error::io(src))?;
            copy_writable(&entry.path(), &dst.join(entry.file_name()))?;
        }
        fs::set_permissions(dst, fs::Permissions::from_mode(md.permissions().mode() & 0o7777 | 0o700))
            .map_err(Error::io(dst))?;
    } else {
        fs::copy(src, dst).map_err(Error::io(dst))?;
        fs::set_permissions(dst, fs::Permissions::from_mode(md.permissions().mode() & 0o7777 | 0o200))
            .map_err(Error::io(dst))?;
    }
    forge_store::tree::set_canonical_mtime(dst)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::dsl::{Input, RunStep};

    fn graph() -> (Forge, NodeId) {
        let mut f = Forge::new();
        let root = f.text("root", "").unwrap().as_package();
        let a = f.run(RunStep { name: "a", sysroot: vec![&root], inputs: vec![], script: "x", env: BTreeMap::new() });
        let a = a.unwrap();
        let top = f.merge("top", &[&a], &[]).unwrap();
        (f, top.node())
    }

    #[test]
    fn a_builtin_target_is_refused_naming_its_kind_and_the_run_steps_it_needs() {
        let (f, top) = graph();
        let err = select(&f, top, None).unwrap_err().to_string();
        assert!(err.contains("`top` is the builtin `merge`"), "{err}");
        assert!(err.contains("run steps to pick from: a "), "{err}");
    }

    #[test]
    fn a_run_step_is_found_by_name_in_the_closure() {
        let (f, top) = graph();
        let id = select(&f, top, Some("a")).unwrap();
        assert_eq!(f.node(id).drv.name, "a");
        let err = select(&f, top, Some("b")).unwrap_err().to_string();
        assert!(err.contains("no run step named `b`") && err.contains(": a"), "{err}");
    }

    #[test]
    fn the_source_copy_is_writable_with_the_store_mtime() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("sub/f"), "x").unwrap();
        std::os::unix::fs::symlink("sub/f", src.join("l")).unwrap();
        fs::set_permissions(src.join("sub/f"), fs::Permissions::from_mode(0o555)).unwrap();
        fs::set_permissions(src.join("sub"), fs::Permissions::from_mode(0o555)).unwrap();
        let dst = dir.path().join("dst");
        copy_writable(&src, &dst).unwrap();
        let md = fs::metadata(dst.join("sub/f")).unwrap();
        assert_eq!(md.mode() & 0o777, 0o755);
        assert_eq!(md.mtime(), 1);
        assert_eq!(fs::metadata(dst.join("sub")).unwrap().mode() & 0o777, 0o755);
        assert_eq!(fs::read_link(dst.join("l")).unwrap(), Path::new("sub/f"));
        fs::set_permissions(src.join("sub"), fs::Permissions::from_mode(0o755)).unwrap();
    }
}
