//! Provenance records: an in-toto Statement v1 with a SLSA provenance v1 predicate,
//! written beside a build's artifacts (never inside them). The format is documented in
//! docs/provenance.md.
//!
//! Everything in a record is derived from content: the recipe graph, the artifacts'
//! bytes and the facts the caller passes in [`Meta`]. There are no timestamps and no
//! random ids, so two builds of the same recipe at the same revision give byte-identical
//! records, and comparing records compares builds.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::drv::Builder;
use crate::dsl::{Forge, NodeId};

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// `predicateType` of SLSA provenance v1.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// `buildDefinition.buildType` of a forge recipe build (docs/provenance.md says what
/// its parameters mean).
pub const BUILD_TYPE: &str = "urn:forge:buildtype:recipe:v1";

/// What went wrong making a record.
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    /// An artifact of the output could not be read to hash it.
    #[error("{path}: cannot read the artifact `{name}` to hash it: {source}")]
    Subject {
        /// The artifact's name in the statement.
        name: String,
        /// Its path on disk.
        path: PathBuf,
        /// The error reading it.
        source: io::Error,
    },
}

/// The facts of a build that are not in the graph.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// The recipe built (`agnos-image`).
    pub recipe: String,
    /// The target architecture (`aarch64`).
    pub arch: String,
    /// The revision of the recipe sources (a git commit), or `unknown`.
    pub source_revision: String,
    /// forge's own version (`env!("CARGO_PKG_VERSION")` of the binary that built).
    pub forge_version: String,
    /// `runDetails.builder.id`: who ran the build (`urn:forge:builder:local`).
    pub builder_id: String,
    /// Environment facts that could matter to the result (host system, kernel, sandbox
    /// kind), recorded under `internalParameters.environment`.
    pub environment: BTreeMap<String, String>,
}

/// The in-toto statement for building `targets` of `forge` into the artifact files
/// `subjects` (`(name, path)`; each file is hashed). Deterministic: see the module docs.
pub fn from_graph(
    forge: &Forge,
    targets: &[NodeId],
    subjects: &[(String, PathBuf)],
    meta: &Meta,
) -> Result<Value, ProvenanceError> {
    let closure = forge.closure(targets);
    let mut subject = Vec::new();
    for (name, path) in subjects {
        let sha = sha256_file(path).map_err(|source| ProvenanceError::Subject {
            name: name.clone(),
            path: path.clone(),
            source,
        })?;
        subject.push(json!({ "name": name, "digest": { "sha256": sha } }));
    }
    subject.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let build_definition = json!({
        "buildType": BUILD_TYPE,
        "externalParameters": {
            "recipe": meta.recipe,
            "arch": meta.arch,
            "sourceRevision": meta.source_revision,
        },
        "internalParameters": {
            "forgeVersion": meta.forge_version,
            "system": forge.system(),
            "environment": meta.environment,
        },
        "resolvedDependencies": resolved_dependencies(forge, &closure),
    });
    let invocation = invocation_id(&subject, &build_definition);
    Ok(json!({
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": build_definition,
            "runDetails": {
                "builder": { "id": meta.builder_id },
                "metadata": { "invocationId": invocation },
                "byproducts": derivations(forge, &closure),
            },
        },
    }))
}

/// The record as bytes: keys sorted (serde_json's map is ordered), two-space indented,
/// one final newline. The same value always gives the same bytes.
pub fn to_canonical_json(record: &Value) -> String {
    let mut text = serde_json::to_string_pretty(record).unwrap_or_default();
    text.push('\n');
    text
}

/// The fixed-output inputs as ResourceDescriptors, sorted by name then digest.
fn resolved_dependencies(forge: &Forge, closure: &BTreeSet<NodeId>) -> Vec<Value> {
    let mut deps: Vec<Value> = closure
        .iter()
        .filter_map(|&id| {
            let node = forge.node(id);
            match &node.drv.builder {
                Builder::Fetch { urls, hash, .. } => Some(json!({
                    "name": node.drv.name,
                    "uri": urls.first().cloned().unwrap_or_default(),
                    "digest": { hash.algo().name(): hash.to_hex() },
                    "annotations": { "urls": urls, "storePath": node.out().to_string() },
                })),
                Builder::Git { url, rev, nar_hash, subpaths } => Some(json!({
                    "name": node.drv.name,
                    "uri": format!("git+{url}@{rev}"),
                    "digest": { "gitCommit": rev, format!("nar{}", capitalized(nar_hash.algo().name())): nar_hash.to_hex() },
                    "annotations": { "urls": [url], "subpaths": subpaths, "storePath": node.out().to_string() },
                })),
                _ => None,
            }
        })
        .collect();
    deps.sort_by_key(|d| (d["name"].to_string(), d["digest"].to_string()));
    deps
}

/// Every derivation of the closure, as ResourceDescriptors sorted by name then hash.
fn derivations(forge: &Forge, closure: &BTreeSet<NodeId>) -> Vec<Value> {
    let mut out: Vec<Value> = closure
        .iter()
        .map(|&id| {
            let node = forge.node(id);
            let outputs: BTreeMap<&String, String> = node.outputs.iter().map(|(k, v)| (k, v.to_string())).collect();
            json!({
                "name": format!("derivation:{}", node.drv.name),
                "digest": { "sha256": node.hash.to_hex() },
                "annotations": { "outputs": outputs, "builder": builder_kind(&node.drv.builder) },
            })
        })
        .collect();
    out.sort_by_key(|d| (d["name"].to_string(), d["digest"].to_string()));
    out
}

fn builder_kind(b: &Builder) -> String {
    match b {
        Builder::Fetch { .. } => "fetch".into(),
        Builder::Git { .. } => "git".into(),
        Builder::Run { .. } => "run".into(),
        Builder::Builtin { name, version, .. } => format!("builtin:{name}@{version}"),
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
}

/// sha256 of the subjects and build definition: equal builds get equal ids.
fn invocation_id(subject: &[Value], build_definition: &Value) -> String {
    let mut h = Sha256::new();
    h.update(Value::from(subject.to_vec()).to_string());
    h.update(build_definition.to_string());
    format!("urn:forge:invocation:{}", forge_store::hash::hex(&h.finalize()))
}

/// Lower-case hex sha256 of a file's bytes, read in a stream.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(forge_store::hash::hex(&h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests;
