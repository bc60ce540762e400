//! The one place errors become HTTP, for the API and the pages alike: every `AppError`, and
//! every error poem raises before a handler runs (unknown path, wrong method, unreadable
//! body), gets its status and its stable machine code here. Internal causes are logged here
//! and never returned.

use poem::{IntoResponse, Response, http::StatusCode};
use poem_openapi::{ApiResponse, Object, payload::Json};

use crate::error::AppError;

/// The stable codes clients branch on. Each is spelled once, in `as_str`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidInput,
    ConfirmationMismatch,
    InvalidCredentials,
    Unauthenticated,
    SignatureInvalid,
    RateLimited,
    PaidAccount,
    ReauthenticationRequired,
    ForbiddenRole,
    Conflict,
    TicketUnverified,
    NotFound,
    GracePeriodOver,
    IdentifierCoolingOff,
    CsrfInvalid,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    RequestTimeout,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidInput => "invalid_input",
            Self::ConfirmationMismatch => "confirmation_mismatch",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Unauthenticated => "unauthenticated",
            Self::SignatureInvalid => "signature_invalid",
            Self::RateLimited => "rate_limited",
            Self::PaidAccount => "paid_account",
            Self::ReauthenticationRequired => "reauthentication_required",
            Self::ForbiddenRole => "forbidden_role",
            Self::Conflict => "conflict",
            Self::TicketUnverified => "ticket_unverified",
            Self::NotFound => "not_found",
            Self::GracePeriodOver => "grace_period_over",
            Self::IdentifierCoolingOff => "identifier_cooling_off",
            Self::CsrfInvalid => "csrf_invalid",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RequestTimeout => "request_timeout",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// The code of an error poem raised with only a status: bad input unless the status says
    /// something more precise.
    fn of_status(status: StatusCode) -> Self {
        match status {
            StatusCode::UNAUTHORIZED => Self::Unauthenticated,
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            StatusCode::REQUEST_TIMEOUT => Self::RequestTimeout,
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable,
            s if s.is_server_error() => Self::Internal,
            _ => Self::InvalidInput,
        }
    }
}

/// The status and code of each error.
pub fn classify(err: &AppError) -> (StatusCode, ErrorCode) {
    match err {
        AppError::InvalidInput(_) => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidInput),
        AppError::ConfirmationMismatch => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::ConfirmationMismatch),
        AppError::InvalidCredentials => (StatusCode::UNAUTHORIZED, ErrorCode::InvalidCredentials),
        AppError::Unauthenticated => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated),
        AppError::SignatureInvalid => (StatusCode::UNAUTHORIZED, ErrorCode::SignatureInvalid),
        AppError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited),
        AppError::PaidAccount { .. } => (StatusCode::FORBIDDEN, ErrorCode::PaidAccount),
        AppError::ReauthenticationRequired => (StatusCode::FORBIDDEN, ErrorCode::ReauthenticationRequired),
        AppError::CsrfInvalid => (StatusCode::FORBIDDEN, ErrorCode::CsrfInvalid),
        AppError::ForbiddenRole => (StatusCode::FORBIDDEN, ErrorCode::ForbiddenRole),
        AppError::Conflict(_) => (StatusCode::CONFLICT, ErrorCode::Conflict),
        AppError::TicketUnverified => (StatusCode::CONFLICT, ErrorCode::TicketUnverified),
        AppError::NotFound => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
        AppError::GracePeriodOver => (StatusCode::CONFLICT, ErrorCode::GracePeriodOver),
        AppError::IdentifierCoolingOff => (StatusCode::CONFLICT, ErrorCode::IdentifierCoolingOff),
        AppError::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge),
        AppError::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, ErrorCode::RequestTimeout),
        AppError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable),
        AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
    }
}

/// How long a client should wait before retrying, for the errors that have one.
pub fn retry_after(err: &AppError) -> Option<u64> {
    match err {
        AppError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
        // Dependencies come back in seconds, not minutes (a restart, a failover).
        AppError::Unavailable(_) => Some(UNAVAILABLE_RETRY_SECS),
        _ => None,
    }
}

const UNAVAILABLE_RETRY_SECS: u64 = 5;

/// Logs the cause of server-side errors, with its whole chain; the client only ever sees the
/// generic message.
pub fn log_cause(err: &AppError) {
    match err {
        AppError::Unavailable(cause) => {
            tracing::error!(error = %format!("{cause:#}"), "dependency unavailable")
        }
        AppError::Internal(cause) => tracing::error!(error = %format!("{cause:#}"), "internal error"),
        _ => {}
    }
}

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
    /// Seconds to wait before trying again (with `rate_limited` and `unavailable`).
    #[oai(skip_serializing_if_is_none)]
    pub retry_after_secs: Option<u64>,
}

impl ErrorBody {
    fn new(code: ErrorCode, message: String) -> Self {
        Self {
            code: code.as_str().to_owned(),
            message,
            support_email: None,
            retry_after_secs: None,
        }
    }
}

/// The error responses of every operation.
#[derive(Debug, ApiResponse)]
#[oai(bad_request_handler = "unreadable_request")]
pub enum ApiError {
    /// Not logged in, or wrong credentials.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Not allowed: paid account, stale log-in or failed CSRF check.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No such thing.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The request body did not arrive in time.
    #[oai(status = 408)]
    RequestTimeout(Json<ErrorBody>),
    /// Conflicts with the current state (e.g. the VSee ID is taken).
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The request body is larger than the server takes (64 KiB by default).
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The body is not `application/json`.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// The request was understood but its values are not acceptable, or it could not be read
    /// (malformed JSON, a missing field, a value of the wrong type).
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    /// Too many attempts; wait `Retry-After` seconds.
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>, #[oai(header = "Retry-After")] Option<u64>),
    /// Something went wrong on our side; details are in the server log.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// A dependency is down; try again after `Retry-After` seconds.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>, #[oai(header = "Retry-After")] Option<u64>),
}

