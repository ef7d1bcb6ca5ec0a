//! apk version ordering, token for token as apk-tools 2.x (`src/version.c`) orders them.
//!
//! A version is a sequence of tokens: numbers separated by `.`, at most one lower-case
//! letter after a number, suffixes `_alpha _beta _pre _rc` (sorting before the release)
//! and `_cvs _svn _git _hg _p` (after it), each with an optional number, and a final
//! `-rN`. Two versions compare token by token; when one runs out first, the longer one is
//! greater unless its next token is a pre-release suffix. A component after `.` that
//! starts with zeros is compared as minus the number of zeros followed by the rest, so
//! `1.05 < 1.5` and `1.00 < 1.0`.

use std::cmp::Ordering;

/// The kind of the token about to be read. The order matters: apk rejects a token kind
/// lower than the one before it (except the few transitions in [`allowed_backwards`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Invalid,
    DigitOrZero,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    RevisionNo,
    End,
}

const PRE_SUFFIXES: [&[u8]; 4] = [b"alpha", b"beta", b"pre", b"rc"];
const POST_SUFFIXES: [&[u8]; 5] = [b"cvs", b"svn", b"git", b"hg", b"p"];

fn allowed_backwards(next: Kind, prev: Kind) -> bool {
    matches!(
        (next, prev),
        (Kind::DigitOrZero, Kind::Digit) | (Kind::Suffix, Kind::SuffixNo) | (Kind::Digit, Kind::Letter)
    )
}

/// Decides the kind of the next token from its first character, consuming a separator.
fn next_kind(prev: Kind, s: &mut &[u8]) -> Kind {
    let next = match s.first().copied() {
        None | Some(0) => return Kind::End,
        Some(c) if matches!(prev, Kind::Digit | Kind::DigitOrZero) && c.is_ascii_lowercase() => Kind::Letter,
        Some(c) if prev == Kind::Letter && c.is_ascii_digit() => Kind::Digit,
        Some(c) if prev == Kind::Suffix && c.is_ascii_digit() => Kind::SuffixNo,
        Some(c) => {
            let kind = match c {
                b'.' => Kind::DigitOrZero,
                b'_' => Kind::Suffix,
                b'-' if s.get(1) == Some(&b'r') => {
                    *s = &s[1..];
                    Kind::RevisionNo
                }
                _ => Kind::Invalid,
            };
            *s = &s[1..];
            kind
        }
    };
    if next < prev && !allowed_backwards(next, prev) {
        Kind::Invalid
    } else {
        next
    }
}

/// Reads one token of kind `*kind` and returns its value; updates `*kind` to the kind of
/// the following token.
fn take(kind: &mut Kind, s: &mut &[u8]) -> i64 {
    if s.is_empty() {
        *kind = Kind::End;
        return 0;
    }
    let mut after_zeros = false;
    let (value, used) = match *kind {
        Kind::DigitOrZero if s[0] == b'0' => {
            let zeros = s.iter().take_while(|&&c| c == b'0').count();
            after_zeros = true;
            (-(zeros as i64), zeros)
        }
        Kind::DigitOrZero | Kind::Digit | Kind::SuffixNo | Kind::RevisionNo => {
            let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
            let v = s[..digits].iter().fold(0i64, |v, &c| v.saturating_mul(10).saturating_add(i64::from(c - b'0')));
            (v, digits)
        }
        Kind::Letter => (i64::from(s[0]), 1),
        Kind::Suffix => match suffix_value(s) {
            Some(found) => found,
            None => {
                *kind = Kind::Invalid;
                return -1;
            }
        },
        Kind::Invalid | Kind::End => {
            *kind = Kind::Invalid;
            return -1;
        }
    };
    *s = &s[used..];
    *kind = if s.is_empty() {
        Kind::End
    } else if after_zeros && s[0].is_ascii_digit() {
        Kind::Digit
    } else if after_zeros {
        // apk-tools 2.x's version.c reads an empty number token here, which makes
        // `1.0_rc1 > 1.0`; its own test data and later versions order pre-releases first,
        // so the next kind is decided directly.
        next_kind(Kind::Digit, s)
    } else {
        next_kind(*kind, s)
    };
    value
}

