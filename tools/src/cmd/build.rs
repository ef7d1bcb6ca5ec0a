//! `forge build`, `forge show`, `forge why`, `forge log`, `forge list`: the recipe
//! commands.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use forge_engine::build::{self, Options};
use forge_engine::check::{Request, Scope};
use forge_engine::drv::{Builder, Derivation};
use forge_engine::dsl::{Forge, NodeId};
use forge_engine::fetch::{FetchOptions, Fetcher, Mirrors};
use forge_engine::plan::{self, State};
use forge_engine::registry::Registry;
use forge_engine::{record, why};
use forge_store::Store;

use crate::{exit, progress};

/// Which system recipes are declared for.
#[derive(Args, Clone)]
pub struct ArchArg {
    /// Target architecture of the recipes: x86_64 or aarch64 [default: this machine's]
    #[arg(long, value_parser = ["x86_64", "aarch64"])]
    pub arch: Option<String>,
}

impl ArchArg {
    /// An empty graph for the chosen architecture.
    pub(crate) fn forge(&self) -> Forge {
        match &self.arch {
            Some(a) => Forge::for_system(&format!("{a}-linux")),
            None => Forge::new(),
        }
    }
}

#[derive(Args)]
pub struct BuildArgs {
    /// Recipes to build (`forge list` shows them)
    #[arg(required_unless_present = "drv")]
    recipes: Vec<String>,
    /// Realise a derivation given as JSON instead of a recipe (docs/derivation.md)
    #[arg(long, value_name = "FILE.json", conflicts_with = "recipes")]
    drv: Option<PathBuf>,
    /// Steps run at once [default: the number of cores]
    #[arg(short, long, value_name = "N")]
    jobs: Option<usize>,
    /// After a failure, keep building everything that does not depend on it
    #[arg(long)]
    keep_going: bool,
    /// Keep the temp dir of a failed step (its path is printed)
    #[arg(long)]
    keep_failed: bool,
    /// Where the result links go [default: output/<recipe>]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print progress as JSON events on stdout, one a line
    #[arg(long)]
    json: bool,
    /// Rebuild what is already in the store and compare: exit 1 naming each output
    /// (and file) that did not come out bit for bit the same
    #[arg(long, conflicts_with = "drv")]
    check: bool,
    /// With --check: rebuild each derivation this many times
    #[arg(long, default_value_t = 1, requires = "check", value_name = "N")]
    rounds: usize,
    /// With --check: rebuild only the named recipes' own steps, against the inputs
    /// already in the store (as Nix's --check does). Without it, --check rebuilds the
    /// whole closure, compilers included
    #[arg(long, requires = "check")]
    shallow: bool,
    /// Also stream every step's output to the terminal (it always goes to the log)
    #[arg(short, long)]
    verbose: bool,
    /// Kill a sandboxed step that runs longer than this many seconds
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// Sign the provenance record with this Ed25519 private key (PKCS#8 PEM, as
    /// `openssl genpkey -algorithm ed25519` writes it): writes
    /// <output>.provenance.dsse.json. Also $FORGE_SIGNING_KEY and `signing-key` in the
    /// config file
    #[arg(long, value_name = "KEY.pem", conflicts_with = "check")]
    sign_key: Option<PathBuf>,
    /// Sign the apks the recipe packages (apk-package steps of its closure) with this
    /// RSA private key (as `openssl genrsa` writes it) into <output>.apks/<arch>/ with a
    /// signed APKINDEX.tar.gz. Also $FORGE_APK_KEY and `apk-key` in the config file
    #[arg(long, value_name = "KEY.rsa", conflicts_with_all = ["check", "drv"])]
    apk_key: Option<PathBuf>,
    #[command(flatten)]
    fetch: FetchArgs,
    #[command(flatten)]
    arch: ArchArg,
}

/// Where fixed-output inputs come from.
#[derive(Args, Clone)]
pub struct FetchArgs {
    /// A mirror (folder or URL serving sha256/<hex>, sha512/<hex> and file names), tried
    /// before upstream URLs; repeatable. Also $FORGE_MIRRORS and the config file
    #[arg(long = "mirror", value_name = "DIR|URL")]
    pub mirrors: Vec<String>,
    /// No network: inputs come from local mirrors only; missing ones are listed together
    #[arg(long)]
    pub offline: bool,
}

