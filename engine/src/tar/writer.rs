//! The deterministic tar writer: POSIX ustar headers with PAX extended headers where a
//! value does not fit (long names, big owners and sizes) and for xattrs.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use super::TarError;
use crate::fstree::{FsTree, Kind, Node, TreePath};

const BLOCK: usize = 512;
const PAX_NAME: &[u8] = b"././@PaxHeader";

/// Writes `tree` as a tar: entries depth first in name order, the root as `./`,
/// directories with a trailing `/`, every mtime the tree's epoch, owners numeric (no
/// user or group names), xattrs as `SCHILY.xattr.NAME` PAX records. Of several names of
/// one hard-linked file the first in that order carries the data and the others are
/// links to it. The same tree always gives the same bytes.
///
/// ```
/// use forge_engine::{fstree::FsTree, tar::write_tar};
/// let mut tree = FsTree::new(0);
/// tree.write("/etc/motd", "hi\n", 0o644)?;
/// let mut out = Vec::new();
/// write_tar(&tree, &mut out)?;
/// let names: Vec<String> = tar::Archive::new(&out[..]).entries()?
///     .map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
/// assert_eq!(names, ["./", "etc/", "etc/motd"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_tar(tree: &FsTree, out: impl Write) -> Result<(), TarError> {
    let mut w = io::BufWriter::with_capacity(1 << 20, out);
    let tree_err = |source| TarError::Tree { archive: "(tree)".into(), source };
    let targets = tree.hardlink_targets().map_err(tree_err)?;
    let mut first_name: BTreeMap<TreePath, Vec<u8>> = BTreeMap::new();
    for (path, node) in tree.iter() {
        let name = tar_name(&path, node.is_dir());
        let (key, data) = tree.data_node(&path, node).map_err(tree_err)?;
        if targets.contains(&key) {
            if let Some(first) = first_name.get(&key) {
                write_header(&mut w, &path, &name, data, b'1', first, 0)?;
                continue;
            }
            first_name.insert(key, name.clone());
        }
        write_entry(&mut w, &path, &name, data)?;
    }
    w.write_all(&[0; 2 * BLOCK]).map_err(|e| write_err(&TreePath::default(), e))?;
    w.flush().map_err(|e| write_err(&TreePath::default(), e))
}

fn write_err(path: &TreePath, e: io::Error) -> TarError {
    TarError::Write { path: path.display(), reason: e.to_string() }
}

/// The member name: relative, `./` for the root, a trailing `/` on directories.
fn tar_name(path: &TreePath, dir: bool) -> Vec<u8> {
    if path.is_root() {
        return b"./".to_vec();
    }
    let mut name = path.to_relative_bytes();
    if dir {
        name.push(b'/');
    }
    name
}

fn write_entry(w: &mut impl Write, path: &TreePath, name: &[u8], node: &Node) -> Result<(), TarError> {
    match &node.kind {
        Kind::File(content) => {
            write_header(w, path, name, node, b'0', b"", content.size())?;
            let mut r = content.open().map_err(|e| write_err(path, e))?;
            copy_padded(&mut r, w, content.size()).map_err(|e| write_err(path, e))
        }
        Kind::Dir(_) => write_header(w, path, name, node, b'5', b"", 0),
        Kind::Symlink(t) => write_header(w, path, name, node, b'2', t, 0),
        Kind::Char { .. } => write_header(w, path, name, node, b'3', b"", 0),
        Kind::Block { .. } => write_header(w, path, name, node, b'4', b"", 0),
        Kind::Fifo => write_header(w, path, name, node, b'6', b"", 0),
        Kind::Hardlink(_) => unreachable!("hard links are resolved to their data entry first"),
    }
}

/// Copies exactly `size` bytes and pads to a whole block.
fn copy_padded(r: &mut impl Read, w: &mut impl Write, size: u64) -> io::Result<()> {
    let copied = io::copy(&mut r.take(size), w)?;
    if copied != size {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file is shorter than recorded"));
    }
    let pad = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
    w.write_all(&[0; BLOCK][..pad])
}

