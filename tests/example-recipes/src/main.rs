//! `forge-example`: the whole `forge` command line over a registry of one's own.
//!
//! A private recipe crate needs exactly this: a `Registry` with its recipes (here
//! forge's own plus some small ones) and `forge_cli::main_with`. The small recipes
//! are the ones the scheduling tests and benchmarks build.

use std::collections::BTreeMap;

use forge_engine::dsl::{Forge, Input, Package, RunStep, Target};
use forge_engine::Result;

fn main() -> std::process::ExitCode {
    let mut registry = forge_recipes::registry();
    registry
        .add("busybox-root", "a root filesystem of busybox alone, from the pinned Debian package", |f| {
            Ok(busybox_root(f)?.into())
        })
        .add("two-sleeps", "two independent steps of `sleep 1`", two_sleeps)
        .add("fail-keep-going", "a failing step, one that needs it, and one independent", fail_keep_going)
        .add("slow-once", "one 2-second step, for concurrent builds of the same recipe", slow_once)
        .add("chain-50", "50 trivial sandboxed steps, each needing the previous", |f| chain(f, 50))
        .add("fan-50", "50 independent trivial sandboxed steps", |f| fan(f, 50))
        .add("hello-text", "one text file, a builtin step (signing and verify tests: no sandbox, no input)", |f| {
            Ok(f.text("hello.txt", "hello\n")?.into())
        })
        .add("texts-1000", "1000 builtin steps in a graph (no-op build benchmark)", |f| texts(f, 1000))
        .add(
            "alpine-fixture",
            "alpine-system's recipe on the release described by $FORGE_ALPINE_FIXTURE (JSON)",
            alpine_fixture,
        )
        .add("nondeterministic", "steps that write the time and random bytes (for --check)", nondeterministic)
        .add("cycle", "a recipe that needs itself through another (an error)", cycle_a)
        .add(
            "shell-demo",
            "a package step to open with `forge shell`: a source tree, an input, its own env",
            shell_demo,
        )
        .add("texts-10000", "10000 builtin steps in a graph (planning benchmark)", |f| texts(f, 10_000))
        .add("apk-demo", "two apks packaged from a sandboxed step's tree (apk signing tests)", apk_demo);
    forge_cli::main_with(registry)
}

/// busybox-static's `/bin/busybox` with links for the applets the steps use.
fn busybox_root(f: &mut Forge) -> Result<Package> {
    f.memo("busybox-root", |f| {
        let pin = forge_recipes::bootstrap::toolchain_pins()
            .into_iter()
            .find(|p| p.package == "busybox-static")
            .expect("the toolchain lock pins busybox-static");
        let deb = f.fetch(
            &pin.file_name().replace('~', "_"),
            &[&format!("mirror://debian/{}", pin.pool_path)],
            &format!("sha256:{}", pin.sha256),
        )?;
        let tree = f.unpack("busybox-static", &deb, 0)?;
        let links: Vec<(String, &str)> =
            ["sh", "sleep", "echo", "cat", "date", "mkdir", "touch", "true", "false", "head", "od"]
                .iter()
                .map(|a| (format!("bin/{a}"), "busybox"))
                .collect();
        let links: Vec<(&str, &str)> = links.iter().map(|(a, b)| (a.as_str(), *b)).collect();
        f.merge("busybox-root", &[&tree], &links)
    })
}

/// A salt from `$FORGE_EXAMPLE_SALT` so benchmarks can declare fresh derivations
/// each round (it changes the graph: this crate is for tests, not releases).
fn salt() -> String {
    std::env::var("FORGE_EXAMPLE_SALT").unwrap_or_default()
}

fn step(f: &mut Forge, name: &str, script: &str, inputs: &[&dyn Input]) -> Result<Package> {
    let root = busybox_root(f)?;
    let env = BTreeMap::from([("SALT".to_owned(), salt())]);
    f.run(RunStep { name, sysroot: vec![&root], inputs: inputs.to_vec(), script, env })
}

fn join(f: &mut Forge, name: &str, parts: &[Package]) -> Result<Target> {
    let inputs: Vec<&dyn Input> = parts.iter().map(|p| p as &dyn Input).collect();
    Ok(f.merge(name, &inputs, &[])?.into())
}

fn two_sleeps(f: &mut Forge) -> Result<Target> {
    let a = step(f, "sleep-a", "sleep 1; echo a > $out/a", &[])?;
    let b = step(f, "sleep-b", "sleep 1; echo b > $out/b", &[])?;
    join(f, "two-sleeps", &[a, b])
}

fn fail_keep_going(f: &mut Forge) -> Result<Target> {
    let bad = step(f, "fails", "echo about to fail; exit 3", &[])?;
    let needs_bad = step(f, "needs-fails", &format!("cat {}/x > $out/x", bad.path()), &[&bad])?;
    let independent = step(f, "independent", "echo ok > $out/ok", &[])?;
    join(f, "fail-keep-going", &[needs_bad, independent])
}

