//! APKINDEX.tar.gz: a signature stream, then one gzip stream holding a tar with
//! `DESCRIPTION` and `APKINDEX`. `APKINDEX` is records of `X:value` lines separated by
//! blank lines; the signature covers the second gzip stream as stored.
//!
//! Every line of a record is kept, in order (`fields`), so an index read and written
//! again is byte-identical; records made from packages use apk-tools' order
//! (`C P V A S I T U L o m t c k D p i`, as `apk_pkg_write_index_header`).

use std::path::Path;

use super::checksum::Checksum;
use super::dep::{self, Dep};
use super::keys::{self, Keys, SigAlgo, Signer};
use super::package::Apk;
use super::sign::SigningKey;
use super::tarball::{self, NewEntry, Writer};
use super::{streams, Error, Result};

/// One package record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexPackage {
    /// `C:`: checksum of the package's control stream.
    pub checksum: Checksum,
    /// `P:`: package name.
    pub name: String,
    /// `V:`: version.
    pub version: String,
    /// `A:`: architecture.
    pub arch: String,
    /// Size of the .apk file.
    pub size: u64,
    /// `I:`: installed size in bytes.
    pub installed_size: u64,
    /// `T:`: description.
    pub description: String,
    /// `U:`: project URL.
    pub url: String,
    /// `L:`: license.
    pub license: String,
    /// `o:`: origin (the source package).
    pub origin: Option<String>,
    /// `m:`: maintainer.
    pub maintainer: Option<String>,
    /// `t:`: build time, seconds since the epoch.
    pub build_time: Option<u64>,
    /// `c:`: the aports commit it was built from.
    pub commit: Option<String>,
    /// `k:`: preference among packages providing the same name.
    pub provider_priority: Option<u64>,
    /// `D:`: dependencies.
    pub depends: Vec<Dep>,
    /// `p:`: names it provides.
    pub provides: Vec<Dep>,
    /// `i:`: install when all of these are installed.
    pub install_if: Vec<Dep>,
    /// `r:`: packages whose files it may replace.
    pub replaces: Vec<Dep>,
    /// `q:`: priority when replacing files.
    pub replaces_priority: Option<u64>,
    /// Every line as read (field letter, value), in order.
    pub fields: Vec<(char, String)>,
}

impl IndexPackage {
    /// The file name in a repository: `name-version.apk`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.apk", self.name, self.version)
    }

    /// A record from lines; `what` names the input (with its line) in errors.
    pub fn from_fields(fields: Vec<(char, String)>, what: &str) -> Result<IndexPackage> {
        let mut checksum = None;
        let mut p = IndexPackage {
            checksum: Checksum([0; 20]),
            name: String::new(),
            version: String::new(),
            arch: String::new(),
            size: 0,
            installed_size: 0,
            description: String::new(),
            url: String::new(),
            license: String::new(),
            origin: None,
            maintainer: None,
            build_time: None,
            commit: None,
            provider_priority: None,
            depends: vec![],
            provides: vec![],
            install_if: vec![],
            replaces: vec![],
            replaces_priority: None,
            fields: vec![],
        };
        for (field, value) in &fields {
            // Built only on error: formatting it for every line would dominate parsing.
            let at = || format!("{what} (field {field}: of {})", if p.name.is_empty() { "?" } else { &p.name });
            let number =
                || value.parse::<u64>().map_err(|_| Error::format(&at(), format!("{value:?} is not a number")));
            let deps = |v: &str| Dep::parse_list(v, what).map_err(|e| Error::format(&at(), e.to_string()));
            match field {
                'C' => checksum = Some(Checksum::parse(value, what).map_err(|e| Error::format(&at(), e.to_string()))?),
                'P' => p.name = value.clone(),
                'V' => {
                    if !super::version::is_valid(value) || value.is_empty() {
                        return Err(Error::format(&at(), format!("invalid version {value:?}")));
                    }
                    p.version = value.clone()
                }
                'A' => p.arch = value.clone(),
                'S' => p.size = number()?,
                'I' => p.installed_size = number()?,
                'T' => p.description = value.clone(),
                'U' => p.url = value.clone(),
                'L' => p.license = value.clone(),
                'o' => p.origin = Some(value.clone()),
                'm' => p.maintainer = Some(value.clone()),
                't' => p.build_time = Some(number()?),
                'c' => p.commit = Some(value.clone()),
                'k' => p.provider_priority = Some(number()?),
                'D' => p.depends = deps(value)?,
                'p' => p.provides = deps(value)?,
                'i' => p.install_if = deps(value)?,
                'r' => p.replaces = deps(value)?,
                'q' => p.replaces_priority = Some(number()?),
                // apk ignores unknown lower-case fields; so do we (they stay in `fields`).
                _ => {}
            }
        }
        p.checksum = checksum.ok_or_else(|| Error::format(what, format!("record {:?} has no C: line", p.name)))?;
        if p.name.is_empty() || p.version.is_empty() {
            return Err(Error::format(what, "record without P: or V:"));
        }
        p.fields = fields;
        Ok(p)
    }

    /// The record of a package read from its .apk, fields in apk-tools' order.
    pub fn from_apk(apk: &Apk) -> Result<IndexPackage> {
        let i = &apk.info;
        let mut f: Vec<(char, String)> = vec![
            ('C', apk.checksum.to_string()),
            ('P', i.name.clone()),
            ('V', i.version.clone()),
            ('A', i.arch.clone()),
            ('S', apk.size.to_string()),
            ('I', i.size.to_string()),
            ('T', i.description.clone()),
            ('U', i.url.clone()),
            ('L', i.license.clone()),
        ];
        let optional = [
            ('o', i.origin.clone()),
            ('m', i.maintainer.clone()),
            ('t', i.build_date.map(|t| t.to_string())),
            ('c', i.commit.clone()),
            ('k', i.provider_priority.filter(|&k| k != 0).map(|k| k.to_string())),
        ];
        f.extend(optional.into_iter().filter_map(|(c, v)| v.map(|v| (c, v))));
        for (c, deps) in [('D', &i.depends), ('p', &i.provides), ('i', &i.install_if)] {
            if !deps.is_empty() {
                f.push((c, dep::join(deps)));
            }
        }
        IndexPackage::from_fields(f, &format!("{}-{}.apk", i.name, i.version))
    }

    /// The record as text, ending with the blank line that separates records.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for (c, v) in &self.fields {
            s.push(*c);
            s.push(':');
            s.push_str(v);
            s.push('\n');
        }
        s.push('\n');
        s
    }
}

