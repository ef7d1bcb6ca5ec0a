//! The fetcher against a local HTTP server the tests start, and local mirrors.

use std::fs;
use std::path::Path;
use std::time::Duration;

use forge_engine::fetch::{Error, Failure, FetchOptions, FetchSpec, Fetcher, Mirror, Mirrors};
use forge_store::{Algo, Hash};
use forge_tests::http::{Route, TestServer};

fn opts() -> FetchOptions {
    FetchOptions {
        offline: false,
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_millis(700),
        retries: 2,
        backoff: Duration::from_millis(10),
        progress: false,
    }
}

fn content() -> Vec<u8> {
    (0..300_000u32).map(|i| (i * 31 % 253) as u8).collect()
}

fn spec(urls: Vec<String>, algo: Algo) -> FetchSpec {
    FetchSpec { name: "thing-1.0.tar.gz".into(), urls, hash: Hash::of(algo, &content()) }
}

fn fetcher(mirrors: Vec<Mirror>, opts: FetchOptions) -> Fetcher {
    Fetcher::new(Mirrors { files: mirrors, git: vec![] }, opts).unwrap()
}

fn no_mirrors() -> Fetcher {
    fetcher(vec![], opts())
}

#[test]
fn redirects_are_followed() {
    let srv = TestServer::start();
    srv.route("/old", Route::Redirect("/new/thing-1.0.tar.gz".into()));
    srv.route("/new/thing-1.0.tar.gz", Route::Body(content()));
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("out");
    let got = no_mirrors().fetch(&spec(vec![srv.url("/old")], Algo::Sha256), &dest).unwrap();
    assert_eq!(fs::read(&dest).unwrap(), content());
    assert_eq!(got.size, content().len() as u64);
    assert_eq!(srv.requests_for("/new/thing-1.0.tar.gz").len(), 1);
}

#[test]
fn a_404_on_the_first_url_falls_through_to_the_next() {
    let srv = TestServer::start();
    srv.route("/b/thing-1.0.tar.gz", Route::Body(content()));
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("out");
    let urls = vec![srv.url("/a/thing-1.0.tar.gz"), srv.url("/b/thing-1.0.tar.gz")];
    let got = no_mirrors().fetch(&spec(urls, Algo::Sha256), &dest).unwrap();
    assert_eq!(got.source, srv.url("/b/thing-1.0.tar.gz"));
    assert_eq!(fs::read(&dest).unwrap(), content());
    assert_eq!(srv.requests_for("/a/thing-1.0.tar.gz").len(), 1, "a 404 is not retried");
}

#[test]
fn a_connection_cut_mid_file_resumes_with_range() {
    let srv = TestServer::start();
    srv.route("/f", Route::CutOnce { body: content(), after: 100_000, ignore_range: false });
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("out");
    no_mirrors().fetch(&spec(vec![srv.url("/f")], Algo::Sha256), &dest).unwrap();
    assert_eq!(fs::read(&dest).unwrap(), content());
    let reqs = srv.requests_for("/f");
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].header("range"), None);
    assert_eq!(reqs[1].header("range"), Some("bytes=100000-"));
    assert_eq!(reqs[1].header("if-range"), Some("\"v1\""));
}

#[test]
fn a_server_ignoring_range_gets_a_clean_restart() {
    let srv = TestServer::start();
    srv.route("/f", Route::CutOnce { body: content(), after: 100_000, ignore_range: true });
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("out");
    no_mirrors().fetch(&spec(vec![srv.url("/f")], Algo::Sha256), &dest).unwrap();
    assert_eq!(fs::read(&dest).unwrap(), content());
    assert_eq!(srv.requests_for("/f")[1].header("range"), Some("bytes=100000-"));
}

#[test]
fn transient_server_errors_are_retried_with_backoff() {
    let srv = TestServer::start();
    srv.route("/f", Route::FailFirst { status: 503, times: 2, body: content() });
    let tmp = tempfile::tempdir().unwrap();
    no_mirrors().fetch(&spec(vec![srv.url("/f")], Algo::Sha256), &tmp.path().join("out")).unwrap();
    assert_eq!(srv.requests_for("/f").len(), 3);
}

