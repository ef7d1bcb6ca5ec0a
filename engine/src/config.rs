//! forge's config file: `$FORGE_CONFIG`, else `$XDG_CONFIG_HOME/forge/config`, else
//! `~/.config/forge/config`. One `key = value` a line, `#` starts a comment. Every
//! key forge knows is listed in [`KEYS`]; any other is an error naming the line, so a
//! typo never silently drops a setting. Users: `fetch::mirror` (`mirror`,
//! `git-mirror`) and the signing of provenance records (`signing-key`) and of apk
//! packages (`apk-key`). The file is
//! documented in docs/mirrors.md.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let file = dir.path().join("config");
//! std::fs::write(&file, "# keys\nsigning-key = keys/forge.pem\n").unwrap();
//! let entries = forge_engine::config::read(&file).unwrap();
//! assert_eq!(entries[0].key, "signing-key");
//! assert_eq!(entries[0].path_value(), dir.path().join("keys/forge.pem"));
//! ```

use std::path::{Path, PathBuf};

/// The environment variable naming the config file.
pub const ENV_CONFIG: &str = "FORGE_CONFIG";

/// Every key the config file may hold.
pub const KEYS: &[&str] = &["mirror", "git-mirror", "signing-key", "apk-key"];

/// What is wrong with the config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A line of the config file is wrong.
    #[error("{path}:{line}: {why}")]
    Line {
        /// The file or path concerned.
        path: PathBuf,
        /// Its line number, from 1.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// The config file cannot be read.
    #[error("cannot read the config file {path}: {source} (set ${ENV_CONFIG} to another file, or fix it)")]
    Io {
        /// The file or path concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// One `key = value` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The config file it came from.
    pub file: PathBuf,
    /// Its line number, from 1.
    pub line: usize,
    /// The key, trimmed.
    pub key: String,
    /// The value, trimmed.
    pub value: String,
}

impl Entry {
    /// An error about this line.
    pub fn error(&self, why: impl Into<String>) -> ConfigError {
        ConfigError::Line { path: self.file.clone(), line: self.line, why: why.into() }
    }

    /// The value as a path; a relative one is taken from the config file's folder, so
    /// the file means the same whatever the working directory.
    pub fn path_value(&self) -> PathBuf {
        let value = Path::new(&self.value);
        match self.file.parent() {
            Some(dir) if value.is_relative() => dir.join(value),
            _ => value.to_owned(),
        }
    }
}

/// Where the config file is: `$FORGE_CONFIG`, else `$XDG_CONFIG_HOME/forge/config`,
/// else `~/.config/forge/config` (`None` without a home).
pub fn path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(ENV_CONFIG) {
        return Some(PathBuf::from(p));
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    Some(base.join("forge/config"))
}

/// The entries of the config file, or none when there is no such file.
pub fn load() -> Result<Vec<Entry>, ConfigError> {
    match path().filter(|p| p.is_file()) {
        Some(file) => read(&file),
        None => Ok(Vec::new()),
    }
}

/// The last `key` of the config file: later lines override earlier ones.
pub fn last(entries: &[Entry], key: &str) -> Option<Entry> {
    entries.iter().rev().find(|e| e.key == key).cloned()
}

/// Reads a config file; an unknown key or a line without `=` is an error naming it.
pub fn read(file: &Path) -> Result<Vec<Entry>, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Io { path: file.to_owned(), source })?;
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let bad = |why: String| ConfigError::Line { path: file.to_owned(), line: i + 1, why };
        let line = line.split_once('#').map_or(line, |(before, _)| before).trim();
        if line.is_empty() {
            continue;
        }
        let (key, value) = line.split_once('=').ok_or_else(|| bad("expected `key = value`".into()))?;
        let key = key.trim();
        if !KEYS.contains(&key) {
            return Err(bad(format!("unknown key `{key}` (known: {})", KEYS.join(", "))));
        }
        let value = value.trim();
        if value.is_empty() {
            return Err(bad(format!("`{key}` has no value")));
        }
        entries.push(Entry { file: file.to_owned(), line: i + 1, key: key.to_owned(), value: value.to_owned() });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_with_comments_and_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config");
        std::fs::write(&file, "# c\nmirror = /srv/m  # local\n\nsigning-key = /k.pem\nsigning-key = k2.pem\n").unwrap();
        let entries = read(&file).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!((entries[0].line, entries[0].value.as_str()), (2, "/srv/m"));
        let key = last(&entries, "signing-key").unwrap();
        assert_eq!((key.line, key.path_value()), (5, dir.path().join("k2.pem")));
        assert_eq!(entries[1].path_value(), Path::new("/k.pem"));

        for (text, want) in [
            ("mirror = /ok\nmirrors = /typo\n", ":2: unknown key `mirrors`"),
            ("signing-key\n", ":1: expected `key = value`"),
            ("signing-key =\n", ":1: `signing-key` has no value"),
        ] {
            std::fs::write(&file, text).unwrap();
            let err = read(&file).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
        let err = read(&dir.path().join("absent")).unwrap_err().to_string();
        assert!(err.contains("cannot read the config file") && err.contains("FORGE_CONFIG"), "{err}");
    }
}
