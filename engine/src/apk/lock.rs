//! The apk lock file: what `forge lock` writes after resolving against live indexes and
//! what `forge build` reads instead of any index. Format (docs/apk-lock.md): a header
//! line, the inputs it was resolved from (`# arch: `, `# repository: `, `# world: `
//! lines), then one package a line, sorted by name, fields separated by a tab:
//! `name version arch repository checksum sha256 size url`.

use std::fmt::Write as _;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::checksum::{hex, hex_decode, Checksum};
use super::keys::Keys;
use super::resolve::{Repository, Resolution};
use super::{package, version, Error, Result};

/// The first line of every lock file (it names the format version).
pub const HEADER: &str = "# forge apk lock 1";
const COLUMNS: &str = "# name\tversion\tarch\trepository\tchecksum\tsha256\tsize\turl";

/// One locked package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockEntry {
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Architecture.
    pub arch: String,
    /// The repository URL it was resolved from.
    pub repository: String,
    /// `Q1` checksum of the control stream (the index's `C:`).
    pub checksum: Checksum,
    /// SHA-256 of the .apk file.
    pub sha256: [u8; 32],
    /// Size of the .apk file in bytes.
    pub size: u64,
    /// Where to download it.
    pub url: String,
}

impl LockEntry {
    /// Checks downloaded bytes against the lock: size and SHA-256.
    pub fn check(&self, bytes: &[u8]) -> Result<()> {
        let what = format!("{}-{}.apk", self.name, self.version);
        if bytes.len() as u64 != self.size {
            let (expected, actual) = (self.size.to_string(), bytes.len().to_string());
            return Err(Error::Mismatch { what, field: "size".into(), expected, actual });
        }
        let got: [u8; 32] = Sha256::digest(bytes).into();
        if got != self.sha256 {
            return Err(Error::Mismatch {
                what,
                field: "sha256".into(),
                expected: hex(&self.sha256),
                actual: hex(&got),
            });
        }
        Ok(())
    }
}

/// What a lock was resolved from, so that a build can tell a lock made for another
/// world from the one its recipe declares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockInputs {
    /// The apk architecture.
    pub arch: String,
    /// `/etc/apk/repositories` lines: `URL` or `@tag URL`, in the order given.
    pub repositories: Vec<String>,
    /// The world's dependencies, in the order given.
    pub world: Vec<String>,
}

const ARCH_LINE: &str = "# arch: ";
const REPOSITORY_LINE: &str = "# repository: ";
const WORLD_LINE: &str = "# world: ";

/// A lock: packages sorted by name, one per name, and the inputs they were resolved from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lock {
    /// `None` for a lock written without them (they are optional in the format).
    pub inputs: Option<LockInputs>,
    /// The locked packages, sorted by name.
    pub packages: Vec<LockEntry>,
}

impl Lock {
    /// Sorts by name; two entries for one name are an error.
    pub fn new(mut packages: Vec<LockEntry>) -> Result<Lock> {
        packages.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = packages.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(Error::format("lock", format!("{} is locked twice", w[0].name)));
        }
        Ok(Lock { inputs: None, packages })
    }

    /// The same lock, recording the inputs it was resolved from.
    pub fn with_inputs(self, inputs: LockInputs) -> Lock {
        Lock { inputs: Some(inputs), ..self }
    }

    /// The sum of the package sizes, in bytes.
    pub fn total_size(&self) -> u64 {
        self.packages.iter().map(|e| e.size).sum()
    }

    /// The lock as text (deterministic).
    pub fn to_text(&self) -> String {
        let mut s = format!("{HEADER}\n");
        if let Some(i) = &self.inputs {
            let _ = writeln!(s, "{ARCH_LINE}{}", i.arch);
            for r in &i.repositories {
                let _ = writeln!(s, "{REPOSITORY_LINE}{r}");
            }
            let _ = writeln!(s, "{WORLD_LINE}{}", i.world.join(" "));
        }
        s.push_str(COLUMNS);
        s.push('\n');
        for e in &self.packages {
            let _ = writeln!(
                s,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                e.name,
                e.version,
                e.arch,
                e.repository,
                e.checksum,
                hex(&e.sha256),
                e.size,
                e.url
            );
        }
        s
    }

    /// Parses lock text; `what` (the file) and the line are named in errors.
    pub fn parse(text: &str, what: &str) -> Result<Lock> {
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, HEADER)) => {}
            _ => return Err(Error::format(what, format!("not an apk lock: the first line must be {HEADER:?}"))),
        }
        let mut packages: Vec<LockEntry> = Vec::new();
        let mut inputs: Option<LockInputs> = None;
        for (n, line) in lines {
            if line.starts_with('#') || line.is_empty() {
                read_input_line(line, &mut inputs);
                continue;
            }
            let at = format!("{what}:{}", n + 1);
            let entry = parse_line(line, &at)?;
            if let Some(prev) = packages.last() {
                if prev.name >= entry.name {
                    return Err(Error::format(
                        &at,
                        format!("{} is out of order or repeated (lines are sorted by name)", entry.name),
                    ));
                }
            }
            packages.push(entry);
        }
        Ok(Lock { inputs, packages })
    }

    /// Reads a lock file.
    pub fn read(path: &Path) -> Result<Lock> {
        let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
        Lock::parse(&text, &path.display().to_string())
    }

    /// Writes a lock file atomically (a temporary file renamed over it).
    pub fn write(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("lock.tmp");
        std::fs::write(&tmp, self.to_text()).map_err(Error::io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(Error::io(path))
    }

    /// The entry for a name.
    pub fn get(&self, name: &str) -> Option<&LockEntry> {
        self.packages.binary_search_by(|e| e.name.as_str().cmp(name)).ok().map(|i| &self.packages[i])
    }
}

