//! DSSE envelopes (Dead Simple Signing Envelope, v1) signed with Ed25519: how a
//! provenance record is signed. The signature covers the pre-authentication encoding
//! `DSSEv1 LEN(type) type LEN(body) body`, so neither the payload type nor the payload
//! can be swapped. Format notes in docs/provenance.md.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{Signature, Signer, Verifier};
/// The key types, re-exported so callers need not depend on ed25519-dalek.
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use serde_json::{json, Value};

/// The payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// What is wrong with an envelope or a key.
#[derive(Debug, thiserror::Error)]
pub enum DsseError {
    /// The envelope is not valid JSON of the DSSE shape.
    #[error("the envelope is malformed: {why}")]
    Malformed {
        /// What is wrong.
        why: String,
    },
    /// No signature verifies with the key.
    #[error(
        "the signature by key {keyid} does not verify: the signed record or the signature was altered after signing"
    )]
    BadSignature {
        /// The key's id.
        keyid: String,
    },
    /// The envelope is signed by other keys than the given one.
    #[error("the envelope is signed by key {}, not by the given key {keyid}; check with the signer's public key", signed_by.join(", "))]
    WrongKey {
        /// The key's id.
        keyid: String,
        /// The ids of the keys that did sign.
        signed_by: Vec<String>,
    },
    /// A key could not be read.
    #[error("{what} is not a valid Ed25519 key: {why}")]
    Key {
        /// What was being read.
        what: String,
        /// What is wrong.
        why: String,
    },
    /// A key file cannot be read.
    #[error("cannot read {what} {path}: {source}")]
    Io {
        /// What was being read.
        what: String,
        /// The file or path concerned.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// How to make a key pair forge and openssl both read.
const KEYGEN_HINT: &str = "make one with `openssl genpkey -algorithm ed25519 -out KEY.pem` \
     and its public half with `openssl pkey -in KEY.pem -pubout -out PUB.pem`";

/// DSSE's pre-authentication encoding of a payload and its type.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The key id of a public key: the hex sha256 of its 32 bytes.
pub fn key_id(public: &VerifyingKey) -> String {
    use sha2::Digest;
    forge_store::hash::hex(&sha2::Sha256::digest(public.as_bytes()))
}

/// A signing key from its 32-byte seed (the private key file's content).
pub fn signing_key(seed: &[u8]) -> Result<SigningKey, DsseError> {
    let seed: [u8; 32] = seed.try_into().map_err(|_| DsseError::Key {
        what: "the private key".into(),
        why: format!("{} bytes, expected a 32-byte seed", seed.len()),
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// A verifying key from its 32 bytes.
pub fn verifying_key(bytes: &[u8]) -> Result<VerifyingKey, DsseError> {
    let what = "the public key".to_string();
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| DsseError::Key { what: what.clone(), why: format!("{} bytes, expected 32", bytes.len()) })?;
    VerifyingKey::from_bytes(&arr).map_err(|e| DsseError::Key { what, why: e.to_string() })
}

/// A signing key from PKCS#8 PEM text (`-----BEGIN PRIVATE KEY-----`), as
/// `openssl genpkey -algorithm ed25519` writes it. `what` names the key in errors.
pub fn signing_key_from_pem(pem: &str, what: &str) -> Result<SigningKey, DsseError> {
    let key = |why: String| DsseError::Key { what: what.to_owned(), why };
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(key(
            "it is encrypted, and forge asks for no passphrase; keep it in a file only the builder can read, \
             decrypted with `openssl pkey -in KEY.pem -out PLAIN.pem`"
                .into(),
        ));
    }
    if !pem.contains("-----BEGIN PRIVATE KEY-----") {
        return Err(key(format!("expected a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----); {KEYGEN_HINT}")));
    }
    SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| key(format!("{e} (is it an Ed25519 key? {KEYGEN_HINT})")))
}

/// A verifying key from PEM text: a public key (`-----BEGIN PUBLIC KEY-----`,
/// SubjectPublicKeyInfo as `openssl pkey -pubout` writes it) or a private key, whose
/// public half is taken. `what` names the key in errors.
pub fn verifying_key_from_pem(pem: &str, what: &str) -> Result<VerifyingKey, DsseError> {
    if pem.contains("PRIVATE KEY-----") {
        return signing_key_from_pem(pem, what).map(|k| k.verifying_key());
    }
    if !pem.contains("-----BEGIN PUBLIC KEY-----") {
        return Err(DsseError::Key {
            what: what.to_owned(),
            why: format!("expected a PEM public key (-----BEGIN PUBLIC KEY-----); {KEYGEN_HINT}"),
        });
    }
    VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| DsseError::Key {
        what: what.to_owned(),
        why: format!("{e} (is it an Ed25519 key? {KEYGEN_HINT})"),
    })
}

