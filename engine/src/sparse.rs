//! Android sparse images (format 1.0, as `simg2img`/`img2simg` and fastboot read them):
//! a 28-byte header, then chunks of 4096-byte blocks that are RAW (the bytes), FILL (one
//! repeated 32-bit word) or DONT_CARE (nothing: the device keeps whatever was there).
//!
//! DONT_CARE is only used for blocks an ext4 image marks free in its block bitmaps and
//! that are zero, so flashing never leaves stale bytes where a file, inode table or bitmap
//! expects zeros; every other uniform block is a FILL chunk. `simg2img` of the result
//! gives the input back byte for byte.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The magic number a sparse image starts with (little-endian `3a ff 26 ed`).
pub const MAGIC: u32 = 0xED26_FF3A;
const BLOCK: usize = 4096;
const FILE_HEADER: usize = 28;
const CHUNK_HEADER: usize = 12;
const RAW: u16 = 0xCAC1;
const FILL: u16 = 0xCAC2;
const DONT_CARE: u16 = 0xCAC3;
const CRC32: u16 = 0xCAC4;
/// RAW chunks are cut at 128 MiB so no chunk is larger than a device's download buffer.
const MAX_RAW_BLOCKS: u32 = 32768;

/// What went wrong converting an image; each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum SparseError {
    /// An I/O error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// The file is not a valid sparse image.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// What a sparse image holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SparseStats {
    /// Blocks of the expanded image.
    pub blocks: u64,
    /// Chunks in the file.
    pub chunks: u32,
    /// Blocks stored as data.
    pub raw_blocks: u64,
    /// Blocks stored as a 4-byte fill pattern.
    pub fill_blocks: u64,
    /// Blocks left out (read as zeros).
    pub dont_care_blocks: u64,
}

/// Whether `head` starts like a sparse image.
pub fn is_sparse(head: &[u8]) -> bool {
    head.len() >= 4 && u32::from_le_bytes([head[0], head[1], head[2], head[3]]) == MAGIC
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Raw,
    Fill(u32),
    DontCare,
}

fn classify(block: &[u8], free: bool) -> Class {
    let word = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
    if !block.chunks_exact(4).all(|w| w == word.to_le_bytes()) {
        return Class::Raw;
    }
    if word == 0 && free {
        Class::DontCare
    } else {
        Class::Fill(word)
    }
}

/// Converts the raw image `input` to a sparse image at `out` (through a temporary file
/// renamed into place). When `input` is ext4 its block bitmaps decide which zero blocks
/// may be DONT_CARE; otherwise none are.
///
/// ```
/// use forge_engine::sparse::{write_sparse, SparseStats};
/// let dir = tempfile::tempdir()?;
/// let raw = dir.path().join("raw.img");
/// let mut bytes = vec![0u8; 3 * 4096];
/// bytes[4096..8192].fill(7);
/// bytes[8192] = 1;
/// std::fs::write(&raw, &bytes)?;
/// let stats = write_sparse(&raw, &dir.path().join("sparse.img"))?;
/// assert_eq!((stats.chunks, stats.fill_blocks, stats.raw_blocks), (3, 2, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_sparse(input: &Path, out: &Path) -> Result<SparseStats, SparseError> {
    let name = input.display().to_string();
    let io_in = |source| SparseError::Io { path: name.clone(), source };
    let file = File::open(input).map_err(io_in)?;
    let len = file.metadata().map_err(io_in)?.len();
    let used = crate::ext4::Ext4Image::open_file(input).ok().and_then(|img| img.used_blocks().ok());
    let out_name = out.display().to_string();
    let io_out = |source| SparseError::Io { path: out_name.clone(), source };
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_out)?;
    // Temporary files are private (0600); an image is an ordinary output file.
    tmp.as_file().set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644)).map_err(io_out)?;
    let stats = write_sparse_from(&file, len, used.as_deref(), tmp.as_file(), &name)?;
    tmp.persist(out).map_err(|e| io_out(e.error))?;
    Ok(stats)
}

