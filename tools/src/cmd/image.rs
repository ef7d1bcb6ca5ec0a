//! `forge image`: filesystem images from root filesystem tarballs, Android sparse
//! images, and the manifests auditors compare.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use forge_engine::ext4::{parse_size, write_ext4, Ext4Options};
use forge_engine::fstree::FsTree;

#[derive(Subcommand)]
pub enum ImageCmd {
    /// Write an ext4 filesystem image from a root filesystem tarball
    ///
    /// The tarball (plain, .gz, .xz or .zst, recognized by content) is read with its
    /// owners, modes, device nodes, hard links and xattrs (SCHILY.xattr, e.g.
    /// security.capability) and written as ext4 without root and without mounting.
    /// Every timestamp is $SOURCE_DATE_EPOCH (0 when unset); the UUID and directory hash
    /// seed are derived from the content, so the same tarball always gives the same
    /// image bytes. A /lost+found directory is added when the tarball has none.
    Ext4(Ext4Args),
}

#[derive(Args)]
pub struct Ext4Args {
    /// The root filesystem tarball (.tar, .tar.gz, .tar.xz, .tar.zst)
    #[arg(long = "from-tar", value_name = "ROOTFS.tar")]
    from_tar: PathBuf,
    /// Image size, e.g. 4500M or 2G (powers of 1024) [default: the smallest that fits]
    #[arg(long, value_name = "SIZE")]
    size: Option<String>,
    /// Volume label (at most 16 bytes)
    #[arg(long, value_name = "LABEL", default_value = "")]
    label: String,
    /// The image to write (replaced only once it is complete)
    #[arg(value_name = "OUT.img")]
    out: PathBuf,
}

impl ImageCmd {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            ImageCmd::Ext4(a) => a.run(),
        }
    }
}

/// SOURCE_DATE_EPOCH, the one piece of the environment images depend on.
fn source_date_epoch() -> anyhow::Result<i64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v.trim().parse().with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds")),
        Err(_) => Ok(0),
    }
}

impl Ext4Args {
    fn run(self) -> anyhow::Result<ExitCode> {
        let size = self.size.as_deref().map(parse_size).transpose()?;
        let mut tree = FsTree::new(source_date_epoch()?);
        tree.add_tar_file(&self.from_tar)?;
        let opts = Ext4Options { size, label: self.label };
        let s = write_ext4(&tree, &self.out, &opts)
            .with_context(|| format!("cannot write {} from {}", self.out.display(), self.from_tar.display()))?;
        eprintln!(
            "{}: {} blocks ({} free), {} of {} inodes used",
            self.out.display(),
            s.blocks,
            s.free_blocks,
            s.used_inodes,
            s.inodes
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// Exit codes for the image errors: bad input (a malformed tarball or image, a size the
/// tree does not fit) is 3, failing to write the output is 1.
pub fn exit_code_for(cause: &(dyn std::error::Error + 'static)) -> Option<u8> {
    use forge_engine::ext4::Ext4Error;
    use forge_engine::tar::TarError;
    if let Some(e) = cause.downcast_ref::<Ext4Error>() {
        return Some(match e {
            Ext4Error::Io { .. } => crate::exit::FAILED,
            _ => crate::exit::BAD_INPUT,
        });
    }
    if cause.downcast_ref::<TarError>().is_some() || cause.downcast_ref::<forge_engine::fstree::FsTreeError>().is_some()
    {
        return Some(crate::exit::BAD_INPUT);
    }
    None
}
