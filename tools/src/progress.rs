//! How a build shows its progress: a live view on a terminal, timestamped plain
//! lines otherwise, or JSON events (one object a line on stdout) for tools.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use forge_engine::build::{Event, Progress};
use forge_engine::dsl::NodeId;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Picks the display: JSON when asked, live on a terminal, plain otherwise.
pub fn for_terminal(json: bool) -> Box<dyn Progress> {
    if json {
        Box::new(Json)
    } else if std::io::stderr().is_terminal() {
        Box::new(Live::new())
    } else {
        Box::new(Plain { start: Instant::now() })
    }
}

/// `[   1.2s] built hello-2.10 (14.3s)` lines on stderr.
pub struct Plain {
    start: Instant,
}

impl Progress for Plain {
    fn event(&self, e: Event<'_>) {
        let t = self.start.elapsed().as_secs_f64();
        let line = match e {
            Event::Planned { to_build, to_fetch, valid } => {
                format!("plan: {to_fetch} to fetch, {to_build} to build, {valid} already in the store")
            }
            Event::Started { name, kind, .. } => format!("{kind} {name}"),
            Event::Finished { name, took, built: true, .. } => format!("done {name} ({})", secs(took)),
            Event::Finished { name, .. } => format!("done {name} (built meanwhile by another forge process)"),
            Event::Failed { name, error, .. } => format!("FAILED {name}: {error}"),
        };
        eprintln!("[{t:7.1}s] {line}");
    }
}

/// One JSON object per event on stdout.
pub struct Json;

impl Progress for Json {
    fn event(&self, e: Event<'_>) {
        let v = match e {
            Event::Planned { to_build, to_fetch, valid } => {
                serde_json::json!({"event": "planned", "toBuild": to_build, "toFetch": to_fetch, "valid": valid})
            }
            Event::Started { node, name, kind } => {
                serde_json::json!({"event": "started", "node": node.0, "name": name, "kind": kind})
            }
            Event::Finished { node, name, took, built } => serde_json::json!({
                "event": "finished", "node": node.0, "name": name, "seconds": took.as_secs_f64(), "built": built,
            }),
            Event::Failed { node, name, error, log } => serde_json::json!({
                "event": "failed", "node": node.0, "name": name, "error": error,
                "log": log.map(|l| l.display().to_string()),
            }),
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{v}");
    }
}

/// An overall bar plus one spinner per running step.
pub struct Live {
    multi: MultiProgress,
    total: ProgressBar,
    running: Mutex<BTreeMap<NodeId, ProgressBar>>,
}

impl Live {
    fn new() -> Self {
        let multi = MultiProgress::new();
        let total = multi.add(ProgressBar::new(0));
        total.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} steps {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Live { multi, total, running: Mutex::new(BTreeMap::new()) }
    }
}

impl Progress for Live {
    fn event(&self, e: Event<'_>) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        match e {
            Event::Planned { to_build, to_fetch, valid } => {
                self.total.set_length((to_build + to_fetch) as u64);
                self.total.set_message(format!("({valid} already in the store)"));
            }
            Event::Started { node, name, kind } => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {elapsed:>4} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(format!("{kind} {name}"));
                bar.enable_steady_tick(Duration::from_millis(120));
                running.insert(node, bar);
            }
            Event::Finished { node, .. } => {
                if let Some(bar) = running.remove(&node) {
                    bar.finish_and_clear();
                }
                self.total.inc(1);
            }
            Event::Failed { node, name, error, .. } => {
                if let Some(bar) = running.remove(&node) {
                    bar.finish_and_clear();
                }
                let _ = self.multi.println(format!("FAILED {name}: {error}"));
                self.total.inc(1);
            }
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.total.finish_and_clear();
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}
