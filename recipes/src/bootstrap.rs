//! The bootstrap toolchain: a C toolchain made only of pinned binary packages.
//!
//! Builds need a compiler before forge has compiled one. Instead of the host's
//! `/usr`, the first toolchain is a store path merged from Debian 12 binary
//! packages, each a fixed-output fetch pinned by sha256 in
//! `data/debian-bookworm-amd64-toolchain.lock` and unpacked by the `unpack`
//! builtin. busybox provides `/bin/sh` and the core utilities. Nothing of the host
//! enters: a different machine with the same lock gets the same layer, bit for bit.
//!
//! The packages are fetched by file name or sha256 from a mirror (see
//! `recipes/mirror/seed-debian.sh`, which fills one with `apt-get download`); their
//! `mirror://debian/` URLs record where they come from in Debian's pool.

use forge_engine::dsl::{Forge, Input, Package, Source};
use forge_engine::Result;

const LOCK: &str = include_str!("../data/debian-bookworm-amd64-toolchain.lock");

/// Core utilities linked to busybox in `/bin`: what configure scripts and
/// makefiles expect of a POSIX system.
const APPLETS: &[&str] = &[
    "ash",
    "awk",
    "base64",
    "basename",
    "bunzip2",
    "bzcat",
    "bzip2",
    "cat",
    "chmod",
    "chown",
    "cmp",
    "cp",
    "cut",
    "date",
    "dd",
    "diff",
    "dirname",
    "du",
    "echo",
    "egrep",
    "env",
    "expr",
    "false",
    "fgrep",
    "find",
    "grep",
    "gunzip",
    "gzip",
    "head",
    "hostname",
    "id",
    "install",
    "ln",
    "ls",
    "md5sum",
    "mkdir",
    "mktemp",
    "mv",
    "nproc",
    "od",
    "patch",
    "printf",
    "pwd",
    "readlink",
    "realpath",
    "rm",
    "rmdir",
    "sed",
    "seq",
    "sh",
    "sha256sum",
    "sleep",
    "sort",
    "stat",
    "tail",
    "tar",
    "tee",
    "test",
    "touch",
    "tr",
    "true",
    "uname",
    "uniq",
    "unxz",
    "wc",
    "which",
    "xargs",
    "xz",
    "xzcat",
    "yes",
    "zcat",
    "[",
];

/// One pinned package of the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebPin {
    /// Debian package name.
    pub package: String,
    /// Debian version (with epoch).
    pub version: String,
    /// Debian architecture (`amd64`, `arm64`, `all`).
    pub arch: String,
    /// Size of the `.deb` in bytes.
    pub size: u64,
    /// sha256 of the `.deb`, in hex.
    pub sha256: String,
    /// Its path in a Debian archive (`pool/main/...`).
    pub pool_path: String,
}

impl DebPin {
    /// The file name in Debian's pool (the mirror serves it under this name).
    pub fn file_name(&self) -> &str {
        self.pool_path.rsplit('/').next().unwrap_or(&self.pool_path)
    }
}

/// Parses a lock: `package version arch size sha256 pool-path` per line, `#` comments.
pub fn parse_lock(text: &str) -> std::result::Result<Vec<DebPin>, String> {
    let mut pins = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let [package, version, arch, size, sha256, pool_path] = f[..] else {
            return Err(format!("line {}: expected 6 fields, found {}", n + 1, f.len()));
        };
        let size = size.parse().map_err(|_| format!("line {}: size `{size}` is not a number", n + 1))?;
        pins.push(DebPin {
            package: package.into(),
            version: version.into(),
            arch: arch.into(),
            size,
            sha256: sha256.into(),
            pool_path: pool_path.into(),
        });
    }
    Ok(pins)
}

/// A Debian file name or version as a store path name: `~` and `:` (not allowed
/// there) become `_`.
fn store_name(s: &str) -> String {
    s.replace(['~', ':'], "_")
}

/// A pinned `.deb` fetched (from a mirror, by its pool file name or sha256) and
/// unpacked: its data tree, the layer other recipes stack.
pub fn unpack_pin(f: &mut Forge, pin: &DebPin) -> Result<Source> {
    let deb = f.fetch(
        &store_name(pin.file_name()),
        &[&format!("mirror://debian/{}", pin.pool_path)],
        &format!("sha256:{}", pin.sha256),
    )?;
    let name = store_name(&format!("{}-{}", pin.package, pin.version));
    f.unpack(&name, &deb, 0)
}

/// The pins of the bootstrap toolchain.
pub fn toolchain_pins() -> Vec<DebPin> {
    parse_lock(LOCK).expect("the bundled lock parses (checked by a test)")
}

/// One layer holding the files of every pinned package: a fixed-output fetch and an
/// unpack per `.deb`, then one merge (later packages win) with `links` added.
pub fn deb_layer(f: &mut Forge, name: &str, pins: &[DebPin], links: &[(&str, &str)]) -> Result<Package> {
    let layers = deb_layers(f, pins)?;
    let inputs: Vec<&dyn Input> = layers.iter().map(|l| l as &dyn Input).collect();
    f.merge(name, &inputs, links)
}

/// The bootstrap toolchain layer: gcc 12, binutils, glibc headers, make, busybox.
pub fn toolchain(f: &mut Forge) -> Result<Package> {
    f.memo("bootstrap-toolchain", |f| {
        let links = toolchain_links(&[]);
        let links: Vec<(&str, &str)> = links.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        deb_layer(f, "bootstrap-toolchain-gcc-12", &toolchain_pins(), &links)
    })
}

/// One layer per pinned package: a fixed-output fetch of the `.deb` (by file name or
/// sha256 from a mirror) unpacked by the `unpack` builtin. Identical pins of two locks
/// give the same nodes, so toolchains that share packages share their layers.
pub fn deb_layers(f: &mut Forge, pins: &[DebPin]) -> Result<Vec<Source>> {
    pins.iter().map(|pin| unpack_pin(f, pin)).collect()
}

/// The links of a toolchain layer: busybox applets in `/bin` (but not those in `real`,
/// which a layer provides as real programs) and the unversioned gcc names.
pub(crate) fn toolchain_links(real: &[&str]) -> Vec<(String, String)> {
    let mut links: Vec<(String, String)> =
        APPLETS.iter().filter(|a| !real.contains(a)).map(|a| (format!("bin/{a}"), "busybox".to_owned())).collect();
    for (tool, target) in [("gcc", "gcc-12"), ("cc", "gcc-12"), ("cpp", "cpp-12"), ("c99", "gcc-12")] {
        links.push((format!("usr/bin/{tool}"), target.to_owned()));
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_lock_parses_and_pins_gcc_and_busybox() {
        let pins = toolchain_pins();
        assert!(pins.len() >= 40);
        for needed in ["gcc-12", "binutils", "libc6-dev", "make", "busybox-static"] {
            assert!(pins.iter().any(|p| p.package == needed), "{needed} missing from the lock");
        }
        assert!(pins.iter().all(|p| p.sha256.len() == 64 && p.pool_path.starts_with("pool/")));
    }

    #[test]
    fn a_malformed_lock_line_names_its_number() {
        let err = parse_lock("# c\nbinutils 2.40 amd64\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn the_toolchain_is_one_layer_over_every_pinned_package() {
        let mut f = Forge::new();
        let tc = toolchain(&mut f).unwrap();
        // every pin gives a fetch and an unpack node, then one merge
        assert_eq!(f.nodes().len(), 2 * toolchain_pins().len() + 1);
        assert_eq!(tc.path().name(), "bootstrap-toolchain-gcc-12");
    }
}
