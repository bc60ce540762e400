//! What requesters do themselves: the owner of the account a ticket names confirms it through
//! the link mailed to the account's address, and a logged-in paid account holder asks for
//! termination in the app.
//!
//! Invariant: a ticket is verified by its requester only through a live link (unused, not
//! expired, of an open ticket) or by being asked for in a session that passed the
//! re-authentication rules; one in-app request is open per account at a time.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set, sea_query::Expr,
};

use super::{
    audit, find, new_reference,
    sealed::{self, TicketText},
};
use crate::{
    domain::{Actor, IntakeDoor, Plan, SecretToken, TicketStatus},
    env::Env,
    error::{AppError, AppResult},
    keys::Keys,
    models::ticket,
    services::{
        deletion::typed_email_matches,
        ledger::events::TicketAction,
        notifications::{self, NoticeKind},
        sessions::CurrentSession,
    },
};

/// Recorded as the verification of a ticket its owner confirmed.
pub const CONFIRMED_BY_OWNER: &str =
    "confirmed by the account's owner through the link mailed to the account's address";
/// Recorded as the verification of a ticket asked for in the app.
pub const ASKED_IN_APP: &str = "asked for in the app by the logged-in account holder, who re-authenticated";

/// The ticket a confirmation link belongs to, whatever became of it: the page says whether
/// it is still to confirm. An unknown or malformed link is `NotFound`.
pub async fn by_link(env: Env<'_>, token: &str) -> AppResult<ticket::Model> {
    let hash = SecretToken::parse(token).ok_or(AppError::NotFound)?.hash().0;
    let row = ticket::Entity::find()
        .filter(ticket::Column::VerificationTokenHash.eq(hash))
        .one(&env.db.conn)
        .await?
        .ok_or(AppError::NotFound)?;
    sealed::open(env.vault, &env.db.conn, row).await
}

/// Whether the link can still confirm `ticket` at `now`.
pub fn link_is_live(ticket: &ticket::Model, now: DateTime<Utc>) -> bool {
    ticket.status == TicketStatus::Open
        && ticket.verified_at.is_none()
        && ticket
            .verification_expires_at
            .is_some_and(|expires| expires > now)
}