impl FetchArgs {
    pub fn fetcher(&self) -> anyhow::Result<Fetcher> {
        let mirrors = Mirrors::load(&self.mirrors, &[])?;
        let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
        Ok(Fetcher::new(mirrors, FetchOptions { offline: self.offline, progress, ..FetchOptions::default() })?)
    }
}

#[derive(Args)]
pub struct ShowArgs {
    /// The recipe whose closure to list
    recipe: String,
    /// Print JSON: [{"name","drvHash","outputs","state","builder"}]
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    arch: ArchArg,
}

#[derive(Args)]
pub struct WhyArgs {
    /// The recipe whose output is missing from the store
    recipe: String,
    #[command(flatten)]
    arch: ArchArg,
}

#[derive(Args)]
pub struct VendorArgs {
    /// The recipe whose fixed-output inputs to copy
    recipe: String,
    /// The mirror folder to fill (created if missing)
    dir: PathBuf,
    #[command(flatten)]
    fetch: FetchArgs,
    #[command(flatten)]
    arch: ArchArg,
}

#[derive(Args)]
pub struct LogArgs {
    /// A recipe name, a derivation hash (sha256:...) or an output store path
    what: String,
    #[command(flatten)]
    arch: ArchArg,
}

/// Declares `names` on a fresh graph and returns it with their nodes.
pub(crate) fn declare(registry: &Registry, names: &[String], arch: &ArchArg) -> anyhow::Result<(Forge, Vec<NodeId>)> {
    let mut f = arch.forge();
    let mut targets = Vec::new();
    for name in names {
        let target = registry.call(name, &mut f)?;
        targets.push(forge_engine::dsl::Input::node(&target));
    }
    Ok((f, targets))
}

pub fn build(store: &Store, registry: &Registry, a: BuildArgs) -> anyhow::Result<ExitCode> {
    let (forge, targets, names) = match &a.drv {
        Some(file) => {
            let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
            let drv = Derivation::from_json(&text).with_context(|| format!("in {}", file.display()))?;
            let mut f = Forge::for_system(&drv.system);
            let name = drv.name.clone();
            let id = f.add(drv)?;
            (f, vec![id], vec![name])
        }
        None => {
            let (f, t) = declare(registry, &a.recipes, &a.arch)?;
            print_world_notes(&f, false);
            (f, t, a.recipes.clone())
        }
    };
    let mut opts = options(&a.fetch, a.jobs)?;
    opts.keep_going = a.keep_going;
    opts.keep_failed = a.keep_failed;
    opts.verbose = a.verbose;
    opts.timeout = a.timeout.map(std::time::Duration::from_secs);
    if a.check {
        let scope = if a.shallow { Scope::Targets } else { Scope::Closure };
        return check(store, &forge, &targets, &opts, Request { rounds: a.rounds, scope });
    }
    let key = super::sign::configured_key(a.sign_key.as_deref())?;
    let apk_key = match &a.drv {
        Some(_) => None,
        None => super::apk::configured_key(a.apk_key.as_deref())?,
    };
    if let Some(k) = &apk_key {
        check_packages_apks(&forge, &targets, &names, k)?;
    }
    let report = {
        let display = progress::for_terminal(a.json);
        build::build(store, &forge, &targets, &opts, display.as_ref(), &forge_engine::sandbox::interrupted)?
    };
    if !report.success() {
        print_failures(&forge, &report);
        return Ok(exit::code(exit::FAILED));
    }
    for (name, &id) in names.iter().zip(&targets) {
        let out = forge.node(id).out();
        let folder = registry.get(name).ok().and_then(|r| r.output.clone()).unwrap_or_else(|| name.clone());
        let link = output_link(a.out.as_deref(), &folder, names.len());
        link_output(store, &link, out)?;
        write_provenance(&forge, id, name, &link, &store.physical(out), key.as_ref())?;
        write_apks(store, &forge, id, name, &link, apk_key.as_ref())?;
        if !a.json {
            println!("{}", store.physical(out).display());
        }
    }
    Ok(exit::code(exit::OK))
}

