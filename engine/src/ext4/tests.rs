use super::*;
use crate::fstree::{FsTree, Special};

fn image_bytes() -> Vec<u8> {
    let mut t = FsTree::new(0);
    t.write("/a/file", vec![3u8; 9000], 0o644).unwrap();
    t.symlink("/a/s", "file").unwrap();
    t.symlink("/a/long", "y".repeat(80)).unwrap();
    t.mknod("/a/null", Special::Char { major: 1, minor: 3 }, 0o666).unwrap();
    t.set_xattr("/a/file", "user.big", vec![1; 200]).unwrap();
    t.setcap("/a/s", "cap_net_raw+ep").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("i.img");
    write_ext4(&t, &p, &Ext4Options::default()).unwrap();
    std::fs::read(p).unwrap()
}

#[test]
fn the_reader_lists_what_the_writer_wrote() {
    let img = Ext4Image::open(Box::<[u8]>::from(image_bytes())).unwrap();
    let entries = img.entries().unwrap();
    let paths: Vec<String> = entries.iter().map(|e| e.path.display()).collect();
    assert_eq!(paths, ["/", "/a", "/a/file", "/a/long", "/a/null", "/a/s", "/lost+found"]);
    let file = &entries[2];
    assert_eq!(file.xattrs["user.big"], vec![1; 200]);
    assert!(matches!(&file.kind, ImageKind::File { size: 9000, .. }));
    assert_eq!(entries[3].kind, ImageKind::Symlink("y".repeat(80).into_bytes()));
    assert_eq!(entries[4].kind, ImageKind::Char { major: 1, minor: 3 });
}

#[test]
fn corrupted_images_give_errors_not_panics() {
    let good = image_bytes();
    // Damage one region at a time: superblock, descriptors, bitmaps, inode table, data.
    for (i, at) in (1024..good.len()).step_by(509).enumerate() {
        let mut bad = good.clone();
        for b in &mut bad[at..(at + 64).min(good.len())] {
            *b = b.wrapping_mul(31).wrapping_add(i as u8) ^ 0xA5;
        }
        if let Ok(img) = Ext4Image::open(Box::<[u8]>::from(bad)) {
            let _ = img.entries();
            let _ = img.used_blocks();
        }
    }
    for len in [0, 1000, 2048, 4096, 8192, good.len() - 1] {
        let cut = Box::<[u8]>::from(&good[..len]);
        if let Ok(img) = Ext4Image::open(cut) {
            let _ = img.entries();
        }
    }
}
