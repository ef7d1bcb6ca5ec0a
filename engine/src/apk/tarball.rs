//! The tar archives inside apk streams: reading entries with their PAX records, and a small
//! deterministic writer (ustar headers, PAX records, optional end-of-archive) for the
//! archives forge produces. apk's signature and control archives end without the two
//! zero blocks so that the streams can be concatenated; the reader accepts both.

use std::ops::Range;

use super::{Error, Result};

/// The kind of a tar entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A hard link to an earlier entry.
    Hardlink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
}

/// One entry of an archive: metadata, PAX records, and where its content is in the
/// decompressed archive bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The entry's path (PAX `path` when present).
    pub path: String,
    /// What it is.
    pub kind: Kind,
    /// Permission bits (`& 0o7777`).
    pub mode: u32,
    /// Owner uid.
    pub uid: u64,
    /// Owner gid.
    pub gid: u64,
    /// Owner user name.
    pub uname: String,
    /// Owner group name.
    pub gname: String,
    /// Content size in bytes.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: u64,
    /// The target of a symlink or hard link.
    pub link_target: Option<String>,
    /// Major and minor numbers of a device.
    pub device: Option<(u32, u32)>,
    /// PAX records of this entry (`APK-TOOLS.checksum.SHA1`, `SCHILY.xattr.*`, ...).
    pub pax: Vec<(String, Vec<u8>)>,
    /// Where the content is in the decompressed archive bytes.
    pub content: Range<usize>,
}

impl Entry {
    /// A PAX record's value by key.
    pub fn pax_value(&self, key: &str) -> Option<&[u8]> {
        self.pax.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_slice())
    }

    /// Extended attributes from `SCHILY.xattr.NAME` records.
    pub fn xattrs(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.pax.iter().filter_map(|(k, v)| k.strip_prefix("SCHILY.xattr.").map(|n| (n, v.as_slice())))
    }
}

/// Reads every entry of an uncompressed tar archive.
pub fn read(archive: &[u8], what: &str) -> Result<Vec<Entry>> {
    let bad = |e: std::io::Error| Error::format(what, format!("tar: {e}"));
    let mut ar = tar::Archive::new(archive);
    let mut out = Vec::new();
    for entry in ar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        out.push(entry_of(&mut entry, archive.len(), what)?);
    }
    Ok(out)
}

fn entry_of(entry: &mut tar::Entry<'_, &[u8]>, total: usize, what: &str) -> Result<Entry> {
    let bad = |e: std::io::Error| Error::format(what, format!("tar: {e}"));
    let path = String::from_utf8(entry.path_bytes().into_owned())
        .map_err(|_| Error::format(what, "tar entry name is not UTF-8"))?;
    let header = entry.header();
    let kind = match header.entry_type() {
        tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
        tar::EntryType::Directory => Kind::Dir,
        tar::EntryType::Symlink => Kind::Symlink,
        tar::EntryType::Link => Kind::Hardlink,
        tar::EntryType::Char => Kind::CharDevice,
        tar::EntryType::Block => Kind::BlockDevice,
        tar::EntryType::Fifo => Kind::Fifo,
        other => return Err(Error::format(what, format!("{path}: unsupported tar entry type {other:?}"))),
    };
    let device = match kind {
        Kind::CharDevice | Kind::BlockDevice => {
            let major = header.device_major().map_err(bad)?.unwrap_or(0);
            let minor = header.device_minor().map_err(bad)?.unwrap_or(0);
            Some((major, minor))
        }
        _ => None,
    };
    let link_target = match entry.link_name_bytes() {
        Some(l) if matches!(kind, Kind::Symlink | Kind::Hardlink) => Some(
            String::from_utf8(l.into_owned())
                .map_err(|_| Error::format(what, format!("{path}: link target is not UTF-8")))?,
        ),
        _ => None,
    };
    let mut pax = Vec::new();
    if let Some(exts) = entry.pax_extensions().map_err(bad)? {
        for ext in exts {
            let ext = ext.map_err(bad)?;
            let key = ext.key().map_err(|_| Error::format(what, format!("{path}: PAX key is not UTF-8")))?;
            pax.push((key.to_owned(), ext.value_bytes().to_vec()));
        }
    }
    let size = entry.size();
    let start = usize::try_from(entry.raw_file_position()).unwrap_or(usize::MAX);
    let end = start.checked_add(usize::try_from(size).unwrap_or(usize::MAX)).filter(|&e| e <= total);
    let end = end.ok_or_else(|| Error::format(what, format!("{path}: content runs past the end of the archive")))?;
    let header = entry.header();
    let uname = header.username().ok().flatten().unwrap_or_default().to_owned();
    let gname = header.groupname().ok().flatten().unwrap_or_default().to_owned();
    let e = Entry {
        path,
        kind,
        mode: header.mode().map_err(bad)? & 0o7777,
        uid: header.uid().map_err(bad)?,
        gid: header.gid().map_err(bad)?,
        uname,
        gname,
        size,
        mtime: header.mtime().map_err(bad)?,
        link_target,
        device,
        pax,
        content: start..end,
    };
    // Drain so the archive reader is positioned at the next header.
    std::io::copy(entry, &mut std::io::sink()).map_err(bad)?;
    Ok(e)
}

