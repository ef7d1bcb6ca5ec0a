use super::*;
use crate::apk::checksum::Checksum;

/// A repository from lines `name version [D:deps] [p:provides] [i:install_if] [k:N] [A:arch]`
/// (deps within a field separated by commas).
fn repo(tag: Option<&str>, lines: &[&str]) -> Repository {
    let packages = lines
        .iter()
        .map(|l| {
            let mut words = l.split_whitespace();
            let (name, version) = (words.next().unwrap(), words.next().unwrap());
            let mut f = vec![
                ('C', Checksum::sha1_of(format!("{name}-{version}-{tag:?}").as_bytes()).to_string()),
                ('P', name.to_owned()),
                ('V', version.to_owned()),
            ];
            let mut arch = "x86_64".to_owned();
            for w in words {
                let (k, v) = w.split_once(':').unwrap();
                match k {
                    "A" => arch = v.to_owned(),
                    _ => f.push((k.chars().next().unwrap(), v.replace(',', " "))),
                }
            }
            f.insert(3, ('A', arch));
            IndexPackage::from_fields(f, "test").unwrap()
        })
        .collect();
    Repository { url: format!("repo-{}", tag.unwrap_or("main")), tag: tag.map(str::to_owned), packages }
}

fn world(s: &str) -> Vec<Dep> {
    Dep::parse_list(s, "world").unwrap()
}

fn names(repos: &[Repository], w: &str) -> Vec<String> {
    let r = resolve(repos, "x86_64", &world(w)).unwrap();
    r.packages.iter().map(|p| format!("{} {}", p.package.name, p.package.version)).collect()
}

fn fails(repos: &[Repository], w: &str) -> String {
    resolve(repos, "x86_64", &world(w)).unwrap_err().to_string()
}

#[test]
fn highest_satisfying_version_wins_for_each_operator() {
    let r = [repo(None, &["a 1.0", "a 1.5", "a 2.0_rc1", "a 2.0", "a 2.1", "a 3.0"])];
    assert_eq!(names(&r, "a"), ["a 3.0"]);
    assert_eq!(names(&r, "a=1.5"), ["a 1.5"]);
    assert_eq!(names(&r, "a<2.0"), ["a 2.0_rc1"]);
    assert_eq!(names(&r, "a<=2.0"), ["a 2.0"]);
    assert_eq!(names(&r, "a>2.0"), ["a 3.0"]);
    assert_eq!(names(&r, "a>=2.1"), ["a 3.0"]);
    assert_eq!(names(&r, "a~2"), ["a 2.1"]);
    assert_eq!(names(&r, "a~2.0"), ["a 2.0"]);
    assert_eq!(names(&r, "a>1 a<2"), ["a 1.5"]);
}

#[test]
fn checksum_constraint_pins_one_exact_package() {
    let r = [repo(None, &["a 1.0", "a 2.0"])];
    let sum = r[0].packages[0].checksum;
    assert_eq!(names(&r, &format!("a><{sum}")), ["a 1.0"]);
}

#[test]
fn dependencies_are_followed_and_the_result_is_sorted_by_name() {
    let r = [repo(None, &["z 1 D:m", "m 1 D:a>=2", "a 1", "a 2", "a 3 D:b", "b 1"])];
    assert_eq!(names(&r, "z"), ["a 3", "b 1", "m 1", "z 1"]);
}

#[test]
fn provides_so_cmd_pc_and_versioned_virtuals_are_met_by_providers() {
    let r = [repo(
        None,
        &[
            "musl 1.2.3-r0 p:so:libc.musl-x86_64.so.1=1",
            "busybox 1.35 p:cmd:sh=1.35,/bin/sh",
            "zlib-dev 1.2.12 p:pc:zlib=1.2.12",
            "app 1 D:so:libc.musl-x86_64.so.1,cmd:sh,/bin/sh,pc:zlib>=1.2",
        ],
    )];
    assert_eq!(names(&r, "app"), ["app 1", "busybox 1.35", "musl 1.2.3-r0", "zlib-dev 1.2.12"]);
    // A provide without a version cannot meet a versioned dependency.
    let err = fails(&r, "/bin/sh>=1");
    assert!(err.contains("world -> /bin/sh>=1") && err.contains("no provider offers such a version"), "{err}");
}

#[test]
fn unversioned_virtuals_pick_by_provider_priority_then_name() {
    let r = [repo(None, &["b-impl 1 p:virt", "a-impl 1 p:virt", "c-impl 1 p:virt k:10"])];
    assert_eq!(names(&r, "virt"), ["c-impl 1"]);
    let r = [repo(None, &["b-impl 1 p:virt", "a-impl 1 p:virt"])];
    assert_eq!(names(&r, "virt"), ["a-impl 1"]);
    // Asking for the provider by name overrides.
    assert_eq!(names(&r, "virt b-impl"), ["b-impl 1"]);
}

