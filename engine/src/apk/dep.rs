//! Dependencies as apk spells them: `[!]name[@tag][op version]`, with `op` one of
//! `=`, `<`, `>`, `<=`, `>=`, `~` (fuzzy: the version starts with these tokens) and `><`
//! (the version is a package checksum). Used for `D:`, `p:`, `i:`, `r:` and the world.

use std::cmp::Ordering;
use std::fmt;

use super::checksum::Checksum;
use super::{version, Error, Result};

/// Result bits of a version comparison, combined into an operator's mask (apk's values).
pub const EQUAL: u8 = 1;
/// The version is lower than the constraint's.
pub const LESS: u8 = 2;
/// The version is higher than the constraint's.
pub const GREATER: u8 = 4;
/// `~`: the version matches as a prefix.
pub const FUZZY: u8 = 8;
/// `><`: the "version" is a `Q1` checksum that must match the package's.
pub const CHECKSUM: u8 = LESS | GREATER;

/// A version constraint: the operator as written, its mask, and the version.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Constraint {
    /// The operator as written (`=`, `<=`, `~`, ...).
    pub op: String,
    /// The result bits ([`EQUAL`], [`LESS`], [`GREATER`], [`FUZZY`]) it accepts.
    pub mask: u8,
    /// The version compared with.
    pub version: String,
}

/// One dependency (or a provide, an install_if condition, a replaces entry).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dep {
    /// The package (or provided) name.
    pub name: String,
    /// `name@tag`: only from repositories carrying that tag.
    pub tag: Option<String>,
    /// `!name`: must not be installed (or not in the given versions).
    pub conflict: bool,
    /// A version constraint, if any.
    pub constraint: Option<Constraint>,
}

impl Dep {
    /// A dependency on any version of `name`.
    pub fn any(name: &str) -> Dep {
        Dep { name: name.to_owned(), tag: None, conflict: false, constraint: None }
    }

    /// Parses one dependency; `what` names the input in errors.
    ///
    /// ```
    /// use forge_engine::apk::dep::Dep;
    /// let d = Dep::parse("musl>=1.2.4", "world").unwrap();
    /// assert_eq!(d.name, "musl");
    /// assert!(d.matches(Some("1.2.5-r0"), None) && !d.matches(Some("1.2.3-r4"), None));
    /// let tagged = Dep::parse("!openssh@edge", "world").unwrap();
    /// assert!(tagged.conflict && tagged.tag.as_deref() == Some("edge"));
    /// assert!(Dep::parse("musl>=", "world").is_err());
    /// ```
    pub fn parse(s: &str, what: &str) -> Result<Dep> {
        let bad = |reason: &str| Error::Dependency { what: what.to_owned(), dep: s.to_owned(), reason: reason.into() };
        let (conflict, rest) = match s.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let op_at = rest.find(['<', '>', '=', '~']);
        let (name_tag, constraint) = match op_at {
            None => (rest, None),
            Some(i) => {
                let after = &rest[i..];
                let op_len = after.find(|c| !matches!(c, '<' | '>' | '=' | '~')).unwrap_or(after.len());
                let (op, ver) = after.split_at(op_len);
                let mask = op_mask(op).ok_or_else(|| bad(&format!("unknown operator {op:?}")))?;
                if mask == CHECKSUM {
                    Checksum::parse(ver, what).map_err(|_| bad("`><` needs a Q1 checksum"))?;
                } else if ver.is_empty() || !version::is_valid(ver) {
                    return Err(bad(&format!("invalid version {ver:?}")));
                }
                (&rest[..i], Some(Constraint { op: op.to_owned(), mask, version: ver.to_owned() }))
            }
        };
        let (name, tag) = match name_tag.split_once('@') {
            Some((n, t)) if !t.is_empty() => (n, Some(t.to_owned())),
            Some(_) => return Err(bad("empty repository tag")),
            None => (name_tag, None),
        };
        if name.is_empty() {
            return Err(bad("empty name"));
        }
        if name.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(bad("whitespace in name"));
        }
        Ok(Dep { name: name.to_owned(), tag, conflict, constraint })
    }

    /// Parses a space- or newline-separated list (`D:` values, `depend =` lines, world).
    pub fn parse_list(s: &str, what: &str) -> Result<Vec<Dep>> {
        s.split([' ', '\n']).filter(|t| !t.is_empty()).map(|t| Dep::parse(t, what)).collect()
    }

    /// Whether a package named `name` at `version` with `checksum` satisfies this
    /// dependency's version part (conflicts inverted), as apk's `apk_dep_is_materialized`.
    pub fn matches(&self, version: Option<&str>, checksum: Option<&Checksum>) -> bool {
        let hit = match &self.constraint {
            None => true,
            Some(c) if c.mask == CHECKSUM => {
                checksum.is_some_and(|sum| Checksum::parse(&c.version, "").is_ok_and(|want| want == *sum))
            }
            Some(c) => match version {
                None => false,
                Some(v) => {
                    let ord = version::compare_fuzzy(v, &c.version, c.mask & FUZZY != 0);
                    ordering_bit(ord) & c.mask != 0
                }
            },
        };
        hit != self.conflict
    }

    /// The dependency without its `!`, for matching what a conflict forbids.
    pub fn positive(&self) -> Dep {
        Dep { conflict: false, ..self.clone() }
    }
}

