//! One HTTP(S) download: retries with backoff, resume with `Range`, timeouts.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use forge_store::hash::{Algo, Hash, Hasher};
use reqwest::blocking::{Client, Response};
use reqwest::header::{HeaderMap, CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE};
use reqwest::StatusCode;

use super::progress::Progress;
use super::{Error, Failure, FetchOptions};

/// The client every download shares: rustls with the bundled and the system's
/// roots, proxies from the environment, redirects followed, no transparent
/// decompression (the bytes hashed are the bytes served).
pub(super) fn client(opts: &FetchOptions) -> Result<Client, Error> {
    Client::builder()
        .connect_timeout(opts.connect_timeout)
        // The blocking client applies this to the wait for headers and to each
        // read of the body separately: an idle timeout, not a total one.
        .timeout(opts.idle_timeout)
        .user_agent(concat!("forge/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Client { why: e.to_string() })
}

pub(super) struct Download<'a> {
    pub client: &'a Client,
    pub opts: &'a FetchOptions,
    pub name: &'a str,
    pub url: &'a str,
    pub algo: Algo,
}

/// The state of a partial download, kept across retries.
struct Partial {
    file: File,
    hasher: Hasher,
    have: u64,
    /// ETag (strong) or Last-Modified of the first response, for `If-Range`.
    validator: Option<String>,
}

/// How one attempt ended, when it did not finish the file.
enum Interrupted {
    /// Worth retrying (connect error, timeout, 5xx, 429, a cut connection).
    Transient(String),
    Permanent(Failure),
}

impl Download<'_> {
    /// Downloads into `part`, returning the hash and size of what arrived.
    pub fn run(&self, part: &Path) -> Result<(Hash, u64), Failure> {
        let io_err = |e: std::io::Error| Failure::Io(format!("cannot write {}: {e}", part.display()));
        let file = OpenOptions::new().create(true).write(true).truncate(true).open(part).map_err(io_err)?;
        let mut state = Partial { file, hasher: self.algo.hasher(), have: 0, validator: None };
        let mut retry = 0;
        loop {
            match self.attempt(&mut state) {
                Ok(()) => return Ok((state.hasher.clone().finish(), state.have)),
                Err(Interrupted::Permanent(f)) => return Err(f),
                Err(Interrupted::Transient(why)) if retry >= self.opts.retries => {
                    return Err(Failure::Network(format!("{why} (gave up after {} retries)", self.opts.retries)))
                }
                Err(Interrupted::Transient(why)) => {
                    let wait = self.opts.backoff.saturating_mul(1 << retry.min(16));
                    if self.opts.progress {
                        eprintln!("fetching {}: {why}; retrying in {:.1}s", self.url, wait.as_secs_f64());
                    }
                    std::thread::sleep(wait);
                    retry += 1;
                }
            }
        }
    }

    fn attempt(&self, state: &mut Partial) -> Result<(), Interrupted> {
        let mut req = self.client.get(self.url);
        if state.have > 0 {
            req = req.header(RANGE, format!("bytes={}-", state.have));
            if let Some(v) = &state.validator {
                req = req.header(IF_RANGE, v.as_str());
            }
        }
        let resp = req.send().map_err(classify)?;
        let status = resp.status();
        match status {
            StatusCode::PARTIAL_CONTENT if state.have > 0 && range_start(resp.headers()) == Some(state.have) => {}
            s if s.is_success() => restart(state, resp.headers()).map_err(Interrupted::Permanent)?,
            StatusCode::NOT_FOUND | StatusCode::GONE => return Err(Interrupted::Permanent(Failure::NotFound)),
            StatusCode::RANGE_NOT_SATISFIABLE => {
                // The file changed under us or shrank: start over without Range.
                restart(state, resp.headers()).map_err(Interrupted::Permanent)?;
                return Err(Interrupted::Transient("the server refused the resume range".into()));
            }
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT => {
                return Err(Interrupted::Transient(format!("HTTP status {}", s.as_u16())));
            }
            s => return Err(Interrupted::Permanent(Failure::Status(s.as_u16()))),
        }
        self.stream(resp, state)
    }

    fn stream(&self, mut resp: Response, state: &mut Partial) -> Result<(), Interrupted> {
        let total = resp.content_length().map(|n| n + state.have);
        let mut progress = Progress::new(self.opts.progress, self.name, self.url, total, state.have);
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = match resp.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    progress.abandon();
                    let why = if e.kind() == std::io::ErrorKind::TimedOut {
                        format!("timed out: no data for {:?}", self.opts.idle_timeout)
                    } else {
                        error_chain(&e)
                    };
                    return Err(Interrupted::Transient(format!("connection lost after {} bytes: {why}", state.have)));
                }
            };
            state.file.write_all(&buf[..n]).map_err(|e| Interrupted::Permanent(Failure::Io(e.to_string())))?;
            state.hasher.update(&buf[..n]);
            state.have += n as u64;
            progress.set(state.have);
        }
        progress.finish();
        if let Some(total) = total.filter(|&t| t != state.have) {
            return Err(Interrupted::Transient(format!("got {} of {total} bytes", state.have)));
        }
        state.file.flush().map_err(|e| Interrupted::Permanent(Failure::Io(e.to_string())))
    }
}

/// Throws away what was downloaded: the server sends the whole file again.
fn restart(state: &mut Partial, headers: &HeaderMap) -> Result<(), Failure> {
    if state.have > 0 {
        state.file.set_len(0).map_err(|e| Failure::Io(e.to_string()))?;
        std::io::Seek::rewind(&mut state.file).map_err(|e| Failure::Io(e.to_string()))?;
        state.hasher = hasher_like(&state.hasher);
        state.have = 0;
    }
    state.validator = validator(headers);
    Ok(())
}

fn hasher_like(h: &Hasher) -> Hasher {
    match h {
        Hasher::Sha256(_) => Algo::Sha256.hasher(),
        Hasher::Sha512(_) => Algo::Sha512.hasher(),
    }
}

/// A strong ETag, else Last-Modified: what `If-Range` may carry.
fn validator(headers: &HeaderMap) -> Option<String> {
    let get = |h| headers.get(h).and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok()).map(str::to_owned);
    get(ETAG).filter(|e| !e.starts_with("W/")).or_else(|| get(LAST_MODIFIED))
}

/// The first byte of a `Content-Range: bytes START-END/TOTAL`.
fn range_start(headers: &HeaderMap) -> Option<u64> {
    let v = headers.get(CONTENT_RANGE)?.to_str().ok()?;
    v.strip_prefix("bytes ")?.split('-').next()?.trim().parse().ok()
}

fn classify(e: reqwest::Error) -> Interrupted {
    let why = describe(&e);
    if e.is_builder() || e.is_redirect() {
        Interrupted::Permanent(Failure::Network(why))
    } else {
        Interrupted::Transient(why)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The error with its causes: reqwest's own message alone is often just
/// "error sending request".
fn describe(e: &reqwest::Error) -> String {
    let text = error_chain(e);
    if e.is_timeout() {
        format!("timed out: {text}")
    } else {
        text
    }
}
