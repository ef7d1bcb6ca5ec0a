//! apk's `Q1` checksum spelling: `Q1` + base64 of a SHA-1 digest. It names a package
//! (`C:` in an index: the SHA-1 of the control stream as stored) and a file (`Z:` in the
//! installed database: the SHA-1 of its content).

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha1::{Digest, Sha1};

use super::{Error, Result};

/// A SHA-1 digest spelled `Q1<base64>`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Checksum(pub [u8; 20]);

impl Checksum {
    /// The SHA-1 of `bytes`.
    pub fn sha1_of(bytes: &[u8]) -> Checksum {
        Checksum(Sha1::digest(bytes).into())
    }

    /// Parses `Q1<base64 of 20 bytes>`; `what` names the input in the error.
    pub fn parse(s: &str, what: &str) -> Result<Checksum> {
        let bad = |reason: &str| Error::format(what, format!("checksum {s:?}: {reason}"));
        let b64 = s.strip_prefix("Q1").ok_or_else(|| bad("does not start with Q1 (only SHA-1 checksums are known)"))?;
        let bytes = STANDARD.decode(b64).map_err(|e| bad(&e.to_string()))?;
        let arr: [u8; 20] = bytes.try_into().map_err(|_| bad("not 20 bytes"))?;
        Ok(Checksum(arr))
    }

    /// Parses 40 hex digits (the spelling of `APK-TOOLS.checksum.SHA1` PAX headers).
    pub fn from_hex(s: &str, what: &str) -> Result<Checksum> {
        let bytes = hex_decode(s).ok_or_else(|| Error::format(what, format!("{s:?} is not a hex SHA-1")))?;
        let arr: [u8; 20] = bytes.try_into().map_err(|_| Error::format(what, format!("{s:?} is not 20 bytes")))?;
        Ok(Checksum(arr))
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Q1{}", STANDARD.encode(self.0))
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Decodes hex (either case); `None` when it is not hex.
pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes().chunks(2).map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q1_spelling_round_trips_and_matches_the_sha1_of_the_bytes() {
        // sha1("abc") = a9993e364706816aba3e25717850c26c9cd0d89d (FIPS 180 test vector).
        let c = Checksum::sha1_of(b"abc");
        assert_eq!(c.to_hex(), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(c.to_string(), "Q1qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
        assert_eq!(Checksum::parse(&c.to_string(), "t").unwrap(), c);
        assert_eq!(Checksum::from_hex(&c.to_hex(), "t").unwrap(), c);
    }

    #[test]
    fn malformed_checksums_are_rejected() {
        for bad in ["", "Q1", "Q2qZk+NkcGgWq6PiVxeFDCbJzQ2J0=", "Q1!!!!", "Q1qZk+NkcGgWq6PiVxeFDCbJzQ=="] {
            assert!(Checksum::parse(bad, "t").is_err(), "{bad}");
        }
        assert!(Checksum::from_hex("zz", "t").is_err());
        assert!(Checksum::from_hex("abcd", "t").is_err());
    }
}