fn ordering_bit(o: Ordering) -> u8 {
    match o {
        Ordering::Less => LESS,
        Ordering::Equal => EQUAL,
        Ordering::Greater => GREATER,
    }
}

fn op_mask(op: &str) -> Option<u8> {
    let mut mask = 0;
    for c in op.chars() {
        mask |= match c {
            '<' => LESS,
            '>' => GREATER,
            '=' => EQUAL,
            '~' => FUZZY | EQUAL,
            _ => return None,
        };
    }
    // apk accepts any mix of these characters; refuse only what means nothing.
    (mask != 0 && op.len() <= 2).then_some(mask)
}

impl fmt::Display for Dep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.conflict {
            f.write_str("!")?;
        }
        f.write_str(&self.name)?;
        if let Some(tag) = &self.tag {
            write!(f, "@{tag}")?;
        }
        if let Some(c) = &self.constraint {
            write!(f, "{}{}", c.op, c.version)?;
        }
        Ok(())
    }
}

/// Joins dependencies with spaces, as apk writes `D:` lines.
pub fn join(deps: &[Dep]) -> String {
    deps.iter().map(Dep::to_string).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(s: &str) -> Dep {
        Dep::parse(s, "test").unwrap()
    }

    #[test]
    fn parses_every_operator_and_prints_it_back() {
        for s in [
            "a",
            "a=1.0",
            "a<1",
            "a>1",
            "a<=1",
            "a>=1.2-r3",
            "a~1.2",
            "!a",
            "!a<2",
            "a@edge",
            "a@edge>=2",
            "so:libc.musl-x86_64.so.1",
            "cmd:sh=1.35.0-r17",
            "pc:zlib>=1.2",
            "/bin/sh",
            "a><Q1qZk+NkcGgWq6PiVxeFDCbJzQ2J0=",
        ] {
            assert_eq!(dep(s).to_string(), s);
        }
        let d = dep("!foo@testing>=1.2");
        assert!(d.conflict);
        assert_eq!(d.tag.as_deref(), Some("testing"));
        assert_eq!(d.constraint.unwrap().mask, GREATER | EQUAL);
    }

    #[test]
    fn version_constraints_match_as_apk_does() {
        let v = |s: &str, ver: &str| dep(s).matches(Some(ver), None);
        assert!(v("a=1.0", "1.0") && !v("a=1.0", "1.0-r0"));
        assert!(v("a<2", "1.9") && !v("a<2", "2"));
        assert!(v("a<=2", "2") && !v("a<=2", "2.0"));
        assert!(v("a>2", "2.0") && !v("a>2", "2"));
        assert!(v("a>=2", "2") && v("a>=2", "3_rc1") && !v("a>=2", "2_rc1"));
        assert!(v("a~1.2", "1.2.9-r3") && !v("a~1.2", "1.3"));
        assert!(v("!a<2", "2.1") && !v("!a<2", "1"));
        assert!(!v("!a", "1"));
        // A provide without a version cannot satisfy a versioned dependency.
        assert!(!dep("a>=1").matches(None, None));
        assert!(dep("a").matches(None, None));
        let sum = Checksum::sha1_of(b"abc");
        assert!(dep(&format!("a><{sum}")).matches(Some("1"), Some(&sum)));
        assert!(!dep(&format!("a><{sum}")).matches(Some("1"), Some(&Checksum::sha1_of(b"x"))));
    }

    #[test]
    fn malformed_dependencies_are_rejected_with_the_input_named() {
        for s in ["", "!", "=1", "a=", "a=x.y", "a@", "a<>=1", "a=1 b", "a><nope"] {
            let err = Dep::parse(s, "APKINDEX line 7").unwrap_err().to_string();
            assert!(err.contains("APKINDEX line 7"), "{s:?}: {err}");
        }
    }

    #[test]
    fn lists_split_on_spaces_and_newlines() {
        let l = Dep::parse_list("a  b>=1\nso:c", "t").unwrap();
        assert_eq!(join(&l), "a b>=1 so:c");
    }
}
