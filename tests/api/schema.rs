//! The schema on both databases: migrations go up, down and up again, and the data-map check
//! reads each one's catalog. SQLite always; PostgreSQL when ERASURE_TEST_DATABASE_URL names a
//! server (CI sets it), each run in a database of its own.

use erasure::{config::Settings, db::Database, services::datamap};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Statement};

use crate::helpers::test_vars;

async fn check_schema(db: &Database) {
    db.migrate().await.unwrap();
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

#[tokio::test]
async fn the_schema_migrates_and_is_checked_on_sqlite() {
    let data = tempfile::tempdir().unwrap();
    let settings = Settings::load_from(&test_vars(data.path())).unwrap();
    check_schema(&Database::connect(&settings).await.unwrap()).await;
}

#[tokio::test]
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
