//! Content hashes with the spellings Nix and SRI use.
//!
//! A [`Hash`](struct@Hash) prints as `sha256:<nix base32>` by default (what `nix-hash --base32`
//! and the store database use) and parses every spelling a user may paste:
//! `sha256:<base32>`, `sha256:<hex>`, and SRI `sha256-<base64>`.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use sha2::Digest as _;

use crate::base32;
use crate::error::{Error, Result};

/// A hash algorithm forge accepts for content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algo {
    /// SHA-256 (32 bytes).
    Sha256,
    /// SHA-512 (64 bytes).
    Sha512,
}

impl Algo {
    /// Digest length in bytes.
    #[allow(clippy::len_without_is_empty)] // a digest is never empty
    pub const fn len(self) -> usize {
        match self {
            Algo::Sha256 => 32,
            Algo::Sha512 => 64,
        }
    }

    /// The name as written in hashes: `sha256`, `sha512`.
    pub const fn name(self) -> &'static str {
        match self {
            Algo::Sha256 => "sha256",
            Algo::Sha512 => "sha512",
        }
    }

    /// A fresh streaming hasher for this algorithm.
    pub fn hasher(self) -> Hasher {
        match self {
            Algo::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algo::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }
}

impl FromStr for Algo {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sha256" => Ok(Algo::Sha256),
            "sha512" => Ok(Algo::Sha512),
            _ => Err(Error::BadHash { text: s.to_owned(), why: "the algorithm must be sha256 or sha512".into() }),
        }
    }
}

/// A streaming hasher over one of the [`Algo`]s.
#[derive(Clone)]
pub enum Hasher {
    /// Hashing with SHA-256.
    Sha256(sha2::Sha256),
    /// Hashing with SHA-512.
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// Feeds `data` to the hasher.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The hash of everything fed so far.
    pub fn finish(self) -> Hash {
        match self {
            Hasher::Sha256(h) => Hash { algo: Algo::Sha256, digest: h.finalize().to_vec() },
            Hasher::Sha512(h) => Hash { algo: Algo::Sha512, digest: h.finalize().to_vec() },
        }
    }
}

impl std::io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A digest together with its algorithm.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash {
    algo: Algo,
    digest: Vec<u8>,
}

impl Hash {
    /// Wraps a digest; fails when its length does not fit the algorithm.
    pub fn new(algo: Algo, digest: Vec<u8>) -> Result<Self> {
        if digest.len() != algo.len() {
            return Err(Error::BadHash {
                text: hex(&digest),
                why: format!("a {} digest has {} bytes, not {}", algo.name(), algo.len(), digest.len()),
            });
        }
        Ok(Hash { algo, digest })
    }

    /// Hashes `data` in one go.
    ///
    /// ```
    /// use forge_store::hash::{Algo, Hash};
    /// let h = Hash::of(Algo::Sha256, b"");
    /// assert_eq!(h.to_string(), "sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73");
    /// ```
    pub fn of(algo: Algo, data: &[u8]) -> Self {
        let mut h = algo.hasher();
        h.update(data);
        h.finish()
    }

    /// Which algorithm made this hash.
    pub fn algo(&self) -> Algo {
        self.algo
    }

    /// The raw digest bytes.
    pub fn digest(&self) -> &[u8] {
        &self.digest
    }

    /// `<nix base32>` without the algorithm prefix.
    pub fn to_base32(&self) -> String {
        base32::encode(&self.digest)
    }

    /// Lower-case hex without the algorithm prefix.
    pub fn to_hex(&self) -> String {
        hex(&self.digest)
    }

    /// Subresource-integrity form: `sha256-<base64>`.
    pub fn to_sri(&self) -> String {
        format!("{}-{}", self.algo.name(), base64::engine::general_purpose::STANDARD.encode(&self.digest))
    }

    /// Parses the digest part in whichever encoding its length says.
    pub fn parse_digest(algo: Algo, text: &str) -> Result<Self> {
        let bad = |why: &str| Error::BadHash { text: text.to_owned(), why: why.to_owned() };
        let digest = if text.len() == 2 * algo.len() {
            unhex(text).ok_or_else(|| bad("not valid hex"))?
        } else if text.len() == base32::encoded_len(algo.len()) {
            base32::decode(text, algo.len()).ok_or_else(|| bad("not valid Nix base32"))?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| bad("neither hex, Nix base32 nor base64 of the right length"))?
        };
        Hash::new(algo, digest)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algo.name(), self.to_base32())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Hash {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if let Some((algo, digest)) = s.split_once(':') {
            return Hash::parse_digest(algo.parse()?, digest);
        }
        if let Some((algo, digest)) = s.split_once('-') {
            return Hash::parse_digest(algo.parse()?, digest);
        }
        Err(Error::BadHash { text: s.to_owned(), why: "expected `sha256:<digest>` or `sha256-<base64>`".into() })
    }
}

impl serde::Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Parses hex (either case); `None` on odd length or a non-hex character.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len() / 2).map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_parses_to_the_same_hash() {
        let h = Hash::of(Algo::Sha256, b"abc");
        for text in [h.to_string(), format!("sha256:{}", h.to_hex()), h.to_sri()] {
            assert_eq!(text.parse::<Hash>().unwrap(), h, "{text}");
        }
    }

    #[test]
    fn sha512_has_nix_base32_of_103_chars() {
        let h = Hash::of(Algo::Sha512, b"abc");
        assert_eq!(h.to_base32().len(), 103);
        assert_eq!(h.to_string().parse::<Hash>().unwrap(), h);
    }

    #[test]
    fn garbage_is_refused_with_the_text_in_the_error() {
        let err = "sha256:nothex".parse::<Hash>().unwrap_err().to_string();
        assert!(err.contains("nothex"), "{err}");
        assert!("md5:00".parse::<Hash>().is_err());
    }
}
