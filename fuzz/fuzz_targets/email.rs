//! Any text: `Email::parse` never panics, and what it accepts is within the RFC 5321 limits,
//! ASCII on the wire, and normalised (parsing it again gives it back).
#![no_main]

use erasure_domain::Email;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(email) = Email::parse(text) {
        let wire = email.to_ascii();
        assert!(wire.is_ascii() && wire.len() <= 254, "{wire:?}");
        let (local, domain) = wire.rsplit_once('@').expect("one @");
        assert!(!local.is_empty() && local.len() <= 64 && !local.contains('@'));
        assert!(domain.split('.').count() >= 2);
        assert!(domain.split('.').all(|l| (1..=63).contains(&l.len())));
        assert_eq!(Email::parse(email.as_str()).as_ref(), Ok(&email), "normalised");
        assert_eq!(Email::parse(wire).as_ref(), Ok(&email), "its ASCII form is the same address");
        assert!(email.matches_typed(email.as_str()));
    }
});
