//! A systemd unit-file parser: sections, repeated keys, `\` line continuations,
//! comments, systemd's command-line quoting and its specifiers (`%n %i %%` ...).
//!
//! It keeps every assignment in file order with its line number, so the converter
//! can report each directive it cannot map by where it came from.

use super::Error;

/// One `Key=Value` assignment, as written (after joining continuation lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The section it appeared in, without brackets (`Service`).
    pub section: String,
    /// The key (`ExecStart`).
    pub key: String,
    /// The value, trimmed, continuation lines joined; specifiers not yet expanded.
    pub value: String,
    /// 1-based line number where the assignment starts.
    pub line: usize,
}

/// A parsed unit file: its name (`magic.service`) and its assignments in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFile {
    /// The unit's file name (`magic.service`).
    pub name: String,
    /// Every assignment, in file order.
    pub entries: Vec<Entry>,
}

/// The kind of unit, from its name's suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum UnitKind {
    /// `.service`: an init script.
    Service,
    /// `.timer`: cron lines.
    Timer,
    /// `.path`: an inotifyd watcher service.
    Path,
    /// Any other suffix (`.mount`, `.socket`, `.target`...): parsed, not converted.
    Other,
}

impl UnitFile {
    /// Parses `text` as the unit called `name` (a file name such as `magic.service`).
    pub fn parse(name: &str, text: &str) -> Result<UnitFile, Error> {
        let mut entries = Vec::new();
        let mut section: Option<String> = None;
        let mut lines = text.lines().enumerate();
        while let Some((index, raw)) = lines.next() {
            let line = index + 1;
            let mut logical = raw.trim().to_string();
            if logical.is_empty() || logical.starts_with('#') || logical.starts_with(';') {
                continue;
            }
            // systemd joins a line ending in `\` with the next, the backslash becoming a space;
            // comment lines inside a continuation are skipped.
            while logical.ends_with('\\') {
                logical.pop();
                logical.push(' ');
                for (_, next) in lines.by_ref() {
                    if !next.trim_start().starts_with(['#', ';']) {
                        logical.push_str(next.trim());
                        break;
                    }
                }
            }
            let logical = logical.trim();
            if let Some(rest) = logical.strip_prefix('[') {
                section = Some(parse_header(name, line, rest)?);
                continue;
            }
            let Some(current) = &section else {
                return Err(parse_error(name, line, "assignment before any [Section] header"));
            };
            let Some((key, value)) = logical.split_once('=') else {
                return Err(parse_error(name, line, &format!("`{logical}` is neither `Key=Value` nor a [Section]")));
            };
            let key = key.trim();
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(parse_error(name, line, &format!("`{key}` is not a valid key name")));
            }
            entries.push(Entry {
                section: current.clone(),
                key: key.to_string(),
                value: value.trim().to_string(),
                line,
            });
        }
        Ok(UnitFile { name: name.to_string(), entries })
    }

    /// The unit's kind, from the suffix of its name.
    pub fn kind(&self) -> UnitKind {
        match self.name.rsplit_once('.').map(|(_, s)| s) {
            Some("service") => UnitKind::Service,
            Some("timer") => UnitKind::Timer,
            Some("path") => UnitKind::Path,
            _ => UnitKind::Other,
        }
    }

    /// The name without its suffix (`magic` for `magic.service`, `getty@tty1` for `getty@tty1.service`).
    pub fn stem(&self) -> &str {
        self.name.rsplit_once('.').map_or(&self.name, |(stem, _)| stem)
    }

    /// The instance of a template instance (`tty1` in `getty@tty1.service`), or "".
    pub fn instance(&self) -> &str {
        self.stem().split_once('@').map_or("", |(_, i)| i)
    }

    /// The effective assignments of a list-valued key: an empty assignment resets
    /// the list, as systemd does for `ExecStartPre=`, `After=`, `Environment=`...
    pub fn list<'a>(&'a self, section: &str, key: &str) -> Vec<&'a Entry> {
        let mut out = Vec::new();
        for e in self.entries.iter().filter(|e| e.section == section && e.key == key) {
            if e.value.is_empty() {
                out.clear();
            } else {
                out.push(e);
            }
        }
        out
    }

    /// The last assignment of a single-valued key (later assignments win in systemd).
    pub fn last<'a>(&'a self, section: &str, key: &str) -> Option<&'a Entry> {
        self.entries.iter().rev().find(|e| e.section == section && e.key == key)
    }
}

fn parse_header(name: &str, line: usize, rest: &str) -> Result<String, Error> {
    match rest.strip_suffix(']') {
        Some(s) if !s.is_empty() && !s.contains(['[', ']']) => Ok(s.to_string()),
        _ => Err(parse_error(name, line, &format!("malformed section header `[{rest}`"))),
    }
}

fn parse_error(file: &str, line: usize, why: &str) -> Error {
    Error::Parse { file: file.to_string(), line, why: why.to_string() }
}

