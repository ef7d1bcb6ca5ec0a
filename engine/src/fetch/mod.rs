//! Fetching fixed-output files: from mirrors first, then the upstream URLs, each
//! file hash-checked while it streams and only then put in place.
//!
//! Sources, in order: every mirror ([`Mirrors`]) under `sha256/<hex>` (or
//! `sha512/<hex>`) and under each URL's file name, then each URL (`http(s)://`,
//! `file://` or a plain path). A source that fails (missing, an HTTP error, a
//! network error after retries, a wrong hash) is recorded and the next one is
//! tried. With `offline`, no network is used at all: when no local source has the
//! file, [`Error::Missing`] says so; a caller fetching many inputs collects these
//! into [`Error::MissingInputs`], which lists all of them and says how to vendor
//! them.

mod http;
pub mod mirror;
mod progress;

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use forge_store::{Algo, Hash};

pub use mirror::{Mirror, Mirrors};

/// A result whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A fixed-output file: what it is called, where it lives upstream, what it hashes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchSpec {
    /// The file's name (the store path's name part, and the name mirrors may serve it under).
    pub name: String,
    /// Upstream URLs, tried in order after the mirrors.
    pub urls: Vec<String>,
    /// sha256 or sha512 of the file's bytes.
    pub hash: Hash,
}

/// How to fetch.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// No network at all: only local mirrors, `file://` URLs and paths.
    pub offline: bool,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed without a byte from the server (headers or body).
    pub idle_timeout: Duration,
    /// Retries of one URL after a transient failure (connect error, 5xx, 429,
    /// a cut connection), with exponential backoff.
    pub retries: u32,
    /// Wait before the first retry; doubled for each next one.
    pub backoff: Duration,
    /// Show progress on stderr (a bar on a terminal, else a line every 10 s).
    pub progress: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            offline: false,
            connect_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            retries: 4,
            backoff: Duration::from_secs(1),
            progress: true,
        }
    }
}

/// A successful fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// Where the bytes came from (a mirror path or URL, or an upstream URL).
    pub source: String,
    /// Its size in bytes.
    pub size: u64,
}

/// An input that could not be had offline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingInput {
    /// The input's name.
    pub name: String,
    /// Its upstream URLs.
    pub urls: Vec<String>,
    /// Its hash.
    pub hash: Hash,
}

impl From<&FetchSpec> for MissingInput {
    fn from(s: &FetchSpec) -> Self {
        MissingInput { name: s.name.clone(), urls: s.urls.clone(), hash: s.hash.clone() }
    }
}

impl fmt::Display for MissingInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.hash)?;
        for url in &self.urls {
            write!(f, "\n      {url}")?;
        }
        Ok(())
    }
}

/// Every input missing offline, as one error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingInputs(pub Vec<MissingInput>);

impl fmt::Display for MissingInputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} input(s) are in no local mirror, and --offline forbids the network:", self.0.len())?;
        for m in &self.0 {
            writeln!(f, "  - {m}")?;
        }
        write!(
            f,
            "On a machine with network, run `forge vendor RECIPE DIR` to copy them into DIR, bring DIR here, \
             and build with `--mirror DIR --offline`."
        )
    }
}

/// Why one source did not give the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The source does not have it (a missing mirror file, HTTP 404).
    NotFound,
    /// An HTTP status other than success or not-found.
    Status(u16),
    /// A network error that outlasted the retries, or a timeout.
    Network(String),
    /// The bytes arrived but hash differently; they are kept at `kept`.
    HashMismatch {
        /// The declared hash.
        expected: Hash,
        /// The hash of what arrived.
        actual: Hash,
        /// Where the bytes were kept.
        kept: PathBuf,
    },
    /// Reading the local source or writing the destination failed.
    Io(String),
    /// A network source skipped because of `offline`.
    Offline,
    /// A URL scheme forge does not fetch.
    Unsupported,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NotFound => f.write_str("not found"),
            Failure::Status(s) => write!(f, "HTTP status {s}"),
            Failure::Network(why) => f.write_str(why),
            Failure::HashMismatch { expected, actual, kept } => write!(
                f,
                "hash mismatch: expected {expected}, got {actual}; the file is kept for inspection at {}",
                kept.display()
            ),
            Failure::Io(why) => f.write_str(why),
            Failure::Offline => f.write_str("skipped: offline"),
            Failure::Unsupported => f.write_str("unsupported URL scheme (use http://, https://, file:// or a path)"),
        }
    }
}

