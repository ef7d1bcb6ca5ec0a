//! Signed provenance end to end: `forge build --sign-key` (or $FORGE_SIGNING_KEY, or
//! the config file) with keys openssl makes, openssl verifying forge's signature over
//! DSSE's pre-authentication encoding, and `forge verify --key` refusing every kind
//! of tampering before it rebuilds anything.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use forge_tests::*;

/// An Ed25519 key pair made by openssl: (private PKCS#8 PEM, public PEM).
fn openssl_keys(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (key, public) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.pub.pem")));
    run_ok(Command::new("openssl").args(["genpkey", "-algorithm", "ed25519", "-out"]).arg(&key));
    run_ok(Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&key).arg("-out").arg(&public));
    (key, public)
}

/// The key id as an outsider computes it: sha256 of the raw 32-byte public key (the
/// tail of the DER SubjectPublicKeyInfo openssl prints), hashed by sha256sum.
fn key_id(public: &Path, dir: &Path) -> String {
    let der = run_ok(Command::new("openssl").args(["pkey", "-pubin", "-outform", "DER", "-in"]).arg(public)).stdout;
    let raw = dir.join("raw.key");
    std::fs::write(&raw, &der[der.len() - 32..]).unwrap();
    let out = stdout(&run_ok(Command::new("sha256sum").arg(&raw)));
    out.split_whitespace().next().unwrap().to_owned()
}

/// `forge-example` with no signing key or config file from the environment.
fn example_in(dir: &Path) -> Command {
    let mut cmd = example(&dir.join("store"));
    cmd.env("FORGE_CONFIG", dir.join("no-config"));
    cmd
}

/// Builds hello-text (one builtin step) with extra options; returns the output link.
fn build(dir: &Path, opts: &[&str]) -> PathBuf {
    let link = dir.join("o");
    run_ok(example_in(dir).args(["build", "hello-text", "--out"]).arg(&link).args(opts));
    link
}

fn envelope_of(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("o.provenance.dsse.json")).unwrap()).unwrap()
}