/// With an apk key, every recipe built must package at least one apk: refused before
/// the build starts (exit 3), naming the recipe.
fn check_packages_apks(
    forge: &Forge,
    targets: &[NodeId],
    names: &[String],
    key: &forge_engine::apk::sign::SigningKey,
) -> anyhow::Result<()> {
    for (name, &id) in names.iter().zip(targets) {
        if forge.apk_packages(&[id]).is_empty() {
            return Err(forge_engine::Error::Recipe {
                recipe: name.clone(),
                why: format!(
                    "--apk-key {} was given, but the recipe packages no apk (no apk-package step in its closure)",
                    key.name
                ),
            }
            .into());
        }
    }
    Ok(())
}

/// Where the signed repository of a recipe goes: `<link>.apks`, beside the link (the
/// link itself points into the read-only store).
fn apk_repo_dir(link: &Path) -> PathBuf {
    let mut dir = link.as_os_str().to_owned();
    dir.push(".apks");
    PathBuf::from(dir)
}

/// Signs the apks of `id`'s closure into `<link>.apks/`; without a key, removes a
/// repository left by an earlier signed build (it holds packages of another build).
fn write_apks(
    store: &Store,
    forge: &Forge,
    id: NodeId,
    recipe: &str,
    link: &Path,
    key: Option<&forge_engine::apk::sign::SigningKey>,
) -> anyhow::Result<()> {
    let dir = apk_repo_dir(link);
    let Some(key) = key else {
        if dir.is_dir() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove the stale {}", dir.display()))?;
            eprintln!("removed {} (signed apks of an earlier build; pass --apk-key to sign them again)", dir.display());
        }
        return Ok(());
    };
    let apks: Vec<PathBuf> = forge.apk_packages(&[id]).iter().map(|p| store.physical(p)).collect();
    let arch = forge.arch();
    super::apk::write_repository(&apks, key, &dir, recipe, arch)?;
    Ok(())
}

/// Build options with `jobs` slots (default: one per core), the cores shared among them.
pub(crate) fn options(fetch: &FetchArgs, jobs: Option<usize>) -> anyhow::Result<Options> {
    let mut opts = Options::new(fetch.fetcher()?);
    if let Some(j) = jobs {
        opts.jobs = j.max(1);
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    opts.cores_per_job = (cores / opts.jobs).max(1);
    Ok(opts)
}

/// Writes `<link>.provenance.json` beside the output link (never inside the
/// artifact): an in-toto statement naming every file of the output by sha256, every
/// fixed-output input and every derivation (docs/provenance.md); with a key, its
/// signed envelope `<link>.provenance.dsse.json` too.
fn write_provenance(
    forge: &Forge,
    id: NodeId,
    recipe: &str,
    link: &Path,
    out: &Path,
    key: Option<&forge_engine::dsse::SigningKey>,
) -> anyhow::Result<()> {
    let mut subjects = Vec::new();
    collect_files(out, out, &mut subjects)?;
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let meta = forge_engine::provenance::Meta {
        recipe: recipe.to_owned(),
        arch: forge.arch().to_owned(),
        source_revision: std::env::var("FORGE_SOURCE_REVISION").unwrap_or_else(|_| "unknown".to_owned()),
        forge_version: env!("CARGO_PKG_VERSION").to_owned(),
        builder_id: "urn:forge:builder:local".to_owned(),
        environment: [
            ("hostSystem".to_owned(), forge_engine::drv::host_system().to_owned()),
            ("kernel".to_owned(), kernel.trim().to_owned()),
        ]
        .into_iter()
        .collect(),
    };
    let statement = forge_engine::provenance::from_graph(forge, &[id], &subjects, &meta)?;
    let mut file = link.as_os_str().to_owned();
    file.push(".provenance.json");
    let file = PathBuf::from(file);
    let record = forge_engine::provenance::to_canonical_json(&statement);
    std::fs::write(&file, &record).with_context(|| format!("cannot write {}", file.display()))?;
    if let Some(envelope) = super::sign::write_envelope(&file, &record, key)? {
        let keyid = key.map(|k| forge_engine::dsse::key_id(&k.verifying_key())).unwrap_or_default();
        eprintln!("signed {} with key {keyid}: {}", file.display(), envelope.display());
    }
    Ok(())
}

/// Every regular file under `dir` (or `dir` itself when it is a file), by relative name.
pub(crate) fn collect_files(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> anyhow::Result<()> {
    let md = std::fs::symlink_metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    if md.is_file() {
        let name = dir
            .strip_prefix(root)
            .ok()
            .filter(|r| !r.as_os_str().is_empty())
            .unwrap_or(Path::new(dir.file_name().unwrap_or_default()));
        out.push((name.to_string_lossy().into_owned(), dir.to_owned()));
    } else if md.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            collect_files(root, &e.path(), out)?;
        }
    }
    Ok(())
}

