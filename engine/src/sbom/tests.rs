use super::*;

fn packages() -> Vec<Package> {
    vec![
        Package {
            name: "musl".into(),
            version: "1.2.5-r0".into(),
            license: Some("MIT".into()),
            source_url: Some("https://example.org/musl-1.2.5.tar.gz".into()),
            sha256: Some("a9a118bbe84d8764da0ea0d28b3ab3fae8477fc7e4085d90102b8596fc7c75e4".into()),
            supplier: Some("Alpine Linux".into()),
        },
        Package {
            name: "busybox".into(),
            version: "1.36.1-r2".into(),
            license: Some("GPL-2.0-only".into()),
            source_url: None,
            sha256: None,
            supplier: None,
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
    assert!(is_license_expression("GPL-2.0+ WITH Classpath-exception-2.0"));
    assert!(!is_license_expression("GPL AND"));
    assert!(!is_license_expression(""));
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

/// The SPDX project's own validator (`pyspdxtools`, from spdx-tools), when installed:
/// FORGE_PYSPDXTOOLS, then PATH, then where .ci/setup.d/spdx-tools.sh puts it.
fn pyspdxtools() -> Option<std::path::PathBuf> {
    let from_env = std::env::var_os("FORGE_PYSPDXTOOLS").map(std::path::PathBuf::from);
    let on_path = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("pyspdxtools")).find(|p| p.is_file()));
    let ci = Some(std::path::PathBuf::from("/opt/spdx-tools/bin/pyspdxtools")).filter(|p| p.is_file());
    from_env.or(on_path).or(ci)
}

#[test]
fn spdx_tools_validator_accepts_the_document() {
    let Some(tool) = pyspdxtools() else {
        eprintln!("SKIP: pyspdxtools is not installed (.ci/setup.d/spdx-tools.sh installs it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sbom.spdx.json");
    std::fs::write(&path, doc(&packages())).unwrap();
    let out = std::process::Command::new(&tool).arg("-i").arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The validator must be able to fail: an SPDXID with a space is refused.
    let bad = doc(&packages()).replace("SPDXRef-Package-odd-pkg-1", "SPDXRef-Package odd");
    std::fs::write(&path, bad).unwrap();
    assert!(!std::process::Command::new(&tool).arg("-i").arg(&path).status().unwrap().success());
}
