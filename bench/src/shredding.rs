//! (k) What crypto-shredding costs, each against the same path without the vault, measured in
//! the same run:
//!
//! - profile read: `sessions::resolve` (the session, the account row, its data key unwrapped
//!   and six fields opened) against the same two row reads without the key and the opening;
//!   target ≥ 0.8x;
//! - log-in: `accounts::authenticate` against the row read and the argon2id check alone;
//!   target ≥ 0.8x (the hash is the cost);
//! - seeding one account with the (e)-sized message count (every body sealed) against the
//!   same multi-row INSERTs of the bodies in clear; target ≥ 0.7x;
//! - purging each of those accounts with `purge::run` (the sealed one also destroys its key);
//!   target ≥ 0.7x;
//! - a rotation of 100,000 live data keys (20,000 with --quick): keys/s (reference).

use std::time::{Duration, Instant};

use chrono::Utc;
use erasure::{
    models::{account, session},
    services::{accounts, purge, sessions},
    vault::{KeyOwner, rotation},
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, IdenStatic, Iterable, JoinType, QueryFilter,
    QueryTrait, Value,
    sea_query::{Alias, Expr, InsertStatement, Query},
};

use crate::{
    app::{App, app_err, seed_one},
    cli::Shape,
    results::{Row, StackResults},
    stack::StackCtx,
};

const READS: u32 = 5_000;
/// Reads alternate between ours and the baseline in this many blocks.
const READ_BLOCKS: u32 = 10;
const LOG_INS: u32 = 60;
const PASSWORD: &str = "correct horse battery";

#[derive(Debug)]
pub struct ShreddingRun {
    pub reads: u32,
    pub read_secs: f64,
    pub read_raw_secs: f64,
    pub log_ins: u32,
    pub log_in_secs: f64,
    pub log_in_raw_secs: f64,
    pub messages: u64,
    pub seed_secs: f64,
    pub seed_raw_secs: f64,
    pub purge_secs: f64,
    pub purge_raw_secs: f64,
    pub purged_rows: u64,
    pub purged_raw_rows: u64,
    pub keys: u64,
    pub rotation_secs: f64,
}

pub async fn shredding(ctx: &StackCtx, keys: u64) -> anyhow::Result<ShreddingRun> {
    let app = App::start(ctx, false, None).await?;
    let outcome = measure(ctx, &app, keys).await;
    app.shutdown().await?;
    outcome
}

