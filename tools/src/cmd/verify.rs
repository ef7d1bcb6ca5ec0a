//! `forge verify PROVENANCE`: rebuild what a provenance record names, in a fresh
//! store, and prove the artifacts bit-for-bit equal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use forge_engine::build::{self, Options};
use forge_engine::dsse::{self, VerifyingKey};
use forge_engine::registry::Registry;
use forge_store::Store;

use super::build::{collect_files, declare, ArchArg, FetchArgs};
use super::sign;
use crate::{exit, progress};

pub const LONG_ABOUT: &str = "\
Rebuild everything a provenance record (<output>.provenance.json, written by forge
build) names and check that every artifact is bit-for-bit equal.

The rebuild uses a fresh, empty store (a temporary one, or --store DIR when given): no
output of the local store is reused, only the inputs' pinned hashes are trusted. First
the record's derivations are compared with the ones the recipe declares now (a changed
recipe is named before anything is built); then the recipe is built and each subject's
sha256 is compared. Exit 0 only when all are equal; otherwise exit 1, naming the
derivation or subject that differs.

Signatures: PROVENANCE may be the record or its signed envelope
(<output>.provenance.dsse.json, written by `forge build --sign-key`). With --key
PUB.pem the envelope's Ed25519 signature must verify with that key and its payload
must be the record byte for byte; a bad signature, another signer's key, an altered
record or a missing envelope exit 1 before anything is rebuilt, naming the key ids.
Without --key an envelope present beside the record is still checked to sign exactly
that record, and the signer's key id is printed.";

#[derive(Args)]
pub struct VerifyArgs {
    /// The provenance record (<output>.provenance.json) or its signed envelope
    /// (<output>.provenance.dsse.json)
    provenance: PathBuf,
    /// The signer's Ed25519 public key (PEM, `openssl pkey -in KEY.pem -pubout`): the
    /// record must carry a valid signature by it
    #[arg(long, value_name = "PUB.pem")]
    key: Option<PathBuf>,
    #[command(flatten)]
    fetch: FetchArgs,
}

struct Record {
    recipe: String,
    arch: String,
    /// derivation name -> sha256 (hex) of its canonical JSON
    derivations: BTreeMap<String, String>,
    /// subject name -> sha256 (hex)
    subjects: BTreeMap<String, String>,
}

fn read_record(path: &Path, text: &str) -> anyhow::Result<Record> {
    let v: serde_json::Value =
        serde_json::from_str(text).with_context(|| format!("{} is not a JSON provenance record", path.display()))?;
    let params = &v["predicate"]["buildDefinition"]["externalParameters"];
    let field = |x: &serde_json::Value, what: &str| {
        x.as_str().map(str::to_owned).with_context(|| format!("{}: no {what} in the record", path.display()))
    };
    let mut derivations = BTreeMap::new();
    for b in v["predicate"]["runDetails"]["byproducts"].as_array().into_iter().flatten() {
        if let (Some(name), Some(sha)) = (b["name"].as_str(), b["digest"]["sha256"].as_str()) {
            if let Some(name) = name.strip_prefix("derivation:") {
                derivations.insert(name.to_owned(), sha.to_owned());
            }
        }
    }
    let mut subjects = BTreeMap::new();
    for s in v["subject"].as_array().into_iter().flatten() {
        subjects.insert(field(&s["name"], "subject name")?, field(&s["digest"]["sha256"], "subject digest")?);
    }
    if subjects.is_empty() {
        bail!("{}: the record names no subject", path.display());
    }
    Ok(Record {
        recipe: field(&params["recipe"], "recipe")?,
        arch: field(&params["arch"], "arch")?,
        derivations,
        subjects,
    })
}

/// The record's text once its signature checks out, or the reason it does not.
enum Signed {
    Record(String),
    Refused(String),
}

/// What PROVENANCE names: the record's text (absent when PROVENANCE is the envelope
/// itself), where its envelope is, and the envelope when there is one.
struct Input {
    record: Option<String>,
    envelope_path: PathBuf,
    envelope: Option<serde_json::Value>,
}

fn read_input(path: &Path) -> anyhow::Result<Input> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not a JSON provenance record", path.display()))?;
    if sign::is_envelope(&v) {
        return Ok(Input { record: None, envelope_path: path.to_owned(), envelope: Some(v) });
    }
    let envelope_path = sign::envelope_path(path);
    let envelope = match std::fs::read_to_string(&envelope_path) {
        Ok(t) => Some(
            serde_json::from_str(&t).with_context(|| format!("{} is not a JSON envelope", envelope_path.display()))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", envelope_path.display())),
    };
    Ok(Input { record: Some(text), envelope_path, envelope })
}

