//! The parallel scheduler: runs a plan's work in job slots, in dependency order.
//!
//! It knows nothing of what a step does: the caller passes an executor. A failed
//! step stops its dependents; without `keep_going` nothing new starts after the
//! first failure (running steps finish), with it every independent step still runs.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Condvar, Mutex};

use crate::dsl::NodeId;

/// Asked before each step starts: `true` means start nothing new.
pub type Stop<'a> = dyn Fn() -> bool + Sync + 'a;

/// Scheduling options.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Job slots: steps running at once.
    pub jobs: usize,
    /// Keep building independent steps after a failure.
    pub keep_going: bool,
}

/// What happened to each step.
#[derive(Debug, Default)]
pub struct Report {
    /// Steps that finished, in the order they did.
    pub done: Vec<NodeId>,
    /// Steps that failed, with their error.
    pub failed: Vec<(NodeId, String)>,
    /// Steps not run because an input failed: (step, the failed step it needed).
    pub skipped: Vec<(NodeId, NodeId)>,
    /// Steps not started because the build stopped (no `--keep-going`, or interrupted).
    pub not_started: Vec<NodeId>,
}

impl Report {
    /// Whether every step ran and none failed.
    pub fn success(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && self.not_started.is_empty()
    }
}

struct State {
    ready: BTreeSet<NodeId>,
    waiting_on: HashMap<NodeId, usize>,
    running: usize,
    stopped: bool,
    report: Report,
}

/// Runs `work` (a set of steps) where `deps(step)` lists its inputs' steps; inputs
/// outside `work` count as done. Once `stop()` says so (Ctrl-C), nothing new starts.
///
/// ```
/// use forge_engine::dsl::NodeId;
/// use forge_engine::sched::{run, Options};
/// // 1 needs 0, 2 needs 1; 3 is independent. Step 1 fails.
/// let deps = |id: NodeId| if id.0 == 0 || id.0 == 3 { vec![] } else { vec![NodeId(id.0 - 1)] };
/// let exec = |id: NodeId| if id.0 == 1 { Err("boom".to_owned()) } else { Ok(()) };
/// let work: Vec<NodeId> = (0..4).map(NodeId).collect();
/// let r = run(&work, deps, Options { jobs: 2, keep_going: true }, &|| false, exec);
/// assert_eq!(r.failed, [(NodeId(1), "boom".to_owned())]);
/// assert_eq!(r.skipped, [(NodeId(2), NodeId(1))]);
/// assert!(r.done.contains(&NodeId(0)) && r.done.contains(&NodeId(3)));
/// ```
pub fn run<D, E>(work: &[NodeId], deps: D, opts: Options, stop: &Stop<'_>, exec: E) -> Report
where
    D: Fn(NodeId) -> Vec<NodeId>,
    E: Fn(NodeId) -> Result<(), String> + Sync,
{
    let in_work: HashSet<NodeId> = work.iter().copied().collect();
    let mut dependents: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    let mut waiting_on = HashMap::new();
    let mut ready = BTreeSet::new();
    for &id in work {
        let needed: Vec<NodeId> = deps(id).into_iter().filter(|d| in_work.contains(d)).collect();
        for d in &needed {
            dependents.entry(*d).or_default().push(id);
        }
        if needed.is_empty() {
            ready.insert(id);
        } else {
            waiting_on.insert(id, needed.len());
        }
    }
    let state = Mutex::new(State { ready, waiting_on, running: 0, stopped: false, report: Report::default() });
    let wake = Condvar::new();
    let workers = opts.jobs.max(1).min(work.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| worker(&state, &wake, &dependents, opts, stop, &exec));
        }
    });
    let mut st = state.into_inner().unwrap_or_else(|e| e.into_inner());
    let finished: HashSet<NodeId> = st
        .report
        .done
        .iter()
        .chain(st.report.failed.iter().map(|(id, _)| id))
        .chain(st.report.skipped.iter().map(|(id, _)| id))
        .copied()
        .collect();
    st.report.not_started = work.iter().copied().filter(|id| !finished.contains(id)).collect();
    st.report.not_started.sort();
    st.report
}

