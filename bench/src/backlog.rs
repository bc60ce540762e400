//! (n) = issue 13's scale item, first half: a backlog of deletions, as after an outage or a
//! bulk action, drains at ≥ 0.8x the steady rate, with flat memory and a bounded queue.
//!
//! The accounts have no rows beyond their own (inserted by SQL, in clear): a deletion then
//! costs the pipeline's fixed work per request, which is what a backlog multiplies.
//!
//! - Steady: the workers running, `IN_FLIGHT` requests open at any time (one opened as one
//!   completes), over `steady` completions: deletions/s.
//! - Backlog: with no worker running (the outage), `backlog` requests opened; then the
//!   application starts with its workers, and the time from its start to the last completion
//!   gives the drain rate. Sampled every second meanwhile: this process's RSS (the workers
//!   run in it), the queue's largest backlog of one kind, and the undispatched outbox rows.
//!   Completions are counted once a second too (`DRAIN_POLL`): the count reads every
//!   completed row, and on PostgreSQL at 77,000 of them it took 79–115 ms, so counting every
//!   100 ms kept a backend busy about half the time, on the cores the drain runs on. A second
//!   of resolution is 0.1% of a 100,000-deletion drain.

use std::time::{Duration, Instant};

use anyhow::Context;
use erasure::{models::account, state::AppState};
use erasure_jobs::JobKind;
use futures::{StreamExt, TryStreamExt};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::{
    app::{App, count_status, request_deletion},
    big::proc_status_kib,
    requests::insert_accounts,
    results::{Row, StackResults},
    stack::StackCtx,
    table::mib,
};

const TARGET: f64 = 0.8;
/// How often the drain counts completions (see the module doc).
const DRAIN_POLL: Duration = Duration::from_secs(1);
/// Requests open at once in the steady measurement.
const IN_FLIGHT: u64 = 64;
/// Accounts read and requests opened per page while the backlog is built.
const PAGE: u64 = 1_000;
/// Flat memory: the RSS may grow at most this much from a quarter drained to the end.
const FLAT_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug)]
pub struct BacklogRun {
    pub steady: u64,
    pub steady_secs: f64,
    pub backlog: u64,
    pub open_secs: f64,
    pub drain_secs: f64,
    /// (fraction drained, RSS bytes) at a quarter, half, three quarters and the end.
    pub rss: Vec<(f64, u64)>,
    pub max_queue: u64,
    pub max_backlog: u64,
    pub max_undispatched: u64,
}

impl BacklogRun {
    pub fn steady_rate(&self) -> f64 {
        self.steady as f64 / self.steady_secs
    }
    pub fn drain_rate(&self) -> f64 {
        self.backlog as f64 / self.drain_secs
    }
    /// RSS growth from a quarter drained to the highest RSS after it.
    pub fn rss_growth(&self) -> Option<u64> {
        let first = self.rss.first()?.1;
        let highest = self.rss.iter().map(|r| r.1).max()?;
        Some(highest.saturating_sub(first))
    }
}

/// The accounts are inserted in clear: no sealer should race the measurement to seal them.
pub fn quiet_ctx(ctx: &StackCtx) -> StackCtx {
    let mut ctx = ctx.clone();
    ctx.vars
        .insert("ERASURE_KEYS__SEAL_IN_BACKGROUND".into(), "false".into());
    ctx
}

pub async fn backlog(ctx: &StackCtx, steady: u64, backlog: u64) -> anyhow::Result<BacklogRun> {
    let ctx = quiet_ctx(ctx);
    let steady_secs = {
        let app = App::start(&ctx, true, None).await?;
        let outcome = steady_rate(&app, steady).await;
        app.shutdown().await?;
        outcome?
    };

    // The outage: requests opened while no worker runs.
    let quiet = App::start(&ctx, false, None).await?;
    let opened = open_backlog(&quiet, backlog).await;
    quiet.shutdown().await?;
    let (open_secs, before) = opened?;

    let t = Instant::now();
    let app = App::start(&ctx, true, None).await?;
    let max_backlog = app.state.settings.queue.max_backlog;
    let drained = drain(&app, t, before, backlog).await;
    app.shutdown().await?;
    let (drain_secs, rss, max_queue, max_undispatched) = drained?;
    Ok(BacklogRun {
        steady,
        steady_secs,
        backlog,
        open_secs,
        drain_secs,
        rss,
        max_queue,
        max_backlog,
        max_undispatched,
    })
}

