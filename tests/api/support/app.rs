//! The application of one test: a real server on port 0 (or only its state), on either stack,
//! with a clock the test can move, and what a test asks of its database.

use std::{collections::HashMap, path::PathBuf, sync::Arc, time::Duration};

use erasure::{
    clock::ManualClock,
    config::Settings,
    db::Database,
    services::seed::{self, SeedReport, SeedSpec},
    startup::{Application, Roles},
    state::AppState,
};
use erasure_testkit::{EVERY, try_eventually};
use serde_json::Value;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use super::{ServerResources, Stack, provision_server, test_vars};

pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub address: String,
    pub stack: Stack,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub vars: HashMap<String, String>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    // Dropped after the application, in this order.
    pub server: Option<ServerResources>,
    pub data: TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_on(Stack::Sqlite, Roles::ALL, &[]).await
}

pub async fn spawn_app_on(stack: Stack) -> TestApp {
    spawn_on(stack, Roles::ALL, &[]).await
}

/// A server without workers: the test drives the pipeline itself.
pub async fn spawn_app_without_workers(stack: Stack) -> TestApp {
    spawn_on(
        stack,
        Roles {
            http: true,
            workers: false,
        },
        &[],
    )
    .await
}

/// Only the state (database, queue, keys): the work happens in separate processes.
pub async fn spawn_state_only(stack: Stack, extra: &[(&str, &str)]) -> TestApp {
    spawn_on(
        stack,
        Roles {
            http: false,
            workers: false,
        },
        extra,
    )
    .await
}

pub async fn spawn_app_with(roles: Roles, extra: &[(&str, &str)]) -> TestApp {
    spawn_on(Stack::Sqlite, roles, extra).await
}

pub async fn spawn_on(stack: Stack, roles: Roles, extra: &[(&str, &str)]) -> TestApp {
    let data = tempfile::tempdir().expect("temp dir");
    let mut vars = test_vars(data.path());
    let server = if stack == Stack::Server {
        let (resources, server_vars) = provision_server(data.path()).await;
        vars.extend(server_vars);
        Some(resources)
    } else {
        None
    };
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    let settings = Settings::load_from(&vars).expect("test settings");
    if stack == Stack::Server {
        // Production applies migrations with `erasure migrate` before starting.
        Database::connect(&settings)
            .await
            .expect("database")
            .migrate()
            .await
            .expect("migrations");
    }
    let clock = Arc::new(ManualClock::starting_now());
    let app = Application::build(settings, clock.clone(), roles)
        .await
        .expect("application builds");
    let address = app
        .port()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .unwrap_or_default();
    let state = app.state().clone();
    let expected = match stack {
        Stack::Sqlite => (sea_orm::DbBackend::Sqlite, "sqlite"),
        Stack::Server => (sea_orm::DbBackend::Postgres, "redis"),
    };
    assert_eq!((state.db.backend(), state.queue.backend_name()), expected);
    let shutdown = CancellationToken::new();
    // With no role at all the test only holds the state, to seed and inspect what separate
    // processes do: it then runs nothing, not even a relay.
    let task = (roles.http || roles.workers).then(|| tokio::spawn(app.run_until_stopped(shutdown.clone())));
    TestApp {
        address,
        stack,
        state,
        clock,
        vars,
        shutdown,
        task,
        server,
        data,
    }
}

impl TestApp {
    pub fn data_dir(&self) -> PathBuf {
        self.data.path().to_path_buf()
    }

    /// An account of Zebediah Quillfeather with `messages`, 7 contacts, 5 calls, 3 devices.
    pub async fn seed(&self, vsee_id: &str, email: &str, plan: &str, messages: u64) -> SeedReport {
        self.seed_with(vsee_id, email, plan, [messages, 7, 5, 3]).await
    }

    /// A small account (20 messages, 2 contacts, 2 calls, 1 device).
    pub async fn seed_small(&self, vsee_id: &str, email: &str) -> SeedReport {
        self.seed_with(vsee_id, email, "free", [20, 2, 2, 1]).await
    }

