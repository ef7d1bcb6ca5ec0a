//! Reference scanning: which of a set of candidate store paths a tree mentions.
//!
//! As in Nix, a tree refers to a path when the 32-character hash part of that path
//! appears anywhere in the tree's NAR (file contents, symlink targets, names). The
//! scan is streaming: chunks may split a hash part, so the last 31 bytes of each
//! chunk are carried over to the next.

use std::collections::{BTreeSet, HashMap};

use crate::base32;
use crate::path::{StorePath, HASH_CHARS};

/// Finds the hash parts of candidate paths in a byte stream.
pub struct RefScanner {
    wanted: HashMap<[u8; HASH_CHARS], StorePath>,
    found: BTreeSet<StorePath>,
    /// The last `HASH_CHARS - 1` bytes seen, to catch hash parts across chunks.
    tail: Vec<u8>,
}

fn is_base32(b: u8) -> bool {
    base32::ALPHABET.contains(&b)
}

impl RefScanner {
    /// A scanner looking for `candidates`.
    pub fn new(candidates: &[StorePath]) -> Self {
        let wanted =
            candidates.iter().filter_map(|p| Some((p.hash_part().into_bytes().try_into().ok()?, p.clone()))).collect();
        RefScanner { wanted, found: BTreeSet::new(), tail: Vec::with_capacity(2 * HASH_CHARS) }
    }

    /// Scans the next piece of the stream.
    pub fn scan(&mut self, chunk: &[u8]) {
        if self.wanted.is_empty() {
            return;
        }
        let head = &chunk[..chunk.len().min(HASH_CHARS - 1)];
        let mut seam = std::mem::take(&mut self.tail);
        seam.extend_from_slice(head);
        self.search(&seam);
        self.search(chunk);
        // Keep the last HASH_CHARS - 1 bytes of (old tail + chunk).
        if chunk.len() >= HASH_CHARS - 1 {
            seam.clear();
            seam.extend_from_slice(&chunk[chunk.len() - (HASH_CHARS - 1)..]);
        } else {
            let start = seam.len().saturating_sub(HASH_CHARS - 1);
            seam.drain(..start);
        }
        self.tail = seam;
    }

    /// Nix's search: test a window from its end, and on a non-base32 byte jump past it.
    fn search(&mut self, s: &[u8]) {
        let mut i = 0;
        while i + HASH_CHARS <= s.len() {
            if let Some(j) = (0..HASH_CHARS).rev().find(|&j| !is_base32(s[i + j])) {
                i += j + 1;
                continue;
            }
            if let Some(p) = self.wanted.remove(&s[i..i + HASH_CHARS]) {
                self.found.insert(p);
            }
            i += 1;
        }
    }

    /// The candidates seen so far, sorted.
    pub fn found(self) -> Vec<StorePath> {
        self.found.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{Algo, Hash};

    fn path(name: &str) -> StorePath {
        StorePath::for_source(&Hash::of(Algo::Sha256, name.as_bytes()), name, &[]).unwrap()
    }

    #[test]
    fn finds_hash_parts_split_across_chunks_at_every_offset() {
        let (a, b) = (path("a"), path("b"));
        let text = format!("xx{}/bin/sh\0zz{}", a, b.hash_part());
        for cut in 0..text.len() {
            for cut2 in cut..text.len().min(cut + 40) {
                let mut s = RefScanner::new(&[a.clone(), b.clone(), path("c")]);
                let bytes = text.as_bytes();
                s.scan(&bytes[..cut]);
                s.scan(&bytes[cut..cut2]);
                s.scan(&bytes[cut2..]);
                assert_eq!(
                    s.found(),
                    vec![a.clone(), b.clone()].into_iter().collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>(),
                    "cut {cut} {cut2}"
                );
            }
        }
    }

    #[test]
    fn a_hash_part_with_one_char_changed_is_not_a_reference() {
        let a = path("a");
        let mut h = a.hash_part().into_bytes();
        h[5] = if h[5] == b'0' { b'1' } else { b'0' };
        let mut s = RefScanner::new(&[a]);
        s.scan(&h);
        assert!(s.found().is_empty());
    }
}
