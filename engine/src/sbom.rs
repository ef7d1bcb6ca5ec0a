//! SPDX 2.3 JSON software bills of materials, written beside an image: one SPDX
//! package per apk or compiled package. Format notes in docs/provenance.md.
//!
//! Deterministic: packages are sorted, `documentNamespace` is derived from the
//! document's content, and `creationInfo.created` is SOURCE_DATE_EPOCH (the caller
//! passes it; see [`source_date_epoch`]), never the wall clock.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// What went wrong making an SBOM.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    /// `SOURCE_DATE_EPOCH` is not a number.
    #[error("SOURCE_DATE_EPOCH={value:?} is not a number of seconds since 1970; set it to one (or unset it for 0)")]
    Epoch {
        /// The value found.
        value: String,
    },
}

/// One package of the bill of materials.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    /// The package name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// An SPDX license expression (`GPL-2.0-only AND MIT`); anything else is recorded
    /// as `NOASSERTION` with the text kept in the package comment.
    pub license: Option<String>,
    /// Where the source (or the apk) was downloaded from.
    pub source_url: Option<String>,
    /// sha256 of that download, lower-case hex.
    pub sha256: Option<String>,
    /// Who supplies it (`Alpine Linux`, `comma.ai`); written as an organization.
    pub supplier: Option<String>,
}

/// The SPDX 2.3 document named `name` listing `packages`, created at `created_epoch`
/// (seconds since 1970, SOURCE_DATE_EPOCH) by `tool` (`forge-0.1.0`).
pub fn spdx(name: &str, packages: &[Package], created_epoch: i64, tool: &str) -> Value {
    let mut sorted = packages.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut ids = BTreeSet::new();
    let items: Vec<Value> = sorted.iter().map(|p| package(p, &mut ids)).collect();
    let relationships: Vec<Value> = items
        .iter()
        .map(|p| json!({ "spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": p["SPDXID"] }))
        .collect();
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

fn package(p: &Package, ids: &mut BTreeSet<String>) -> Value {
    let base = format!("SPDXRef-Package-{}-{}", sanitize(&p.name), sanitize(&p.version));
    let mut id = base.clone();
    let mut n = 1;
    while !ids.insert(id.clone()) {
        n += 1;
        id = format!("{base}-{n}");
    }
    let noassert = |v: &Option<String>| v.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| "NOASSERTION".into());
    let license = p.license.as_deref().filter(|l| is_license_expression(l));
    let mut v = json!({
        "SPDXID": id,
        "name": p.name,
        "versionInfo": p.version,
        "downloadLocation": noassert(&p.source_url),
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": license.unwrap_or("NOASSERTION"),
        "copyrightText": "NOASSERTION",
        "supplier": p.supplier.as_ref().map_or("NOASSERTION".to_string(), |s| format!("Organization: {s}")),
    });
    if let Some(sha) = &p.sha256 {
        v["checksums"] = json!([{ "algorithm": "SHA256", "checksumValue": sha }]);
    }
    if let (Some(text), None) = (&p.license, license) {
        v["comment"] = json!(format!("license as declared upstream: {text}"));
    }
    v
}

/// Whether `s` is shaped like an SPDX license expression: identifiers (letters, digits,
/// `.`, `-`, a trailing `+`), `AND`/`OR`/`WITH`, and parentheses.
fn is_license_expression(s: &str) -> bool {
    let spaced = s.replace(['(', ')'], " ");
    let mut expect_id = true;
    let mut any = false;
    for word in spaced.split_whitespace() {
        let op = matches!(word, "AND" | "OR" | "WITH");
        if op == expect_id {
            return false;
        }
        if !op {
            let id = word.strip_suffix('+').unwrap_or(word);
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') {
                return false;
            }
            any = true;
        }
        expect_id = op;
    }
    any && !expect_id && s.matches('(').count() == s.matches(')').count()
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