/// Writes the sparse form of the first `len` bytes of `input` to `out`. `used[b]` says
/// whether block `b` is in use by the filesystem; free zero blocks become DONT_CARE.
pub fn write_sparse_from(
    input: &File,
    len: u64,
    used: Option<&[bool]>,
    out: &File,
    name: &str,
) -> Result<SparseStats, SparseError> {
    if !len.is_multiple_of(BLOCK as u64) {
        let reason = format!("its size {len} is not a multiple of {BLOCK} bytes");
        return Err(SparseError::Invalid { path: name.to_owned(), reason });
    }
    let blocks = len / BLOCK as u64;
    let total_blocks =
        u32::try_from(blocks).map_err(|_| SparseError::Invalid { path: name.into(), reason: "too large".into() })?;
    let io = |source| SparseError::Io { path: name.to_owned(), source };
    let mut w = Chunks {
        out: BufWriter::with_capacity(1 << 20, out),
        pos: 0,
        raw_headers: Vec::new(),
        stats: SparseStats::default(),
        current: None,
    };
    w.put(&header(total_blocks, 0)).map_err(io)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut block = 0u64;
    while block < blocks {
        let n = ((blocks - block) as usize).min(buf.len() / BLOCK);
        input.read_exact_at(&mut buf[..n * BLOCK], block * BLOCK as u64).map_err(io)?;
        for b in buf[..n * BLOCK].chunks_exact(BLOCK) {
            let free = used.is_some_and(|u| u.get(block as usize) == Some(&false));
            w.push(classify(b, free), b).map_err(io)?;
            block += 1;
        }
    }
    w.finish().map_err(io)?;
    let Chunks { out: bw, raw_headers, mut stats, .. } = w;
    bw.into_inner().map_err(|e| io(e.into_error()))?;
    for (at, count) in raw_headers {
        out.write_all_at(&chunk_header(RAW, count, CHUNK_HEADER as u64 + u64::from(count) * BLOCK as u64), at)
            .map_err(io)?;
    }
    stats.blocks = blocks;
    out.write_all_at(&header(total_blocks, stats.chunks), 0).map_err(io)?;
    Ok(stats)
}

fn header(total_blocks: u32, chunks: u32) -> [u8; FILE_HEADER] {
    let mut h = [0u8; FILE_HEADER];
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..6].copy_from_slice(&1u16.to_le_bytes());
    h[6..8].copy_from_slice(&0u16.to_le_bytes());
    h[8..10].copy_from_slice(&(FILE_HEADER as u16).to_le_bytes());
    h[10..12].copy_from_slice(&(CHUNK_HEADER as u16).to_le_bytes());
    h[12..16].copy_from_slice(&(BLOCK as u32).to_le_bytes());
    h[16..20].copy_from_slice(&total_blocks.to_le_bytes());
    h[20..24].copy_from_slice(&chunks.to_le_bytes());
    h
}

fn chunk_header(kind: u16, blocks: u32, total: u64) -> [u8; CHUNK_HEADER] {
    let mut h = [0u8; CHUNK_HEADER];
    h[0..2].copy_from_slice(&kind.to_le_bytes());
    h[4..8].copy_from_slice(&blocks.to_le_bytes());
    h[8..12].copy_from_slice(&(total as u32).to_le_bytes());
    h
}

/// Accumulates runs of blocks of one class into chunks. RAW data is streamed behind a
/// placeholder header that is patched at the end, so nothing large is held in memory.
struct Chunks<W: Write> {
    out: W,
    pos: u64,
    raw_headers: Vec<(u64, u32)>,
    stats: SparseStats,
    current: Option<(Class, u32)>,
}

impl<W: Write> Chunks<W> {
    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.pos += b.len() as u64;
        self.out.write_all(b)
    }

    fn push(&mut self, class: Class, block: &[u8]) -> io::Result<()> {
        match self.current {
            Some((c, n)) if c == class && !(c == Class::Raw && n >= MAX_RAW_BLOCKS) => {
                self.current = Some((c, n + 1));
            }
            _ => {
                self.finish()?;
                if class == Class::Raw {
                    self.raw_headers.push((self.pos, 0));
                    self.put(&[0; CHUNK_HEADER])?;
                }
                self.current = Some((class, 1));
            }
        }
        if class == Class::Raw {
            self.put(block)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        let Some((class, n)) = self.current.take() else { return Ok(()) };
        self.stats.chunks += 1;
        match class {
            Class::Raw => {
                self.stats.raw_blocks += u64::from(n);
                if let Some(last) = self.raw_headers.last_mut() {
                    last.1 = n;
                }
            }
            Class::Fill(word) => {
                self.stats.fill_blocks += u64::from(n);
                self.put(&chunk_header(FILL, n, (CHUNK_HEADER + 4) as u64))?;
                self.put(&word.to_le_bytes())?;
            }
            Class::DontCare => {
                self.stats.dont_care_blocks += u64::from(n);
                self.put(&chunk_header(DONT_CARE, n, CHUNK_HEADER as u64))?;
            }
        }
        Ok(())
    }
}

