//! What every identifier and name goes through before its own grammar: one Unicode form, and
//! no character that changes how text looks without being seen.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::ParseError;

/// Compatibility-composed (NFKC), so fullwidth `ａｌｉｃｅ` and `alice` are one identifier.
pub(crate) fn nfkc(raw: &str) -> String {
    raw.nfkc().collect()
}

/// Canonically composed (NFC): names keep their compatibility characters, but a precomposed
/// and a decomposed `é` are the same name.
pub(crate) fn nfc(raw: &str) -> String {
    raw.nfc().collect()
}

/// Bidi overrides and isolates (U+202A–U+202E, U+2066–U+2069) reorder what is shown around
/// them; zero-width characters (U+200B, U+2060, U+FEFF…) hide inside what looks like one
/// word. Both are format characters (Cf); control and separator characters break lines and
/// logs. None belongs in an identifier or a name.
pub(crate) fn is_hidden_or_control(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Format
            | GeneralCategory::Control
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::PrivateUse
            | GeneralCategory::Surrogate
            | GeneralCategory::Unassigned
    )
}

/// Refuses text holding a hidden, bidi or control character, naming what `what` is.
pub(crate) fn refuse_hidden(text: &str, what: &str) -> Result<(), ParseError> {
    match text.chars().find(|c| is_hidden_or_control(*c)) {
        Some(c) => Err(ParseError(format!(
            "{what} cannot contain invisible, direction-changing or control characters (U+{:04X})",
            u32::from(c)
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_and_zero_width_characters_are_hidden() {
        for c in [
            '\u{200B}', '\u{200D}', '\u{202E}', '\u{2066}', '\u{FEFF}', '\u{0007}', '\u{2028}',
        ] {
            assert!(is_hidden_or_control(c), "U+{:04X}", u32::from(c));
        }
        for c in ['a', 'é', 'ж', '中', ' ', '-', '\''] {
            assert!(!is_hidden_or_control(c), "{c}");
        }
    }

    #[test]
    fn fullwidth_letters_fold_to_ascii() {
        assert_eq!(nfkc("ａｌｉｃｅ"), "alice");
        assert_eq!(nfc("e\u{301}"), "é");
    }
}
