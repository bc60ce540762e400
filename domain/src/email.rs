//! Email addresses: one grammar for sign-up, profile edits and sending.
//!
//! The grammar is narrower than RFC 5322 on purpose: an address we accept must be one the
//! mailer can put in a `To:` header and an SMTP `RCPT TO` unchanged, and two addresses that
//! look the same to a person must be the same address here.
//! - Local part: a dot-atom of ASCII `atext` (no quoted strings, comments or encoded words),
//!   at most 64 octets (RFC 5321 §4.5.3.1.1).
//! - Domain: at least two labels, each a letter-digit-hyphen label of at most 63 octets in
//!   its ASCII form, the whole at most 253 (IDNA/UTS 46 with STD3 rules). Internationalised
//!   labels are kept in their Unicode form and sent in their ASCII (punycode) form; a label
//!   mixing scripts, or written in one script to look like an ASCII label (Cyrillic `аррӏе`),
//!   is refused.
//! - The whole: at most 254 octets with the ASCII domain (RFC 5321 path limit).
//!
//! Before the grammar, text is trimmed, NFKC-normalised and lowercased, and invisible or
//! direction-changing characters are refused.

use std::fmt;

use unicode_security::{GeneralSecurityProfile, MixedScript};

use crate::{ParseError, text};

const MAX_LOCAL: usize = 64;
const MAX_ADDRESS: usize = 254;

/// An email address in its normalised form (see the module documentation).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email {
    /// `local@domain`, the domain in its Unicode form.
    normalised: String,
    /// `local@domain`, the domain in its ASCII form: what goes on the wire.
    ascii: String,
}

fn invalid(why: &str) -> ParseError {
    ParseError(format!("that is not a valid email address: {why}"))
}

/// RFC 5322 `atext`: what a dot-atom may hold besides dots.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

fn check_local(local: &str) -> Result<(), ParseError> {
    if local.is_empty() || local.len() > MAX_LOCAL {
        return Err(invalid("the part before @ has 1 to 64 characters"));
    }
    let dot_atom = local
        .split('.')
        .all(|atom| !atom.is_empty() && atom.bytes().all(is_atext));
    if !dot_atom {
        return Err(invalid(
            "the part before @ uses letters, digits and !#$%&'*+-/=?^_`{|}~, with single dots between them",
        ));
    }
    // `=?charset?q?…?=` is an RFC 2047 encoded word: some mail clients decode it when showing
    // the address, so it could display as something else (even as two addresses).
    if local.contains("=?") {
        return Err(invalid("the part before @ cannot contain an encoded word (=?…)"));
    }
    Ok(())
}

/// A label of an internationalised domain must be one script, and not one script dressed as
/// ASCII: its confusable skeleton holding a non-ASCII character shows it does not pass for an
/// ASCII label.
fn check_unicode_label(label: &str) -> Result<(), ParseError> {
    if label.is_ascii() {
        return Ok(());
    }
    let allowed = label
        .chars()
        .all(|c| c == '-' || c.is_ascii_digit() || c.identifier_allowed());
    if !allowed || !label.is_single_script() {
        return Err(invalid(
            "a domain label mixes scripts or uses characters not allowed in names",
        ));
    }
    if unicode_security::skeleton(label).all(|c| c.is_ascii()) {
        return Err(invalid("a domain label imitates a plain ASCII name"));
    }
    Ok(())
}

/// Returns the domain's (Unicode, ASCII) forms.
fn check_domain(domain: &str) -> Result<(String, String), ParseError> {
    let ascii =
        idna::domain_to_ascii_strict(domain).map_err(|_| invalid("the domain is not a valid domain name"))?;
    let labels: Vec<&str> = ascii.split('.').collect();
    let well_formed = labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()));
    if !well_formed || ascii.len() > 253 {
        return Err(invalid(
            "the domain needs at least two labels of letters, digits and hyphens, each at most 63 long",
        ));
    }
    let (unicode, result) = idna::domain_to_unicode(&ascii);
    result.map_err(|_| invalid("the domain is not a valid domain name"))?;
    for label in unicode.split('.') {
        check_unicode_label(label)?;
    }
    Ok((unicode, ascii))
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let folded = text::nfkc(raw.trim()).to_lowercase();
        text::refuse_hidden(&folded, "an email address")?;
        if folded.chars().any(char::is_whitespace) {
            return Err(invalid("it cannot contain spaces"));
        }
        // Bound the work before IDNA: nothing longer can be valid.
        if folded.len() > MAX_ADDRESS * 4 {
            return Err(invalid("it is too long"));
        }
        let (local, domain) = folded.rsplit_once('@').ok_or_else(|| invalid("it needs an @"))?;
        check_local(local)?;
        let (unicode, ascii) = check_domain(domain)?;
        let ascii = format!("{local}@{ascii}");
        if ascii.len() > MAX_ADDRESS {
            return Err(invalid("it has more than 254 characters"));
        }
        Ok(Self {
            normalised: format!("{local}@{unicode}"),
            ascii,
        })
    }

    /// The normalised address, as shown to its owner and compared.
    pub fn as_str(&self) -> &str {
        &self.normalised
    }

    /// The address with its domain in ASCII form: what SMTP and the `To:` header carry.
    pub fn to_ascii(&self) -> &str {
        &self.ascii
    }

    /// The comparison the deletion warning page asks for: whatever the account holder types
    /// that normalises to this address.
    pub fn matches_typed(&self, typed: &str) -> bool {
        Email::parse(typed).is_ok_and(|t| t == *self)
    }
}

