//! Sealing what was written before encryption: accounts (with their blind indexes), the
//! messenger's rows, tickets with their replies and notes, notices' addresses, confirmation
//! addresses and avatar files. Resumable
//! and safe beside a running service: each row is sealed in its own short transaction only if
//! it still holds what was read (a compare-and-set on the clear value), so a concurrent
//! change is never overwritten; a run that stops is simply run again.

use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Value,
    sea_query::{Alias, Expr, ExprTrait, Order, Query},
};

use crate::{
    env::Env,
    error::{AppError, AppResult},
    models::{account, deletion_request, ticket},
    services::{
        accounts::sealed,
        deletion::confirmation,
        notifications,
        tickets::{self, sealed as ticket_sealed},
    },
    vault::{DataKey, KeyOwner, columns, is_sealed},
};

/// Rows read per page.
const PAGE: u64 = 1000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealReport {
    pub rows: u64,
    pub files: u64,
}

/// A table whose columns are sealed under the key of the owner its `owner` column names.
struct Table {
    name: &'static str,
    owner: &'static str,
    key_of: fn(i64) -> KeyOwner,
    /// (column, the name it is sealed under)
    columns: &'static [(&'static str, &'static str)],
}

const TABLES: [Table; 5] = [
    Table {
        name: "messages",
        owner: "sender_id",
        key_of: KeyOwner::Account,
        columns: &[("body", columns::MESSAGE_BODY)],
    },
    Table {
        name: "contacts",
        owner: "owner_id",
        key_of: KeyOwner::Account,
        columns: &[("nickname", columns::CONTACT_NICKNAME)],
    },
    Table {
        name: "devices",
        owner: "account_id",
        key_of: KeyOwner::Account,
        columns: &[
            ("name", columns::DEVICE_NAME),
            ("push_token", columns::DEVICE_PUSH_TOKEN),
        ],
    },
    Table {
        name: "ticket_replies",
        owner: "ticket_id",
        key_of: KeyOwner::Ticket,
        columns: &[
            ("sender", ticket_sealed::REPLY_SENDER),
            ("subject", ticket_sealed::REPLY_SUBJECT),
            ("body", ticket_sealed::REPLY_BODY),
        ],
    },
    Table {
        name: "ticket_notes",
        owner: "ticket_id",
        key_of: KeyOwner::Ticket,
        columns: &[("body", ticket_sealed::NOTE_BODY)],
    },
];

