//! `forge abi check`: whether a root filesystem can load given ELF files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use forge_engine::abi::{self, Target};

use crate::exit;

#[derive(Subcommand)]
#[command(defer = true)]
pub enum AbiCmd {
    /// Check ELF files' interpreter, libraries and versioned symbols against a root filesystem
    #[command(long_about = CHECK_HELP)]
    Check(CheckArgs),
}

const CHECK_HELP: &str = "\
Check that a root filesystem can load ELF files: what the dynamic loader of that root
would need, and what of it is missing.

For every FILE (and, transitively, every library it loads):
  - its interpreter (PT_INTERP, e.g. /lib/ld-linux-aarch64.so.1) exists in the root and
    has the file's class, byte order and machine;
  - every DT_NEEDED library is found where the loader searches, with the same class,
    byte order and machine. glibc: DT_RPATH of the needing object and its loaders (only
    when it has no DT_RUNPATH), DT_RUNPATH, the directories of the root's
    /etc/ld.so.conf (includes followed), /lib/<multiarch> /usr/lib/<multiarch>,
    /lib64 /usr/lib64 (64-bit), /lib /usr/lib. musl: RPATH and RUNPATH, then the root's
    /etc/ld-musl-<arch>.path or /lib:/usr/local/lib:/usr/lib. $ORIGIN, $LIB and
    $PLATFORM are expanded; LD_LIBRARY_PATH and ld.so.cache are not used. A glibc
    loader built for its own prefix (e.g. /usr/glibc) is followed: the ld.so.conf
    beside its cache and the directories compiled into it replace the defaults. A
    glibc library (no interpreter of its own) is checked as the root's glibc loader at
    the machine's standard path would load it;
  - every version a file needs from a library (.gnu.version_r, e.g. GLIBC_2.34 from
    libc.so.6) is defined by that library (glibc only: musl has no symbol versions);
  - every undefined, non-weak dynamic symbol is defined by some loaded object with a
    compatible version (memcpy@GLIBC_2.14).
Symlinks are followed inside the root (absolute targets start at the root, `..` stops
at it): nothing outside ROOTFS is ever read for the checked files' needs.

FILE is a path on the host, or inside the root: a path starting with `/` that does not
exist on the host is looked up in ROOTFS; with --in-root every FILE is. Prefer files
inside the root: $ORIGIN is only known for them (for a host file, $ORIGIN entries of
its RPATH/RUNPATH are skipped).

The report lists, per file, what is missing (interpreter, library with the directories
searched, version, symbol@version with the library expected to provide it), then what
was loaded from where. --json prints the same as JSON (`missing[].kind` is interpreter,
library, version or symbol).

Exit status: 0 when every need of every file is met, 1 when something is missing,
3 when a FILE cannot be read or is not ELF, or ROOTFS is not a directory.";

#[derive(Args)]
pub struct CheckArgs {
    /// ELF files to check (host paths, or paths inside ROOTFS)
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The root filesystem the files will run in
    #[arg(long, value_name = "ROOTFS")]
    root: PathBuf,
    /// Every FILE is a path inside ROOTFS
    #[arg(long)]
    in_root: bool,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

impl AbiCmd {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            AbiCmd::Check(a) => a.run(),
        }
    }
}

impl CheckArgs {
    fn run(self) -> anyhow::Result<ExitCode> {
        let targets: Vec<Target> = self.files.iter().map(|f| self.target(f)).collect();
        let report = abi::check(&self.root, &targets)
            .with_context(|| format!("cannot check against the root {}", self.root.display()))?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{report}");
            if !report.ok() {
                eprintln!("error: some needs are not met in {}", self.root.display());
            }
        }
        Ok(exit::code(if report.ok() { exit::OK } else { exit::FAILED }))
    }

    fn target(&self, file: &Path) -> Target {
        let absolute = file.is_absolute();
        if self.in_root || (absolute && !file.exists()) {
            let p = file.to_string_lossy();
            Target::InRoot(if absolute { p.into_owned() } else { format!("/{p}") })
        } else {
            Target::Host(file.to_owned())
        }
    }
}
