//! `.PKGINFO`, the package's metadata in its control stream: `key = value` lines written
//! by abuild, `#` comments, and keys that repeat (`depend`, `provides`, `install_if`,
//! `replaces`, `triggers`).

use std::fmt::Write as _;

use super::checksum::hex_decode;
use super::dep::{self, Dep};
use super::{Error, Result};

/// The parsed `.PKGINFO`. `fields` keeps every line as read, in order, so nothing is lost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PkgInfo {
    /// `pkgname`.
    pub name: String,
    /// `pkgver`.
    pub version: String,
    /// `pkgdesc`.
    pub description: String,
    /// `url`.
    pub url: String,
    /// Installed size in bytes (`size`).
    pub size: u64,
    /// `license`.
    pub license: String,
    /// `arch`.
    pub arch: String,
    /// `origin`: the source package.
    pub origin: Option<String>,
    /// `maintainer`.
    pub maintainer: Option<String>,
    /// `packager`.
    pub packager: Option<String>,
    /// `builddate`, seconds since the epoch.
    pub build_date: Option<u64>,
    /// `commit`: the aports commit.
    pub commit: Option<String>,
    /// `provider_priority`.
    pub provider_priority: Option<u64>,
    /// `replaces_priority`.
    pub replaces_priority: Option<u64>,
    /// `depend` lines.
    pub depends: Vec<Dep>,
    /// `provides` lines.
    pub provides: Vec<Dep>,
    /// `install_if` lines.
    pub install_if: Vec<Dep>,
    /// `replaces` lines.
    pub replaces: Vec<Dep>,
    /// `triggers`: the folders whose changes run the trigger script.
    pub triggers: Vec<String>,
    /// `provides` lines found in the files (`so:`, `cmd:`), written after abuild's
    /// `# automatically detected:` comment. Parsing puts such lines in `provides`.
    pub auto_provides: Vec<Dep>,
    /// `depend` lines found in the files (`so:` of needed libraries), written after
    /// `auto_provides`. Parsing puts such lines in `depends`.
    pub auto_depends: Vec<Dep>,
    /// SHA-256 of the data stream as stored (`datahash`).
    pub datahash: Option<[u8; 32]>,
    /// Every `key = value` line, in file order.
    pub fields: Vec<(String, String)>,
}

