//! The one error type of the service. Each variant has a stable machine code; the HTTP layer
//! maps it to a status in one place (`http::api::error`). Internal causes are logged there and
//! never returned.

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
    #[error("too many failed attempts; try again in {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    #[error("paid accounts are closed by our support team; please write to {support_email}")]
    PaidAccount { support_email: String },
    #[error("for your security, please enter your password again")]
    ReauthenticationRequired,
    #[error("{0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    #[error("the form expired; please try again")]
    CsrfInvalid,
    #[error("a dependency is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => "invalid_input",
            Self::ConfirmationMismatch => "confirmation_mismatch",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Unauthenticated => "unauthenticated",
            Self::RateLimited { .. } => "rate_limited",
            Self::PaidAccount { .. } => "paid_account",
            Self::ReauthenticationRequired => "reauthentication_required",
            Self::Conflict(_) => "conflict",
            Self::NotFound => "not_found",
            Self::CsrfInvalid => "csrf_invalid",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }
}

impl From<ParseError> for AppError {
    fn from(e: ParseError) -> Self {
        Self::InvalidInput(e.0)
    }
}

impl From<DbErr> for AppError {
    fn from(e: DbErr) -> Self {
        match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => {
                Self::Conflict("that value is already taken".into())
            }
            _ => Self::Internal(e.into()),
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;
