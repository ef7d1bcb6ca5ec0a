//! `.timer` units -> lines of busybox crond's `/etc/crontabs/root`.
//!
//! Mapped: `OnCalendar=` keywords (minutely ... yearly) and the calendar forms
//! `[Weekdays] [*-MM-DD] [HH:MM[:00]]` whose fields are `*`, numbers, lists and
//! `a/step`; `OnUnitActiveSec=`/`OnActiveSec=` intervals that divide an hour or a
//! day become `*/N` schedules (approximated: cron fires on the clock, not relative
//! to the last run). Everything else (`OnBootSec=`, `Persistent=`, seconds,
//! years, time zones...) is reported.

use super::convert::{install_section, Ctx, Draft, Value};
use super::depend;
use super::report::Severity;
use super::Error;

/// Converts a timer: one cron line per mappable schedule, preceded by a comment.
pub(crate) fn convert(ctx: &mut Ctx, command: Option<&str>) -> Result<Draft, Error> {
    let target = match ctx.take_last("Timer", "Unit") {
        Some(v) => v.text,
        None => format!("{}.service", ctx.unit.stem()),
    };
    let service = match depend::service_for_unit(&target) {
        Some(svc) => svc,
        None => return Err(ctx_bad(ctx, "Unit", &target, "a timer must start a .service unit")),
    };
    let command = command.map_or_else(|| format!("/sbin/rc-service {service} restart"), str::to_string);
    let description = ctx.take_last("Unit", "Description").map(|v| v.text);
    let mut schedules = Vec::new();
    for v in ctx.take("Timer", "OnCalendar") {
        match calendar(&v.text) {
            Ok(s) => schedules.push(s),
            Err(why) => ctx.note(&v, Severity::Unmapped, &why),
        }
    }
    for key in ["OnUnitActiveSec", "OnActiveSec", "OnUnitInactiveSec"] {
        for v in ctx.take("Timer", key) {
            interval(ctx, &v, &mut schedules);
        }
    }
    for key in ["OnBootSec", "OnStartupSec"] {
        for v in ctx.take("Timer", key) {
            ctx.note(
                &v,
                Severity::Unmapped,
                "busybox crond has no boot-relative schedule; the periodic schedule starts with crond",
            );
        }
    }
    for (key, why) in [
        ("Persistent", "crond does not catch up on runs missed while the device was off"),
        ("AccuracySec", "cron runs on the minute"),
        ("RandomizedDelaySec", "cron adds no random delay"),
        ("WakeSystem", "cron cannot wake the system"),
    ] {
        if let Some(v) = ctx.take_last("Timer", key) {
            ctx.note(&v, Severity::Approximated, why);
        }
    }
    if schedules.is_empty() {
        ctx.whole_unit("no schedule of this timer maps to cron: nothing is written");
        return Ok(Draft::default());
    }
    let _ = install_section(ctx)?;
    let mut cron = vec![format!("# {}{}", ctx.unit.name, description.map(|d| format!(": {d}")).unwrap_or_default())];
    schedules.sort();
    schedules.dedup();
    cron.extend(schedules.into_iter().map(|s| format!("{s} {command}")));
    Ok(Draft { cron, ..Draft::default() })
}

fn ctx_bad(ctx: &Ctx, key: &str, value: &str, why: &str) -> Error {
    let line = ctx.unit.last("Timer", key).map_or(0, |e| e.line);
    Error::BadValue { file: ctx.unit.name.clone(), line, key: key.into(), value: value.into(), why: why.into() }
}

/// A time-span schedule -> `*/N` cron fields, when N divides an hour or a day.
fn interval(ctx: &mut Ctx, v: &Value, schedules: &mut Vec<String>) {
    let Some(secs) = super::unit::parse_timespan(&v.text) else {
        ctx.note(v, Severity::Unmapped, "not a time span");
        return;
    };
    let minutes = (secs / 60.0).round() as u64;
    let schedule = match minutes {
        0 | 1 => Some("* * * * *".to_string()),
        m if m < 60 && 60 % m == 0 => Some(format!("*/{m} * * * *")),
        60 => Some("0 * * * *".to_string()),
        m if m % 60 == 0 && m < 1440 && 1440 % m == 0 => Some(format!("0 */{} * * *", m / 60)),
        1440 => Some("0 0 * * *".to_string()),
        _ => None,
    };
    match schedule {
        Some(s) => {
            schedules.push(s);
            ctx.note(
                v,
                Severity::Approximated,
                "cron runs it on clock boundaries every interval, not relative to the last activation",
            );
        }
        None => {
            ctx.note(v, Severity::Unmapped, "the interval does not divide an hour or a day, which cron cannot express")
        }
    }
}