fn worker<E>(
    state: &Mutex<State>,
    wake: &Condvar,
    dependents: &HashMap<NodeId, Vec<NodeId>>,
    opts: Options,
    stop: &Stop<'_>,
    exec: &E,
) where
    E: Fn(NodeId) -> Result<(), String> + Sync,
{
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if stop() {
            st.stopped = true;
        }
        let next = if st.stopped { None } else { st.ready.pop_first() };
        let Some(id) = next else {
            if st.running == 0 {
                wake.notify_all();
                return;
            }
            st = wake.wait(st).unwrap_or_else(|e| e.into_inner());
            continue;
        };
        st.running += 1;
        drop(st);
        let result = exec(id);
        st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.running -= 1;
        match result {
            Ok(()) => {
                st.report.done.push(id);
                for &dep in dependents.get(&id).into_iter().flatten() {
                    let left = st.waiting_on.get_mut(&dep).map(|n| {
                        *n -= 1;
                        *n
                    });
                    if left == Some(0) {
                        st.waiting_on.remove(&dep);
                        st.ready.insert(dep);
                    }
                }
            }
            Err(why) => {
                st.report.failed.push((id, why));
                skip_dependents(&mut st, dependents, id);
                if !opts.keep_going {
                    st.stopped = true;
                }
            }
        }
        wake.notify_all();
    }
}

/// Marks everything that (transitively) needs `failed` as skipped.
fn skip_dependents(st: &mut State, dependents: &HashMap<NodeId, Vec<NodeId>>, failed: NodeId) {
    let mut stack = vec![failed];
    while let Some(id) = stack.pop() {
        for &dep in dependents.get(&id).into_iter().flatten() {
            if st.waiting_on.remove(&dep).is_some() {
                st.report.skipped.push((dep, failed));
                stack.push(dep);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn ids(n: u32) -> Vec<NodeId> {
        (0..n).map(NodeId).collect()
    }

    #[test]
    fn two_slots_run_two_independent_sleeps_at_once() {
        let start = Instant::now();
        let opts = Options { jobs: 2, keep_going: false };
        let r = run(
            &ids(2),
            |_| vec![],
            opts,
            &|| false,
            |_| {
                std::thread::sleep(Duration::from_millis(300));
                Ok(())
            },
        );
        assert!(r.success());
        assert!(start.elapsed() < Duration::from_millis(550), "{:?}", start.elapsed());
    }

    #[test]
    fn dependencies_run_before_dependents() {
        let order = Mutex::new(Vec::new());
        // 0 <- 1 <- 2, and 3 independent.
        let deps = |id: NodeId| if id.0 == 1 || id.0 == 2 { vec![NodeId(id.0 - 1)] } else { vec![] };
        let r = run(&ids(4), deps, Options { jobs: 2, keep_going: false }, &|| false, |id| {
            order.lock().unwrap().push(id.0);
            Ok(())
        });
        assert!(r.success());
        let order = order.into_inner().unwrap();
        let pos = |n| order.iter().position(|&x| x == n).unwrap();
        assert!(pos(0) < pos(1) && pos(1) < pos(2), "{order:?}");
    }

    #[test]
    fn a_failure_skips_dependents_and_keep_going_finishes_the_rest() {
        // 0 fails; 1 needs 0; 2 and 3 are independent.
        let deps = |id: NodeId| if id.0 == 1 { vec![NodeId(0)] } else { vec![] };
        let exec = |id: NodeId| if id.0 == 0 { Err("boom".to_owned()) } else { Ok(()) };
        let r = run(&ids(4), deps, Options { jobs: 1, keep_going: true }, &|| false, exec);
        assert_eq!(r.failed, vec![(NodeId(0), "boom".to_owned())]);
        assert_eq!(r.skipped, vec![(NodeId(1), NodeId(0))]);
        assert_eq!(r.done, vec![NodeId(2), NodeId(3)]);
    }

    #[test]
    fn without_keep_going_nothing_new_starts_after_a_failure() {
        let exec = |id: NodeId| if id.0 == 0 { Err("boom".to_owned()) } else { Ok(()) };
        let r = run(&ids(4), |_| vec![], Options { jobs: 1, keep_going: false }, &|| false, exec);
        assert_eq!(r.failed.len(), 1);
        assert_eq!(r.not_started, vec![NodeId(1), NodeId(2), NodeId(3)]);
    }

    #[test]
    fn the_stop_flag_starts_nothing_new() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = AtomicBool::new(false);
        let flag = || stop.load(Ordering::Relaxed);
        let r = run(
            &ids(3),
            |_| vec![],
            Options { jobs: 1, keep_going: true },
            &flag,
            |_| {
                stop.store(true, Ordering::Relaxed);
                Ok(())
            },
        );
        assert_eq!(r.done.len(), 1);
        assert_eq!(r.not_started.len(), 2);
    }
}
