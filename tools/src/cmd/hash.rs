//! `forge hash`: the hashes an auditor checks, spelled as Nix spells them.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use forge_store::hash::Algo;

#[derive(Subcommand)]
#[command(defer = true)]
pub enum HashCmd {
    /// Hash a file's bytes (not its NAR)
    File(FileArgs),
    /// Hash the NAR of a file or tree: prints `sha256:<nix base32>`, what
    /// `nix-hash --type sha256 --base32 PATH` prints (after the prefix)
    Path(PathArgs),
}

#[derive(Args)]
pub struct PathArgs {
    /// The file, directory or symlink to hash (a symlink is hashed as itself, not followed)
    path: PathBuf,
}

#[derive(Args)]
pub struct FileArgs {
    /// The file to hash
    file: PathBuf,
    /// The algorithm
    #[arg(long = "type", default_value = "sha256", value_parser = ["sha256", "sha512"])]
    algo: String,
    /// Print Nix base32 (the default)
    #[arg(long, conflicts_with_all = ["hex", "sri"])]
    base32: bool,
    /// Print lower-case hex
    #[arg(long, conflicts_with = "sri")]
    hex: bool,
    /// Print SRI (`sha256-<base64>`)
    #[arg(long)]
    sri: bool,
}

impl HashCmd {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            HashCmd::File(a) => a.run(),
            HashCmd::Path(a) => {
                std::fs::symlink_metadata(&a.path).with_context(|| format!("cannot hash {}", a.path.display()))?;
                let (hash, _size) = forge_store::nar::hash_path(&a.path)?;
                println!("{hash}");
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

impl FileArgs {
    fn run(self) -> anyhow::Result<ExitCode> {
        let algo: Algo = self.algo.parse()?;
        let mut file =
            std::fs::File::open(&self.file).with_context(|| format!("cannot open {}", self.file.display()))?;
        let mut hasher = algo.hasher();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).with_context(|| format!("cannot read {}", self.file.display()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let h = hasher.finish();
        if self.hex {
            println!("{}", h.to_hex());
        } else if self.sri {
            println!("{}", h.to_sri());
        } else {
            println!("{h}");
        }
        Ok(ExitCode::SUCCESS)
    }
}
