//! Where a regular file's bytes live. Content is a reference, never a copy of a big
//! file: bytes held in memory are for small files written by recipes; everything else
//! is read from its file when a writer streams it.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One contiguous piece of a file stored in blocks of a host file (an ext4 image):
/// `len` bytes at logical offset `logical`, found at `physical` in the host file.
/// Logical ranges not covered by any run read as zeros (holes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// Offset in the file.
    pub logical: u64,
    /// Offset in the host file.
    pub physical: u64,
    /// Length in bytes.
    pub len: u64,
}

/// The bytes of a regular file.
#[derive(Clone, Debug)]
pub enum Content {
    /// Held in memory (small files written by recipes).
    Bytes(Arc<[u8]>),
    /// `size` bytes at `offset` of a host or store file (a whole file has offset 0; an
    /// uncompressed tar member is a range of the tar).
    File {
        /// The file.
        path: Arc<Path>,
        /// Where the content starts in it.
        offset: u64,
        /// The content's length.
        size: u64,
    },
    /// A range of the tree's spool: a temporary file that compressed tar streams are
    /// copied into as they are read, so the tree never holds file contents in memory.
    Spool {
        /// The spool file.
        spool: Arc<Spool>,
        /// Where the content starts in it.
        offset: u64,
        /// The content's length.
        size: u64,
    },
    /// Runs of a host file, holes reading as zeros (files read back from an image).
    Runs {
        /// The host file.
        path: Arc<Path>,
        /// Its runs, by logical offset.
        runs: Arc<[Run]>,
        /// The file's size (past the last run: zeros).
        size: u64,
    },
}

impl Content {
    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::File { size, .. } | Content::Spool { size, .. } | Content::Runs { size, .. } => *size,
        }
    }

    /// A whole host file, with its size as it is now (writers fail if it changes).
    pub fn host_file(path: impl Into<PathBuf>) -> io::Result<Content> {
        let path: PathBuf = path.into();
        let size = std::fs::metadata(&path)?.len();
        Ok(Content::File { path: path.into(), offset: 0, size })
    }

    /// Opens the content for streaming. Reading yields exactly [`Content::size`] bytes or
    /// fails with `UnexpectedEof` when the backing file shrank.
    pub fn open(&self) -> io::Result<ContentReader> {
        let source = match self {
            Content::Bytes(b) => Source::Bytes(b.clone()),
            Content::File { path, offset, .. } => Source::File { file: Arc::new(File::open(path)?), base: *offset },
            Content::Spool { spool, offset, .. } => Source::Spool { spool: spool.clone(), base: *offset },
            Content::Runs { path, runs, .. } => Source::Runs { file: File::open(path)?, runs: runs.clone() },
        };
        Ok(ContentReader { source, pos: 0, size: self.size() })
    }

    /// Byte ranges `[start, end)` of the content that may hold non-zero data, in order,
    /// widened to multiples of `align`. A host file's holes (found with SEEK_DATA and
    /// SEEK_HOLE) are left out, so writers skip them without reading; other contents are
    /// one range.
    pub fn data_ranges(&self, align: u64) -> io::Result<Vec<(u64, u64)>> {
        let size = self.size();
        // Small files are read whole: asking for holes would cost more than reading them.
        let (path, offset) = match self {
            Content::File { path, offset, size } if *size >= 1 << 20 => (path, *offset),
            _ => return Ok(if size == 0 { Vec::new() } else { vec![(0, size)] }),
        };
        let file = File::open(path)?;
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        let mut pos = offset;
        let end = offset + size;
        while pos < end {
            let Some(data) = seek(&file, pos, libc::SEEK_DATA)? else { break };
            if data >= end {
                break;
            }
            let hole = seek(&file, data, libc::SEEK_HOLE)?.unwrap_or(end).min(end);
            let start = (data - offset) / align * align;
            let stop = ((hole - offset).div_ceil(align) * align).min(size);
            match ranges.last_mut() {
                Some(last) if last.1 >= start => last.1 = last.1.max(stop),
                _ => ranges.push((start, stop)),
            }
            pos = hole.max(data + 1);
        }
        Ok(ranges)
    }

    /// Reads the whole content into memory (for tests and small files).
    pub fn read_all(&self) -> io::Result<Vec<u8>> {
        let mut v = Vec::with_capacity(usize::try_from(self.size()).unwrap_or(0).min(1 << 24));
        self.open()?.read_to_end(&mut v)?;
        Ok(v)
    }
}

