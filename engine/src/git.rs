//! Git checkouts as fixed-output inputs: a repository URL and a full commit id
//! become a directory without `.git`, holding the files exactly as git stores
//! them (mode 644 or 755, symlinks as symlinks, no attribute filters, no
//! line-ending conversion, no LFS smudging). Submodules appear as empty
//! directories, as in a checkout that did not init them. The caller checks the
//! result's NAR hash.
//!
//! The git binary does the transport (all protocols and credentials it knows);
//! the tree is written from `git ls-tree` and `git cat-file --batch` through the
//! archive module's safe writer, so a hostile tree cannot escape the output.
//!
//! Git LFS pointer files ([`LfsPointer`]) are left as they are; the caller turns
//! each into a fixed-output fetch of its object.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use forge_store::{Algo, Hash};

use crate::archive::tree::{entry_path, TreeWriter};
use crate::archive::Limits;
use crate::fetch::Mirrors;

/// A result whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A checkout to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitSpec {
    /// The repository's URL (a git mirror for it is tried first).
    pub url: String,
    /// A full commit id (40 hex digits, or 64 for sha256 repositories).
    pub rev: String,
    /// Only these paths of the tree (files or directories, `/`-separated,
    /// relative to the root), kept at their place; empty: the whole tree.
    pub subpaths: Vec<String>,
}

/// What [`fetch`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitFetched {
    /// The repository the objects came from (a mirror or the URL).
    pub source: String,
    /// Entries written (files, symlinks, submodule directories).
    pub entries: u64,
}

/// What can go wrong fetching a git checkout.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The revision is not a full commit id.
    #[error("`{rev}` is not a full commit id (40 or 64 lower-case hex digits); pin the commit, not a branch or tag")]
    BadRev {
        /// The revision as given.
        rev: String,
    },

    /// The git program cannot run.
    #[error("the `git` program is not installed or not runnable ({why}); install git")]
    GitMissing {
        /// Why.
        why: String,
    },

    /// A git command failed.
    #[error("git {args} failed ({status}): {stderr}")]
    Git {
        /// Its arguments.
        args: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },

    /// The repository does not have the commit.
    #[error("{url}: commit {rev} is not there (fetched from {source_repo})")]
    NoCommit {
        /// The repository's URL.
        url: String,
        /// The commit.
        rev: String,
        /// Where the objects were fetched from.
        source_repo: String,
    },

    /// A subpath is not in the commit's tree.
    #[error("{url} at {rev}: no path `{path}` in the tree")]
    NoSuchSubpath {
        /// The repository's URL.
        url: String,
        /// The commit.
        rev: String,
        /// The subpath.
        path: String,
    },

    /// Offline, the repository is neither local nor mirrored.
    #[error("{url} is not a local repository and offline mode forbids the network; add a git mirror (`--git-mirror {url}=DIR`) or vendor it")]
    Offline {
        /// The repository's URL.
        url: String,
        /// The commit.
        rev: String,
    },

    /// Writing the tree failed; the inner error names `URL at REV`.
    #[error(transparent)]
    Tree(#[from] crate::archive::Error),

    /// A Git LFS pointer file is not valid.
    #[error("invalid Git LFS pointer: {why}")]
    BadLfsPointer {
        /// What is wrong.
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

fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |error| Error::Io { path, error }
}

/// Whether a repository location is on this machine.
fn is_local(location: &str) -> bool {
    location.starts_with("file://") || (!location.contains("://") && !looks_like_scp(location))
}

/// `user@host:path`, git's scp-like syntax.
fn looks_like_scp(location: &str) -> bool {
    match location.split_once(':') {
        Some((host, _)) => !host.contains('/'),
        None => false,
    }
}

/// Checks out `spec` into `dest` (created; must be absent or empty), taking the
/// objects from a git mirror of `spec.url` when `mirrors` has one.
pub fn fetch(spec: &GitSpec, mirrors: &Mirrors, offline: bool, dest: &Path) -> Result<GitFetched> {
    let rev = &spec.rev;
    let hex = rev.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex || !(rev.len() == 40 || rev.len() == 64) {
        return Err(Error::BadRev { rev: rev.clone() });
    }
    let source = match mirrors.git_mirror(&spec.url) {
        Some(p) => p.display().to_string(),
        None => spec.url.clone(),
    };
    // git runs inside the scratch repository: relative paths must not move.
    let source = match is_local(&source) && !source.starts_with("file://") && Path::new(&source).is_relative() {
        true => std::env::current_dir().map_err(io_err("."))?.join(&source).display().to_string(),
        false => source,
    };
    if offline && !is_local(&source) {
        return Err(Error::Offline { url: spec.url.clone(), rev: rev.clone() });
    }
    let scratch = scratch_dir(dest)?;
    let result = fetch_into(spec, &source, &scratch, dest);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn scratch_dir(dest: &Path) -> Result<PathBuf> {
    let mut name = dest.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".gitdir");
    let scratch = dest.with_file_name(name);
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch).map_err(io_err(&scratch))?;
    }
    Ok(scratch)
}

