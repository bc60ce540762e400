//! The one error type of the service. The HTTP edge (`http::error`) gives each variant its
//! status and stable machine code, in one place. Internal causes are logged there and never
//! returned.

use sea_orm::{DbErr, SqlErr};

use crate::domain::ParseError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("the email you typed is not the email of this account")]
    ConfirmationMismatch,
    #[error("the VSee ID or password is not correct")]
    InvalidCredentials,
    #[error("you are not logged in")]
    Unauthenticated,
    #[error("the X-Erasure-Signature header is missing or is not the HMAC-SHA256 of this body")]
    SignatureInvalid,
    #[error("too many failed attempts; try again in {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    #[error("paid accounts are closed by our support team; please write to {support_email}")]
    PaidAccount { support_email: String },
    #[error("for your security, please enter your password again")]
    ReauthenticationRequired,
    #[error("your staff role does not allow this")]
    ForbiddenRole,
    #[error("{0}")]
    Conflict(String),
    #[error(
        "the ticket is not verified: the account's owner must confirm it, or an agent record how it was verified"
    )]
    TicketUnverified,
    #[error("not found")]
    NotFound,
    #[error("the grace period is over: this deletion has started and can no longer be cancelled")]
    GracePeriodOver,
    #[error(
        "this email or VSee ID belonged to an account that was deleted recently and cannot be registered again yet"
    )]
    IdentifierCoolingOff,
    #[error("the form expired or came from another site; please try again")]
    CsrfInvalid,
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request did not arrive in time")]
    RequestTimeout,
    #[error("a dependency is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }

    /// The message with its whole cause chain, for logs: what a response must not show, and
    /// what an operator needs.
    pub fn detail(&self) -> String {
        match self {
            Self::Internal(cause) | Self::Unavailable(cause) => format!("{self}: {cause:#}"),
            other => other.to_string(),
        }
    }
}

impl From<ParseError> for AppError {
    fn from(e: ParseError) -> Self {
        Self::InvalidInput(e.0)
    }
}

impl From<DbErr> for AppError {
    fn from(e: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(_)) = e.sql_err() {
            return Self::Conflict("that value is already taken".into());
        }
        if database_unreachable(&e) {
            return Self::Unavailable(e.into());
        }
        Self::Internal(e.into())
    }
}

/// The database could not be reached (down, restarting, pool exhausted): a 503 to retry, not
/// a bug.
fn database_unreachable(e: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    let sqlx_unreachable = |e: &sqlx::Error| {
        matches!(
            e,
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_)
        )
    };
    match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner)) => {
            sqlx_unreachable(inner.as_ref())
        }
        _ => false,
    }
}

pub type AppResult<T> = Result<T, AppError>;