/// One source tried and how it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The mirror path or URL tried.
    pub source: String,
    /// How it failed.
    pub failure: Failure,
}

fn attempts_text(attempts: &[Attempt]) -> String {
    attempts.iter().map(|a| format!("\n  {}: {}", a.source, a.failure)).collect()
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Every source failed.
    #[error("cannot fetch {name} ({hash}); tried:{}", attempts_text(.attempts))]
    Failed {
        /// The file.
        name: String,
        /// Its hash.
        hash: Hash,
        /// Each source tried and how it failed.
        attempts: Vec<Attempt>,
    },

    /// Offline, the file is in no local mirror.
    #[error("{} is in no local mirror, and offline mode forbids the network; tried:{}\nOn a machine with network, run `forge vendor RECIPE DIR`, bring DIR here, and use `--mirror DIR --offline`.", .input.name, attempts_text(.attempts))]
    Missing {
        /// The input.
        input: MissingInput,
        /// The mirrors tried.
        attempts: Vec<Attempt>,
    },

    /// Offline, several inputs are in no local mirror (all listed at once).
    #[error("{0}")]
    MissingInputs(MissingInputs),

    /// The value.
    #[error("cannot fetch {name}; tried:{}\nCheck the URL, or pass --mirror DIR holding a copy under the URL's path.", attempts_text(.attempts))]
    Unreachable {
        /// The name.
        name: String,
        /// Every source tried, with what it answered.
        attempts: Vec<Attempt>,
    },

    /// A file has neither URLs nor mirrors.
    #[error("{name}: no URL and no mirror to fetch it from")]
    NoSources {
        /// The file.
        name: String,
    },

    /// A mirror setting is not usable.
    #[error("invalid mirror `{mirror}`: {why}")]
    BadMirror {
        /// The mirror as given.
        mirror: String,
        /// What is wrong.
        why: String,
    },

    /// A URL is not valid or of an unsupported scheme.
    #[error("invalid URL `{url}`: {why}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong.
        why: String,
    },

    /// A config error.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),

    /// The HTTP client could not be made (TLS roots, proxy settings).
    #[error("cannot set up the HTTP client: {why}")]
    Client {
        /// Why.
        why: String,
    },

    /// An I/O error.
    #[error("{path}: {error}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |error| Error::Io { path, error }
    }

    /// The input this error reports missing offline, for the caller to collect.
    pub fn missing(&self) -> Option<&MissingInput> {
        match self {
            Error::Missing { input, .. } => Some(input),
            _ => None,
        }
    }

    /// Every source tried, when the error is about a fetch.
    pub fn attempts(&self) -> &[Attempt] {
        match self {
            Error::Failed { attempts, .. } | Error::Missing { attempts, .. } | Error::Unreachable { attempts, .. } => {
                attempts
            }
            _ => &[],
        }
    }
}

/// The path of a `file://` URL.
pub(crate) fn file_url_path(url: &str) -> Result<PathBuf> {
    let parsed = reqwest::Url::parse(url).map_err(|e| Error::BadUrl { url: url.to_owned(), why: e.to_string() })?;
    parsed.to_file_path().map_err(|()| Error::BadUrl { url: url.to_owned(), why: "not a local file URL".into() })
}

/// Where one candidate's bytes are.
enum Source {
    Local(PathBuf),
    Remote(String),
}