fn slow_once(f: &mut Forge) -> Result<Target> {
    Ok(step(f, "slow-once", "sleep 2; echo done > $out/done", &[])?.into())
}

fn chain(f: &mut Forge, n: usize) -> Result<Target> {
    let mut prev = step(f, "chain-0", "echo 0 > $out/n", &[])?;
    for i in 1..n {
        let script = format!("echo {i} > $out/n; cat {}/n >> $out/n", prev.path());
        prev = step(f, &format!("chain-{i}"), &script, &[&prev])?;
    }
    Ok(prev.into())
}

fn fan(f: &mut Forge, n: usize) -> Result<Target> {
    let parts: Vec<Package> =
        (0..n).map(|i| step(f, &format!("fan-{i}"), &format!("echo {i} > $out/n"), &[])).collect::<Result<_>>()?;
    join(f, &format!("fan-{n}"), &parts)
}

/// A graph of builtin text steps in groups of ten merged upward: wide and deep
/// enough to exercise planning, cheap to build.
fn texts(f: &mut Forge, n: usize) -> Result<Target> {
    let salt = salt();
    // Leaves are directories holding one symlink (merge of no layers): the
    // cheapest step whose output can be merged.
    let mut layer: Vec<Package> = (0..n)
        .map(|i| f.merge(&format!("t-{i}"), &[], &[(&format!("t-{i}"), &format!("{salt}{i}"))]))
        .collect::<Result<_>>()?;
    let mut level = 0;
    while layer.len() > 1 {
        level += 1;
        layer = layer
            .chunks(10)
            .enumerate()
            .map(|(i, group)| {
                let inputs: Vec<&dyn Input> = group.iter().map(|p| p as &dyn Input).collect();
                f.merge(&format!("m-{level}-{i}"), &inputs, &[])
            })
            .collect::<Result<_>>()?;
    }
    Ok(layer.remove(0).into())
}

/// A package built by the package builder on busybox (plus the applets its script
/// and the shell tests use, as a second layer), from a source tree a step makes, with
/// an extra input and variables of its own.
fn shell_demo(f: &mut Forge) -> Result<Target> {
    let root = busybox_root(f)?;
    let applets = ["cp", "chmod", "ls", "tty", "id", "env", "grep", "stty", "pwd", "rm", "sh", "cat", "test", "wc"];
    let links: Vec<(String, &str)> = applets.iter().map(|a| (format!("bin/{a}"), "busybox")).collect();
    let links: Vec<(&str, &str)> = links.iter().map(|(a, b)| (a.as_str(), *b)).collect();
    let more = f.merge("busybox-more-applets", &[], &links)?;
    let script = "mkdir -p $out/doc; echo 'int main(void) { return 0; }' > $out/main.c; echo readme > $out/doc/README";
    let src = step(f, "shell-demo-src", script, &[])?;
    let note = f.text("shell-demo-note", "a note from an input\n")?;
    let pkg = f
        .package("shell-demo", "1.0")
        .source_tree(&Target::from(src).into_source())
        .build_dep(&root)
        .build_dep(&more)
        .input(&note)
        .env("NOTE", &note.path().to_string())
        .env("GREETING", "hello from the step")
        .phase("build", "test -s main.c")
        .phase("install", "mkdir -p $out/share; cp main.c $out/share/")
        .finish()?;
    Ok(pkg.into())
}

/// Two packages made by busybox steps: `apk-demo` (a real static ELF as a command, a
/// symlink to it, a config file; a post-install script) and `apk-demo-doc` (noarch,
/// installed with it when `docs` is). The output is the set of both.
fn apk_demo(f: &mut Forge) -> Result<Target> {
    use forge_engine::apk::make::ApkSpec;
    let script = "bb=/bin/busybox; $bb mkdir -p $out/usr/bin $out/etc; $bb cp $bb $out/usr/bin/apk-demo; \
                  $bb ln -s apk-demo $out/usr/bin/apk-demo-again; echo greeting=hello > $out/etc/apk-demo.conf";
    let tree = step(f, "apk-demo-tree", script, &[])?;
    let doc_script =
        "/bin/busybox mkdir -p $out/usr/share/doc/apk-demo; echo 'read me' > $out/usr/share/doc/apk-demo/README";
    let doc_tree = step(f, "apk-demo-doc-tree", doc_script, &[])?;
    let arch = f.system().trim_end_matches("-linux").to_owned();
    let mut spec = ApkSpec::new("apk-demo", "1.0-r0", &arch);
    spec.description = "a demonstration package for forge's apk tests".into();
    spec.url = "https://example.invalid/apk-demo".into();
    spec.license = "GPL-2.0-only".into();
    spec.packager = Some("forge tests <tests@example.invalid>".into());
    spec.depends = vec!["/bin/sh".into()];
    spec.build_date = 1_700_000_000;
    spec.scripts.insert("post-install".into(), "#!/bin/sh\necho installed apk-demo\n".into());
    let main = f.apk_package(&tree, &spec)?;
    let mut doc = ApkSpec::new("apk-demo-doc", "1.0-r0", "noarch");
    doc.description = "apk-demo (documentation)".into();
    doc.license = spec.license.clone();
    doc.origin = Some("apk-demo".into());
    doc.install_if = vec!["apk-demo=1.0-r0".into(), "docs".into()];
    doc.build_date = spec.build_date;
    let docs = f.apk_package(&doc_tree, &doc)?;
    f.apk_set("apk-demo", &[&main, &docs])
}

