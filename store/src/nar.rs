//! NAR, the Nix ARchive: the one serialization of a file tree that store hashes are
//! computed over, exactly as Nix defines it, so `nix-hash --type sha256` agrees.
//!
//! A NAR is a sequence of strings, each a little-endian u64 length, the bytes, and
//! zero padding to a multiple of 8:
//!
//! ```text
//! nar       = "nix-archive-1" node
//! node      = "(" "type" ( regular | symlink | directory ) ")"
//! regular   = "regular" [ "executable" "" ] "contents" <u64 size> <bytes, padded>
//! symlink   = "symlink" "target" target
//! directory = "directory" { "entry" "(" "name" name "node" node ")" }   (names sorted bytewise)
//! ```
//!
//! Everything streams in constant memory. Hashing runs as a pipeline: one thread walks
//! the tree and reads files into a small pool of 1 MiB buffers, the caller's thread
//! hashes them (one sha256 stream cannot be split, but reading and hashing overlap).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::mpsc::sync_channel;

use crate::error::{Error, Result};
use crate::hash::{Algo, Hash, Hasher};
use crate::tree;

/// The first string of every NAR.
pub const MAGIC: &str = "nix-archive-1";
/// Size of the buffers the pipeline moves between threads.
const CHUNK: usize = 1 << 20;
/// Buffers in flight between the reader and the hasher (memory is CHUNK * POOL).
const POOL: usize = 4;
/// Longest name a directory entry may have (Linux NAME_MAX).
const MAX_NAME: usize = 255;
/// Longest symlink target (Linux PATH_MAX).
const MAX_TARGET: usize = 4095;
/// Deepest nesting restore accepts, so a hostile NAR cannot exhaust the stack.
const MAX_DEPTH: usize = 1024;

/// Writes the NAR of the tree at `path` (a file, symlink or directory) to `out`.
pub fn dump(path: &Path, out: &mut impl Write) -> Result<()> {
    let mut sink = Buffered::new(|buf: Vec<u8>, fill: usize| {
        out.write_all(&buf[..fill])?;
        Ok(buf)
    });
    Walker { sink: &mut sink, copy_to: None }.nar(path)?;
    sink.flush().map_err(|source| Error::NarOutput { source })?;
    out.flush().map_err(|source| Error::NarOutput { source })
}

/// The sha256 NAR hash and NAR size of the tree at `path`: what
/// `nix-hash --type sha256 --base32 PATH` prints, and what the store records.
pub fn hash_path(path: &Path) -> Result<(Hash, u64)> {
    hash_tree(path, None, |_| ())
}

/// Hashes the NAR of `path`, showing every byte of the stream to `inspect` too (the
/// reference scanner uses it). With `copy_to`, also copies the tree there, creating
/// files read-only with canonical modes and mtimes, so that what is hashed is exactly
/// what was written. The top of the copy stays writable (see [`tree::normalize`]).
pub(crate) fn hash_tree(path: &Path, copy_to: Option<&Path>, mut inspect: impl FnMut(&[u8])) -> Result<(Hash, u64)> {
    let mut hasher = Algo::Sha256.hasher();
    let mut size = 0u64;
    pipeline(
        |sink| Walker { sink, copy_to }.nar(path),
        |bytes| {
            hasher.update(bytes);
            inspect(bytes);
            size += bytes.len() as u64;
        },
    )?;
    Ok((hasher.finish(), size))
}

