//! `forge diff A B`: which entries of two root filesystems differ, and in what.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use forge_engine::diff::{self, Aspect, Difference, Side};

use crate::exit;

pub const LONG_ABOUT: &str = "\
Compare two root filesystems entry by entry.

A and B are each a store path or directory, a tarball (.tar, .tar.gz, .tar.xz,
.tar.zst), an ext4 image (raw or Android sparse) or a manifest file (the output of
`forge image manifest`, docs/manifest.md); the kind is told by magic numbers, so
any two can be compared (a tarball against the image made from it, a directory
against a manifest). Both are brought to manifest entries; timestamps are not
compared (forge outputs carry SOURCE_DATE_EPOCH). A directory's entries are owned
by 0:0, as when forge layers it into an image; an ext4 image also has the
/lost+found a directory or tarball may lack.

One line per difference, sorted by path:
  /etc/motd: mode 0644 -> 0600
  /etc/motd: owner 0:0 -> 0:5
  /usr/bin/ping: xattr (none) -> security.capability=cap_net_raw+ep
  /bin/sh: type symlink -> file
  /etc/os-release: content size=10 sha256=... -> size=11 sha256=...
    @@ line 2 @@
    -VERSION=1
    +VERSION=2
Aspects: added, removed, type, content, mode, owner, xattr, target, link, dev.
A content difference shows the first differing lines of small text files, or the
offset of the first differing byte, when both sides have contents (a manifest
file has only hashes).

Exit status: 0 identical, 1 they differ, 3 an input is missing or unreadable.";

#[derive(Args)]
pub struct DiffArgs {
    /// The first tree: store path, directory, tarball, ext4 image or manifest
    #[arg(value_name = "A")]
    a: PathBuf,
    /// The second tree, of any of the same kinds
    #[arg(value_name = "B")]
    b: PathBuf,
    /// Print the differences as a JSON array of {path, aspect, old, new, detail}
    #[arg(long)]
    json: bool,
    /// Also run diffoscope on each file whose content differs (when it is installed)
    #[arg(long)]
    diffoscope: bool,
}

impl DiffArgs {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let a = diff::load(&self.a)?;
        let b = diff::load(&self.b)?;
        let diffs = diff::diff(&a, &b);
        if self.json {
            println!("{}", serde_json::to_string_pretty(&diffs)?);
        } else {
            for d in &diffs {
                println!("{d}");
            }
        }
        if self.diffoscope {
            run_diffoscope(&a, &b, &diffs)?;
        }
        Ok(exit::code(if diffs.is_empty() { exit::OK } else { exit::FAILED }))
    }
}

/// Writes both contents of each differing file to a temporary directory and hands them
/// to diffoscope, whose report goes to stdout after forge's own lines.
fn run_diffoscope(a: &Side, b: &Side, diffs: &[Difference]) -> anyhow::Result<()> {
    if !on_path("diffoscope") {
        eprintln!("forge diff: diffoscope is not installed (apt-get install diffoscope); skipping it");
        return Ok(());
    }
    let tmp = tempfile::tempdir().context("cannot create a temporary directory in $TMPDIR")?;
    for d in diffs.iter().filter(|d| d.aspect == Aspect::Content) {
        let (Some(Ok(x)), Some(Ok(y))) = (diff::content(a, &d.path), diff::content(b, &d.path)) else {
            continue;
        };
        let (pa, pb) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::write(&pa, x).and_then(|_| std::fs::write(&pb, y)).context("cannot write to $TMPDIR")?;
        println!("diffoscope {}:", d.path);
        std::process::Command::new("diffoscope")
            .args(["--text", "-"])
            .arg(&pa)
            .arg(&pb)
            .status()
            .context("cannot run diffoscope")?;
    }
    Ok(())
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}