/// A command of `ExecStart=` and friends, with systemd's prefixes decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecCommand {
    /// `-`: a failing exit status is ignored.
    pub ignore_failure: bool,
    /// `@`: the second word is `argv[0]` (the process name) instead of the path.
    pub argv0: Option<String>,
    /// `+`, `!` or `!!`: runs with full privileges regardless of `User=`.
    pub privileged: bool,
    /// `:`: no `$VAR` substitution in the arguments.
    pub no_env_expansion: bool,
    /// The program then its arguments, unquoted.
    pub argv: Vec<String>,
}

impl ExecCommand {
    /// Parses one `Exec*=` value: prefixes, then words with systemd quoting.
    pub fn parse(value: &str) -> Result<ExecCommand, String> {
        let mut cmd = ExecCommand {
            ignore_failure: false,
            argv0: None,
            privileged: false,
            no_env_expansion: false,
            argv: Vec::new(),
        };
        let mut rest = value.trim_start();
        let mut wants_argv0 = false;
        loop {
            if let Some(r) = rest.strip_prefix("!!").or_else(|| rest.strip_prefix(['+', '!'])) {
                cmd.privileged = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix('-') {
                cmd.ignore_failure = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix('@') {
                wants_argv0 = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix(':') {
                cmd.no_env_expansion = true;
                rest = r;
            } else {
                break;
            }
        }
        let mut words = split_words(rest)?;
        if words.is_empty() {
            return Err("the command is empty".to_string());
        }
        if wants_argv0 {
            if words.len() < 2 {
                return Err("`@` needs the program and its argv[0]".to_string());
            }
            cmd.argv0 = Some(words.remove(1));
        }
        cmd.argv = words;
        Ok(cmd)
    }

    /// The script of a shell wrapper (`/bin/sh -c "..."`), with the shell's path.
    pub fn shell_script(&self) -> Option<(&str, &str)> {
        let shell = self.argv.first()?;
        let base = shell.rsplit('/').next().unwrap_or(shell);
        let flag = self.argv.get(1)?;
        let is_c = flag.starts_with('-') && flag.ends_with('c') && flag[1..].chars().all(|c| c.is_ascii_lowercase());
        if matches!(base, "sh" | "bash" | "dash" | "ash") && is_c && self.argv.len() == 3 {
            Some((shell, &self.argv[2]))
        } else {
            None
        }
    }
}

/// Splits a value into words the way systemd does for command lines and lists:
/// whitespace separates, `"..."` and `'...'` quote, C-style backslash escapes.
pub fn split_words(value: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (c, quote) {
                ('\\', _) => word.push(unescape(&mut chars)?),
                (q, None) if q == '"' || q == '\'' => quote = Some(q),
                (q, Some(open)) if q == open => quote = None,
                (w, None) if w.is_whitespace() => break,
                (other, _) => word.push(other),
            }
        }
        if let Some(open) = quote {
            return Err(format!("unterminated {open} quote"));
        }
        words.push(word);
    }
}

fn unescape(chars: &mut std::iter::Peekable<std::str::Chars>) -> Result<char, String> {
    let c = chars.next().ok_or("a backslash at the end of the value")?;
    Ok(match c {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        'a' => '\x07',
        'b' => '\x08',
        'f' => '\x0c',
        'v' => '\x0b',
        's' => ' ',
        'x' => {
            let hex: String = (0..2).filter_map(|_| chars.next()).collect();
            u8::from_str_radix(&hex, 16).map_err(|_| format!("bad escape \\x{hex}"))? as char
        }
        other => other,
    })
}

/// Expands systemd specifiers in `value` for the unit `unit`. Returns the expanded
/// text and the specifiers it could not expand (left as written): those that depend
/// on the running machine or user (`%H`, `%u`, `%h`...).
pub fn expand_specifiers(value: &str, unit: &UnitFile) -> (String, Vec<String>) {
    let mut out = String::with_capacity(value.len());
    let mut unknown = Vec::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(spec) = chars.next() else {
            out.push('%');
            break;
        };
        match specifier(spec, unit) {
            Some(text) => out.push_str(&text),
            None => {
                out.push('%');
                out.push(spec);
                unknown.push(format!("%{spec}"));
            }
        }
    }
    (out, unknown)
}

/// The value of a specifier that is fixed for a system unit, or None.
fn specifier(spec: char, unit: &UnitFile) -> Option<String> {
    let stem = unit.stem();
    let prefix = stem.split_once('@').map_or(stem, |(p, _)| p);
    Some(match spec {
        '%' => "%".to_string(),
        'n' => unit.name.clone(),
        'N' => stem.to_string(),
        'p' => prefix.to_string(),
        'P' => unescape_name(prefix),
        'i' => unit.instance().to_string(),
        'I' => unescape_name(unit.instance()),
        'j' => prefix.rsplit('-').next().unwrap_or(prefix).to_string(),
        't' => "/run".to_string(),
        'S' => "/var/lib".to_string(),
        'C' => "/var/cache".to_string(),
        'L' => "/var/log".to_string(),
        'E' => "/etc".to_string(),
        'T' => "/tmp".to_string(),
        'V' => "/var/tmp".to_string(),
        _ => return None,
    })
}

