//! `.path` units -> an OpenRC service, supervised, that runs busybox `inotifyd`
//! on the parent directories of the watched paths and restarts the target
//! service when an event names one of them.
//!
//! The parent directory is watched, not the file: the file may not exist at boot
//! and programs often replace it by rename (openpilot writes params that way).
//! The watcher is named `<stem>-path` so it does not clash with the `<stem>`
//! service it triggers.

use std::collections::{BTreeMap, BTreeSet};

use super::convert::{install_section, unit_section, Ctx, Draft};
use super::depend;
use super::report::Severity;
use super::script::{sh_quote, InitScript};
use super::Error;

/// inotifyd event letters per directive: w close-write, c modify, e metadata,
/// m moved-from, y moved-to, n create, d delete.
const WATCHES: [(&str, &str); 5] = [
    ("PathExists", "ny"),
    ("PathExistsGlob", "ny"),
    ("PathChanged", "wemyd"),
    ("PathModified", "cwemyd"),
    ("DirectoryNotEmpty", "ny"),
];

pub(crate) fn convert(ctx: &mut Ctx) -> Result<Draft, Error> {
    let unit = ctx.unit;
    let name = format!("{}-path", depend::service_name(unit.stem()));
    let target = ctx.take_last("Path", "Unit").map_or_else(|| format!("{}.service", unit.stem()), |v| v.text);
    let Some(target_svc) = depend::service_for_unit(&target) else {
        let line = unit.last("Path", "Unit").map_or(0, |e| e.line);
        return Err(Error::BadValue {
            file: unit.name.clone(),
            line,
            key: "Unit".into(),
            value: target,
            why: "a path unit must start a .service unit".into(),
        });
    };
    let mut script = InitScript { source: unit.name.clone(), ..Default::default() };
    unit_section(ctx, &mut script)?;
    script.vars.entry("description".into()).or_insert_with(|| format!("Watches paths for {target}"));
    let mut dirs: BTreeMap<String, BTreeSet<char>> = BTreeMap::new();
    let mut patterns = BTreeSet::new();
    let mut exists = Vec::new();
    for (key, mask) in WATCHES {
        for v in ctx.take("Path", key) {
            let path = v.text.trim_end_matches('/').to_string();
            if !path.starts_with('/') {
                return Err(ctx.bad(&v, "a watched path must be absolute"));
            }
            let (dir, pattern) = if key == "DirectoryNotEmpty" {
                (path.clone(), format!("{}/*", glob_escape(&path)))
            } else {
                let dir = path.rsplit_once('/').map_or("/", |(d, _)| if d.is_empty() { "/" } else { d }).to_string();
                let pattern = if key == "PathExistsGlob" { path.clone() } else { glob_escape(&path) };
                (dir, pattern)
            };
            dirs.entry(dir).or_default().extend(mask.chars());
            patterns.insert(pattern);
            if key.starts_with("PathExists") || key == "DirectoryNotEmpty" {
                exists.push((key, path));
            }
        }
    }
    if dirs.is_empty() {
        ctx.whole_unit("the path unit watches nothing this converter maps");
        return Ok(Draft::default());
    }
    if let Some(v) = ctx.take_bool("Path", "MakeDirectory")?.filter(|m| *m).and(ctx.take_last("Path", "MakeDirectory"))
    {
        let mode = ctx.take_last("Path", "DirectoryMode").map_or_else(|| "0755".to_string(), |m| m.text);
        for dir in dirs.keys() {
            script.push("start_pre", format!("checkpath -d -m {} {}", sh_quote(&mode), sh_quote(dir)));
        }
        let _ = v;
    }
    for key in ["TriggerLimitIntervalSec", "TriggerLimitBurst"] {
        if let Some(v) = ctx.take_last("Path", key) {
            ctx.note(&v, Severity::Unmapped, "the watcher restarts the service on every matching event");
        }
    }
    let restart = format!("/sbin/rc-service {target_svc} restart");
    let watches: Vec<String> =
        dirs.iter().map(|(d, m)| format!("{}:{}", sh_quote(d), m.iter().collect::<String>())).collect();
    let cases: Vec<&str> = patterns.iter().map(String::as_str).collect();
    let loop_script = format!(
        "exec inotifyd - {} | while read -r event dir name; do case \"$dir/$name\" in {}) {restart} ;; esac; done",
        watches.join(" "),
        cases.join("|"),
    );
    script.vars.insert("command".into(), "/bin/sh".into());
    script.vars.insert("command_args".into(), format!("-c {}", sh_quote(&loop_script)));
    script.vars.insert("supervisor".into(), "supervise-daemon".into());
    // inotifyd exits when a watched directory does not exist yet (/data/params/d
    // appears when openpilot first runs): retry every 2 s, without a limit.
    script.vars.insert("respawn_delay".into(), "2".into());
    script.vars.insert("respawn_max".into(), "0".into());
    script.depend("need", "localmount");
    for (key, path) in exists {
        let test = match key {
            "DirectoryNotEmpty" => format!("[ -n \"$(ls -A {} 2>/dev/null)\" ]", sh_quote(&path)),
            "PathExistsGlob" => format!("ls -d {path} >/dev/null 2>&1"),
            _ => format!("[ -e {} ]", sh_quote(&path)),
        };
        script.push("start_post", format!("if {test}; then {restart}; fi"));
    }
    script.comments.push(format!("Restarts `{target_svc}` when a watched path changes (inotifyd)."));
    let runlevel = install_section(ctx)?;
    Ok(Draft { service: Some(name), script: Some(script), runlevel, ..Draft::default() })
}

/// Escapes the characters a `case` pattern treats as glob syntax.
fn glob_escape(path: &str) -> String {
    let mut out = String::new();
    for c in path.chars() {
        if "*?[]\\|()\"' ;&<>$`".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