fn cycle_a(f: &mut Forge) -> Result<Target> {
    f.memo("cycle-a", cycle_b)
}

fn cycle_b(f: &mut Forge) -> Result<Target> {
    f.memo("cycle-b", cycle_a)
}

/// The system recipe on a fixture release: the same code as `alpine-system`, with
/// pins the tests generate (a small minirootfs, a local agnos-builder repository, and
/// optionally a signed repository with `repositories`, `world` and `lock_file`).
fn alpine_fixture(f: &mut Forge) -> Result<Target> {
    let bad = |why: String| forge_engine::Error::Recipe { recipe: "alpine-fixture".into(), why };
    let file =
        std::env::var("FORGE_ALPINE_FIXTURE").map_err(|_| bad("set FORGE_ALPINE_FIXTURE to a release JSON".into()))?;
    let text = std::fs::read_to_string(&file).map_err(|e| bad(format!("{file}: {e}")))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("{file}: {e}")))?;
    let s = |k: &str| v[k].as_str().map(str::to_owned).ok_or_else(|| bad(format!("{file}: `{k}` is missing")));
    let release = forge_recipes::alpine::Release {
        version: s("version")?,
        arch: s("arch")?,
        minirootfs_urls: vec![s("minirootfs_url")?],
        minirootfs_sha256: s("minirootfs_sha256")?,
        agnos_url: s("agnos_url")?,
        agnos_rev: s("agnos_rev")?,
        agnos_nar_hash: s("agnos_nar_hash")?,
        agnos_lfs_url: s("agnos_lfs_url")?,
        lfs: lfs_pins(&v["lfs"]).ok_or_else(|| bad(format!("{file}: `lfs` must list {{path, oid, size}}")))?,
        image_size: s("image_size")?,
        source_date_epoch: v["source_date_epoch"].as_i64().unwrap_or(0),
        repositories: strings(&v["repositories"]),
        world: strings(&v["world"]),
        lock_file: v["lock_file"].as_str().unwrap_or_default().into(),
        layers: strings(&v["layers"])
            .iter()
            .map(|name| match name.as_str() {
                "fixture-layer" => Ok(forge_recipes::alpine::Layer::whole(fixture_layer)),
                other => Err(bad(format!("{file}: unknown layer `{other}` (known: fixture-layer)"))),
            })
            .collect::<Result<_>>()?,
    };
    Ok(forge_recipes::alpine::system(f, &release)?.into())
}

/// A compiled layer stand-in for the fixture image: one symlink where the glibc
/// runtime's loader goes on the device.
fn fixture_layer(f: &mut Forge) -> Result<Package> {
    f.merge("fixture-layer", &[], &[("lib64/ld-fixture.so.1", "/usr/glibc/lib/ld-fixture.so.1")])
}

/// The fixture's Git LFS pins: `[{"path", "oid", "size"}]` (absent: none).
fn lfs_pins(v: &serde_json::Value) -> Option<Vec<forge_recipes::alpine::LfsObject>> {
    let Some(rows) = v.as_array() else { return v.is_null().then(Vec::new) };
    rows.iter()
        .map(|r| {
            Some(forge_recipes::alpine::LfsObject::new(r["path"].as_str()?, r["oid"].as_str()?, r["size"].as_u64()?))
        })
        .collect()
}

/// A JSON array of strings (absent: empty).
fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect()
}

fn nondeterministic(f: &mut Forge) -> Result<Target> {
    let stable = step(f, "stable", "echo same every time > $out/stable.txt", &[])?;
    let time = step(
        f,
        "writes-time",
        "echo fixed > $out/fixed.txt; date +%s > $out/stamp.txt; cat /proc/uptime >> $out/stamp.txt",
        &[],
    )?;
    let random = step(f, "writes-random", "head -c 16 /dev/urandom | od -An -tx1 > $out/random.txt", &[])?;
    join(f, "nondeterministic", &[stable, time, random])
}
