//! Any text: `PersonName::parse` never panics, and what it accepts holds at most 64 characters
//! and no control, invisible or direction-changing character.
#![no_main]

use erasure_domain::PersonName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(name) = PersonName::parse(text) {
        let s = name.as_str();
        assert!(s.chars().count() <= 64);
        assert!(!s.chars().any(|c| c.is_control() || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')), "{s:?}");
        assert_eq!(PersonName::parse(s).as_ref(), Ok(&name));
    }
});
