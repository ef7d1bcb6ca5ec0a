//! SPDX 2.3 JSON software bills of materials, written beside an image: one SPDX
//! package per apk or compiled package. Format notes in docs/provenance.md.
//!
//! Deterministic: packages are sorted, `documentNamespace` is derived from the
//! document's content, and `creationInfo.created` is SOURCE_DATE_EPOCH (the caller
//! passes it; see [`source_date_epoch`]), never the wall clock.
//!
//! Where packages come from: [`apk_packages`] reads a root filesystem's
//! `lib/apk/db/installed`, [`inputs_of`] walks a recipe graph for its fixed-output
//! inputs and the packages forge compiles. The `image` builtin puts both in
//! `<name>.spdx.json` (`crate::rootfs`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::drv::Builder;
use crate::dsl::{Forge, NodeId};

/// What went wrong making an SBOM.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    /// `SOURCE_DATE_EPOCH` is not a number.
    #[error("SOURCE_DATE_EPOCH={value:?} is not a number of seconds since 1970; set it to one (or unset it for 0)")]
    Epoch {
        /// The value found.
        value: String,
    },
    /// The apk database of the root filesystem cannot be read.
    #[error("cannot list the packages of {what}: {source}")]
    Installed {
        /// What was being read.
        what: String,
        /// The underlying error.
        source: crate::apk::Error,
    },
}

/// How a package relates to the package the document is about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// What the document is about (the image): the document DESCRIBES it.
    #[default]
    Described,
    /// Installed in the described package (an apk in the image): it CONTAINS this one.
    Contained,
    /// Went into making the described package (a fetched input, a package forge
    /// compiled): the described package is GENERATED_FROM this one.
    Input,
}

/// One package of the bill of materials. Serializable: the `image` builtin takes
/// the graph's inputs in its arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Package {
    /// The package name.
    pub name: String,
    /// Empty when unknown (a downloaded file): `versionInfo` is left out.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    /// Its version.
    pub version: String,
    /// An SPDX license expression (`GPL-2.0-only AND MIT`) of identifiers on the SPDX
    /// license list; anything else is recorded as `NOASSERTION` with the text kept in
    /// the package comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Where the source (or the apk) was downloaded from; a URL SPDX does not accept
    /// as a download location (a path, `mirror://`) goes to the comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// The project's home page (apk's `U:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// SPDX checksum algorithm (`SHA1`, `SHA256`, `SHA512`) -> lower-case hex.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checksums: BTreeMap<String, String>,
    /// Who supplies it (`Alpine Linux`, `comma.ai`); written as an organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplier: Option<String>,
    /// The file the package is (`system.img`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// Free text for the auditor: where it came from, what a checksum is of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// How it relates to the document's package.
    #[serde(default)]
    pub role: Role,
}

/// The SPDX 2.3 document named `name` listing `packages`, created at `created_epoch`
/// (seconds since 1970, SOURCE_DATE_EPOCH) by `tool` (`forge-0.1.0`). The document
/// DESCRIBES each [`Role::Described`] package, which CONTAINS the contained ones and is
/// GENERATED_FROM the inputs; with no described package, it describes them all.
pub fn spdx(name: &str, packages: &[Package], created_epoch: i64, tool: &str) -> Value {
    let mut sorted = packages.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut ids = BTreeSet::new();
    let items: Vec<Value> = sorted.iter().map(|p| package(p, &mut ids)).collect();
    let described: Vec<&Value> =
        sorted.iter().zip(&items).filter(|(p, _)| p.role == Role::Described).map(|(_, v)| &v["SPDXID"]).collect();
    let relation = |from: &Value, kind: &str, to: &Value| json!({ "spdxElementId": from, "relationshipType": kind, "relatedSpdxElement": to });
    let document = json!("SPDXRef-DOCUMENT");
    let mut relationships = Vec::new();
    for (p, item) in sorted.iter().zip(&items) {
        let kind = match p.role {
            _ if described.is_empty() => None,
            Role::Described => None,
            Role::Contained => Some("CONTAINS"),
            Role::Input => Some("GENERATED_FROM"),
        };
        match kind {
            None => relationships.push(relation(&document, "DESCRIBES", &item["SPDXID"])),
            Some(kind) => relationships.extend(described.iter().map(|d| relation(d, kind, &item["SPDXID"]))),
        }
    }
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "creationInfo": { "created": rfc3339(created_epoch), "creators": [format!("Tool: {tool}")] },
        "packages": items,
        "relationships": relationships,
    });
    let digest = forge_store::hash::hex(&Sha256::digest(doc.to_string()));
    doc["documentNamespace"] = json!(format!("urn:forge:spdx:{}:{digest}", sanitize(name)));
    doc
}

