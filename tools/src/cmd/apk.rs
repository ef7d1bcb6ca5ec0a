//! `forge apk`: read, verify and resolve Alpine packages and indexes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use forge_engine::apk::dep::{self, Dep};
use forge_engine::apk::index::{self, IndexPackage};
use forge_engine::apk::keys::Keys;
use forge_engine::apk::package::{self, Apk};
use forge_engine::apk::repo::{self as apk_repo, ArchDir, RepoOptions};
use forge_engine::apk::resolve::{self, Repository};
use forge_engine::apk::sign::SigningKey;
use forge_engine::apk::tarball::{Entry, Kind};
use serde::Serialize;
use serde_json::{json, Value};

const KEYS_HELP: &str = "Directory of trusted public keys (PEM), like /etc/apk/keys. The signature file name \
                         (.SIGN.RSA.<name>) picks the key file <name> in it";

#[derive(Subcommand)]
#[command(defer = true)]
pub enum ApkCmd {
    /// Verify an .apk and show its metadata, signer, verification results and files.
    ///
    /// Checks the signature over the control stream with the key it names, the datahash
    /// of the data stream and every file's APK-TOOLS.checksum.SHA1. A wrong key, an
    /// unknown key or any altered byte fails with exit status 3.
    Inspect(FileArgs),
    /// Verify an APKINDEX.tar.gz and list its packages.
    ///
    /// Text output: the signer, then one line per package: name version arch checksum
    /// size. --json prints {"signer", "description", "packages": [...]}.
    Index(FileArgs),
    /// Resolve a world against verified indexes and print one `name version` line per
    /// package, sorted by name.
    ///
    /// WORLD items are apk dependencies: name, name=1.2-r0, name>=1, name~1.2, !name,
    /// name@tag, so:libfoo.so.1, cmd:sh, pc:zlib. An unsatisfiable world exits with
    /// status 1 and names the chain that fails (world -> a-1.0 -> b>=2: ...).
    Resolve(ResolveArgs),
    /// Sign unsigned apks (what the apk-package builtin leaves in the store) into a
    /// repository: DIR/<arch>/NAME-VERSION.apk, a signed DIR/<arch>/APKINDEX.tar.gz and
    /// the public key in DIR/keys/, as `apk add --repository DIR --keys-dir DIR/keys`
    /// reads them. DIR is replaced as a whole.
    ///
    /// The key is an RSA private key as `openssl genrsa` (abuild-keygen) writes it; its
    /// public half is published as the key file name plus `.pub`, the name the
    /// signature entries (.SIGN.RSA. and .SIGN.RSA256.) carry. A bad key exits 3.
    Sign(SignArgs),
}

/// A signed file to verify and show.
#[derive(Args)]
pub struct FileArgs {
    /// The .apk (inspect) or APKINDEX.tar.gz (index) file
    file: PathBuf,
    #[arg(long, value_name = "DIR", help = KEYS_HELP)]
    keys: PathBuf,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ResolveArgs {
    /// An APKINDEX.tar.gz to resolve against (repeat for several). `@TAG=FILE` marks a
    /// tagged repository, used only for `name@TAG`
    #[arg(long = "index", value_name = "[@TAG=]FILE", required = true)]
    indexes: Vec<String>,
    #[arg(long, value_name = "DIR", help = KEYS_HELP)]
    keys: PathBuf,
    /// Target architecture (packages of it and noarch are used)
    #[arg(long)]
    arch: String,
    /// What to install
    #[arg(required = true, value_name = "WORLD")]
    world: Vec<String>,
}

/// Signs unsigned apks into a repository.
#[derive(Args)]
pub struct SignArgs {
    /// The unsigned .apk files
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// RSA private key (PEM). Also $FORGE_APK_KEY and `apk-key` in the config file
    #[arg(long, value_name = "KEY.rsa")]
    key: Option<PathBuf>,
    /// The repository directory to write (replaced)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Where noarch packages go [default: this machine's arch]
    #[arg(long)]
    arch: Option<String>,
    /// The index's DESCRIPTION
    #[arg(long, default_value = "forge")]
    description: String,
}

/// The environment variable naming the RSA private key that signs apks.
pub const ENV_APK_KEY: &str = "FORGE_APK_KEY";

/// The apk signing key from (first found) `flag`, `$FORGE_APK_KEY`, the config file's
/// last `apk-key`; `None` when none is configured. Loaded before any build starts, so
/// a bad key costs no build time (exit 3).
pub fn configured_key(flag: Option<&Path>) -> anyhow::Result<Option<SigningKey>> {
    let source = super::sign::key_source(flag, "--apk-key", ENV_APK_KEY, "apk-key", "the apk signing key")?;
    let Some((path, from)) = source else { return Ok(None) };
    Ok(Some(SigningKey::load(&path).with_context(|| format!("cannot use {from}"))?))
}

/// Signs `apks` into the repository `dir` and says on stderr what was written.
pub fn write_repository(
    apks: &[PathBuf],
    key: &SigningKey,
    dir: &Path,
    description: &str,
    arch: &str,
) -> anyhow::Result<Vec<ArchDir>> {
    let written = apk_repo::write(apks, key, dir, &RepoOptions::new(description, arch))
        .with_context(|| format!("cannot write the apk repository {}", dir.display()))?;
    for d in &written {
        eprintln!(
            "signed {} apk(s) with {} into {} (index {})",
            d.apks.len(),
            key.name,
            d.index.parent().unwrap_or(dir).display(),
            d.index.display()
        );
    }
    Ok(written)
}

impl SignArgs {
    fn run(self) -> anyhow::Result<ExitCode> {
        let Some(key) = configured_key(self.key.as_deref())? else {
            eprintln!(
                "error: no apk signing key: pass --key KEY.rsa (or set ${ENV_APK_KEY} or `apk-key` in the config)"
            );
            return Ok(crate::exit::code(crate::exit::BAD_INPUT));
        };
        let arch = self.arch.unwrap_or_else(|| forge_engine::drv::host_system().trim_end_matches("-linux").to_owned());
        let written = write_repository(&self.files, &key, &self.out, &self.description, &arch)?;
        let mut out = String::new();
        for path in written.iter().flat_map(|d| d.apks.iter().chain([&d.index])) {
            out += &format!("{}\n", path.display());
        }
        emit(&out)?;
        Ok(ExitCode::SUCCESS)
    }
}

impl ApkCmd {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            ApkCmd::Inspect(a) => inspect(a),
            ApkCmd::Index(a) => list_index(a),
            ApkCmd::Resolve(a) => a.run(),
            ApkCmd::Sign(a) => a.run(),
        }
    }
}