/// An `OnCalendar=` expression -> the five cron time fields.
pub fn calendar(expr: &str) -> Result<String, String> {
    let keyword = match expr.trim() {
        "minutely" => Some("* * * * *"),
        "hourly" => Some("0 * * * *"),
        "daily" => Some("0 0 * * *"),
        "weekly" => Some("0 0 * * 1"),
        "monthly" => Some("0 0 1 * *"),
        "yearly" | "annually" => Some("0 0 1 1 *"),
        "quarterly" => Some("0 0 1 1,4,7,10 *"),
        "semiannually" => Some("0 0 1 1,7 *"),
        _ => None,
    };
    if let Some(k) = keyword {
        return Ok(k.to_string());
    }
    let mut words: Vec<&str> = expr.split_whitespace().collect();
    let mut dow = "*".to_string();
    if words.first().is_some_and(|w| w.starts_with(|c: char| c.is_ascii_alphabetic())) {
        dow = weekdays(words.remove(0))?;
    }
    let (mut month, mut day) = ("*".to_string(), "*".to_string());
    if words.first().is_some_and(|w| w.contains('-')) {
        let date: Vec<&str> = words.remove(0).split('-').collect();
        let [year, m, d] = date[..] else { return Err("the date is not YYYY-MM-DD".to_string()) };
        if year != "*" {
            return Err("cron has no year field".to_string());
        }
        month = field(m, 1, 12)?;
        day = field(d, 1, 31)?;
    }
    let (mut hour, mut minute) = ("0".to_string(), "0".to_string());
    if let Some(time) = words.first() {
        let parts: Vec<&str> = time.split(':').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err("the time is not HH:MM[:SS]".to_string());
        }
        if parts.get(2).is_some_and(|s| !s.trim_start_matches('0').is_empty()) {
            return Err("cron has no seconds: only :00 maps".to_string());
        }
        hour = field(parts[0], 0, 23)?;
        minute = field(parts[1], 0, 59)?;
        words.remove(0);
    }
    if !words.is_empty() {
        return Err(format!("`{}` (a time zone?) cannot be expressed in cron", words.join(" ")));
    }
    Ok(format!("{minute} {hour} {day} {month} {dow}"))
}

/// One calendar field (`*`, `5`, `1,15`, `0/15`, `*/10`) -> cron syntax.
fn field(text: &str, min: u32, max: u32) -> Result<String, String> {
    if text == "*" {
        return Ok("*".to_string());
    }
    if let Some((start, step)) = text.split_once('/') {
        let step = number(step, 1, max)?;
        return Ok(match start {
            "*" => format!("*/{step}"),
            s if number(s, min, max)? == min => format!("*/{step}"),
            s => format!("{}-{max}/{step}", number(s, min, max)?),
        });
    }
    let mut out = Vec::new();
    for part in text.split(',') {
        match part.split_once("..") {
            Some((a, b)) => out.push(format!("{}-{}", number(a, min, max)?, number(b, min, max)?)),
            None => out.push(number(part, min, max)?.to_string()),
        }
    }
    Ok(out.join(","))
}

fn number(text: &str, min: u32, max: u32) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("`{text}` is not a number from {min} to {max}")),
    }
}

/// `Mon,Wed..Fri` -> `1,3-5`.
fn weekdays(text: &str) -> Result<String, String> {
    const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let day = |name: &str| {
        let lower = name.to_ascii_lowercase();
        DAYS.iter().position(|d| lower.starts_with(d)).ok_or_else(|| format!("`{name}` is not a weekday"))
    };
    let mut out = Vec::new();
    for part in text.split(',') {
        match part.split_once("..") {
            Some((a, b)) => out.push(format!("{}-{}", day(a)?, day(b)?)),
            None => out.push(day(part)?.to_string()),
        }
    }
    Ok(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_keywords_and_forms_map_to_cron_fields() {
        assert_eq!(calendar("hourly").unwrap(), "0 * * * *");
        assert_eq!(calendar("weekly").unwrap(), "0 0 * * 1");
        assert_eq!(calendar("*-*-* 04:30:00").unwrap(), "30 4 * * *");
        assert_eq!(calendar("Mon..Fri *-*-* 22:05").unwrap(), "5 22 * * 1-5");
        assert_eq!(calendar("*-*-01 00:00:00").unwrap(), "0 0 1 * *");
        assert_eq!(calendar("*-*-* *:0/15:00").unwrap(), "*/15 * * * *");
        assert_eq!(calendar("Sat,Sun 10:00").unwrap(), "0 10 * * 6,0");
    }

    #[test]
    fn calendar_forms_cron_cannot_express_are_refused() {
        assert!(calendar("2024-*-* 00:00:00").unwrap_err().contains("year"));
        assert!(calendar("*-*-* 00:00:30").unwrap_err().contains("seconds"));
        assert!(calendar("*-*-* 25:00").unwrap_err().contains("0 to 23"));
        assert!(calendar("*-*-* 00:00 Europe/Berlin").unwrap_err().contains("time zone"));
    }
}
