//! `forge unpack`: the unpack builtin by hand, to look at what a build step sees.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use forge_engine::archive::{self, Limits, UnpackOptions};

/// Unpack an archive the way a build's unpack step does.
///
/// The format is told by the content: tar, tar.gz, tar.xz, tar.bz2, tar.zst, zip,
/// .deb (its data.tar) and .apk (its data stream). Files come out with mode 644 or
/// 755, directories 755; device nodes and fifos are skipped and setuid/setgid bits
/// dropped (each listed on stderr). Absolute or `..` paths, writes through symlinks
/// and hardlinks out of the tree are refused.
#[derive(Args)]
pub struct UnpackArgs {
    /// The archive
    archive: PathBuf,
    /// Where to unpack (created if absent; must be empty)
    dir: PathBuf,
    /// Drop this many leading path components from every entry
    #[arg(long, value_name = "N", default_value_t = 0)]
    strip_components: usize,
    /// Refuse archives with more entries than this
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_entries)]
    max_entries: u64,
    /// Refuse archives that expand to more bytes than this
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_bytes)]
    max_bytes: u64,
}

impl UnpackArgs {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let opts = UnpackOptions {
            strip_components: self.strip_components,
            limits: Limits { max_entries: self.max_entries, max_bytes: self.max_bytes },
        };
        let done = archive::unpack(&self.archive, &self.dir, &opts)
            .with_context(|| format!("cannot unpack {} into {}", self.archive.display(), self.dir.display()))?;
        for note in &done.notes {
            eprintln!("note: {}: {}", note.entry, note.why);
        }
        println!(
            "unpacked {} ({}): {} entries, {} bytes into {}",
            self.archive.display(),
            done.format,
            done.entries,
            done.bytes,
            self.dir.display()
        );
        Ok(ExitCode::SUCCESS)
    }
}
