//! Git LFS objects in a composed tree: the `lfs-objects` rootfs op.
//!
//! A repository checkout made by [`crate::git`] keeps LFS pointer files as they are
//! (no smudge filter runs). The recipe pins every object of the checkout (path, oid,
//! size) and fetches the ones it installs as fixed outputs named by their sha256, so
//! no server is trusted. This op then checks, before anything is replaced:
//!
//! - every pointer of the checkout has a pin with the same oid and size (a pointer
//!   with no pin, or a different one, fails and names the row to add or change);
//! - every pin names a pointer of the checkout (a stale row fails too);
//! - each installed object has the pinned size;
//!
//! and writes each installed object at its place in the tree with the pointer's mode.
//! Finally no file of the tree may still be a pointer: a pointer copied into the
//! image without its object would ship a 130-byte text file in place of a program.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::fstree::{Content, FsTree, Kind};
use crate::git::{find_lfs_pointers, LfsPointer};

/// What can be wrong with the pins of a checkout.
#[derive(Debug, thiserror::Error)]
pub enum LfsError {
    /// A pointer in the checkout has no pin.
    #[error(
        "{path} is a Git LFS pointer with no pin; add the row (\"{path}\", \"{oid}\", {size}) to {table} \
         (and install its object, or leave it out of the image)"
    )]
    Unpinned {
        /// The file or path concerned.
        path: String,
        /// The object's sha256, hex.
        oid: String,
        /// The object's size in bytes.
        size: u64,
        /// Where the pins are kept.
        table: String,
    },

    /// A pin disagrees with the checkout's pointer.
    #[error(
        "{path}: the checkout's Git LFS pointer names oid {tree_oid} size {tree_size}, but {table} pins \
         oid {pin_oid} size {pin_size}; the pinned revision moved the object: update the row to \
         (\"{path}\", \"{tree_oid}\", {tree_size})"
    )]
    Mismatch {
        /// The file or path concerned.
        path: String,
        /// The oid the checkout's pointer names.
        tree_oid: String,
        /// The size the checkout's pointer names.
        tree_size: u64,
        /// The oid the pin names.
        pin_oid: String,
        /// The size the pin names.
        pin_size: u64,
        /// Where the pins are kept.
        table: String,
    },

    /// A pin names no pointer of the checkout.
    #[error("{path} is pinned in {table} but the checkout holds no Git LFS pointer there; remove or correct the row")]
    Stale {
        /// The file or path concerned.
        path: String,
        /// Where the pins are kept.
        table: String,
    },

    /// An object has another size than its pointer says.
    #[error("the object of {path} is {actual} bytes, but its pointer says {pinned}; the pin is wrong")]
    ObjectSize {
        /// The file or path concerned.
        path: String,
        /// The size the pointer names.
        pinned: u64,
        /// The object's actual size.
        actual: u64,
    },

    /// A pointer file would end up in the image.
    #[error(
        "/{path} in the image is still a Git LFS pointer (oid {oid}); pin and install its object, or keep the \
         file out of the image"
    )]
    LeftInImage {
        /// The file or path concerned.
        path: String,
        /// The object's sha256, hex.
        oid: String,
    },

    /// Reading the checkout failed.
    #[error(transparent)]
    Git(#[from] crate::git::Error),

    /// Writing the tree failed.
    #[error(transparent)]
    Tree(#[from] crate::fstree::FsTreeError),

    /// An I/O error.
    #[error("{path}: {source}")]
    Io {
        /// The file or path concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// One pinned object, as the op is given it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    /// The pointer file's path in the checkout (`userspace/usr/comma/setup`).
    pub path: String,
    /// sha256 of the object, hex.
    pub oid: String,
    /// The object's size in bytes.
    pub size: u64,
    /// Where the object goes in the tree, and the file holding it; `None` for
    /// objects the image does not use.
    pub install: Option<(String, PathBuf)>,
}

/// Checks every pointer of `checkout` against `pins` (`table` names where they
/// live, for messages), writes the installed objects into `tree`, and refuses a
/// tree that still holds a pointer. See the module documentation.
pub fn resolve(tree: &mut FsTree, checkout: &Path, pins: &[Pin], table: &str) -> Result<(), LfsError> {
    let pointers: BTreeMap<String, LfsPointer> =
        find_lfs_pointers(checkout)?.into_iter().map(|(path, p)| (path.to_string_lossy().into_owned(), p)).collect();
    check_pins(&pointers, pins, table)?;
    for pin in pins {
        if let Some((to, object)) = &pin.install {
            install(tree, checkout, pin, to, object)?;
        }
    }
    refuse_leftovers(tree)
}

/// Every pointer has an equal pin and every pin a pointer.
fn check_pins(pointers: &BTreeMap<String, LfsPointer>, pins: &[Pin], table: &str) -> Result<(), LfsError> {
    let by_path: BTreeMap<&str, &Pin> = pins.iter().map(|p| (p.path.as_str(), p)).collect();
    for (path, pointer) in pointers {
        let tree_oid = pointer.oid.to_hex();
        match by_path.get(path.as_str()) {
            None => {
                return Err(LfsError::Unpinned {
                    path: path.clone(),
                    oid: tree_oid,
                    size: pointer.size,
                    table: table.to_owned(),
                })
            }
            Some(pin) if pin.oid != tree_oid || pin.size != pointer.size => {
                return Err(LfsError::Mismatch {
                    path: path.clone(),
                    tree_oid,
                    tree_size: pointer.size,
                    pin_oid: pin.oid.clone(),
                    pin_size: pin.size,
                    table: table.to_owned(),
                })
            }
            Some(_) => {}
        }
    }
    match pins.iter().find(|p| !pointers.contains_key(&p.path)) {
        Some(stale) => Err(LfsError::Stale { path: stale.path.clone(), table: table.to_owned() }),
        None => Ok(()),
    }
}

/// Writes one object at `to` with the mode git gave its pointer (the store's copy of
/// it with the owner write bit back, as for every file copied from the store).
fn install(tree: &mut FsTree, checkout: &Path, pin: &Pin, to: &str, object: &Path) -> Result<(), LfsError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| LfsError::Io { path, source }
    };
    let content = Content::host_file(object).map_err(io(object))?;
    if content.size() != pin.size {
        return Err(LfsError::ObjectSize { path: pin.path.clone(), pinned: pin.size, actual: content.size() });
    }
    let pointer_file = checkout.join(&pin.path);
    let mode = crate::fstree::store_mode(std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&pointer_file).map_err(io(&pointer_file))?.permissions(),
    ));
    let to = to.trim_start_matches('/');
    if let Some((parent, _)) = to.rsplit_once('/') {
        if tree.get(parent).is_none() {
            tree.mkdir_p(parent, 0o755)?;
        }
    }
    tree.write(to, content, mode & 0o7777)?;
    Ok(())
}