fn fetch_into(spec: &GitSpec, source: &str, repo: &Path, dest: &Path) -> Result<GitFetched> {
    git(None, &[OsStr::new("init"), OsStr::new("-q"), OsStr::new("--bare"), repo.as_os_str()])?;
    let rev = spec.rev.as_str();
    // Servers that allow fetching a commit by id give just that commit; others
    // (and old local repositories) need every ref, then the commit is looked up.
    let shallow = git(Some(repo), &["fetch", "-q", "--no-tags", "--depth", "1", source, rev]);
    if shallow.is_err() {
        git(Some(repo), &["fetch", "-q", "--no-tags", source, "+refs/*:refs/forge/*"])?;
    }
    let commit = format!("{rev}^{{commit}}");
    if git(Some(repo), &["cat-file", "-e", &commit]).is_err() {
        return Err(Error::NoCommit { url: spec.url.clone(), rev: rev.to_owned(), source_repo: source.to_owned() });
    }
    let entries = list_tree(spec, repo)?;
    let label = format!("{} at {rev}", spec.url);
    let mut out = TreeWriter::new(dest, &label, Limits::default())?;
    write_blobs(repo, &entries, &mut out)?;
    let (count, _, _) = out.finish()?;
    Ok(GitFetched { source: source.to_owned(), entries: count })
}

/// One `git ls-tree` line.
struct TreeEntry {
    mode: u32,
    object: String,
    path: Vec<u8>,
}

fn list_tree(spec: &GitSpec, repo: &Path) -> Result<Vec<TreeEntry>> {
    let mut args: Vec<&str> = vec!["ls-tree", "-r", "-z", "--full-tree", &spec.rev];
    if !spec.subpaths.is_empty() {
        args.push("--");
        args.extend(spec.subpaths.iter().map(|s| s.trim_matches('/')));
    }
    let raw = git(Some(repo), &args)?;
    let mut entries = Vec::new();
    for rec in raw.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let bad = || Error::Git { args: args.join(" "), status: "ok".into(), stderr: "unreadable output".into() };
        let tab = rec.iter().position(|&b| b == b'\t').ok_or_else(bad)?;
        let meta = std::str::from_utf8(&rec[..tab]).map_err(|_| bad())?;
        let mut f = meta.split(' ');
        let (mode, _kind, object) = (f.next().ok_or_else(bad)?, f.next().ok_or_else(bad)?, f.next().ok_or_else(bad)?);
        let mode = u32::from_str_radix(mode, 8).map_err(|_| bad())?;
        entries.push(TreeEntry { mode, object: object.to_owned(), path: rec[tab + 1..].to_vec() });
    }
    for sub in &spec.subpaths {
        let sub = sub.trim_matches('/').as_bytes();
        let covers = |p: &[u8]| p == sub || (p.starts_with(sub) && p.get(sub.len()) == Some(&b'/'));
        if !entries.iter().any(|e| covers(&e.path)) {
            return Err(Error::NoSuchSubpath {
                url: spec.url.clone(),
                rev: spec.rev.clone(),
                path: String::from_utf8_lossy(sub).into_owned(),
            });
        }
    }
    Ok(entries)
}

