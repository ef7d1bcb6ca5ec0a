//! `forge build`: plan a graph, realise what is missing in parallel, report.
//!
//! Each step takes the exclusive lock of its outputs, re-checks validity (another
//! forge process may have built them meanwhile), builds into a temp dir of the
//! store, and registers the result in one transaction. Two processes building the
//! same graph therefore build each path once.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use forge_store::{PathLock, Store, StorePath};

use crate::builtins;
use crate::drv::Builder;
use crate::dsl::{Forge, Node, NodeId};
use crate::error::{Error, Result};
use crate::fetch::{FetchSpec, Fetcher};
use crate::plan::{self, Plan, State};
use crate::record;
use crate::sandbox::{self, Bind, OutputSink, SandboxSpec};
use crate::sched;

/// How a build runs.
#[derive(Clone)]
pub struct Options {
    /// Downloads fixed-output inputs (mirrors, offline mode, timeouts).
    pub fetcher: Arc<Fetcher>,
    /// Wall-clock limit of one sandboxed step.
    pub timeout: Option<Duration>,
    /// Steps at once (job slots).
    pub jobs: usize,
    /// Keep building independent steps after a failure.
    pub keep_going: bool,
    /// Keep the temp dir of a failed step for inspection.
    pub keep_failed: bool,
    /// Stream every step's output to stderr as well as to its log.
    pub verbose: bool,
    /// Cores each step is told it may use (`FORGE_BUILD_CORES`); not part of any hash.
    pub cores_per_job: usize,
}

impl Options {
    /// Defaults: one job per core, stop at the first failure, no timeout.
    pub fn new(fetcher: Fetcher) -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Options {
            fetcher: Arc::new(fetcher),
            timeout: None,
            jobs: cores,
            keep_going: false,
            keep_failed: false,
            verbose: false,
            cores_per_job: 1,
        }
    }
}

/// What the progress display is told.
#[derive(Debug)]
pub enum Event<'a> {
    /// The plan: how many steps of each kind.
    Planned {
        /// Steps to run in the sandbox or in-process.
        to_build: usize,
        /// Downloads and checkouts.
        to_fetch: usize,
        /// Steps whose outputs the store already has.
        valid: usize,
    },
    /// A step started.
    Started {
        /// Its node.
        node: NodeId,
        /// Its derivation's name.
        name: &'a str,
        /// `fetch`, `git`, `build` (a run step) or `builtin`.
        kind: &'static str,
    },
    /// The step's outputs are valid: `built` is false when another process built
    /// them while this one waited for the lock.
    Finished {
        /// Its node.
        node: NodeId,
        /// Its derivation's name.
        name: &'a str,
        /// How long it took.
        took: Duration,
        /// Whether this process built it.
        built: bool,
    },
    /// A step failed.
    Failed {
        /// Its node.
        node: NodeId,
        /// Its derivation's name.
        name: &'a str,
        /// The error.
        error: &'a str,
        /// Its build log, when it has one.
        log: Option<&'a Path>,
    },
}

