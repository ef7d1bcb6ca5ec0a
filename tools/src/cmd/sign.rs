//! Signing provenance records: where the key comes from (`--sign-key`,
//! `$FORGE_SIGNING_KEY`, the config file's `signing-key`) and the DSSE envelope
//! written beside the record (docs/provenance.md).

use std::path::{Path, PathBuf};

use anyhow::Context;
use forge_engine::dsse::{self, SigningKey, VerifyingKey};
use serde_json::Value;

/// The environment variable naming the private key that signs provenance records.
pub const ENV_SIGNING_KEY: &str = "FORGE_SIGNING_KEY";

/// The signing key, from (first found) `flag`, `$FORGE_SIGNING_KEY`, the config
/// file's last `signing-key`; `None` when none is configured. Read before the build
/// starts, so a bad key costs no build time.
pub fn configured_key(flag: Option<&Path>) -> anyhow::Result<Option<SigningKey>> {
    let Some((path, from)) = key_source(flag, "--sign-key", ENV_SIGNING_KEY, "signing-key", "the signing key")? else {
        return Ok(None);
    };
    let pem = dsse::read_pem(&path, &from)?;
    Ok(Some(dsse::signing_key_from_pem(&pem, &from)?))
}

/// Where a key is configured: the command-line flag, else the environment variable,
/// else the config file's last `config_key`. Returns the path and a description of
/// where it came from (for error messages), or `None`.
pub fn key_source(
    flag: Option<&Path>,
    flag_name: &str,
    env: &str,
    config_key: &str,
    what: &str,
) -> anyhow::Result<Option<(PathBuf, String)>> {
    Ok(Some(match flag {
        Some(p) => (p.to_owned(), format!("{what} ({flag_name} {})", p.display())),
        None => match std::env::var_os(env).filter(|v| !v.is_empty()) {
            Some(v) => (PathBuf::from(&v), format!("{what} (${env}={})", Path::new(&v).display())),
            None => match forge_engine::config::last(&forge_engine::config::load()?, config_key) {
                Some(e) => (e.path_value(), format!("{what} ({}:{}: {config_key})", e.file.display(), e.line)),
                None => return Ok(None),
            },
        },
    }))
}

/// The public key of `--key FILE` (a public key PEM, or a private one).
pub fn read_public_key(path: &Path) -> anyhow::Result<VerifyingKey> {
    let what = format!("the public key (--key {})", path.display());
    Ok(dsse::verifying_key_from_pem(&dsse::read_pem(path, &what)?, &what)?)
}

/// Where the envelope of a record is: `X.provenance.json` -> `X.provenance.dsse.json`.
pub fn envelope_path(record: &Path) -> PathBuf {
    let mut name = record.as_os_str().to_owned();
    let text = name.to_string_lossy().into_owned();
    if let Some(stem) = text.strip_suffix(".json") {
        name = format!("{stem}.dsse.json").into();
    } else {
        name.push(".dsse.json");
    }
    PathBuf::from(name)
}

/// Writes the envelope of `record` signed by `key` beside it, or, without a key,
/// removes an envelope left by an earlier signed build (it signs a record that is gone).
pub fn write_envelope(record_path: &Path, record: &str, key: Option<&SigningKey>) -> anyhow::Result<Option<PathBuf>> {
    let path = envelope_path(record_path);
    let Some(key) = key else {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove the stale signature {}", path.display()))?
            }
            _ => return Ok(None),
        }
    };
    let envelope = dsse::sign(dsse::IN_TOTO_PAYLOAD_TYPE, record.as_bytes(), key);
    std::fs::write(&path, forge_engine::provenance::to_canonical_json(&envelope))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Some(path))
}

/// Whether a JSON document is a DSSE envelope rather than a record.
pub fn is_envelope(v: &Value) -> bool {
    v.get("payloadType").is_some() && v.get("signatures").is_some()
}
