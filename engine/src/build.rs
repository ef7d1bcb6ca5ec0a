//! `forge build`: plan a graph, realise what is missing in parallel, report.
//!
//! Each step takes the exclusive lock of its outputs, re-checks validity (another
//! forge process may have built them meanwhile), builds into a temp dir of the
//! store, and registers the result in one transaction. Two processes building the
//! same graph therefore build each path once.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use forge_store::{PathLock, Store, StorePath};

use crate::builtins;
use crate::drv::Builder;
use crate::dsl::{Forge, Node, NodeId};
use crate::error::{Error, Result};
use crate::plan::{self, Plan, State};
use crate::record;
use crate::sched;

/// How a build runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Steps at once (job slots).
    pub jobs: usize,
    /// Keep building independent steps after a failure.
    pub keep_going: bool,
    /// Keep the temp dir of a failed step for inspection.
    pub keep_failed: bool,
    /// Stream every step's output to stderr as well as to its log.
    pub verbose: bool,
    /// Cores each step is told it may use (`FORGE_CORES`); not part of any hash.
    pub cores_per_job: usize,
}

impl Default for Options {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Options { jobs: cores, keep_going: false, keep_failed: false, verbose: false, cores_per_job: 1 }
    }
}

/// What the progress display is told.
#[derive(Debug)]
pub enum Event<'a> {
    /// The plan: how many steps of each kind.
    Planned {
        to_build: usize,
        to_fetch: usize,
        valid: usize,
    },
    Started {
        node: NodeId,
        name: &'a str,
        kind: &'static str,
    },
    Finished {
        node: NodeId,
        name: &'a str,
        took: Duration,
    },
    Failed {
        node: NodeId,
        name: &'a str,
        error: &'a str,
        log: Option<&'a Path>,
    },
}

/// Receives build events; called from worker threads.
pub trait Progress: Sync {
    fn event(&self, event: Event<'_>);
}

/// A failed step, for the summary.
#[derive(Debug)]
pub struct Failure {
    pub node: NodeId,
    pub name: String,
    pub error: String,
    pub log: Option<PathBuf>,
}

/// The result of a build.
#[derive(Debug)]
pub struct Report {
    pub plan: Plan,
    pub built: Vec<NodeId>,
    pub failed: Vec<Failure>,
    /// Steps not run because an input failed: (step name, failed input's name).
    pub skipped: Vec<(String, String)>,
    pub not_started: Vec<String>,
}

impl Report {
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
    stop: &AtomicBool,
) -> Result<Report> {
    let plan = plan::plan(forge, targets, false, |p| Ok(store.is_valid(p)?))?;
    progress.event(Event::Planned {
        to_build: plan.count(State::ToBuild),
        to_fetch: plan.count(State::ToFetch),
        valid: plan.count(State::Valid),
    });
    let work: Vec<NodeId> = plan.work().collect();
    record::record_derivations(store, work.iter().map(|&id| forge.node(id)))?;
    let failures = std::sync::Mutex::new(Vec::new());
    let exec = |id: NodeId| {
        let node = forge.node(id);
        let started = Instant::now();
        progress.event(Event::Started { node: id, name: &node.drv.name, kind: kind_of(&node.drv.builder) });
        match realise(store, node, opts) {
            Ok(()) => {
                progress.event(Event::Finished { node: id, name: &node.drv.name, took: started.elapsed() });
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

fn kind_of(b: &Builder) -> &'static str {
    match b {
        Builder::Fetch { .. } => "fetch",
        Builder::Git { .. } => "git",
        Builder::Run { .. } => "build",
        Builder::Builtin { .. } => "builtin",
    }
}

/// Makes every output of `node` valid.
pub fn realise(store: &Store, node: &Node, opts: &Options) -> Result<()> {
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
        return Ok(());
    }
    let inputs = input_closure(store, node)?;
    let _held: Vec<PathLock> = inputs.iter().map(|p| store.hold_path(p)).collect::<std::result::Result<_, _>>()?;
    let temp = store.new_temp_dir(&node.drv.name)?;
    let log_file = record::log_path(store, node.out());
    let start = unix_now();
    let result = run_builder(store, node, temp.path(), &log_file, opts);
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
    for (lock, (id, _path)) in locks.iter().zip(sorted_outputs(node)) {
        let built = temp.path().join(&id);
        store.register(&built, lock, &candidates, Some(&node.hash.to_string()), ca.as_deref())?;
    }
    Ok(())
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
fn input_closure(store: &Store, node: &Node) -> Result<BTreeSet<StorePath>> {
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
fn run_builder(store: &Store, node: &Node, temp: &Path, log_file: &Path, opts: &Options) -> Result<()> {
    let mut log = fs::File::create(log_file).map_err(Error::io(log_file))?;
    let _ = writeln!(log, "forge: {} {}", kind_of(&node.drv.builder), node.drv.name);
    match &node.drv.builder {
        Builder::Builtin { name, version, args } => {
            let physical = |p: &StorePath| store.physical(p);
            builtins::run(&builtins::Ctx { physical: &physical }, name, *version, args, &temp.join("out"))
        }
        other => Err(Error::StepFailed {
            name: node.drv.name.clone(),
            why: format!("no executor for `{}` steps in this build of forge", kind_of(other)),
        }),
    }
    .inspect_err(|e| {
        let _ = writeln!(log, "forge: failed: {e}");
        let _ = opts;
    })
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Nodes of `plan` whose outputs are missing from the store; for `forge show`.
pub fn missing(plan: &Plan) -> HashSet<NodeId> {
    plan.work().collect()
}
