//! The pure parts of apk's database in a root filesystem, written the way apk-tools 2.x
//! writes them (`database.c`), so the real `apk` in the finished system sees a consistent
//! state:
//!
//! - `lib/apk/db/installed`: per package, the index header (`C P V A S I T U L o m t c k
//!   D p i`), then `r:` replaces, `q:` replaces priority, `s:` repository tag, then per
//!   directory in the order the package's data archive first names it `F:` (and `M:` when
//!   not root:root 0755), per file `R:` (`a:` when not root:root 0644) and `Z:` (its
//!   SHA-1), and a blank line.
//! - `etc/apk/world`: the world dependencies, one a line.
//! - `etc/apk/repositories`: one URL a line (tags as `@tag URL`).
//! - `lib/apk/db/scripts.tar`: each script as `name-version.Q1checksum.action`.
//! - `lib/apk/db/triggers`: `Q1checksum trigger...` per package with triggers.
//!
//! Owners are the numeric uid/gid of the tar entries (apk maps `root` to 0 through the
//! target's passwd; packages forge installs are owned by root or carry numeric ids).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use sha1::{Digest, Sha1};

use super::checksum::Checksum;
use super::dep::{self, Dep};
use super::index::IndexPackage;
use super::package::{Apk, ScriptKind};
use super::tarball::{Entry, Kind};
use super::{Error, Result};

/// Ownership and mode of a directory or file as the database records it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Acl {
    uid: u64,
    gid: u64,
    mode: u32,
    xattrs: Option<Checksum>,
}

impl Acl {
    fn of(e: &Entry) -> Acl {
        Acl { uid: e.uid, gid: e.gid, mode: e.mode & 0o7777, xattrs: xattr_checksum(e) }
    }

    fn is(&self, mode: u32) -> bool {
        self.uid == 0 && self.gid == 0 && self.mode == mode && self.xattrs.is_none()
    }

    fn line(&self, field: char) -> String {
        let mut s = format!("{field}:{}:{}:{:o}", self.uid, self.gid, self.mode);
        if let Some(x) = &self.xattrs {
            let _ = write!(s, ":{x}");
        }
        s.push('\n');
        s
    }
}

/// apk's hash of a file's extended attributes: SHA-1 over the attributes sorted by name,
/// each as big-endian u32 length + name, u32 length + value.
fn xattr_checksum(e: &Entry) -> Option<Checksum> {
    let mut attrs: Vec<(&str, &[u8])> = e.xattrs().collect();
    if attrs.is_empty() {
        return None;
    }
    attrs.sort();
    let mut h = Sha1::new();
    for (name, value) in attrs {
        h.update((name.len() as u32).to_be_bytes());
        h.update(name.as_bytes());
        h.update((value.len() as u32).to_be_bytes());
        h.update(value);
    }
    Some(Checksum(h.finalize().into()))
}

struct DirRecord<'a> {
    name: &'a str,
    acl: Option<Acl>,
    files: Vec<&'a Entry>,
}

/// Groups the data entries into directories in first-seen order, as apk's install does.
fn directories<'a>(apk: &'a Apk, what: &str) -> Result<Vec<DirRecord<'a>>> {
    let mut dirs: Vec<DirRecord<'a>> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    for e in &apk.files {
        let path = e.path.trim_end_matches('/');
        if e.kind == Kind::Dir {
            let i = *at.entry(path).or_insert_with(|| {
                dirs.push(DirRecord { name: path, acl: None, files: vec![] });
                dirs.len() - 1
            });
            dirs[i].acl = Some(Acl::of(e));
            continue;
        }
        let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
        // apk skips placeholder files that only keep a directory in the package.
        if file.starts_with(".keep_") {
            continue;
        }
        let i = match at.get(dir) {
            Some(&i) => i,
            None if dir.is_empty() => {
                dirs.push(DirRecord { name: "", acl: None, files: vec![] });
                at.insert("", dirs.len() - 1);
                dirs.len() - 1
            }
            None => return Err(Error::format(what, format!("{path}: no directory entry for {dir} before it"))),
        };
        dirs[i].files.push(e);
    }
    Ok(dirs)
}