/// Writes every entry, reading blobs from one `git cat-file --batch`.
fn write_blobs(repo: &Path, entries: &[TreeEntry], out: &mut TreeWriter) -> Result<()> {
    let mut child = git_command(Some(repo))
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::GitMissing { why: e.to_string() })?;
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(Error::GitMissing { why: "no pipes to git cat-file".into() });
    };
    let mut reader = BufReader::with_capacity(1 << 20, stdout);
    let pipe_err = |e: std::io::Error| Error::Io { path: repo.to_owned(), error: e };
    for entry in entries {
        out.count_entry()?;
        let Some(rel) = entry_path(out.source(), &entry.path, 0)? else { continue };
        match entry.mode {
            0o160000 => {
                out.dir(&rel)?;
                out.note(&rel, "submodule left as an empty directory");
                continue;
            }
            0o100644 | 0o100755 | 0o120000 => {}
            other => {
                out.note(&rel, format!("tree entry of unknown mode {other:o} skipped"));
                continue;
            }
        }
        writeln!(stdin, "{}", entry.object).and_then(|()| stdin.flush()).map_err(pipe_err)?;
        let mut header = String::new();
        reader.read_line(&mut header).map_err(pipe_err)?;
        let size: u64 = header.split(' ').nth(2).and_then(|s| s.trim().parse().ok()).ok_or_else(|| Error::Git {
            args: "cat-file --batch".into(),
            status: "ok".into(),
            stderr: format!("unexpected answer `{}` for {}", header.trim(), entry.object),
        })?;
        let mut blob = (&mut reader).take(size);
        if entry.mode == 0o120000 {
            let mut target = Vec::new();
            blob.read_to_end(&mut target).map_err(pipe_err)?;
            out.symlink(&rel, Path::new(OsStr::from_bytes(&target)))?;
        } else {
            out.file(&rel, entry.mode & 0o777, &mut blob)?;
        }
        let mut newline = [0u8; 1];
        reader.read_exact(&mut newline).map_err(pipe_err)?;
    }
    drop(stdin);
    let _ = child.wait();
    Ok(())
}

/// A git command with a predictable environment: no system config, no
/// prompts, no repository inherited from the caller's environment.
fn git_command(repo: Option<&Path>) -> Command {
    let mut cmd = Command::new("git");
    for var in
        ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES"]
    {
        cmd.env_remove(var);
    }
    cmd.env("GIT_TERMINAL_PROMPT", "0").env("GIT_CONFIG_NOSYSTEM", "1").env("LC_ALL", "C");
    if let Some(repo) = repo {
        cmd.arg("-C").arg(repo);
    }
    cmd
}