/// Fetches fixed-output files with one configuration and one HTTP client.
pub struct Fetcher {
    mirrors: Mirrors,
    opts: FetchOptions,
    client: Option<reqwest::blocking::Client>,
}

impl Fetcher {
    /// A fetcher over `mirrors`. The HTTP client is built here unless offline.
    pub fn new(mirrors: Mirrors, opts: FetchOptions) -> Result<Fetcher> {
        let client = if opts.offline { None } else { Some(http::client(&opts)?) };
        Ok(Fetcher { mirrors, opts, client })
    }

    /// The mirrors it tries.
    pub fn mirrors(&self) -> &Mirrors {
        &self.mirrors
    }

    /// Its options (offline mode, timeouts, progress).
    pub fn options(&self) -> &FetchOptions {
        &self.opts
    }

    /// Fetches `spec` into `dest` (replaced if it exists). The bytes land in
    /// `<dest>.part` and are renamed to `dest` only once their hash is right;
    /// a mismatching download is kept as `<dest>.mismatch-<n>`.
    pub fn fetch(&self, spec: &FetchSpec, dest: &Path) -> Result<Fetched> {
        let candidates = self.candidates(spec)?;
        match self.first_good(&spec.name, candidates, spec.hash.algo(), Some(&spec.hash), dest)? {
            Ok((fetched, _)) => Ok(fetched),
            Err(attempts) if self.opts.offline && attempts.iter().any(|a| a.failure == Failure::Offline) => {
                Err(Error::Missing { input: spec.into(), attempts })
            }
            Err(attempts) => Err(Error::Failed { name: spec.name.clone(), hash: spec.hash.clone(), attempts }),
        }
    }

    /// Fetches a file whose content is not known in advance (a repository index, which
    /// the caller then checks by its signature) into `dest`, and returns its sha256.
    ///
    /// Mirrors are asked for it under each URL's path (`https://host/alpine/v3.20/main/
    /// x86_64/APKINDEX.tar.gz` is `alpine/v3.20/main/x86_64/APKINDEX.tar.gz` in a
    /// mirror), never by file name alone: without a hash to check, a file of the same
    /// name from another repository could not be told apart. Then the URLs are tried.
    pub fn fetch_unpinned(&self, name: &str, urls: &[String], dest: &Path) -> Result<(Fetched, Hash)> {
        let mut candidates = Vec::new();
        for key in urls.iter().filter_map(|u| mirror::path_key(u)) {
            for m in &self.mirrors.files {
                let source = match m {
                    Mirror::Dir(d) => Source::Local(d.join(&key)),
                    Mirror::Url(_) => Source::Remote(m.locate(&key)),
                };
                candidates.push((format!("mirror {}", m.locate(&key)), source));
            }
        }
        for url in urls {
            candidates.push((url.clone(), upstream(url)?));
        }
        match self.first_good(name, candidates, Algo::Sha256, None, dest)? {
            Ok(got) => Ok(got),
            Err(attempts) => Err(Error::Unreachable { name: name.to_owned(), attempts }),
        }
    }

    /// Tries `candidates` in order until one gives bytes (with hash `expected`, when
    /// given); `Ok(Err(attempts))` when none did.
    fn first_good(
        &self,
        name: &str,
        candidates: Vec<(String, Source)>,
        algo: Algo,
        expected: Option<&Hash>,
        dest: &Path,
    ) -> Result<Result<(Fetched, Hash), Vec<Attempt>>> {
        if candidates.is_empty() {
            return Err(Error::NoSources { name: name.to_owned() });
        }
        let part = sibling(dest, ".part");
        let mut attempts = Vec::new();
        for (i, (shown, source)) in candidates.into_iter().enumerate() {
            let got = match &source {
                Source::Local(path) => copy_hashing(path, &part, algo),
                Source::Remote(_) if self.opts.offline => Err(Failure::Offline),
                Source::Remote(url) => self.download(name, url, algo, &part),
            };
            match got {
                Ok((actual, size)) if expected.is_none_or(|h| *h == actual) => {
                    std::fs::rename(&part, dest).map_err(Error::io(dest))?;
                    return Ok(Ok((Fetched { source: shown, size }, actual)));
                }
                Ok((actual, _)) => {
                    let kept = sibling(dest, &format!(".mismatch-{i}"));
                    std::fs::rename(&part, &kept).map_err(Error::io(&kept))?;
                    let expected = expected.cloned().unwrap_or_else(|| actual.clone());
                    attempts.push(Attempt { source: shown, failure: Failure::HashMismatch { expected, actual, kept } });
                }
                Err(failure) => attempts.push(Attempt { source: shown, failure }),
            }
        }
        let _ = std::fs::remove_file(&part);
        Ok(Err(attempts))
    }

