//! Paths inside a root filesystem: symlinks followed the way they would be inside it
//! (absolute targets from the root, `..` stopping at the root), and the loader's
//! configured directories (`/etc/ld.so.conf` with its includes, musl's path file).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// Symlink hops allowed in one lookup, as Linux's limit, so loops end.
const MAX_HOPS: usize = 40;

/// Looks `path` up inside `root`: `Some((path inside the root, host path))` of the file it
/// names after following symlinks, never leaving `root`; `None` when it does not exist.
pub fn resolve(root: &Path, path: &str) -> Option<(String, PathBuf)> {
    let mut pending: VecDeque<String> = path.split('/').map(str::to_owned).collect();
    let mut current: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop_front() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                current.pop();
                continue;
            }
            _ => {}
        }
        let host = root.join(current.iter().chain([&part]).map(String::as_str).collect::<PathBuf>());
        let meta = std::fs::symlink_metadata(&host).ok()?;
        if !meta.file_type().is_symlink() {
            current.push(part);
            continue;
        }
        hops += 1;
        if hops > MAX_HOPS {
            return None;
        }
        let target = std::fs::read_link(&host).ok()?;
        let target = target.to_string_lossy();
        if target.starts_with('/') {
            current.clear();
        }
        for (i, p) in target.split('/').enumerate() {
            pending.insert(i, p.to_owned());
        }
    }
    let host = root.join(current.iter().collect::<PathBuf>());
    std::fs::metadata(&host).ok()?;
    Some((format!("/{}", current.join("/")), host))
}

/// The directories `/etc/ld.so.conf` names in `root`, includes followed (globs in the last
/// component, matches sorted as ldconfig does), in order; empty when there is no such file.
pub fn ld_so_conf_dirs(root: &Path) -> Vec<String> {
    conf_dirs(root, "/etc/ld.so.conf")
}

/// The directories the configuration file `conf` (a path inside `root`) names, as
/// [`ld_so_conf_dirs`] reads `/etc/ld.so.conf`.
pub fn conf_dirs(root: &Path, conf: &str) -> Vec<String> {
    let mut dirs = Vec::new();
    read_conf(root, conf, &mut dirs, 0);
    dirs
}

/// Where a glibc loader built for its own prefix (`--prefix=/usr/glibc`) looks, in
/// place of `/etc/ld.so.conf` and the standard directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixedLoader {
    /// Its `ld.so.conf` (beside the `ld.so.cache` it reads), e.g. `/usr/glibc/etc/ld.so.conf`.
    pub conf: String,
    /// Its built-in search directories, e.g. `/usr/glibc/lib`.
    pub system_dirs: Vec<String>,
}

/// Reads the paths compiled into the glibc loader `loader` (a host path): its cache file
/// (`<sysconfdir>/ld.so.cache`) and its system directories (NUL-terminated strings
/// ending in `/`, as glibc stores them). `None` for a loader of the standard layout
/// (cache `/etc/ld.so.cache`), which the standard search describes, or when the
/// file holds no such paths (not a glibc loader).
pub fn prefixed_glibc_loader(loader: &Path) -> Option<PrefixedLoader> {
    let bytes = std::fs::read(loader).ok()?;
    let strings: Vec<&str> =
        bytes.split(|b| *b == 0).filter_map(|s| std::str::from_utf8(s).ok()).filter(|s| s.starts_with('/')).collect();
    let cache = strings.iter().find(|s| s.ends_with("/etc/ld.so.cache"))?;
    if *cache == "/etc/ld.so.cache" {
        return None;
    }
    let prefix = cache.trim_end_matches("/etc/ld.so.cache");
    let mut system_dirs: Vec<String> = Vec::new();
    for dir in strings.iter().filter(|s| s.len() > 1 && s.ends_with('/') && s.starts_with(&format!("{prefix}/"))) {
        let dir = dir.trim_end_matches('/').to_owned();
        if !system_dirs.contains(&dir) {
            system_dirs.push(dir);
        }
    }
    if system_dirs.is_empty() {
        return None;
    }
    Some(PrefixedLoader { conf: cache.replace("ld.so.cache", "ld.so.conf"), system_dirs })
}

fn read_conf(root: &Path, path: &str, dirs: &mut Vec<String>, depth: usize) {
    let Some((_, host)) = resolve(root, path) else { return };
    let Ok(text) = std::fs::read_to_string(host) else { return };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line.strip_prefix("include").filter(|r| r.starts_with([' ', '\t'])) {
            // A relative include is relative to the including file's directory.
            for pattern in pattern.split_whitespace() {
                let base = Path::new(path).parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
                let full = if pattern.starts_with('/') { pattern.to_owned() } else { format!("{base}/{pattern}") };
                for file in glob(root, &full) {
                    if depth < 8 {
                        read_conf(root, &file, dirs, depth + 1);
                    }
                }
            }
        } else if !line.is_empty() && !line.starts_with("hwcap") {
            for dir in line.split([' ', '\t', ',', ':']).filter(|d| d.starts_with('/')) {
                if !dirs.iter().any(|d| d == dir) {
                    dirs.push(dir.to_owned());
                }
            }
        }
    }
}

/// Files inside `root` matching `pattern`, whose last component may hold `*` and `?`.
fn glob(root: &Path, pattern: &str) -> Vec<String> {
    let (dir, name) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    if !name.contains(['*', '?']) {
        return vec![pattern.to_owned()];
    }
    let Some((_, host)) = resolve(root, if dir.is_empty() { "/" } else { dir }) else { return Vec::new() };
    let Ok(entries) = std::fs::read_dir(host) else { return Vec::new() };
    let mut found: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| wildcard(name.as_bytes(), f.as_bytes()))
        .map(|f| format!("{dir}/{f}"))
        .collect();
    found.sort();
    found
}

fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wildcard(&pattern[1..], name) || (!name.is_empty() && wildcard(pattern, &name[1..])),
        (Some(b'?'), Some(_)) => wildcard(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => wildcard(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// musl's search path: `/etc/ld-musl-<arch>.path` in `root` (entries split at newlines
/// or `:`), else its built-in `/lib:/usr/local/lib:/usr/lib`.
pub fn musl_dirs(root: &Path, arch: &str) -> Vec<String> {
    let file = format!("/etc/ld-musl-{arch}.path");
    match resolve(root, &file).and_then(|(_, host)| std::fs::read_to_string(host).ok()) {
        Some(text) => text.split(['\n', ':']).map(str::trim).filter(|d| !d.is_empty()).map(str::to_owned).collect(),
        None => ["/lib", "/usr/local/lib", "/usr/lib"].map(str::to_owned).to_vec(),
    }
}
