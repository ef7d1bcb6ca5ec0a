//! Nix's base32: the alphabet without `e o u t`, read from the *last* byte first.
//!
//! This is not RFC 4648 base32. Nix prints the digest so that the most significant
//! 5-bit group of the final byte comes first, which is why a plain base32 crate gives
//! different strings. Store path hashes and `sha256:` NAR hashes both use it.

/// The 32 characters Nix uses, in value order.
pub const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Length of the Nix base32 text for `n` bytes.
pub const fn encoded_len(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n * 8 - 1) / 5 + 1
    }
}

/// Encodes `bytes` as Nix base32.
///
/// ```
/// assert_eq!(forge_store::base32::encode(&[0xff]), "7z");
/// ```
pub fn encode(bytes: &[u8]) -> String {
    let len = encoded_len(bytes.len());
    let mut out = String::with_capacity(len);
    for n in (0..len).rev() {
        let b = n * 5;
        let (i, j) = (b / 8, b % 8);
        let low = bytes[i] as u16 >> j;
        let high = if i + 1 < bytes.len() { (bytes[i + 1] as u16) << (8 - j) } else { 0 };
        out.push(ALPHABET[((low | high) & 0x1f) as usize] as char);
    }
    out
}

/// Decodes Nix base32 text of exactly `encoded_len(out_len)` characters.
///
/// Returns `None` on a character outside the alphabet, a wrong length, or bits set
/// beyond the last byte (Nix rejects those too, so every digest has one spelling).
pub fn decode(text: &str, out_len: usize) -> Option<Vec<u8>> {
    if text.len() != encoded_len(out_len) {
        return None;
    }
    let mut out = vec![0u8; out_len];
    for (n, c) in text.bytes().rev().enumerate() {
        let digit = ALPHABET.iter().position(|&a| a == c)? as u16;
        let b = n * 5;
        let (i, j) = (b / 8, b % 8);
        let shifted = digit << j;
        out[i] |= shifted as u8;
        let carry = (shifted >> 8) as u8;
        if i + 1 < out_len {
            out[i + 1] |= carry;
        } else if carry != 0 {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Golden values printed by `nix-hash --type sha256 --to-base32`.
    #[test]
    fn sha256_of_empty_string_matches_nix() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let bytes: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect();
        assert_eq!(encode(&bytes), "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73");
    }

    #[test]
    fn decode_inverts_encode_for_every_length() {
        for len in 0..40usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(decode(&encode(&bytes), len).unwrap(), bytes);
        }
    }

    #[test]
    fn decode_rejects_foreign_characters_and_lengths() {
        assert!(decode("7e", 1).is_none(), "'e' is not in Nix's alphabet");
        assert!(decode("7z0", 1).is_none());
        assert!(decode("zz", 1).is_none(), "bits past the last byte");
    }
}