/// A verified index.
#[derive(Clone, Debug)]
pub struct Index {
    /// Who signed it; `None` only from [`parse_unverified`].
    pub signer: Option<Signer>,
    /// The index's description (the repository's version).
    pub description: Option<String>,
    /// Every package record, in file order.
    pub packages: Vec<IndexPackage>,
}

/// Parses `APKINDEX` text.
pub fn parse_text(text: &str, what: &str) -> Result<Vec<IndexPackage>> {
    let mut packages = Vec::new();
    let mut fields = Vec::new();
    for (n, line) in text.split('\n').enumerate() {
        if line.is_empty() {
            if !fields.is_empty() {
                packages.push(IndexPackage::from_fields(std::mem::take(&mut fields), &format!("{what}:{}", n + 1))?);
            }
            continue;
        }
        let mut chars = line.chars();
        match (chars.next(), chars.next()) {
            (Some(c), Some(':')) if c.is_ascii_alphabetic() => fields.push((c, line[2..].to_owned())),
            _ => return Err(Error::format(&format!("{what}:{}", n + 1), format!("{line:?} is not an X:value line"))),
        }
    }
    if !fields.is_empty() {
        packages.push(IndexPackage::from_fields(fields, &format!("{what}:end"))?);
    }
    Ok(packages)
}

/// `APKINDEX` text for records (in the given order).
pub fn write_text(packages: &[IndexPackage]) -> String {
    packages.iter().map(IndexPackage::to_text).collect()
}

/// Reads and verifies an APKINDEX.tar.gz file.
pub fn read_file(path: &Path, keys: &Keys) -> Result<Index> {
    let bytes = std::fs::read(path).map_err(Error::io(path))?;
    read(&bytes, &path.display().to_string(), keys)
}

/// Reads and verifies APKINDEX.tar.gz bytes.
pub fn read(bytes: &[u8], what: &str, keys: &Keys) -> Result<Index> {
    parse(bytes, what, Some(keys))
}

/// Reads an index without checking its signature (for fuzzing and inspection only).
pub fn parse_unverified(bytes: &[u8], what: &str) -> Result<Index> {
    parse(bytes, what, None)
}

fn parse(bytes: &[u8], what: &str, keys: Option<&Keys>) -> Result<Index> {
    let mut parts = streams::split(bytes, what)?;
    let sigs = match parts.first() {
        Some(s) if keys::is_signature_stream(s) => keys::parse_signatures(&parts.remove(0).content, what)?,
        _ => Vec::new(),
    };
    let [body]: [streams::Stream; 1] = parts.try_into().map_err(|p: Vec<_>| {
        Error::format(what, format!("expected one index stream after the signature, found {}", p.len()))
    })?;
    let signer = match keys {
        Some(k) => Some(keys::verify(&sigs, &[&bytes[body.range.clone()]], k, what)?),
        None => None,
    };
    let (mut description, mut text) = (None, None);
    for e in tarball::read(&body.content, what)? {
        let content = tarball::content(&body.content, &e);
        let as_text =
            || String::from_utf8(content.to_vec()).map_err(|_| Error::format(what, format!("{} is not UTF-8", e.path)));
        match e.path.as_str() {
            "DESCRIPTION" => description = Some(as_text()?),
            "APKINDEX" => text = Some(as_text()?),
            other => return Err(Error::format(what, format!("unexpected {other:?} in the index archive"))),
        }
    }
    let text = text.ok_or_else(|| Error::format(what, "no APKINDEX in the archive"))?;
    Ok(Index { signer, description, packages: parse_text(&text, what)? })
}

/// Writes a signed APKINDEX.tar.gz holding `packages` (in the given order). `mtime`
/// stamps the tar entries (fixed for reproducibility).
pub fn write(
    packages: &[IndexPackage],
    description: &str,
    key: &SigningKey,
    algo: SigAlgo,
    mtime: u64,
) -> Result<Vec<u8>> {
    write_with(packages, description, key, &[algo], mtime)
}

/// Like [`write()`], with one signature entry per algorithm, in the order given.
pub fn write_with(
    packages: &[IndexPackage],
    description: &str,
    key: &SigningKey,
    algos: &[SigAlgo],
    mtime: u64,
) -> Result<Vec<u8>> {
    let text = write_text(packages);
    let mut w = Writer::new();
    for (path, content) in [("DESCRIPTION", description.as_bytes()), ("APKINDEX", text.as_bytes())] {
        w.append(&NewEntry::root_file(path, content, 0o644, mtime))?;
    }
    let body = streams::gzip(&w.finish(true));
    let mut out = key.signature_stream_with(algos, &body, mtime)?;
    out.extend_from_slice(&body);
    Ok(out)
}

#[cfg(test)]
mod tests;
