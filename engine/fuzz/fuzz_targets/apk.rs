//! apk v2 reader: gzip stream splitting, signature/control/data tars, .PKGINFO,
//! datahash and per-file checksums (everything but the RSA check, which random input
//! never passes).
#![no_main]

use forge_engine::apk::package;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = package::parse_unverified(data, "fuzz");
});