/// `--check`: prints what did not rebuild the same and exits 1 if anything.
fn check(store: &Store, forge: &Forge, targets: &[NodeId], opts: &Options, req: Request) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let mut on_rebuild = |name: &str, round: usize| {
        let rounds = req.rounds;
        let round = if rounds > 1 { format!(" (round {round} of {rounds})") } else { String::new() };
        eprintln!("[{:7.1}s] check {name}{round}", started.elapsed().as_secs_f64());
    };
    let report = forge_engine::check::check(store, forge, targets, opts, req, &mut on_rebuild)?;
    for d in &report.differences {
        println!("NOT REPRODUCIBLE {} ({})", d.name, d.path);
        println!("  registered {} at {}", d.expected, d.registered.display());
        println!("  rebuilt    {} at {}", d.actual, d.rebuilt.display());
        for f in &d.files {
            println!("  {f}");
        }
        if std::process::Command::new("diffoscope").arg("--version").output().is_ok() {
            let _ = std::process::Command::new("diffoscope").arg(&d.registered).arg(&d.rebuilt).status();
        }
    }
    eprintln!(
        "checked {} rebuild(s): {} differ; {} derivation(s) not checked (fixed-output, or not built yet)",
        report.checked,
        report.differences.len(),
        report.skipped
    );
    Ok(exit::code(if report.differences.is_empty() { exit::OK } else { exit::FAILED }))
}

fn output_link(out: Option<&Path>, recipe: &str, count: usize) -> PathBuf {
    match out {
        Some(dir) if count == 1 => dir.to_owned(),
        Some(dir) => dir.join(recipe),
        None => Path::new("output").join(recipe),
    }
}

/// Points `link` at the output and makes it a GC root.
fn link_output(store: &Store, link: &Path, out: &forge_store::StorePath) -> anyhow::Result<()> {
    if let Some(parent) = link.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    match std::fs::symlink_metadata(link) {
        Ok(md) if md.file_type().is_symlink() => {
            std::fs::remove_file(link).with_context(|| format!("cannot replace {}", link.display()))?
        }
        Ok(_) => bail!("{} exists and is not a link forge made; move it away or pass --out", link.display()),
        Err(_) => {}
    }
    std::os::unix::fs::symlink(store.physical(out), link).with_context(|| format!("cannot link {}", link.display()))?;
    store.add_indirect_root(link)?;
    Ok(())
}

pub(crate) fn print_failures(forge: &Forge, report: &build::Report) {
    eprintln!("\nbuild failed:");
    for f in &report.failed {
        eprintln!("  {}: {}", f.name, f.error);
        if let Some(log) = &f.log {
            for line in last_lines(log, 15) {
                eprintln!("    | {line}");
            }
            eprintln!("    full log: {} (or `forge log {}`)", log.display(), forge.node(f.node).out());
        }
    }
    for (step, because) in &report.skipped {
        eprintln!("  {step}: not built, its input {because} failed");
    }
    if !report.not_started.is_empty() {
        eprintln!(
            "  {} steps not started (use --keep-going to build what does not depend on a failure)",
            report.not_started.len()
        );
    }
}

fn last_lines(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|s| s.to_string()).collect()
}

pub fn show(store: &Store, registry: &Registry, a: ShowArgs) -> anyhow::Result<ExitCode> {
    let (forge, targets) = declare(registry, std::slice::from_ref(&a.recipe), &a.arch)?;
    let plan = plan::plan(&forge, &targets, true, |p| Ok(store.is_valid(p)?))?;
    let rows: Vec<serde_json::Value> = plan
        .steps
        .iter()
        .map(|(&id, &state)| {
            let n = forge.node(id);
            serde_json::json!({
                "name": n.drv.name,
                "drvHash": n.hash.to_string(),
                "outputs": n.outputs,
                "state": state,
                "builder": describe(&n.drv.builder),
            })
        })
        .collect();
    print_world_notes(&forge, true);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(exit::code(exit::OK));
    }
    for (&id, &state) in &plan.steps {
        let n = forge.node(id);
        let state = match state {
            State::Valid => "valid",
            State::ToFetch => "to fetch",
            State::ToBuild => "to build",
        };
        println!("{state:<9} {}  {}", n.out(), describe(&n.drv.builder));
    }
    eprintln!(
        "{} derivations: {} valid, {} to fetch, {} to build",
        plan.steps.len(),
        plan.count(State::Valid),
        plan.count(State::ToFetch),
        plan.count(State::ToBuild)
    );
    Ok(exit::code(exit::OK))
}