/// Reads PROVENANCE (a record or an envelope) and checks the signature as the
/// command's help says.
fn signed_record(path: &Path, key: Option<&Path>) -> anyhow::Result<Signed> {
    let public = key.map(sign::read_public_key).transpose()?;
    let input = read_input(path)?;
    let Some(envelope) = &input.envelope else {
        return Ok(match public {
            Some(_) => Signed::Refused(format!(
                "NOT SIGNED {}: there is no envelope {}; the build ran without a signing key",
                path.display(),
                input.envelope_path.display()
            )),
            None => Signed::Record(input.record.unwrap_or_default()),
        });
    };
    let signers = dsse::signer_ids(envelope).join(", ");
    match check_envelope(envelope, input.record.as_deref(), public.as_ref()) {
        Ok(payload) => {
            match public {
                Some(k) => println!("signature: good, by key {}", dsse::key_id(&k)),
                None => println!("signature: not checked (signed by key {signers}); pass --key PUB.pem to check it"),
            }
            Ok(Signed::Record(payload))
        }
        Err(why) => Ok(Signed::Refused(format!("SIGNATURE REFUSED {}: {why}", input.envelope_path.display()))),
    }
}

/// The envelope's payload when its signature verifies with `public` (or, without a
/// key, when it is well formed), it is an in-toto statement, and it is `record`
/// byte for byte; otherwise why not.
fn check_envelope(
    envelope: &serde_json::Value,
    record: Option<&str>,
    public: Option<&VerifyingKey>,
) -> Result<String, String> {
    let payload = match public {
        Some(k) => dsse::verify(envelope, k).map(|(_, payload)| payload),
        None => dsse::payload_unverified(envelope),
    }
    .map_err(|e| e.to_string())?;
    if envelope["payloadType"] != dsse::IN_TOTO_PAYLOAD_TYPE {
        return Err(format!("the payload type is {}, not {}", envelope["payloadType"], dsse::IN_TOTO_PAYLOAD_TYPE));
    }
    let payload = String::from_utf8(payload).map_err(|_| "the payload is not UTF-8".to_owned())?;
    if record.is_some_and(|r| r != payload) {
        let signers = dsse::signer_ids(envelope).join(", ");
        return Err(format!(
            "it signs another record than the one beside it (signed by key {signers}): the record was altered after signing"
        ));
    }
    Ok(payload)
}

pub fn verify(store_flag: Option<PathBuf>, registry: &Registry, a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let text = match signed_record(&a.provenance, a.key.as_deref())? {
        Signed::Record(text) => text,
        Signed::Refused(why) => {
            println!("{why}");
            return Ok(exit::code(exit::FAILED));
        }
    };
    let record = read_record(&a.provenance, &text)?;
    let fresh = tempfile::tempdir().context("cannot make a temporary store")?;
    let root = store_flag.unwrap_or_else(|| fresh.path().to_owned());
    let store = Store::open(&root).with_context(|| format!("cannot open the store at {}", root.display()))?;
    let arch = ArchArg { arch: Some(record.arch.clone()) };
    let (forge, targets) = declare(registry, std::slice::from_ref(&record.recipe), &arch)?;

    // A changed recipe shows as a derivation whose hash is not the recorded one.
    for node in forge.nodes() {
        if let Some(recorded) = record.derivations.get(&node.drv.name) {
            if recorded != &node.hash.to_hex() {
                println!(
                    "DIFFERS derivation {}: recorded {recorded}, declared now {}",
                    node.drv.name,
                    node.hash.to_hex()
                );
                println!("  the recipe changed since the record was made; `forge why {}` shows how", record.recipe);
                return Ok(exit::code(exit::FAILED));
            }
        }
    }
    let opts = Options::new(a.fetch.fetcher()?);
    let report = {
        let display = progress::for_terminal(false);
        build::build(&store, &forge, &targets, &opts, display.as_ref(), &forge_engine::sandbox::interrupted)?
    };
    if let Some(f) = report.failed.first() {
        println!("DIFFERS derivation {}: the rebuild failed: {}", f.name, f.error);
        return Ok(exit::code(exit::FAILED));
    }
    let out = store.physical(forge.node(targets[0]).out());
    let mut files = Vec::new();
    collect_files(&out, &out, &mut files)?;
    let rebuilt: BTreeMap<String, PathBuf> = files.into_iter().collect();
    let mut equal = 0;
    for (name, want) in &record.subjects {
        let got = match rebuilt.get(name) {
            Some(file) => forge_engine::provenance::sha256_file(file)?,
            None => "(absent from the rebuild)".to_owned(),
        };
        if &got != want {
            let node = forge.node(targets[0]);
            println!("DIFFERS subject {name}: recorded sha256 {want}, rebuilt {got}");
            println!(
                "  produced by derivation {} ({}); rebuilt output kept in {}",
                node.drv.name,
                node.hash,
                out.display()
            );
            let _ = fresh.keep();
            return Ok(exit::code(exit::FAILED));
        }
        equal += 1;
    }
    println!("verified: {equal} subject(s) of {} rebuilt bit for bit in a fresh store", record.recipe);
    Ok(exit::code(exit::OK))
}
