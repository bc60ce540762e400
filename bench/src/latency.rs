//! (d): request-to-completed latency at a steady rate, against a chain of three no-op jobs.

use std::time::Duration;

use erasure::{
    domain::{Actor, Channel},
    models::deletion_request,
    services::deletion,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::{
    app::{App, app_err, count_status, seed_accounts, wait_completed},
    baseline::{chain_latency, percentiles},
    cli::SMALL,
    results::LatencyCompare,
    stack::{QueueTarget, StackCtx},
    table::{debug_rows, ms},
};

pub async fn latency(ctx: &StackCtx, queue: &QueueTarget) -> anyhow::Result<LatencyCompare> {
    let count = (ctx.sizes.latency_rate * ctx.sizes.latency_secs as f64)
        .round()
        .max(1.0) as u64;
    let interval = Duration::from_secs_f64(1.0 / ctx.sizes.latency_rate);
    let chain = chain_latency(ctx, queue, count, interval).await?;

    let app = App::start(ctx, true, None).await?;
    let outcome = async {
        let accounts = seed_accounts(&app.state, SMALL, usize::try_from(count)?).await?;
        let before = count_status(&app.probe, "completed").await?;
        let mut ids = Vec::new();
        let start = tokio::time::Instant::now();
        for (i, account) in accounts.iter().enumerate() {
            tokio::time::sleep_until(start + interval.mul_f64(i as f64)).await;
            let receipt = deletion::open_request(
                app.state.env(),
                &app.state.keys,
                account,
                Actor::AccountHolder,
                Channel::Api,
            )
            .await
            .map_err(app_err)?;
            ids.push(receipt.request_id.to_string());
        }
        wait_completed(&app.probe, before + count, Duration::from_secs(300)).await?;
        let rows = deletion_request::Entity::find()
            .filter(deletion_request::Column::Id.is_in(ids))
            .all(&app.probe.conn)
            .await?;
        let samples = rows
            .iter()
            .filter_map(|r| {
                r.completed_at
                    .map(|c| (c - r.requested_at).to_std().unwrap_or_default())
            })
            .collect();
        let stages = stage_medians(&rows);
        if std::env::var("BENCH_DEBUG").is_ok() {
            debug_rows(&rows);
        }
        percentiles(samples).map(|l| (l, stages))
    }
    .await;
    app.shutdown().await?;
    let (ours, stages) = outcome?;
    Ok(LatencyCompare { ours, chain, stages })
}

/// Median time of each step of the pipeline, from the request's own timestamps.
pub fn stage_medians(rows: &[deletion_request::Model]) -> String {
    type Stamp = fn(&deletion_request::Model) -> Option<chrono::DateTime<chrono::Utc>>;
    let steps: [(&str, Stamp, Stamp); 4] = [
        (
            "request→purge start",
            |r| Some(r.requested_at),
            |r| r.purge_started_at,
        ),
        ("purge", |r| r.purge_started_at, |r| r.purged_at),
        ("purged→email sent", |r| r.purged_at, |r| r.email_sent_at),
        ("email sent→ledger entry", |r| r.email_sent_at, |r| r.completed_at),
    ];
    let mut out = Vec::new();
    for (name, from, to) in steps {
        let mut d: Vec<Duration> = rows
            .iter()
            .filter_map(|r| Some((to(r)? - from(r)?).to_std().unwrap_or_default()))
            .collect();
        d.sort();
        if let Some(m) = d.get(d.len() / 2) {
            out.push(format!("{name} {:.1} ms", ms(*m)));
        }
    }
    out.join(", ")
}