#[test]
fn two_packages_may_not_provide_the_same_versioned_name() {
    let r = [repo(None, &["x 1 p:so:libx.so=1", "y 1 p:so:libx.so=1", "app 1 D:x,y"])];
    let err = fails(&r, "app");
    assert!(err.contains("both provide so:libx.so") && err.contains("world -> app-1"), "{err}");
}

#[test]
fn conflicts_exclude_packages_and_backtracking_finds_another_way() {
    // app needs "ssl" (two providers); the world forbids the first choice.
    let r = [repo(None, &["openssl 3 p:ssl=1", "libressl 3 p:ssl=1", "app 1 D:ssl"])];
    assert_eq!(names(&r, "app"), ["app 1", "libressl 3"]);
    assert_eq!(names(&r, "!openssl app"), ["app 1", "libressl 3"]);
    assert_eq!(names(&r, "!libressl app"), ["app 1", "openssl 3"]);
    // A conflict declared by a package applies too, with versions.
    let r = [repo(None, &["a 1 D:!b<2", "b 1", "b 2", "c 1 D:b<2"])];
    assert_eq!(names(&r, "a b"), ["a 1", "b 2"]);
    let err = fails(&r, "a c");
    assert!(err.contains("b<2") && (err.contains("forbidden") || err.contains("conflicts")), "{err}");
    // Backtracking: the highest b needs a d that the world forbids, so b 1 is used.
    let r = [repo(None, &["b 1", "b 2 D:d", "d 1"])];
    assert_eq!(names(&r, "b !d"), ["b 1"]);
}

#[test]
fn install_if_packages_join_when_their_conditions_are_installed() {
    let r = [repo(None, &["bash 5", "docs 1", "bash-doc 5 i:bash=5,docs", "bash-completion 2 i:bash", "zsh 5"])];
    assert_eq!(names(&r, "bash"), ["bash 5", "bash-completion 2"]);
    assert_eq!(names(&r, "bash docs"), ["bash 5", "bash-completion 2", "bash-doc 5", "docs 1"]);
    assert_eq!(names(&r, "zsh"), ["zsh 5"]);
}

#[test]
fn tagged_repositories_serve_only_tagged_requests_and_their_dependencies() {
    let repos = [repo(None, &["a 1", "lib 1"]), repo(Some("edge"), &["a 2 D:lib>=2", "lib 2", "new 1"])];
    assert_eq!(names(&repos, "a"), ["a 1"]);
    assert_eq!(names(&repos, "a@edge"), ["a 2", "lib 2"]);
    let err = fails(&repos, "new");
    assert!(err.contains("only in the repository tagged @edge (ask for new@edge)"), "{err}");
}

#[test]
fn architecture_filters_packages() {
    let r = [repo(None, &["a 1 A:aarch64", "b 1 A:noarch"])];
    assert_eq!(names(&r, "b"), ["b 1"]);
    assert!(fails(&r, "a").contains("only for aarch64"));
}

#[test]
fn unsatisfiable_world_names_the_failing_chain() {
    let r = [repo(None, &["a 1.0-r0 D:b>=2", "b 1.0-r0"])];
    let err = fails(&r, "a");
    assert_eq!(err, "cannot resolve the world: world -> a-1.0-r0 -> b>=2: no such version (available: 1.0-r0)");
    assert!(fails(&r, "nothing").contains("world -> nothing: no package has or provides that name"));
}

#[test]
fn resolution_is_deterministic_whatever_the_index_order() {
    let lines = ["x 1 p:v", "y 1 p:v", "app 1 D:v,lib", "lib 2", "lib 1"];
    let mut rev = lines;
    rev.reverse();
    assert_eq!(names(&[repo(None, &lines)], "app"), names(&[repo(None, &rev)], "app"));
}

#[test]
fn real_v3_16_index_resolves_alpine_base() {
    let Some(fx) = crate::apk::testutil::alpine_fixtures() else { return };
    let bytes = std::fs::read(fx.join("APKINDEX-v3.16-main-x86_64.tar.gz")).unwrap();
    let index = crate::apk::index::parse_unverified(&bytes, "index").unwrap();
    let repos = [Repository { url: "main".into(), tag: None, packages: index.packages }];
    let got = names(&repos, "alpine-base");
    for want in ["alpine-base 3.16.3-r0", "alpine-baselayout 3.2.0-r23", "busybox 1.35.0-r17", "musl 1.2.3-r2"] {
        assert!(got.iter().any(|g| g == want), "{want} missing from {got:?}");
    }
}
