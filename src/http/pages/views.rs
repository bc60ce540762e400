//! Askama view models for the server-rendered account pages.
//!
//! Templates live in `src/http/pages/templates` (see `askama.toml`). Every
//! value is HTML-escaped by askama; optional fields render only when `Some`.

/// The VSee Messenger login form (`GET /login`).
#[derive(Debug, askama::Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    /// Anti-CSRF token posted back in the hidden `csrf_token` field.
    pub csrf_token: String,
    /// VSee ID to prefill (e.g. after a failed attempt).
    pub vsee_id: String,
    /// Error message shown above the form, if any.
    pub error: Option<String>,
    /// Informational message shown above the form, if any.
    pub notice: Option<String>,
}

/// The account sign-up form (`GET /signup`).
#[derive(Debug, askama::Template)]
#[template(path = "signup.html")]
pub struct SignupPage {
    /// Anti-CSRF token posted back in the hidden `csrf_token` field.
    pub csrf_token: String,
    /// VSee ID to prefill.
    pub vsee_id: String,
    /// Email address to prefill.
    pub email: String,
    /// First name to prefill.
    pub first_name: String,
    /// Last name to prefill.
    pub last_name: String,
    /// Error message shown above the form, if any.
    pub error: Option<String>,
}

/// The signed-in user's account profile (`GET /account/profile`).
#[derive(Debug, askama::Template)]
#[template(path = "profile.html")]
pub struct ProfilePage {
    /// Anti-CSRF token embedded in every form on the page.
    pub csrf_token: String,
    /// The account's VSee ID (read-only).
    pub vsee_id: String,
    /// The account's email address.
    pub email: String,
    /// The account's first name.
    pub first_name: String,
    /// The account's last name.
    pub last_name: String,
    /// Address that receives offline-message notifications.
    pub offline_notification_email: String,
    /// Whether offline-message email notifications are switched on.
    pub offline_notification_enabled: bool,
    /// How long after a log-in the email can change without the current password.
    pub reauth_minutes: i64,
    /// The account's newest termination request (paid accounts), if any.
    pub termination: Option<TicketView>,
    /// Success message shown at the top, if any.
    pub notice: Option<String>,
    /// Error message shown at the top, if any.
    pub error: Option<String>,
}

/// The "type your email to confirm" deletion warning (`GET /account/delete`).
#[derive(Debug, askama::Template)]
#[template(path = "delete_warning.html")]
pub struct DeleteWarningPage {
    /// Anti-CSRF token posted back in the hidden `csrf_token` field.
    pub csrf_token: String,
    /// Whether the form must also ask for the password again.
    pub needs_password: bool,
    /// Error message shown above the warning, if any.
    pub error: Option<String>,
}

/// The "your account has been deleted" confirmation page.
#[derive(Debug, askama::Template)]
#[template(path = "deleted.html")]
pub struct DeletedPage {
    /// Public identifier of the deletion request, linked to `/deletions/{id}`.
    pub receipt_id: String,
    /// With a grace period: when the purge will happen, formatted for display.
    pub purge_after: Option<String>,
}

/// "Download my data first" (`GET /account/export`): the archive's progress, or its download.
#[derive(Debug, askama::Template)]
#[template(path = "takeout.html")]
pub struct TakeoutPage {
    /// Anti-CSRF token posted back in the hidden `csrf_token` field.
    pub csrf_token: String,
    /// none | queued | running | ready | expired | failed
    pub status: String,
    pub items_done: i64,
    pub items_total: i64,
    pub percent: i64,
    /// The download's address, while it can be downloaded.
    pub download: Option<String>,
    pub megabytes: Option<String>,
    pub expires_at: Option<String>,
}

impl TakeoutPage {
    pub fn none(token: &poem::web::CsrfToken) -> Self {
        Self {
            csrf_token: token.0.clone(),
            status: "none".to_owned(),
            items_done: 0,
            items_total: 0,
            percent: 0,
            download: None,
            megabytes: None,
            expires_at: None,
        }
    }
}

