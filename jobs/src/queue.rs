//! The enqueue side of the two queue backends: apalis-sqlite inside the embedded database, or
//! apalis-redis. Everything above this module (the outbox relay, the CLI, the metrics) sees
//! one `JobQueue` whatever the backend.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_redis::{ConnectionManager, RedisStorage};
use apalis_sqlite::{SqlitePool, SqliteStorage};
use uuid::Uuid;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::JobKind;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("could not enqueue a {kind} job: {message}")]
    Enqueue { kind: &'static str, message: String },
    #[error("queue backend: {0}")]
    Backend(String),
}

fn backend_error(e: impl std::fmt::Display) -> QueueError {
    QueueError::Backend(e.to_string())
}

/// Settings shared by every queue of a backend.
#[derive(Debug, Clone)]
pub struct QueueOptions {
    /// Prefix of every queue name: several deployments (or test runs) can share one Redis.
    pub namespace: String,
    pub batch_size: usize,
    pub heartbeat_interval: Duration,
    pub missed_heartbeats: usize,
    /// How long finished jobs (and Redis idempotency keys) are kept before the vacuum.
    pub retention: Duration,
}

impl QueueOptions {
    pub fn queue_name(&self, kind: JobKind) -> String {
        format!("{}{}", self.namespace, kind.queue())
    }

    pub fn sqlite_config(&self, kind: JobKind) -> apalis_sqlite::Config {
        apalis_sqlite::Config::default()
            .queue(self.queue_name(kind))
            .batch_size(self.batch_size)
            .heartbeat_interval(self.heartbeat_interval)
            .missed_heartbeats(self.missed_heartbeats)
    }

    pub fn redis_config(&self, kind: JobKind) -> apalis_redis::Config {
        apalis_redis::Config::default()
            .queue(self.queue_name(kind))
            .batch_size(self.batch_size)
            .heartbeat_interval(self.heartbeat_interval)
            .missed_heartbeats(self.missed_heartbeats)
            // Keys outlive any relay retry by far, and still expire instead of piling up.
            .idempotency_ttl(Some(self.retention))
    }
}

/// Jobs waiting to run, per queue: what the relay's backpressure looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog(BTreeMap<JobKind, u64>);

impl Backlog {
    pub fn of(&self, kind: JobKind) -> u64 {
        self.0.get(&kind).copied().unwrap_or(0)
    }
}

/// The enqueue side of a backend: one storage per kind, all taking the payload as JSON (the
/// same bytes the workers' typed storages decode).
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite {
        pool: SqlitePool,
        storages: BTreeMap<JobKind, SqliteStorage<Value>>,
    },
    Redis {
        conn: ConnectionManager,
        storages: BTreeMap<JobKind, RedisStorage<Value>>,
    },
}

/// How often a backend itself runs a job before giving up on it (see `JobQueue::enqueue`).
const BACKEND_ATTEMPTS: usize = 3;

/// Enqueues jobs of every kind. Pushing the same (kind, key) twice enqueues it once, so the
/// outbox relay may retry freely and several relays may race.
#[derive(Debug, Clone)]
pub struct JobQueue {
    options: QueueOptions,
    backend: Backend,
}

fn enqueue_error(kind: JobKind, e: impl std::fmt::Display) -> QueueError {
    QueueError::Enqueue {
        kind: kind.as_str(),
        message: e.to_string(),
    }
}

impl JobQueue {
    pub fn sqlite(pool: &SqlitePool, options: QueueOptions) -> Self {
        let storages = JobKind::ALL
            .iter()
            .map(|&kind| {
                (
                    kind,
                    SqliteStorage::new(pool).with_config(options.sqlite_config(kind)),
                )
            })
            .collect();
        let backend = Backend::Sqlite {
            pool: pool.clone(),
            storages,
        };
        Self { options, backend }
    }

    pub async fn redis(url: &str, options: QueueOptions) -> Result<Self, QueueError> {
        let conn = apalis_redis::connect(url).await.map_err(backend_error)?;
        let storages = JobKind::ALL
            .iter()
            .map(|&kind| {
                (
                    kind,
                    RedisStorage::new(conn.clone()).with_config(options.redis_config(kind)),
                )
            })
            .collect();
        Ok(Self {
            options,
            backend: Backend::Redis { conn, storages },
        })
    }

