//! `forge image`: filesystem images from root filesystem tarballs, Android sparse
//! images, and the manifests auditors compare.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use forge_engine::ext4::{parse_size, write_ext4, Ext4Options};
use forge_engine::fstree::FsTree;

#[derive(Subcommand)]
#[command(defer = true)]
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
    /// Convert a raw image to an Android sparse image (format 1.0, 4096-byte blocks)
    ///
    /// Runs of identical 32-bit words become FILL chunks, other blocks RAW chunks. When
    /// the input is ext4, zero blocks its bitmaps mark free become DONT_CARE chunks (the
    /// device keeps what it had there); nothing else is ever DONT_CARE. `simg2img OUT.img`
    /// gives IN.img back byte for byte.
    Sparse(SparseArgs),
    /// Print the manifest of a root filesystem tarball or image: one line a path
    ///
    /// Accepts a tarball (plain, .gz, .xz, .zst), a raw ext4 image or an Android sparse
    /// image of one, recognized by content. Each line is `PATH TYPE MODE UID GID` and,
    /// by type, `size= sha256=`, `target=`, `link=`, `dev=MAJOR,MINOR`, `cap=` and
    /// `xattr.NAME=HEX`; the format is specified in docs/manifest.md. Two inputs with the
    /// same content print the same manifest (an image also lists its /lost+found).
    Manifest(ManifestArgs),
}

#[derive(Args)]
pub struct SparseArgs {
    /// The raw image
    #[arg(value_name = "IN.img")]
    input: PathBuf,
    /// The sparse image to write (replaced only once it is complete)
    #[arg(value_name = "OUT.img")]
    out: PathBuf,
}

#[derive(Args)]
pub struct ManifestArgs {
    /// A tarball, an ext4 image or a sparse image
    #[arg(value_name = "ROOTFS.tar|IMAGE")]
    input: PathBuf,
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
            ImageCmd::Sparse(a) => a.run(),
            ImageCmd::Manifest(a) => a.run(),
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

impl SparseArgs {
    fn run(self) -> anyhow::Result<ExitCode> {
        let s = forge_engine::sparse::write_sparse(&self.input, &self.out)?;
        eprintln!(
            "{}: {} blocks in {} chunks ({} raw, {} fill, {} don't care)",
            self.out.display(),
            s.blocks,
            s.chunks,
            s.raw_blocks,
            s.fill_blocks,
            s.dont_care_blocks
        );
        Ok(ExitCode::SUCCESS)
    }
}

impl ManifestArgs {
    fn run(self) -> anyhow::Result<ExitCode> {
        let (tree, _expanded) = load_tree(&self.input)?;
        forge_engine::manifest::write_manifest(&tree, std::io::stdout().lock())?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Reads a tarball, an ext4 image or a sparse ext4 image into a tree, by its magic numbers.
/// A sparse image is expanded into a temporary file, returned so that it lives as long as
/// the tree that reads it.
fn load_tree(input: &std::path::Path) -> anyhow::Result<(FsTree, Option<tempfile::NamedTempFile>)> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(input)
        .and_then(|f| f.take(2048).read_to_end(&mut head))
        .with_context(|| format!("cannot read {}", input.display()))?;
    let epoch = source_date_epoch()?;
    let mut expanded = None;
    let mut image = input.to_path_buf();
    if forge_engine::sparse::is_sparse(&head) {
        let tmp = tempfile::NamedTempFile::new().context("cannot create a temporary file in $TMPDIR")?;
        forge_engine::sparse::unsparse(input, tmp.path())?;
        image = tmp.path().to_path_buf();
        expanded = Some(tmp);
    } else if head.get(1080..1082) != Some(&[0x53, 0xEF][..]) {
        let mut tree = FsTree::new(epoch);
        tree.add_tar_file(input)?;
        return Ok((tree, None));
    }
    let img = forge_engine::ext4::Ext4Image::open_file(&image)?;
    let tree = img.to_fstree(&image, epoch)?;
    Ok((tree, expanded))
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
    if let Some(e) = cause.downcast_ref::<forge_engine::sparse::SparseError>() {
        return Some(match e {
            forge_engine::sparse::SparseError::Io { .. } => crate::exit::FAILED,
            _ => crate::exit::BAD_INPUT,
        });
    }
    if cause.downcast_ref::<TarError>().is_some() || cause.downcast_ref::<forge_engine::fstree::FsTreeError>().is_some()
    {
        return Some(crate::exit::BAD_INPUT);
    }
    None
}
