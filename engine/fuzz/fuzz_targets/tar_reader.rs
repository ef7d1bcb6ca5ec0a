//! The tar reader (with gzip/xz/zstd detection) on arbitrary bytes: it may refuse the
//! input, never panic; what it accepts must list and write back as a tar.
#![no_main]

use forge_engine::fstree::FsTree;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut tree = FsTree::new(0);
    if tree.add_tar(data, "fuzz").is_ok() {
        let _ = forge_engine::manifest::manifest(&tree);
        let _ = forge_engine::tar::write_tar(&tree, std::io::sink());
    }
});
