//! Concatenated gzip streams (apk v2 packages and APKINDEX files): where each stream
//! starts and ends in the file, and its decompressed bytes. Signatures and checksums are
//! over a stream *as stored*, so the boundaries must be exact.

use std::io::Read;
use std::ops::Range;

use flate2::bufread::GzDecoder;

use super::{Error, Result};

/// One gzip stream: its byte range in the file and its decompressed content.
#[derive(Debug, Clone)]
pub struct Stream {
    /// Its bytes in the file.
    pub range: Range<usize>,
    /// Its decompressed content.
    pub content: Vec<u8>,
}

/// The most a stream may decompress to; far above any real apk part, it stops a
/// decompression bomb from exhausting memory.
pub const MAX_DECOMPRESSED: u64 = 4 << 30;

/// Splits `bytes` into its gzip streams. Trailing bytes that are not a gzip stream are an
/// error, as is an empty input.
pub fn split(bytes: &[u8], what: &str) -> Result<Vec<Stream>> {
    let mut streams = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        if !rest.starts_with(&[0x1f, 0x8b]) {
            return Err(Error::format(what, format!("byte {offset} is not the start of a gzip stream")));
        }
        // bufread::GzDecoder consumes its input exactly up to the end of the gzip trailer,
        // so what is left in the slice is where the next stream starts.
        let mut decoder = GzDecoder::new(rest);
        let mut content = Vec::new();
        let read = (&mut decoder).take(MAX_DECOMPRESSED + 1).read_to_end(&mut content);
        read.map_err(|e| Error::format(what, format!("gzip stream {} at byte {offset}: {e}", streams.len() + 1)))?;
        if content.len() as u64 > MAX_DECOMPRESSED {
            return Err(Error::format(what, format!("gzip stream at byte {offset} decompresses to over 4 GiB")));
        }
        let used = rest.len() - decoder.into_inner().len();
        if used == 0 {
            return Err(Error::format(what, format!("empty gzip stream at byte {offset}")));
        }
        streams.push(Stream { range: offset..offset + used, content });
        offset += used;
    }
    if streams.is_empty() {
        return Err(Error::format(what, "empty file"));
    }
    Ok(streams)
}

/// Gzip-compresses `data` deterministically (no name, mtime 0, best compression), the way
/// abuild's `gzip -n -9` does.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::best());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exact_boundaries_of_concatenated_streams() {
        let (a, b, c) = (gzip(b"first"), gzip(&vec![7u8; 100_000]), gzip(b""));
        let all = [a.clone(), b.clone(), c.clone()].concat();
        let s = split(&all, "t").unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].range, 0..a.len());
        assert_eq!(s[1].range, a.len()..a.len() + b.len());
        assert_eq!(s[2].range.end, all.len());
        assert_eq!(s[0].content, b"first");
        assert_eq!(s[1].content.len(), 100_000);
        assert!(s[2].content.is_empty());
    }

    #[test]
    fn garbage_truncation_and_empty_input_are_errors() {
        let a = gzip(b"hello world");
        assert!(split(b"", "t").is_err());
        assert!(split(&[a.clone(), b"junk".to_vec()].concat(), "t").unwrap_err().to_string().contains("byte"));
        assert!(split(&a[..a.len() - 3], "t").is_err());
        let mut flipped = a.clone();
        let n = flipped.len();
        flipped[n - 6] ^= 1; // the CRC
        assert!(split(&flipped, "t").is_err());
    }
}