/// Receives build events; called from worker threads.
pub trait Progress: Sync {
    /// Called for each event, from any thread.
    fn event(&self, event: Event<'_>);
}

/// A failed step, for the summary.
#[derive(Debug)]
pub struct Failure {
    /// The step's node.
    pub node: NodeId,
    /// Its derivation's name.
    pub name: String,
    /// The error.
    pub error: String,
    /// Its build log, when it has one.
    pub log: Option<PathBuf>,
}

/// The result of a build.
#[derive(Debug)]
pub struct Report {
    /// What was planned.
    pub plan: Plan,
    /// Steps that finished (built, or found built by another process).
    pub built: Vec<NodeId>,
    /// Steps that failed, in node order.
    pub failed: Vec<Failure>,
    /// Steps not run because an input failed: (step name, failed input's name).
    pub skipped: Vec<(String, String)>,
    /// Steps not started because the build stopped (a failure without `keep_going`, or Ctrl-C).
    pub not_started: Vec<String>,
}

impl Report {
    /// Whether every planned step finished.
    pub fn success(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && self.not_started.is_empty()
    }
}

/// Builds `targets` of `forge` into `store`.
pub fn build(
    store: &Store,
    forge: &Forge,
    targets: &[NodeId],
    opts: &Options,
    progress: &dyn Progress,
    stop: &sched::Stop<'_>,
) -> Result<Report> {
    let plan = plan::plan(forge, targets, false, |p| Ok(store.is_valid(p)?))?;
    progress.event(Event::Planned {
        to_build: plan.count(State::ToBuild),
        to_fetch: plan.count(State::ToFetch),
        valid: plan.count(State::Valid),
    });
    let work: Vec<NodeId> = plan.work().collect();
    record::record_derivations(store, work.iter().map(|&id| forge.node(id)))?;
    let prefetched =
        if opts.fetcher.options().offline { fetch_local_first(store, forge, &plan, opts)? } else { BTreeMap::new() };
    let failures = std::sync::Mutex::new(Vec::new());
    let exec = |id: NodeId| {
        let node = forge.node(id);
        let started = Instant::now();
        progress.event(Event::Started { node: id, name: &node.drv.name, kind: kind_of(&node.drv.builder) });
        match realise(store, node, opts) {
            Ok(built) => {
                // A prefetched file was made by this process, before the scheduler ran.
                let (built, took) = match prefetched.get(&id) {
                    Some(&took) if !built => (true, took),
                    _ => (built, started.elapsed()),
                };
                progress.event(Event::Finished { node: id, name: &node.drv.name, took, built });
                Ok(())
            }
            Err(e) => {
                let error = e.to_string();
                let log = Some(record::log_path(store, node.out())).filter(|l| l.exists());
                progress.event(Event::Failed { node: id, name: &node.drv.name, error: &error, log: log.as_deref() });
                let failure = Failure { node: id, name: node.drv.name.clone(), error: error.clone(), log };
                failures.lock().unwrap_or_else(|p| p.into_inner()).push(failure);
                Err(error)
            }
        }
    };
    let sched_opts = sched::Options { jobs: opts.jobs, keep_going: opts.keep_going };
    let r = sched::run(&work, |id| forge.node(id).deps.clone(), sched_opts, stop, exec);
    let name = |id: NodeId| forge.node(id).drv.name.clone();
    let mut failed = failures.into_inner().unwrap_or_else(|p| p.into_inner());
    failed.sort_by_key(|f| f.node);
    Ok(Report {
        built: r.done,
        failed,
        skipped: r.skipped.into_iter().map(|(s, f)| (name(s), name(f))).collect(),
        not_started: r.not_started.into_iter().map(name).collect(),
        plan,
    })
}

/// Offline, every download comes from a local mirror: take them all first, so
/// that missing ones are reported together, each with its URLs and hash.
fn fetch_local_first(store: &Store, forge: &Forge, plan: &Plan, opts: &Options) -> Result<BTreeMap<NodeId, Duration>> {
    let mut missing = Vec::new();
    let mut fetched = BTreeMap::new();
    for id in plan.work() {
        let node = forge.node(id);
        if !matches!(node.drv.builder, Builder::Fetch { .. }) {
            continue;
        }
        let started = Instant::now();
        match realise(store, node, opts) {
            Ok(true) => {
                fetched.insert(id, started.elapsed());
            }
            Err(Error::Fetch(crate::fetch::Error::Missing { input, .. })) => missing.push(input),
            // Other failures surface when the scheduler runs the step again.
            _ => {}
        }
    }
    if missing.is_empty() {
        return Ok(fetched);
    }
    Err(Error::Fetch(crate::fetch::Error::MissingInputs(crate::fetch::MissingInputs(missing))))
}

fn kind_of(b: &Builder) -> &'static str {
    match b {
        Builder::Fetch { .. } => "fetch",
        Builder::Git { .. } => "git",
        Builder::Run { .. } => "build",
        Builder::Builtin { .. } => "builtin",
    }
}

/// Makes every output of `node` valid; `false` when they already were (another
/// process built them while this one waited for their lock).
pub fn realise(store: &Store, node: &Node, opts: &Options) -> Result<bool> {
    // Locks in sorted order, so two processes never wait on each other crosswise.
    let mut locks: Vec<PathLock> = Vec::new();
    for path in node.outputs.values().collect::<BTreeSet<_>>() {
        locks.push(store.lock_path(path)?);
    }
    let mut all_valid = true;
    for path in node.outputs.values() {
        all_valid &= store.is_valid(path)?;
    }
    if all_valid {
        return Ok(false);
    }
    let inputs = input_closure(store, node)?;
    let _held: Vec<PathLock> = inputs.iter().map(|p| store.hold_path(p)).collect::<std::result::Result<_, _>>()?;
    let temp = store.new_temp_dir(&node.drv.name)?;
    let log_file = record::log_path(store, node.out());
    let start = unix_now();
    let result = run_builder(store, node, &inputs, temp.path(), &log_file, opts);
    let status = if result.is_ok() { "success" } else { "failure" };
    record::record_build(store, &node.hash.to_string(), start, unix_now(), status, Some(&log_file))?;
    if let Err(e) = result {
        if opts.keep_failed {
            let kept = temp.keep();
            return Err(Error::StepFailed {
                name: node.drv.name.clone(),
                why: format!("{e} (kept {})", kept.display()),
            });
        }
        return Err(e);
    }
    let mut candidates: Vec<StorePath> = inputs.into_iter().collect();
    candidates.extend(node.outputs.values().cloned());
    let ca = content_address(&node.drv.builder);
    // All outputs in one transaction, so `out` and `dev` may refer to each other.
    let dirs: Vec<PathBuf> = sorted_outputs(node).into_iter().map(|(id, _)| temp.path().join(id)).collect();
    let outputs: Vec<forge_store::Output<'_>> =
        locks.iter().zip(&dirs).map(|(lock, src)| forge_store::Output { src, lock, ca: ca.as_deref() }).collect();
    store.register_outputs(&outputs, &candidates, Some(&node.hash.to_string()))?;
    Ok(true)
}