impl fmt::Debug for Email {
    // Addresses never reach logs in clear.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn addresses_are_normalised() {
        assert_eq!(
            Email::parse(" Mark+08@VSee.com ").unwrap().as_str(),
            "mark+08@vsee.com"
        );
        assert_eq!(
            Email::parse("ａｌｉｃｅ@example.com").unwrap().as_str(),
            "alice@example.com"
        );
        let idn = Email::parse("anna@BÜCHER.de").unwrap();
        assert_eq!(idn.as_str(), "anna@bücher.de");
        assert_eq!(idn.to_ascii(), "anna@xn--bcher-kva.de");
        assert_eq!(
            Email::parse("anna@xn--bcher-kva.de").unwrap(),
            idn,
            "both forms are one address"
        );
    }

    #[test]
    fn what_the_mailer_refused_is_refused_at_entry() {
        for bad in [
            "a14(comment)@example.com",
            "=?utf-8?q?a12=0D=0ABcc:_x?=@example.com",
            "=?utf-8?q?abc?=@example.com",
            &format!("a@{}.com", "b".repeat(180)),
            &format!("a@{}.com", "b".repeat(64)),
            &format!("{}@example.com", "a".repeat(65)),
            &format!("a@{}.com", vec!["b".repeat(60); 5].join(".")),
            "\"quoted\"@example.com",
            "a..b@example.com",
            ".a@example.com",
            "a.@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let longest_label = format!("a@{}.com", "b".repeat(63));
        assert!(Email::parse(&longest_label).is_ok());
    }

    #[test]
    fn look_alikes_and_hidden_characters_are_refused() {
        for bad in [
            "ali\u{0441}e@example.com",
            "alice@ex\u{0430}mple.com",
            "alice@\u{0440}\u{0430}\u{0443}.com",
            "ali\u{200B}ce@example.com",
            "alice@example.com\u{202E}",
            "alice\u{FEFF}@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn shapes_that_are_not_addresses_are_refused() {
        for bad in [
            "",
            "mark",
            "mark@",
            "@vsee.com",
            "mark@vsee",
            "ma rk@vsee.com",
            "a@b@c.com",
            "x@-a.com",
            "x@a.123",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn typed_confirmation_is_normalised_like_the_address() {
        let email = Email::parse("mark+08@vsee.com").unwrap();
        assert!(email.matches_typed("  MARK+08@vsee.COM "));
        assert!(email.matches_typed("ｍａｒｋ+08@vsee.com"));
        assert!(!email.matches_typed("mark+09@vsee.com"));
        assert!(!email.matches_typed("not an address"));
    }

    proptest! {
        #[test]
        fn valid_addresses_round_trip(local in "[a-z0-9_+-]{1,30}", domain in "[a-z0-9]{1,20}", tld in "[a-z]{2,6}") {
            let raw = format!("{local}@{domain}.{tld}");
            let parsed = Email::parse(&raw).unwrap();
            prop_assert_eq!(parsed.as_str(), raw.as_str());
            prop_assert_eq!(parsed.to_ascii(), raw.as_str());
        }

        #[test]
        fn parsed_addresses_are_within_the_rfc_5321_limits(raw in "\\PC{0,300}") {
            if let Ok(email) = Email::parse(&raw) {
                let ascii = email.to_ascii();
                prop_assert!(ascii.is_ascii());
                prop_assert!(ascii.len() <= 254);
                let (local, domain) = ascii.rsplit_once('@').unwrap();
                prop_assert!(local.len() <= 64);
                prop_assert!(domain.split('.').all(|l| (1..=63).contains(&l.len())));
                prop_assert_eq!(email.as_str().matches('@').count(), 1);
                prop_assert!(!email.as_str().chars().any(char::is_whitespace));
                // Normalising is idempotent: the stored form parses to itself.
                prop_assert_eq!(Email::parse(email.as_str()).unwrap(), email.clone());
            }
        }
    }
}
