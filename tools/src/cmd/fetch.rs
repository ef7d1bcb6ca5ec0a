//! `forge fetch`: the fixed-output fetcher by hand, to debug mirrors and URLs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use forge_engine::fetch::{mirror, FetchOptions, FetchSpec, Fetcher, Mirrors};
use forge_store::Hash;

/// Fetch a file the way a build fetches a fixed-output input.
///
/// Mirrors are tried first (each under sha256/<hex> or sha512/<hex>, then under the
/// URLs' file names), then each URL in order. The file is kept only if its hash is
/// the one given; a mismatching download is kept beside the output as
/// FILE.mismatch-N for inspection, and the error names it.
///
/// Mirrors come from --mirror, then $FORGE_MIRRORS, then the `mirror = ...` lines of
/// the config file ($FORGE_CONFIG, else $XDG_CONFIG_HOME/forge/config); see
/// docs/mirrors.md. Proxies come from $HTTPS_PROXY, $HTTP_PROXY, $ALL_PROXY and
/// $NO_PROXY.
#[derive(Args)]
pub struct FetchArgs {
    /// Where the file lives upstream: http(s)://, file:// or a path (tried in order)
    #[arg(value_name = "URL")]
    urls: Vec<String>,
    /// The expected hash: sha256:<hex|nix32>, sha512:<...> or SRI sha256-<base64>
    #[arg(long)]
    hash: String,
    /// The input's name [default: the first URL's file name]
    #[arg(long)]
    name: Option<String>,
    /// A mirror directory or base URL, tried before the URLs (repeatable)
    #[arg(long, value_name = "DIR|URL")]
    mirror: Vec<String>,
    /// Use no network at all: only local mirrors, file:// URLs and paths
    #[arg(long)]
    offline: bool,
    /// Where to put the file [default: the name, in the current directory]
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Seconds allowed to connect
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    connect_timeout: u64,
    /// Seconds allowed without data from the server
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    idle_timeout: u64,
    /// Retries of a URL after a transient failure
    #[arg(long, value_name = "N", default_value_t = 4)]
    retries: u32,
}

impl FetchArgs {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let hash: Hash = self.hash.parse()?;
        let name = match self.name.clone().or_else(|| self.urls.iter().find_map(|u| mirror::name_key(u))) {
            Some(n) => n,
            None => anyhow::bail!("give --name: no URL has a file name to use"),
        };
        let output = self.output.clone().unwrap_or_else(|| PathBuf::from(&name));
        let mirrors = Mirrors::load(&self.mirror, &[])?;
        let opts = FetchOptions {
            offline: self.offline,
            connect_timeout: Duration::from_secs(self.connect_timeout),
            idle_timeout: Duration::from_secs(self.idle_timeout),
            retries: self.retries,
            ..FetchOptions::default()
        };
        let fetcher = Fetcher::new(mirrors, opts)?;
        let spec = FetchSpec { name, urls: self.urls, hash };
        let got = fetcher.fetch(&spec, &output).with_context(|| format!("cannot fetch into {}", output.display()))?;
        println!("{} {}", spec.hash, output.display());
        eprintln!("fetched {} bytes from {}", got.size, got.source);
        Ok(ExitCode::SUCCESS)
    }
}
