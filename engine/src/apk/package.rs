//! apk v2 packages: three concatenated gzip streams (signature, control, data).
//!
//! Verification, in the order of the trust chain: the signature (over the control stream
//! as stored) with the key its file name picks from the keys directory; `datahash` in
//! `.PKGINFO` (SHA-256 of the data stream as stored); each file's
//! `APK-TOOLS.checksum.SHA1` PAX record. The package's identity is `Q1` + base64 of the
//! SHA-1 of the control stream, the `C:` of an index record.

use std::ops::Range;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::checksum::{hex, Checksum};
use super::keys::{self, Keys, Signature, Signer};
use super::pkginfo::PkgInfo;
use super::tarball::{self, Entry, Kind};
use super::{streams, Error, Result};

/// Install scripts, in apk-tools' order (the order of `scripts.tar`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScriptKind {
    /// `.pre-install`.
    PreInstall,
    /// `.post-install`.
    PostInstall,
    /// `.pre-deinstall`.
    PreDeinstall,
    /// `.post-deinstall`.
    PostDeinstall,
    /// `.pre-upgrade`.
    PreUpgrade,
    /// `.post-upgrade`.
    PostUpgrade,
    /// `.trigger`.
    Trigger,
}

impl ScriptKind {
    /// Every kind, in apk-tools' order.
    pub const ALL: [ScriptKind; 7] = [
        ScriptKind::PreInstall,
        ScriptKind::PostInstall,
        ScriptKind::PreDeinstall,
        ScriptKind::PostDeinstall,
        ScriptKind::PreUpgrade,
        ScriptKind::PostUpgrade,
        ScriptKind::Trigger,
    ];

    /// `pre-install`, ...: the name apk uses (the control file is `.` + this).
    pub fn name(self) -> &'static str {
        match self {
            ScriptKind::PreInstall => "pre-install",
            ScriptKind::PostInstall => "post-install",
            ScriptKind::PreDeinstall => "pre-deinstall",
            ScriptKind::PostDeinstall => "post-deinstall",
            ScriptKind::PreUpgrade => "pre-upgrade",
            ScriptKind::PostUpgrade => "post-upgrade",
            ScriptKind::Trigger => "trigger",
        }
    }

    /// The kind for a control file name like `.post-install`.
    pub fn from_control_name(name: &str) -> Option<ScriptKind> {
        let bare = name.strip_prefix('.')?;
        ScriptKind::ALL.into_iter().find(|k| k.name() == bare)
    }
}

/// An install script from the control stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// Which script it is.
    pub kind: ScriptKind,
    /// Its bytes.
    pub content: Vec<u8>,
}

/// A package read and verified.
#[derive(Clone, Debug)]
pub struct Apk {
    /// File size in bytes (`S:` in an index).
    pub size: u64,
    /// SHA-256 of the whole file (what a lock pins).
    pub sha256: [u8; 32],
    /// `Q1` SHA-1 of the control stream as stored (`C:` in an index).
    pub checksum: Checksum,
    /// Who signed it; `None` only from [`parse_unverified`].
    pub signer: Option<Signer>,
    /// Every signature of the signature stream.
    pub signatures: Vec<Signature>,
    /// The `.PKGINFO`.
    pub info: PkgInfo,
    /// The install scripts.
    pub scripts: Vec<Script>,
    /// The control archive's entries.
    pub control: Vec<Entry>,
    /// The data archive's entries; contents are ranges into `data_tar`.
    pub files: Vec<Entry>,
    /// The decompressed data archive.
    pub data_tar: Vec<u8>,
    /// How many entries carried an `APK-TOOLS.checksum.SHA1` that matched.
    pub file_checksums_verified: usize,
    /// Byte ranges of the (signature,) control and data streams in the file.
    pub streams: Vec<Range<usize>>,
}

impl Apk {
    /// A data entry's content.
    pub fn content(&self, e: &Entry) -> &[u8] {
        tarball::content(&self.data_tar, e)
    }

    /// The `APK-TOOLS.checksum.SHA1` of an entry, if it has one.
    pub fn file_checksum(e: &Entry) -> Option<Checksum> {
        let v = e.pax_value("APK-TOOLS.checksum.SHA1")?;
        Checksum::from_hex(std::str::from_utf8(v).ok()?, "").ok()
    }
}

/// Reads and verifies an apk file against the keys directory.
pub fn read_file(path: &Path, keys: &Keys) -> Result<Apk> {
    let bytes = std::fs::read(path).map_err(Error::io(path))?;
    read(&bytes, &path.display().to_string(), keys)
}

/// Reads and verifies an apk: signature, datahash, file checksums. `what` names it in errors.
pub fn read(bytes: &[u8], what: &str, keys: &Keys) -> Result<Apk> {
    parse(bytes, what, Some(keys))
}

/// Reads an apk and checks everything but the signature: for inspecting a package whose
/// publisher key is not at hand, and for fuzzing. Never install from this.
pub fn parse_unverified(bytes: &[u8], what: &str) -> Result<Apk> {
    parse(bytes, what, None)
}

