//! Trusted public keys (a directory, like `/etc/apk/keys`) and the signatures that name
//! them: `.SIGN.RSA.<key>` (SHA-1), `.SIGN.RSA256.<key>` (SHA-256) and `.SIGN.RSA512.<key>`
//! (SHA-512), RSA PKCS#1 v1.5 over the bytes they sign, as apk-tools checks them.

use std::path::{Path, PathBuf};

use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use super::{streams, tarball, Error, Result};
use crate::fstree::{FsTree, Kind as TreeKind, Node, TreePath};

/// A signature algorithm, named by the prefix of the signature file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SigAlgo {
    /// `.SIGN.RSA.`: RSA with SHA-1.
    RsaSha1,
    /// `.SIGN.RSA256.`: RSA with SHA-256.
    RsaSha256,
    /// `.SIGN.RSA512.`: RSA with SHA-512.
    RsaSha512,
}

impl SigAlgo {
    /// The file name prefix: `.SIGN.RSA.`, `.SIGN.RSA256.`, `.SIGN.RSA512.`.
    pub fn prefix(self) -> &'static str {
        match self {
            SigAlgo::RsaSha1 => ".SIGN.RSA.",
            SigAlgo::RsaSha256 => ".SIGN.RSA256.",
            SigAlgo::RsaSha512 => ".SIGN.RSA512.",
        }
    }

    /// A human name: `RSA-SHA1`, ...
    pub fn name(self) -> &'static str {
        match self {
            SigAlgo::RsaSha1 => "RSA-SHA1",
            SigAlgo::RsaSha256 => "RSA-SHA256",
            SigAlgo::RsaSha512 => "RSA-SHA512",
        }
    }

    pub(crate) fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            parts.iter().for_each(|p| d.update(p));
            d.finalize().to_vec()
        }
        match self {
            SigAlgo::RsaSha1 => run::<Sha1>(parts),
            SigAlgo::RsaSha256 => run::<Sha256>(parts),
            SigAlgo::RsaSha512 => run::<Sha512>(parts),
        }
    }

    pub(crate) fn padding(self) -> Pkcs1v15Sign {
        match self {
            SigAlgo::RsaSha1 => Pkcs1v15Sign::new::<Sha1>(),
            SigAlgo::RsaSha256 => Pkcs1v15Sign::new::<Sha256>(),
            SigAlgo::RsaSha512 => Pkcs1v15Sign::new::<Sha512>(),
        }
    }

    /// Splits a signature file name into its algorithm and key name.
    pub fn from_file_name(name: &str) -> Option<(SigAlgo, &str)> {
        // Longest prefixes first: ".SIGN.RSA." is a prefix of neither of the others.
        [SigAlgo::RsaSha256, SigAlgo::RsaSha512, SigAlgo::RsaSha1]
            .into_iter()
            .find_map(|a| name.strip_prefix(a.prefix()).map(|key| (a, key)))
    }
}

/// One signature found in a signature stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// Its algorithm.
    pub algo: SigAlgo,
    /// The key file name it names.
    pub key_name: String,
    /// The signature bytes.
    pub bytes: Vec<u8>,
}

/// Who signed, once verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signer {
    /// The key file name.
    pub key_name: String,
    /// The algorithm of the signature that verified.
    pub algo: SigAlgo,
}

/// A directory of trusted public keys (PEM, SPKI or PKCS#1), looked up by file name.
#[derive(Clone, Debug)]
pub struct Keys {
    dir: PathBuf,
}

impl Keys {
    /// Opens a keys directory (it must exist).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Keys> {
        let dir = dir.into();
        let meta = std::fs::metadata(&dir).map_err(Error::io(&dir))?;
        if !meta.is_dir() {
            return Err(Error::Io {
                path: dir,
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a directory of public keys"),
            });
        }
        Ok(Keys { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The public key named `name`, or `None` when the directory has no such file. Names
    /// that could leave the directory are refused.
    pub fn get(&self, name: &str) -> Result<Option<RsaPublicKey>> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." || name.contains('\0') {
            return Ok(None);
        }
        let path = self.dir.join(name);
        let pem = match std::fs::read_to_string(&path) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::Io { path, source: e }),
        };
        public_key_from_pem(&pem, &path).map(Some)
    }
}

/// The keys in directory `dir` of a root filesystem tree (`etc/apk/keys` of a pinned
/// minirootfs, the root of trust): each file as `(name, bytes)`, sorted by name.
/// Symbolic links are followed inside the tree, never outside it (alpine-keys may link
/// its keys from `/usr/share/apk/keys`); directories and dangling links are skipped.
pub fn in_tree(tree: &FsTree, dir: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let what = format!("{dir} of the keys tarball");
    let Some(node) = lookup(tree, dir) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for (name, _) in node.children() {
        let name = String::from_utf8(name.clone()).map_err(|_| Error::format(&what, "a key file name is not UTF-8"))?;
        let Some(file) = lookup(tree, &format!("{dir}/{name}")) else { continue };
        if let TreeKind::File(content) = &file.kind {
            let bytes = content.read_all().map_err(|e| Error::format(&what, format!("{name}: {e}")))?;
            out.push((name, bytes));
        }
    }
    Ok(out)
}

