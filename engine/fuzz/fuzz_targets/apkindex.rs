//! APKINDEX reader: whole APKINDEX.tar.gz files (gzip streams, signature tar, index tar)
//! and the record text, which must survive a write/read cycle unchanged.
#![no_main]

use forge_engine::apk::index;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = index::parse_unverified(data, "fuzz");
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(records) = index::parse_text(text, "fuzz") {
            let again = index::parse_text(&index::write_text(&records), "again").expect("written index must parse");
            assert_eq!(again, records);
        }
    }
});
