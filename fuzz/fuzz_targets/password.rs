//! Any text: `Password::parse` never panics, keeps the password exactly as given, and takes
//! only 8 to 128 characters.
#![no_main]

use erasure_domain::Password;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(password) = Password::parse(text) {
        assert_eq!(password.expose(), text);
        assert!((8..=128).contains(&text.chars().count()));
        assert_eq!(format!("{password:?}"), "Password(..)", "never shown");
    }
});