/// The document's bytes: keys sorted, two-space indented, one final newline.
pub fn to_canonical_json(doc: &Value) -> String {
    let mut text = serde_json::to_string_pretty(doc).unwrap_or_default();
    text.push('\n');
    text
}

/// SOURCE_DATE_EPOCH from the environment, 0 when unset.
pub fn source_date_epoch() -> Result<i64, SbomError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) => value.trim().parse().map_err(|_| SbomError::Epoch { value }),
        Err(_) => Ok(0),
    }
}

/// The packages of an apk database (`lib/apk/db/installed`, named `what` in errors),
/// as [`Role::Contained`]: name `P:`, version `V:`, license `L:`, home page `U:`, and
/// the `C:` checksum (apk's package identity: the SHA-1 of its control segment) as the
/// SPDX `SHA1` checksum, with `A:` and the origin `o:` in the comment.
pub fn apk_packages(installed: &str, what: &str) -> Result<Vec<Package>, SbomError> {
    let records = crate::apk::index::parse_text(installed, what)
        .map_err(|source| SbomError::Installed { what: what.to_owned(), source })?;
    Ok(records
        .into_iter()
        .map(|r| {
            let origin = r.origin.as_deref().unwrap_or(&r.name);
            Package {
                comment: Some(format!(
                    "apk {}-{} for {} from origin {origin}; its SHA1 is apk's package checksum C:{} (the SHA-1 of the control segment)",
                    r.name, r.version, r.arch, r.checksum
                )),
                license: Some(r.license).filter(|l| !l.is_empty()),
                homepage: Some(r.url).filter(|u| !u.is_empty()),
                checksums: BTreeMap::from([("SHA1".to_owned(), r.checksum.to_hex())]),
                name: r.name,
                version: r.version,
                role: Role::Contained,
                ..Package::default()
            }
        })
        .collect())
}

/// The inputs of `roots`' closure as [`Role::Input`] packages: each package the
/// package builder compiled (name, version, its source's URL and hash) and each
/// fixed-output input that is not such a source (a download: URL and hash; a git
/// checkout: URL and commit). Sorted; steps of other kinds are not packages.
pub fn inputs_of(forge: &Forge, roots: &[NodeId]) -> Vec<Package> {
    let closure = forge.closure(roots);
    let sources: BTreeSet<NodeId> = closure.iter().filter_map(|&id| forge.package_info(id)).map(|i| i.source).collect();
    let mut out: Vec<Package> = closure
        .iter()
        .filter_map(|&id| match forge.package_info(id) {
            Some(info) => {
                let mut p = origin(forge, info.source);
                p.name = info.name.clone();
                p.version = info.version.clone();
                let source = &forge.node(info.source).drv.name;
                p.comment = Some(format!("compiled by forge from {source}; {}", p.comment.unwrap_or_default()));
                Some(p)
            }
            None if sources.contains(&id) => None,
            None if forge.node(id).drv.builder.is_fixed_output() => Some(origin(forge, id)),
            None => None,
        })
        .collect();
    out.sort();
    out
}

/// A fixed-output node as a package: its name, URL, hash and a comment saying what
/// was pinned. Other nodes give a package with just their name.
fn origin(forge: &Forge, id: NodeId) -> Package {
    let drv = &forge.node(id).drv;
    let mut p = Package { name: drv.name.clone(), role: Role::Input, ..Package::default() };
    match &drv.builder {
        Builder::Fetch { urls, hash, .. } => {
            p.source_url = urls.first().cloned();
            p.checksums.insert(hash.algo().name().to_ascii_uppercase(), hash.to_hex());
            p.comment = Some(format!("a download pinned by {}; URLs: {}", hash.algo().name(), urls.join(" ")));
        }
        Builder::Git { url, rev, nar_hash, subpaths } => {
            p.version = rev.clone();
            p.source_url = Some(format!("git+{url}@{rev}"));
            let only = if subpaths.is_empty() { String::new() } else { format!(" (only {})", subpaths.join(", ")) };
            p.comment = Some(format!(
                "a git checkout of {url} at {rev}{only}, pinned by its NAR {} {}",
                nar_hash.algo().name(),
                nar_hash.to_hex()
            ));
        }
        _ => {}
    }
    p
}

