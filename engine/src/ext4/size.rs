//! Sizes as people write them: `4500M`, `2G`, `512K`, `1048576`.

use super::Ext4Error;

/// Parses a size in bytes with an optional binary suffix `K`, `M`, `G`, `T` (also `KiB`,
/// `MiB`..., `KB`, `MB`... all meaning powers of 1024, as `mke2fs` reads them).
///
/// ```
/// use forge_engine::ext4::parse_size;
/// assert_eq!(parse_size("4500M").unwrap(), 4500 << 20);
/// assert_eq!(parse_size("2G").unwrap(), 2 << 30);
/// assert!(parse_size("2X").is_err());
/// ```
pub fn parse_size(text: &str) -> Result<u64, Ext4Error> {
    let bad = |reason| Ext4Error::Size { text: text.to_owned(), reason };
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad("it does not start with a number"))?;
    let shift = match suffix.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(bad("unknown suffix (use K, M, G or T)")),
    };
    n.checked_mul(1 << shift).ok_or_else(|| bad("it is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("64k").unwrap(), 65536);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert!(parse_size("").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("99999999999999999999T").is_err());
    }
}