/// Expands the sparse image `input` to a raw image at `out` (what `simg2img` does);
/// returns its length. DONT_CARE blocks read as zeros. Malformed input is an error.
pub fn unsparse(input: &Path, out: &Path) -> Result<u64, SparseError> {
    let name = input.display().to_string();
    let io = |source| SparseError::Io { path: name.clone(), source };
    let bad = |reason: String| SparseError::Invalid { path: name.clone(), reason };
    let mut r = io::BufReader::with_capacity(1 << 20, File::open(input).map_err(io)?);
    let mut h = [0u8; FILE_HEADER];
    r.read_exact(&mut h).map_err(io)?;
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    if !is_sparse(&h) || u16_at(&h, 4) != 1 {
        return Err(bad("not an Android sparse image version 1".into()));
    }
    let (file_hdr, chunk_hdr, blk) = (u16_at(&h, 8) as usize, u16_at(&h, 10) as usize, u32_at(&h, 12) as u64);
    if file_hdr < FILE_HEADER || chunk_hdr < CHUNK_HEADER || blk == 0 || blk % 4 != 0 {
        return Err(bad("the header's sizes are invalid".into()));
    }
    io::copy(&mut (&mut r).take((file_hdr - FILE_HEADER) as u64), &mut io::sink()).map_err(io)?;
    let (total_blocks, chunks) = (u64::from(u32_at(&h, 16)), u32_at(&h, 20));
    let file = File::create(out).map_err(|source| SparseError::Io { path: out.display().to_string(), source })?;
    let wio = |source| SparseError::Io { path: out.display().to_string(), source };
    file.set_len(total_blocks * blk).map_err(wio)?;
    let mut block = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..chunks {
        let mut ch = vec![0u8; chunk_hdr];
        r.read_exact(&mut ch).map_err(io)?;
        let (kind, n, total) = (u16_at(&ch, 0), u64::from(u32_at(&ch, 4)), u64::from(u32_at(&ch, 8)));
        if block + n > total_blocks {
            return Err(bad(format!("chunk {i} runs past the image's {total_blocks} blocks")));
        }
        let body = total.checked_sub(chunk_hdr as u64).ok_or_else(|| bad(format!("chunk {i} is too short")))?;
        match kind {
            RAW if body == n * blk => {
                let mut left = body;
                let mut at = block * blk;
                while left > 0 {
                    let k = left.min(buf.len() as u64) as usize;
                    r.read_exact(&mut buf[..k]).map_err(io)?;
                    file.write_all_at(&buf[..k], at).map_err(wio)?;
                    (left, at) = (left - k as u64, at + k as u64);
                }
            }
            FILL if body == 4 => {
                let mut word = [0u8; 4];
                r.read_exact(&mut word).map_err(io)?;
                if word != [0; 4] {
                    let pattern: Vec<u8> = word.iter().copied().cycle().take(blk as usize).collect();
                    for b in block..block + n {
                        file.write_all_at(&pattern, b * blk).map_err(wio)?;
                    }
                }
            }
            DONT_CARE if body == 0 => {}
            CRC32 if body == 4 => {
                r.read_exact(&mut [0u8; 4]).map_err(io)?;
            }
            _ => return Err(bad(format!("chunk {i} (type {kind:#x}) is malformed"))),
        }
        block += n;
    }
    if block != total_blocks {
        return Err(bad(format!("the chunks cover {block} of {total_blocks} blocks")));
    }
    Ok(total_blocks * blk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_golden() {
        let h = header(256, 3);
        assert_eq!(
            h,
            [0x3a, 0xff, 0x26, 0xed, 1, 0, 0, 0, 28, 0, 12, 0, 0, 0x10, 0, 0, 0, 1, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(chunk_header(FILL, 2, 16), [0xc2, 0xca, 0, 0, 2, 0, 0, 0, 16, 0, 0, 0]);
    }

    #[test]
    fn blocks_are_classified_by_content_and_freedom() {
        let zero = vec![0u8; BLOCK];
        assert!(classify(&zero, true) == Class::DontCare);
        assert!(classify(&zero, false) == Class::Fill(0));
        let mut raw = zero.clone();
        raw[4095] = 1;
        assert!(classify(&raw, true) == Class::Raw);
        let ff = vec![0xffu8; BLOCK];
        assert!(classify(&ff, true) == Class::Fill(u32::MAX));
    }

    #[test]
    fn a_truncated_or_lying_sparse_image_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.img");
        let mut bytes = header(2, 1).to_vec();
        bytes.extend_from_slice(&chunk_header(RAW, 2, 12 + 4096));
        bytes.extend_from_slice(&[1; 4096]);
        std::fs::write(&p, &bytes).unwrap();
        assert!(unsparse(&p, &dir.path().join("o")).is_err());
        std::fs::write(&p, &bytes[..20]).unwrap();
        assert!(unsparse(&p, &dir.path().join("o")).is_err());
    }
}
