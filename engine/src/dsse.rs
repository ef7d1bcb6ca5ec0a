//! DSSE envelopes (Dead Simple Signing Envelope, v1) signed with Ed25519: how a
//! provenance record is signed. The signature covers the pre-authentication encoding
//! `DSSEv1 LEN(type) type LEN(body) body`, so neither the payload type nor the payload
//! can be swapped. Format notes in docs/provenance.md.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
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
    #[error("no signature of the envelope verifies with key {keyid}")]
    BadSignature {
        /// The key's id.
        keyid: String,
    },
    /// A key could not be read.
    #[error("{what} is not a valid Ed25519 key: {why}")]
    Key {
        /// Which key.
        what: String,
        /// What is wrong.
        why: String,
    },
}

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

/// The payload of `envelope` once one of its signatures verifies with `key`.
pub fn verify(envelope: &Value, key: &VerifyingKey) -> Result<(String, Vec<u8>), DsseError> {
    let malformed = |why: &str| DsseError::Malformed { why: why.into() };
    let payload_type = envelope["payloadType"].as_str().ok_or_else(|| malformed("no payloadType"))?;
    let payload = envelope["payload"]
        .as_str()
        .and_then(|p| STANDARD.decode(p).ok())
        .ok_or_else(|| malformed("payload is not base64"))?;
    let sigs = envelope["signatures"].as_array().ok_or_else(|| malformed("no signatures"))?;
    let message = pae(payload_type, &payload);
    let good = sigs.iter().any(|s| {
        let sig = s["sig"].as_str().and_then(|b| STANDARD.decode(b).ok());
        sig.and_then(|b| Signature::from_slice(&b).ok()).is_some_and(|sig| key.verify(&message, &sig).is_ok())
    });
    if !good {
        return Err(DsseError::BadSignature { keyid: key_id(key) });
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
        assert!(matches!(verify(&env, &other.verifying_key()), Err(DsseError::BadSignature { .. })));
        env["payload"] = json!(STANDARD.encode(b"{\"a\":2}"));
        assert!(verify(&env, &key.verifying_key()).is_err());
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
}