fn parse(bytes: &[u8], what: &str, keys: Option<&Keys>) -> Result<Apk> {
    let mut parts = streams::split(bytes, what)?;
    let signatures = match parts.first() {
        Some(s) if keys::is_signature_stream(s) => {
            let sigs = keys::parse_signatures(&s.content, what)?;
            parts.remove(0);
            sigs
        }
        _ => Vec::new(),
    };
    let [control, data]: [streams::Stream; 2] = parts.try_into().map_err(|p: Vec<_>| {
        Error::format(what, format!("expected control and data gzip streams after the signature, found {}", p.len()))
    })?;
    let control_bytes = &bytes[control.range.clone()];
    let data_bytes = &bytes[data.range.clone()];
    let (control_entries, info, scripts) = read_control(&control.content, what)?;
    // Without datahash (old packages), the signature covers control and data together.
    let signed: Vec<&[u8]> =
        if info.datahash.is_some() { vec![control_bytes] } else { vec![control_bytes, data_bytes] };
    let signer = match keys {
        Some(k) => Some(keys::verify(&signatures, &signed, k, what)?),
        None => None,
    };
    if let Some(want) = info.datahash {
        let got: [u8; 32] = Sha256::digest(data_bytes).into();
        if got != want {
            return Err(Error::Mismatch {
                what: what.to_owned(),
                field: "datahash (SHA-256 of the data stream)".into(),
                expected: hex(&want),
                actual: hex(&got),
            });
        }
    }
    let data_tar = data.content;
    let files = tarball::read(&data_tar, what)?;
    let verified = verify_files(&files, &data_tar, what)?;
    let mut stream_ranges = Vec::new();
    if !signatures.is_empty() {
        stream_ranges.push(0..control.range.start);
    }
    stream_ranges.extend([control.range.clone(), data.range.clone()]);
    Ok(Apk {
        size: bytes.len() as u64,
        sha256: Sha256::digest(bytes).into(),
        checksum: Checksum::sha1_of(control_bytes),
        signer,
        signatures,
        info,
        scripts,
        control: control_entries,
        files,
        data_tar,
        file_checksums_verified: verified,
        streams: stream_ranges,
    })
}

fn read_control(tar: &[u8], what: &str) -> Result<(Vec<Entry>, PkgInfo, Vec<Script>)> {
    let entries = tarball::read(tar, what)?;
    let mut info = None;
    let mut scripts = Vec::new();
    for e in &entries {
        if !e.path.starts_with('.') || e.path.contains('/') {
            return Err(Error::format(what, format!("unexpected {:?} in the control stream", e.path)));
        }
        if e.kind != Kind::File {
            continue;
        }
        let content = tarball::content(tar, e);
        if e.path == ".PKGINFO" {
            info = Some(PkgInfo::parse(content, what)?);
        } else if let Some(kind) = ScriptKind::from_control_name(&e.path) {
            scripts.push(Script { kind, content: content.to_vec() });
        }
    }
    let info = info.ok_or_else(|| Error::format(what, "no .PKGINFO in the control stream"))?;
    scripts.sort_by_key(|s| s.kind);
    Ok((entries, info, scripts))
}

/// Checks paths (no traversal) and the per-file SHA-1 records; returns how many matched.
fn verify_files(files: &[Entry], tar: &[u8], what: &str) -> Result<usize> {
    let mut verified = 0;
    for e in files {
        check_path(&e.path, what)?;
        if e.kind == Kind::Hardlink {
            check_path(e.link_target.as_deref().unwrap_or(""), what)?;
        }
        let Some(raw) = e.pax_value("APK-TOOLS.checksum.SHA1") else { continue };
        let want = std::str::from_utf8(raw)
            .ok()
            .and_then(|s| Checksum::from_hex(s, what).ok())
            .ok_or_else(|| Error::format(what, format!("{}: bad APK-TOOLS.checksum.SHA1 record", e.path)))?;
        let got = match e.kind {
            Kind::File => Checksum::sha1_of(tarball::content(tar, e)),
            Kind::Symlink => Checksum::sha1_of(e.link_target.as_deref().unwrap_or("").as_bytes()),
            _ => continue,
        };
        if got != want {
            return Err(Error::Mismatch {
                what: format!("{what}: {}", e.path),
                field: "APK-TOOLS.checksum.SHA1".into(),
                expected: want.to_hex(),
                actual: got.to_hex(),
            });
        }
        verified += 1;
    }
    Ok(verified)
}

/// A data path must stay inside the root: relative, no `..`, no empty components.
fn check_path(path: &str, what: &str) -> Result<()> {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let bad = trimmed.is_empty()
        || trimmed.starts_with('/')
        || trimmed.split('/').any(|c| c.is_empty() || c == "." || c == "..")
        || trimmed.contains('\0');
    if bad {
        return Err(Error::format(what, format!("unsafe path {path:?} in the data stream")));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
