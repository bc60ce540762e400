//! Any text: `VseeId::parse` never panics, and what it accepts is 3–32 ASCII characters of the
//! ID alphabet, normalised.
#![no_main]

use erasure_domain::VseeId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(id) = VseeId::parse(text) {
        let s = id.as_str();
        assert!((3..=32).contains(&s.len()), "{s:?}");
        assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)));
        assert!(s.as_bytes()[0].is_ascii_alphanumeric());
        assert_eq!(VseeId::parse(s).as_ref(), Ok(&id));
    }
});
