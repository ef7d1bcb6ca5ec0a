//! Store paths: `/forge/store/<32 chars of Nix base32>-<name>`.
//!
//! The hash part is computed exactly as Nix computes it (`makeStorePath`): the
//! sha256 of a fingerprint `<type>:<algo>:<hex digest>:<store dir>:<name>`, folded
//! to 160 bits by XOR and printed in Nix base32. Only the store directory differs
//! (`/forge/store`), so paths never collide with a Nix store on the same machine.

use std::fmt;
use std::str::FromStr;

use crate::base32;
use crate::error::{Error, Result};
use crate::hash::{Algo, Hash};

/// The logical store directory every build sees, wherever the store lives on disk.
pub const STORE_DIR: &str = "/forge/store";

/// Bytes in the hash part of a store path (160 bits).
pub const HASH_BYTES: usize = 20;
/// Characters in the hash part of a store path.
pub const HASH_CHARS: usize = 32;
/// Nix limits names to 211 bytes so the whole base name stays under 255.
pub const MAX_NAME_LEN: usize = 211;

/// A store path, held as its hash part and name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorePath {
    digest: [u8; HASH_BYTES],
    name: String,
}

impl StorePath {
    /// Computes a store path the way Nix's `makeStorePath` does.
    ///
    /// `kind` is the fingerprint's type: `source` for added trees (followed by
    /// `:<reference>` for each reference), `output:out` for derivation outputs.
    ///
    /// ```
    /// use forge_store::{hash::{Algo, Hash}, path::StorePath};
    /// let nar = Hash::of(Algo::Sha256, b"nar bytes");
    /// let p = StorePath::make("source", &nar, "hello").unwrap();
    /// assert!(p.to_string().starts_with("/forge/store/"));
    /// assert!(p.to_string().ends_with("-hello"));
    /// ```
    pub fn make(kind: &str, inner: &Hash, name: &str) -> Result<Self> {
        validate_name(name)?;
        let fingerprint = format!("{kind}:{}:{}:{STORE_DIR}:{name}", inner.algo().name(), inner.to_hex());
        Ok(StorePath {
            digest: compress(Hash::of(Algo::Sha256, fingerprint.as_bytes()).digest()),
            name: name.to_owned(),
        })
    }

    /// The path of a tree added by content (`nix-store --add` semantics): the
    /// fingerprint type is `source` plus each reference, sorted.
    pub fn for_source(nar_hash: &Hash, name: &str, references: &[StorePath]) -> Result<Self> {
        let mut refs: Vec<String> = references.iter().map(|r| r.to_string()).collect();
        refs.sort();
        let kind = std::iter::once("source".to_owned()).chain(refs).collect::<Vec<_>>().join(":");
        StorePath::make(&kind, nar_hash, name)
    }

    /// The path of a flat fixed-output file (Nix's `fixed:out:<algo>:<hex>:`).
    pub fn for_flat_file(file_hash: &Hash, name: &str) -> Result<Self> {
        let inner = format!("fixed:out:{}:{}:", file_hash.algo().name(), file_hash.to_hex());
        StorePath::make("output:out", &Hash::of(Algo::Sha256, inner.as_bytes()), name)
    }

    /// Builds a path from its parts (for example from a derivation's output hash).
    pub fn from_parts(digest: [u8; HASH_BYTES], name: &str) -> Result<Self> {
        validate_name(name)?;
        Ok(StorePath { digest, name: name.to_owned() })
    }

    /// Parses a base name `<hash>-<name>` (no directory).
    pub fn from_base_name(base: &str) -> Result<Self> {
        let bad = |why: &str| Error::BadStorePath { path: base.to_owned(), why: why.to_owned() };
        let (hash, name) = base.split_at_checked(HASH_CHARS).ok_or_else(|| bad("too short"))?;
        let name = name.strip_prefix('-').ok_or_else(|| bad("expected `-` after the 32-character hash"))?;
        let digest = base32::decode(hash, HASH_BYTES).ok_or_else(|| bad("the hash part is not Nix base32"))?;
        let digest: [u8; HASH_BYTES] = digest.try_into().map_err(|_| bad("wrong hash length"))?;
        validate_name(name).map_err(|_| bad("invalid name"))?;
        Ok(StorePath { digest, name: name.to_owned() })
    }