/// Runs git and returns its stdout.
fn git<S: AsRef<OsStr>>(repo: Option<&Path>, args: &[S]) -> Result<Vec<u8>> {
    let shown = args.iter().map(|a| a.as_ref().to_string_lossy()).collect::<Vec<_>>().join(" ");
    let out = git_command(repo)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::GitMissing { why: e.to_string() })?;
    if !out.status.success() {
        return Err(Error::Git {
            args: shown,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(out.stdout)
}

/// A Git LFS pointer: the file in the repository stands for an object of this
/// hash and size, fetched separately.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LfsPointer {
    /// sha256 of the object's bytes.
    pub oid: Hash,
    /// The object's size in bytes.
    pub size: u64,
}

/// The first line of every pointer file.
const LFS_VERSION: &str = "version https://git-lfs.github.com/spec/v1";
/// Pointer files are small; anything larger is ordinary content.
const LFS_MAX_POINTER: usize = 1024;

impl LfsPointer {
    /// Parses a file's content: `Ok(None)` when it is not a pointer at all,
    /// `Err` when it claims to be one but is malformed.
    pub fn parse(data: &[u8]) -> Result<Option<LfsPointer>> {
        if data.len() > LFS_MAX_POINTER || !data.starts_with(LFS_VERSION.as_bytes()) {
            return Ok(None);
        }
        let bad = |why: &str| Error::BadLfsPointer { why: why.to_owned() };
        let text = std::str::from_utf8(data).map_err(|_| bad("not UTF-8"))?;
        let (mut oid, mut size) = (None, None);
        let mut lines = text.lines();
        if lines.next() != Some(LFS_VERSION) {
            return Err(bad("the version line must stand alone"));
        }
        for line in lines {
            let (key, value) = line.split_once(' ').ok_or_else(|| bad(&format!("line `{line}` is not `key value`")))?;
            match key {
                "oid" => {
                    let hex = value.strip_prefix("sha256:").ok_or_else(|| bad("oid must be sha256:<hex>"))?;
                    if hex.len() != 64 {
                        return Err(bad("oid must have 64 hex digits"));
                    }
                    oid = Some(Hash::parse_digest(Algo::Sha256, hex).map_err(|e| bad(&e.to_string()))?);
                }
                "size" => size = Some(value.parse::<u64>().map_err(|_| bad(&format!("size `{value}`")))?),
                _ => {}
            }
        }
        match (oid, size) {
            (Some(oid), Some(size)) => Ok(Some(LfsPointer { oid, size })),
            _ => Err(bad("oid and size are required")),
        }
    }
}

/// Every LFS pointer file under `dir`, sorted by path (relative to `dir`).
pub fn find_lfs_pointers(dir: &Path) -> Result<Vec<(PathBuf, LfsPointer)>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io_err(&d))? {
            let entry = entry.map_err(io_err(&d))?;
            let path = entry.path();
            let meta = entry.file_type().map_err(io_err(&path))?;
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() && entry.metadata().map_err(io_err(&path))?.len() <= LFS_MAX_POINTER as u64 {
                let data = std::fs::read(&path).map_err(io_err(&path))?;
                if let Some(p) = LfsPointer::parse(&data)? {
                    found.push((path.strip_prefix(dir).unwrap_or(&path).to_owned(), p));
                }
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OID: &str = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

    #[test]
    fn a_spec_lfs_pointer_parses() {
        let text = format!("{LFS_VERSION}\noid sha256:{OID}\nsize 12345\n");
        let p = LfsPointer::parse(text.as_bytes()).unwrap().unwrap();
        assert_eq!(p.oid.to_hex(), OID);
        assert_eq!(p.size, 12345);
    }

    #[test]
    fn ordinary_content_is_not_a_pointer() {
        assert_eq!(LfsPointer::parse(b"hello\n").unwrap(), None);
    }

    #[test]
    fn a_broken_pointer_is_an_error() {
        for text in [
            format!("{LFS_VERSION}\noid sha256:{OID}\n"),
            format!("{LFS_VERSION}\noid sha1:{OID}\nsize 1\n"),
            format!("{LFS_VERSION}\noid sha256:{OID}\nsize many\n"),
        ] {
            assert!(LfsPointer::parse(text.as_bytes()).is_err(), "{text}");
        }
    }

    #[test]
    fn scp_like_and_url_locations_are_remote() {
        assert!(!is_local("git@host:repo.git"));
        assert!(!is_local("https://host/repo"));
        assert!(is_local("/srv/git/repo"));
        assert!(is_local("file:///srv/git/repo"));
        assert!(is_local("./relative/repo"));
    }
}
