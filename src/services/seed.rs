//! `erasure seed-account`: one account with generated messenger data, for demos, tests and
//! benchmarks. Rows go in as multi-row INSERTs inside large transactions, so a million
//! messages take seconds, not minutes.

use chrono::Duration;
use rand::RngCore;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, Value,
    sea_query::{Alias, Expr, InsertStatement, Query},
};

use crate::{
    domain::{Email, Password, PersonName, Plan, VseeId},
    env::Env,
    error::{AppError, AppResult},
    models::account,
    services::accounts::{self, NewAccount},
    vault::{KeyOwner, columns},
};

#[derive(Debug)]
pub struct SeedSpec {
    pub vsee_id: VseeId,
    pub email: Email,
    pub password: Password,
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub plan: Plan,
    pub messages: u64,
    pub contacts: u64,
    pub calls: u64,
    pub devices: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedReport {
    pub account_id: i64,
    pub messages: u64,
    pub contacts: u64,
    pub calls: u64,
    pub devices: u64,
}

/// Rows per INSERT statement: well under SQLite's 32,766 bound parameters.
const ROWS_PER_STATEMENT: usize = 1000;
/// Rows per transaction.
const ROWS_PER_TRANSACTION: u64 = 50_000;
/// Peers with their own conversations; contacts beyond these share the last one.
const MAX_CONVERSATIONS: u64 = 20;

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Seeds the account and reports progress (rows written so far) through `progress`.
/// Seeds one account; its avatar goes under `data_dir` (the storage data directory).
pub async fn seed_account(
    env: Env<'_>,
    data_dir: &std::path::Path,
    spec: SeedSpec,
    progress: &(dyn Fn(u64) + Sync),
) -> AppResult<SeedReport> {
    let clock = env.clock;
    let account = accounts::create(
        env,
        NewAccount {
            vsee_id: spec.vsee_id.clone(),
            email: spec.email.clone(),
            password: spec.password.clone(),
            first_name: spec.first_name.clone(),
            last_name: spec.last_name.clone(),
            plan: spec.plan,
        },
    )
    .await?;
    let me = account.id;
    let now = clock.now();
    let my_key = env
        .vault
        .key(&env.db.conn, &KeyOwner::Account(me))
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("a new account has no data key")))?;
    let mut written = 0u64;

    // Peers: other accounts this one talks to. Random names, so nothing of the seeded
    // user's identity lives in rows that survive the user's deletion.
    let peer_hash = accounts::hash_password(&Password::parse(&random_hex(16))?).await?;
    let mut peers = Vec::new();
    let wanted_peers = spec.contacts.max(u64::from(spec.messages > 0 || spec.calls > 0));
    let tx = env.db.begin_write().await?;
    for _ in 0..wanted_peers {
        let tag = random_hex(6);
        let peer = accounts::insert(
            &tx,
            env,
            &NewAccount {
                vsee_id: VseeId::parse(&format!("peer-{tag}"))?,
                email: Email::parse(&format!("peer-{tag}@peers.invalid"))?,
                password: Password::parse(&random_hex(16))?,
                first_name: PersonName::parse("Peer")?,
                last_name: PersonName::parse(&tag)?,
                plan: Plan::Free,
            },
            peer_hash.clone(),
        )
        .await?;
        let key = env
            .vault
            .create_key(&tx, &KeyOwner::Account(peer.id), now)
            .await?;
        peers.push((peer.id, key));
    }
    tx.commit().await?;

    // Contacts, both directions.
    let mut rows = Vec::new();
    for (peer, peer_key) in peers
        .iter()
        .take(usize::try_from(spec.contacts).unwrap_or(usize::MAX))
    {
        rows.push(vec![me.into(), (*peer).into(), Value::String(None), now.into()]);
        // The peer's nickname for this account is the peer's data, under the peer's key.
        let nickname = format!("{} {}", spec.first_name.as_str(), spec.last_name.as_str());
        rows.push(vec![
            (*peer).into(),
            me.into(),
            peer_key.seal(columns::CONTACT_NICKNAME, &nickname).into(),
            now.into(),
        ]);
    }
    written += bulk_insert(
        env,
        "contacts",
        &["owner_id", "contact_id", "nickname", "created_at"],
        rows,
        written,
        progress,
    )
    .await?
        / 2;

    // Conversations with members, then the messages in them.
    let mut conversations = Vec::new();
    if spec.messages > 0 {
        let tx = env.db.begin_write().await?;
        for &(peer, _) in peers.iter().take(MAX_CONVERSATIONS as usize) {
            let conversation = insert_returning_id(
                &tx,
                "conversations",
                &["created_by", "title", "created_at"],
                vec![me.into(), Value::String(None), now.into()],
            )
            .await?;
            for member in [me, peer] {
                insert_rows(
                    &tx,
                    "conversation_members",
                    &["conversation_id", "account_id", "joined_at"],
                    vec![vec![conversation.into(), member.into(), now.into()]],
                )
                .await?;
            }
            conversations.push(conversation);
        }
        tx.commit().await?;
    }
    let mut sent = 0u64;
    while sent < spec.messages {
        let n = (spec.messages - sent).min(ROWS_PER_TRANSACTION);
        let rows = (sent..sent + n)
            .map(|i| {
                let conversation =
                    conversations[usize::try_from(i).unwrap_or(0) % conversations.len().max(1)];
                let body = format!(
                    "{} wrote message {i}: see you at the {} meeting",
                    spec.vsee_id.as_str(),
                    i % 7
                );
                vec![
                    conversation.into(),
                    me.into(),
                    my_key.seal(columns::MESSAGE_BODY, &body).into(),
                    (now - Duration::seconds(i64::try_from(spec.messages - i).unwrap_or(0))).into(),
                ]
            })
            .collect();
        written += bulk_insert(
            env,
            "messages",
            &["conversation_id", "sender_id", "body", "sent_at"],
            rows,
            written,
            progress,
        )
        .await?;
        sent += n;
    }

    // Calls, alternating who called whom.
    let rows = (0..spec.calls)
        .map(|i| {
            let peer = peers[usize::try_from(i).unwrap_or(0) % peers.len().max(1)].0;
            let (caller, callee) = if i % 2 == 0 { (me, peer) } else { (peer, me) };
            vec![
                caller.into(),
                callee.into(),
                (now - Duration::hours(i64::try_from(i).unwrap_or(0))).into(),
                ((i % 3600) as i32).into(),
            ]
        })
        .collect();
    written += bulk_insert(
        env,
        "calls",
        &["caller_id", "callee_id", "started_at", "duration_seconds"],
        rows,
        written,
        progress,
    )
    .await?;

    let rows = (0..spec.devices)
        .map(|i| {
            vec![
                me.into(),
                my_key
                    .seal(
                        columns::DEVICE_NAME,
                        &format!("{}'s device {i}", spec.first_name.as_str()),
                    )
                    .into(),
                ["ios", "android", "desktop"][usize::try_from(i % 3).unwrap_or(0)].into(),
                my_key
                    .seal(columns::DEVICE_PUSH_TOKEN, &format!("push-{}", random_hex(24)))
                    .into(),
                now.into(),
            ]
        })
        .collect();
    bulk_insert(
        env,
        "devices",
        &["account_id", "name", "platform", "push_token", "last_seen_at"],
        rows,
        written,
        progress,
    )
    .await?;

    // An avatar on disk, named by account id as the data map's file store expects.
    let avatar_dir = data_dir.join("avatars");
    tokio::fs::create_dir_all(&avatar_dir)
        .await
        .map_err(AppError::internal)?;
    let mut avatar = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut pixels = vec![0u8; 256];
    rand::rng().fill_bytes(&mut pixels);
    avatar.extend(pixels);
    let file = format!("{me}.png");
    tokio::fs::write(
        avatar_dir.join(&file),
        my_key.seal_bytes(columns::AVATAR, &avatar),
    )
    .await
    .map_err(AppError::internal)?;
    account::Entity::update_many()
        .col_expr(
            account::Column::AvatarFile,
            Expr::value(my_key.seal(accounts::sealed::AVATAR_FILE, &file)),
        )
        .filter(account::Column::Id.eq(me))
        .exec(&env.db.conn)
        .await?;

    Ok(SeedReport {
        account_id: me,
        messages: spec.messages,
        contacts: spec.contacts.min(peers.len() as u64),
        calls: spec.calls,
        devices: spec.devices,
    })
}