    /// Fetches every `(spec, dest)` in turn. Inputs missing offline do not stop
    /// the others: they are reported together in one [`Error::MissingInputs`].
    pub fn fetch_all(&self, items: &[(FetchSpec, PathBuf)]) -> Result<Vec<Fetched>> {
        let mut done = Vec::new();
        let mut missing = Vec::new();
        for (spec, dest) in items {
            match self.fetch(spec, dest) {
                Ok(f) => done.push(f),
                Err(Error::Missing { input, .. }) => missing.push(input),
                Err(e) => return Err(e),
            }
        }
        if missing.is_empty() {
            Ok(done)
        } else {
            Err(Error::MissingInputs(MissingInputs(missing)))
        }
    }

    /// Every source for `spec`, in the order tried, with how to show it.
    fn candidates(&self, spec: &FetchSpec) -> Result<Vec<(String, Source)>> {
        let mut keys = vec![mirror::hash_key(&spec.hash)];
        for name in spec.urls.iter().filter_map(|u| mirror::name_key(u)).chain(mirror::name_key(&spec.name)) {
            if !keys.contains(&name) {
                keys.push(name);
            }
        }
        let mut out = Vec::new();
        for m in &self.mirrors.files {
            for key in &keys {
                let source = match m {
                    Mirror::Dir(d) => Source::Local(d.join(key)),
                    Mirror::Url(_) => Source::Remote(m.locate(key)),
                };
                out.push((format!("mirror {}", m.locate(key)), source));
            }
        }
        for url in &spec.urls {
            out.push((url.clone(), upstream(url)?));
        }
        Ok(out)
    }

    fn download(&self, name: &str, url: &str, algo: Algo, part: &Path) -> Result<(Hash, u64), Failure> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Failure::Unsupported);
        }
        let client = self.client.as_ref().ok_or(Failure::Offline)?;
        http::Download { client, opts: &self.opts, name, url, algo }.run(part)
    }
}

/// How an upstream URL is reached.
fn upstream(url: &str) -> Result<Source> {
    if url.starts_with("file://") {
        return Ok(Source::Local(file_url_path(url)?));
    }
    if url.contains("://") {
        return Ok(Source::Remote(url.to_owned()));
    }
    Ok(Source::Local(PathBuf::from(url)))
}

/// `dest` with `suffix` appended to its file name.
fn sibling(dest: &Path, suffix: &str) -> PathBuf {
    let mut name = dest.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    dest.with_file_name(name)
}

/// Copies a local file to `part`, hashing as it goes.
fn copy_hashing(src: &Path, part: &Path, algo: Algo) -> Result<(Hash, u64), Failure> {
    let mut input = match File::open(src) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Failure::NotFound),
        Err(e) => return Err(Failure::Io(format!("cannot open {}: {e}", src.display()))),
    };
    if input.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(Failure::NotFound);
    }
    let write_err = |e: std::io::Error| Failure::Io(format!("cannot write {}: {e}", part.display()));
    let mut out = File::create(part).map_err(write_err)?;
    let mut hasher = algo.hasher();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = input.read(&mut buf).map_err(|e| Failure::Io(format!("cannot read {}: {e}", src.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(write_err)?;
        size += n as u64;
    }
    Ok((hasher.finish(), size))
}
