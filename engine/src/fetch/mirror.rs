//! Mirrors: where fixed-output files are looked for before their upstream URLs.
//!
//! A file mirror is a local directory or a base URL serving `sha256/<hex>`,
//! `sha512/<hex>` and plain file names (the last path segment of an upstream
//! URL). A git mirror maps a repository URL to a local repository. Layout and
//! configuration are documented in docs/mirrors.md.

use std::fmt;
use std::path::{Path, PathBuf};

use forge_store::Hash;

use super::Error;

/// A place serving fixed-output files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mirror {
    /// A local directory (given as a path or a `file://` URL).
    Dir(PathBuf),
    /// An `http://` or `https://` base URL.
    Url(String),
}

impl Mirror {
    /// Parses a mirror as the user spells it: `http(s)://...`, `file://...` or a path.
    ///
    /// ```
    /// use forge_engine::fetch::Mirror;
    /// use forge_engine::fetch::mirror::hash_key;
    /// let m = Mirror::parse("https://mirror.example/forge/").unwrap();
    /// let hash = format!("sha256:{}", "0".repeat(52)).parse().unwrap();
    /// assert_eq!(m.locate(&hash_key(&hash)), format!("https://mirror.example/forge/sha256/{}", "0".repeat(64)));
    /// ```
    pub fn parse(text: &str) -> Result<Mirror, Error> {
        if text.starts_with("http://") || text.starts_with("https://") {
            return Ok(Mirror::Url(text.trim_end_matches('/').to_owned()));
        }
        if text.starts_with("file://") {
            return super::file_url_path(text).map(Mirror::Dir);
        }
        if text.contains("://") {
            return Err(Error::BadMirror { mirror: text.to_owned(), why: "only http(s)://, file:// and paths".into() });
        }
        if text.is_empty() {
            return Err(Error::BadMirror { mirror: text.to_owned(), why: "empty".into() });
        }
        Ok(Mirror::Dir(PathBuf::from(text)))
    }

    /// Where this mirror keeps `key` (`sha256/<hex>` or a file name).
    pub fn locate(&self, key: &str) -> String {
        match self {
            Mirror::Dir(d) => d.join(key).display().to_string(),
            Mirror::Url(u) => format!("{u}/{key}"),
        }
    }
}

impl fmt::Display for Mirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mirror::Dir(d) => write!(f, "{}", d.display()),
            Mirror::Url(u) => f.write_str(u),
        }
    }
}

/// The key under which a mirror serves content with this hash: `sha256/<hex>`.
/// `forge vendor` writes files there.
pub fn hash_key(hash: &Hash) -> String {
    format!("{}/{}", hash.algo().name(), hash.to_hex())
}

/// The file name a mirror may serve an upstream URL's file under: its last path
/// segment, without query or fragment; `None` when there is no usable one.
pub fn name_key(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let name = path.rsplit('/').next()?;
    (!name.is_empty() && name != "." && name != ".." && !name.contains('\\')).then(|| name.to_owned())
}

/// The key under which a mirror serves a file not pinned by hash: the URL's path
/// without the leading `/` (`alpine/v3.20/main/x86_64/APKINDEX.tar.gz`), so a copy of a
/// repository tree serves it. `None` for URLs that are not http(s) or whose path is
/// empty or holds `.`/`..` segments.
pub fn path_key(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    let path = parsed.path().trim_start_matches('/');
    let ok = !path.is_empty() && path.split('/').all(|s| !s.is_empty() && s != "." && s != ".." && !s.contains('\\'));
    ok.then(|| path.to_owned())
}

/// Every mirror forge knows of, in the order they are tried.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mirrors {
    /// File mirrors, in the order they are tried.
    pub files: Vec<Mirror>,
    /// Repository URL -> local repository.
    pub git: Vec<(String, PathBuf)>,
}

/// The environment variable listing file mirrors.
pub const ENV_MIRRORS: &str = "FORGE_MIRRORS";
/// The environment variable listing git mirrors as `URL=PATH` words.
pub const ENV_GIT_MIRRORS: &str = "FORGE_GIT_MIRRORS";
/// The environment variable naming the config file.
pub use crate::config::ENV_CONFIG;

impl Mirrors {
    /// Gathers mirrors from, in this order: the command line, `$FORGE_MIRRORS` /
    /// `$FORGE_GIT_MIRRORS`, and the config file ([`config_path`]) if it exists.
    pub fn load(cli: &[String], cli_git: &[String]) -> Result<Mirrors, Error> {
        let mut m = Mirrors::default();
        m.add_files(cli.iter().map(String::as_str))?;
        m.add_git(cli_git.iter().map(String::as_str))?;
        if let Ok(v) = std::env::var(ENV_MIRRORS) {
            m.add_files(split_env_list(&v))?;
        }
        if let Ok(v) = std::env::var(ENV_GIT_MIRRORS) {
            m.add_git(v.split_whitespace())?;
        }
        m.add_config_entries(&crate::config::load()?)?;
        Ok(m)
    }

