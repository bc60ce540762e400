//! The schema on both databases: migrations go up, down and up again, and the data-map check
//! reads each one's catalog. SQLite always; PostgreSQL when ERASURE_TEST_DATABASE_URL names a
//! server (CI sets it), each run in a database of its own.

use erasure::{config::Settings, datamap, db::Database};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Statement};

use crate::helpers::test_vars;

async fn check_schema(db: &Database) {
    rows_written_before_typed_storage_are_carried_over(db).await;
    Migrator::down(&db.conn, None).await.unwrap();
    db.migrate().await.unwrap();
    assert_eq!(db.pending_migrations().await.unwrap(), 0);

    let map = datamap::load("").unwrap();
    datamap::check(&map, db)
        .await
        .expect("the shipped map covers the shipped schema");
    db.conn
        .execute_unprepared(
            "CREATE TABLE stickers (id BIGINT PRIMARY KEY, owner BIGINT NOT NULL REFERENCES accounts(id))",
        )
        .await
        .unwrap();
    let err = datamap::check(&map, db)
        .await
        .expect_err("an unmapped reference is refused")
        .to_string();
    assert!(err.contains("stickers") && err.contains("owner"), "{err}");
}

/// Migration 4 turns the actor text into a kind and an id, and indexes the subjects of
/// entries already written: rows written by the schema before it read the same after.
async fn rows_written_before_typed_storage_are_carried_over(db: &Database) {
    Migrator::up(&db.conn, Some(3)).await.unwrap();
    let insert = "INSERT INTO deletion_requests (id, receipt_hash, account_id, subject, actor, channel, status, \
                  requested_at, attempts) VALUES \
                  ('r-agent', 'h1', 1, 's1', 'agent:42', 'support', 'completed', '2026-11-25 10:00:00+00:00', 1), \
                  ('r-self', 'h2', 2, 's2', 'account_holder', 'web', 'completed', '2026-11-25 10:00:00+00:00', 1)";
    db.conn.execute_unprepared(insert).await.unwrap();
    db.conn
        .execute_unprepared(
            "INSERT INTO ledger_entries (seq, request_id, event, subject, recorded_at, body, prev_hash, hash) \
             VALUES (1, 'r-agent', 'account_deleted', 's1', '2026-11-25 10:00:00+00:00', '{}', 'p', 'h')",
        )
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let backend = db.backend();
    let rows = db
        .conn
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT id, actor_kind, actor_id FROM deletion_requests ORDER BY id",
        ))
        .await
        .unwrap();
    let actors: Vec<(String, String, Option<i64>)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get_by_index(0).unwrap(),
                r.try_get_by_index(1).unwrap(),
                r.try_get_by_index(2).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actors,
        [
            ("r-agent".to_owned(), "agent".to_owned(), Some(42)),
            ("r-self".to_owned(), "account_holder".to_owned(), None)
        ]
    );
    let subjects = db
        .conn
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT pseudonym, seq FROM ledger_subjects",
        ))
        .await
        .unwrap();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].try_get_by_index::<String>(0).unwrap(), "s1");
    db.conn
        .execute_unprepared("DELETE FROM ledger_subjects")
        .await
        .unwrap();
    db.conn
        .execute_unprepared("DELETE FROM ledger_entries")
        .await
        .unwrap();
    db.conn
        .execute_unprepared("DELETE FROM deletion_requests")
        .await
        .unwrap();
}

#[tokio::test]
async fn the_schema_migrates_and_is_checked_on_sqlite() {
    let data = tempfile::tempdir().unwrap();
    let settings = Settings::load_from(&test_vars(data.path())).unwrap();
    check_schema(&Database::connect(&settings).await.unwrap()).await;
}

#[tokio::test]
#[cfg_attr(
    not(erasure_server_stack),
    ignore = "server stack: set ERASURE_TEST_DATABASE_URL and ERASURE_TEST_REDIS_URL"
)]
async fn the_schema_migrates_and_is_checked_on_postgres() {
    let Ok(server_url) = std::env::var("ERASURE_TEST_DATABASE_URL") else {
        println!("ERASURE_TEST_DATABASE_URL is not set: the PostgreSQL schema test was not run");
        return;
    };
    let name = format!("erasure_test_{}", uuid::Uuid::new_v4().simple());
    let admin = sea_orm::Database::connect(&server_url)
        .await
        .expect("PostgreSQL reachable");
    let create = format!("CREATE DATABASE {name}");
    admin
        .execute_raw(Statement::from_string(admin.get_database_backend(), create))
        .await
        .unwrap();

    let data = tempfile::tempdir().unwrap();
    let mut vars = test_vars(data.path());
    let base = server_url
        .rsplit_once('/')
        .map_or(server_url.as_str(), |(base, _)| base);
    vars.insert("ERASURE_DATABASE__URL".into(), format!("{base}/{name}"));
    let settings = Settings::load_from(&vars).unwrap();
    let db = Database::connect(&settings).await.unwrap();
    check_schema(&db).await;
    db.conn.close_by_ref().await.unwrap();

    let drop = format!("DROP DATABASE {name}");
    admin
        .execute_raw(Statement::from_string(admin.get_database_backend(), drop))
        .await
        .unwrap();
}
