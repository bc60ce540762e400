//! Opening the database: SQLite by default (WAL, secure_delete, foreign keys), PostgreSQL when
//! the URL says so. sea-orm and apalis-sqlite share one sqlx pool.

use std::{str::FromStr, time::Duration};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};
use secrecy::ExposeSecret;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::config::Settings;

#[derive(Debug, Clone)]
pub struct Database {
    pub conn: DatabaseConnection,
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
            })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(settings.database.max_connections.max(1))
                .connect(url)
                .await?;
            Ok(Self {
                conn: sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(pool),
            })
        } else {
            anyhow::bail!("database.url must start with sqlite: or postgres:")
        }
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
    /// overwritten by a purge do not survive in the log.
    pub async fn checkpoint(&self) -> Result<(), DbErr> {
        if self.backend() == DbBackend::Sqlite {
            self.conn
                .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
                .await?;
        }
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