/// The owner confirms: one conditional update, so a link works once, and not once expired or
/// after the ticket was decided. Confirming an already confirmed ticket changes nothing.
pub async fn confirm_by_owner(env: Env<'_>, keys: &Keys, token: &str) -> AppResult<ticket::Model> {
    let ticket = by_link(env, token).await?;
    let now = env.now();
    if ticket.verified_at.is_some() {
        return Ok(ticket);
    }
    if !link_is_live(&ticket, now) {
        return Err(AppError::Conflict(
            "this link has expired or its request was already decided; write to us again if you still want your account closed".into(),
        ));
    }
    let tx = env.db.begin_write().await?;
    let updated = ticket::Entity::update_many()
        .col_expr(ticket::Column::VerifiedAt, Expr::value(now))
        .col_expr(
            ticket::Column::VerificationReason,
            Expr::value(CONFIRMED_BY_OWNER),
        )
        .filter(ticket::Column::Id.eq(ticket.id))
        .filter(ticket::Column::Status.eq(TicketStatus::Open))
        .filter(ticket::Column::VerifiedAt.is_null())
        .filter(ticket::Column::VerificationExpiresAt.gt(now))
        .exec(&tx)
        .await?
        .rows_affected;
    if updated == 0 {
        tx.rollback().await?;
        return find(env, ticket.id).await;
    }
    let confirmed = audit::record(
        &tx,
        env,
        keys,
        ticket.id,
        TicketAction::Verified,
        Actor::AccountHolder,
        None,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(ticket_id = ticket.id, "ticket confirmed by the account's owner");
    Ok(confirmed)
}

/// What an in-app request is checked against.
#[derive(Debug, Clone, Copy)]
pub struct AppDoor {
    pub response_days: u32,
    /// A log-in older than this must prove the password again.
    pub reauth_window: Duration,
}

/// A logged-in paid account holder asks for their account to be terminated, typing its
/// email as for a deletion. The ticket is verified at once. Asking again while a request is
/// open returns that request (`false`: not new).
pub async fn request_in_app(
    env: Env<'_>,
    rules: AppDoor,
    current: &CurrentSession,
    typed_email: &str,
) -> AppResult<(ticket::Model, bool)> {
    let account = &current.account;
    if account.plan != Plan::Paid {
        return Err(AppError::Conflict(
            "free accounts are deleted at once by their holder: use DELETE MY ACCOUNT (POST /api/v1/me/deletion)".into(),
        ));
    }
    let now = env.now();
    if current.login_is_older_than(now, rules.reauth_window) {
        return Err(AppError::ReauthenticationRequired);
    }
    if !typed_email_matches(&account.email, typed_email) {
        return Err(AppError::ConfirmationMismatch);
    }
    if let Some(open) = open_in_app(env, account.id).await? {
        return Ok((open, false));
    }
    // The n-th in-app request of an account has a key of its own: two presses at once make
    // one ticket (the second insert breaks the unique key and finds the first).
    let earlier = ticket::Entity::find()
        .filter(ticket::Column::AccountId.eq(account.id))
        .filter(ticket::Column::Door.eq(IntakeDoor::App))
        .count(&env.db.conn)
        .await?;
    let tx = env.db.begin_write().await?;
    let inserted = ticket::ActiveModel {
        reference: Set(new_reference().as_str().to_owned()),
        message_id: Set(format!("app:{}:{}", account.id, earlier + 1)),
        door: Set(IntakeDoor::App),
        sender: Set(String::new()),
        subject: Set(String::new()),
        body: Set(String::new()),
        account_id: Set(Some(account.id)),
        status: Set(TicketStatus::Open),
        received_at: Set(now),
        due_at: Set(now + Duration::days(i64::from(rules.response_days))),
        verified_at: Set(Some(now)),
        verification_reason: Set(Some(ASKED_IN_APP.to_owned())),
        ..Default::default()
    }
    .insert(&tx)
    .await;
    match inserted {
        Ok(created) => {
            let text = TicketText {
                sender: account.email.clone(),
                subject: "Termination requested in the app".to_owned(),
                body: String::new(),
            };
            let created = sealed::seal_new(&tx, env.vault, created, text).await?;
            notifications::add_about_ticket(
                &tx,
                env.vault,
                NoticeKind::TicketReceived,
                created.id,
                &created.sender,
                now,
            )
            .await?;
            tx.commit().await?;
            env.wake_relay();
            tracing::info!(
                ticket_id = created.id,
                account_id = account.id,
                "termination requested in the app"
            );
            Ok((created, true))
        }
        Err(e) => {
            tx.rollback().await?;
            match open_in_app(env, account.id).await? {
                Some(open) => Ok((open, false)),
                None => Err(e.into()),
            }
        }
    }
}

/// The account's open in-app request, if any.
async fn open_in_app(env: Env<'_>, account_id: i64) -> AppResult<Option<ticket::Model>> {
    let row = ticket::Entity::find()
        .filter(ticket::Column::AccountId.eq(account_id))
        .filter(ticket::Column::Door.eq(IntakeDoor::App))
        .filter(ticket::Column::Status.eq(TicketStatus::Open))
        .one(&env.db.conn)
        .await?;
    sealed::open_some(env.vault, &env.db.conn, row).await
}

/// The account's newest ticket, from any door: what its profile shows.
pub async fn latest_for_account(env: Env<'_>, account_id: i64) -> AppResult<Option<ticket::Model>> {
    let row = ticket::Entity::find()
        .filter(ticket::Column::AccountId.eq(account_id))
        .order_by_desc(ticket::Column::ReceivedAt)
        .order_by_desc(ticket::Column::Id)
        .one(&env.db.conn)
        .await?;
    sealed::open_some(env.vault, &env.db.conn, row).await
}
