use super::*;
use crate::dsl::Input;

fn packages() -> Vec<Package> {
    vec![
        Package {
            name: "musl".into(),
            version: "1.2.5-r0".into(),
            license: Some("MIT".into()),
            source_url: Some("https://example.org/musl-1.2.5.tar.gz".into()),
            checksums: BTreeMap::from([(
                "SHA256".into(),
                "a9a118bbe84d8764da0ea0d28b3ab3fae8477fc7e4085d90102b8596fc7c75e4".into(),
            )]),
            supplier: Some("Alpine Linux".into()),
            ..Package::default()
        },
        Package {
            name: "busybox".into(),
            version: "1.36.1-r2".into(),
            license: Some("GPL-2.0-only".into()),
            ..Package::default()
        },
        Package {
            name: "odd pkg".into(),
            version: "1".into(),
            license: Some("custom:foo".into()),
            ..Package::default()
        },
    ]
}

fn doc(pkgs: &[Package]) -> String {
    to_canonical_json(&spdx("agnos-image", pkgs, 1_700_000_000, "forge-0.1.0"))
}

#[test]
fn document_matches_the_golden_file() {
    assert_eq!(doc(&packages()), include_str!("golden.json"), "SBOM format changed; update golden.json and docs");
}

#[test]
fn document_is_stable_across_runs_and_input_order() {
    let mut reversed = packages();
    reversed.reverse();
    assert_eq!(doc(&packages()), doc(&reversed));
    let mut more = packages();
    more[0].version = "1.2.5-r1".into();
    let ns = |t: &str| serde_json::from_str::<Value>(t).unwrap()["documentNamespace"].clone();
    assert_ne!(ns(&doc(&packages())), ns(&doc(&more)), "the namespace must follow the content");
}