/// Reads a PEM file: `signing_key_from_pem` or `verifying_key_from_pem` over its text.
pub fn read_pem(path: &std::path::Path, what: &str) -> Result<String, DsseError> {
    std::fs::read_to_string(path).map_err(|source| DsseError::Io {
        what: what.to_owned(),
        path: path.to_owned(),
        source,
    })
}

/// The key ids an envelope names in its signatures, in order.
pub fn signer_ids(envelope: &Value) -> Vec<String> {
    let sigs = envelope["signatures"].as_array().map(Vec::as_slice).unwrap_or_default();
    sigs.iter().filter_map(|s| s["keyid"].as_str().map(str::to_owned)).collect()
}

/// The envelope `{payloadType, payload, signatures: [{keyid, sig}]}` around `payload`.
/// Ed25519 signatures are deterministic, so the envelope is too.
pub fn sign(payload_type: &str, payload: &[u8], key: &SigningKey) -> Value {
    let sig = key.sign(&pae(payload_type, payload));
    json!({
        "payloadType": payload_type,
        "payload": STANDARD.encode(payload),
        "signatures": [{ "keyid": key_id(&key.verifying_key()), "sig": STANDARD.encode(sig.to_bytes()) }],
    })
}

/// The payload of a well-formed envelope, its signatures not checked: for showing
/// what an envelope claims when no key is at hand. [`verify`] is the check.
pub fn payload_unverified(envelope: &Value) -> Result<Vec<u8>, DsseError> {
    let malformed = |why: &str| DsseError::Malformed { why: why.into() };
    envelope["payloadType"].as_str().ok_or_else(|| malformed("no payloadType"))?;
    let sigs = envelope["signatures"].as_array().ok_or_else(|| malformed("no signatures"))?;
    if sigs.is_empty() || sigs.iter().any(|s| s["sig"].as_str().and_then(|b| STANDARD.decode(b).ok()).is_none()) {
        return Err(malformed("a signature is missing or not base64"));
    }
    envelope["payload"].as_str().and_then(|p| STANDARD.decode(p).ok()).ok_or_else(|| malformed("payload is not base64"))
}