/// Writes the (PAX and) ustar header of one member.
fn write_header(
    w: &mut impl Write,
    path: &TreePath,
    name: &[u8],
    node: &Node,
    typeflag: u8,
    link: &[u8],
    size: u64,
) -> Result<(), TarError> {
    let m = &node.meta;
    let (major, minor) = match node.kind {
        Kind::Char { major, minor } | Kind::Block { major, minor } => (major, minor),
        _ => (0, 0),
    };
    if u64::from(major.max(minor)) > 0o7777777 {
        return Err(TarError::Write { path: path.display(), reason: "device number too large for tar".into() });
    }
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
    if name.len() > 100 {
        pax.push(("path".into(), name.to_vec()));
    }
    if link.len() > 100 {
        pax.push(("linkpath".into(), link.to_vec()));
    }
    for (key, v, max) in [("uid", u64::from(m.uid), 0o7777777), ("gid", u64::from(m.gid), 0o7777777)] {
        if v > max {
            pax.push((key.into(), v.to_string().into_bytes()));
        }
    }
    if size > 0o77777777777 {
        pax.push(("size".into(), size.to_string().into_bytes()));
    }
    let mtime = u64::try_from(m.mtime).ok().filter(|t| *t <= 0o77777777777);
    if mtime.is_none() {
        pax.push(("mtime".into(), m.mtime.to_string().into_bytes()));
    }
    for (k, v) in &m.xattrs {
        pax.push((format!("SCHILY.xattr.{k}"), v.clone()));
    }
    let io = |e| write_err(path, e);
    if !pax.is_empty() {
        let body = pax_records(&pax);
        let h = ustar_header(PAX_NAME, 0o644, 0, 0, body.len() as u64, mtime.unwrap_or(0), b'x', b"", (0, 0));
        w.write_all(&h).map_err(io)?;
        copy_padded(&mut &body[..], w, body.len() as u64).map_err(io)?;
    }
    let fit = |v: u64, max: u64| if v > max { 0 } else { v };
    let h = ustar_header(
        &name[..name.len().min(100)],
        m.mode,
        fit(m.uid.into(), 0o7777777),
        fit(m.gid.into(), 0o7777777),
        fit(size, 0o77777777777),
        mtime.unwrap_or(0),
        typeflag,
        &link[..link.len().min(100)],
        (major, minor),
    );
    w.write_all(&h).map_err(io)
}

/// PAX records `"<len> <key>=<value>\n"`, where `len` counts the whole record.
fn pax_records(records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        let rest = 1 + k.len() + 1 + v.len() + 1;
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {k}=").as_bytes());
        out.extend_from_slice(v);
        out.push(b'\n');
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn ustar_header(
    name: &[u8],
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
    typeflag: u8,
    link: &[u8],
    dev: (u32, u32),
) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name);
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], uid);
    octal(&mut h[116..124], gid);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime);
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    // Written for every member, as GNU tar does: some readers reject empty fields.
    octal(&mut h[329..337], u64::from(dev.0));
    octal(&mut h[337..345], u64::from(dev.1));
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let ck = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(ck.as_bytes());
    h
}

/// Zero-padded octal filling the field but its last byte, which stays NUL.
fn octal(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    field[..digits].copy_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_its_own_digits() {
        assert_eq!(pax_records(&[("path".into(), b"a".to_vec())]), b"9 path=a\n");
        // 7 bytes of payload + 2 digits = 100 would need a third digit: the length grows.
        let v = vec![b'x'; 91];
        let rec = pax_records(&[("path".into(), v)]);
        assert_eq!(&rec[..4], b"101 ");
        assert_eq!(rec.len(), 101);
    }

    #[test]
    fn header_of_a_small_file_is_golden() {
        let h = ustar_header(b"etc/motd", 0o644, 0, 0, 3, 0, b'0', b"", (0, 0));
        assert_eq!(&h[100..108], b"0000644\0");
        assert_eq!(&h[124..136], b"00000000003\0");
        assert_eq!(&h[148..156], b"010637\0 ");
        assert_eq!(&h[257..265], b"ustar\x0000");
    }
}
