//! Progress of a long download on stderr: a bar on a terminal, else a plain line
//! every 10 seconds (logs and CI keep those readable).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Downloads known to be smaller than this show no progress: they are over at once.
const SMALL: u64 = 4 << 20;

/// Plain progress lines come this often.
const LINE_EVERY: Duration = Duration::from_secs(10);

pub(super) enum Progress {
    Off,
    Bar(ProgressBar),
    Lines { label: String, total: Option<u64>, last: Instant, started: Instant },
}

impl Progress {
    pub fn new(enabled: bool, name: &str, url: &str, total: Option<u64>, have: u64) -> Progress {
        if !enabled || total.is_some_and(|t| t < SMALL) {
            return Progress::Off;
        }
        if !std::io::stderr().is_terminal() {
            let now = Instant::now();
            return Progress::Lines { label: format!("{name} from {url}"), total, last: now, started: now };
        }
        let bar = match total {
            Some(t) => ProgressBar::new(t),
            None => ProgressBar::new_spinner(),
        };
        let template = "{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}";
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.set_message(name.to_owned());
        bar.set_position(have);
        Progress::Bar(bar)
    }

    pub fn set(&mut self, have: u64) {
        match self {
            Progress::Off => {}
            Progress::Bar(bar) => bar.set_position(have),
            Progress::Lines { label, total, last, started } => {
                if last.elapsed() >= LINE_EVERY {
                    *last = Instant::now();
                    let mib = |n: u64| n as f64 / (1 << 20) as f64;
                    let of = total.map(|t| format!(" of {:.1} MiB", mib(t))).unwrap_or_default();
                    let rate = mib(have) / started.elapsed().as_secs_f64().max(0.001);
                    eprintln!("fetching {label}: {:.1} MiB{of} ({rate:.1} MiB/s)", mib(have));
                }
            }
        }
    }

    pub fn finish(&mut self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }

    pub fn abandon(&mut self) {
        if let Progress::Bar(bar) = self {
            bar.abandon();
        }
    }
}