/// systemd's name unescaping: `-` is `/`, `\xNN` a byte.
fn unescape_name(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c == '-' {
            out.push('/');
            rest = &rest[1..];
        } else if let Some(hex) = rest.strip_prefix("\\x").and_then(|r| r.get(..2)) {
            match u8::from_str_radix(hex, 16) {
                Ok(b) => out.push(b as char),
                Err(_) => out.push_str(&rest[..4]),
            }
            rest = &rest[4..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Parses a systemd time span (`5`, `100ms`, `2min 30s`, `1h`) into seconds.
pub fn parse_timespan(value: &str) -> Option<f64> {
    let value = value.trim();
    if value == "infinity" || value.is_empty() {
        return None;
    }
    let mut total = 0.0;
    let mut rest = value;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "" | "s" | "sec" | "second" | "seconds" => 1.0,
            "us" | "usec" => 1e-6,
            "ms" | "msec" => 1e-3,
            "m" | "min" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86400.0,
            "w" | "week" | "weeks" => 604800.0,
            "M" | "month" | "months" => 2_629_800.0,
            "y" | "year" | "years" => 31_557_600.0,
            _ => return None,
        };
        total += number * factor;
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_lines_join_with_a_space_and_comments_are_skipped() {
        let text = "# top\n[Service]\n; note\nExecStart=/bin/echo a \\\n  b \\\n# inner\n  c\nUser=comma\n";
        let unit = UnitFile::parse("x.service", text).unwrap();
        assert_eq!(unit.entries[0].value, "/bin/echo a  b  c");
        assert_eq!(unit.entries[0].line, 4);
        assert_eq!(unit.entries[1].key, "User");
        assert_eq!(unit.entries[1].line, 8);
    }

    #[test]
    fn an_empty_assignment_resets_a_list() {
        let text = "[Service]\nExecStartPre=/a\nExecStartPre=\nExecStartPre=/b\n";
        let unit = UnitFile::parse("x.service", text).unwrap();
        let values: Vec<_> = unit.list("Service", "ExecStartPre").iter().map(|e| e.value.as_str()).collect();
        assert_eq!(values, ["/b"]);
    }

    #[test]
    fn malformed_lines_name_the_file_and_line() {
        let err = UnitFile::parse("bad.service", "[Unit]\nDescription=x\nnot an assignment\n").unwrap_err();
        assert_eq!(err.to_string(), "bad.service:3: `not an assignment` is neither `Key=Value` nor a [Section]");
        let err = UnitFile::parse("bad.service", "Description=x\n").unwrap_err();
        assert!(err.to_string().starts_with("bad.service:1: assignment before"), "{err}");
        let err = UnitFile::parse("bad.service", "[Unit\n").unwrap_err();
        assert!(err.to_string().contains("malformed section header"), "{err}");
    }

    #[test]
    fn exec_prefixes_and_quoting_follow_systemd() {
        let cmd = ExecCommand::parse(r#"-+/bin/sh -c "echo \"hi there\"; exit 0""#).unwrap();
        assert!(cmd.ignore_failure && cmd.privileged);
        assert_eq!(cmd.argv, ["/bin/sh", "-c", "echo \"hi there\"; exit 0"]);
        assert_eq!(cmd.shell_script(), Some(("/bin/sh", "echo \"hi there\"; exit 0")));
        let cmd = ExecCommand::parse("@/usr/bin/daemon my-name --flag 'a b'").unwrap();
        assert_eq!(cmd.argv0.as_deref(), Some("my-name"));
        assert_eq!(cmd.argv, ["/usr/bin/daemon", "--flag", "a b"]);
        assert!(ExecCommand::parse("/bin/echo \"open").unwrap_err().contains("unterminated"));
        assert_eq!(split_words(r"a\x41 b\sc").unwrap(), ["aA", "b c"]);
    }

    #[test]
    fn time_spans_follow_systemd_units() {
        assert_eq!(parse_timespan("5"), Some(5.0));
        assert_eq!(parse_timespan("2min 30s"), Some(150.0));
        assert_eq!(parse_timespan("100ms"), Some(0.1));
        assert_eq!(parse_timespan("1h"), Some(3600.0));
        assert_eq!(parse_timespan("5 parsecs"), None);
    }

    #[test]
    fn specifiers_expand_or_are_reported() {
        let unit = UnitFile::parse("getty@tty1.service", "").unwrap();
        let (text, unknown) = expand_specifiers("%n %N %p %i %% %t/x %H", &unit);
        assert_eq!(text, "getty@tty1.service getty@tty1 getty tty1 % /run/x %H");
        assert_eq!(unknown, ["%H"]);
    }
}