async fn measure(ctx: &StackCtx, app: &App, keys: u64) -> anyhow::Result<ShreddingRun> {
    let state = &app.state;
    let env = state.env();
    let holder = seed_one(state, crate::cli::SMALL).await?;

    // Profile read: what every logged-in request does first.
    let token = sessions::start(
        &state.db,
        state.clock.as_ref(),
        holder.id,
        chrono::Duration::hours(1),
    )
    .await
    .map_err(app_err)?;
    let raw_token = token.expose().to_owned();
    let session_id = token.hash().0;
    let id = erasure::domain::VseeId::parse(&holder.vsee_id)?;
    // Ours and the baseline alternate (reads in blocks, log-ins one by one), so a slow
    // stretch of the machine falls on both alike.
    let (mut read_secs, mut read_raw_secs) = (0.0, 0.0);
    for _ in 0..READ_BLOCKS {
        let t = Instant::now();
        for _ in 0..READS / READ_BLOCKS {
            let found = sessions::resolve(env, &raw_token).await.map_err(app_err)?;
            anyhow::ensure!(found.is_some_and(|s| s.account.vsee_id == holder.vsee_id));
        }
        read_secs += t.elapsed().as_secs_f64();
        let t = Instant::now();
        for _ in 0..READS / READ_BLOCKS {
            // The two rows in one statement, as the service reads them (the key it also
            // joins is not read here).
            let mut select = account::Entity::find().filter(session::Column::Id.eq(session_id.clone()));
            let query = QueryTrait::query(&mut select).join(
                JoinType::InnerJoin,
                session::Entity,
                sea_orm::sea_query::ExprTrait::equals(
                    Expr::col((session::Entity, session::Column::AccountId)),
                    (account::Entity, account::Column::Id),
                ),
            );
            for column in session::Column::iter() {
                query.expr_as(
                    Expr::col((session::Entity, column)),
                    format!("session_{}", IdenStatic::as_str(&column)),
                );
            }
            let row = state
                .db
                .conn
                .query_one_raw(select.build(state.db.conn.get_database_backend()))
                .await?
                .ok_or_else(|| anyhow::anyhow!("no session"))?;
            let s = session::Model::from_query_result(&row, "session_")?;
            let a = account::Model::from_query_result(&row, "")?;
            anyhow::ensure!(s.account_id == a.id);
        }
        read_raw_secs += t.elapsed().as_secs_f64();
    }

    let (mut log_in_secs, mut log_in_raw_secs) = (0.0, 0.0);
    for _ in 0..LOG_INS {
        let t = Instant::now();
        accounts::authenticate(env, &holder.vsee_id, PASSWORD)
            .await
            .map_err(app_err)?;
        log_in_secs += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let row = accounts::row_by_vsee_id(env, &id)
            .await
            .map_err(app_err)?
            .ok_or_else(|| anyhow::anyhow!("no account"))?;
        anyhow::ensure!(
            accounts::password_matches(PASSWORD, &row.password_hash)
                .await
                .map_err(app_err)?
        );
        log_in_raw_secs += t.elapsed().as_secs_f64();
    }

    // Seeding and purging the big account, sealed and in clear.
    let messages = ctx.sizes.big_messages;
    let shape = Shape {
        messages,
        contacts: 2,
        calls: 0,
        devices: 1,
    };
    let t = Instant::now();
    let sealed = seed_one(state, shape).await?;
    let seed_secs = t.elapsed().as_secs_f64();
    // The same account (its creation included), then the messages in clear.
    let t = Instant::now();
    let clear = seed_one(state, Shape { messages: 0, ..shape }).await?;
    insert_clear_messages(app, clear.id, messages).await?;
    let seed_raw_secs = t.elapsed().as_secs_f64();
    let (purge_secs, purged_rows) = purge_one(app, &sealed).await?;
    let (purge_raw_secs, purged_raw_rows) = purge_one(app, &clear).await?;

    // A rotation of `keys` live data keys (addresses awaiting their confirmation).
    let now = state.clock.now();
    for batch in 0..keys.div_ceil(1_000) {
        let tx = state.db.begin_write().await?;
        for i in 0..1_000.min(keys - batch * 1_000) {
            let owner = KeyOwner::Confirmation(format!("bench-{batch}-{i}"));
            state.vault.create_key(&tx, &owner, now).await.map_err(app_err)?;
        }
        tx.commit().await?;
    }
    let t = Instant::now();
    // Into an epoch a month ahead: every key stored so far is to be moved.
    let report = rotation::rotate(
        &state.db,
        &state.vault,
        now + chrono::Duration::days(31),
        Duration::ZERO,
    )
    .await
    .map_err(app_err)?;
    let rotation_secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(report.rewrapped >= keys, "{report:?}");

    Ok(ShreddingRun {
        reads: READS,
        read_secs,
        read_raw_secs,
        log_ins: LOG_INS,
        log_in_secs,
        log_in_raw_secs,
        messages,
        seed_secs,
        seed_raw_secs,
        purge_secs,
        purge_raw_secs,
        purged_rows,
        purged_raw_rows,
        keys: report.rewrapped,
        rotation_secs,
    })
}

/// `purge::run` of the account, timed; rows removed.
async fn purge_one(app: &App, account: &account::Model) -> anyhow::Result<(f64, u64)> {
    let state = &app.state;
    let receipt = crate::app::request_deletion(state, account).await?;
    let t = Instant::now();
    let outcome = purge::run(state.env(), &state.purge_plan, receipt.request_id)
        .await
        .map_err(app_err)?;
    let secs = t.elapsed().as_secs_f64();
    let purge::PurgeOutcome::Purged(counts) = outcome else {
        anyhow::bail!("the purge did not run: {outcome:?}");
    };
    let rows = counts.values().map(|n| u64::try_from(*n).unwrap_or(0)).sum();
    Ok((secs, rows))
}

