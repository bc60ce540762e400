use std::{collections::HashSet, fmt, sync::OnceLock};

use crate::{ParseError, text};

/// A VSee ID: 3 to 32 characters of lowercase letters, digits, dot, dash or underscore,
/// starting with a letter or digit. Trimmed, NFKC-normalised (fullwidth `ｍａｒｋ` is `mark`)
/// and lowercased, so IDs that look the same are the same ID; anything outside ASCII after
/// that (a Cyrillic `с` in `mark`) is refused.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VseeId(String);

impl VseeId {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        // Bound the work: nothing this long can be an ID, whatever it normalises to.
        if raw.len() > 4 * Self::MAX_LEN + 64 {
            return Err(ParseError("a VSee ID has 3 to 32 characters".into()));
        }
        let id = text::nfkc(raw.trim()).to_ascii_lowercase();
        text::refuse_hidden(&id, "a VSee ID")?;
        let len = id.chars().count();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(ParseError("a VSee ID has 3 to 32 characters".into()));
        }
        let valid_chars = id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'));
        let valid_start = id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        if !valid_chars || !valid_start {
            return Err(ParseError(
                "a VSee ID uses letters, digits, '.', '-' or '_' and starts with a letter or digit".into(),
            ));
        }
        Ok(Self(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for VseeId {
    // Identifiers never reach logs in clear.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VseeId(..)")
    }
}

/// The passwords shipped with the project that are too common to accept (ASVS 2.1.7): the
/// 11,611 entries of 8 characters or more among the 30,000 most frequent passwords of the
/// zxcvbn frequency list (MIT licence), lowercase.
const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| COMMON_PASSWORDS.lines().filter(|l| !l.is_empty()).collect())
}

/// A new password: 8 to 128 characters, not one of the common passwords (compared without
/// case). Any character is allowed and nothing is normalised away (ASVS 2.1.4). Its Debug
/// output never shows it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_LEN: usize = 8;
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let len = raw.chars().count();
        if len < Self::MIN_LEN {
            return Err(ParseError("a password has at least 8 characters".into()));
        }
        if len > Self::MAX_LEN {
            return Err(ParseError("a password has at most 128 characters".into()));
        }
        if common_passwords().contains(raw.to_lowercase().as_str()) {
            return Err(ParseError(
                "that password is one of the most common ones; please choose another".into(),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// A first or last name: up to 64 characters, trimmed and NFC-normalised; may be empty. No
/// control, invisible or direction-changing characters (a bidi override in a name can make
/// the text around it read backwards).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PersonName(String);

impl PersonName {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if raw.len() > 4 * Self::MAX_LEN + 64 {
            return Err(ParseError("a name has at most 64 characters".into()));
        }
        let name = text::nfc(raw.trim());
        if name.chars().count() > Self::MAX_LEN {
            return Err(ParseError("a name has at most 64 characters".into()));
        }
        text::refuse_hidden(&name, "a name")?;
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonName(..)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "storage",
    derive(crate::storage::EnumIter, crate::storage::DeriveActiveEnum),
    sea_orm(rs_type = "String", db_type = "String(crate::storage::StringLen::N(16))")
)]
pub enum Plan {
    #[cfg_attr(feature = "storage", sea_orm(string_value = "free"))]
    Free,
    #[cfg_attr(feature = "storage", sea_orm(string_value = "paid"))]
    Paid,
}

/// Whether an account can be used: `Deleting` from the moment its deletion is asked for (it
/// cannot log in any more) until the purge removes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "storage",
    derive(crate::storage::EnumIter, crate::storage::DeriveActiveEnum),
    sea_orm(rs_type = "String", db_type = "String(crate::storage::StringLen::N(16))")
)]
pub enum AccountStatus {
    #[cfg_attr(feature = "storage", sea_orm(string_value = "active"))]
    Active,
    #[cfg_attr(feature = "storage", sea_orm(string_value = "deleting"))]
    Deleting,
}

impl Plan {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "free" => Ok(Self::Free),
            "paid" => Ok(Self::Paid),
            _ => Err(ParseError("plan is free or paid".into())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Paid => "paid",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Email;
    use proptest::prelude::*;

    #[test]
    fn vsee_ids_are_normalised_and_checked() {
        assert_eq!(VseeId::parse(" Mark.08 ").unwrap().as_str(), "mark.08");
        assert_eq!(VseeId::parse("ＭＡＲＫ０８").unwrap().as_str(), "mark08");
        for bad in [
            "ab",
            "-abc",
            "a b c",
            "m\u{0430}rk08",
            "mark\u{200B}08",
            "\u{202E}mark08",
            &"a".repeat(33),
        ] {
            assert!(VseeId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn names_refuse_hidden_and_direction_changing_characters() {
        assert_eq!(PersonName::parse(" Zoë ").unwrap().as_str(), "Zoë");
        assert_eq!(PersonName::parse("Zoe\u{308}").unwrap().as_str(), "Zoë");
        for bad in [
            "Ma\u{202E}rk",
            "Mark\u{200B}",
            "Ma\u{2066}rk",
            "Mark\u{0}",
            "Ma\nrk",
            &"a".repeat(65),
        ] {
            assert!(PersonName::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        for bad in ["12345678", "password", "Password1", "QWERTYUIOP", "iloveyou"] {
            assert!(Password::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(Password::parse("correct horse battery").is_ok());
        assert_eq!(common_passwords().len(), 11_611);
    }

    #[test]
    fn debug_output_hides_personal_data() {
        let email = Email::parse("mark@vsee.com").unwrap();
        let id = VseeId::parse("mark08").unwrap();
        let pw = Password::parse("correct horse").unwrap();
        let name = PersonName::parse("Markus").unwrap();
        let dump = format!("{email:?}{id:?}{pw:?}{name:?}");
        assert!(!dump.contains("mark") && !dump.contains("horse") && !dump.contains("Markus"));
    }

    proptest! {
        #[test]
        fn valid_vsee_ids_round_trip(id in "[a-z0-9][a-z0-9._-]{2,31}") {
            let parsed = VseeId::parse(&id).unwrap();
            prop_assert_eq!(parsed.as_str(), id.as_str());
        }

        #[test]
        fn parsed_vsee_ids_are_ascii_and_idempotent(raw in "\\PC{0,40}") {
            if let Ok(id) = VseeId::parse(&raw) {
                prop_assert!(id.as_str().is_ascii());
                prop_assert_eq!(VseeId::parse(id.as_str()).unwrap(), id);
            }
        }

        #[test]
        fn passwords_outside_8_to_128_chars_are_refused(raw in ".{0,200}") {
            let len = raw.chars().count();
            if !(8..=128).contains(&len) {
                prop_assert!(Password::parse(&raw).is_err());
            }
        }

        #[test]
        fn parsed_names_hold_no_hidden_characters(raw in "\\PC{0,80}") {
            if let Ok(name) = PersonName::parse(&raw) {
                prop_assert!(!name.as_str().chars().any(text::is_hidden_or_control));
                prop_assert!(name.as_str().chars().count() <= 64);
            }
        }
    }
}
