//! Tickets: paid terminations asked for by mail, decided by support agents.

use crate::ParseError;

/// Where a ticket stands. Verification is apart from this: a ticket is verified or not
/// whatever its status, and only a verified open ticket can be approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "storage",
    derive(crate::storage::EnumIter, crate::storage::DeriveActiveEnum),
    sea_orm(rs_type = "String", db_type = "String(crate::storage::StringLen::N(16))")
)]
pub enum TicketStatus {
    /// Waiting for an agent.
    #[cfg_attr(feature = "storage", sea_orm(string_value = "open"))]
    Open,
    /// Approved: the deletion runs.
    #[cfg_attr(feature = "storage", sea_orm(string_value = "approved"))]
    Approved,
    /// Refused, with a reason sent to the requester.
    #[cfg_attr(feature = "storage", sea_orm(string_value = "rejected"))]
    Rejected,
    /// Closed without a decision (an unmatched sender, a duplicate).
    #[cfg_attr(feature = "storage", sea_orm(string_value = "closed"))]
    Closed,
}

impl TicketStatus {
    pub const ALL: [Self; 4] = [Self::Open, Self::Approved, Self::Rejected, Self::Closed];

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw.trim().to_ascii_lowercase())
            .ok_or_else(|| ParseError("a ticket status is open, approved, rejected or closed".into()))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Closed => "closed",
        }
    }
}

/// How a message reached us: the three doors share one parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "storage",
    derive(crate::storage::EnumIter, crate::storage::DeriveActiveEnum),
    sea_orm(rs_type = "String", db_type = "String(crate::storage::StringLen::N(16))")
)]
pub enum IntakeDoor {
    /// `erasure ingest-email`, an MTA's pipe.
    #[cfg_attr(feature = "storage", sea_orm(string_value = "pipe"))]
    Pipe,
    /// `POST /api/v1/inbound/email`, a provider's signed webhook.
    #[cfg_attr(feature = "storage", sea_orm(string_value = "webhook"))]
    Webhook,
    /// Polling the help@ mailbox over IMAP.
    #[cfg_attr(feature = "storage", sea_orm(string_value = "imap"))]
    Imap,
    /// `POST /api/v1/me/termination-request` or its page: a logged-in paid account holder.
    #[cfg_attr(feature = "storage", sea_orm(string_value = "app"))]
    App,
}

impl IntakeDoor {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pipe => "pipe",
            Self::Webhook => "webhook",
            Self::Imap => "imap",
            Self::App => "app",
        }
    }
}

/// One sender-authentication check's result (DKIM, SPF or DMARC), as RFC 8601 names them. It
/// informs the agent; it never verifies a ticket: only the account's owner or an agent does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "storage",
    derive(crate::storage::EnumIter, crate::storage::DeriveActiveEnum),
    sea_orm(rs_type = "String", db_type = "String(crate::storage::StringLen::N(16))")
)]
pub enum AuthVerdict {
    #[cfg_attr(feature = "storage", sea_orm(string_value = "pass"))]
    Pass,
    #[cfg_attr(feature = "storage", sea_orm(string_value = "fail"))]
    Fail,
    /// SPF only: the domain says the server is probably not its own.
    #[cfg_attr(feature = "storage", sea_orm(string_value = "softfail"))]
    SoftFail,
    /// A signature that does not match (an altered body) or a policy that says nothing.
    #[cfg_attr(feature = "storage", sea_orm(string_value = "neutral"))]
    Neutral,
    /// Nothing to check: no signature, no record.
    #[cfg_attr(feature = "storage", sea_orm(string_value = "none"))]
    None,
    /// DNS did not answer in time.
    #[cfg_attr(feature = "storage", sea_orm(string_value = "temperror"))]
    TempError,
    /// A record or signature that cannot be read.
    #[cfg_attr(feature = "storage", sea_orm(string_value = "permerror"))]
    PermError,
}

impl AuthVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::SoftFail => "softfail",
            Self::Neutral => "neutral",
            Self::None => "none",
            Self::TempError => "temperror",
            Self::PermError => "permerror",
        }
    }
}

/// A ticket's reference, as requesters quote it: `T-` and eight characters of Crockford
/// base32 (no I, L, O or U to misread), parsed case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TicketReference(String);

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl TicketReference {
    /// A reference from 40 random bits.
    pub fn from_random(bits: [u8; 5]) -> Self {
        let mut n = bits.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b));
        let mut chars = [b'0'; 8];
        for c in chars.iter_mut().rev() {
            // The index is below 32: the cast cannot truncate.
            *c = ALPHABET[(n & 31) as usize];
            n >>= 5;
        }
        Self(format!("T-{}", String::from_utf8_lossy(&chars)))
    }

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let refused = || ParseError("a ticket reference looks like T-7K2M9QXA".into());
        let upper = raw.trim().to_ascii_uppercase();
        let code = upper.strip_prefix("T-").ok_or_else(refused)?;
        if code.len() != 8 || !code.bytes().all(|b| ALPHABET.contains(&b)) {
            return Err(refused());
        }
        Ok(Self(upper))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TicketReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn statuses_parse_from_what_they_print() {
        for status in TicketStatus::ALL {
            assert_eq!(TicketStatus::parse(status.as_str()), Ok(status));
        }
        assert!(TicketStatus::parse("pending").is_err());
    }

    #[test]
    fn references_refuse_what_is_not_one() {
        for bad in [
            "",
            "T-",
            "T-1234567",
            "T-123456789",
            "X-12345678",
            "T-1234567I",
            "T-ABCDEFGU",
        ] {
            assert!(TicketReference::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            TicketReference::parse(" t-7k2m9qxa ").unwrap().as_str(),
            "T-7K2M9QXA"
        );
    }

    proptest! {
        #[test]
        fn every_generated_reference_parses_back(bits in any::<[u8; 5]>()) {
            let reference = TicketReference::from_random(bits);
            prop_assert_eq!(TicketReference::parse(reference.as_str()), Ok(reference.clone()));
        }

        #[test]
        fn different_bits_make_different_references(a in any::<[u8; 5]>(), b in any::<[u8; 5]>()) {
            prop_assume!(a != b);
            prop_assert_ne!(TicketReference::from_random(a), TicketReference::from_random(b));
        }
    }
}
