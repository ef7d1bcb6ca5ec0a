//! Reading each archive format into a [`TreeWriter`].

use std::cell::Cell;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;
use std::sync::mpsc::{sync_channel, Receiver};

use super::tree::{entry_path, TreeWriter};
use super::{Error, Format, Result};

/// Read buffers: large, so that decompression and writes run in long strides.
const BUF: usize = 1 << 20;

/// A compression wrapped around a tar stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Codec {
    None,
    Gzip,
    Xz,
    Bzip2,
    Zstd,
}

/// What the first bytes of a file say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Magic {
    Compressed(Codec),
    Zip,
    Ar,
}

fn sniff(head: &[u8]) -> Option<Magic> {
    const TABLE: &[(&[u8], Magic)] = &[
        (b"\x1f\x8b", Magic::Compressed(Codec::Gzip)),
        (b"\xfd7zXZ\x00", Magic::Compressed(Codec::Xz)),
        (b"BZh", Magic::Compressed(Codec::Bzip2)),
        (b"\x28\xb5\x2f\xfd", Magic::Compressed(Codec::Zstd)),
        (b"PK\x03\x04", Magic::Zip),
        (b"PK\x05\x06", Magic::Zip),
        (b"!<arch>\n", Magic::Ar),
    ];
    if let Some((_, m)) = TABLE.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Some(*m);
    }
    is_tar_header(head).then_some(Magic::Compressed(Codec::None))
}

/// A tar header block: `ustar` magic, or (old v7 archives) a correct checksum.
fn is_tar_header(head: &[u8]) -> bool {
    if head.len() < 512 {
        return false;
    }
    if &head[257..262] == b"ustar" {
        return true;
    }
    let stored = std::str::from_utf8(&head[148..156]).ok().map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '));
    let Some(stored) = stored.and_then(|s| u32::from_str_radix(s, 8).ok()) else {
        return false;
    };
    let sum: u32 =
        head[..512].iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { b as u32 }).sum();
    sum == stored && head[0] != 0
}

fn read_head(r: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

fn hex_preview(head: &[u8]) -> String {
    let shown: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
    if shown.is_empty() {
        "the file is empty".into()
    } else {
        shown.join(" ")
    }
}

/// Detects the format of `archive` from its content.
pub fn detect(archive: &Path) -> Result<Format> {
    let source = archive.display().to_string();
    let mut file = File::open(archive).map_err(Error::io(archive))?;
    let head = read_head(&mut file, 512).map_err(Error::io(archive))?;
    let unknown = || Error::UnknownFormat { archive: source.clone(), magic: hex_preview(&head) };
    Ok(match sniff(&head).ok_or_else(unknown)? {
        Magic::Zip => Format::Zip,
        Magic::Ar => Format::Deb,
        Magic::Compressed(Codec::None) => Format::Tar,
        Magic::Compressed(Codec::Xz) => Format::TarXz,
        Magic::Compressed(Codec::Bzip2) => Format::TarBz2,
        Magic::Compressed(Codec::Zstd) => Format::TarZst,
        Magic::Compressed(Codec::Gzip) => {
            // An apk is gzip too: its first stream holds `.SIGN.*` or `.PKGINFO`.
            let file = File::open(archive).map_err(Error::io(archive))?;
            let mut gz = flate2::read::GzDecoder::new(file);
            let inner = read_head(&mut gz, 512).unwrap_or_default();
            if inner.starts_with(b".SIGN.") || inner.starts_with(b".PKGINFO") {
                Format::Apk
            } else {
                Format::TarGz
            }
        }
    })
}

/// Unpacks `archive`, already known to be `format`, into `out`.
pub(super) fn unpack_into(format: Format, archive: &Path, out: &mut TreeWriter, strip: usize) -> Result<()> {
    let open = || File::open(archive).map_err(Error::io(archive));
    let codec = match format {
        Format::Zip => return unpack_zip(open()?, out, strip),
        Format::Deb => return unpack_deb(open()?, out, strip),
        Format::Apk => return unpack_apk(open()?, out, strip),
        Format::Tar => Codec::None,
        Format::TarGz => Codec::Gzip,
        Format::TarXz => Codec::Xz,
        Format::TarBz2 => Codec::Bzip2,
        Format::TarZst => Codec::Zstd,
    };
    unpack_tar(decoded(codec, BufReader::with_capacity(BUF, open()?)), out, strip)
}

/// The tar stream inside `codec`. Decompression runs on its own thread, as
/// `tar xJf` runs `xz` in its own process: decoding and writing overlap.
fn decoded<R: BufRead + Send + 'static>(codec: Codec, r: R) -> Box<dyn Read + Send> {
    let decoder: Box<dyn Read + Send> = match codec {
        Codec::None => return Box::new(r),
        Codec::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Codec::Xz => Box::new(xz2::bufread::XzDecoder::new_multi_decoder(r)),
        Codec::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(r)),
        Codec::Zstd => match zstd::stream::read::Decoder::with_buffer(r) {
            Ok(d) => Box::new(d),
            Err(e) => return Box::new(FailingReader(Some(e))),
        },
    };
    Box::new(threaded(decoder))
}