    pub fn options(&self) -> &QueueOptions {
        &self.options
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Redis { .. } => "redis",
        }
    }

    /// The idempotency key of a job: the request id, suffixed by the generation once the job
    /// has been retried by hand (the first key is spent).
    pub fn idempotency_key(request_id: Uuid, generation: i32) -> String {
        if generation <= 1 {
            request_id.to_string()
        } else {
            format!("{request_id}#{generation}")
        }
    }

    /// Pushes attempt `attempt` of the `kind` job for `id`, keyed by (id, generation).
    pub async fn enqueue(
        &self,
        kind: JobKind,
        id: Uuid,
        generation: i32,
        attempt: u32,
    ) -> Result<(), QueueError> {
        // Retries are ours (a failed attempt schedules the next one through the outbox and is
        // acknowledged), so the backend's own retries only ever see a job that could not be
        // decoded or panicked: a few are enough.
        let task = TaskBuilder::new(kind.payload(id, attempt))
            .idempotency_key(Self::idempotency_key(id, generation))
            .max_attempts(BACKEND_ATTEMPTS)
            .build();
        let missing = || enqueue_error(kind, "no storage for this kind");
        match &self.backend {
            Backend::Sqlite { storages, .. } => storages
                .get(&kind)
                .ok_or_else(missing)?
                .clone()
                .push_task(task)
                .await
                .map_err(|e| enqueue_error(kind, e)),
            Backend::Redis { storages, .. } => storages
                .get(&kind)
                .ok_or_else(missing)?
                .clone()
                .push_task(task)
                .await
                .map_err(|e| enqueue_error(kind, e)),
        }
    }

    /// Jobs of `kind` that are due or scheduled but not yet taken by a worker.
    pub async fn waiting(&self, kind: JobKind) -> Result<u64, QueueError> {
        let queue = self.options.queue_name(kind);
        match &self.backend {
            Backend::Sqlite { pool, .. } => {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM Jobs WHERE job_type = ? AND status IN ('Pending', 'Failed')",
                )
                .bind(&queue)
                .fetch_one(pool)
                .await
                .map_err(backend_error)?;
                Ok(u64::try_from(n).unwrap_or(0))
            }
            Backend::Redis { conn, .. } => {
                let config = self.options.redis_config(kind);
                let mut conn = conn.clone();
                // apalis-redis pushes every job into the scheduled set; a fetch moves the due
                // ones to the active list. Both count towards what a fetch has to unpack.
                let (scheduled, active): (u64, u64) = redis::pipe()
                    .cmd("ZCARD")
                    .arg(config.scheduled_jobs_set())
                    .cmd("LLEN")
                    .arg(config.active_jobs_list())
                    .query_async(&mut conn)
                    .await
                    .map_err(backend_error)?;
                Ok(scheduled + active)
            }
        }
    }

    pub async fn backlog(&self) -> Result<Backlog, QueueError> {
        let mut backlog = BTreeMap::new();
        for &kind in JobKind::ALL {
            backlog.insert(kind, self.waiting(kind).await?);
        }
        Ok(Backlog(backlog))
    }

    /// Removes jobs that finished more than `retention` ago (and, on SQLite, workers long
    /// gone), so neither store grows without bound. Returns how many jobs were removed.
    pub async fn vacuum(&self) -> Result<u64, QueueError> {
        let retention = self.options.retention;
        let cutoff = SystemTime::now()
            .checked_sub(retention)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let mut removed = 0u64;
        match &self.backend {
            Backend::Sqlite { pool, .. } => {
                for &kind in JobKind::ALL {
                    let done = sqlx::query(
                        "DELETE FROM Jobs WHERE job_type = ? AND status IN ('Done', 'Killed') \
                         AND done_at IS NOT NULL AND done_at <= ?",
                    )
                    .bind(self.options.queue_name(kind))
                    .bind(i64::try_from(cutoff).unwrap_or(i64::MAX))
                    .execute(pool)
                    .await
                    .map_err(backend_error)?;
                    removed += done.rows_affected();
                }
                // Every process start registers new, uniquely named workers.
                sqlx::query(
                    "DELETE FROM Workers WHERE last_seen <= ? \
                     AND id NOT IN (SELECT lock_by FROM Jobs WHERE lock_by IS NOT NULL)",
                )
                .bind(i64::try_from(cutoff).unwrap_or(i64::MAX))
                .execute(pool)
                .await
                .map_err(backend_error)?;
            }
            Backend::Redis { conn, .. } => {
                for &kind in JobKind::ALL {
                    let config = self.options.redis_config(kind);
                    for set in [config.done_jobs_set(), config.dead_jobs_set()] {
                        removed += vacuum_redis_set(conn, &config, &set, cutoff).await?;
                    }
                }
            }
        }
        Ok(removed)
    }
}

/// apalis-redis' own vacuum walks the whole data hash in one script and treats a failed job
/// waiting for its retry as finished; this one walks the finished sets in slices instead.
const REDIS_VACUUM: &str = r"
-- KEYS[1] finished set, KEYS[2] data hash, KEYS[3] meta prefix; ARGV[1] cutoff, ARGV[2..] ids
local removed = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local meta = KEYS[3] .. ':' .. id
  local done_at = tonumber(redis.call('HGET', meta, 'done_at') or '0')
  if done_at <= tonumber(ARGV[1]) then
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[3] .. ':result', id)
    redis.call('DEL', meta)
    redis.call('SREM', KEYS[1], id)
    removed = removed + 1
  end
end
return removed
";

async fn vacuum_redis_set(
    conn: &ConnectionManager,
    config: &apalis_redis::Config,
    set: &str,
    cutoff: u64,
) -> Result<u64, QueueError> {
    let script = redis::Script::new(REDIS_VACUUM);
    let mut conn = conn.clone();
    let mut cursor: u64 = 0;
    let mut removed = 0;
    loop {
        let (next, ids): (u64, Vec<String>) = redis::cmd("SSCAN")
            .arg(set)
            .arg(cursor)
            .arg("COUNT")
            .arg(500)
            .query_async(&mut conn)
            .await
            .map_err(backend_error)?;
        if !ids.is_empty() {
            let mut invocation = script.prepare_invoke();
            invocation
                .key(set)
                .key(config.job_data_hash())
                .key(config.job_meta_hash())
                .arg(cutoff);
            for id in &ids {
                invocation.arg(id);
            }
            let n: u64 = invocation.invoke_async(&mut conn).await.map_err(backend_error)?;
            removed += n;
        }
        if next == 0 {
            return Ok(removed);
        }
        cursor = next;
    }
}