    fn add_files<'a>(&mut self, items: impl IntoIterator<Item = &'a str>) -> Result<(), Error> {
        for item in items {
            let mirror = Mirror::parse(item)?;
            if !self.files.contains(&mirror) {
                self.files.push(mirror);
            }
        }
        Ok(())
    }

    fn add_git<'a>(&mut self, items: impl IntoIterator<Item = &'a str>) -> Result<(), Error> {
        for item in items {
            let (url, path) = item
                .rsplit_once('=')
                .ok_or_else(|| Error::BadMirror { mirror: item.to_owned(), why: "a git mirror is URL=PATH".into() })?;
            self.git.push((url.to_owned(), PathBuf::from(path)));
        }
        Ok(())
    }

    /// Takes the `mirror` (a path or URL) and `git-mirror` (`URL PATH`) lines of a
    /// config file ([`crate::config`]); its other keys are for other parts of forge.
    pub fn add_config(&mut self, path: &Path) -> Result<(), Error> {
        self.add_config_entries(&crate::config::read(path)?)
    }

    fn add_config_entries(&mut self, entries: &[crate::config::Entry]) -> Result<(), Error> {
        for e in entries {
            match e.key.as_str() {
                "mirror" => self.add_files([e.value.as_str()]).map_err(|err| e.error(err.to_string()))?,
                "git-mirror" => {
                    let (url, repo) =
                        e.value.split_once(char::is_whitespace).ok_or_else(|| e.error("expected `URL PATH`"))?;
                    self.git.push((url.to_owned(), PathBuf::from(repo.trim())));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The local repository mirroring `url`, if any. `.git` suffixes and trailing
    /// slashes do not matter.
    pub fn git_mirror(&self, url: &str) -> Option<&Path> {
        let norm = |u: &str| u.trim_end_matches('/').trim_end_matches(".git").to_owned();
        let want = norm(url);
        self.git.iter().find(|(u, _)| norm(u) == want).map(|(_, p)| p.as_path())
    }
}

/// Splits `$FORGE_MIRRORS`: whitespace-separated; when no entry is a URL,
/// colons separate too (like `$PATH`).
fn split_env_list(v: &str) -> Vec<&str> {
    if v.contains("://") {
        v.split_whitespace().collect()
    } else {
        v.split(|c: char| c == ':' || c.is_whitespace()).filter(|s| !s.is_empty()).collect()
    }
}

/// The config file ([`crate::config::path`]).
pub use crate::config::path as config_path;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_list_splits_on_colons_only_without_urls() {
        assert_eq!(split_env_list("/a:/b /c"), ["/a", "/b", "/c"]);
        assert_eq!(split_env_list("http://h:8080/m /d"), ["http://h:8080/m", "/d"]);
    }

    #[test]
    fn name_key_is_the_last_segment_without_query() {
        assert_eq!(name_key("https://h/p/musl-1.2.3.tar.gz?x=1#f").as_deref(), Some("musl-1.2.3.tar.gz"));
        assert_eq!(name_key("https://h/p/"), None);
        assert_eq!(name_key("https://h/.."), None);
    }

    #[test]
    fn path_key_is_the_url_path_for_http_only() {
        let key = path_key("https://h.test/alpine/v3.20/main/x86_64/APKINDEX.tar.gz?x=1");
        assert_eq!(key.as_deref(), Some("alpine/v3.20/main/x86_64/APKINDEX.tar.gz"));
        assert_eq!(path_key("file:///srv/repo/APKINDEX.tar.gz"), None);
        assert_eq!(path_key("https://h.test/"), None);
        assert_eq!(path_key("https://h.test/a//b"), None);
        // The URL parser folds `..` away, so what is left never climbs out of the mirror.
        assert_eq!(path_key("https://h.test/a/../../b").as_deref(), Some("b"));
    }

    #[test]
    fn config_lines_parse_and_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "# mirrors\nmirror = /srv/m  # local\nmirror = https://m.test/forge/\n\
             git-mirror = https://g.test/r.git /srv/git/r\n",
        )
        .unwrap();
        let mut m = Mirrors::default();
        m.add_config(&path).unwrap();
        assert_eq!(m.files, [Mirror::Dir("/srv/m".into()), Mirror::Url("https://m.test/forge".into())]);
        assert_eq!(m.git_mirror("https://g.test/r/"), Some(Path::new("/srv/git/r")));

        std::fs::write(&path, "mirror = /ok\nmirrors = /typo\n").unwrap();
        let err = Mirrors::default().add_config(&path).unwrap_err().to_string();
        assert!(err.contains(":2:") && err.contains("mirrors"), "{err}");
    }
}
