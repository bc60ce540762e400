//! (j) What users ask beyond the button, at full scale, each against a baseline in the same
//! run:
//!
//! - takeout of one account with 1,000,000 messages: peak RSS growth while the archive is
//!   written (target: flat, < 64 MiB), and rows/s against a hand-written loop that reads the
//!   same messages page by page and writes them as JSON lines to a plain file (no ZIP, no
//!   progress);
//! - bulk deletion of 100,000 dormant accounts: requests opened/s against
//!   `deletion::open_request` in a plain loop (no dormancy re-check, no run row), with the
//!   workers draining meanwhile: the largest queue backlog seen (target: never above
//!   `queue.max_backlog`) and the peak RSS growth.

use std::{
    io::Write,
    time::{Duration, Instant},
};

use anyhow::Context;
use erasure::{
    domain::{Actor, Channel},
    models::account,
    services::{bulk, deletion, takeout},
};
use erasure_jobs::JobKind;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
    sea_query::{Alias, Expr, ExprTrait, Order, Query},
};

use crate::{
    app::{App, app_err},
    big::{peak_growth, reset_peak_rss, seed_in_child},
    results::{Row, StackResults},
    stack::StackCtx,
    table::{mib, yes_no},
};

#[derive(Debug)]
pub struct RequestsRun {
    pub messages: u64,
    pub takeout_rows: i64,
    pub takeout_secs: f64,
    pub takeout_rss: Option<u64>,
    pub takeout_bytes: u64,
    pub raw_secs: f64,
    pub bulk_accounts: u64,
    pub bulk_secs: f64,
    pub bulk_rss: Option<u64>,
    pub baseline_accounts: u64,
    pub baseline_secs: f64,
    pub max_backlog_seen: u64,
    pub max_backlog: u64,
    pub drained: u64,
}

pub async fn users_requests(ctx: &StackCtx, bulk_accounts: u64) -> anyhow::Result<RequestsRun> {
    // The takeout is built here, by the job's function, with no worker running beside it
    // (a worker would build the same archive at the same time and share the measurement).
    let quiet = App::start(ctx, false, None).await?;
    let takeout = takeout_run(ctx, &quiet).await;
    quiet.shutdown().await?;
    let (takeout_rows, takeout_secs, takeout_rss, takeout_bytes, raw_secs) = takeout?;
    // The bulk run drains through the workers.
    let app = App::start(ctx, true, None).await?;
    let bulk = bulk_run(&app, bulk_accounts).await;
    app.shutdown().await?;
    Ok(RequestsRun {
        messages: ctx.sizes.big_messages,
        takeout_rows,
        takeout_secs,
        takeout_rss,
        takeout_bytes,
        raw_secs,
        ..bulk?
    })
}