/// Seals everything still in clear; `progress(done, total)` is told after each page, in
/// rows looked at.
pub async fn seal_all(
    env: Env<'_>,
    data_dir: &std::path::Path,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> AppResult<SealReport> {
    let total = count_rows(env).await?;
    let mut report = SealReport::default();
    let mut looked = 0u64;
    for table in &TABLES {
        report.rows += seal_table(env, table, &mut looked, total, progress).await?;
    }
    report.rows += seal_tickets(env).await?;
    report.rows += seal_confirmation_addresses(env).await?;
    report.rows += seal_old_addresses(env).await?;
    report.rows += crate::services::intake::quarantine::seal_existing(env).await?;
    report.files += seal_avatars(env, data_dir).await?;
    // Accounts last: an account without a blind index is the sign that a run is unfinished
    // ([`needed`]), so it must stay until everything else is sealed.
    report.rows += seal_accounts(env, &mut looked, total, progress).await?;
    progress(total, total);
    Ok(report)
}

/// Whether anything is left from before encryption (one indexed lookup).
pub async fn needed(env: Env<'_>) -> AppResult<bool> {
    Ok(account::Entity::find()
        .filter(account::Column::VseeIdIndex.is_null())
        .one(&env.db.conn)
        .await?
        .is_some())
}

async fn count_rows(env: Env<'_>) -> AppResult<u64> {
    let mut total = 0;
    for table in [
        "accounts",
        "messages",
        "contacts",
        "devices",
        "ticket_replies",
        "ticket_notes",
    ] {
        let stmt = Query::select()
            .expr_as(Expr::col(Alias::new("id")).count(), Alias::new("n"))
            .from(Alias::new(table))
            .to_owned();
        if let Some(row) = env.db.conn.query_one(&stmt).await? {
            total += u64::try_from(row.try_get::<i64>("", "n")?).unwrap_or(0);
        }
    }
    Ok(total)
}

/// The owner's key, made (in `conn`'s transaction) if it has none yet; kept in `cache`, a
/// bounded number of them.
async fn owner_key<C: ConnectionTrait>(
    env: Env<'_>,
    conn: &C,
    cache: &mut HashMap<String, DataKey>,
    owner: KeyOwner,
) -> AppResult<DataKey> {
    let name = owner.name();
    if let Some(key) = cache.get(&name) {
        return Ok(key.clone());
    }
    if cache.len() > 10_000 {
        cache.clear();
    }
    let key = env.vault.create_key(conn, &owner, env.now()).await?;
    cache.insert(name, key.clone());
    Ok(key)
}

async fn seal_accounts(
    env: Env<'_>,
    looked: &mut u64,
    total: u64,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> AppResult<u64> {
    let mut sealed_rows = 0;
    let mut after = 0i64;
    loop {
        let ids: Vec<i64> = account::Entity::find()
            .select_only()
            .column(account::Column::Id)
            .filter(account::Column::Id.gt(after))
            .order_by_asc(account::Column::Id)
            .limit(PAGE)
            .into_tuple()
            .all(&env.db.conn)
            .await?;
        let Some(&last) = ids.last() else { break };
        for id in &ids {
            let tx = env.db.begin_write().await?;
            // Read again under the write lock: a row sealed meanwhile is left alone.
            let row = account::Entity::find_by_id(*id)
                .filter(account::Column::VseeIdIndex.is_null())
                .lock_exclusive()
                .one(&tx)
                .await?;
            if let Some(row) = row {
                let key = env
                    .vault
                    .create_key(&tx, &KeyOwner::Account(row.id), env.now())
                    .await?;
                let opened = sealed::open(env.vault, &tx, row).await?;
                sealed::write(&tx, env.vault, &key, &opened).await?;
                sealed_rows += 1;
            }
            tx.commit().await?;
        }
        *looked += ids.len() as u64;
        progress(*looked, total);
        after = last;
    }
    Ok(sealed_rows)
}

async fn seal_table(
    env: Env<'_>,
    table: &Table,
    looked: &mut u64,
    total: u64,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> AppResult<u64> {
    let (name, id) = (Alias::new(table.name), Alias::new("id"));
    let mut keys = HashMap::new();
    let mut sealed_rows = 0;
    let mut after = 0i64;
    loop {
        let mut select = Query::select();
        select
            .column(id.clone())
            .column(Alias::new(table.owner))
            .from(name.clone())
            .and_where(Expr::col(id.clone()).gt(after))
            .order_by(id.clone(), Order::Asc)
            .limit(PAGE);
        for (column, _) in table.columns {
            select.column(Alias::new(*column));
        }
        let rows = env.db.conn.query_all(&select).await?;
        let Some(last) = rows.last() else { break };
        let last: i64 = last.try_get("", "id")?;
        let tx = env.db.begin_write().await?;
        for row in &rows {
            let Some(owner) = row.try_get::<Option<i64>>("", table.owner)? else {
                continue;
            };
            let mut update = Query::update();
            update
                .table(name.clone())
                .and_where(Expr::col(id.clone()).eq(row.try_get::<i64>("", "id")?));
            let mut changed = false;
            for (column, sealed_as) in table.columns {
                let Some(clear) = row.try_get::<Option<String>>("", column)? else {
                    continue;
                };
                if is_sealed(&clear) {
                    continue;
                }
                let key = owner_key(env, &tx, &mut keys, (table.key_of)(owner)).await?;
                update
                    .value(Alias::new(*column), Value::from(key.seal(sealed_as, &clear)))
                    .and_where(Expr::col(Alias::new(*column)).eq(clear));
                changed = true;
            }
            if changed {
                sealed_rows += tx.execute(&update).await?.rows_affected();
            }
        }
        tx.commit().await?;
        *looked += rows.len() as u64;
        progress(*looked, total);
        after = last;
    }
    Ok(sealed_rows)
}

/// Tickets: their text under their own key, and their sender's blind index (the ticket
/// notices' addresses are sealed by [`seal_old_addresses`]).
async fn seal_tickets(env: Env<'_>) -> AppResult<u64> {
    let mut sealed_rows = 0;
    loop {
        let rows = ticket::Entity::find()
            .filter(ticket::Column::SenderIndex.is_null())
            .filter(ticket::Column::Sender.ne(tickets::ERASED))
            .filter(ticket::Column::Sender.not_like("enc1:%"))
            .order_by_asc(ticket::Column::Id)
            .limit(PAGE)
            .all(&env.db.conn)
            .await?;
        if rows.is_empty() {
            return Ok(sealed_rows);
        }
        for row in rows {
            let tx = env.db.begin_write().await?;
            let still = ticket::Entity::find_by_id(row.id)
                .filter(ticket::Column::Sender.eq(row.sender.clone()))
                .filter(ticket::Column::SenderIndex.is_null())
                .lock_exclusive()
                .one(&tx)
                .await?;
            if let Some(still) = still {
                let text = ticket_sealed::TicketText {
                    sender: still.sender.clone(),
                    subject: still.subject.clone(),
                    body: still.body.clone(),
                };
                ticket_sealed::seal_new(&tx, env.vault, still, text).await?;
                sealed_rows += 1;
            }
            tx.commit().await?;
        }
    }
}

async fn seal_confirmation_addresses(env: Env<'_>) -> AppResult<u64> {
    let pending = deletion_request::Entity::find()
        .filter(deletion_request::Column::NotifyEmail.is_not_null())
        .filter(deletion_request::Column::NotifyEmail.not_like("enc1:%"))
        .all(&env.db.conn)
        .await?;
    let mut sealed_rows = 0;
    for request in pending {
        let Some(clear) = request.notify_email else {
            continue;
        };
        let tx = env.db.begin_write().await?;
        let key = env
            .vault
            .create_key(&tx, &KeyOwner::Confirmation(request.id.clone()), env.now())
            .await?;
        sealed_rows += deletion_request::Entity::update_many()
            .col_expr(
                deletion_request::Column::NotifyEmail,
                Expr::value(key.seal(confirmation::ADDRESS, &clear)),
            )
            .filter(deletion_request::Column::Id.eq(&request.id))
            .filter(deletion_request::Column::NotifyEmail.eq(clear))
            .exec(&tx)
            .await?
            .rows_affected;
        tx.commit().await?;
    }
    Ok(sealed_rows)
}

async fn seal_old_addresses(env: Env<'_>) -> AppResult<u64> {
    use crate::models::notification;
    let pending = notification::Entity::find()
        .filter(notification::Column::Recipient.is_not_null())
        .filter(notification::Column::Recipient.not_like("enc1:%"))
        .all(&env.db.conn)
        .await?;
    let mut keys = HashMap::new();
    let mut sealed_rows = 0;
    for notice in pending {
        // An account's notice (the old address) under the account's key, a ticket's notice
        // (the requester's address) under the ticket's.
        let (owner, sealed_as) = match (notice.ticket_id, notice.account_id) {
            (Some(ticket), _) => (KeyOwner::Ticket(ticket), ticket_sealed::NOTICE_RECIPIENT),
            (None, Some(account)) => (KeyOwner::Account(account), notifications::OLD_ADDRESS),
            (None, None) => continue,
        };
        let Some(clear) = notice.recipient else { continue };
        let key = owner_key(env, &env.db.conn, &mut keys, owner).await?;
        sealed_rows += notification::Entity::update_many()
            .col_expr(
                notification::Column::Recipient,
                Expr::value(key.seal(sealed_as, &clear)),
            )
            .filter(notification::Column::Id.eq(&notice.id))
            .filter(notification::Column::Recipient.eq(clear))
            .exec(&env.db.conn)
            .await?
            .rows_affected;
    }
    Ok(sealed_rows)
}

/// Avatar files `<account id>.<ext>` still in clear, rewritten sealed (a new file renamed
/// over the old: a reader sees one or the other, whole).
async fn seal_avatars(env: Env<'_>, data_dir: &std::path::Path) -> AppResult<u64> {
    let dir = data_dir.join("avatars");
    let mut entries = match tokio::fs::read_dir(&dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(AppError::internal(e)),
    };
    let mut keys = HashMap::new();
    let mut sealed_files = 0;
    while let Some(entry) = entries.next_entry().await.map_err(AppError::internal)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(account_id) = name.split('.').next().and_then(|id| id.parse::<i64>().ok()) else {
            continue;
        };
        let stored = tokio::fs::read(entry.path()).await.map_err(AppError::internal)?;
        if stored.starts_with(b"enc1:") {
            continue;
        }
        if account::Entity::find_by_id(account_id)
            .one(&env.db.conn)
            .await?
            .is_none()
        {
            continue;
        }
        let key = owner_key(env, &env.db.conn, &mut keys, KeyOwner::Account(account_id)).await?;
        let temp = dir.join(format!(".{name}.sealing"));
        tokio::fs::write(&temp, key.seal_bytes(columns::AVATAR, &stored))
            .await
            .map_err(AppError::internal)?;
        tokio::fs::rename(&temp, entry.path())
            .await
            .map_err(AppError::internal)?;
        sealed_files += 1;
    }
    Ok(sealed_files)
}
