//! The one place errors become HTTP: status by variant, body `{"code", "message"}`.

use poem::http::StatusCode;
use poem_openapi::{ApiResponse, Object, payload::Json};

use crate::error::AppError;

/// Every error the API returns.
#[derive(Debug, Clone, Object)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `confirmation_mismatch`.
    pub code: String,
    /// Human-readable explanation; may change between versions.
    pub message: String,
    /// Where paid accounts write to be closed (only with `paid_account`).
    #[oai(skip_serializing_if_is_none)]
    pub support_email: Option<String>,
    /// Seconds to wait before trying again (only with `rate_limited`).
    #[oai(skip_serializing_if_is_none)]
    pub retry_after_secs: Option<u64>,
}

#[derive(Debug, ApiResponse)]
#[oai(bad_request_handler = "bad_request")]
pub enum ErrorResponse {
    /// The request was not understood.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Not logged in, or wrong credentials.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Not allowed: paid account, stale log-in or failed CSRF check.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No such thing.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// Conflicts with the current state (e.g. the VSee ID is taken).
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The values were understood but are not acceptable.
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    /// Too many attempts.
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>, #[oai(header = "Retry-After")] Option<u64>),
    /// Something went wrong on our side; details are in the server log.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// A dependency is down; try again later.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

fn body(code: &str, message: String) -> Json<ErrorBody> {
    Json(ErrorBody {
        code: code.to_owned(),
        message,
        support_email: None,
        retry_after_secs: None,
    })
}

/// Wire-shape errors (missing field, wrong type, bad JSON) caught by poem-openapi.
fn bad_request(err: poem::Error) -> ErrorResponse {
    ErrorResponse::Unprocessable(body("invalid_input", err.to_string()))
}

/// The status of each error: the only place this mapping is written (pages use it too).
pub fn status_of(err: &AppError) -> StatusCode {
    match err {
        AppError::InvalidInput(_) | AppError::ConfirmationMismatch => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::InvalidCredentials | AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
        AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        AppError::PaidAccount { .. } | AppError::ReauthenticationRequired | AppError::CsrfInvalid => {
            StatusCode::FORBIDDEN
        }
        AppError::Conflict(_) => StatusCode::CONFLICT,
        AppError::NotFound => StatusCode::NOT_FOUND,
        AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Logs the cause of server-side errors; the client only ever sees the generic message.
pub fn log_cause(err: &AppError) {
    match err {
        AppError::Unavailable(cause) => tracing::error!(error = ?cause, "dependency unavailable"),
        AppError::Internal(cause) => tracing::error!(error = ?cause, "internal error"),
        _ => {}
    }
}

impl From<AppError> for ErrorResponse {
    fn from(err: AppError) -> Self {
        log_cause(&err);
        let status = status_of(&err);
        let mut b = body(err.code(), err.to_string());
        let mut retry_after = None;
        match err {
            AppError::RateLimited { retry_after_secs } => {
                b.0.retry_after_secs = Some(retry_after_secs);
                retry_after = Some(retry_after_secs);
            }
            AppError::PaidAccount { support_email } => b.0.support_email = Some(support_email),
            _ => {}
        }
        match status {
            StatusCode::UNPROCESSABLE_ENTITY => Self::Unprocessable(b),
            StatusCode::UNAUTHORIZED => Self::Unauthorized(b),
            StatusCode::TOO_MANY_REQUESTS => Self::TooManyRequests(b, retry_after),
            StatusCode::FORBIDDEN => Self::Forbidden(b),
            StatusCode::CONFLICT => Self::Conflict(b),
            StatusCode::NOT_FOUND => Self::NotFound(b),
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable(b),
            StatusCode::BAD_REQUEST => Self::BadRequest(b),
            _ => Self::Internal(b),
        }
    }
}

pub type ApiResult<T> = Result<T, ErrorResponse>;