/// One line on stderr per package world the recipes declared: an unlocked one always
/// (it is left out of the build), a locked one when `locked_too` (`forge show`).
fn print_world_notes(forge: &Forge, locked_too: bool) {
    for d in forge.apk_worlds() {
        let (w, recipe) = (&d.world, d.recipe.as_deref().unwrap_or("RECIPE"));
        let file = super::lock::shown(&w.lock_file);
        match &d.lock {
            None => eprintln!(
                "note: {recipe}: package world {} is not locked ({file} is missing), so it is left out; \
                 run `forge lock {recipe}`",
                w.name
            ),
            Some(lock) if locked_too => eprintln!(
                "package world {}: {} packages ({} bytes) pinned by {file}",
                w.name,
                lock.packages.len(),
                lock.total_size()
            ),
            Some(_) => {}
        }
    }
}

/// One line saying what a step is: the URL and hash of a fetch, the builtin's name...
fn describe(b: &Builder) -> String {
    match b {
        Builder::Fetch { urls, hash, .. } => {
            format!("fetch {} {hash}", urls.first().map(String::as_str).unwrap_or("(mirror only)"))
        }
        Builder::Git { url, rev, nar_hash, .. } => format!("git {url} {rev} {nar_hash}"),
        Builder::Run { .. } => "run (sandbox)".to_owned(),
        Builder::Builtin { name, version, .. } => format!("builtin {name}@{version}"),
    }
}

pub fn why(store: &Store, registry: &Registry, a: WhyArgs) -> anyhow::Result<ExitCode> {
    let (forge, targets) = declare(registry, std::slice::from_ref(&a.recipe), &a.arch)?;
    let text = why::explain(store, &forge, targets[0])?;
    print!("{text}");
    Ok(exit::code(exit::OK))
}

pub fn log(store: &Store, registry: &Registry, a: LogArgs) -> anyhow::Result<ExitCode> {
    let out = if a.what.starts_with("sha256:") {
        let drv =
            record::derivation(store, &a.what)?.with_context(|| format!("no derivation {} is recorded", a.what))?;
        drv.out_path()?
    } else if a.what.starts_with('/') || a.what.len() > 33 && a.what.as_bytes()[32] == b'-' {
        store.parse_path(&a.what)?
    } else {
        let (forge, targets) = declare(registry, std::slice::from_ref(&a.what), &a.arch)?;
        forge.node(targets[0]).out().clone()
    };
    let path = record::log_path(store, &out);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("no build log for {out} ({} is missing): it was never built here", path.display()))?;
    print!("{text}");
    Ok(exit::code(exit::OK))
}

pub fn list(registry: &Registry) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let width = registry.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for r in registry.iter() {
        match writeln!(out, "{:width$}  {}", r.name, r.about) {
            Ok(()) => {}
            // `forge list | head`: the reader has what it wanted.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
            Err(e) => return Err(e).context("cannot write the recipe list"),
        }
    }
    Ok(exit::code(exit::OK))
}

pub fn vendor(store: &Store, registry: &Registry, a: VendorArgs) -> anyhow::Result<ExitCode> {
    let (forge, targets) = declare(registry, std::slice::from_ref(&a.recipe), &a.arch)?;
    std::fs::create_dir_all(&a.dir).with_context(|| format!("cannot create {}", a.dir.display()))?;
    let report = forge_engine::vendor::vendor(store, &forge, &targets, &a.fetch.fetcher()?, &a.dir)?;
    for (name, hash) in &report.files {
        println!("{hash}  {name}");
    }
    for (url, rev) in &report.git {
        eprintln!("note: git input {url} at {rev} is not in a file mirror; mirror it with `git clone --mirror` and pass --git-mirror URL=DIR");
    }
    eprintln!(
        "{} files in {}; build offline with `forge build {} --mirror {} --offline`",
        report.files.len(),
        a.dir.display(),
        a.recipe,
        a.dir.display()
    );
    Ok(exit::code(exit::OK))
}
