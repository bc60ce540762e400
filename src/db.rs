//! Opening the database: SQLite by default (WAL, secure_delete, foreign keys), PostgreSQL when
//! the URL says so. sea-orm and apalis-sqlite share one sqlx pool.

use std::{
    fmt,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Selector, SelectorTrait,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use secrecy::ExposeSecret;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::config::Settings;

/// How long a statement waits for a PostgreSQL connection before it fails as unavailable (a
/// 503 with Retry-After at the HTTP edge). sqlx's default is 30 s, and it spends all of it
/// reconnecting while the server refuses connections: every request hung that long while
/// PostgreSQL was down (tests/api/outages.rs).
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
pub struct Database {
    pub conn: DatabaseConnection,
    observer: StatementObserver,
    checkpoints: Arc<Checkpoints>,
}

/// Shares WAL checkpoints between callers: each needs one that starts after its call, so the
/// callers that arrive while one runs share the next one (group commit, for checkpoints).
///
/// No minimum spacing: measured with one checkpoint at most every 100, 250 or 1,000 ms, the
/// pipeline completed fewer deletions a second (BENCHMARKS.md, (l)).
#[derive(Debug, Default)]
struct Checkpoints {
    /// Held by the caller running the next checkpoint.
    turn: tokio::sync::Mutex<()>,
    /// Checkpoints started, and the number of the last one that finished.
    started: AtomicU64,
    finished: AtomicU64,
}

/// Told how long each statement took, and its SQL (placeholders, no values). Only the
/// benchmark installs one.
type ObserverFn = Arc<dyn Fn(Duration, &str) + Send + Sync>;

#[derive(Clone, Default)]
struct StatementObserver(Option<ObserverFn>);

impl fmt::Debug for StatementObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "Some(..)" } else { "None" })
    }
}

impl Database {
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let url = settings.database.url.expose_secret();
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                // Deleted content is overwritten with zeros, so purged bytes do not linger in
                // free pages of the file.
                .pragma("secure_delete", "on");
            if let Some(dir) = options.get_filename().parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir)?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(settings.database.max_connections.max(1))
                .connect_with(options)
                .await?;
            Ok(Self {
                conn: sea_orm::SqlxSqliteConnector::from_sqlx_sqlite_pool(pool),
                observer: StatementObserver::default(),
                checkpoints: Arc::default(),
            })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(settings.database.max_connections.max(1))
                .acquire_timeout(PG_ACQUIRE_TIMEOUT)
                .connect(url)
                .await?;
            Ok(Self {
                conn: sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(pool),
                observer: StatementObserver::default(),
                checkpoints: Arc::default(),
            })
        } else {
            anyhow::bail!("database.url must start with sqlite: or postgres:")
        }
    }

    /// Calls `f` with the duration and SQL of every statement run through this connection
    /// (and its clones made afterwards), including the WAL checkpoint. For measurements: the
    /// service itself never installs one.
    pub fn observe_statements(&mut self, f: impl Fn(Duration, &str) + Send + Sync + 'static) {
        let f: ObserverFn = Arc::new(f);
        let each = f.clone();
        self.conn
            .set_metric_callback(move |info: &sea_orm::metric::Info<'_>| {
                each(info.elapsed, &info.statement.sql)
            });
        self.observer = StatementObserver(Some(f));
    }

    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    pub fn sqlite_pool(&self) -> Option<&sqlx::SqlitePool> {
        (self.backend() == DbBackend::Sqlite).then(|| self.conn.get_sqlite_connection_pool())
    }

    /// Applies pending schema migrations and the queue's own tables.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        Migrator::up(&self.conn, None).await?;
        if let Some(pool) = self.sqlite_pool() {
            // The queue's tables only; apalis' own setup() would also switch synchronous off.
            apalis_sqlite::SqliteStorage::migrations().run(pool).await?;
            // apalis-sqlite's ack (`UPDATE Jobs ... FROM json_each(?) WHERE Jobs.id = j.task_id
            // AND Jobs.lock_by = ?`) is planned through this index on lock_by, so every batch
            // of acks walks every job the worker has ever locked: a long-running worker slows
            // down as finished jobs pile up (a no-op worker: ~360 jobs/s over 4,000 jobs). Without
            // it SQLite looks each job up by primary key. No other apalis query needs it (their
            // plans use the primary key or the status indexes). apalis' migration that made it
            // has run by now and is not re-run, so it stays dropped.
            sqlx::query("DROP INDEX IF EXISTS LIdx").execute(pool).await?;
        }
        Ok(())
    }

    pub async fn pending_migrations(&self) -> anyhow::Result<usize> {
        Ok(Migrator::get_pending_migrations(&self.conn).await?.len())
    }

    /// A write transaction. On SQLite it takes the write lock at BEGIN, so two writers wait
    /// for each other (busy_timeout) instead of failing when a read turns into a write.
    pub async fn begin_write(&self) -> Result<DatabaseTransaction, DbErr> {
        self.conn
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await
    }

    /// Moves everything in the WAL into the database file and truncates the WAL, so bytes
    /// overwritten by a purge do not survive in the log. Returns once a checkpoint that
    /// started after this call has finished: the callers that arrive while one runs share
    /// the next.
    pub async fn checkpoint(&self) -> Result<(), DbErr> {
        if self.backend() != DbBackend::Sqlite {
            return Ok(());
        }
        let seen = self.checkpoints.started.load(Ordering::Acquire);
        let _turn = self.checkpoints.turn.lock().await;
        // One started after `seen` (so after this call) finished while this caller waited.
        if self.checkpoints.finished.load(Ordering::Acquire) > seen {
            return Ok(());
        }
        let number = self.checkpoints.started.fetch_add(1, Ordering::AcqRel) + 1;
        const CHECKPOINT: &str = "PRAGMA wal_checkpoint(TRUNCATE)";
        // An unprepared statement bypasses sea-orm's metric callback: report it here.
        let started = std::time::Instant::now();
        self.conn.execute_unprepared(CHECKPOINT).await?;
        if let Some(observe) = &self.observer.0 {
            observe(started.elapsed(), CHECKPOINT);
        }
        self.checkpoints.finished.store(number, Ordering::Release);
        Ok(())
    }

    /// Serialises the transactions that call this with the same `key` until they end. On
    /// SQLite a write transaction already excludes every other writer.
    pub async fn serialize_on(&self, tx: &DatabaseTransaction, key: i64) -> Result<(), DbErr> {
        if self.backend() == DbBackend::Postgres {
            tx.execute_raw(sea_orm::Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock($1)",
                [key.into()],
            ))
            .await?;
        }
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), DbErr> {
        self.conn.execute_unprepared("SELECT 1").await.map(|_| ())
    }
}

/// The row a select on a unique key finds, if any: for hot reads, in place of sea-orm's
/// `one()`. `one()` binds `LIMIT ?`, and SQLite plans a bound LIMIT as a constant, so it
/// prepares such a statement anew on every run (its parser and planner on every request of
/// the public status page, bench (m)); the unique key already bounds the rows to one.
pub async fn by_unique_key<S, C>(select: Selector<S>, conn: &C) -> Result<Option<S::Item>, DbErr>
where
    S: SelectorTrait,
    C: ConnectionTrait,
{
    Ok(select.all(conn).await?.into_iter().next())
}