/// Runs `produce` on a thread of its own, handing full buffers to `consume` on this one.
fn pipeline<P>(produce: P, mut consume: impl FnMut(&[u8])) -> Result<()>
where
    P: FnOnce(&mut dyn Sink) -> Result<()> + Send,
{
    let (full_tx, full_rx) = sync_channel::<(Vec<u8>, usize)>(POOL);
    let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(POOL + 1);
    std::thread::scope(|s| {
        let producer = s.spawn(move || {
            let mut allocated = 1;
            let mut sink = Buffered::new(move |buf: Vec<u8>, fill: usize| {
                full_tx.send((buf, fill)).map_err(|_| io::Error::other("the hashing thread stopped"))?;
                if let Ok(buf) = empty_rx.try_recv() {
                    return Ok(buf);
                }
                if allocated < POOL {
                    allocated += 1;
                    return Ok(vec![0; CHUNK]);
                }
                empty_rx.recv().map_err(|_| io::Error::other("the hashing thread stopped"))
            });
            produce(&mut sink)?;
            sink.flush().map_err(|source| Error::NarOutput { source })
        });
        for (buf, fill) in full_rx {
            consume(&buf[..fill]);
            // The producer may be gone already; a buffer nobody wants is just dropped.
            let _ = empty_tx.send(buf);
        }
        match producer.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Where the walker puts NAR bytes. File contents are read straight into the sink's
/// own buffer (`space` then `commit`) to save a copy.
trait Sink {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Room for up to `max` bytes (never empty when `max > 0`).
    fn space(&mut self, max: usize) -> io::Result<&mut [u8]>;
    /// Marks `n` bytes of the last `space` as written.
    fn commit(&mut self, n: usize);
}

/// A 1 MiB buffer handed to `flush` whenever it fills; `flush` returns the next one.
struct Buffered<F> {
    buf: Vec<u8>,
    fill: usize,
    flush: F,
}

impl<F: FnMut(Vec<u8>, usize) -> io::Result<Vec<u8>>> Buffered<F> {
    fn new(flush: F) -> Self {
        Buffered { buf: vec![0; CHUNK], fill: 0, flush }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.fill > 0 {
            let buf = std::mem::take(&mut self.buf);
            self.buf = (self.flush)(buf, self.fill)?;
            self.fill = 0;
        }
        Ok(())
    }
}

impl<F: FnMut(Vec<u8>, usize) -> io::Result<Vec<u8>>> Sink for Buffered<F> {
    fn put(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if self.fill == CHUNK {
                self.flush()?;
            }
            let n = bytes.len().min(CHUNK - self.fill);
            self.buf[self.fill..self.fill + n].copy_from_slice(&bytes[..n]);
            self.fill += n;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    fn space(&mut self, max: usize) -> io::Result<&mut [u8]> {
        if self.fill == CHUNK {
            self.flush()?;
        }
        let end = CHUNK.min(self.fill + max);
        Ok(&mut self.buf[self.fill..end])
    }

    fn commit(&mut self, n: usize) {
        self.fill += n;
    }
}

/// Walks a tree in NAR order, writing its NAR to `sink` and, with `copy_to`,
/// mirroring it there in canonical form.
struct Walker<'a> {
    sink: &'a mut dyn Sink,
    copy_to: Option<&'a Path>,
}

impl Walker<'_> {
    fn nar(&mut self, path: &Path) -> Result<()> {
        self.str(MAGIC.as_bytes())?;
        let copy_to = self.copy_to.map(Path::to_owned);
        self.node(path, copy_to.as_deref(), true)
    }

    fn node(&mut self, path: &Path, dest: Option<&Path>, top: bool) -> Result<()> {
        let md = fs::symlink_metadata(path).map_err(Error::io(path))?;
        let ft = md.file_type();
        self.strs(&[b"(", b"type"])?;
        if ft.is_symlink() {
            let target = fs::read_link(path).map_err(Error::io(path))?;
            self.strs(&[b"symlink", b"target", target.as_os_str().as_bytes()])?;
            if let Some(dest) = dest {
                std::os::unix::fs::symlink(&target, dest).map_err(Error::io(dest))?;
                tree::set_canonical_mtime(dest)?;
            }
        } else if ft.is_file() {
            self.regular(path, &md, dest)?;
        } else if ft.is_dir() {
            self.directory(path, dest, top)?;
        } else {
            return Err(Error::UnsupportedFile { path: path.to_owned(), kind: tree::kind_name(&md) });
        }
        self.str(b")")
    }

    fn regular(&mut self, path: &Path, md: &fs::Metadata, dest: Option<&Path>) -> Result<()> {
        let mode = tree::file_mode(md);
        self.str(b"regular")?;
        if mode == 0o555 {
            self.strs(&[b"executable", b""])?;
        }
        self.str(b"contents")?;
        let len = md.len();
        self.put(&len.to_le_bytes())?;
        let mut file = File::open(path).map_err(Error::io(path))?;
        let mut out = match dest {
            Some(d) => Some(OpenOptions::new().write(true).create_new(true).mode(mode).open(d).map_err(Error::io(d))?),
            None => None,
        };
        let mut left = len;
        while left > 0 {
            let space =
                self.sink.space(left.min(CHUNK as u64) as usize).map_err(|source| Error::NarOutput { source })?;
            let n = read_some(&mut file, space).map_err(Error::io(path))?;
            if n == 0 {
                return Err(Error::FileChanged { path: path.to_owned() });
            }
            if let (Some(out), Some(d)) = (out.as_mut(), dest) {
                out.write_all(&space[..n]).map_err(Error::io(d))?;
            }
            self.sink.commit(n);
            left -= n as u64;
        }
        self.pad(len)?;
        if let (Some(out), Some(d)) = (out, dest) {
            let t = fs::FileTimes::new().set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1));
            out.set_times(t).map_err(Error::io(d))?;
        }
        Ok(())
    }

    fn directory(&mut self, path: &Path, dest: Option<&Path>, top: bool) -> Result<()> {
        self.str(b"directory")?;
        if let Some(d) = dest {
            fs::DirBuilder::new().mode(0o755).create(d).map_err(Error::io(d))?;
        }
        for name in sorted_names(path)? {
            self.strs(&[b"entry", b"(", b"name", name.as_bytes(), b"node"])?;
            let child_dest = dest.map(|d| d.join(&name));
            self.node(&path.join(&name), child_dest.as_deref(), false)?;
            self.str(b")")?;
        }
        if let Some(d) = dest {
            if !top {
                fs::set_permissions(d, fs::Permissions::from_mode(0o555)).map_err(Error::io(d))?;
            }
            tree::set_canonical_mtime(d)?;
        }
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.sink.put(bytes).map_err(|source| Error::NarOutput { source })
    }

    fn str(&mut self, s: &[u8]) -> Result<()> {
        self.put(&(s.len() as u64).to_le_bytes())?;
        self.put(s)?;
        self.pad(s.len() as u64)
    }

    fn strs(&mut self, ss: &[&[u8]]) -> Result<()> {
        ss.iter().try_for_each(|s| self.str(s))
    }

    fn pad(&mut self, len: u64) -> Result<()> {
        self.put(&[0u8; 8][..padding(len)])
    }
}