/// The payload of `envelope` once one of its signatures verifies with `key`.
pub fn verify(envelope: &Value, key: &VerifyingKey) -> Result<(String, Vec<u8>), DsseError> {
    let payload = payload_unverified(envelope)?;
    let payload_type = envelope["payloadType"].as_str().unwrap_or_default();
    let sigs = envelope["signatures"].as_array().map(Vec::as_slice).unwrap_or_default();
    let message = pae(payload_type, &payload);
    let good = sigs.iter().any(|s| {
        let sig = s["sig"].as_str().and_then(|b| STANDARD.decode(b).ok());
        sig.and_then(|b| Signature::from_slice(&b).ok()).is_some_and(|sig| key.verify(&message, &sig).is_ok())
    });
    if !good {
        let keyid = key_id(key);
        let signed_by = signer_ids(envelope);
        // keyid is an unauthenticated hint: it only chooses the message.
        if signed_by.is_empty() || signed_by.contains(&keyid) {
            return Err(DsseError::BadSignature { keyid });
        }
        return Err(DsseError::WrongKey { keyid, signed_by });
    }
    Ok((payload_type.to_string(), payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        forge_store::hash::unhex(s).unwrap()
    }

    #[test]
    fn pae_matches_the_dsse_specification_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn rfc8032_test_vector_one_signs_and_verifies() {
        // RFC 8032 section 7.1, TEST 1 (empty message).
        let key = signing_key(&unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")).unwrap();
        assert_eq!(
            key.verifying_key().as_bytes()[..],
            unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        );
        let sig = key.sign(b"");
        assert_eq!(
            sig.to_bytes()[..],
            unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
        );
    }

    #[test]
    fn envelope_verifies_and_is_deterministic() {
        let key = signing_key(&[7u8; 32]).unwrap();
        let env = sign(IN_TOTO_PAYLOAD_TYPE, b"{\"a\":1}", &key);
        assert_eq!(env, sign(IN_TOTO_PAYLOAD_TYPE, b"{\"a\":1}", &key));
        let (ty, body) = verify(&env, &key.verifying_key()).unwrap();
        assert_eq!((ty.as_str(), body.as_slice()), (IN_TOTO_PAYLOAD_TYPE, &b"{\"a\":1}"[..]));
    }

    #[test]
    fn tampered_payload_type_or_other_key_fails() {
        let key = signing_key(&[7u8; 32]).unwrap();
        let mut env = sign(IN_TOTO_PAYLOAD_TYPE, b"{\"a\":1}", &key);
        let other = signing_key(&[8u8; 32]).unwrap();
        let err = verify(&env, &other.verifying_key()).unwrap_err();
        assert!(matches!(err, DsseError::WrongKey { .. }), "{err}");
        assert!(err.to_string().contains(&key_id(&key.verifying_key())), "{err}");
        env["payload"] = json!(STANDARD.encode(b"{\"a\":2}"));
        let err = verify(&env, &key.verifying_key()).unwrap_err();
        assert!(matches!(err, DsseError::BadSignature { .. }) && err.to_string().contains("altered"), "{err}");
        let mut env = sign(IN_TOTO_PAYLOAD_TYPE, b"x", &key);
        env["payloadType"] = json!("text/plain");
        assert!(verify(&env, &key.verifying_key()).is_err());
        assert!(signing_key(&[1u8; 31]).is_err());
        assert!(matches!(verify(&json!({}), &key.verifying_key()), Err(DsseError::Malformed { .. })));
    }

    #[test]
    fn openssl_verifies_the_envelope_signature_over_the_pae() {
        if std::process::Command::new("openssl").arg("version").output().is_err() {
            eprintln!("SKIP: openssl is not installed");
            return;
        }
        let key = signing_key(&[9u8; 32]).unwrap();
        let env = sign(IN_TOTO_PAYLOAD_TYPE, b"{}", &key);
        let dir = tempfile::tempdir().unwrap();
        let (msg, sig, public) = (dir.path().join("msg"), dir.path().join("sig"), dir.path().join("pub.der"));
        std::fs::write(&msg, pae(IN_TOTO_PAYLOAD_TYPE, b"{}")).unwrap();
        std::fs::write(&sig, STANDARD.decode(env["signatures"][0]["sig"].as_str().unwrap()).unwrap()).unwrap();
        // SubjectPublicKeyInfo for Ed25519 (RFC 8410) followed by the 32 key bytes.
        let mut der = unhex("302a300506032b6570032100");
        der.extend_from_slice(key.verifying_key().as_bytes());
        std::fs::write(&public, der).unwrap();
        let verify = |m: &std::path::Path| {
            std::process::Command::new("openssl")
                .args(["pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-rawin", "-inkey"])
                .arg(&public)
                .arg("-in")
                .arg(m)
                .arg("-sigfile")
                .arg(&sig)
                .output()
                .unwrap()
        };
        let out = verify(&msg);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        std::fs::write(&msg, pae(IN_TOTO_PAYLOAD_TYPE, b"{ }")).unwrap();
        assert!(!verify(&msg).status.success());
    }

    fn openssl(args: &[&str]) -> std::process::Output {
        let out = std::process::Command::new("openssl").args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    fn have_openssl() -> bool {
        let found = std::process::Command::new("openssl").arg("version").output().is_ok();
        if !found {
            eprintln!("SKIP: openssl is not installed");
        }
        found
    }

    #[test]
    fn openssl_pem_keys_load_and_openssl_signs_the_same_bytes_over_the_pae() {
        if !have_openssl() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
        openssl(&["genpkey", "-algorithm", "ed25519", "-out", &p("key.pem")]);
        openssl(&["pkey", "-in", &p("key.pem"), "-pubout", "-out", &p("pub.pem")]);
        let key = signing_key_from_pem(&read_pem(&dir.path().join("key.pem"), "k").unwrap(), "k").unwrap();
        let public = verifying_key_from_pem(&std::fs::read_to_string(p("pub.pem")).unwrap(), "p").unwrap();
        assert_eq!(key.verifying_key(), public);
        let from_private = verifying_key_from_pem(&std::fs::read_to_string(p("key.pem")).unwrap(), "p").unwrap();
        assert_eq!(from_private, public);
        // Ed25519 is deterministic: openssl's signature of the PAE is ours, byte for byte.
        let env = sign(IN_TOTO_PAYLOAD_TYPE, b"{\"x\":1}\n", &key);
        std::fs::write(p("pae"), pae(IN_TOTO_PAYLOAD_TYPE, b"{\"x\":1}\n")).unwrap();
        openssl(&["pkeyutl", "-sign", "-rawin", "-inkey", &p("key.pem"), "-in", &p("pae"), "-out", &p("sig")]);
        let theirs = std::fs::read(p("sig")).unwrap();
        assert_eq!(STANDARD.decode(env["signatures"][0]["sig"].as_str().unwrap()).unwrap(), theirs);
        // openssl's key id: the sha256 of the last 32 bytes of the DER public key.
        let der = openssl(&["pkey", "-pubin", "-in", &p("pub.pem"), "-outform", "DER"]).stdout;
        let want = forge_store::hash::hex(&<sha2::Sha256 as sha2::Digest>::digest(&der[der.len() - 32..]));
        assert_eq!(key_id(&public), want);
    }

    #[test]
    fn keys_of_the_wrong_kind_are_refused_saying_how_to_make_one() {
        let rsa = include_str!("apk/testdata/forge-test@example.invalid-1.rsa");
        let err = signing_key_from_pem(rsa, "--sign-key k.pem").unwrap_err().to_string();
        assert!(err.contains("--sign-key k.pem") && err.contains("openssl genpkey -algorithm ed25519"), "{err}");
        let rsa_pub = include_str!("apk/testdata/forge-test@example.invalid-1.rsa.pub");
        let err = verifying_key_from_pem(rsa_pub, "--key p.pem").unwrap_err().to_string();
        assert!(err.contains("--key p.pem") && err.contains("Ed25519"), "{err}");
        let err = signing_key_from_pem("just text", "k").unwrap_err().to_string();
        assert!(err.contains("BEGIN PRIVATE KEY"), "{err}");
        let err = verifying_key_from_pem("just text", "k").unwrap_err().to_string();
        assert!(err.contains("BEGIN PUBLIC KEY"), "{err}");
        let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let err = signing_key_from_pem(encrypted, "k").unwrap_err().to_string();
        assert!(err.contains("encrypted") && err.contains("openssl pkey"), "{err}");
        let err = read_pem(std::path::Path::new("/nonexistent/k.pem"), "the signing key").unwrap_err().to_string();
        assert!(err.contains("cannot read the signing key /nonexistent/k.pem"), "{err}");
    }
}