fn inspect(args: FileArgs) -> anyhow::Result<ExitCode> {
    let keys = Keys::open(&args.keys)?;
    let apk = package::read_file(&args.file, &keys)?;
    if args.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&apk_json(&apk))?))?;
    } else {
        emit(&apk_text(&apk))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes to stdout; a reader that stops early (`| head`) is not an error.
fn emit(s: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(s.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("cannot write to stdout"),
        _ => Ok(()),
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::File => "file",
        Kind::Dir => "dir",
        Kind::Symlink => "symlink",
        Kind::Hardlink => "hardlink",
        Kind::CharDevice => "char",
        Kind::BlockDevice => "block",
        Kind::Fifo => "fifo",
    }
}

fn deps_json(deps: &[Dep]) -> Value {
    Value::from(deps.iter().map(Dep::to_string).collect::<Vec<_>>())
}

fn file_json(e: &Entry) -> Value {
    json!({
        "path": e.path.trim_end_matches('/'),
        "type": kind_name(e.kind),
        "mode": format!("{:04o}", e.mode),
        "uid": e.uid,
        "gid": e.gid,
        "size": e.size,
        "target": e.link_target,
        "sha1": Apk::file_checksum(e).map(|c| c.to_hex()),
    })
}

fn apk_json(apk: &Apk) -> Value {
    let i = &apk.info;
    let signer = apk.signer.as_ref().map(|s| json!({"key": s.key_name, "algorithm": s.algo.name()}));
    json!({
        "name": i.name,
        "version": i.version,
        "arch": i.arch,
        "checksum": apk.checksum.to_string(),
        "size": apk.size,
        "sha256": forge_engine::apk::checksum::hex(&apk.sha256),
        "signer": signer,
        "verified": {
            "signature": apk.signer.is_some(),
            "datahash": i.datahash.is_some(),
            "file_checksums": apk.file_checksums_verified,
        },
        "description": i.description,
        "url": i.url,
        "license": i.license,
        "installed_size": i.size,
        "depends": deps_json(&i.depends),
        "provides": deps_json(&i.provides),
        "install_if": deps_json(&i.install_if),
        "replaces": deps_json(&i.replaces),
        "triggers": i.triggers,
        "scripts": apk.scripts.iter().map(|s| s.kind.name()).collect::<Vec<_>>(),
        "pkginfo": i.fields.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        "files": apk.files.iter().map(file_json).collect::<Vec<_>>(),
    })
}

fn apk_text(apk: &Apk) -> String {
    let i = &apk.info;
    let mut s = format!("package   {} {} ({})\n", i.name, i.version, i.arch);
    s += &format!("checksum  {}\n", apk.checksum);
    s += &format!("size      {} bytes, sha256 {}\n", apk.size, forge_engine::apk::checksum::hex(&apk.sha256));
    if let Some(sg) = &apk.signer {
        s += &format!("signer    {} ({}): signature verified\n", sg.key_name, sg.algo.name());
    }
    match &i.datahash {
        Some(h) => s += &format!("datahash  {}: verified\n", forge_engine::apk::checksum::hex(h)),
        None => s += "datahash  none (the signature covers the data stream): verified\n",
    }
    s += &format!("files     {} entries, {} file checksums verified\n", apk.files.len(), apk.file_checksums_verified);
    for (label, deps) in
        [("depends", &i.depends), ("provides", &i.provides), ("install_if", &i.install_if), ("replaces", &i.replaces)]
    {
        if !deps.is_empty() {
            s += &format!("{label:<10}{}\n", dep::join(deps));
        }
    }
    if !apk.scripts.is_empty() {
        s += &format!("scripts   {}\n", apk.scripts.iter().map(|x| x.kind.name()).collect::<Vec<_>>().join(" "));
    }
    s += ".PKGINFO:\n";
    for (k, v) in &i.fields {
        s += &format!("  {k} = {v}\n");
    }
    s += "files:\n";
    for e in &apk.files {
        let target = e.link_target.as_deref().map(|t| format!(" -> {t}")).unwrap_or_default();
        s += &format!(
            "  {:<8} {:04o} {}:{} {:>9} {}{target}\n",
            kind_name(e.kind),
            e.mode,
            e.uid,
            e.gid,
            e.size,
            e.path
        );
    }
    s
}

fn list_index(args: FileArgs) -> anyhow::Result<ExitCode> {
    let keys = Keys::open(&args.keys)?;
    let index = index::read_file(&args.file, &keys)?;
    let signer = index.signer.as_ref().map(|s| s.key_name.clone()).unwrap_or_default();
    if args.json {
        let doc = IndexJson {
            signer: &signer,
            description: index.description.as_deref(),
            packages: index.packages.iter().map(PackageJson::of).collect(),
        };
        emit(&format!("{}\n", serde_json::to_string(&doc)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = format!("signer {signer}\n");
    for p in &index.packages {
        out += &format!("{} {} {} {} {}\n", p.name, p.version, p.arch, p.checksum, p.size);
    }
    emit(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// The `--json` document of `forge apk index`, serialized straight from the records
/// (building a `serde_json::Value` first costs more than parsing the index).
#[derive(Serialize)]
struct IndexJson<'a> {
    signer: &'a str,
    description: Option<&'a str>,
    packages: Vec<PackageJson<'a>>,
}

#[derive(Serialize)]
struct PackageJson<'a> {
    name: &'a str,
    version: &'a str,
    arch: &'a str,
    checksum: String,
    size: u64,
    installed_size: u64,
    description: &'a str,
    url: &'a str,
    license: &'a str,
    origin: Option<&'a str>,
    maintainer: Option<&'a str>,
    build_time: Option<u64>,
    commit: Option<&'a str>,
    provider_priority: Option<u64>,
    depends: Vec<String>,
    provides: Vec<String>,
    install_if: Vec<String>,
}

impl<'a> PackageJson<'a> {
    fn of(p: &'a IndexPackage) -> PackageJson<'a> {
        let strings = |deps: &[Dep]| deps.iter().map(Dep::to_string).collect();
        PackageJson {
            name: &p.name,
            version: &p.version,
            arch: &p.arch,
            checksum: p.checksum.to_string(),
            size: p.size,
            installed_size: p.installed_size,
            description: &p.description,
            url: &p.url,
            license: &p.license,
            origin: p.origin.as_deref(),
            maintainer: p.maintainer.as_deref(),
            build_time: p.build_time,
            commit: p.commit.as_deref(),
            provider_priority: p.provider_priority,
            depends: strings(&p.depends),
            provides: strings(&p.provides),
            install_if: strings(&p.install_if),
        }
    }
}

impl ResolveArgs {
    fn run(self) -> anyhow::Result<ExitCode> {
        let keys = Keys::open(&self.keys)?;
        let mut repos = Vec::new();
        for spec in &self.indexes {
            let (tag, file) = match spec.strip_prefix('@').and_then(|s| s.split_once('=')) {
                Some((t, f)) => (Some(t.to_owned()), f),
                None => (None, spec.as_str()),
            };
            let index = index::read_file(file.as_ref(), &keys)?;
            repos.push(Repository { url: file.to_owned(), tag, packages: index.packages });
        }
        let world =
            self.world.iter().map(|w| Dep::parse(w, "the world on the command line")).collect::<Result<Vec<_>, _>>()?;
        let resolution = resolve::resolve(&repos, &self.arch, &world).context("resolution failed")?;
        let mut out = String::new();
        for r in &resolution.packages {
            out += &format!("{} {}\n", r.package.name, r.package.version);
        }
        emit(&out)?;
        Ok(ExitCode::SUCCESS)
    }
}
