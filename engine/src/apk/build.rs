//! Producing apk v2 packages, as abuild does: a data tar (entries sorted, owned by root,
//! fixed mtime, an `APK-TOOLS.checksum.SHA1` PAX record per file and symlink), gzip; a
//! control tar with `.PKGINFO` (carrying the data stream's `datahash`) and the install
//! scripts, cut before end-of-archive, gzip; a signature stream over the control stream.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::checksum::Checksum;
use super::keys::SigAlgo;
use super::package::Script;
use super::pkginfo::PkgInfo;
use super::sign::SigningKey;
use super::tarball::{Kind, NewEntry, Writer};
use super::{streams, Error, Result};

/// One entry of the package's file tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildEntry {
    /// Relative path without leading `/` (directories without trailing `/`).
    pub path: String,
    /// What it is.
    pub kind: Kind,
    /// Permission bits.
    pub mode: u32,
    /// Owner uid.
    pub uid: u64,
    /// Owner gid.
    pub gid: u64,
    /// A symlink's or hard link's target.
    pub link_target: Option<String>,
    /// A file's content.
    pub content: Vec<u8>,
    /// Extended attributes, written as `SCHILY.xattr.<name>` PAX records.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl BuildEntry {
    /// An entry owned by root, without link target or xattrs (set the fields for those).
    ///
    /// ```
    /// use forge_engine::apk::{build::BuildEntry, tarball::Kind};
    /// let e = BuildEntry::new("usr/bin/hi", Kind::File, 0o755, b"#!/bin/sh\n");
    /// assert_eq!((e.uid, e.gid, e.link_target), (0, 0, None));
    /// ```
    pub fn new(path: &str, kind: Kind, mode: u32, content: &[u8]) -> BuildEntry {
        BuildEntry {
            path: path.to_owned(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            link_target: None,
            content: content.to_vec(),
            xattrs: vec![],
        }
    }
}

/// How to build.
#[derive(Clone, Copy, Debug)]
pub struct BuildOptions {
    /// Timestamp of every tar entry (SOURCE_DATE_EPOCH).
    pub mtime: u64,
    /// The signature's digest algorithm.
    pub algo: SigAlgo,
}

impl Default for BuildOptions {
    fn default() -> BuildOptions {
        BuildOptions { mtime: 0, algo: SigAlgo::RsaSha1 }
    }
}

/// Reads a directory tree into entries, sorted by path, owned by root, modes from the
/// files. Only regular files, directories and symlinks can be packaged (hard links are
/// stored as separate copies).
pub fn entries_from_dir(root: &Path) -> Result<Vec<BuildEntry>> {
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<BuildEntry>) -> Result<()> {
    for item in std::fs::read_dir(dir).map_err(Error::io(dir))? {
        let item = item.map_err(Error::io(dir))?;
        let path = item.path();
        let meta = std::fs::symlink_metadata(&path).map_err(Error::io(&path))?;
        let rel = path.strip_prefix(root).unwrap_or(&path);
        let rel = rel.to_str().ok_or_else(|| Error::format(&path.display().to_string(), "file name is not UTF-8"))?;
        let mode = meta.permissions().mode() & 0o7777;
        let mut e = BuildEntry::new(rel, Kind::File, mode, &[]);
        let ft = meta.file_type();
        if ft.is_dir() {
            e.kind = Kind::Dir;
            out.push(e);
            walk(root, &path, out)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&path).map_err(Error::io(&path))?;
            let target = target.to_str().ok_or_else(|| Error::format(rel, "symlink target is not UTF-8"))?;
            e.kind = Kind::Symlink;
            e.mode = 0o777;
            e.link_target = Some(target.to_owned());
            out.push(e);
        } else if ft.is_file() {
            e.content = std::fs::read(&path).map_err(Error::io(&path))?;
            out.push(e);
        } else {
            return Err(Error::format(
                &path.display().to_string(),
                "only files, directories and symlinks can be packaged",
            ));
        }
    }
    Ok(())
}

