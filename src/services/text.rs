//! Free text people type (reasons, notes): trimmed, and bounded so a form cannot store a book.

use crate::error::{AppError, AppResult};

/// What an agent or requester typed for a person to read later (a reason, a note): trimmed,
/// 1 to `max` characters.
pub(crate) fn typed_text(raw: &str, what: &str, max: usize) -> AppResult<String> {
    let text = raw.trim();
    if text.is_empty() || text.chars().count() > max {
        return Err(AppError::InvalidInput(format!(
            "{what} has 1 to {max} characters"
        )));
    }
    Ok(text.to_owned())
}

/// A reason: 1 to 1,000 characters.
pub(crate) fn reason_text(raw: &str) -> AppResult<String> {
    typed_text(raw, "a reason", 1000)
}
