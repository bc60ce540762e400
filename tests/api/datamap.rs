use std::sync::Arc;

use erasure::{
    clock::SystemClock,
    config::Settings,
    startup::{Application, Roles},
};

use crate::helpers::*;

#[tokio::test]
async fn start_up_refuses_a_table_that_references_accounts_without_a_rule() {
    let app = spawn_app().await;
    app.execute(
        "CREATE TABLE stickers (id INTEGER PRIMARY KEY, owner INTEGER NOT NULL REFERENCES accounts(id))",
    )
    .await;

    let settings = Settings::load_from(&app.vars).unwrap();
    let err = Application::build(settings, Arc::new(SystemClock), Roles::ALL)
        .await
        .err()
        .expect("refused");
    let message = format!("{err:#}");
    assert!(
        message.contains("stickers") && message.contains("owner"),
        "{message}"
    );
}

#[tokio::test]
async fn start_up_refuses_a_map_naming_a_column_that_does_not_exist() {
    let app = spawn_app().await;
    let map = format!(
        "{}\n[[store]]\ntable = \"messages\"\ncolumn = \"author_id\"\naction = \"delete\"\n",
        erasure::config::DATAMAP_TOML
    );
    let message = refused_with(&app, &map).await;
    assert!(message.contains("messages.author_id"), "{message}");
}

/// Builds the application with `map` as its data map; the error it is refused with.
async fn refused_with(app: &TestApp, map: &str) -> String {
    let path = app.data_dir().join("datamap.toml");
    std::fs::write(&path, map).unwrap();
    let mut vars = app.vars.clone();
    vars.insert("ERASURE_PURGE__DATAMAP".into(), path.display().to_string());
    let err = Application::build(
        Settings::load_from(&vars).unwrap(),
        Arc::new(SystemClock),
        Roles::ALL,
    )
    .await
    .err()
    .expect("refused");
    format!("{err:#}")
}

#[tokio::test]
async fn start_up_refuses_a_personal_column_without_a_rule_and_a_rule_the_code_contradicts() {
    let app = spawn_app().await;
    // A new text column in a table of an account's data, that nobody said how to store.
    app.execute("ALTER TABLE devices ADD COLUMN model TEXT").await;
    let message = refused_with(&app, erasure::config::DATAMAP_TOML).await;
    assert!(
        message.contains("devices.model") && message.contains("does not say how it is stored"),
        "{message}"
    );
    app.execute("ALTER TABLE devices DROP COLUMN model").await;

    // The map calling a sealed column plain is refused too.
    let lying = erasure::config::DATAMAP_TOML.replace(
        "table = \"messages\"\ncolumn = \"body\"\nstorage = \"sealed\"",
        "table = \"messages\"\ncolumn = \"body\"\nstorage = \"plain\"\nwhy = \"it is not\"",
    );
    assert_ne!(lying, erasure::config::DATAMAP_TOML);
    let message = refused_with(&app, &lying).await;
    assert!(message.contains("messages.body is plain"), "{message}");
}