fn verify(dir: &Path, what: &Path, key: Option<&Path>) -> Output {
    let mut cmd = example_in(&dir.join("fresh"));
    cmd.arg("verify").arg(what);
    if let Some(k) = key {
        cmd.arg("--key").arg(k);
    }
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn build_signs_the_provenance_and_openssl_verifies_the_signature_over_the_pae() {
    if !have_tool("openssl") || !have_tool("sha256sum") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = openssl_keys(dir.path(), "builder");
    let key_arg = key.to_str().unwrap();
    build(dir.path(), &["--sign-key", key_arg]);
    let record = std::fs::read(dir.path().join("o.provenance.json")).unwrap();
    let envelope = envelope_of(dir.path());
    let id = key_id(&public, dir.path());

    assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
    let payload = STANDARD.decode(envelope["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload, record, "the envelope signs the record beside it, byte for byte");
    assert_eq!(envelope["signatures"][0]["keyid"], id.as_str());

    // openssl checks the Ed25519 signature over DSSEv1 LEN(type) type LEN(body) body.
    let pae = dir.path().join("pae");
    let mut message = format!("DSSEv1 28 application/vnd.in-toto+json {} ", payload.len()).into_bytes();
    message.extend_from_slice(&payload);
    std::fs::write(&pae, &message).unwrap();
    let sig = dir.path().join("sig");
    std::fs::write(&sig, STANDARD.decode(envelope["signatures"][0]["sig"].as_str().unwrap()).unwrap()).unwrap();
    let openssl_verify = |msg: &Path| {
        Command::new("openssl")
            .args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
            .arg(&public)
            .arg("-in")
            .arg(msg)
            .arg("-sigfile")
            .arg(&sig)
            .output()
            .unwrap()
    };
    let out = openssl_verify(&pae);
    assert!(out.status.success(), "{}", text(&out));
    message[40] ^= 1;
    std::fs::write(&pae, &message).unwrap();
    assert!(!openssl_verify(&pae).status.success(), "openssl must refuse a changed message");

    // The same build signed again gives the same envelope (Ed25519 is deterministic).
    let first = std::fs::read(dir.path().join("o.provenance.dsse.json")).unwrap();
    build(dir.path(), &["--sign-key", key_arg]);
    assert_eq!(std::fs::read(dir.path().join("o.provenance.dsse.json")).unwrap(), first);

    // forge verify: with the public key, from the record or from the envelope.
    for what in ["o.provenance.json", "o.provenance.dsse.json"] {
        let out = verify(dir.path(), &dir.path().join(what), Some(&public));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(text(&out).contains(&format!("signature: good, by key {id}")), "{}", text(&out));
        assert!(text(&out).contains("verified: "), "{}", text(&out));
    }
    // Without a key the envelope is still matched to the record, and its signer named.
    let out = verify(dir.path(), &dir.path().join("o.provenance.json"), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains(&format!("not checked (signed by key {id})")), "{}", text(&out));
}

#[test]
fn verify_refuses_an_altered_record_payload_or_signature_and_another_signers_key() {
    if !have_tool("openssl") || !have_tool("sha256sum") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = openssl_keys(dir.path(), "builder");
    let (_, other_public) = openssl_keys(dir.path(), "other");
    build(dir.path(), &["--sign-key", key.to_str().unwrap()]);
    let id = key_id(&public, dir.path());
    let record_path = dir.path().join("o.provenance.json");
    let record = std::fs::read_to_string(&record_path).unwrap();
    let envelope = envelope_of(dir.path());
    let refused = |what: &Path, key: &Path, needles: &[&str]| {
        let out = verify(dir.path(), what, Some(key));
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        for n in needles {
            assert!(text(&out).contains(n), "missing {n:?} in:\n{}", text(&out));
        }
        assert!(!text(&out).contains("verified:"), "nothing is rebuilt after a refusal: {}", text(&out));
    };

    // Another signer's public key: both key ids are named.
    let other_id = key_id(&other_public, dir.path());
    refused(&record_path, &other_public, &["SIGNATURE REFUSED", &id, &other_id]);

    // The record beside the envelope changed after signing.
    let altered = record.replace("\"recipe\": \"hello-text\"", "\"recipe\": \"hello-there\"");
    assert_ne!(altered, record);
    std::fs::write(&record_path, &altered).unwrap();
    refused(&record_path, &public, &["SIGNATURE REFUSED", "altered after signing", &id]);
    std::fs::write(&record_path, &record).unwrap();

    // The payload inside the envelope replaced.
    let mut bad = envelope.clone();
    bad["payload"] = STANDARD.encode(altered.as_bytes()).into();
    let bad_path = dir.path().join("payload.provenance.dsse.json");
    std::fs::write(&bad_path, bad.to_string()).unwrap();
    refused(&bad_path, &public, &["SIGNATURE REFUSED", "does not verify", &id]);

    // One bit of the signature flipped.
    let mut sig = STANDARD.decode(envelope["signatures"][0]["sig"].as_str().unwrap()).unwrap();
    sig[10] ^= 1;
    let mut bad = envelope.clone();
    bad["signatures"][0]["sig"] = STANDARD.encode(&sig).into();
    std::fs::write(&bad_path, bad.to_string()).unwrap();
    refused(&bad_path, &public, &["SIGNATURE REFUSED", "does not verify", &id]);

    // A record with no envelope, checked against a key.
    std::fs::remove_file(dir.path().join("o.provenance.dsse.json")).unwrap();
    refused(&record_path, &public, &["NOT SIGNED", "o.provenance.dsse.json"]);
}

#[test]
fn the_key_comes_from_the_flag_then_the_environment_then_the_config_file() {
    if !have_tool("openssl") || !have_tool("sha256sum") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys: Vec<(PathBuf, PathBuf)> = ["flag", "env", "config"].iter().map(|n| openssl_keys(d, n)).collect();
    let ids: Vec<String> = keys.iter().map(|(_, p)| key_id(p, d)).collect();
    // A relative path in the config file is taken from the config file's folder.
    std::fs::write(d.join("config"), "mirror = /nonexistent-mirror\nsigning-key = config.pem\n").unwrap();
    let signer = |flag: bool, env: bool, config: bool| {
        let mut cmd = example_in(d);
        cmd.args(["build", "hello-text", "--out"]).arg(d.join("o"));
        if flag {
            cmd.arg("--sign-key").arg(&keys[0].0);
        }
        if env {
            cmd.env("FORGE_SIGNING_KEY", &keys[1].0);
        }
        if config {
            cmd.env("FORGE_CONFIG", d.join("config"));
        }
        run_ok(&mut cmd);
        let path = d.join("o.provenance.dsse.json");
        path.exists().then(|| envelope_of(d)["signatures"][0]["keyid"].as_str().unwrap().to_owned())
    };
    assert_eq!(signer(true, true, true), Some(ids[0].clone()));
    assert_eq!(signer(false, true, true), Some(ids[1].clone()));
    assert_eq!(signer(false, false, true), Some(ids[2].clone()));
    // Unsigned again: the envelope of the earlier record is removed, not left stale,
    // and verify (without --key) checks the rebuild alone.
    assert_eq!(signer(false, false, false), None);
    let out = verify(d, &d.join("o.provenance.json"), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("signature:"), "{}", text(&out));
}

#[test]
fn a_bad_signing_key_stops_the_build_before_it_starts_and_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rsa = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/src/apk/testdata/forge-test@example.invalid-1.rsa");
    let fails = |env: Option<(&str, PathBuf)>, flag: Option<&Path>, needles: &[&str]| {
        let mut cmd = example_in(d);
        cmd.args(["build", "hello-text", "--out"]).arg(d.join("o"));
        if let Some(k) = flag {
            cmd.arg("--sign-key").arg(k);
        }
        if let Some((name, value)) = env {
            cmd.env(name, value);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        for n in needles {
            assert!(text(&out).contains(n), "missing {n:?} in:\n{}", text(&out));
        }
        assert!(!d.join("o").exists(), "nothing is built with a bad key");
    };
    fails(None, Some(&rsa), &["not a valid Ed25519 key", "--sign-key", "openssl genpkey -algorithm ed25519"]);
    fails(Some(("FORGE_SIGNING_KEY", d.join("absent.pem"))), None, &["cannot read", "FORGE_SIGNING_KEY"]);
    std::fs::write(d.join("config"), "signing-key = k.pem\nsign-key = typo.pem\n").unwrap();
    fails(Some(("FORGE_CONFIG", d.join("config"))), None, &["config:2", "unknown key `sign-key`"]);
    std::fs::write(d.join("config"), "signing-key = absent.pem\n").unwrap();
    fails(Some(("FORGE_CONFIG", d.join("config"))), None, &["config:1: signing-key", "absent.pem"]);
}
