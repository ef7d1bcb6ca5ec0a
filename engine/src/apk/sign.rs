//! Signing with an RSA private key, as abuild-sign does: the signature of the bytes that
//! follow (an apk's control stream, an index's tar stream) goes into a gzip stream of its
//! own holding one tar entry `.SIGN.RSA.<public key file name>`, without end-of-archive.

use std::path::Path;

use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::{RsaPrivateKey, RsaPublicKey};

use super::keys::SigAlgo;
use super::tarball::{Kind, NewEntry, Writer};
use super::{streams, Error, Result};

/// A private key and the name its public half is published under (the key file name in
/// `/etc/apk/keys`, e.g. `someone@example.org-61234567.rsa.pub`).
#[derive(Clone)]
pub struct SigningKey {
    /// The public key's file name (in `/etc/apk/keys`).
    pub name: String,
    key: RsaPrivateKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("name", &self.name).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Parses a PEM private key (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE
    /// KEY`); `name` is the public key's file name; `path` names the input in errors.
    pub fn from_pem(pem: &str, name: &str, path: &Path) -> Result<SigningKey> {
        let key = RsaPrivateKey::from_pkcs8_pem(pem.trim())
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem.trim()))
            .map_err(|e| Error::Key { path: path.to_owned(), reason: format!("not a PEM RSA private key: {e}") })?;
        if name.is_empty() || name.contains('/') {
            return Err(Error::Key { path: path.to_owned(), reason: format!("bad key name {name:?}") });
        }
        Ok(SigningKey { name: name.to_owned(), key })
    }

    /// Loads a private key file; as with abuild, the public key is named after it with
    /// `.pub` appended.
    pub fn load(path: &Path) -> Result<SigningKey> {
        let pem = std::fs::read_to_string(path).map_err(Error::io(path))?;
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        SigningKey::from_pem(&pem, &format!("{file}.pub"), path)
    }

    /// The public key.
    pub fn public_key(&self) -> RsaPublicKey {
        self.key.to_public_key()
    }

    /// The public key as PEM SPKI (`BEGIN PUBLIC KEY`), the form in `/etc/apk/keys`.
    pub fn public_key_pem(&self) -> String {
        let public = self.key.to_public_key();
        public.to_public_key_pem(LineEnding::LF).or_else(|_| public.to_pkcs1_pem(LineEnding::LF)).unwrap_or_default()
    }

    /// The private key as PKCS#8 PEM.
    pub fn private_key_pem(&self) -> String {
        self.key.to_pkcs8_pem(LineEnding::LF).map(|p| p.to_string()).unwrap_or_default()
    }

    /// An RSA PKCS#1 v1.5 signature of the concatenation of `parts`.
    pub fn sign(&self, algo: SigAlgo, parts: &[&[u8]]) -> Result<Vec<u8>> {
        let digest = algo.digest(parts);
        // Blinding with the OS RNG hides timing; PKCS#1 v1.5 output is the same either way.
        self.key
            .sign_with_rng(&mut rand_core::OsRng, algo.padding(), &digest)
            .map_err(|e| Error::Key { path: self.name.clone().into(), reason: format!("signing failed: {e}") })
    }

    /// The gzip stream to put in front of `signed`: a tar entry with the signature,
    /// without end-of-archive. `mtime` is the entry's timestamp (fixed for reproducibility).
    pub fn signature_stream(&self, algo: SigAlgo, signed: &[u8], mtime: u64) -> Result<Vec<u8>> {
        self.signature_stream_with(&[algo], signed, mtime)
    }

    /// Like [`SigningKey::signature_stream`] with one entry per algorithm, in the order
    /// given (apk-tools uses the first entry whose key it trusts; apk-tools 2.x knows
    /// `.SIGN.RSA.`, newer ones prefer `.SIGN.RSA256.`). PKCS#1 v1.5 signatures are
    /// deterministic, so the same bytes and key always give the same stream.
    pub fn signature_stream_with(&self, algos: &[SigAlgo], signed: &[u8], mtime: u64) -> Result<Vec<u8>> {
        let mut w = Writer::new();
        for &algo in algos {
            let sig = self.sign(algo, &[signed])?;
            let path = format!("{}{}", algo.prefix(), self.name);
            w.append(&NewEntry {
                path: &path,
                kind: Kind::File,
                mode: 0o644,
                uid: 0,
                gid: 0,
                uname: "",
                gname: "",
                mtime,
                link_target: None,
                content: &sig,
                pax: vec![],
            })?;
        }
        Ok(streams::gzip(&w.finish(false)))
    }

    /// Signs an unsigned apk (control and data streams, as
    /// [`super::build::build_unsigned`] writes it): the signature over the control stream
    /// as stored goes in front. A package that already has a signature stream, or is not
    /// two gzip streams, is refused; `what` names it in errors.
    pub fn sign_apk(&self, unsigned: &[u8], algos: &[SigAlgo], mtime: u64, what: &str) -> Result<Vec<u8>> {
        let parts = streams::split(unsigned, what)?;
        if parts.first().is_some_and(super::keys::is_signature_stream) {
            return Err(Error::format(what, "already signed: sign the unsigned package from the store"));
        }
        let [control, _data] = parts.as_slice() else {
            return Err(Error::format(
                what,
                format!("expected the control and data gzip streams of an unsigned apk, found {}", parts.len()),
            ));
        };
        let mut out = self.signature_stream_with(algos, &unsigned[control.range.clone()], mtime)?;
        out.extend_from_slice(unsigned);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apk::keys::{self, SigAlgo};
    use crate::apk::testutil::*;

    #[test]
    fn signature_streams_verify_with_the_signer_and_fail_with_another_key() {
        let key = test_key();
        assert_eq!(key.name, "forge-test@example.invalid-1.rsa.pub");
        let signed = b"the control stream";
        for algo in [SigAlgo::RsaSha1, SigAlgo::RsaSha256, SigAlgo::RsaSha512] {
            let stream = key.signature_stream(algo, signed, 0).unwrap();
            let parts = streams::split(&stream, "t").unwrap();
            let sigs = keys::parse_signatures(&parts[0].content, "t").unwrap();
            assert_eq!(sigs[0].algo, algo);
            let (_d, good) = keys_dir(&[&key]);
            let signer = keys::verify(&sigs, &[signed], &good, "t").unwrap();
            assert_eq!(signer.key_name, key.name);
            assert!(keys::verify(&sigs, &[b"other bytes"], &good, "t").is_err());
            let (_d, posing) = keys_dir_posing(&key.name, &other_key());
            let err = keys::verify(&sigs, &[signed], &posing, "t").unwrap_err();
            assert!(matches!(err, Error::BadSignature { .. }), "{err}");
            let (_d, none) = keys_dir(&[&other_key()]);
            assert!(matches!(keys::verify(&sigs, &[signed], &none, "t"), Err(Error::UntrustedKey { .. })));
        }
    }

    #[test]
    fn pkcs1_and_pkcs8_private_keys_load_and_garbage_does_not() {
        assert!(other_key().private_key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
        let err = SigningKey::from_pem("nope", "k.pub", Path::new("k")).unwrap_err().to_string();
        assert!(err.contains("not a PEM RSA private key"), "{err}");
        assert!(testdata().join("README.md").is_file());
    }

    #[test]
    fn openssl_verifies_the_signatures_we_write() {
        if !forge_have_tool("openssl") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let key = test_key();
        let data = b"signed by forge";
        let sig = key.sign(SigAlgo::RsaSha1, &[data]).unwrap();
        std::fs::write(dir.path().join("data"), data).unwrap();
        std::fs::write(dir.path().join("sig"), &sig).unwrap();
        std::fs::write(dir.path().join("key.pub"), key.public_key_pem()).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["dgst", "-sha1", "-verify", "key.pub", "-signature", "sig", "data"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Verified OK");
    }
}