/// Runs `node`'s builder again into `temp/<output>` without registering anything,
/// holding its inputs (and its registered outputs) against garbage collection.
pub(crate) fn run_builder_for_check(store: &Store, node: &Node, temp: &Path, opts: &Options) -> Result<()> {
    let inputs = input_closure(store, node)?;
    let held: Vec<&StorePath> = inputs.iter().chain(node.outputs.values()).collect();
    let _held: Vec<PathLock> = held.into_iter().map(|p| store.hold_path(p)).collect::<std::result::Result<_, _>>()?;
    let log = store.logs_dir().join(format!("{}.check.log", node.out().base_name()));
    run_builder(store, node, &inputs, temp, &log, opts)
}

/// Outputs in the order their locks were taken (sorted by path).
fn sorted_outputs(node: &Node) -> Vec<(String, StorePath)> {
    let mut outs: Vec<(String, StorePath)> = node.outputs.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    outs.sort_by(|a, b| a.1.cmp(&b.1));
    outs
}

fn content_address(b: &Builder) -> Option<String> {
    match b {
        Builder::Fetch { hash, .. } => Some(format!("fixed:{hash}")),
        Builder::Git { nar_hash, .. } => Some(format!("fixed:r:{nar_hash}")),
        _ => None,
    }
}

/// Every store path the step may read: its inputs and everything they refer to.
pub(crate) fn input_closure(store: &Store, node: &Node) -> Result<BTreeSet<StorePath>> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<StorePath> = node.drv.inputs.iter().cloned().collect();
    while let Some(p) = todo.pop() {
        if seen.contains(&p) {
            continue;
        }
        let info = store
            .query_info(&p)?
            .ok_or_else(|| Error::MissingInput { path: p.to_string(), step: node.drv.name.clone() })?;
        todo.extend(info.references.into_iter().filter(|r| !seen.contains(r)));
        seen.insert(p);
    }
    Ok(seen)
}

/// Runs the step's builder, writing each output `<temp>/<output name>`.
fn run_builder(
    store: &Store,
    node: &Node,
    inputs: &BTreeSet<StorePath>,
    temp: &Path,
    log_file: &Path,
    opts: &Options,
) -> Result<()> {
    let physical = |p: &StorePath| store.physical(p);
    match &node.drv.builder {
        Builder::Run { .. } => run_in_sandbox(store, node, inputs, temp, log_file, opts),
        builder => {
            let mut log = fs::File::create(log_file).map_err(Error::io(log_file))?;
            let _ = writeln!(log, "forge: {} {}", kind_of(builder), node.drv.name);
            let result = match builder {
                Builder::Fetch { urls, hash, executable } => {
                    let spec = FetchSpec { name: node.drv.name.clone(), urls: urls.clone(), hash: hash.clone() };
                    let out = temp.join("out");
                    let fetched = opts.fetcher.fetch(&spec, &out)?;
                    let _ = writeln!(log, "forge: got {} bytes from {}", fetched.size, fetched.source);
                    if *executable {
                        use std::os::unix::fs::PermissionsExt;
                        fs::set_permissions(&out, fs::Permissions::from_mode(0o755)).map_err(Error::io(&out))?;
                    }
                    Ok(())
                }
                Builder::Git { url, rev, nar_hash, subpaths } => {
                    fetch_git(&opts.fetcher, url, rev, nar_hash, subpaths, &temp.join("out"), &mut log)
                }
                Builder::Builtin { name, version, args } => {
                    builtins::run(&builtins::Ctx { physical: &physical }, name, *version, args, &temp.join("out"))
                }
                Builder::Run { .. } => unreachable!("handled above"),
            };
            if let Err(e) = &result {
                let _ = writeln!(log, "forge: failed: {e}");
            }
            result
        }
    }
}