#[test]
fn a_stalled_server_times_out_with_a_clear_error() {
    let srv = TestServer::start();
    srv.route("/slow", Route::Stall { body: content(), after: 1000, stall: Duration::from_secs(4) });
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("out");
    let f = fetcher(vec![], FetchOptions { retries: 1, ..opts() });
    let started = std::time::Instant::now();
    let err = f.fetch(&spec(vec![srv.url("/slow")], Algo::Sha256), &dest).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4), "the idle timeout did not fire");
    let text = err.to_string();
    assert!(text.contains("timed out") && text.contains("/slow") && text.contains("gave up after 1 retries"), "{text}");
    assert!(!dest.exists());
}

#[test]
fn a_wrong_hash_is_refused_and_the_file_kept_for_inspection() {
    let srv = TestServer::start();
    srv.route("/f", Route::Body(b"not what was pinned".to_vec()));
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("out");
    let s = spec(vec![srv.url("/f")], Algo::Sha256);
    let err = no_mirrors().fetch(&s, &dest).unwrap_err();
    assert!(!dest.exists(), "nothing may appear at the destination");
    let [attempt] = err.attempts() else { panic!("{err}") };
    let Failure::HashMismatch { expected, actual, kept } = &attempt.failure else { panic!("{err}") };
    assert_eq!(expected, &s.hash);
    assert_eq!(actual, &Hash::of(Algo::Sha256, b"not what was pinned"));
    assert_eq!(fs::read(kept).unwrap(), b"not what was pinned");
    let text = err.to_string();
    for part in [srv.url("/f"), s.hash.to_string(), actual.to_string(), kept.display().to_string()] {
        assert!(text.contains(&part), "`{part}` missing from: {text}");
    }
}

fn mirror_dir(key: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(key);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content()).unwrap();
    dir
}

fn assert_mirror_hit(mirror: &Path, algo: Algo) {
    let srv = TestServer::start();
    srv.route("/up/thing-1.0.tar.gz", Route::Body(content()));
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("out");
    let f = fetcher(vec![Mirror::Dir(mirror.to_owned())], opts());
    let got = f.fetch(&spec(vec![srv.url("/up/thing-1.0.tar.gz")], algo), &dest).unwrap();
    assert!(got.source.starts_with("mirror "), "{got:?}");
    assert_eq!(fs::read(&dest).unwrap(), content());
    assert!(srv.requests().is_empty(), "upstream was contacted: {:?}", srv.requests());
}

#[test]
fn a_mirror_serves_by_sha256_before_upstream() {
    let key = format!("sha256/{}", Hash::of(Algo::Sha256, &content()).to_hex());
    assert_mirror_hit(mirror_dir(&key).path(), Algo::Sha256);
}

#[test]
fn a_mirror_serves_by_sha512_before_upstream() {
    let key = format!("sha512/{}", Hash::of(Algo::Sha512, &content()).to_hex());
    assert_mirror_hit(mirror_dir(&key).path(), Algo::Sha512);
}

#[test]
fn a_mirror_serves_by_file_name_before_upstream() {
    assert_mirror_hit(mirror_dir("thing-1.0.tar.gz").path(), Algo::Sha256);
}

#[test]
fn an_http_mirror_is_tried_before_upstream() {
    let srv = TestServer::start();
    let key = format!("/m/sha256/{}", Hash::of(Algo::Sha256, &content()).to_hex());
    srv.route(&key, Route::Body(content()));
    let tmp = tempfile::tempdir().unwrap();
    let f = fetcher(vec![Mirror::parse(&srv.url("/m/")).unwrap()], opts());
    f.fetch(&spec(vec![srv.url("/up/thing-1.0.tar.gz")], Algo::Sha256), &tmp.path().join("out")).unwrap();
    assert_eq!(srv.requests().len(), 1);
    assert!(srv.requests_for("/up/thing-1.0.tar.gz").is_empty());
}

#[test]
fn a_stale_mirror_file_falls_through_to_upstream() {
    let srv = TestServer::start();
    srv.route("/up/thing-1.0.tar.gz", Route::Body(content()));
    let mirror = tempfile::tempdir().unwrap();
    fs::write(mirror.path().join("thing-1.0.tar.gz"), b"an older release").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let f = fetcher(vec![Mirror::Dir(mirror.path().to_owned())], opts());
    let got = f.fetch(&spec(vec![srv.url("/up/thing-1.0.tar.gz")], Algo::Sha256), &tmp.path().join("out")).unwrap();
    assert_eq!(got.source, srv.url("/up/thing-1.0.tar.gz"));
}

