//! `forge store`: look into the store and maintain it.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use forge_store::{PathInfo, Store, StorePath};

use crate::exit;

#[derive(Subcommand)]
#[command(defer = true)]
pub enum StoreCmd {
    /// Add a file or directory to the store by content and print its store path.
    ///
    /// The same content and name always give the same path (like `nix-store --add`).
    Add(AddArgs),
    /// Show what the store records about a path
    Info(InfoArgs),
    /// List every valid store path
    Ls,
    /// Check that every valid path is present (and, with --check-contents, unmodified).
    ///
    /// Prints one line per bad path and exits 1 when there is any.
    Verify(VerifyArgs),
    /// Delete every path not reachable from a GC root.
    ///
    /// Roots are the links in <store>/gcroots/ (and the `output/` links registered
    /// there) plus whatever running forge processes hold. Prints each deleted path.
    Gc(GcArgs),
    /// Write the NAR of a store path to stdout (`forge store export P > p.nar`)
    Export(ExportArgs),
    /// Read a NAR from stdin into the store and print its store path
    Import(ImportArgs),
}

#[derive(Args)]
pub struct AddArgs {
    /// The file, directory or symlink to add
    path: PathBuf,
    /// Name of the store path [default: the file name of PATH]
    #[arg(long)]
    name: Option<String>,
    /// Also make a GC root with this name (in <store>/gcroots/)
    #[arg(long, value_name = "ROOT")]
    root: Option<String>,
}

#[derive(Args)]
pub struct InfoArgs {
    /// A store path: /forge/store/<hash>-<name>, its physical location, or <hash>-<name>
    path: String,
    /// Print JSON: {"path","narHash","narSize","references","deriver","registrationTime"}
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// Also re-hash every path and compare with the recorded NAR hash (reads everything)
    #[arg(long)]
    check_contents: bool,
}

#[derive(Args)]
pub struct GcArgs {
    /// Only list what would be deleted
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args)]
pub struct ExportArgs {
    /// The store path to export
    path: String,
}

#[derive(Args)]
pub struct ImportArgs {
    /// Name of the new store path (a NAR does not carry one)
    #[arg(long, default_value = "source")]
    name: String,
}

/// Opens the store at `--store`, else at the default root.
pub fn open_store(root: Option<PathBuf>) -> anyhow::Result<Store> {
    let root = match root {
        Some(r) => r,
        None => Store::default_root()?,
    };
    Store::open(&root).with_context(|| format!("cannot open the store at {}", root.display()))
}

impl StoreCmd {
    pub fn run(self, root: Option<PathBuf>) -> anyhow::Result<ExitCode> {
        let store = open_store(root)?;
        match self {
            StoreCmd::Add(a) => a.run(&store),
            StoreCmd::Info(a) => a.run(&store),
            StoreCmd::Ls => {
                let mut out = std::io::stdout().lock();
                for p in store.valid_paths()? {
                    writeln!(out, "{p}")?;
                }
                Ok(ExitCode::SUCCESS)
            }
            StoreCmd::Verify(a) => a.run(&store),
            StoreCmd::Gc(a) => a.run(&store),
            StoreCmd::Export(a) => a.run(&store),
            StoreCmd::Import(a) => {
                if std::io::stdin().is_terminal() {
                    bail!("`forge store import` reads a NAR from stdin: run `forge store import < file.nar`");
                }
                let info =
                    store.import(std::io::stdin().lock(), &a.name).context("cannot import the NAR from stdin")?;
                println!("{}", info.path);
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

impl AddArgs {
    fn run(self, store: &Store) -> anyhow::Result<ExitCode> {
        std::fs::symlink_metadata(&self.path).with_context(|| format!("cannot add {}", self.path.display()))?;
        let name = match self.name {
            Some(n) => n,
            None => default_name(&self.path)?,
        };
        let info = store
            .add_path_rooted(&self.path, &name, self.root.as_deref())
            .with_context(|| format!("cannot add {}", self.path.display()))?;
        println!("{}", info.path);
        Ok(ExitCode::SUCCESS)
    }
}

fn default_name(path: &Path) -> anyhow::Result<String> {
    let abs = std::path::absolute(path)?;
    let name = abs.file_name().and_then(|n| n.to_str()).map(str::to_owned);
    match name {
        Some(n) if forge_store::path::validate_name(&n).is_ok() => Ok(n),
        _ => bail!(
            "{} has no usable store path name (letters, digits and + - . _ ? =, not starting with `.`); pass --name NAME",
            path.display()
        ),
    }
}

impl InfoArgs {
    fn run(self, store: &Store) -> anyhow::Result<ExitCode> {
        let path = store.parse_path(&self.path)?;
        let info = store.info(&path)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&info_json(&info))?);
        } else {
            print_info(&info);
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The JSON other tools rely on: exactly these keys.
fn info_json(info: &PathInfo) -> serde_json::Value {
    serde_json::json!({
        "path": info.path.to_string(),
        "narHash": info.nar_hash.to_string(),
        "narSize": info.nar_size,
        "references": info.references.iter().map(StorePath::to_string).collect::<Vec<_>>(),
        "deriver": info.deriver,
        "registrationTime": info.registration_time,
    })
}

fn print_info(info: &PathInfo) {
    println!("path:              {}", info.path);
    println!("nar hash:          {}", info.nar_hash);
    println!("nar size:          {}", info.nar_size);
    println!("deriver:           {}", info.deriver.as_deref().unwrap_or("-"));
    println!("registration time: {}", info.registration_time);
    println!("content address:   {}", info.ca.as_deref().unwrap_or("-"));
    println!("references:");
    for r in &info.references {
        println!("  {r}");
    }
}

impl VerifyArgs {
    fn run(self, store: &Store) -> anyhow::Result<ExitCode> {
        let report = store.verify(self.check_contents)?;
        for (path, why) in &report.bad {
            println!("{path}: {why}");
        }
        for problem in &report.database {
            println!("database: {problem}");
        }
        if report.is_clean() {
            eprintln!("{} paths checked, all good", report.checked);
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "{} of {} paths are bad; rebuild or re-add them, or remove their roots and run `forge store gc`",
            report.bad.len(),
            report.checked
        );
        Ok(exit::code(exit::FAILED))
    }
}

impl GcArgs {
    fn run(self, store: &Store) -> anyhow::Result<ExitCode> {
        let report = store.gc(self.dry_run)?;
        for p in &report.deleted {
            println!("{p}");
        }
        let verb = if self.dry_run { "would delete" } else { "deleted" };
        eprintln!("{verb} {} paths ({:.1} MiB)", report.deleted.len(), report.bytes as f64 / (1 << 20) as f64);
        if !report.in_use.is_empty() {
            eprintln!("kept {} unreachable paths that running forge processes hold", report.in_use.len());
        }
        for link in &report.stale_roots {
            eprintln!(
                "{} stale root {} (its link is gone)",
                if self.dry_run { "would remove" } else { "removed" },
                link.display()
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

impl ExportArgs {
    fn run(self, store: &Store) -> anyhow::Result<ExitCode> {
        let path = store.parse_path(&self.path)?;
        let stdout = std::io::stdout();
        if stdout.is_terminal() {
            bail!("a NAR is binary: redirect stdout, e.g. `forge store export {} > out.nar`", self.path);
        }
        store.export(&path, &mut stdout.lock())?;
        Ok(ExitCode::SUCCESS)
    }
}