/// Records an `# arch: `, `# repository: ` or `# world: ` line; other comments are left.
fn read_input_line(line: &str, inputs: &mut Option<LockInputs>) {
    if let Some(arch) = line.strip_prefix(ARCH_LINE) {
        inputs.get_or_insert_with(LockInputs::default).arch = arch.trim().to_owned();
    } else if let Some(repo) = line.strip_prefix(REPOSITORY_LINE) {
        inputs.get_or_insert_with(LockInputs::default).repositories.push(repo.trim().to_owned());
    } else if let Some(world) = line.strip_prefix(WORLD_LINE) {
        inputs.get_or_insert_with(LockInputs::default).world = world.split_whitespace().map(str::to_owned).collect();
    }
}

fn parse_line(line: &str, at: &str) -> Result<LockEntry> {
    let cols: Vec<&str> = line.split('\t').collect();
    let [name, ver, arch, repo, sum, sha, size, url] = cols[..] else {
        return Err(Error::format(at, format!("expected 8 tab-separated fields, found {}", cols.len())));
    };
    let bad = |what: &str| Error::format(at, what.to_owned());
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(bad("empty or blank package name"));
    }
    if ver.is_empty() || !version::is_valid(ver) {
        return Err(bad(&format!("{name}: invalid version {ver:?}")));
    }
    if arch.is_empty() || url.is_empty() || repo.is_empty() {
        return Err(bad(&format!("{name}: empty arch, repository or url")));
    }
    let sha256 = hex_decode(sha).and_then(|b| <[u8; 32]>::try_from(b).ok());
    let sha256 = sha256.ok_or_else(|| bad(&format!("{name}: sha256 {sha:?} is not 64 hex digits")))?;
    Ok(LockEntry {
        name: name.to_owned(),
        version: ver.to_owned(),
        arch: arch.to_owned(),
        repository: repo.to_owned(),
        checksum: Checksum::parse(sum, at)?,
        sha256,
        size: size.parse().map_err(|_| bad(&format!("{name}: size {size:?} is not a number")))?,
        url: url.to_owned(),
    })
}

/// Where a package lives in a repository: `<repository>/<arch>/<name>-<version>.apk`.
pub fn apk_url(repository: &str, arch: &str, name: &str, version: &str) -> String {
    format!("{}/{arch}/{name}-{version}.apk", repository.trim_end_matches('/'))
}

/// Builds the lock for a resolution: fetches each package (`fetch(url)`), verifies it in
/// full against the keys (signature, datahash, file checksums) and against its index
/// record (checksum, size, name, version), and records its SHA-256.
pub fn from_resolution(
    resolution: &Resolution,
    repos: &[Repository],
    arch: &str,
    keys: &Keys,
    fetch: &mut dyn FnMut(&str) -> Result<Vec<u8>>,
) -> Result<Lock> {
    let mut entries = Vec::new();
    for r in &resolution.packages {
        let p = &r.package;
        let repo =
            repos.get(r.repository).ok_or_else(|| Error::format(&p.name, "resolved from an unknown repository"))?;
        let url = apk_url(&repo.url, arch, &p.name, &p.version);
        let bytes = fetch(&url)?;
        let apk = package::read(&bytes, &url, keys)?;
        let mismatch = |field: &str, expected: String, actual: String| Error::Mismatch {
            what: url.clone(),
            field: format!("{field} (against the signed index)"),
            expected,
            actual,
        };
        if apk.checksum != p.checksum {
            return Err(mismatch("checksum", p.checksum.to_string(), apk.checksum.to_string()));
        }
        if apk.size != p.size {
            return Err(mismatch("size", p.size.to_string(), apk.size.to_string()));
        }
        if apk.info.name != p.name || apk.info.version != p.version {
            let got = format!("{}-{}", apk.info.name, apk.info.version);
            return Err(mismatch("name-version", format!("{}-{}", p.name, p.version), got));
        }
        entries.push(LockEntry {
            name: p.name.clone(),
            version: p.version.clone(),
            arch: p.arch.clone(),
            repository: repo.url.clone(),
            checksum: p.checksum,
            sha256: apk.sha256,
            size: apk.size,
            url,
        });
    }
    Lock::new(entries)
}

#[cfg(test)]
mod tests;
