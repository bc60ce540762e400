use std::fmt;

use super::ParseError;

/// A VSee ID: 3 to 32 characters of lowercase letters, digits, dot, dash or underscore,
/// starting with a letter or digit. Stored and compared lowercased.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VseeId(String);

impl VseeId {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let id = raw.trim().to_ascii_lowercase();
        let len = id.chars().count();
        if !(3..=32).contains(&len) {
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

/// An email address, trimmed and lowercased; checked for shape, not deliverability.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let email = raw.trim().to_lowercase();
        let invalid = || ParseError("that is not a valid email address".into());
        if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err(invalid());
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !domain_ok {
            return Err(invalid());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The comparison the deletion warning page asks for: trimmed and case-insensitive.
    pub fn matches_typed(&self, typed: &str) -> bool {
        typed.trim().to_lowercase() == self.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(..)")
    }
}

/// A new password: 8 to 128 characters. Its Debug output never shows it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let len = raw.chars().count();
        if len < 8 {
            return Err(ParseError("a password has at least 8 characters".into()));
        }
        if len > 128 {
            return Err(ParseError("a password has at most 128 characters".into()));
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

/// A first or last name: up to 64 characters, no control characters; may be empty.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let name = raw.trim();
        if name.chars().count() > 64 {
            return Err(ParseError("a name has at most 64 characters".into()));
        }
        if name.chars().any(char::is_control) {
            return Err(ParseError("a name cannot contain control characters".into()));
        }
        Ok(Self(name.to_owned()))
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
pub enum Plan {
    Free,
    Paid,
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
    use proptest::prelude::*;

    #[test]
    fn vsee_ids_are_lowercased_and_checked() {
        assert_eq!(VseeId::parse(" Mark.08 ").unwrap().as_str(), "mark.08");
        assert!(VseeId::parse("ab").is_err());
        assert!(VseeId::parse("-abc").is_err());
        assert!(VseeId::parse("a b c").is_err());
        assert!(VseeId::parse(&"a".repeat(33)).is_err());
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse(" Mark+08@VSee.com ").unwrap().as_str(),
            "mark+08@vsee.com"
        );
        for bad in [
            "",
            "mark",
            "mark@",
            "@vsee.com",
            "mark@vsee",
            "ma rk@vsee.com",
            "a@b@c.com",
            "x@-a.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn typed_confirmation_is_trimmed_and_case_insensitive() {
        let email = Email::parse("mark+08@vsee.com").unwrap();
        assert!(email.matches_typed("  MARK+08@vsee.COM "));
        assert!(!email.matches_typed("mark+09@vsee.com"));
    }

    #[test]
    fn debug_output_hides_personal_data() {
        let email = Email::parse("mark@vsee.com").unwrap();
        let id = VseeId::parse("mark08").unwrap();
        let pw = Password::parse("correct horse").unwrap();
        let dump = format!("{email:?}{id:?}{pw:?}");
        assert!(!dump.contains("mark") && !dump.contains("horse"));
    }

    proptest! {
        #[test]
        fn valid_vsee_ids_round_trip(id in "[a-z0-9][a-z0-9._-]{2,31}") {
            let parsed = VseeId::parse(&id).unwrap();
            prop_assert_eq!(parsed.as_str(), id.as_str());
        }

        #[test]
        fn vsee_id_parsing_never_panics(raw in ".*") {
            let _ = VseeId::parse(&raw);
        }

        #[test]
        fn valid_emails_round_trip(local in "[a-z0-9._+-]{1,30}", domain in "[a-z0-9]{1,20}", tld in "[a-z]{2,6}") {
            let raw = format!("{local}@{domain}.{tld}");
            let parsed = Email::parse(&raw).unwrap();
            prop_assert_eq!(parsed.as_str(), raw.as_str());
        }

        #[test]
        fn parsed_emails_have_exactly_one_at_and_no_spaces(raw in ".*") {
            if let Ok(email) = Email::parse(&raw) {
                prop_assert_eq!(email.as_str().matches('@').count(), 1);
                prop_assert!(!email.as_str().chars().any(char::is_whitespace));
            }
        }

        #[test]
        fn passwords_outside_8_to_128_chars_are_refused(raw in ".{0,200}") {
            let len = raw.chars().count();
            prop_assert_eq!(Password::parse(&raw).is_ok(), (8..=128).contains(&len));
        }
    }
}