#[test]
fn spdx_required_fields_are_present() {
    let v: Value = serde_json::from_str(&doc(&packages())).unwrap();
    assert_eq!(v["spdxVersion"], "SPDX-2.3");
    assert_eq!(v["dataLicense"], "CC0-1.0");
    assert_eq!(v["SPDXID"], "SPDXRef-DOCUMENT");
    assert_eq!(v["name"], "agnos-image");
    assert!(v["documentNamespace"].as_str().unwrap().starts_with("urn:forge:spdx:agnos-image:"));
    assert_eq!(v["creationInfo"]["creators"][0], "Tool: forge-0.1.0");
    assert_eq!(v["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    let pkgs = v["packages"].as_array().unwrap();
    assert_eq!(pkgs.len(), 3);
    let mut ids = BTreeSet::new();
    for p in pkgs {
        let id = p["SPDXID"].as_str().unwrap();
        assert!(id.starts_with("SPDXRef-") && id.chars().all(|c| c.is_ascii_alphanumeric() || "-.".contains(c)));
        assert!(ids.insert(id.to_string()));
        assert!(p["name"].is_string() && p["downloadLocation"].is_string());
    }
    assert_eq!(v["relationships"].as_array().unwrap().len(), 3);
}

#[test]
fn non_spdx_license_text_is_noassertion_with_the_text_kept() {
    let v: Value = serde_json::from_str(&doc(&packages())).unwrap();
    let odd = v["packages"].as_array().unwrap().iter().find(|p| p["name"] == "odd pkg").unwrap().clone();
    assert_eq!(odd["licenseDeclared"], "NOASSERTION");
    assert!(odd["comment"].as_str().unwrap().contains("custom:foo"));
    assert!(is_license_expression("(GPL-2.0-or-later OR MIT) AND BSD-3-Clause"));
    assert!(is_license_expression("GPL-2.0-or-later WITH Classpath-exception-2.0"));
    assert!(is_license_expression("MIT AND BSD-2-Clause AND GPL-2.0-or-later"));
    assert!(!is_license_expression("GPL AND"));
    assert!(!is_license_expression(""));
    // Shaped like an expression, but not on the SPDX list (Alpine has both).
    assert!(!is_license_expression("Public-Domain"));
    assert!(!is_license_expression("LicenseRef-comma"));
    assert!(!is_license_expression("MIT and BSD"));
}

#[test]
fn duplicate_names_get_distinct_spdx_ids() {
    let mut p = packages();
    p.push(Package { name: "musl".into(), version: "1.2.5-r0".into(), ..Package::default() });
    let v: Value = serde_json::from_str(&doc(&p)).unwrap();
    let ids: BTreeSet<&str> = v["packages"].as_array().unwrap().iter().map(|p| p["SPDXID"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 4);
}

#[test]
fn created_dates_agree_with_gnu_date() {
    if std::process::Command::new("date").arg("--version").output().is_err() {
        eprintln!("skipping: no date(1)");
        return;
    }
    for epoch in [0i64, 951_782_400, 1_700_000_000, 4_102_444_799, -86_401] {
        let out = std::process::Command::new("date")
            .args(["-u", "-d", &format!("@{epoch}"), "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .unwrap();
        assert_eq!(rfc3339(epoch), String::from_utf8(out.stdout).unwrap().trim(), "epoch {epoch}");
    }
}

#[test]
fn spdx_tools_validator_accepts_the_document() {
    let Some(tool) = forge_tests::pyspdxtools() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sbom.spdx.json");
    let validate = |text: &str| {
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(&tool).arg("-i").arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "{}\n{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    validate(&doc(&packages()));
    validate(&doc(&image_packages()));
    // The validator must be able to fail: an SPDXID with a space is refused.
    let bad = doc(&packages()).replace("SPDXRef-Package-odd-pkg-1", "SPDXRef-Package odd");
    std::fs::write(&path, bad).unwrap();
    assert!(!std::process::Command::new(&tool).arg("-i").arg(&path).status().unwrap().success());
}

/// The real installed record of alpine-baselayout (apk-tools' own bytes, see
/// apk/testdata/README.md).
fn baselayout_installed() -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/apk/testdata/alpine-baselayout-3.2.0-r23-aarch64.installed"),
    )
    .unwrap()
}

/// An image, the apks of a real database plus odd ones, and inputs of every kind.
fn image_packages() -> Vec<Package> {
    let extra = "C:Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=\nP:tzdata\nV:2024a-r0\nA:aarch64\nL:Public-Domain\nU:https://www.iana.org/time-zones\n\n";
    let mut p = apk_packages(&(baselayout_installed() + extra), "installed").unwrap();
    p.push(Package {
        name: "system".into(),
        version: "12.0".into(),
        checksums: BTreeMap::from([("SHA256".into(), "ab".repeat(32))]),
        file_name: Some("system.img".into()),
        ..Package::default()
    });
    for url in ["mirror://debian/pool/main/b/busybox.deb", "/srv/repo", "https://dl-cdn.alpinelinux.org/x.tar.gz"] {
        p.push(Package { name: url.into(), source_url: Some(url.into()), role: Role::Input, ..Package::default() });
    }
    p
}

#[test]
fn apks_of_the_real_baselayout_record_carry_version_license_url_and_apk_checksum() {
    let p = apk_packages(&baselayout_installed(), "installed").unwrap();
    assert_eq!(p.len(), 1);
    let b = &p[0];
    assert_eq!((b.name.as_str(), b.version.as_str()), ("alpine-baselayout", "3.2.0-r23"));
    assert_eq!(b.license.as_deref(), Some("GPL-2.0-only"));
    assert_eq!(b.homepage.as_deref(), Some("https://git.alpinelinux.org/cgit/aports/tree/main/alpine-baselayout"));
    // C:Q1<base64> is the SHA-1; SPDX wants it in hex.
    let raw =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, "LLq2qDNrS/qRnhxQ3hsY/sHbQnc=").unwrap();
    assert_eq!(b.checksums["SHA1"], forge_store::hash::hex(&raw));
    assert!(b.comment.as_deref().unwrap().contains("origin alpine-baselayout"), "{b:?}");
    assert_eq!(b.role, Role::Contained);
    let err = apk_packages("P:x\nV:1\n\n", "/lib/apk/db/installed").unwrap_err().to_string();
    assert!(err.contains("/lib/apk/db/installed") && err.contains("C:"), "{err}");
}

#[test]
fn the_image_contains_the_apks_and_is_generated_from_the_inputs() {
    let v = spdx("system", &image_packages(), 0, "t");
    let id_of = |name: &str| {
        v["packages"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()["SPDXID"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let rel = |from: &str, kind: &str, to: &str| {
        v["relationships"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["spdxElementId"] == from && r["relationshipType"] == kind && r["relatedSpdxElement"] == to)
    };
    let image = id_of("system");
    assert!(rel("SPDXRef-DOCUMENT", "DESCRIBES", &image));
    assert!(rel(&image, "CONTAINS", &id_of("alpine-baselayout")));
    assert!(rel(&image, "CONTAINS", &id_of("tzdata")));
    assert!(rel(&image, "GENERATED_FROM", &id_of("/srv/repo")));
    assert_eq!(v["relationships"].as_array().unwrap().len(), 6);
    let pkg = |name: &str| v["packages"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap().clone();
    assert_eq!(pkg("tzdata")["licenseDeclared"], "NOASSERTION");
    assert!(pkg("tzdata")["comment"].as_str().unwrap().contains("Public-Domain"));
    assert_eq!(pkg("/srv/repo")["downloadLocation"], "NOASSERTION");
    assert!(pkg("/srv/repo")["comment"].as_str().unwrap().contains("downloaded from /srv/repo"));
    assert!(pkg("/srv/repo").get("versionInfo").is_none(), "an unknown version is left out");
    assert_eq!(
        pkg("https://dl-cdn.alpinelinux.org/x.tar.gz")["downloadLocation"],
        "https://dl-cdn.alpinelinux.org/x.tar.gz"
    );
    assert_eq!(pkg("system")["packageFileName"], "system.img");
}

#[test]
fn download_locations_are_what_the_spdx_pattern_accepts() {
    for ok in [
        "https://ftp.gnu.org/gnu/hello/hello-2.10.tar.gz",
        "git+https://github.com/commaai/agnos-builder@2320521a",
        "ftp://user@ftp.example.org:21/x",
    ] {
        assert!(is_download_location(ok), "{ok}");
    }
    for bad in [
        "/srv/x",
        "file:///srv/x",
        "mirror://debian/pool/x.deb",
        "http://127.0.0.1:8080/x",
        "https://Example.ORG/x",
        "git+/tmp/repo@abc",
    ] {
        assert!(!is_download_location(bad), "{bad}");
    }
}

#[test]
fn graph_inputs_are_fetched_files_checkouts_and_compiled_packages_with_their_sources() {
    let mut f = Forge::new();
    let tarball = f
        .fetch(
            "hello-2.10.tar.gz",
            &["https://ftp.gnu.org/gnu/hello/hello-2.10.tar.gz"],
            "sha256:31e066137a962676e89f69d1b65382de95a7ef7d914b8cb956f41ea72e0f516b",
        )
        .unwrap();
    let toolchain = f.text("toolchain", "").unwrap().as_package();
    let hello = f.package("hello", "2.10").source(&tarball).build_dep(&toolchain).autotools(&[]).finish().unwrap();
    let checkout = f
        .git(
            "agnos",
            "https://github.com/commaai/agnos-builder",
            "2320521a0fec4180f35c3b7c22d6ebc4c152223a",
            "sha256:0dx8yxadad9930ljkz1sz2ifccakdn4vj38ay6x59f2a0a1mq8f7",
            &["userspace"],
        )
        .unwrap();
    let root = f.merge("root", &[&hello, &checkout], &[]).unwrap();
    let inputs = inputs_of(&f, &[root.node()]);
    let names: Vec<&str> = inputs.iter().map(|p| p.name.as_str()).collect();
    // The tarball is hello's source: listed once, as hello. Builtin steps are not packages.
    assert_eq!(names, ["agnos", "hello"]);
    let hello = &inputs[1];
    assert_eq!(hello.version, "2.10");
    assert_eq!(hello.source_url.as_deref(), Some("https://ftp.gnu.org/gnu/hello/hello-2.10.tar.gz"));
    assert_eq!(hello.checksums["SHA256"], "31e066137a962676e89f69d1b65382de95a7ef7d914b8cb956f41ea72e0f516b");
    assert!(hello.comment.as_deref().unwrap().contains("compiled by forge from hello-2.10.tar.gz"));
    let agnos = &inputs[0];
    assert_eq!(agnos.version, "2320521a0fec4180f35c3b7c22d6ebc4c152223a");
    assert_eq!(
        agnos.source_url.as_deref(),
        Some("git+https://github.com/commaai/agnos-builder@2320521a0fec4180f35c3b7c22d6ebc4c152223a")
    );
    assert!(agnos.comment.as_deref().unwrap().contains("only userspace"));
    assert!(inputs.iter().all(|p| p.role == Role::Input));
    // Without a package builder, the download itself is the input.
    let alone = inputs_of(&f, &[tarball.node()]);
    assert_eq!((alone[0].name.as_str(), alone[0].version.as_str()), ("hello-2.10.tar.gz", ""));
}