fn package(p: &Package, ids: &mut BTreeSet<String>) -> Value {
    let base = format!("SPDXRef-Package-{}-{}", sanitize(&p.name), sanitize(&p.version));
    let base = base.trim_end_matches('-').to_owned();
    let mut id = base.clone();
    let mut n = 1;
    while !ids.insert(id.clone()) {
        n += 1;
        id = format!("{base}-{n}");
    }
    let license = p.license.as_deref().filter(|l| is_license_expression(l));
    let location = p.source_url.as_deref().filter(|u| is_download_location(u));
    let mut v = json!({
        "SPDXID": id,
        "name": p.name,
        "downloadLocation": location.unwrap_or("NOASSERTION"),
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": license.unwrap_or("NOASSERTION"),
        "copyrightText": "NOASSERTION",
        "supplier": p.supplier.as_ref().map_or("NOASSERTION".to_string(), |s| format!("Organization: {s}")),
    });
    if !p.version.is_empty() {
        v["versionInfo"] = json!(p.version);
    }
    if !p.checksums.is_empty() {
        let sums: Vec<Value> =
            p.checksums.iter().map(|(algo, hex)| json!({ "algorithm": algo, "checksumValue": hex })).collect();
        v["checksums"] = json!(sums);
    }
    for (key, value) in [("homepage", &p.homepage), ("packageFileName", &p.file_name)] {
        if let Some(value) = value {
            v[key] = json!(value);
        }
    }
    let mut comment: Vec<String> = p.comment.iter().cloned().collect();
    if let (Some(text), None) = (&p.license, license) {
        comment.push(format!("license as declared upstream: {text}"));
    }
    if let (Some(url), None) = (&p.source_url, location) {
        if !comment.iter().any(|c| c.contains(url.as_str())) {
            comment.push(format!("downloaded from {url}"));
        }
    }
    if !comment.is_empty() {
        v["comment"] = json!(comment.join("; "));
    }
    v
}

/// Whether `s` is an SPDX license expression whose identifiers are all on the SPDX
/// license list (the `spdx` crate's copy): `LicenseRef-` would need the license text
/// in the document, which forge does not have.
fn is_license_expression(s: &str) -> bool {
    spdx::Expression::parse(s)
        .is_ok_and(|e| e.requirements().all(|r| matches!(r.req.license, spdx::LicenseItem::Spdx { .. })))
}

/// Whether SPDX accepts `url` as a `downloadLocation`: its pattern wants an http(s),
/// ftp, sftp, ssh, git or svn URL (optionally `git+`, `hg+`, `svn+`, `bzr+`) on a
/// lower-case domain name with a top-level domain of 2 to 5 letters.
fn is_download_location(url: &str) -> bool {
    let url = ["git+", "hg+", "svn+", "bzr+"].iter().find_map(|p| url.strip_prefix(p)).unwrap_or(url);
    let Some((scheme, rest)) = url.split_once("://") else { return false };
    if !["http", "https", "ftp", "sftp", "ssh", "git", "svn"].contains(&scheme) {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host_port.split(':').next().unwrap_or_default();
    let Some((name, tld)) = host.rsplit_once('.') else { return false };
    let label = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    (2..=5).contains(&tld.len()) && tld.bytes().all(|b| b.is_ascii_lowercase()) && name.split('.').all(label)
}

/// Letters, digits, `.` and `-` only (what SPDXIDs allow); anything else becomes `-`.
fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect()
}

/// `1970-01-01T00:00:00Z` for an epoch, by the civil-from-days algorithm (proleptic
/// Gregorian calendar), so no date library is needed.
///
/// ```
/// assert_eq!(forge_engine::sbom::rfc3339(951_782_400 + 3661), "2000-02-29T01:01:01Z");
/// ```
pub fn rfc3339(epoch: i64) -> String {
    let (days, secs) = (epoch.div_euclid(86_400), epoch.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

#[cfg(test)]
mod tests;