    /// The 32-character hash part.
    pub fn hash_part(&self) -> String {
        base32::encode(&self.digest)
    }

    /// The 20-byte digest the hash part encodes.
    pub fn digest(&self) -> &[u8; HASH_BYTES] {
        &self.digest
    }

    /// The name part, after the hash and `-`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `<hash>-<name>`: the entry's name inside the store directory.
    pub fn base_name(&self) -> String {
        format!("{}-{}", self.hash_part(), self.name)
    }
}

impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{STORE_DIR}/{}-{}", self.hash_part(), self.name)
    }
}

impl fmt::Debug for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Parses a full path under `/forge/store`, or a bare base name.
impl FromStr for StorePath {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let base = match s.strip_prefix(STORE_DIR) {
            Some(rest) => rest.strip_prefix('/').unwrap_or(rest),
            None if s.starts_with('/') => {
                return Err(Error::BadStorePath { path: s.to_owned(), why: format!("not under {STORE_DIR}") })
            }
            None => s,
        };
        if base.contains('/') {
            return Err(Error::BadStorePath { path: s.to_owned(), why: "names a file inside a store path".into() });
        }
        StorePath::from_base_name(base)
    }
}

impl serde::Serialize for StorePath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for StorePath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Folds a digest to 160 bits by XOR, as Nix's `compressHash` does.
pub fn compress(digest: &[u8]) -> [u8; HASH_BYTES] {
    let mut out = [0u8; HASH_BYTES];
    for (i, b) in digest.iter().enumerate() {
        out[i % HASH_BYTES] ^= b;
    }
    out
}

/// Checks a store path name against Nix's rules: 1 to 211 bytes of
/// `[A-Za-z0-9+-._?=]`, not starting with `.`.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |why: &str| Error::BadName { name: name.to_owned(), why: why.to_owned() };
    if name.is_empty() {
        return Err(bad("a name cannot be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(bad("a name is at most 211 bytes"));
    }
    if name.starts_with('.') {
        return Err(bad("a name cannot start with `.`"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "+-._?=".contains(*c))) {
        return Err(bad(&format!("`{c}` is not allowed; use letters, digits and + - . _ ? =")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_give_the_same_path_and_names_matter() {
        let h = Hash::of(Algo::Sha256, b"x");
        assert_eq!(StorePath::make("source", &h, "a").unwrap(), StorePath::make("source", &h, "a").unwrap());
        assert_ne!(StorePath::make("source", &h, "a").unwrap(), StorePath::make("source", &h, "b").unwrap());
    }

    #[test]
    fn parse_round_trips_full_paths_and_base_names() {
        let p = StorePath::for_source(&Hash::of(Algo::Sha256, b"x"), "hello-2.12", &[]).unwrap();
        assert_eq!(p.to_string().parse::<StorePath>().unwrap(), p);
        assert_eq!(p.base_name().parse::<StorePath>().unwrap(), p);
        assert_eq!(p.hash_part().len(), HASH_CHARS);
    }

    #[test]
    fn references_change_the_path_in_any_order_the_same_way() {
        let h = Hash::of(Algo::Sha256, b"x");
        let r1 = StorePath::for_source(&h, "r1", &[]).unwrap();
        let r2 = StorePath::for_source(&h, "r2", &[]).unwrap();
        let a = StorePath::for_source(&h, "p", &[r1.clone(), r2.clone()]).unwrap();
        let b = StorePath::for_source(&h, "p", &[r2, r1]).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, StorePath::for_source(&h, "p", &[]).unwrap());
    }

    #[test]
    fn bad_names_and_paths_are_refused() {
        for name in ["", ".hidden", "a/b", "spa ce", &"x".repeat(212)] {
            assert!(validate_name(name).is_err(), "{name:?}");
        }
        assert!("/nix/store/00000000000000000000000000000000-x".parse::<StorePath>().is_err());
        assert!("/forge/store/short-x".parse::<StorePath>().is_err());
    }
}
