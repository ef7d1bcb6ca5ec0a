//! A signed apk repository made from unsigned packages, outside the store: each package
//! signed ([`SigningKey::sign_apk`]) and written as `<arch>/<name>-<version>.apk`, and
//! per arch a signed `APKINDEX.tar.gz` listing them, the layout abuild leaves in
//! `$REPODEST/<repo>/` and `apk add --repository DIR` reads. `noarch` packages go into
//! the repository's default arch, as abuild puts them into `$CARCH`.
//!
//! Deterministic: signatures are PKCS#1 v1.5 (no randomness), every timestamp is a
//! package's `builddate`, records are sorted by name and version.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::index::{self, IndexPackage};
use super::keys::SigAlgo;
use super::package;
use super::sign::SigningKey;
use super::{Error, Result};

/// How to write the repository.
#[derive(Clone, Debug)]
pub struct RepoOptions {
    /// Signature entries of every apk and index, in order.
    pub algos: Vec<SigAlgo>,
    /// The index's `DESCRIPTION` (abuild writes the repository's version there).
    pub description: String,
    /// Where `noarch` packages go.
    pub default_arch: String,
}

impl RepoOptions {
    /// `.SIGN.RSA.` (SHA-1, what every apk-tools 2.x verifies) then `.SIGN.RSA256.`.
    pub fn new(description: &str, default_arch: &str) -> RepoOptions {
        RepoOptions {
            algos: vec![SigAlgo::RsaSha1, SigAlgo::RsaSha256],
            description: description.to_owned(),
            default_arch: default_arch.to_owned(),
        }
    }
}

/// One arch folder that was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchDir {
    /// The arch.
    pub arch: String,
    /// The signed packages, sorted.
    pub apks: Vec<PathBuf>,
    /// Its `APKINDEX.tar.gz`.
    pub index: PathBuf,
}

/// Signs the unsigned apks at `unsigned` into a repository at `dir`, replacing what was
/// there (an index must list exactly the packages beside it). The public key is written
/// to `dir/keys/<key name>` for `apk --keys-dir`. Nothing is left half-written: the
/// repository is made beside `dir` and renamed into place.
pub fn write(unsigned: &[PathBuf], key: &SigningKey, dir: &Path, opts: &RepoOptions) -> Result<Vec<ArchDir>> {
    let by_arch = sign_all(unsigned, key, opts)?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    remove_dir(&tmp)?;
    let written = write_dirs(&by_arch, key, &tmp, dir, opts);
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    let written = written?;
    remove_dir(dir)?;
    std::fs::rename(&tmp, dir).map_err(Error::io(dir))?;
    Ok(written)
}

/// One signed package: its file name, bytes and index record.
struct Signed {
    file: String,
    bytes: Vec<u8>,
    record: IndexPackage,
}

/// Signs every package (after checking its datahash and file checksums) and groups them
/// by arch, each group sorted by name and version; two packages of one name and version
/// in an arch are an error.
fn sign_all(unsigned: &[PathBuf], key: &SigningKey, opts: &RepoOptions) -> Result<BTreeMap<String, Vec<Signed>>> {
    let mut by_arch: BTreeMap<String, Vec<Signed>> = BTreeMap::new();
    for path in unsigned {
        let what = path.display().to_string();
        let bytes = std::fs::read(path).map_err(Error::io(path))?;
        let apk = package::parse_unverified(&bytes, &what)?;
        let mtime = apk.info.build_date.unwrap_or(0);
        let signed = key.sign_apk(&bytes, &opts.algos, mtime, &what)?;
        let record = IndexPackage::from_apk(&package::parse_unverified(&signed, &what)?)?;
        let arch = if apk.info.arch == "noarch" { opts.default_arch.clone() } else { apk.info.arch.clone() };
        let list = by_arch.entry(arch.clone()).or_default();
        if list.iter().any(|s| s.record.name == record.name && s.record.version == record.version) {
            return Err(Error::format(&what, format!("{} is given twice for {arch}", record.file_name())));
        }
        list.push(Signed { file: record.file_name(), bytes: signed, record });
    }
    for list in by_arch.values_mut() {
        list.sort_by(|a, b| {
            a.record.name.cmp(&b.record.name).then(super::version::compare(&a.record.version, &b.record.version))
        });
    }
    Ok(by_arch)
}

/// Writes the arch folders and the key into `tmp`; paths returned are under `dir`.
fn write_dirs(
    by_arch: &BTreeMap<String, Vec<Signed>>,
    key: &SigningKey,
    tmp: &Path,
    dir: &Path,
    opts: &RepoOptions,
) -> Result<Vec<ArchDir>> {
    let keys = tmp.join("keys");
    std::fs::create_dir_all(&keys).map_err(Error::io(&keys))?;
    write_file(&keys.join(&key.name), key.public_key_pem().as_bytes())?;
    let mut written = Vec::new();
    for (arch, list) in by_arch {
        let at = tmp.join(arch);
        std::fs::create_dir_all(&at).map_err(Error::io(&at))?;
        let mut apks = Vec::new();
        for s in list {
            write_file(&at.join(&s.file), &s.bytes)?;
            apks.push(dir.join(arch).join(&s.file));
        }
        let records: Vec<IndexPackage> = list.iter().map(|s| s.record.clone()).collect();
        let mtime = records.iter().filter_map(|r| r.build_time).max().unwrap_or(0);
        let index = index::write_with(&records, &opts.description, key, &opts.algos, mtime)?;
        write_file(&at.join("APKINDEX.tar.gz"), &index)?;
        written.push(ArchDir { arch: arch.clone(), apks, index: dir.join(arch).join("APKINDEX.tar.gz") });
    }
    Ok(written)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(Error::io(path))
}

fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(dir)(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