/// A reader whose first read fails with a stored error.
struct FailingReader(Option<io::Error>);

impl Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(self.0.take().unwrap_or_else(|| io::Error::other("decoder failed")))
    }
}

/// Reads `inner` on a separate thread, handing over 1 MiB chunks.
fn threaded(mut inner: Box<dyn Read + Send>) -> ChannelReader {
    let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(4);
    std::thread::spawn(move || loop {
        let mut buf = vec![0; BUF];
        let msg = match inner.read(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                Ok(buf)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
        let last = !matches!(&msg, Ok(b) if !b.is_empty());
        if tx.send(msg).is_err() || last {
            break;
        }
    });
    ChannelReader { rx, cur: Vec::new(), pos: 0, done: false }
}

struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.done = chunk.is_empty();
                    self.cur = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(io::Error::other("the decompressor thread stopped early")),
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn corrupt(out: &TreeWriter) -> impl Fn(io::Error) -> Error + '_ {
    |e| Error::Corrupt { archive: out.source().to_owned(), why: e.to_string() }
}

/// Bytes of tar metadata (headers, GNU long names, PAX records, padding) allowed
/// between two entries' data. The tar crate reads long names and PAX records
/// into memory whole; this keeps a hostile archive from making that gigabytes.
const METADATA_SLACK: u64 = 8 << 20;

/// A reader that fails once more bytes pass than the budget allows: the budget
/// is reset at each entry to its data size plus [`METADATA_SLACK`].
struct Budgeted<R> {
    inner: R,
    state: Rc<Cell<(u64, u64)>>,
}

/// The handle the entry loop uses to grant each entry its data size.
struct Budget(Rc<Cell<(u64, u64)>>);

impl Budget {
    fn grant(&self, data: u64) {
        let (consumed, _) = self.0.get();
        self.0.set((consumed, consumed.saturating_add(data).saturating_add(METADATA_SLACK)));
    }
}

fn budgeted<R: Read>(inner: R) -> (Budgeted<R>, Budget) {
    let state = Rc::new(Cell::new((0, METADATA_SLACK)));
    (Budgeted { inner, state: state.clone() }, Budget(state))
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let (consumed, budget) = self.state.get();
        let consumed = consumed + n as u64;
        self.state.set((consumed, budget));
        if consumed > budget {
            return Err(io::Error::other(format!(
                "over {METADATA_SLACK} bytes of tar metadata (long names, PAX records) before an entry; refusing"
            )));
        }
        Ok(n)
    }
}

fn unpack_tar(reader: impl Read, out: &mut TreeWriter, strip: usize) -> Result<()> {
    let (reader, budget) = budgeted(reader);
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(corrupt(out))?;
    for entry in entries {
        let mut entry = entry.map_err(corrupt(out))?;
        budget.grant(entry.size());
        tar_entry(&mut entry, out, strip)?;
    }
    Ok(())
}

fn tar_entry<R: Read>(entry: &mut tar::Entry<R>, out: &mut TreeWriter, strip: usize) -> Result<()> {
    use tar::EntryType as T;
    let kind = entry.header().entry_type();
    if matches!(kind, T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink) {
        return Ok(());
    }
    out.count_entry()?;
    let raw = entry.path_bytes().into_owned();
    let Some(rel) = entry_path(out.source(), &raw, strip)? else {
        return Ok(());
    };
    let mode = entry.header().mode().map_err(corrupt(out))?;
    match kind {
        T::Regular | T::Continuous | T::GNUSparse => {
            note_special_bits(out, &rel, mode);
            out.file(&rel, mode, entry)
        }
        T::Directory => out.dir(&rel),
        T::Symlink => {
            let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
            out.symlink(&rel, Path::new(OsStr::from_bytes(&target)))
        }
        T::Link => {
            let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
            match entry_path(out.source(), &target, strip)? {
                Some(target) => out.hardlink(&rel, &target),
                None => Err(Error::HardlinkOutside {
                    archive: out.source().to_owned(),
                    entry: rel.display().to_string(),
                    target: String::from_utf8_lossy(&target).into_owned(),
                }),
            }
        }
        T::Char | T::Block | T::Fifo => {
            out.note(&rel, "device node or fifo skipped: store outputs never hold them");
            Ok(())
        }
        other => {
            out.note(&rel, format!("entry of unsupported tar type {:?} skipped", other.as_byte() as char));
            Ok(())
        }
    }
}

