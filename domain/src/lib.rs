//! The values erasure parses at its edges, kept in a crate of their own so they stay small,
//! dependency-light and fuzzable (`fuzz/`): once built, a value is valid, so nothing
//! downstream re-checks it.
//! - identifiers and credentials: `VseeId`, `Email`, `Password`, `PersonName`, `Plan`;
//! - bearer secrets: `SecretToken` and the `TokenHash` that is stored instead;
//! - the deletion state machine: `DeletionStatus`, `Actor`, `Channel`;
//! - staff roles: `StaffRole`;
//! - tickets: `TicketStatus`, `IntakeDoor`, `TicketReference`;
//! - the data map's definition: `datamap`.

mod account;
pub mod datamap;
mod deletion;
mod email;
mod staff;
mod text;
mod ticket;
mod token;

pub use account::{AccountStatus, Password, PersonName, Plan, VseeId};
pub use deletion::{Actor, ActorKind, Channel, DeletionStatus};
pub use email::Email;
pub use staff::StaffRole;
pub use ticket::{AuthVerdict, IntakeDoor, TicketReference, TicketStatus};
pub use token::{SecretToken, TokenHash};

/// What the storage-enum derives need in scope (`storage` feature).
#[cfg(feature = "storage")]
mod storage {
    pub use sea_orm::entity::prelude::{DeriveActiveEnum, EnumIter, StringLen};
}

/// Why a value was refused; the message is safe to show to the user who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);