impl PkgInfo {
    /// Parses `.PKGINFO` bytes; `what` names the input in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<PkgInfo> {
        let text =
            std::str::from_utf8(bytes).map_err(|e| Error::format(what, format!(".PKGINFO is not UTF-8: {e}")))?;
        let mut info = PkgInfo::default();
        // Split on '\n' only, as apk does: a '\r' stays part of the value.
        for (n, line) in text.split('\n').enumerate() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = format!("{what}: .PKGINFO line {}", n + 1);
            let (key, value) =
                line.split_once(" = ").ok_or_else(|| Error::format(&at, format!("{line:?} is not `key = value`")))?;
            info.set(key, value, &at)?;
            info.fields.push((key.to_owned(), value.to_owned()));
        }
        if info.name.is_empty() || info.version.is_empty() {
            return Err(Error::format(what, ".PKGINFO lacks pkgname or pkgver"));
        }
        Ok(info)
    }

    fn set(&mut self, key: &str, value: &str, at: &str) -> Result<()> {
        let number = |v: &str| v.parse::<u64>().map_err(|_| Error::format(at, format!("{key} {v:?} is not a number")));
        match key {
            "pkgname" => self.name = value.to_owned(),
            "pkgver" => {
                if !super::version::is_valid(value) || value.is_empty() {
                    return Err(Error::format(at, format!("pkgver {value:?} is not a valid apk version")));
                }
                self.version = value.to_owned()
            }
            "pkgdesc" => self.description = value.to_owned(),
            "url" => self.url = value.to_owned(),
            "size" => self.size = number(value)?,
            "license" => self.license = value.to_owned(),
            "arch" => self.arch = value.to_owned(),
            "origin" => self.origin = Some(value.to_owned()),
            "maintainer" => self.maintainer = Some(value.to_owned()),
            "packager" => self.packager = Some(value.to_owned()),
            "builddate" => self.build_date = Some(number(value)?),
            "commit" => self.commit = Some(value.to_owned()),
            "provider_priority" => self.provider_priority = Some(number(value)?),
            "replaces_priority" => self.replaces_priority = Some(number(value)?),
            "depend" => self.depends.extend(Dep::parse_list(value, at)?),
            "provides" => self.provides.extend(Dep::parse_list(value, at)?),
            "install_if" => self.install_if.extend(Dep::parse_list(value, at)?),
            "replaces" => self.replaces.extend(Dep::parse_list(value, at)?),
            "triggers" => self.triggers.extend(value.split(' ').filter(|t| !t.is_empty()).map(str::to_owned)),
            "datahash" => {
                let bytes = hex_decode(value).filter(|b| b.len() == 32);
                let bytes =
                    bytes.ok_or_else(|| Error::format(at, format!("datahash {value:?} is not a hex SHA-256")))?;
                self.datahash = Some(bytes.try_into().unwrap_or([0; 32]));
            }
            // Other keys (e.g. future ones) are kept in `fields` only, as apk ignores them.
            _ => {}
        }
        Ok(())
    }

    /// Writes `.PKGINFO` the way abuild orders it, one line per dependency. Deterministic:
    /// no date comment.
    pub fn to_text(&self) -> String {
        let mut s = String::from("# Generated by forge\n");
        // A key starting with `#` is a comment line of its own.
        let mut line = |k: &str, v: &str| {
            let _ = if k.starts_with('#') { writeln!(s, "{k}") } else { writeln!(s, "{k} = {v}") };
        };
        line("pkgname", &self.name);
        line("pkgver", &self.version);
        line("pkgdesc", &self.description);
        line("url", &self.url);
        if let Some(t) = self.build_date {
            line("builddate", &t.to_string());
        }
        if let Some(p) = &self.packager {
            line("packager", p);
        }
        line("size", &self.size.to_string());
        line("arch", &self.arch);
        for (key, value) in [("origin", &self.origin), ("commit", &self.commit), ("maintainer", &self.maintainer)] {
            if let Some(v) = value {
                line(key, v);
            }
        }
        if let Some(k) = self.provider_priority {
            line("provider_priority", &k.to_string());
        }
        if let Some(q) = self.replaces_priority {
            line("replaces_priority", &q.to_string());
        }
        line("license", &self.license);
        for (key, deps) in [
            ("replaces", &self.replaces),
            ("depend", &self.depends),
            ("provides", &self.provides),
            ("install_if", &self.install_if),
        ] {
            for d in deps {
                line(key, &d.to_string());
            }
        }
        if !self.triggers.is_empty() {
            line("triggers", &self.triggers.join(" "));
        }
        if !self.auto_provides.is_empty() || !self.auto_depends.is_empty() {
            line("# automatically detected:", "");
            for d in &self.auto_provides {
                line("provides", &d.to_string());
            }
            for d in &self.auto_depends {
                line("depend", &d.to_string());
            }
        }
        if let Some(h) = &self.datahash {
            line("datahash", &super::checksum::hex(h));
        }
        s
    }

    /// `D:`-style rendering of the dependencies.
    pub fn depends_text(&self) -> String {
        dep::join(&self.depends)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# Generated by abuild 3.9.0-r0
# using fakeroot version 1.25.3
pkgname = sample-base
pkgver = 2.4.1-r7
pkgdesc = Sample base layout for tests
url = https://example.invalid/sample-base
builddate = 1700000000
packager = Forge Tests <tests@example.invalid>
size = 204800
arch = aarch64
origin = sample-base
commit = 0123456789abcdef0123456789abcdef01234567
maintainer = Forge Tests <tests@example.invalid>
license = MIT
depend = sample-data=2.4.1-r7
depend = /bin/sh
# automatically detected:
provides = cmd:samplectl=2.4.1-r7
depend = so:libc.musl-aarch64.so.1
datahash = 1a3a8e47d2287da6d505d973412cee1ad64bcc17bc5995069e4e932055ecb0c4
";

    #[test]
    fn parses_every_field_and_accumulates_repeated_keys() {
        let info = PkgInfo::parse(SAMPLE.as_bytes(), "t").unwrap();
        assert_eq!(info.name, "sample-base");
        assert_eq!(info.version, "2.4.1-r7");
        assert_eq!(info.size, 204800);
        assert_eq!(info.arch, "aarch64");
        assert_eq!(info.build_date, Some(1700000000));
        assert_eq!(info.depends_text(), "sample-data=2.4.1-r7 /bin/sh so:libc.musl-aarch64.so.1");
        assert_eq!(dep::join(&info.provides), "cmd:samplectl=2.4.1-r7");
        assert_eq!(info.datahash.unwrap()[0], 0x1a);
        assert_eq!(info.fields.len(), 17);
    }

    #[test]
    fn written_pkginfo_parses_back_to_the_same_metadata() {
        let mut info = PkgInfo::parse(SAMPLE.as_bytes(), "t").unwrap();
        info.replaces = Dep::parse_list("busybox<1.36 old-base", "t").unwrap();
        info.install_if = Dep::parse_list("a b=1", "t").unwrap();
        info.triggers = vec!["/usr/share/fonts/*".into(), "/etc/x".into()];
        info.provider_priority = Some(10);
        let again = PkgInfo::parse(info.to_text().as_bytes(), "t").unwrap();
        assert_eq!(PkgInfo { fields: vec![], ..again }, PkgInfo { fields: vec![], ..info });
    }

    #[test]
    fn malformed_pkginfo_is_rejected_with_the_line_named() {
        let cases: [(&[u8], &str); 6] = [
            (b"pkgname = a\n", "lacks pkgname or pkgver"),
            (b"pkgname = a\npkgver = 1\nsize = big\n", "line 3"),
            (b"pkgname=a\n", "line 1"),
            (b"pkgname = a\npkgver = 1.0-x\n", "pkgver"),
            (b"pkgname = a\npkgver = 1\ndatahash = 12\n", "datahash"),
            (b"\xff\xfe", "UTF-8"),
        ];
        for (input, want) in cases {
            let err = PkgInfo::parse(input, "pkg.apk").unwrap_err().to_string();
            assert!(err.contains(want) && err.contains("pkg.apk"), "{err}");
        }
    }
}