/// Pre-release suffixes are negative (before the release), post-release ones are >= 0.
fn suffix_value(s: &[u8]) -> Option<(i64, usize)> {
    if let Some(i) = PRE_SUFFIXES.iter().position(|p| s.starts_with(p)) {
        return Some((i as i64 - PRE_SUFFIXES.len() as i64, PRE_SUFFIXES[i].len()));
    }
    POST_SUFFIXES.iter().position(|p| s.starts_with(p)).map(|i| (i as i64, POST_SUFFIXES[i].len()))
}

/// Whether `v` is a well-formed apk version (`apk version --check`).
pub fn is_valid(v: &str) -> bool {
    let mut kind = Kind::Digit;
    let mut s = v.as_bytes();
    while kind != Kind::End && kind != Kind::Invalid {
        take(&mut kind, &mut s);
    }
    kind == Kind::End
}

/// Compares two versions as apk does. With `fuzzy` (the `~` operator), a version that
/// agrees with `b` on every token `b` has (or vice versa) compares equal: `1.2.3 ~ 1.2`.
pub fn compare_fuzzy(a: &str, b: &str, fuzzy: bool) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    let (mut at, mut bt) = (Kind::Digit, Kind::Digit);
    let (mut av, mut bv) = (0i64, 0i64);
    while at == bt && at != Kind::End && at != Kind::Invalid && av == bv {
        av = take(&mut at, &mut a);
        bv = take(&mut bt, &mut b);
    }
    if av != bv {
        return av.cmp(&bv);
    }
    if at == bt || fuzzy {
        return Ordering::Equal;
    }
    // Same tokens so far and one version goes on: it is the greater one, unless what
    // follows is a pre-release suffix.
    if at == Kind::Suffix && take(&mut at.clone(), &mut a) < 0 {
        return Ordering::Less;
    }
    if bt == Kind::Suffix && take(&mut bt.clone(), &mut b) < 0 {
        return Ordering::Greater;
    }
    // A later token kind means "ran out earlier": End is the highest kind.
    bt.cmp(&at)
}