/// What to write for one entry.
#[derive(Clone, Debug)]
pub struct NewEntry<'a> {
    /// The entry's path.
    pub path: &'a str,
    /// What it is.
    pub kind: Kind,
    /// Permission bits.
    pub mode: u32,
    /// Owner uid.
    pub uid: u64,
    /// Owner gid.
    pub gid: u64,
    /// Owner user name.
    pub uname: &'a str,
    /// Owner group name.
    pub gname: &'a str,
    /// Modification time, seconds since the epoch.
    pub mtime: u64,
    /// The target of a symlink or hard link.
    pub link_target: Option<&'a str>,
    /// A file's content.
    pub content: &'a [u8],
    /// PAX records written before the entry (in this order).
    pub pax: Vec<(String, Vec<u8>)>,
}

impl<'a> NewEntry<'a> {
    /// A regular file owned by root (uid/gid 0, names `root`), without PAX records:
    /// what control streams and index archives hold.
    pub fn root_file(path: &'a str, content: &'a [u8], mode: u32, mtime: u64) -> NewEntry<'a> {
        NewEntry {
            path,
            kind: Kind::File,
            mode,
            uid: 0,
            gid: 0,
            uname: "root",
            gname: "root",
            mtime,
            link_target: None,
            content,
            pax: vec![],
        }
    }
}

/// A deterministic tar writer into memory.
#[derive(Default)]
pub struct Writer {
    out: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Writer {
        Writer::default()
    }

    /// Appends one entry (with a PAX header first when it has records or a long name).
    pub fn append(&mut self, e: &NewEntry<'_>) -> Result<()> {
        let mut pax = e.pax.clone();
        if e.path.len() > 100 {
            pax.push(("path".into(), e.path.as_bytes().to_vec()));
        }
        if e.link_target.is_some_and(|l| l.len() > 100) {
            pax.push(("linkpath".into(), e.link_target.unwrap_or_default().as_bytes().to_vec()));
        }
        if !pax.is_empty() {
            let body = pax_body(&pax);
            let name = short_name(&format!("PaxHeaders/{}", e.path));
            let header = ustar_header(&name, tar::EntryType::XHeader, 0o644, 0, 0, "", "", e.mtime, None, body.len())?;
            self.raw(&header, &body);
        }
        let ty = match e.kind {
            Kind::File => tar::EntryType::Regular,
            Kind::Dir => tar::EntryType::Directory,
            Kind::Symlink => tar::EntryType::Symlink,
            Kind::Hardlink => tar::EntryType::Link,
            Kind::CharDevice => tar::EntryType::Char,
            Kind::BlockDevice => tar::EntryType::Block,
            Kind::Fifo => tar::EntryType::Fifo,
        };
        let size = if e.kind == Kind::File { e.content.len() } else { 0 };
        let name = if e.path.len() > 100 { short_name(e.path) } else { e.path.to_owned() };
        let link = e.link_target.map(|l| if l.len() > 100 { short_name(l) } else { l.to_owned() });
        let header = ustar_header(&name, ty, e.mode, e.uid, e.gid, e.uname, e.gname, e.mtime, link.as_deref(), size)?;
        self.raw(&header, if e.kind == Kind::File { e.content } else { &[] });
        Ok(())
    }