fn note_special_bits(out: &mut TreeWriter, rel: &Path, mode: u32) {
    if mode & 0o7000 != 0 {
        out.note(rel, format!("setuid/setgid/sticky bits dropped (mode {mode:o})"));
    }
}

/// `S_IFMT` kinds a zip may carry in its unix mode that a store never holds.
fn zip_special(mode: u32) -> bool {
    matches!(mode & 0o170000, 0o010000 | 0o020000 | 0o060000 | 0o140000)
}

fn unpack_zip(file: File, out: &mut TreeWriter, strip: usize) -> Result<()> {
    let zip_err = |out: &TreeWriter, e: zip::result::ZipError| Error::Corrupt {
        archive: out.source().to_owned(),
        why: e.to_string(),
    };
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| zip_err(out, e))?;
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).map_err(|e| zip_err(out, e))?;
        out.count_entry()?;
        let Some(rel) = entry_path(out.source(), f.name_raw(), strip)? else {
            continue;
        };
        let mode = f.unix_mode().unwrap_or(0o644);
        if f.is_dir() {
            out.dir(&rel)?;
        } else if f.is_symlink() {
            let mut target = Vec::new();
            (&mut f).take(4096).read_to_end(&mut target).map_err(corrupt(out))?;
            out.symlink(&rel, Path::new(OsStr::from_bytes(&target)))?;
        } else if zip_special(mode) {
            out.note(&rel, "device node, fifo or socket skipped: store outputs never hold them");
        } else {
            note_special_bits(out, &rel, mode);
            out.file(&rel, mode, &mut f)?;
        }
    }
    Ok(())
}

/// A `.deb` is an ar archive; the files are in its `data.tar[.codec]` member.
fn unpack_deb(file: File, out: &mut TreeWriter, strip: usize) -> Result<()> {
    let mut r = BufReader::with_capacity(BUF, file);
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(corrupt(out))?;
    loop {
        let mut header = [0u8; 60];
        match r.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(Error::DebWithoutData { archive: out.source().to_owned() })
            }
            Err(e) => return Err(corrupt(out)(e)),
        }
        let name = String::from_utf8_lossy(&header[..16]).trim_end().trim_end_matches('/').to_owned();
        let size: u64 =
            std::str::from_utf8(&header[48..58]).ok().and_then(|s| s.trim().parse().ok()).ok_or_else(|| {
                Error::Corrupt { archive: out.source().to_owned(), why: format!("bad ar member header for `{name}`") }
            })?;
        if name.starts_with("data.tar") {
            let mut member = BufReader::with_capacity(BUF, r.take(size));
            let head = member.fill_buf().map_err(corrupt(out))?.to_vec();
            let codec = match sniff(&head) {
                Some(Magic::Compressed(c)) => c,
                _ => {
                    return Err(Error::UnknownFormat {
                        archive: format!("{} ({name})", out.source()),
                        magic: hex_preview(&head),
                    })
                }
            };
            return unpack_tar(decoded(codec, member), out, strip);
        }
        io::copy(&mut (&mut r).take(size + (size & 1)), &mut io::sink()).map_err(corrupt(out))?;
    }
}

/// An apk is gzip streams laid end to end: signature (`.SIGN.*`), control
/// (`.PKGINFO`, scripts) and data. Streams starting with `.SIGN.` or `.PKGINFO`
/// are read past; the others are unpacked.
fn unpack_apk(file: File, out: &mut TreeWriter, strip: usize) -> Result<()> {
    let mut r = BufReader::with_capacity(BUF, file);
    while !r.fill_buf().map_err(corrupt(out))?.is_empty() {
        // bufread::GzDecoder consumes exactly one gzip member from `r`.
        let (stream, budget) = budgeted(flate2::bufread::GzDecoder::new(&mut r));
        let mut archive = tar::Archive::new(stream);
        let mut control = None;
        for entry in archive.entries().map_err(corrupt(out))? {
            let mut entry = entry.map_err(corrupt(out))?;
            budget.grant(entry.size());
            let is_control = *control.get_or_insert_with(|| {
                let name = entry.path_bytes();
                name.starts_with(b".SIGN.") || &*name == b".PKGINFO"
            });
            if !is_control {
                tar_entry(&mut entry, out, strip)?;
            }
        }
        let mut rest = archive.into_inner().inner;
        io::copy(&mut rest, &mut io::sink()).map_err(corrupt(out))?;
    }
    Ok(())
}
