use super::*;

const HELLO_SHA: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
const WORLD_SHA: &str = "sha256:486ea46224d1bb4fb680f34f7c9ad96a8f24ec88be73ea8e5a6c65260e9cb8a7";

/// Two downloads and a git checkout, unpacked and merged into a rootfs.
fn graph() -> (Forge, NodeId) {
    let mut f = Forge::for_system("aarch64-linux");
    let a =
        f.fetch("hello.tar.gz", &["https://example.org/hello.tar.gz", "https://mirror.example/h.tar.gz"], HELLO_SHA);
    let b = f.fetch("world.apk", &["https://example.org/world.apk"], WORLD_SHA).unwrap();
    let g = f
        .git("recipes-src", "https://example.org/r.git", "0123456789abcdef0123456789abcdef01234567", HELLO_SHA, &[])
        .unwrap();
    let u = f.unpack("hello", &a.unwrap(), 1).unwrap();
    let cfg = f.text("motd", "hi\n").unwrap();
    let m = f.merge("rootfs", &[&u, &b, &g, &cfg], &[("/bin/sh", "busybox")]).unwrap();
    (f, crate::dsl::Input::node(&m))
}

fn meta() -> Meta {
    Meta {
        recipe: "rootfs".into(),
        arch: "aarch64".into(),
        source_revision: "feedface".into(),
        forge_version: "0.1.0".into(),
        builder_id: "urn:forge:builder:local".into(),
        environment: BTreeMap::from([("hostSystem".to_string(), "x86_64-linux".to_string())]),
    }
}

fn record(dir: &Path) -> String {
    let (f, target) = graph();
    let img = dir.join("system.img");
    std::fs::write(&img, b"image bytes").unwrap();
    let subjects = vec![("system.img".to_string(), img)];
    to_canonical_json(&from_graph(&f, &[target], &subjects, &meta()).unwrap())
}

#[test]
fn record_matches_the_golden_file() {
    let dir = tempfile::tempdir().unwrap();
    let got = record(dir.path());
    let want = include_str!("golden.json");
    assert_eq!(got, want, "provenance format changed; if on purpose, update golden.json and docs/provenance.md");
}

#[test]
fn record_is_byte_identical_across_runs_and_directories() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert_eq!(record(d1.path()), record(d2.path()));
}

#[test]
fn every_fixed_output_input_is_a_resolved_dependency() {
    let dir = tempfile::tempdir().unwrap();
    let (f, target) = graph();
    let v: Value = serde_json::from_str(&record(dir.path())).unwrap();
    let deps = v["predicate"]["buildDefinition"]["resolvedDependencies"].as_array().unwrap();
    let fixed: Vec<&crate::dsl::Node> = f.nodes().iter().filter(|n| n.drv.builder.is_fixed_output()).collect();
    assert_eq!(deps.len(), fixed.len());
    assert_eq!(fixed.len(), 3);
    for n in fixed {
        let d = deps.iter().find(|d| d["name"] == n.drv.name.as_str()).unwrap();
        assert_eq!(d["annotations"]["storePath"], n.out().to_string());
    }
    let hello = deps.iter().find(|d| d["name"] == "hello.tar.gz").unwrap();
    assert_eq!(hello["digest"]["sha256"], &HELLO_SHA[7..]);
    assert_eq!(hello["annotations"]["urls"].as_array().unwrap().len(), 2);
    let derivations = v["predicate"]["runDetails"]["byproducts"].as_array().unwrap();
    assert_eq!(derivations.len(), f.nodes().len());
    assert!(derivations.iter().any(|d| d["digest"]["sha256"] == f.node(target).hash.to_hex()));
}

#[test]
fn subjects_carry_the_artifact_sha256_and_a_changed_artifact_changes_the_invocation() {
    let dir = tempfile::tempdir().unwrap();
    let v: Value = serde_json::from_str(&record(dir.path())).unwrap();
    // sha256 of "image bytes", as sha256sum prints it.
    let want = forge_store::hash::hex(&Sha256::digest(b"image bytes"));
    assert_eq!(v["subject"][0]["digest"]["sha256"], want.as_str());
    let (f, target) = graph();
    let img = dir.path().join("other.img");
    std::fs::write(&img, b"image bytes!").unwrap();
    let other = from_graph(&f, &[target], &[("system.img".into(), img)], &meta()).unwrap();
    assert_ne!(
        other["predicate"]["runDetails"]["metadata"]["invocationId"],
        v["predicate"]["runDetails"]["metadata"]["invocationId"]
    );
}

#[test]
fn a_missing_artifact_is_an_error_naming_it() {
    let (f, target) = graph();
    let err = from_graph(&f, &[target], &[("system.img".into(), "/nonexistent/system.img".into())], &meta());
    let text = err.unwrap_err().to_string();
    assert!(text.contains("/nonexistent/system.img") && text.contains("system.img"), "{text}");
}