    fn raw(&mut self, header: &[u8; 512], body: &[u8]) {
        self.out.extend_from_slice(header);
        self.out.extend_from_slice(body);
        self.out.resize(self.out.len().div_ceil(512) * 512, 0);
    }

    /// The archive; with `end_marker` the two zero blocks that close a tar archive.
    pub fn finish(mut self, end_marker: bool) -> Vec<u8> {
        if end_marker {
            self.out.resize(self.out.len() + 1024, 0);
        }
        self.out
    }
}

fn short_name(path: &str) -> String {
    let mut end = path.len().min(99);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    path[..end].to_owned()
}

#[allow(clippy::too_many_arguments)]
fn ustar_header(
    name: &str,
    ty: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    uname: &str,
    gname: &str,
    mtime: u64,
    link: Option<&str>,
    size: usize,
) -> Result<[u8; 512]> {
    let bad = |e: std::io::Error| Error::format(name, format!("cannot write tar header: {e}"));
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(ty);
    // Names are at most 100 bytes here (longer ones go through PAX), so set them directly.
    let bytes = name.as_bytes();
    h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
    if let Some(l) = link {
        h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
    }
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_username(uname).map_err(bad)?;
    h.set_groupname(gname).map_err(bad)?;
    h.set_mtime(mtime);
    h.set_size(size as u64);
    h.set_cksum();
    Ok(*h.as_bytes())
}

/// PAX records: `"<len> <key>=<value>\n"`, where len counts the whole record.
fn pax_body(records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in records {
        let rest = k.len() + v.len() + 3; // space, '=', newline
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        body.extend_from_slice(format!("{len} {k}=").as_bytes());
        body.extend_from_slice(v);
        body.push(b'\n');
    }
    body
}

/// Reads a whole entry's content.
pub fn content<'a>(archive: &'a [u8], e: &Entry) -> &'a [u8] {
    &archive[e.content.clone()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file<'a>(path: &'a str, content: &'a [u8]) -> NewEntry<'a> {
        NewEntry::root_file(path, content, 0o644, 1)
    }

    #[test]
    fn written_archives_read_back_with_pax_records_and_long_names() {
        let long = "d/".repeat(80) + "file";
        let mut w = Writer::new();
        let mut a = file("a", b"hello");
        a.pax.push(("APK-TOOLS.checksum.SHA1".into(), b"abc".to_vec()));
        w.append(&a).unwrap();
        w.append(&file(&long, b"x")).unwrap();
        let link = NewEntry { kind: Kind::Symlink, link_target: Some("/run"), ..file("l", b"") };
        w.append(&link).unwrap();
        let bytes = w.finish(true);
        let entries = read(&bytes, "t").unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(content(&bytes, &entries[0]), b"hello");
        assert_eq!(entries[0].pax_value("APK-TOOLS.checksum.SHA1"), Some(&b"abc"[..]));
        assert_eq!(entries[1].path, long);
        assert_eq!(entries[2].link_target.as_deref(), Some("/run"));
        assert_eq!(entries[2].kind, Kind::Symlink);
    }

    #[test]
    fn archives_without_end_marker_are_read() {
        let mut w = Writer::new();
        w.append(&file(".PKGINFO", b"pkgname = a\n")).unwrap();
        let bytes = w.finish(false);
        assert_eq!(bytes.len(), 1024);
        assert_eq!(read(&bytes, "t").unwrap().len(), 1);
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        // The length field includes its own digits: "6 a=b\n" is 6 bytes.
        let body = pax_body(&[("a".into(), b"b".to_vec())]);
        assert_eq!(body, b"6 a=b\n");
        let body = pax_body(&[("k".into(), vec![b'v'; 5])]);
        assert_eq!(body, b"11 k=vvvvv\n");
    }
}