/// The emailed link that cancels a scheduled deletion (`GET /deletion/cancel/{token}`), and
/// what cancelling did.
#[derive(Debug, askama::Template)]
#[template(path = "deletion_cancel.html")]
pub struct DeletionCancelPage {
    /// Anti-CSRF token posted back in the hidden `csrf_token` field.
    pub csrf_token: String,
    /// The link's token, posted back to the same address.
    pub token: String,
    /// When the purge starts (or started), formatted for display.
    pub purge_after: String,
    /// scheduled: the button; cancelled: done; otherwise: too late.
    pub state: &'static str,
    /// Error message shown above, if any.
    pub error: Option<String>,
}

/// Progress of one account deletion (`GET /deletions/{receipt_id}`).
#[derive(Debug, askama::Template)]
#[template(path = "deletion_status.html")]
pub struct DeletionStatusPage {
    /// Overall status of the deletion request.
    pub status: String,
    /// When the deletion was requested, already formatted for display.
    pub requested_at: String,
    /// When the deletion finished, if it has.
    pub completed_at: Option<String>,
    /// The individual erasure steps, in order.
    pub steps: Vec<StepView>,
    /// The signed erasure receipt's address, once the deletion is completed.
    pub proof_url: Option<String>,
    /// With a grace period: when the purge starts (or started).
    pub purge_after: Option<String>,
    /// When the deletion was cancelled, if it was.
    pub cancelled_at: Option<String>,
}

/// One erasure step shown on the deletion status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepView {
    /// Human-readable step name.
    pub name: String,
    /// Status of the step.
    pub status: String,
    /// When the step last changed, if known, already formatted for display.
    pub at: Option<String>,
}

/// Shown instead of the deletion form to paid accounts: why, and the "Request termination"
/// form (or the request already made).
#[derive(Debug, askama::Template)]
#[template(path = "paid_account.html")]
pub struct PaidAccountPage {
    /// Support address paid users can also write to.
    pub support_email: String,
    /// Anti-CSRF token posted back in the hidden `csrf_token` field.
    pub csrf_token: String,
    /// Whether the form must also ask for the password again.
    pub needs_password: bool,
    /// The account's open or newest request, if any.
    pub request: Option<TicketView>,
    /// Whether the form is offered (no request is open).
    pub can_request: bool,
    /// Error message shown above the form, if any.
    pub error: Option<String>,
}

/// A ticket as its requester sees it.
#[derive(Debug, Clone)]
pub struct TicketView {
    pub reference: String,
    /// open | approved | rejected | closed
    pub status: String,
    pub received_at: String,
    pub due_at: String,
}

/// The page a ticket's confirmation link opens (`/tickets/verify/{token}`).
#[derive(Debug, askama::Template)]
#[template(path = "ticket_verify.html")]
pub struct TicketVerifyPage {
    /// Anti-CSRF token posted back in the hidden `csrf_token` field.
    pub csrf_token: String,
    /// The link's token, posted back in the form's action.
    pub token: String,
    pub ticket: TicketView,
    /// to_confirm | confirmed | expired
    pub state: &'static str,
    /// Error message shown above the form, if any.
    pub error: Option<String>,
}

/// The "send me a password reset link" form (`GET /forgot-password`).
#[derive(Debug, askama::Template)]
#[template(path = "forgot_password.html")]
pub struct ForgotPasswordPage {
    /// Anti-CSRF token posted back in the hidden `csrf_token` field.
    pub csrf_token: String,
    /// Whether a request was just accepted (shows the neutral notice instead of the form).
    pub sent: bool,
    /// Error message shown above the form, if any.
    pub error: Option<String>,
}

/// The "choose a new password" form reached from a reset link.
#[derive(Debug, askama::Template)]
#[template(path = "reset_password.html")]
pub struct ResetPasswordPage {
    /// Anti-CSRF token posted back in the hidden `csrf_token` field.
    pub csrf_token: String,
    /// Single-use reset token from the emailed link, posted back hidden.
    pub token: String,
    /// Whether the password was just changed (shows the notice instead of the form).
    pub done: bool,
    /// Error message shown above the form, if any.
    pub error: Option<String>,
}

/// A generic, user-facing error page.
#[derive(Debug, askama::Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// Short page title and heading.
    pub title: String,
    /// Explanation shown to the user.
    pub message: String,
}