async fn takeout_run(ctx: &StackCtx, app: &App) -> anyhow::Result<(i64, f64, Option<u64>, u64, f64)> {
    let holder = seed_in_child(ctx, app, ctx.sizes.big_messages).await?;
    let data_dir = app.state.settings.storage.data_dir.clone();

    // Ours: the job's work, in this process, from the request to the ready archive.
    let rss_before = reset_peak_rss();
    let t = Instant::now();
    let (export, _) = takeout::request(app.state.env(), holder.id)
        .await
        .map_err(app_err)?;
    let builder = takeout::Builder {
        data_dir: &data_dir,
        ttl: chrono::Duration::hours(1),
    };
    takeout::build(app.state.env(), builder, export.id)
        .await
        .map_err(app_err)?;
    let ready = loop {
        let found = takeout::newest(&app.state.db, holder.id).await.map_err(app_err)?;
        match found {
            Some(e) if e.status == takeout::ExportStatus::Ready => break e,
            Some(e) if e.status == takeout::ExportStatus::Failed => anyhow::bail!("the takeout failed"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let secs = t.elapsed().as_secs_f64();
    let rss = peak_growth(rss_before);
    // Baseline, after ours (memory it frees stays resident and would hide ours): the same
    // messages, paged by id, as JSON lines into a plain file.
    let t = Instant::now();
    let mut out = std::io::BufWriter::new(std::fs::File::create(data_dir.join("raw-export.jsonl"))?);
    let (mut after, mut rows) = (0i64, 0i64);
    loop {
        let page = Query::select()
            .columns([
                Alias::new("id"),
                Alias::new("conversation_id"),
                Alias::new("body"),
                Alias::new("sent_at"),
            ])
            .from(Alias::new("messages"))
            .and_where(Expr::col(Alias::new("sender_id")).eq(holder.id))
            .and_where(Expr::col(Alias::new("id")).gt(after))
            .order_by(Alias::new("id"), Order::Asc)
            .limit(2000)
            .to_owned();
        let found = app.state.db.conn.query_all(&page).await?;
        for row in &found {
            let id: i64 = row.try_get("", "id")?;
            let body: String = row.try_get("", "body")?;
            let sent: chrono::DateTime<chrono::Utc> = row.try_get("", "sent_at")?;
            let conversation: i64 = row.try_get("", "conversation_id")?;
            serde_json::to_writer(
                &mut out,
                &serde_json::json!({ "conversation": conversation, "body": body, "sent_at": sent.to_rfc3339() }),
            )?;
            out.write_all(b"\n")?;
            after = id;
        }
        rows += found.len() as i64;
        if found.len() < 2000 {
            break;
        }
    }
    out.flush()?;
    let raw_secs = t.elapsed().as_secs_f64();

    eprintln!(
        "    takeout: {} rows in {secs:.1} s ({} bytes); raw {rows} rows in {raw_secs:.1} s",
        ready.items_total,
        ready.bytes.unwrap_or(0)
    );
    Ok((
        ready.items_total,
        secs,
        rss,
        u64::try_from(ready.bytes.unwrap_or(0)).unwrap_or(0),
        raw_secs,
    ))
}

/// `n` accounts: created two years ago, last logged in `last_login_days` ago (none: never).
pub async fn insert_accounts(
    app: &App,
    prefix: &str,
    n: u64,
    last_login_days: Option<i64>,
) -> anyhow::Result<()> {
    let db = &app.state.db.conn;
    let backend = db.get_database_backend();
    let created = chrono::Utc::now() - chrono::Duration::days(730);
    let login = last_login_days.map(|d| chrono::Utc::now() - chrono::Duration::days(d));
    let columns = "vsee_id, email, first_name, last_name, password_hash, plan, \
                   offline_notification_enabled, status, created_at, updated_at, last_login_at";
    let sql = match backend {
        DbBackend::Postgres => format!(
            "INSERT INTO accounts ({columns}) SELECT '{prefix}' || g, '{prefix}' || g || '@bench.example', \
             'Dormant', 'Holder', 'x', 'free', false, 'active', $1, $1, $2 FROM generate_series(1, {n}) g"
        ),
        _ => format!(
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {n}) \
             INSERT INTO accounts ({columns}) SELECT '{prefix}' || n, '{prefix}' || n || '@bench.example', \
             'Dormant', 'Holder', 'x', 'free', 0, 'active', ?1, ?1, ?2 FROM g"
        ),
    };
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [created.into(), login.into()],
    ))
    .await?;
    Ok(())
}

