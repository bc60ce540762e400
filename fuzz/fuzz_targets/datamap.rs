//! Any text: the data-map loader never panics, and a map it accepts names only plain
//! identifiers (they go into SQL statements and paths), and says why each plain column is.
#![no_main]

use erasure_domain::datamap::DataMap;
use libfuzzer_sys::fuzz_target;

fn plain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fuzz_target!(|text: &str| {
    if let Ok(map) = DataMap::parse(text) {
        for rule in &map.stores {
            assert!(plain(&rule.table) && plain(&rule.column), "{rule:?}");
            assert_ne!(rule.table, "accounts");
        }
        for files in &map.files {
            assert!(plain(&files.name) && plain(&files.dir), "{files:?}");
        }
        for column in &map.columns {
            assert!(plain(&column.table) && plain(&column.column), "{column:?}");
            if column.storage == erasure_domain::datamap::Storage::Plain {
                assert!(column.why.as_deref().is_some_and(|w| !w.trim().is_empty()), "{column:?}");
            }
        }
    }
});
