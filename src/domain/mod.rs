//! Domain types that parse: once built, a value is valid, so nothing downstream re-checks it.

mod account;
mod deletion;
mod token;

pub use account::{Email, Password, PersonName, Plan, VseeId};
pub use deletion::{Actor, Channel, DeletionStatus};
pub use token::{SecretToken, TokenHash};

/// Why a value was refused; the message is safe to show to the user who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);