async fn bulk_run(app: &App, n: u64) -> anyhow::Result<RequestsRun> {
    let t = Instant::now();
    insert_accounts(app, "dormant", n, None).await?;
    let baseline_accounts = Ord::max(n / 50, 200);
    insert_accounts(app, "active", baseline_accounts, Some(1)).await?;
    eprintln!(
        "    inserted {n} dormant and {baseline_accounts} active accounts in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let state = &app.state;

    // Baseline: open_request in a plain loop, on the active accounts (which the run skips).
    let active = account::Entity::find()
        .filter(account::Column::VseeId.starts_with("active"))
        .order_by_asc(account::Column::Id)
        .limit(baseline_accounts)
        .all(&state.db.conn)
        .await?;
    let t = Instant::now();
    for a in &active {
        deletion::open_request(state.env(), &state.keys, a, Actor::AccountHolder, Channel::Api)
            .await
            .map_err(app_err)?;
    }
    let baseline_secs = t.elapsed().as_secs_f64();

    // Ours: the run, by an admin, while the workers drain; the queue's backlog sampled.
    let max_backlog = state.settings.queue.max_backlog;
    let admin = 1;
    let since = chrono::Utc::now() - chrono::Duration::days(365);
    let done_before = completed(app).await?;
    let worst = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampling = tokio::spawn({
        let (queue, worst) = (state.queue.clone(), worst.clone());
        async move {
            loop {
                if let Ok(backlog) = queue.backlog().await {
                    let now = JobKind::ALL.iter().map(|k| backlog.of(*k)).max().unwrap_or(0);
                    worst.fetch_max(now, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
    let rss_before = reset_peak_rss();
    let t = Instant::now();
    let run = bulk::start(state.env(), admin, since, false)
        .await
        .map_err(app_err)?;
    let id = uuid::Uuid::parse_str(&run.id)?;
    let run = loop {
        let run = bulk::advance(state.env(), &state.keys, id, chrono::Duration::zero(), 500)
            .await
            .map_err(app_err)?;
        if run.finished_at.is_some() {
            break run;
        }
    };
    let bulk_secs = t.elapsed().as_secs_f64();
    let bulk_rss = peak_growth(rss_before);
    // The workers go on draining for a while; the backlog keeps being sampled.
    tokio::time::sleep(Duration::from_secs(30)).await;
    sampling.abort();
    let worst = worst.load(std::sync::atomic::Ordering::Relaxed);
    let drained = completed(app).await?.saturating_sub(done_before);
    eprintln!(
        "    bulk: {} requested, {} skipped in {bulk_secs:.1} s; {drained} completed by now",
        run.requested, run.skipped
    );
    Ok(RequestsRun {
        messages: 0,
        takeout_rows: 0,
        takeout_secs: 0.0,
        takeout_rss: None,
        takeout_bytes: 0,
        raw_secs: 0.0,
        bulk_accounts: u64::try_from(run.requested).context("requested")?,
        bulk_secs,
        bulk_rss,
        baseline_accounts,
        baseline_secs,
        max_backlog_seen: worst,
        max_backlog,
        drained,
    })
}

async fn completed(app: &App) -> anyhow::Result<u64> {
    crate::app::count_status(&app.probe, "completed").await
}

pub fn rows(stack: &str, r: &StackResults, out: &mut Vec<Row>) {
    let Some(x) = &r.requests else { return };
    let row =
        |measure: String, value: String, baseline: String, ratio: String, target: &str, met: String| Row {
            stack: stack.to_owned(),
            measure,
            value,
            baseline,
            ratio,
            target: target.to_owned(),
            met,
        };
    let ours = x.takeout_rows as f64 / x.takeout_secs;
    let raw = x.takeout_rows as f64 / x.raw_secs;
    out.push(row(
        format!("(j) takeout of an account with {} messages: rows/s", x.messages),
        format!(
            "{ours:.0} rows/s ({:.1} s, ZIP {})",
            x.takeout_secs,
            mib(x.takeout_bytes)
        ),
        format!("{raw:.0} rows/s (paged SELECT to JSON lines, no ZIP)"),
        format!("{:.3}x", ours / raw),
        "— (reference)",
        "—".into(),
    ));
    out.push(row(
        format!("(j) takeout of {} messages: peak RSS growth", x.messages),
        x.takeout_rss.map_or("n/a".into(), mib),
        "RSS before the export".into(),
        "—".into(),
        "< 64 MiB (flat)",
        yes_no(x.takeout_rss.is_some_and(|b| b < 64 << 20)),
    ));
    let ours = x.bulk_accounts as f64 / x.bulk_secs;
    let raw = x.baseline_accounts as f64 / x.baseline_secs;
    out.push(row(
        format!(
            "(j) bulk deletion of {} dormant accounts: requests opened/s",
            x.bulk_accounts
        ),
        format!(
            "{ours:.0}/s ({:.1} s, RSS +{})",
            x.bulk_secs,
            x.bulk_rss.map_or("n/a".into(), mib)
        ),
        format!(
            "{raw:.0}/s (open_request in a loop, {} accounts)",
            x.baseline_accounts
        ),
        format!("{:.3}x", ours / raw),
        "— (reference)",
        "—".into(),
    ));
    out.push(row(
        format!(
            "(j) bulk deletion: largest queue backlog while {} deletions drained",
            x.drained
        ),
        format!("{} jobs", x.max_backlog_seen),
        format!("queue.max_backlog = {}", x.max_backlog),
        "—".into(),
        "<= max_backlog",
        yes_no(x.max_backlog_seen <= x.max_backlog),
    ));
}
