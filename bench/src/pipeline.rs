//! (l) = issue 13's (b'): complete deletions per second through the whole pipeline (outbox,
//! relay, three apalis jobs) against the work itself, done by a hand-written loop with no
//! queue: per account the same rows deleted ((c)'s baseline), one confirmation email written
//! by the same mailer, one `account_deleted` ledger entry appended. Target ≥ 0.7x.
//!
//! Then where one typical deletion's time goes: each step called directly, one deletion at a
//! time (its wall time and statements), beside one deletion at a time through the queue.

use std::{
    collections::BTreeMap,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use chrono::Utc;
use erasure::{
    domain::{Actor, Channel},
    models::{account, deletion_request},
    services::{
        deletion::confirmation,
        ledger::{
            self,
            events::{AccountDeleted, AuditEvent, Subjects},
        },
        purge,
    },
    state::AppState,
    workers::handlers,
};
use sea_orm::{ConnectionTrait, EntityTrait};

use crate::{
    app::{App, StatementStats, app_err, count_status, request_deletion, seed_accounts, wait_completed},
    cli::TYPICAL,
    purge::{check_raw_rules, raw_delete},
    results::{Row, StackResults},
    stack::StackCtx,
    table::ms,
};

/// Deletions timed one at a time, for the per-step table.
const ONE_BY_ONE: usize = 20;
const TARGET: f64 = 0.7;

#[derive(Debug)]
pub struct PipelineRun {
    pub accounts: usize,
    pub ours_secs: f64,
    pub loop_secs: f64,
    /// (step, median wall time, statements per deletion), each step called directly.
    pub steps: Vec<(&'static str, Duration, f64)>,
    /// Median request → completed of one deletion at a time through the queue.
    pub queued: Duration,
    /// The queued deletions' own stage medians, from the request's timestamps.
    pub queued_stages: String,
}

pub async fn pipeline(ctx: &StackCtx, k: usize) -> anyhow::Result<PipelineRun> {
    let (accounts, ours_secs, loop_secs, queued, queued_stages) = {
        let app = App::start(ctx, true, None).await?;
        let outcome = compare(&app, k).await;
        app.shutdown().await?;
        outcome?
    };
    let stats = Arc::new(StatementStats::default());
    let app = App::start(ctx, false, Some(stats.clone())).await?;
    let steps = direct_steps(&app, &stats).await;
    app.shutdown().await?;
    Ok(PipelineRun {
        accounts,
        ours_secs,
        loop_secs,
        steps: steps?,
        queued,
        queued_stages,
    })
}

/// Ours and the loop on `k` accounts each, in two alternating halves; then one deletion at a
/// time through the queue.
async fn compare(app: &App, k: usize) -> anyhow::Result<(usize, f64, f64, Duration, String)> {
    check_raw_rules(&app.state)?;
    let half = k.div_ceil(2);
    let accounts = seed_accounts(&app.state, TYPICAL, half * 4 + ONE_BY_ONE).await?;
    let mut groups = accounts.chunks(half);
    let (mut ours, mut raw) = (0.0, 0.0);
    for _ in 0..2 {
        let batch = groups.next().context("too few accounts")?;
        ours += through_pipeline(app, batch).await?;
        let batch = groups.next().context("too few accounts")?;
        raw += by_hand(&app.state, batch).await?;
    }
    let mut totals = Vec::new();
    let mut rows = Vec::new();
    for account in groups.flatten() {
        let request_id = request(&app.state, account).await?;
        let before = count_status(&app.probe, "completed").await?;
        wait_completed(&app.probe, before + 1, Duration::from_secs(60)).await?;
        let row = deletion_request::Entity::find_by_id(request_id.to_string())
            .one(&app.probe.conn)
            .await?
            .context("the request is gone")?;
        let done = row.completed_at.context("not completed")?;
        totals.push((done - row.requested_at).to_std().unwrap_or_default());
        rows.push(row);
    }
    totals.sort();
    let queued = *totals.get(totals.len() / 2).context("no deletion timed")?;
    Ok((half * 2, ours, raw, queued, crate::latency::stage_medians(&rows)))
}

async fn request(state: &AppState, account: &account::Model) -> anyhow::Result<uuid::Uuid> {
    Ok(request_deletion(state, account).await?.request_id)
}

/// Seconds from the first request opened to the last one completed.
async fn through_pipeline(app: &App, accounts: &[account::Model]) -> anyhow::Result<f64> {
    let before = count_status(&app.probe, "completed").await?;
    let t = Instant::now();
    for account in accounts {
        request(&app.state, account).await?;
    }
    wait_completed(
        &app.probe,
        before + accounts.len() as u64,
        Duration::from_secs(1200),
    )
    .await?;
    Ok(t.elapsed().as_secs_f64())
}

/// The work of a deletion and nothing else, one account after the other.
async fn by_hand(state: &AppState, accounts: &[account::Model]) -> anyhow::Result<f64> {
    let t = Instant::now();
    for account in accounts {
        let rows = raw_delete(state, account).await?;
        let receipt = uuid::Uuid::new_v4().to_string();
        let to = erasure::domain::Email::parse(&account.email)?;
        let letter = state
            .mailer
            .deletion_confirmation(&to, &receipt, &receipt)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        state
            .mailer
            .send(letter, &format!("by-hand-{receipt}"))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let now = Utc::now();
        let event = AuditEvent::AccountDeleted(AccountDeleted {
            request_id: receipt,
            subjects: Subjects {
                vsee_id: state.keys.pseudonym("vsee_id", &account.vsee_id),
                email: Some(state.keys.pseudonym("email", &account.email)),
            },
            actor: Actor::AccountHolder,
            channel: Channel::Api,
            requested_at: now,
            purge_started_at: Some(now),
            purged_at: Some(now),
            confirmation_sent_at: Some(now),
            confirmation_not_sent: None,
            rows_removed: BTreeMap::from([("messages".to_owned(), i64::try_from(rows)?)]),
            retained: Vec::new(),
        });
        ledger::record(&state.db, &state.keys, &event, now)
            .await
            .map_err(app_err)?;
    }
    Ok(t.elapsed().as_secs_f64())
}

/// Each step of one deletion called directly (no queue, no worker running), one deletion at
/// a time: median wall time and statements per step.
async fn direct_steps(
    app: &App,
    stats: &StatementStats,
) -> anyhow::Result<Vec<(&'static str, Duration, f64)>> {
    let state = &app.state;
    let accounts = seed_accounts(state, TYPICAL, ONE_BY_ONE).await?;
    const NAMES: [&str; 4] = [
        "open the request (deletion::open_request)",
        "purge (purge::run)",
        "confirmation email (confirmation::send)",
        "ledger entry, tombstone, tree head (record_deletion)",
    ];
    let mut times: [Vec<Duration>; 4] = Default::default();
    let mut statements = [0u64; 4];
    stats.recording.store(true, Ordering::Relaxed);
    for account in &accounts {
        let mut step = |i: usize, t: Instant| {
            times[i].push(t.elapsed());
            statements[i] += stats.count.swap(0, Ordering::Relaxed);
        };
        stats.count.store(0, Ordering::Relaxed);
        let t = Instant::now();
        let request_id = request(state, account).await?;
        step(0, t);
        let t = Instant::now();
        match purge::run(state.env(), &state.purge_plan, request_id).await {
            Ok(purge::PurgeOutcome::Purged(_)) => {}
            other => bail!("the purge did not run: {other:?}"),
        }
        step(1, t);
        let t = Instant::now();
        confirmation::send(state.env(), &state.keys, &state.mailer, request_id, 1)
            .await
            .map_err(app_err)?;
        step(2, t);
        let t = Instant::now();
        handlers::record_deletion(state, request_id)
            .await
            .map_err(app_err)?;
        step(3, t);
    }
    stats.recording.store(false, Ordering::Relaxed);
    // Nothing will run the jobs these direct calls queued.
    app.probe
        .conn
        .execute_unprepared("DELETE FROM outbox WHERE dispatched_at IS NULL")
        .await?;
    let n = accounts.len() as f64;
    Ok(NAMES
        .into_iter()
        .zip(times)
        .zip(statements)
        .map(|((name, mut t), s)| {
            t.sort();
            (
                name,
                t.get(t.len() / 2).copied().unwrap_or_default(),
                s as f64 / n,
            )
        })
        .collect())
}

pub fn rows(stack: &str, r: &StackResults, out: &mut Vec<Row>, notes: &mut Vec<String>) {
    let Some(x) = &r.pipeline else { return };
    let ours = x.accounts as f64 / x.ours_secs;
    let raw = x.accounts as f64 / x.loop_secs;
    let ratio = ours / raw;
    out.push(Row::ratio(
        stack,
        format!(
            "(l) deletions/s, whole pipeline, typical account ({} + {} accounts)",
            x.accounts, x.accounts
        ),
        format!("{ours:.1} /s"),
        format!("{raw:.1} /s (hand-written loop: same rows, one email, one entry)"),
        ratio,
        &format!("≥ {TARGET}x"),
        ratio >= TARGET,
    ));
    let sum: Duration = x.steps.iter().map(|s| s.1).sum();
    let steps: Vec<String> = x
        .steps
        .iter()
        .map(|(name, t, n)| format!("{name} {:.2} ms ({n:.1} statements)", ms(*t)))
        .collect();
    notes.push(format!(
        "[{stack}] (l) one typical deletion, steps called directly (medians of {ONE_BY_ONE}): {}; sum {:.2} ms. Through the queue, one at a time: request→completed {:.1} ms ({})",
        steps.join("; "),
        ms(sum),
        ms(x.queued),
        x.queued_stages
    ));
}
