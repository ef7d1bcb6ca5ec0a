//! The ext4 reader on arbitrary bytes: superblock, descriptors, inodes, extent trees,
//! directories, symlinks and xattrs must be bounds-checked, so it may refuse an image
//! but never panic, hang or allocate beyond the input's size.
#![no_main]

use forge_engine::ext4::Ext4Image;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(img) = Ext4Image::open(Box::<[u8]>::from(data)) else { return };
    let _ = img.used_blocks();
    let _ = img.entries();
});
