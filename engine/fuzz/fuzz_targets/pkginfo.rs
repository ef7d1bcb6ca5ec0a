//! .PKGINFO parser; what parses must be written and parsed back to the same metadata.
#![no_main]

use forge_engine::apk::pkginfo::PkgInfo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = PkgInfo::parse(data, "fuzz") {
        let again = PkgInfo::parse(info.to_text().as_bytes(), "again").expect("written .PKGINFO must parse");
        assert_eq!(PkgInfo { fields: vec![], ..again }, PkgInfo { fields: vec![], ..info });
    }
});