    /// `[messages, contacts, calls, devices]`
    async fn seed_with(&self, vsee_id: &str, email: &str, plan: &str, sizes: [u64; 4]) -> SeedReport {
        use erasure::domain::{Email, Password, PersonName, Plan, VseeId};
        let [messages, contacts, calls, devices] = sizes;
        let spec = SeedSpec {
            vsee_id: VseeId::parse(vsee_id).unwrap(),
            email: Email::parse(email).unwrap(),
            password: Password::parse(PASSWORD).unwrap(),
            first_name: PersonName::parse("Zebediah").unwrap(),
            last_name: PersonName::parse("Quillfeather").unwrap(),
            plan: Plan::parse(plan).unwrap(),
            messages,
            contacts,
            calls,
            devices,
        };
        seed::seed_account(
            self.state.env(),
            &self.state.settings.storage.data_dir,
            spec,
            &|_| {},
        )
        .await
        .expect("seeded")
    }

    /// Polls the receipt until the deletion reaches `status` (or fails the test after 15 s).
    pub async fn wait_for_status(&self, receipt: &str, status: &str) -> Value {
        let device = self.device();
        try_eventually(Duration::from_secs(15), EVERY, || async {
            let body: Value = device.deletion_status(receipt).await.json().await?;
            Ok(if body["status"] == status {
                Ok(body)
            } else {
                Err(format!("deletion stuck at {body}"))
            })
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Polls until `sql` (a COUNT) reaches `target`, failing after `within`.
    pub async fn wait_for_count(&self, sql: &str, target: i64, within: Duration) {
        try_eventually(within, EVERY, || async {
            let n = self.count(sql).await;
            Ok(if n == target {
                Ok(())
            } else {
                Err(format!("{sql} is {n}, not {target}, after {within:?}"))
            })
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    }

    /// What a production-environment process needs to share this app's keys (production
    /// never generates one): the server key and the log signing key, from the data directory.
    pub fn production_key_vars(&self) -> Vec<(String, String)> {
        [
            ("ERASURE_SERVER__KEY", "server.key"),
            ("ERASURE_AUDIT__SIGNING_KEY", "log-signing.key"),
        ]
        .into_iter()
        .map(|(var, file)| {
            let key = std::fs::read_to_string(self.data_dir().join(file)).unwrap();
            (var.to_owned(), key.trim().to_owned())
        })
        .collect()
    }

    /// `audit verify`'s walk, in process: the number of entries, or the first break.
    pub async fn verify_ledger(&self) -> Result<u64, erasure::services::ledger::Broken> {
        erasure::services::ledger::verify(
            &self.state.db,
            &self.state.keys,
            &self.state.log_signer.public(),
            None,
            &|_| {},
        )
        .await
        .unwrap()
        .map(|v| v.entries)
    }

    pub async fn count(&self, sql: &str) -> i64 {
        use sea_orm::ConnectionTrait;
        let row = self
            .state
            .db
            .conn
            .query_one_raw(sea_orm::Statement::from_string(
                self.state.db.backend(),
                sql.to_owned(),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    }

    /// The SQL condition that names the account with this VSee ID: identifiers are sealed,
    /// so rows are found by their blind index.
    pub fn account_is(&self, vsee_id: &str) -> String {
        let id = erasure::domain::VseeId::parse(vsee_id).unwrap();
        format!("vsee_id_index = '{}'", self.state.vault.blind_vsee_id(&id))
    }

    /// The accounts whose VSee ID starts with `prefix`, opened (SQL cannot filter sealed
    /// identifiers: every account is read and opened).
    pub async fn accounts_named(&self, prefix: &str) -> Vec<erasure::models::account::Model> {
        use sea_orm::EntityTrait;
        use sea_orm::{QueryOrder, QuerySelect};
        let ids: Vec<i64> = erasure::models::account::Entity::find()
            .select_only()
            .column(erasure::models::account::Column::Id)
            .order_by_asc(erasure::models::account::Column::Id)
            .into_tuple()
            .all(&self.state.db.conn)
            .await
            .unwrap();
        let mut named = Vec::new();
        for id in ids {
            // Each row with its key in one statement: a purge running meanwhile (a worker of
            // this app) removes both at once, so a row is read whole or not at all.
            let opened =
                erasure::services::accounts::sealed::find_opened(&self.state.vault, &self.state.db.conn, id)
                    .await
                    .unwrap();
            named.extend(opened.filter(|a| a.vsee_id.starts_with(prefix)));
        }
        named
    }

    /// Every ticket, opened (their text is sealed under each ticket's key), by id.
    pub async fn tickets(&self) -> Vec<erasure::models::ticket::Model> {
        use sea_orm::{EntityTrait, QueryOrder};
        let rows = erasure::models::ticket::Entity::find()
            .order_by_asc(erasure::models::ticket::Column::Id)
            .all(&self.state.db.conn)
            .await
            .unwrap();
        erasure::services::tickets::sealed::open_all(&self.state.vault, &self.state.db.conn, rows)
            .await
            .unwrap()
    }

    /// The first column of every row of a query, as text.
    pub async fn strings(&self, sql: &str) -> Vec<String> {
        use sea_orm::ConnectionTrait;
        let statement = sea_orm::Statement::from_string(self.state.db.backend(), sql.to_owned());
        let rows = self.state.db.conn.query_all_raw(statement).await.unwrap();
        rows.iter()
            .map(|r| r.try_get_by_index::<String>(0).unwrap())
            .collect()
    }

    pub async fn execute(&self, sql: &str) {
        use sea_orm::ConnectionTrait;
        self.state.db.conn.execute_unprepared(sql).await.unwrap();
    }

    /// Runs the real `erasure` binary against this test's data directory.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_erasure"))
            .args(args)
            .env_clear()
            .envs(&self.vars)
            .output()
            .expect("erasure runs")
    }

    /// Makes every delete from `table` (where `condition` holds for OLD, if given) fail with
    /// "injected failure", on either database.
    pub async fn fail_deletes(&self, table: &str, condition: Option<&str>) {
        self.fail_statements(table, "DELETE", condition).await;
    }

    /// Makes every `operation` (INSERT, UPDATE, DELETE) on `table` fail with "injected
    /// failure" (where `condition` holds for the row, given as OLD or NEW), on either database.
    /// `stop_failing_deletes(table)` undoes it.
    pub async fn fail_statements(&self, table: &str, operation: &str, condition: Option<&str>) {
        match self.stack {
            Stack::Sqlite => {
                let when = condition.map(|c| format!("WHEN {c}")).unwrap_or_default();
                self.execute(&format!(
                    "CREATE TRIGGER fail_{table} BEFORE {operation} ON {table} {when} \
                     BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
                ))
                .await;
            }
            Stack::Server => {
                self.execute(
                    "CREATE OR REPLACE FUNCTION erasure_test_fail() RETURNS trigger AS \
                     $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql",
                )
                .await;
                let when = condition.map(|c| format!("WHEN ({c})")).unwrap_or_default();
                self.execute(&format!(
                    "CREATE TRIGGER fail_{table} BEFORE {operation} ON {table} FOR EACH ROW {when} \
                     EXECUTE FUNCTION erasure_test_fail()"
                ))
                .await;
            }
        }
    }

    pub async fn stop_failing_deletes(&self, table: &str) {
        match self.stack {
            Stack::Sqlite => self.execute(&format!("DROP TRIGGER fail_{table}")).await,
            Stack::Server => {
                self.execute(&format!("DROP TRIGGER fail_{table} ON {table}"))
                    .await
            }
        }
    }

    /// The id of the only deletion request.
    pub async fn only_request_id(&self) -> uuid::Uuid {
        use sea_orm::EntityTrait;
        let all = erasure::models::deletion_request::Entity::find()
            .all(&self.state.db.conn)
            .await
            .unwrap();
        assert_eq!(all.len(), 1);
        all[0].id.parse().unwrap()
    }

    pub async fn request(&self) -> erasure::models::deletion_request::Model {
        erasure::services::deletion::find(&self.state.db, self.only_request_id().await)
            .await
            .unwrap()
    }
}