/// Builds a signed apk from a directory tree (see [`build`]).
pub fn build_from_dir(
    root: &Path,
    info: &PkgInfo,
    scripts: &[Script],
    key: &SigningKey,
    opts: &BuildOptions,
) -> Result<Vec<u8>> {
    build(&entries_from_dir(root)?, info, scripts, key, opts)
}

/// Builds a signed apk. `info` gives the metadata; its `size` (sum of file sizes) and
/// `datahash` are computed here. Entries are written sorted by path.
pub fn build(
    entries: &[BuildEntry],
    info: &PkgInfo,
    scripts: &[Script],
    key: &SigningKey,
    opts: &BuildOptions,
) -> Result<Vec<u8>> {
    let unsigned = build_unsigned(entries, info, scripts, opts.mtime)?;
    key.sign_apk(&unsigned, &[opts.algo], opts.mtime, "the package being built")
}

/// Builds an apk without its signature stream: the control and data streams, which is
/// what the store keeps (a private key never enters a derivation). Signing later only
/// puts a signature stream in front ([`SigningKey::sign_apk`]), so the `Q1` checksum of
/// the control stream is the same before and after.
pub fn build_unsigned(entries: &[BuildEntry], info: &PkgInfo, scripts: &[Script], mtime: u64) -> Result<Vec<u8>> {
    let mut sorted: Vec<&BuildEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let data = streams::gzip(&data_tar(&sorted, mtime)?);
    let mut info = info.clone();
    info.size = sorted.iter().filter(|e| e.kind == Kind::File).map(|e| e.content.len() as u64).sum();
    info.datahash = Some(Sha256::digest(&data).into());
    let mut out = streams::gzip(&control_tar(&info, scripts, mtime)?);
    out.extend_from_slice(&data);
    Ok(out)
}

fn data_tar(entries: &[&BuildEntry], mtime: u64) -> Result<Vec<u8>> {
    let mut w = Writer::new();
    for e in entries {
        if e.path.is_empty() || e.path.starts_with('/') || e.path.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(Error::format(&e.path, "package paths must be relative, without empty or .. components"));
        }
        let mut pax = Vec::new();
        let sum = match e.kind {
            Kind::File => Some(Checksum::sha1_of(&e.content)),
            Kind::Symlink => Some(Checksum::sha1_of(e.link_target.as_deref().unwrap_or("").as_bytes())),
            _ => None,
        };
        if let Some(sum) = sum {
            pax.push(("APK-TOOLS.checksum.SHA1".to_owned(), sum.to_hex().into_bytes()));
        }
        pax.extend(e.xattrs.iter().map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.clone())));
        let path = if e.kind == Kind::Dir { format!("{}/", e.path) } else { e.path.clone() };
        w.append(&NewEntry {
            path: &path,
            kind: e.kind,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            uname: "root",
            gname: "root",
            mtime,
            link_target: e.link_target.as_deref(),
            content: &e.content,
            pax,
        })?;
    }
    Ok(w.finish(true))
}

fn control_tar(info: &PkgInfo, scripts: &[Script], mtime: u64) -> Result<Vec<u8>> {
    let mut w = Writer::new();
    let pkginfo = info.to_text();
    let mut scripts: Vec<&Script> = scripts.iter().collect();
    scripts.sort_by_key(|s| s.kind);
    let named: Vec<(String, &[u8], u32)> = std::iter::once((".PKGINFO".to_owned(), pkginfo.as_bytes(), 0o644))
        .chain(scripts.iter().map(|s| (format!(".{}", s.kind.name()), s.content.as_slice(), 0o755)))
        .collect();
    for (path, content, mode) in &named {
        w.append(&NewEntry::root_file(path, content, *mode, mtime))?;
    }
    // Cut before end-of-archive so the data stream's tar continues the archive.
    Ok(w.finish(false))
}

#[cfg(test)]
mod tests;