impl From<Vec<u8>> for Content {
    fn from(v: Vec<u8>) -> Content {
        Content::Bytes(v.into())
    }
}

impl From<&[u8]> for Content {
    fn from(v: &[u8]) -> Content {
        Content::Bytes(v.into())
    }
}

impl From<&str> for Content {
    fn from(v: &str) -> Content {
        Content::Bytes(v.as_bytes().into())
    }
}

impl From<String> for Content {
    fn from(v: String) -> Content {
        Content::Bytes(v.into_bytes().into())
    }
}

/// `lseek` with SEEK_DATA/SEEK_HOLE; `None` past the last data (ENXIO).
fn seek(file: &File, pos: u64, whence: libc::c_int) -> io::Result<Option<u64>> {
    use std::os::fd::AsRawFd;
    let off = libc::off_t::try_from(pos).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: lseek on a descriptor we own; it only moves that descriptor's offset.
    let r = unsafe { libc::lseek(file.as_raw_fd(), off, whence) };
    if r >= 0 {
        return Ok(Some(r as u64));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENXIO) => Ok(None),
        // Filesystems without hole reporting: treat everything as data.
        Some(libc::EINVAL) if whence == libc::SEEK_DATA => Ok(Some(pos)),
        _ => Err(err),
    }
}

enum Source {
    Bytes(Arc<[u8]>),
    File { file: Arc<File>, base: u64 },
    Spool { spool: Arc<Spool>, base: u64 },
    Runs { file: File, runs: Arc<[Run]> },
}

/// A streaming reader over a [`Content`], by positioned reads (no shared cursor).
pub struct ContentReader {
    source: Source,
    pos: u64,
    size: u64,
}

impl ContentReader {
    /// Moves to byte `pos` of the content (clamped to its size).
    pub fn set_position(&mut self, pos: u64) {
        self.pos = pos.min(self.size);
    }
}

impl Read for ContentReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.size - self.pos;
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let buf = &mut buf[..want];
        let n = match &self.source {
            Source::Bytes(b) => {
                let start = self.pos as usize;
                buf.copy_from_slice(&b[start..start + want]);
                want
            }
            Source::File { file, base } => file.read_at(buf, base + self.pos)?,
            Source::Spool { spool, base } => spool.file.read_at(buf, base + self.pos)?,
            Source::Runs { file, runs } => read_runs(file, runs, self.pos, buf)?,
        };
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file is shorter than recorded"));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// Reads at logical `pos` from runs; a hole yields zeros up to the next run.
fn read_runs(file: &File, runs: &[Run], pos: u64, buf: &mut [u8]) -> io::Result<usize> {
    let idx = runs.partition_point(|r| r.logical + r.len <= pos);
    match runs.get(idx) {
        Some(r) if r.logical <= pos => {
            let within = pos - r.logical;
            let n = buf.len().min(usize::try_from(r.len - within).unwrap_or(usize::MAX));
            file.read_at(&mut buf[..n], r.physical + within)
        }
        next => {
            let hole_end = next.map_or(u64::MAX, |r| r.logical);
            let n = buf.len().min(usize::try_from(hole_end - pos).unwrap_or(usize::MAX));
            buf[..n].fill(0);
            Ok(n)
        }
    }
}

/// An append-only temporary file that holds the contents of streamed (compressed) tar
/// members. It is deleted when the last reference goes away.
#[derive(Debug)]
pub struct Spool {
    file: File,
    len: Mutex<u64>,
}

impl Spool {
    /// A new, empty spool in the system's temporary directory.
    pub fn new() -> io::Result<Spool> {
        Ok(Spool { file: tempfile::tempfile()?, len: Mutex::new(0) })
    }

    /// Copies `src` to its end, to the end of the spool; returns the offset and length.
    pub fn append(&self, src: &mut impl Read) -> io::Result<(u64, u64)> {
        let mut len = self.len.lock().unwrap_or_else(|e| e.into_inner());
        let offset = *len;
        let mut w = io::BufWriter::with_capacity(1 << 20, &self.file);
        let copied = io::copy(src, &mut w)?;
        w.flush()?;
        *len += copied;
        Ok((offset, copied))
    }
}