fn cols(names: &[&str]) -> Vec<Alias> {
    names.iter().map(|n| Alias::new(*n)).collect()
}

fn vals(values: Vec<Value>) -> Vec<sea_orm::sea_query::SimpleExpr> {
    values.into_iter().map(Into::into).collect()
}

async fn insert_returning_id(
    tx: &DatabaseTransaction,
    table: &str,
    columns: &[&str],
    values: Vec<Value>,
) -> AppResult<i64> {
    let stmt = Query::insert()
        .into_table(Alias::new(table))
        .columns(cols(columns))
        .values(vals(values))
        .map_err(AppError::internal)?
        .returning_col(Alias::new("id"))
        .to_owned();
    let row = tx
        .query_one(&stmt)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("{table}: the insert returned no id")))?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

async fn insert_rows(
    tx: &DatabaseTransaction,
    table: &str,
    columns: &[&str],
    rows: Vec<Vec<Value>>,
) -> AppResult<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut stmt: InsertStatement = Query::insert()
            .into_table(Alias::new(table))
            .columns(cols(columns))
            .to_owned();
        for row in chunk {
            stmt.values(vals(row.clone())).map_err(AppError::internal)?;
        }
        tx.execute(&stmt).await?;
    }
    Ok(())
}

async fn bulk_insert(
    env: Env<'_>,
    table: &str,
    columns: &[&str],
    rows: Vec<Vec<Value>>,
    written_before: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> AppResult<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let n = rows.len() as u64;
    let tx = env.db.begin_write().await?;
    insert_rows(&tx, table, columns, rows).await?;
    tx.commit().await?;
    progress(written_before + n);
    Ok(n)
}