/// Checks out a git revision and checks its NAR hash before it can be registered.
fn fetch_git(
    fetcher: &Fetcher,
    url: &str,
    rev: &str,
    nar_hash: &forge_store::Hash,
    subpaths: &[String],
    out: &Path,
    log: &mut fs::File,
) -> Result<()> {
    let spec = crate::git::GitSpec { url: url.to_owned(), rev: rev.to_owned(), subpaths: subpaths.to_vec() };
    let got = crate::git::fetch(&spec, fetcher.mirrors(), fetcher.options().offline, out)?;
    let _ = writeln!(log, "forge: checked out {rev} from {}", got.source);
    let (actual, _) = forge_store::nar::hash_path(out)?;
    if &actual != nar_hash {
        return Err(Error::HashMismatch {
            what: format!("git checkout of {url} at {rev}"),
            expected: nar_hash.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

/// Runs a `run` step (see [`step_sandbox`]) with its script, logging to `log_file`.
fn run_in_sandbox(
    store: &Store,
    node: &Node,
    inputs: &BTreeSet<StorePath>,
    temp: &Path,
    log_file: &Path,
    opts: &Options,
) -> Result<()> {
    let mut spec = step_sandbox(store, node, inputs, temp)?;
    spec.log = Some(log_file.to_owned());
    spec.timeout = opts.timeout;
    spec.cores = opts.cores_per_job as u32;
    if opts.keep_failed {
        spec.build_dir_host = Some(temp.join("build"));
        spec.keep_failed = true;
    }
    let mut sink: Box<dyn OutputSink> = if opts.verbose { Box::new(sandbox::Inherit) } else { Box::new(Discard) };
    let outcome = sandbox::run_with(&spec, sink.as_mut(), &sandbox::Cancel::default())?;
    if outcome.status.success() {
        return Ok(());
    }
    let kept = outcome.kept_build_dir.map(|d| format!("; build dir kept at {}", d.display())).unwrap_or_default();
    Err(Error::StepFailed {
        name: node.drv.name.clone(),
        why: format!("the builder {}{kept}", describe(outcome.status)),
    })
}

/// The sandbox a `run` step gets, running `/bin/sh -e -c SCRIPT`: its sysroot layers
/// stacked as `/`, `inputs` (its input closure) read-only at their store paths, each
/// output a new writable folder `<temp>/<output>` at its own store path and in
/// `$<output>`, its env, and its system's architecture. `forge shell` opens the same.
pub(crate) fn step_sandbox(
    store: &Store,
    node: &Node,
    inputs: &BTreeSet<StorePath>,
    temp: &Path,
) -> Result<SandboxSpec> {
    let Builder::Run { sysroot, script } = &node.drv.builder else {
        return Err(Error::StepFailed { name: node.drv.name.clone(), why: "it is not a run step".into() });
    };
    let argv = vec!["/bin/sh".to_owned(), "-e".to_owned(), "-c".to_owned(), script.to_owned()];
    let mut spec = SandboxSpec::new(PathBuf::new(), argv);
    spec.root_layers = sysroot.iter().map(|l| store.physical(l)).collect();
    spec.ro_binds = inputs.iter().map(|p| Bind::new(store.physical(p), p.to_string())).collect();
    spec.env = node.drv.env.clone();
    for (id, path) in &node.outputs {
        let dir = temp.join(id);
        fs::create_dir(&dir).map_err(Error::io(&dir))?;
        spec.rw_binds.push(Bind::new(dir, path.to_string()));
        spec.env.insert(id.clone(), path.to_string());
    }
    spec.arch = match node.drv.system.as_str() {
        "aarch64-linux" => sandbox::Arch::Aarch64,
        _ => sandbox::Arch::X86_64,
    };
    Ok(spec)
}

fn describe(status: sandbox::Status) -> String {
    match status {
        sandbox::Status::Exited(c) => format!("exited with status {c}"),
        sandbox::Status::Signaled(s) => format!("was killed by signal {s}"),
        sandbox::Status::TimedOut => "ran past its timeout and was killed".to_owned(),
        sandbox::Status::Interrupted => "was interrupted".to_owned(),
    }
}

/// Drops the builder's output: the log has it.
struct Discard;

impl OutputSink for Discard {
    fn stdout(&mut self, _: &[u8]) {}
    fn stderr(&mut self, _: &[u8]) {}
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Nodes of `plan` whose outputs are missing from the store; for `forge show`.
pub fn missing(plan: &Plan) -> HashSet<NodeId> {
    plan.work().collect()
}