#[test]
fn file_urls_and_plain_paths_are_fetched_locally() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src.bin");
    fs::write(&src, content()).unwrap();
    let f = fetcher(vec![], FetchOptions { offline: true, ..opts() });
    for (i, url) in [format!("file://{}", src.display()), src.display().to_string()].into_iter().enumerate() {
        let dest = tmp.path().join(format!("out{i}"));
        f.fetch(&spec(vec![url], Algo::Sha256), &dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), content());
    }
}

#[test]
fn offline_with_missing_inputs_lists_all_of_them_and_says_how_to_vendor() {
    let srv = TestServer::start();
    srv.route("/a.tar.gz", Route::Body(content()));
    let key = format!("sha256/{}", Hash::of(Algo::Sha256, &content()).to_hex());
    let mirror = mirror_dir(&key);
    let f = fetcher(vec![Mirror::Dir(mirror.path().to_owned())], FetchOptions { offline: true, ..opts() });
    let tmp = tempfile::tempdir().unwrap();
    let present = spec(vec![srv.url("/a.tar.gz")], Algo::Sha256);
    let gone = |name: &str| FetchSpec {
        name: name.into(),
        urls: vec![srv.url(&format!("/{name}")), srv.url(&format!("/alt/{name}"))],
        hash: Hash::of(Algo::Sha256, name.as_bytes()),
    };
    let items = vec![
        (gone("b.tar.xz"), tmp.path().join("b")),
        (present, tmp.path().join("a")),
        (gone("c.zip"), tmp.path().join("c")),
    ];
    let err = f.fetch_all(&items).unwrap_err();
    let Error::MissingInputs(missing) = &err else { panic!("{err}") };
    assert_eq!(missing.0.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["b.tar.xz", "c.zip"]);
    let text = err.to_string();
    for (spec, _) in [&items[0], &items[2]] {
        assert!(text.contains(&spec.hash.to_string()), "{text}");
        spec.urls.iter().for_each(|u| assert!(text.contains(u.as_str()), "{text}"));
    }
    assert!(text.contains("forge vendor") && text.contains("--mirror DIR --offline"), "{text}");
    assert!(tmp.path().join("a").is_file(), "the present input is fetched all the same");
    assert!(srv.requests().is_empty(), "offline must not touch the network");
}

#[test]
fn unpinned_files_come_from_a_mirror_under_the_url_path_never_by_file_name() {
    let srv = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let mirror = tmp.path().join("mirror");
    // A file of the same name at the mirror's top must not be taken: it may be another
    // repository's index.
    fs::create_dir_all(mirror.join("alpine/v3.20/main/x86_64")).unwrap();
    fs::write(mirror.join("APKINDEX.tar.gz"), b"another repository").unwrap();
    fs::write(mirror.join("alpine/v3.20/main/x86_64/APKINDEX.tar.gz"), content()).unwrap();
    let url = srv.url("/alpine/v3.20/main/x86_64/APKINDEX.tar.gz");
    let dest = tmp.path().join("index");
    let f = fetcher(vec![Mirror::Dir(mirror.clone())], FetchOptions { offline: true, ..opts() });
    let (got, hash) = f.fetch_unpinned("the index", std::slice::from_ref(&url), &dest).unwrap();
    assert_eq!(fs::read(&dest).unwrap(), content());
    assert_eq!(hash, Hash::of(Algo::Sha256, &content()));
    assert!(got.source.contains("alpine/v3.20/main/x86_64"), "{}", got.source);
    assert!(srv.requests().is_empty());

    // Not in the mirror: the URL, whatever it serves.
    srv.route("/alpine/v3.20/community/x86_64/APKINDEX.tar.gz", Route::Body(b"community".to_vec()));
    let url = srv.url("/alpine/v3.20/community/x86_64/APKINDEX.tar.gz");
    let (got, _) = no_mirrors().fetch_unpinned("the index", std::slice::from_ref(&url), &dest).unwrap();
    assert_eq!((got.source, fs::read(&dest).unwrap()), (url, b"community".to_vec()));
}

#[test]
fn an_unreachable_unpinned_file_names_every_source_tried() {
    let srv = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let url = srv.url("/repo/x86_64/APKINDEX.tar.gz");
    let f = fetcher(vec![Mirror::Dir(tmp.path().join("m"))], opts());
    let err = f.fetch_unpinned("the index of /repo", std::slice::from_ref(&url), &tmp.path().join("i")).unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&url) && text.contains("not found") && text.contains("repo/x86_64/APKINDEX.tar.gz"),
        "{text}"
    );
    assert!(!tmp.path().join("i").exists());
}