/// The `installed` record of one package (ending with its blank line). `tag` is the
/// repository tag it was pinned with, if any.
pub fn installed_record(apk: &Apk, tag: Option<&str>) -> Result<String> {
    let what = format!("{}-{}", apk.info.name, apk.info.version);
    let mut s = IndexPackage::from_apk(apk)?.to_text();
    s.pop(); // the record goes on; its blank line comes last
    if !apk.info.replaces.is_empty() {
        let _ = writeln!(s, "r:{}", dep::join(&apk.info.replaces));
    }
    if let Some(q) = apk.info.replaces_priority.filter(|&q| q != 0) {
        let _ = writeln!(s, "q:{q}");
    }
    if let Some(t) = tag {
        let _ = writeln!(s, "s:{t}");
    }
    for d in directories(apk, &what)? {
        let _ = writeln!(s, "F:{}", d.name);
        if let Some(acl) = d.acl.filter(|a| !a.is(0o755)) {
            s.push_str(&acl.line('M'));
        }
        for f in d.files {
            let name = f.path.rsplit_once('/').map_or(f.path.as_str(), |(_, n)| n);
            let _ = writeln!(s, "R:{name}");
            let acl = Acl::of(f);
            if !acl.is(0o644) {
                s.push_str(&acl.line('a'));
            }
            if let Some(sum) = Apk::file_checksum(f) {
                let _ = writeln!(s, "Z:{sum}");
            }
        }
    }
    s.push('\n');
    Ok(s)
}

/// `lib/apk/db/installed` for packages in installation order, each with its tag.
pub fn installed_db(packages: &[(&Apk, Option<&str>)]) -> Result<String> {
    packages.iter().map(|(apk, tag)| installed_record(apk, *tag)).collect()
}

/// `etc/apk/world`: one dependency a line, sorted, as apk writes it.
pub fn world(deps: &[Dep]) -> String {
    let mut lines: Vec<String> = deps.iter().map(Dep::to_string).collect();
    lines.sort();
    lines.dedup();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// `etc/apk/repositories`: `(tag, url)` pairs, one a line (`@tag url` when tagged).
pub fn repositories(repos: &[(Option<&str>, &str)]) -> String {
    repos
        .iter()
        .map(|(tag, url)| match tag {
            Some(t) => format!("@{t} {url}\n"),
            None => format!("{url}\n"),
        })
        .collect()
}

/// The name of a script in `scripts.tar`: `name-version.Q1checksum.action`.
pub fn script_file_name(apk: &Apk, kind: ScriptKind) -> String {
    format!("{}-{}.{}.{}", apk.info.name, apk.info.version, apk.checksum, kind.name())
}

/// `lib/apk/db/scripts.tar`: every script of every package (in package order, then apk's
/// script order), regular files 0755 root:root stamped `mtime`, GNU "ustar  " headers as
/// apk writes them, and the end-of-archive.
pub fn scripts_tar(apks: &[&Apk], mtime: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for apk in apks {
        for script in &apk.scripts {
            let name = script_file_name(apk, script.kind);
            out.extend_from_slice(&apk_tar_header(&name, script.content.len() as u64, mtime));
            out.extend_from_slice(&script.content);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// A header like apk's `apk_tar_write_entry`: octal fields zero-padded with a NUL, magic
/// `"ustar  "`, owner names `root`.
fn apk_tar_header(name: &str, size: u64, mtime: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    let put = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
        let s = format!("{v:0width$o}", width = len - 1);
        let s = &s.as_bytes()[s.len().saturating_sub(len - 1)..];
        h[at..at + s.len()].copy_from_slice(s);
    };
    let n = name.len().min(99);
    h[..n].copy_from_slice(&name.as_bytes()[..n]);
    put(&mut h, 100, 8, 0o755);
    put(&mut h, 108, 8, 0);
    put(&mut h, 116, 8, 0);
    put(&mut h, 124, 12, size);
    put(&mut h, 136, 12, mtime);
    h[156] = b'0';
    h[257..265].copy_from_slice(b"ustar  \0");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    put(&mut h, 148, 7, sum);
    h
}

/// `lib/apk/db/triggers`: `Q1checksum trigger...` for each package with triggers.
pub fn triggers(apks: &[&Apk]) -> String {
    apks.iter()
        .filter(|a| !a.info.triggers.is_empty())
        .map(|a| format!("{} {}\n", a.checksum, a.info.triggers.join(" ")))
        .collect()
}

/// Files owned by two packages: an error naming both, unless the later one `replaces`
/// the earlier (apk's rule) or both are directories.
pub fn check_file_conflicts(apks: &[&Apk]) -> Result<()> {
    let mut owner: BTreeMap<&str, &Apk> = BTreeMap::new();
    for apk in apks {
        for f in apk.files.iter().filter(|f| f.kind != Kind::Dir) {
            let path = f.path.as_str();
            if let Some(prev) = owner.get(path) {
                let replaces = apk.info.replaces.iter().any(|r| r.name == prev.info.name);
                if !replaces {
                    return Err(Error::format(
                        path,
                        format!(
                            "owned by both {}-{} and {}-{} (neither replaces the other)",
                            prev.info.name, prev.info.version, apk.info.name, apk.info.version
                        ),
                    ));
                }
            }
            owner.insert(path, apk);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