impl ApiError {
    fn of(status: StatusCode, body: ErrorBody, retry_after: Option<u64>) -> Self {
        let body = Json(body);
        match status {
            StatusCode::UNAUTHORIZED => Self::Unauthorized(body),
            StatusCode::FORBIDDEN => Self::Forbidden(body),
            StatusCode::NOT_FOUND => Self::NotFound(body),
            StatusCode::REQUEST_TIMEOUT => Self::RequestTimeout(body),
            StatusCode::CONFLICT => Self::Conflict(body),
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge(body),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType(body),
            StatusCode::TOO_MANY_REQUESTS => Self::TooManyRequests(body, retry_after),
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable(body, retry_after),
            s if s.is_client_error() => Self::Unprocessable(body),
            _ => Self::Internal(body),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        log_cause(&err);
        let (status, code) = classify(&err);
        let mut body = ErrorBody::new(code, err.to_string());
        let retry_after = retry_after(&err);
        body.retry_after_secs = retry_after;
        if let AppError::PaidAccount { support_email } = err {
            body.support_email = Some(support_email);
        }
        Self::of(status, body, retry_after)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// poem-openapi could not read the request into an operation's parameters. Its messages name
/// our internal types ("failed to parse \"AccountPatch\""): only the reason is kept.
fn unreadable_request(err: poem::Error) -> ApiError {
    let status = match err.status() {
        StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT => {
            err.status()
        }
        StatusCode::UNAUTHORIZED => StatusCode::UNAUTHORIZED,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let code = ErrorCode::of_status(status);
    let message = if status == StatusCode::UNAUTHORIZED {
        AppError::Unauthenticated.to_string()
    } else {
        public_reason(&err.to_string())
    };
    ApiError::of(status, ErrorBody::new(code, message), None)
}

/// poem-openapi names the types it was parsing ("failed to parse \"AccountPatch\": …",
/// "… (occurred while parsing \"AccountPatch\")"): internal names, dropped; the reason stays.
pub fn public_reason(message: &str) -> String {
    let mut reason = message.to_owned();
    for (open, close) in [
        ("failed to parse \"", "\": "),
        (" (occurred while parsing \"", "\")"),
    ] {
        while let Some(start) = reason.find(open) {
            let Some(len) = reason[start + open.len()..].find(close) else {
                break;
            };
            reason.replace_range(start..start + open.len() + len + close.len(), "");
        }
    }
    let reason = reason.trim();
    if reason.is_empty() {
        "the request could not be read".to_owned()
    } else {
        format!("the request could not be read: {reason}")
    }
}

/// Errors raised outside the operations (unknown path, wrong method, unreadable body, a
/// limit), in the API's error shape. Responses the operations made pass through untouched.
pub async fn api_fallback(err: poem::Error) -> Response {
    if !err.has_source() {
        return err.into_response();
    }
    let status = match err.status() {
        StatusCode::BAD_REQUEST => StatusCode::UNPROCESSABLE_ENTITY,
        s => s,
    };
    let message = if status.is_server_error() {
        tracing::error!(error = %err, "request failed");
        "internal error".to_owned()
    } else {
        public_reason(&err.to_string())
    };
    json_response(status, ErrorCode::of_status(status), message)
}

/// A coded JSON error outside an operation (middleware, fallbacks).
pub fn json_response(status: StatusCode, code: ErrorCode, message: String) -> Response {
    poem_openapi::payload::Json(ErrorBody::new(code, message))
        .with_status(status)
        .into_response()
}

/// An `AppError` as a JSON response, for middleware that answers before an operation runs.
pub fn app_error_json(err: &AppError) -> Response {
    log_cause(err);
    let (status, code) = classify(err);
    let mut response = json_response(status, code, err.to_string());
    if let Some(secs) = retry_after(err) {
        response.headers_mut().insert(
            poem::http::header::RETRY_AFTER,
            poem::http::HeaderValue::from(secs),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_do_not_name_internal_types() {
        for message in [
            "parse request payload error: failed to parse \"AccountPatch\": failed to parse \"string\": Expected input type \"string\", found false.",
            "parse request payload error: Expected input type \"string\", found false. (occurred while parsing \"optional_string\") (occurred while parsing \"AccountPatch\")",
        ] {
            let reason = public_reason(message);
            assert!(
                !reason.contains("AccountPatch") && !reason.contains("optional_string"),
                "{reason}"
            );
            assert!(reason.contains("found false"), "{reason}");
        }
    }

    #[test]
    fn every_error_has_a_code_and_a_status_of_its_kind() {
        let cases = [
            (AppError::InvalidInput("x".into()), 422, "invalid_input"),
            (AppError::RateLimited { retry_after_secs: 3 }, 429, "rate_limited"),
            (AppError::PayloadTooLarge { limit: 10 }, 413, "payload_too_large"),
            (AppError::Unavailable(anyhow::anyhow!("down")), 503, "unavailable"),
        ];
        for (err, status, code) in cases {
            let (s, c) = classify(&err);
            assert_eq!((s.as_u16(), c.as_str()), (status, code));
        }
    }
}