fn padding(len: u64) -> usize {
    ((8 - len % 8) % 8) as usize
}

/// The entries of a directory, sorted bytewise as NAR requires.
fn sorted_names(dir: &Path) -> Result<Vec<OsString>> {
    let mut names = fs::read_dir(dir)
        .map_err(Error::io(dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<Vec<_>>>()
        .map_err(Error::io(dir))?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// One `read`, retried on EINTR.
fn read_some(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Restores the NAR read from `reader` at `dest` (which must not exist) and returns
/// its sha256 hash and size. Regular files get modes 0444/0555, directories stay
/// writable (0755) so the caller can normalize and move the tree. The stream must
/// end with the NAR. On error nothing is left at `dest`.
pub fn restore(reader: impl Read, dest: &Path) -> Result<(Hash, u64)> {
    if fs::symlink_metadata(dest).is_ok() {
        return Err(Error::RestoreTarget { path: dest.to_owned(), why: "it already exists".into() });
    }
    let mut parser = Parser { r: BufReader::with_capacity(CHUNK, reader), offset: 0, hasher: Algo::Sha256.hasher() };
    let result = parser.nar(dest);
    if result.is_err() {
        // What a rejected NAR left behind is garbage; the error already says why.
        let _ = tree::remove(dest);
    }
    result?;
    Ok((parser.hasher.finish(), parser.offset))
}

struct Parser<R> {
    r: R,
    offset: u64,
    hasher: Hasher,
}

impl<R: Read> Parser<R> {
    fn nar(&mut self, dest: &Path) -> Result<()> {
        self.expect(MAGIC, "not a NAR (bad magic)")?;
        self.node(dest, 0)?;
        let mut extra = [0u8; 1];
        match self.r.read(&mut extra) {
            Ok(0) => Ok(()),
            Ok(_) => Err(self.bad("trailing data after the end of the NAR")),
            Err(e) => Err(self.bad(&format!("read error: {e}"))),
        }
    }

    fn node(&mut self, dest: &Path, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(self.bad(&format!("directories nested deeper than {MAX_DEPTH}")));
        }
        self.expect("(", "expected `(`")?;
        self.expect("type", "expected `type`")?;
        match self.string(16)?.as_slice() {
            b"regular" => self.regular(dest)?,
            b"symlink" => self.symlink(dest)?,
            b"directory" => self.directory(dest, depth)?,
            other => return Err(self.bad(&format!("unknown node type {:?}", String::from_utf8_lossy(other)))),
        }
        Ok(())
    }

    fn regular(&mut self, dest: &Path) -> Result<()> {
        let mut tag = self.string(16)?;
        let executable = tag == b"executable";
        if executable {
            self.expect("", "`executable` must be followed by an empty string")?;
            tag = self.string(16)?;
        }
        if tag != b"contents" {
            return Err(self.bad("expected `contents`"));
        }
        let len = self.u64()?;
        let mut file =
            OpenOptions::new().write(true).create_new(true).mode(0o644).open(dest).map_err(Error::io(dest))?;
        let mut buf = vec![0u8; CHUNK.min(len as usize)];
        let mut left = len;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            self.read(&mut buf[..n])?;
            file.write_all(&buf[..n]).map_err(Error::io(dest))?;
            left -= n as u64;
        }
        self.skip_padding(len)?;
        self.expect(")", "expected `)` after the file contents")?;
        let mode = if executable { 0o555 } else { 0o444 };
        file.set_permissions(fs::Permissions::from_mode(mode)).map_err(Error::io(dest))
    }

    fn symlink(&mut self, dest: &Path) -> Result<()> {
        self.expect("target", "expected `target`")?;
        let target = self.string(MAX_TARGET)?;
        if target.is_empty() || target.contains(&0) {
            return Err(self.bad("a symlink target must be non-empty and free of NUL bytes"));
        }
        std::os::unix::fs::symlink(OsString::from_vec(target), dest).map_err(Error::io(dest))?;
        self.expect(")", "expected `)` after the symlink target")
    }

    fn directory(&mut self, dest: &Path, depth: usize) -> Result<()> {
        fs::DirBuilder::new().mode(0o755).create(dest).map_err(Error::io(dest))?;
        let mut previous: Option<Vec<u8>> = None;
        loop {
            match self.string(16)?.as_slice() {
                b")" => return Ok(()),
                b"entry" => {}
                _ => return Err(self.bad("expected `entry` or `)` in a directory")),
            }
            self.expect("(", "expected `(` after `entry`")?;
            self.expect("name", "expected `name`")?;
            let name = self.string(MAX_NAME)?;
            self.check_name(&name, previous.as_deref())?;
            self.expect("node", "expected `node`")?;
            self.node(&dest.join(OsString::from_vec(name.clone())), depth + 1)?;
            self.expect(")", "expected `)` after a directory entry")?;
            previous = Some(name);
        }
    }

    fn check_name(&self, name: &[u8], previous: Option<&[u8]>) -> Result<()> {
        let shown = String::from_utf8_lossy(name);
        if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0) {
            return Err(self.bad(&format!("invalid entry name {shown:?} (empty, `.`, `..`, or with `/` or NUL)")));
        }
        if previous.is_some_and(|p| p >= name) {
            return Err(self.bad(&format!("entry {shown:?} is out of order or a duplicate")));
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<()> {
        match self.r.read_exact(buf) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(self.bad("truncated (the stream ended early)"))
            }
            Err(e) => return Err(self.bad(&format!("read error: {e}"))),
        }
        self.hasher.update(buf);
        self.offset += buf.len() as u64;
        Ok(())
    }

    fn u64(&mut self) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn string(&mut self, max: usize) -> Result<Vec<u8>> {
        let len = self.u64()?;
        if len > max as u64 {
            return Err(self.bad(&format!("a string of {len} bytes where at most {max} are allowed")));
        }
        let mut s = vec![0u8; len as usize];
        self.read(&mut s)?;
        self.skip_padding(len)?;
        Ok(s)
    }

    fn skip_padding(&mut self, len: u64) -> Result<()> {
        let mut pad = [0u8; 8];
        let n = padding(len);
        self.read(&mut pad[..n])?;
        if pad.iter().any(|&b| b != 0) {
            return Err(self.bad("non-zero padding"));
        }
        Ok(())
    }

    fn expect(&mut self, token: &str, why: &str) -> Result<()> {
        let start = self.offset;
        let s = self.string(token.len().max(16))?;
        if s != token.as_bytes() {
            return Err(Error::BadNar { offset: start, why: why.to_owned() });
        }
        Ok(())
    }

    fn bad(&self, why: &str) -> Error {
        Error::BadNar { offset: self.offset, why: why.to_owned() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    /// A NAR string, for building expected bytes by hand.
    fn s(text: &[u8]) -> Vec<u8> {
        let mut v = (text.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(text);
        v.resize(v.len() + padding(text.len() as u64), 0);
        v
    }

    fn nar_of(path: &Path) -> Vec<u8> {
        let mut out = Vec::new();
        dump(path, &mut out).unwrap();
        out
    }

    #[test]
    fn a_directory_with_one_file_has_the_bytes_nix_store_dump_gives() {
        // Captured from `nix-store --dump a` where a/f holds "hi\n".
        let golden = "\
            0d000000000000006e69782d617263686976652d31000000010000000000000028000000000000000400000000000000\
            747970650000000009000000000000006469726563746f7279000000000000000500000000000000656e747279000000\
            0100000000000000280000000000000004000000000000006e616d650000000001000000000000006600000000000000\
            04000000000000006e6f6465000000000100000000000000280000000000000004000000000000007479706500000000\
            0700000000000000726567756c6172000800000000000000636f6e74656e7473030000000000000068690a0000000000\
            010000000000000029000000000000000100000000000000290000000000000001000000000000002900000000000000";
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        fs::create_dir(&a).unwrap();
        fs::write(a.join("f"), b"hi\n").unwrap();
        assert_eq!(crate::hash::hex(&nar_of(&a)), golden);
    }

    #[test]
    fn executable_files_symlinks_and_sorted_entries_are_framed_as_nix_does() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("t");
        fs::create_dir(&t).unwrap();
        fs::write(t.join("b"), b"12345678").unwrap();
        fs::set_permissions(t.join("b"), fs::Permissions::from_mode(0o755)).unwrap();
        symlink("/x", t.join("a")).unwrap();
        let mut want = s(b"nix-archive-1");
        for tok in [&b"("[..], b"type", b"directory", b"entry", b"(", b"name", b"a", b"node", b"(", b"type"] {
            want.extend(s(tok));
        }
        for tok in [&b"symlink"[..], b"target", b"/x", b")", b")", b"entry", b"(", b"name", b"b", b"node", b"("] {
            want.extend(s(tok));
        }
        for tok in [&b"type"[..], b"regular", b"executable", b"", b"contents", b"12345678", b")", b")", b")"] {
            want.extend(s(tok));
        }
        assert_eq!(nar_of(&t), want);
    }

    #[test]
    fn hash_path_agrees_with_hashing_the_dump_and_counts_its_size() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("big"), vec![7u8; 3 * CHUNK + 5]).unwrap();
        fs::write(dir.path().join("small"), b"x").unwrap();
        let nar = nar_of(dir.path());
        let (hash, size) = hash_path(dir.path()).unwrap();
        assert_eq!(hash, Hash::of(Algo::Sha256, &nar));
        assert_eq!(size, nar.len() as u64);
    }

    #[test]
    fn restore_round_trips_a_tree_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("t");
        fs::create_dir_all(t.join("d/e")).unwrap();
        fs::write(t.join("d/f g"), vec![1u8; CHUNK + 3]).unwrap();
        fs::write(t.join("ünï"), b"").unwrap();
        fs::write(t.join("x"), b"#!/bin/sh\n").unwrap();
        fs::set_permissions(t.join("x"), fs::Permissions::from_mode(0o755)).unwrap();
        symlink("../nowhere", t.join("d/l")).unwrap();
        let nar = nar_of(&t);
        let back = dir.path().join("back");
        let (hash, size) = restore(&nar[..], &back).unwrap();
        assert_eq!((hash, size), (Hash::of(Algo::Sha256, &nar), nar.len() as u64));
        assert_eq!(nar_of(&back), nar);
        assert_eq!(fs::metadata(back.join("x")).unwrap().permissions().mode() & 0o777, 0o555);
    }

    fn restore_err(nar: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        let err = restore(nar, &dest).unwrap_err().to_string();
        assert!(!dest.exists(), "a rejected NAR left {dest:?} behind");
        err
    }

    fn dir_nar(names: &[&[u8]]) -> Vec<u8> {
        let mut v = s(b"nix-archive-1");
        for tok in [&b"("[..], b"type", b"directory"] {
            v.extend(s(tok));
        }
        for name in names {
            for tok in
                [&b"entry"[..], b"(", b"name", name, b"node", b"(", b"type", b"symlink", b"target", b"t", b")", b")"]
            {
                v.extend(s(tok));
            }
        }
        v.extend(s(b")"));
        v
    }

    #[test]
    fn restore_accepts_a_well_formed_directory() {
        let dir = tempfile::tempdir().unwrap();
        restore(&dir_nar(&[b"a", b"b"])[..], &dir.path().join("ok")).unwrap();
        assert_eq!(fs::read_link(dir.path().join("ok/b")).unwrap(), Path::new("t"));
    }

    #[test]
    fn restore_refuses_malformed_nars_with_a_reason() {
        let mut bad_magic = dir_nar(&[b"a"]);
        bad_magic[8] = b'N';
        assert!(restore_err(&bad_magic).contains("bad magic"));
        assert!(restore_err(&dir_nar(&[b"b", b"a"])).contains("out of order"));
        assert!(restore_err(&dir_nar(&[b"a", b"a"])).contains("duplicate"));
        for name in [&b"."[..], b"..", b"a/b", b"a\0b", b""] {
            assert!(restore_err(&dir_nar(&[name])).contains("invalid entry name"), "{name:?}");
        }
        let whole = dir_nar(&[b"a"]);
        for cut in [0, 7, 20, whole.len() - 1] {
            assert!(restore_err(&whole[..cut]).contains("truncated"), "cut at {cut}");
        }
        let mut trailing = whole.clone();
        trailing.push(0);
        assert!(restore_err(&trailing).contains("trailing data"));
        let mut bad_pad = whole;
        bad_pad[8 + 13] = 1;
        assert!(restore_err(&bad_pad).contains("padding"));
    }

    #[test]
    fn a_fifo_in_a_tree_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("p");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let err = hash_path(dir.path()).unwrap_err().to_string();
        assert!(err.contains("fifo") && err.contains("/p"), "{err}");
    }
}