/// The seeder's messages, bodies in clear, with its statement shape: one conversation per
/// peer (here one), 1,000 rows per INSERT, 50,000 per transaction.
async fn insert_clear_messages(app: &App, account_id: i64, messages: u64) -> anyhow::Result<()> {
    let db = &app.state.db;
    let now = Utc::now();
    let tx = db.begin_write().await?;
    let conversation = tx
        .query_one(
            &Query::insert()
                .into_table(Alias::new("conversations"))
                .columns([
                    Alias::new("created_by"),
                    Alias::new("title"),
                    Alias::new("created_at"),
                ])
                .values([account_id.into(), Value::String(None).into(), now.into()])?
                .returning_col(Alias::new("id"))
                .to_owned(),
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("no conversation id"))?
        .try_get_by_index::<i64>(0)?;
    tx.commit().await?;
    let mut sent = 0u64;
    while sent < messages {
        let n = (messages - sent).min(50_000);
        let tx = db.begin_write().await?;
        let mut i = sent;
        while i < sent + n {
            let rows = (sent + n - i).min(1_000);
            let mut stmt: InsertStatement = Query::insert()
                .into_table(Alias::new("messages"))
                .columns([
                    Alias::new("conversation_id"),
                    Alias::new("sender_id"),
                    Alias::new("body"),
                    Alias::new("sent_at"),
                ])
                .to_owned();
            for j in i..i + rows {
                stmt.values([
                    conversation.into(),
                    account_id.into(),
                    format!(
                        "bench{account_id} wrote message {j}: see you at the {} meeting",
                        j % 7
                    )
                    .into(),
                    now.into(),
                ])?;
            }
            tx.execute(&stmt).await?;
            i += rows;
        }
        tx.commit().await?;
        sent += n;
    }
    Ok(())
}

pub fn rows(stack: &str, r: &StackResults, out: &mut Vec<Row>) {
    let Some(x) = &r.shredding else { return };
    let mut row = |measure: String, value: String, baseline: String, ratio: f64, target: f64| {
        out.push(Row::ratio(
            stack,
            measure,
            value,
            baseline,
            ratio,
            &format!("≥ {target}x"),
            ratio >= target,
        ))
    };
    let per_sec = |n: f64, secs: f64| n / secs;
    let (ours, raw) = (
        per_sec(f64::from(x.reads), x.read_secs),
        per_sec(f64::from(x.reads), x.read_raw_secs),
    );
    row(
        "(k) profile read (session → account opened): reads/s".into(),
        format!("{ours:.0}/s"),
        format!("{raw:.0}/s (the two rows in one statement, nothing unwrapped or opened)"),
        ours / raw,
        0.8,
    );
    let (ours, raw) = (
        per_sec(f64::from(x.log_ins), x.log_in_secs),
        per_sec(f64::from(x.log_ins), x.log_in_raw_secs),
    );
    row(
        "(k) log-in (authenticate): log-ins/s".into(),
        format!("{ours:.1}/s"),
        format!("{raw:.1}/s (row by blind index + argon2id, not opened)"),
        ours / raw,
        0.8,
    );
    let m = x.messages as f64;
    let (ours, raw) = (per_sec(m, x.seed_secs), per_sec(m, x.seed_raw_secs));
    row(
        format!("(k) seeding {} messages, bodies sealed: rows/s", x.messages),
        format!("{ours:.0}/s ({:.1} s)", x.seed_secs),
        format!("{raw:.0}/s ({:.1} s, same INSERTs in clear)", x.seed_raw_secs),
        ours / raw,
        0.7,
    );
    let (ours, raw) = (
        per_sec(x.purged_rows as f64, x.purge_secs),
        per_sec(x.purged_raw_rows as f64, x.purge_raw_secs),
    );
    row(
        "(k) purging them (purge::run): rows/s".to_owned(),
        format!("{ours:.0}/s ({:.1} s, key destroyed)", x.purge_secs),
        format!("{raw:.0}/s ({:.1} s, the clear account)", x.purge_raw_secs),
        ours / raw,
        0.7,
    );
    out.push(Row {
        stack: stack.to_owned(),
        measure: format!("(k) rotation of {} live data keys: keys/s", x.keys),
        value: format!(
            "{:.0}/s ({:.1} s)",
            x.keys as f64 / x.rotation_secs,
            x.rotation_secs
        ),
        baseline: "—".into(),
        ratio: "—".into(),
        target: "— (reference)".into(),
        met: "—".into(),
    });
}