/// Fails on the first file of `tree` that is still a pointer.
fn refuse_leftovers(tree: &FsTree) -> Result<(), LfsError> {
    for (path, node) in tree.iter() {
        let Kind::File(content) = &node.kind else { continue };
        if content.size() > 1024 {
            continue;
        }
        let shown = path.display();
        let bytes = content.read_all().map_err(|source| LfsError::Io { path: shown.clone().into(), source })?;
        // A malformed pointer is not ours to judge here: only real pointers are refused.
        if let Ok(Some(p)) = LfsPointer::parse(&bytes) {
            return Err(LfsError::LeftInImage { path: shown.trim_start_matches('/').to_owned(), oid: p.oid.to_hex() });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"the real program\n";

    fn sha256_hex(data: &[u8]) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
    }

    fn pointer(oid: &str, size: u64) -> String {
        format!("version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n")
    }

    /// A checkout with one pointer (`bin/tool`, 0755) and the object in a file beside it.
    fn setup() -> (tempfile::TempDir, PathBuf, Pin) {
        let dir = tempfile::tempdir().unwrap();
        let checkout = dir.path().join("checkout");
        std::fs::create_dir_all(checkout.join("bin")).unwrap();
        let oid = sha256_hex(BODY);
        let file = checkout.join("bin/tool");
        std::fs::write(&file, pointer(&oid, BODY.len() as u64)).unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let object = dir.path().join("object");
        std::fs::write(&object, BODY).unwrap();
        let pin = Pin {
            path: "bin/tool".into(),
            oid,
            size: BODY.len() as u64,
            install: Some(("/usr/bin/tool".into(), object)),
        };
        (dir, checkout, pin)
    }

    fn tree_with_copy(checkout: &Path) -> FsTree {
        let mut tree = FsTree::new(0);
        tree.add_dir(&checkout.join("bin"), "usr/bin").unwrap();
        tree
    }

    #[test]
    fn a_pinned_pointer_is_replaced_by_its_object_keeping_the_mode() {
        let (_d, checkout, pin) = setup();
        let mut tree = tree_with_copy(&checkout);
        resolve(&mut tree, &checkout, &[pin], "PINS").unwrap();
        let node = tree.get("usr/bin/tool").unwrap();
        let Kind::File(c) = &node.kind else { panic!("not a file") };
        assert_eq!(c.read_all().unwrap(), BODY);
        assert_eq!(node.meta.mode, 0o755);
    }

    #[test]
    fn an_unpinned_pointer_names_the_file_and_the_row_to_add() {
        let (_d, checkout, pin) = setup();
        let err = resolve(&mut tree_with_copy(&checkout), &checkout, &[], "PINS").unwrap_err().to_string();
        assert!(err.contains(&format!("add the row (\"bin/tool\", \"{}\", {}) to PINS", pin.oid, pin.size)), "{err}");
    }

    #[test]
    fn a_pin_that_disagrees_with_the_pointer_fails_with_both() {
        let (_d, checkout, mut pin) = setup();
        let tree_oid = pin.oid.clone();
        pin.oid = "ab".repeat(32);
        let err = resolve(&mut tree_with_copy(&checkout), &checkout, &[pin], "PINS").unwrap_err().to_string();
        assert!(err.contains(&format!("names oid {tree_oid} size 17")), "{err}");
        assert!(err.contains(&format!("pins oid {} size 17", "ab".repeat(32))), "{err}");
    }

    #[test]
    fn a_pin_without_a_pointer_in_the_checkout_is_stale() {
        let (_d, checkout, pin) = setup();
        let extra = Pin { path: "bin/gone".into(), install: None, ..pin.clone() };
        let err = resolve(&mut tree_with_copy(&checkout), &checkout, &[pin, extra], "PINS").unwrap_err();
        assert!(matches!(err, LfsError::Stale { ref path, .. } if path == "bin/gone"), "{err}");
    }

    #[test]
    fn an_object_of_the_wrong_size_is_refused() {
        let (d, checkout, mut pin) = setup();
        let short = d.path().join("short");
        std::fs::write(&short, b"short").unwrap();
        pin.install = Some(("/usr/bin/tool".into(), short));
        let err = resolve(&mut tree_with_copy(&checkout), &checkout, &[pin], "PINS").unwrap_err();
        assert!(matches!(err, LfsError::ObjectSize { pinned: 17, actual: 5, .. }), "{err}");
    }

    #[test]
    fn a_pointer_copied_into_the_image_without_its_object_is_refused() {
        let (_d, checkout, mut pin) = setup();
        pin.install = None;
        let err = resolve(&mut tree_with_copy(&checkout), &checkout, &[pin], "PINS").unwrap_err();
        assert!(matches!(err, LfsError::LeftInImage { ref path, .. } if path == "usr/bin/tool"), "{err}");
    }
}