/// Compares two versions as apk does (`apk version -t a b`).
///
/// ```
/// use std::cmp::Ordering::*;
/// use forge_engine::apk::version::compare;
/// assert_eq!(compare("1.2.10", "1.2.9"), Greater); // numbers, not text
/// assert_eq!(compare("1.0_rc1", "1.0"), Less); // pre-releases first
/// assert_eq!(compare("1.0-r1", "1.0-r0"), Greater); // then the package release
/// assert_eq!(compare("1.0_p1", "1.0"), Greater); // patch levels after
/// ```
pub fn compare(a: &str, b: &str) -> Ordering {
    compare_fuzzy(a, b, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    /// Vectors built from the rules in apk-tools' version.c (and Gentoo's version spec it
    /// follows). Each is checked in both directions.
    const VECTORS: &[(&str, Ordering, &str)] = &[
        ("1", Equal, "1"),
        ("1.0", Greater, "1"),
        ("1.0", Less, "1.1"),
        ("1.9", Less, "1.10"),
        ("1.10", Greater, "1.9.9"),
        ("2", Greater, "1.99999"),
        ("1.2.3", Less, "1.2.3.0"),
        // Leading zeros after a dot: minus the count of zeros, then the rest.
        ("1.05", Less, "1.5"),
        ("1.01", Less, "1.1"),
        ("1.00", Less, "1.0"),
        ("1.001", Less, "1.01"),
        ("1.0", Less, "1.01"),
        ("0.1", Greater, "0.01"),
        // A leading zero of the first component is a plain number.
        ("01", Equal, "1"),
        // Letters after a number.
        ("1.2a", Greater, "1.2"),
        ("1.2a", Less, "1.2b"),
        ("1.2z", Less, "1.3"),
        ("1.2b", Less, "1.2.1"),
        // Pre-release suffixes sort before the release, in the order alpha beta pre rc.
        ("1.0_alpha", Less, "1.0"),
        ("1.0_alpha", Less, "1.0_beta"),
        ("1.0_beta", Less, "1.0_pre"),
        ("1.0_pre", Less, "1.0_rc"),
        ("1.0_rc", Less, "1.0"),
        ("1.0_rc1", Less, "1.0_rc2"),
        ("1.0_rc9", Less, "1.0_rc10"),
        ("1.0_alpha1", Greater, "1.0_alpha"),
        ("1.0_rc1", Less, "1.0"),
        // Post-release suffixes sort after it, in the order cvs svn git hg p.
        ("1.0_cvs", Greater, "1.0"),
        ("1.0_cvs", Less, "1.0_svn"),
        ("1.0_svn", Less, "1.0_git"),
        ("1.0_git", Less, "1.0_hg"),
        ("1.0_hg", Less, "1.0_p"),
        ("1.0_p1", Less, "1.0_p2"),
        ("1.0_p1", Greater, "1.0"),
        ("1.0_p1", Less, "1.0.1"),
        ("1.0_git20220101", Less, "1.0_git20220102"),
        ("0_git20220101", Less, "0.1"),
        // Chained suffixes.
        ("1.0_alpha_p1", Greater, "1.0_alpha"),
        ("1.0_rc1_p2", Less, "1.0"),
        ("1.0_p1_rc1", Less, "1.0_p1"),
        // Revisions.
        ("1.0-r0", Greater, "1.0"),
        ("1.0-r1", Greater, "1.0-r0"),
        ("1.0-r10", Greater, "1.0-r9"),
        ("1.0-r5", Less, "1.0.1-r0"),
        ("1.0_rc1-r5", Less, "1.0-r0"),
        ("1.0_p1-r0", Greater, "1.0-r99"),
        ("1.0a-r1", Greater, "1.0a-r0"),
        ("3.2.0-r23", Greater, "3.2.0-r22"),
        ("3.2.0-r23", Less, "3.3.0-r0"),
        ("1.0_rc1", Less, "1.0.0"),
        ("3.0.0_alpha17", Less, "3.0.0"),
        ("1.0a", Greater, "1.0"),
        ("0.1.0_alpha_pre2", Less, "0.1.0_alpha"),
        ("1.0.0_pre20191002222144-r0", Less, "1.0.0_pre20210530193627-r0"),
        ("1.0_p10-r0", Greater, "1.0_p9-r0"),
        ("006", Greater, "1.0.0"),
        ("2.12r-r4", Less, "2.12r-r5"),
        // Real Alpine versions.
        ("1.35.0-r17", Less, "1.35.0-r18"),
        ("2.12.9-r3", Less, "2.12.10-r0"),
        ("5.8.1-r4", Greater, "5.8-r4"),
        ("2022a-r0", Greater, "2021e-r0"),
    ];

    #[test]
    fn ordering_vectors_hold_in_both_directions() {
        for &(a, want, b) in VECTORS {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn fuzzy_match_accepts_versions_that_extend_the_pattern() {
        assert_eq!(compare_fuzzy("1.2.3", "1.2", true), Equal);
        assert_eq!(compare_fuzzy("1.2", "1.2", true), Equal);
        assert_eq!(compare_fuzzy("1.2-r4", "1.2", true), Equal);
        assert_eq!(compare_fuzzy("1.3", "1.2", true), Greater);
        assert_eq!(compare_fuzzy("1.20", "1.2", true), Greater);
        assert_eq!(compare_fuzzy("1.1.9", "1.2", true), Less);
        // Tricky, but what apk-tools does: the shorter version matches too.
        assert_eq!(compare_fuzzy("1", "1.2", true), Equal);
    }

    #[test]
    fn validity_follows_the_token_grammar() {
        for ok in ["1", "1.0", "1.2.3a", "1.0_rc1", "1.0_alpha_p2-r3", "0_git20220101-r0", "2022a-r0", "1.0-r0"] {
            assert!(is_valid(ok), "{ok} should be valid");
        }
        // apk's grammar is permissive where a token may be empty: these pass its check.
        for odd in ["", "a", "1..2", "1.0_", "1.0-r", "-r1"] {
            assert!(is_valid(odd), "{odd:?} is accepted by apk-tools");
        }
        for bad in ["1.0-", "1.0_foo", "1.0ab", "1.0-r1.2", "1.0a.3", "1.0 ", "1.0_rc1.2", "1.0-r1_p1", "1.0-x"] {
            assert!(!is_valid(bad), "{bad} should be invalid");
        }
    }

    #[test]
    fn huge_numbers_do_not_overflow() {
        assert_eq!(compare("99999999999999999999999999", "1"), Greater);
        assert!(is_valid("99999999999999999999999999"));
    }
}