/// `IN_FLIGHT` requests open at once until `n` have completed: seconds.
async fn steady_rate(app: &App, n: u64) -> anyhow::Result<f64> {
    insert_accounts(app, "steady", n, Some(1)).await?;
    let mut accounts = pages(&app.state, "steady");
    let before = count_status(&app.probe, "completed").await?;
    let t = Instant::now();
    let mut opened = 0u64;
    loop {
        let done = count_status(&app.probe, "completed")
            .await?
            .saturating_sub(before);
        if done >= n {
            break;
        }
        while opened < n && opened.saturating_sub(done) < IN_FLIGHT {
            let account = accounts.next().await.context("too few steady accounts")??;
            request_deletion(&app.state, &account).await?;
            opened += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        if t.elapsed() > Duration::from_secs(3600) {
            anyhow::bail!("{done} of {n} completed after an hour");
        }
    }
    Ok(t.elapsed().as_secs_f64())
}

/// Accounts, one at a time.
type Accounts<'a> =
    std::pin::Pin<Box<dyn futures::Stream<Item = anyhow::Result<account::Model>> + Send + 'a>>;

/// The accounts whose vsee_id starts with `prefix`, read a page at a time.
fn pages<'a>(state: &'a AppState, prefix: &'a str) -> Accounts<'a> {
    let pages = futures::stream::try_unfold(Some(0i64), move |after| async move {
        let Some(after) = after else {
            return Ok(None);
        };
        let page = account::Entity::find()
            .filter(account::Column::VseeId.starts_with(prefix))
            .filter(account::Column::Id.gt(after))
            .order_by_asc(account::Column::Id)
            .limit(PAGE)
            .all(&state.db.conn)
            .await?;
        let next = page
            .last()
            .map(|last| last.id)
            .filter(|_| page.len() as u64 == PAGE);
        Ok::<_, anyhow::Error>((!page.is_empty()).then_some((page, next)))
    });
    Box::pin(
        pages
            .map_ok(|page| futures::stream::iter(page.into_iter().map(Ok::<_, anyhow::Error>)))
            .try_flatten(),
    )
}

/// Opens `n` requests with no worker running. Returns the seconds it took and the count of
/// completed requests before.
async fn open_backlog(app: &App, n: u64) -> anyhow::Result<(f64, u64)> {
    let t = Instant::now();
    insert_accounts(app, "backlog", n, Some(1)).await?;
    eprintln!("    inserted {n} accounts in {:.1} s", t.elapsed().as_secs_f64());
    let before = count_status(&app.probe, "completed").await?;
    let t = Instant::now();
    pages(&app.state, "backlog")
        .try_for_each_concurrent(4, |account| async move {
            request_deletion(&app.state, &account).await.map(drop)
        })
        .await?;
    let secs = t.elapsed().as_secs_f64();
    eprintln!("    opened {n} requests in {secs:.1} s, no worker running");
    Ok((secs, before))
}

/// Waits for `n` more completions, sampling every second. Returns the seconds since
/// `started`, the RSS at each quarter drained, the largest queue backlog of one kind and the
/// most undispatched outbox rows seen.
async fn drain(
    app: &App,
    started: Instant,
    before: u64,
    n: u64,
) -> anyhow::Result<(f64, Vec<(f64, u64)>, u64, u64)> {
    let mut rss = Vec::new();
    let mut quarters = [0.25, 0.5, 0.75].into_iter().peekable();
    let (mut max_queue, mut max_undispatched) = (0u64, 0u64);
    let mut next_sample = Instant::now();
    let rss_now = || proc_status_kib("VmRSS:").map_or(0, |k| k * 1024);
    loop {
        let done = count_status(&app.probe, "completed")
            .await?
            .saturating_sub(before);
        let fraction = done as f64 / n as f64;
        while quarters.peek().is_some_and(|q| fraction >= *q) {
            rss.push((fraction, rss_now()));
            quarters.next();
        }
        if done >= n {
            rss.push((1.0, rss_now()));
            break;
        }
        if Instant::now() >= next_sample {
            next_sample = Instant::now() + Duration::from_secs(1);
            if let Ok(backlog) = app.state.queue.backlog().await {
                let most = JobKind::ALL.iter().map(|k| backlog.of(*k)).max().unwrap_or(0);
                max_queue = max_queue.max(most);
            }
            max_undispatched = max_undispatched.max(undispatched(app).await?);
        }
        if started.elapsed() > Duration::from_secs(4 * 3600) {
            anyhow::bail!("{done} of {n} drained after four hours");
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
    Ok((started.elapsed().as_secs_f64(), rss, max_queue, max_undispatched))
}

async fn undispatched(app: &App) -> anyhow::Result<u64> {
    use sea_orm::{ConnectionTrait, Statement};
    let conn = &app.probe.conn;
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT COUNT(*) AS n FROM outbox WHERE dispatched_at IS NULL",
        ))
        .await?
        .context("no count")?;
    Ok(u64::try_from(row.try_get::<i64>("", "n")?).unwrap_or(0))
}

pub fn rows(stack: &str, r: &StackResults, out: &mut Vec<Row>, notes: &mut Vec<String>) {
    let Some(x) = &r.backlog else { return };
    let ratio = x.drain_rate() / x.steady_rate();
    out.push(Row::ratio(
        stack,
        format!("(n) a backlog of {} deletions drains: deletions/s", x.backlog),
        format!("{:.1} /s ({:.0} s)", x.drain_rate(), x.drain_secs),
        format!(
            "{:.1} /s steady ({} deletions, {IN_FLIGHT} open at once)",
            x.steady_rate(),
            x.steady
        ),
        ratio,
        &format!("≥ {TARGET}x"),
        ratio >= TARGET,
    ));
    let growth = x.rss_growth();
    out.push(Row {
        stack: stack.to_owned(),
        measure: "(n) RSS growth from a quarter drained to the end".into(),
        value: growth.map_or("n/a".into(), mib),
        baseline: x
            .rss
            .iter()
            .map(|(f, b)| format!("{:.0}%: {}", f * 100.0, mib(*b)))
            .collect::<Vec<_>>()
            .join(", "),
        ratio: "—".into(),
        target: format!("≤ {}", mib(FLAT_BYTES)),
        met: crate::table::yes_no(growth.is_some_and(|g| g <= FLAT_BYTES)),
    });
    out.push(Row {
        stack: stack.to_owned(),
        measure: "(n) largest queue backlog of one kind while it drained".into(),
        value: format!("{} jobs", x.max_queue),
        baseline: format!("queue.max_backlog = {}", x.max_backlog),
        ratio: "—".into(),
        target: "≤ max_backlog".into(),
        met: crate::table::yes_no(x.max_queue <= x.max_backlog),
    });
    notes.push(format!(
        "[{stack}] (n) {} requests opened in {:.1} s with no worker running; at most {} outbox rows waited for the relay; accounts with no rows beyond their own",
        x.backlog, x.open_secs, x.max_undispatched
    ));
}
