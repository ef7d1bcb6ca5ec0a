//! Manifests: one line a path, the listing auditors diff between two builds or between a
//! tarball and the image made from it. The format is specified in docs/manifest.md and
//! must stay stable: change it only with a version bump there.
//!
//! ```text
//! / dir 0755 0 0
//! /bin dir 0755 0 0
//! /bin/ash file 0755 0 0 size=100000 sha256=4c1f...
//! /bin/busybox hardlink 0755 0 0 link=/bin/ash
//! /bin/ls symlink 0777 0 0 target=busybox
//! /dev/null char 0666 0 0 dev=1,3
//! /usr/bin/ping file 4755 0 0 size=4 sha256=... cap=cap_net_raw+ep
//! ```

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use crate::fstree::{capability_text, FsTree, FsTreeError, Kind, TreePath, CAPABILITY_XATTR};

/// What went wrong listing a tree.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Walking the tree failed.
    #[error(transparent)]
    Tree(#[from] FsTreeError),
    /// A file's content could not be read.
    #[error("{path}: reading its content: {source}")]
    Read {
        /// Its path in the tree.
        path: String,
        /// The error reading it.
        source: io::Error,
    },
    /// The manifest could not be written.
    #[error("writing the manifest: {0}")]
    Write(io::Error),
}

/// Writes the manifest of `tree` to `out`: entries in tree order (depth first, names in
/// byte order), each file's content hashed as it streams.
///
/// ```
/// use forge_engine::{fstree::FsTree, manifest::manifest};
/// let mut tree = FsTree::new(0);
/// tree.write("/etc/motd", "", 0o644)?;
/// tree.symlink("/etc/mtab", "../proc/mounts")?;
/// let text = manifest(&tree)?;
/// assert_eq!(text, "\
/// / dir 0755 0 0
/// /etc dir 0755 0 0
/// /etc/motd file 0644 0 0 size=0 sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
/// /etc/mtab symlink 0777 0 0 target=../proc/mounts
/// ");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_manifest(tree: &FsTree, out: impl Write) -> Result<(), ManifestError> {
    let mut out = io::BufWriter::new(out);
    let targets = tree.hardlink_targets()?;
    let mut primary: BTreeMap<TreePath, TreePath> = BTreeMap::new();
    for (path, node) in tree.iter() {
        let (key, data) = tree.data_node(&path, node)?;
        let m = &data.meta;
        let mut line = format!("{} ", escape(path.display().as_bytes()));
        let mut kind = data.kind.name();
        let mut rest = String::new();
        if targets.contains(&key) {
            if let Some(first) = primary.get(&key) {
                kind = "hardlink";
                rest = format!(" link={}", escape(first.display().as_bytes()));
            } else {
                primary.insert(key, path.clone());
            }
        }
        line += &format!("{kind} {:04o} {} {}", m.mode, m.uid, m.gid);
        if rest.is_empty() {
            rest = details(&path, &data.kind)?;
        }
        line += &rest;
        for (name, value) in &m.xattrs {
            match capability_text(value).filter(|_| name == CAPABILITY_XATTR) {
                Some(text) => line += &format!(" cap={}", text.replace(' ', ";")),
                None => line += &format!(" xattr.{}={}", escape(name.as_bytes()), hex(value)),
            }
        }
        line.push('\n');
        out.write_all(line.as_bytes()).map_err(ManifestError::Write)?;
    }
    out.flush().map_err(ManifestError::Write)
}

/// The manifest as a string (see [`write_manifest`]).
pub fn manifest(tree: &FsTree) -> Result<String, ManifestError> {
    let mut v = Vec::new();
    write_manifest(tree, &mut v)?;
    Ok(String::from_utf8(v).expect("manifests are ASCII"))
}

/// The kind-specific fields of a line.
fn details(path: &TreePath, kind: &Kind) -> Result<String, ManifestError> {
    Ok(match kind {
        Kind::File(c) => {
            let read_err = |source| ManifestError::Read { path: path.display(), source };
            let mut r = c.open().map_err(read_err)?;
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = r.read(&mut buf).map_err(read_err)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            format!(" size={} sha256={}", c.size(), hex(&h.finalize()).replace(' ', ""))
        }
        Kind::Symlink(t) => format!(" target={}", escape(t)),
        Kind::Char { major, minor } | Kind::Block { major, minor } => format!(" dev={major},{minor}"),
        Kind::Dir(_) | Kind::Fifo | Kind::Hardlink(_) => String::new(),
    })
}

/// Bytes outside printable ASCII, space, `\` and `=` become `\xHH`, so a line always
/// splits on spaces and keys split on the first `=`.
pub(crate) fn escape(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        if c.is_ascii_graphic() && c != b'\\' && c != b'=' {
            s.push(c as char);
        } else {
            s += &format!("\\x{c:02x}");
        }
    }
    s
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fstree::Special;

    #[test]
    fn every_kind_has_its_stable_line() {
        let mut t = FsTree::new(0);
        t.write("/b/x", "hi\n", 0o4755).unwrap();
        t.hardlink("/a", "/b/x").unwrap();
        t.setcap("/b/x", "cap_net_raw+ep").unwrap();
        t.mknod("/dev/sda", Special::Block { major: 8, minor: 0 }, 0o660).unwrap();
        t.mknod("/p", Special::Fifo, 0o600).unwrap();
        t.write("/odd name=\\", "", 0o644).unwrap();
        t.chown("/p", 200000, 7).unwrap();
        t.set_xattr("/p", "user.k", vec![0, 255]).unwrap();
        let m = manifest(&t).unwrap();
        let sha = "98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4";
        let want = format!(
            "/ dir 0755 0 0\n\
             /a file 4755 0 0 size=3 sha256={sha} cap=cap_net_raw+ep\n\
             /b dir 0755 0 0\n\
             /b/x hardlink 4755 0 0 link=/a cap=cap_net_raw+ep\n\
             /dev dir 0755 0 0\n\
             /dev/sda block 0660 0 0 dev=8,0\n\
             /odd\\x20name\\x3d\\x5c file 0644 0 0 size=0 sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
             /p fifo 0600 200000 7 xattr.user.k=00ff\n"
        );
        assert_eq!(m, want);
    }
}