/// The entry at `path`, following symbolic links (at most 16) and hard links inside the
/// tree; absolute link targets start at the tree's root and `..` stops there.
fn lookup<'t>(tree: &'t FsTree, path: &str) -> Option<&'t Node> {
    let mut todo: Vec<String> = path.split('/').rev().filter(|c| !c.is_empty()).map(str::to_owned).collect();
    let mut at: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                at.pop();
                continue;
            }
            _ => at.push(c),
        }
        let node = tree.get(at.join("/"))?;
        if let TreeKind::Symlink(target) = &node.kind {
            hops += 1;
            if hops > 16 {
                return None;
            }
            at.pop();
            let target = String::from_utf8_lossy(target).into_owned();
            if target.starts_with('/') {
                at.clear();
            }
            todo.extend(target.split('/').rev().filter(|c| !c.is_empty()).map(str::to_owned));
        }
    }
    let path = TreePath::parse(at.join("/")).ok()?;
    let node = tree.get_path(&path)?;
    tree.data_node(&path, node).ok().map(|(_, n)| n)
}

/// Parses a PEM public key (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`).
pub fn public_key_from_pem(pem: &str, path: &Path) -> Result<RsaPublicKey> {
    RsaPublicKey::from_public_key_pem(pem.trim())
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem.trim()))
        .map_err(|e| Error::Key { path: path.to_owned(), reason: format!("not a PEM RSA public key: {e}") })
}

/// Reads the signatures out of a signature stream's tar (entries named `.SIGN.*`).
/// Entries with an unknown algorithm are skipped, as apk does.
pub fn parse_signatures(tar: &[u8], what: &str) -> Result<Vec<Signature>> {
    let mut out = Vec::new();
    for e in tarball::read(tar, what)? {
        if !e.path.starts_with(".SIGN.") {
            return Err(Error::format(what, format!("unexpected {:?} in the signature stream", e.path)));
        }
        if let Some((algo, key)) = SigAlgo::from_file_name(&e.path) {
            out.push(Signature { algo, key_name: key.to_owned(), bytes: tarball::content(tar, &e).to_vec() });
        }
    }
    Ok(out)
}

/// Whether a stream's tar holds signatures (rather than being the control or index stream).
pub fn is_signature_stream(s: &streams::Stream) -> bool {
    s.content.len() >= 512 && s.content.starts_with(b".SIGN.")
}

/// Verifies `signed` (the concatenation of `parts`) against the first signature whose key
/// is in `keys`, as apk picks it. Errors name the signers when no key is trusted.
pub fn verify(sigs: &[Signature], parts: &[&[u8]], keys: &Keys, what: &str) -> Result<Signer> {
    if sigs.is_empty() {
        return Err(Error::Unsigned { what: what.to_owned() });
    }
    for sig in sigs {
        let Some(key) = keys.get(&sig.key_name)? else { continue };
        let digest = sig.algo.digest(parts);
        return match key.verify(sig.algo.padding(), &digest, &sig.bytes) {
            Ok(()) => Ok(Signer { key_name: sig.key_name.clone(), algo: sig.algo }),
            Err(_) => {
                Err(Error::BadSignature { what: what.to_owned(), key: sig.key_name.clone(), algo: sig.algo.name() })
            }
        };
    }
    let signers = sigs.iter().map(|s| s.key_name.as_str()).collect::<Vec<_>>().join(", ");
    Err(Error::UntrustedKey { what: what.to_owned(), signers, dir: keys.dir.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_file_names_split_into_algorithm_and_key() {
        assert_eq!(SigAlgo::from_file_name(".SIGN.RSA.k.rsa.pub"), Some((SigAlgo::RsaSha1, "k.rsa.pub")));
        assert_eq!(SigAlgo::from_file_name(".SIGN.RSA256.k.rsa.pub"), Some((SigAlgo::RsaSha256, "k.rsa.pub")));
        assert_eq!(SigAlgo::from_file_name(".SIGN.RSA512.k"), Some((SigAlgo::RsaSha512, "k")));
        assert_eq!(SigAlgo::from_file_name(".SIGN.DSA.k"), None);
    }

    #[test]
    fn key_names_that_leave_the_directory_are_not_looked_up() {
        let keys = Keys::open(std::env::temp_dir()).unwrap();
        for name in ["../etc/passwd", "/etc/passwd", "..", ".", ""] {
            assert!(keys.get(name).unwrap().is_none(), "{name}");
        }
    }

    #[test]
    fn keys_in_a_tree_are_its_files_with_links_followed_inside_the_tree() {
        let mut tree = FsTree::new(0);
        tree.write("usr/share/apk/keys/b.rsa.pub", b"B".to_vec(), 0o644).unwrap();
        tree.write("etc/apk/keys/a.rsa.pub", b"A".to_vec(), 0o644).unwrap();
        tree.symlink("etc/apk/keys/b.rsa.pub", "../../../usr/share/apk/keys/b.rsa.pub").unwrap();
        tree.symlink("etc/apk/keys/c.rsa.pub", "/usr/share/apk/keys/b.rsa.pub").unwrap();
        tree.symlink("etc/apk/keys/escape.pub", "../../../../../etc/passwd").unwrap();
        tree.symlink("etc/apk/keys/loop.pub", "loop.pub").unwrap();
        tree.mkdir_p("etc/apk/keys/sub", 0o755).unwrap();
        let keys = in_tree(&tree, "etc/apk/keys").unwrap();
        let names: Vec<(&str, &[u8])> = keys.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
        assert_eq!(names, [("a.rsa.pub", &b"A"[..]), ("b.rsa.pub", b"B"), ("c.rsa.pub", b"B")]);
        assert!(in_tree(&tree, "etc/nothing").unwrap().is_empty());
    }

    #[test]
    fn a_missing_keys_directory_is_an_error_naming_it() {
        let err = Keys::open("/nonexistent/keys").unwrap_err().to_string();
        assert!(err.contains("/nonexistent/keys"), "{err}");
    }
}
