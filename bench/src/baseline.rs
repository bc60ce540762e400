//! (a) and the (d) baseline: raw apalis workers running no-op jobs.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::bail;
use apalis::prelude::*;
use apalis_core::backend::ext::poll_strategy::IntervalStrategy;
use apalis_redis::RedisStorage;
use apalis_sqlite::SqliteStorage;
use erasure::{config::Settings, workers::PollEvery};
use erasure_testkit::try_eventually;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::{
    results::{Latency, NoopRate},
    stack::{QueueTarget, StackCtx},
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoopJob {
    pub n: u64,
}

pub async fn noop(_job: NoopJob, seen: Data<Arc<AtomicU64>>) -> Result<(), BoxDynError> {
    seen.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChainJob {
    pub id: u64,
    pub started_us: i64,
}

pub enum ChainNext {
    Sqlite(SqliteStorage<ChainJob>),
    Redis(RedisStorage<ChainJob>),
    Done(Mutex<Vec<Duration>>),
}

pub async fn chain_step(job: ChainJob, next: Data<Arc<ChainNext>>) -> Result<(), BoxDynError> {
    match next.as_ref() {
        ChainNext::Sqlite(s) => s
            .clone()
            .push(job)
            .await
            .map_err(|e| BoxDynError::from(e.to_string()))?,
        ChainNext::Redis(s) => s
            .clone()
            .push(job)
            .await
            .map_err(|e| BoxDynError::from(e.to_string()))?,
        ChainNext::Done(latencies) => {
            let micros = chrono::Utc::now().timestamp_micros() - job.started_us;
            latencies
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Duration::from_micros(u64::try_from(micros).unwrap_or(0)));
        }
    }
    Ok(())
}

/// Registers one worker per (storage, data, handler) on a monitor that runs until `stop`.
macro_rules! spawn_monitor {
    ($strategy:expr, $stop:expr, $(($storage:expr, $data:expr, $handler:expr)),+ $(,)?) => {{
        let base_strategy = $strategy;
        let stop: CancellationToken = $stop;
        let mut monitor = Monitor::new();
        $(
            let (storage, data, strategy) = ($storage, $data, base_strategy.clone());
            let name = format!("bench-{}", uuid::Uuid::new_v4().simple());
            monitor = monitor.register(move |_| {
                WorkerBuilder::new(name.clone())
                    .backend(storage.clone().poll_with_strategy(strategy.clone()))
                    .data(data.clone())
                    .build($handler)
            });
        )+
        tokio::spawn(async move {
            monitor
                .shutdown_timeout(Duration::from_secs(5))
                .run_with_signal(async move {
                    stop.cancelled().await;
                    Ok(())
                })
                .await
        })
    }};
}

pub fn sqlite_config(ctx: &StackCtx, queue: &str) -> apalis_sqlite::Config {
    let q = &Settings::load_from(&ctx.vars).map(|s| s.queue).ok();
    let (hb, missed) = q
        .as_ref()
        .map_or((5, 3), |q| (q.heartbeat_interval_secs, q.missed_heartbeats));
    apalis_sqlite::Config::default()
        .queue(queue)
        .batch_size(ctx.batch_size)
        .heartbeat_interval(Duration::from_secs(hb))
        .missed_heartbeats(missed)
}

pub fn redis_config(ctx: &StackCtx, queue: &str) -> apalis_redis::Config {
    let q = &Settings::load_from(&ctx.vars).map(|s| s.queue).ok();
    let (hb, missed) = q
        .as_ref()
        .map_or((5, 3), |q| (q.heartbeat_interval_secs, q.missed_heartbeats));
    apalis_redis::Config::default()
        .queue(queue)
        .batch_size(ctx.batch_size)
        .heartbeat_interval(Duration::from_secs(hb))
        .missed_heartbeats(missed)
        .idempotency_ttl(Some(Duration::from_secs(24 * 3600)))
}

pub async fn stop_monitor(
    stop: &CancellationToken,
    handle: tokio::task::JoinHandle<Result<(), MonitorError>>,
) -> anyhow::Result<()> {
    stop.cancel();
    match tokio::time::timeout(Duration::from_secs(30), handle).await {
        Ok(joined) => joined?.map_err(|e| anyhow::anyhow!("apalis monitor: {e}")),
        Err(_) => bail!("the apalis monitor did not stop within 30 s"),
    }
}

/// `stock`: apalis' own `poll_with_interval` instead of the `PollEvery` our workers use.
pub async fn noop_rate(
    ctx: &StackCtx,
    target: &QueueTarget,
    n: u64,
    stock: bool,
) -> anyhow::Result<NoopRate> {
    let seen = Arc::new(AtomicU64::new(0));
    let stop = CancellationToken::new();
    let queue = format!("bench.noop.{}", uuid::Uuid::new_v4().simple());
    match target {
        QueueTarget::Sqlite(pool) => {
            let storage = SqliteStorage::<NoopJob>::new(pool).with_config(sqlite_config(ctx, &queue));
            let handle = if stock {
                spawn_monitor!(
                    IntervalStrategy::new(ctx.poll),
                    stop.clone(),
                    (storage.clone(), seen.clone(), noop)
                )
            } else {
                spawn_monitor!(
                    PollEvery::new(ctx.poll),
                    stop.clone(),
                    (storage.clone(), seen.clone(), noop)
                )
            };
            let t0 = Instant::now();
            let mut sink = storage.clone();
            for i in 0..n {
                sink.push(NoopJob { n: i })
                    .await
                    .map_err(|e| anyhow::anyhow!("push: {e}"))?;
            }
            let done = || async {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM Jobs WHERE job_type = ? AND status = 'Done'",
                )
                .bind(&queue)
                .fetch_one(pool)
                .await
                .map(|c| u64::try_from(c).unwrap_or(0))
                .map_err(anyhow::Error::from)
            };
            wait_until(n, Duration::from_secs(600), done).await?;
            let secs = t0.elapsed().as_secs_f64();
            stop_monitor(&stop, handle).await?;
            Ok(NoopRate { jobs: n, secs })
        }
        QueueTarget::Redis { conn, namespace } => {
            let config = redis_config(ctx, &format!("{namespace}{queue}"));
            let done_set = config.done_jobs_set();
            let storage = RedisStorage::<NoopJob>::new(conn.clone()).with_config(config);
            let handle = if stock {
                spawn_monitor!(
                    IntervalStrategy::new(ctx.poll),
                    stop.clone(),
                    (storage.clone(), seen.clone(), noop)
                )
            } else {
                spawn_monitor!(
                    PollEvery::new(ctx.poll),
                    stop.clone(),
                    (storage.clone(), seen.clone(), noop)
                )
            };
            let t0 = Instant::now();
            let mut sink = storage.clone();
            let window = ctx.sizes.redis_window;
            for i in 0..n {
                // Backpressure: apalis-redis 1.0 breaks at 8,000 due jobs.
                while i.saturating_sub(seen.load(Ordering::Relaxed)) >= window {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                sink.push(NoopJob { n: i })
                    .await
                    .map_err(|e| anyhow::anyhow!("push: {e}"))?;
            }
            let done = || async {
                let mut c = conn.clone();
                redis::cmd("SCARD")
                    .arg(&done_set)
                    .query_async::<u64>(&mut c)
                    .await
                    .map_err(anyhow::Error::from)
            };
            wait_until(n, Duration::from_secs(600), done).await?;
            let secs = t0.elapsed().as_secs_f64();
            stop_monitor(&stop, handle).await?;
            Ok(NoopRate { jobs: n, secs })
        }
    }
}

/// Polls `count` every 20 ms until it reaches `target`.
pub async fn wait_until<F, Fut>(target: u64, timeout: Duration, count: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<u64>>,
{
    try_eventually(timeout, Duration::from_millis(20), || async {
        let done = count().await?;
        Ok(if done >= target {
            Ok(())
        } else {
            Err(format!("timed out after {timeout:?}: {done} of {target} done"))
        })
    })
    .await
}

/// Three no-op jobs in a row (each handler pushes the next), started at the latency run's rate.
pub async fn chain_latency(
    ctx: &StackCtx,
    target: &QueueTarget,
    count: u64,
    interval: Duration,
) -> anyhow::Result<Latency> {
    let stop = CancellationToken::new();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let names: Vec<String> = (1..=3).map(|i| format!("bench.chain{i}.{tag}")).collect();
    let last = Arc::new(ChainNext::Done(Mutex::new(Vec::new())));
    let (handle, first): (_, ChainFirst) = match target {
        QueueTarget::Sqlite(pool) => {
            let s: Vec<SqliteStorage<ChainJob>> = names
                .iter()
                .map(|n| SqliteStorage::new(pool).with_config(sqlite_config(ctx, n)))
                .collect();
            let (s1, s2, s3) = (s[0].clone(), s[1].clone(), s[2].clone());
            let handle = spawn_monitor!(
                PollEvery::new(ctx.poll),
                stop.clone(),
                (s1.clone(), Arc::new(ChainNext::Sqlite(s2.clone())), chain_step),
                (s2.clone(), Arc::new(ChainNext::Sqlite(s3.clone())), chain_step),
                (s3.clone(), last.clone(), chain_step),
            );
            (handle, ChainFirst::Sqlite(s1))
        }
        QueueTarget::Redis { conn, namespace } => {
            let s: Vec<RedisStorage<ChainJob>> = names
                .iter()
                .map(|n| {
                    RedisStorage::new(conn.clone()).with_config(redis_config(ctx, &format!("{namespace}{n}")))
                })
                .collect();
            let (s1, s2, s3) = (s[0].clone(), s[1].clone(), s[2].clone());
            let handle = spawn_monitor!(
                PollEvery::new(ctx.poll),
                stop.clone(),
                (s1.clone(), Arc::new(ChainNext::Redis(s2.clone())), chain_step),
                (s2.clone(), Arc::new(ChainNext::Redis(s3.clone())), chain_step),
                (s3.clone(), last.clone(), chain_step),
            );
            (handle, ChainFirst::Redis(s1))
        }
    };
    // Let the workers register before the clock starts, as the application's have.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = tokio::time::Instant::now();
    for id in 0..count {
        tokio::time::sleep_until(start + interval.mul_f64(id as f64)).await;
        let job = ChainJob {
            id,
            started_us: chrono::Utc::now().timestamp_micros(),
        };
        match &first {
            ChainFirst::Sqlite(s) => s
                .clone()
                .push(job)
                .await
                .map_err(|e| anyhow::anyhow!("push: {e}"))?,
            ChainFirst::Redis(s) => s
                .clone()
                .push(job)
                .await
                .map_err(|e| anyhow::anyhow!("push: {e}"))?,
        }
    }
    let done_count = || async {
        match last.as_ref() {
            ChainNext::Done(l) => Ok(l.lock().unwrap_or_else(|p| p.into_inner()).len() as u64),
            _ => Ok(0),
        }
    };
    wait_until(count, Duration::from_secs(120), done_count).await?;
    stop_monitor(&stop, handle).await?;
    let samples = match last.as_ref() {
        ChainNext::Done(l) => l.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        _ => Vec::new(),
    };
    percentiles(samples)
}

pub enum ChainFirst {
    Sqlite(SqliteStorage<ChainJob>),
    Redis(RedisStorage<ChainJob>),
}

pub fn percentiles(mut samples: Vec<Duration>) -> anyhow::Result<Latency> {
    if samples.is_empty() {
        bail!("no latency samples");
    }
    samples.sort();
    // Nearest rank.
    let at = |p: f64| {
        let rank = (p * samples.len() as f64).ceil() as usize;
        samples[rank.clamp(1, samples.len()) - 1]
    };
    Ok(Latency {
        samples: samples.len(),
        p50: at(0.50),
        p99: at(0.99),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples = (1..=200).rev().map(Duration::from_millis).collect();
        let l = percentiles(samples).unwrap();
        assert_eq!(
            (l.samples, l.p50, l.p99),
            (200, Duration::from_millis(100), Duration::from_millis(198))
        );
        assert!(percentiles(Vec::new()).is_err());
    }
}
