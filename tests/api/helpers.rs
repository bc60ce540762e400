//! A real server per test, on either stack:
//! - `Stack::Sqlite`: its own data directory and SQLite database, apalis-sqlite, mail to files;
//! - `Stack::Server`: its own PostgreSQL database and Redis key space on the servers named by
//!   ERASURE_TEST_DATABASE_URL / ERASURE_TEST_REDIS_URL, and a real SMTP server (aiosmtpd)
//!   on a free loopback port, whose received messages the test reads.
//!
//! Bound to port 0, with a clock the test can move. Typed request helpers keep tests readable.

use std::{
    collections::HashMap,
    io::{BufRead, Write},
    path::PathBuf,
    process::{Child, Stdio},
    sync::{Arc, OnceLock},
    time::Duration,
};

use erasure::{
    clock::ManualClock,
    config::Settings,
    db::Database,
    services::seed::{self, SeedReport, SeedSpec},
    startup::{Application, Roles},
    state::AppState,
};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

pub const PASSWORD: &str = "correct horse battery";

/// Which backends a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// SQLite + apalis-sqlite + mail to a folder: the embedded default.
    Sqlite,
    /// PostgreSQL + apalis-redis + SMTP: production.
    Server,
}

/// The servers of the server stack, when the environment names them.
pub struct ServerUrls {
    pub database: String,
    pub redis: String,
}

/// `None` when ERASURE_TEST_DATABASE_URL / ERASURE_TEST_REDIS_URL are unset: the server-stack
/// variant of each test then returns at once, and one line says so (written past the test
/// harness' capture, so it shows). With ERASURE_TEST_REQUIRE_SERVER=1 (as `.ci/run` sets),
/// missing servers fail the test instead.
pub fn server_urls() -> Option<ServerUrls> {
    let database = std::env::var("ERASURE_TEST_DATABASE_URL")
        .ok()
        .filter(|v| !v.is_empty());
    let redis = std::env::var("ERASURE_TEST_REDIS_URL")
        .ok()
        .filter(|v| !v.is_empty());
    match (database, redis) {
        (Some(database), Some(redis)) => Some(ServerUrls { database, redis }),
        _ => {
            assert!(
                std::env::var("ERASURE_TEST_REQUIRE_SERVER").as_deref() != Ok("1"),
                "ERASURE_TEST_REQUIRE_SERVER=1 but ERASURE_TEST_DATABASE_URL / ERASURE_TEST_REDIS_URL are unset"
            );
            static SAID: OnceLock<()> = OnceLock::new();
            SAID.get_or_init(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "note: the server stack (PostgreSQL + Redis + SMTP) was not run: set \
                     ERASURE_TEST_DATABASE_URL and ERASURE_TEST_REDIS_URL (bash .ci/run does)"
                );
            });
            None
        }
    }
}

/// Declares `name::sqlite` and `name::server` tests that run `async fn name(stack: Stack)`.
#[macro_export]
macro_rules! on_both_stacks {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Stack::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(
                not(erasure_server_stack),
                ignore = "server stack: set ERASURE_TEST_DATABASE_URL and ERASURE_TEST_REDIS_URL"
            )]
            async fn server() {
                if $crate::helpers::server_urls().is_some() {
                    super::$name($crate::helpers::Stack::Server).await;
                }
            }
        }
    )*};
}

/// What a server-stack test owns on the shared servers; removed when the test ends.
pub struct ServerResources {
    admin_url: String,
    database: String,
    redis_url: String,
    namespace: String,
    smtp: Child,
    pub mail_dir: PathBuf,
}

impl Drop for ServerResources {
    fn drop(&mut self) {
        let _ = self.smtp.kill();
        let _ = self.smtp.wait();
        let (admin, database, redis_url, namespace) = (
            self.admin_url.clone(),
            self.database.clone(),
            self.redis_url.clone(),
            self.namespace.clone(),
        );
        // Drop runs inside the test's runtime, which cannot block on itself: clean up from a
        // thread with a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
                    let drop = format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&pool).await;
                }
                if let Ok(client) = redis::Client::open(redis_url.as_str())
                    && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                {
                    delete_redis_keys(&mut conn, &namespace).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

async fn delete_redis_keys(conn: &mut redis::aio::MultiplexedConnection, namespace: &str) {
    let mut cursor: u64 = 0;
    loop {
        let Ok((next, keys)): Result<(u64, Vec<String>), _> = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{namespace}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
        else {
            return;
        };
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(&keys).query_async(conn).await;
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

/// A fresh database on the test PostgreSQL server, and its URL.
async fn create_database(admin_url: &str) -> (String, String) {
    let name = format!("erasure_test_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(admin_url)
        .await
        .expect("PostgreSQL reachable");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&pool)
        .await
        .expect("test database created");
    pool.close().await;
    let mut url = url::Url::parse(admin_url).expect("ERASURE_TEST_DATABASE_URL is a URL");
    url.set_path(&name);
    (name, url.to_string())
}

/// Starts tests/support/smtp_sink.py (needs Debian's python3-aiosmtpd; `.ci/run` installs it).
fn start_smtp_sink(dir: &std::path::Path) -> (Child, u16) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
    let mut child = std::process::Command::new("/usr/bin/python3")
        .arg(script)
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs (apt-get install python3-aiosmtpd, or bash .ci/run)");
    let stdout = child.stdout.take().expect("sink stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the SMTP sink prints its port");
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("the SMTP sink did not start (is python3-aiosmtpd installed?): {line:?}"));
    (child, port)
}

/// Provisions the server stack for one test and returns the variables that point at it.
pub async fn provision_server(data: &std::path::Path) -> (ServerResources, HashMap<String, String>) {
    let urls = server_urls().expect("server stack configured");
    let (database, database_url) = create_database(&urls.database).await;
    let namespace = format!("erasure-test-{}:", uuid::Uuid::new_v4().simple());
    let mail_dir = data.join("smtp-received");
    let (smtp, port) = start_smtp_sink(&mail_dir);
    let vars = [
        ("ERASURE_DATABASE__URL", database_url),
        ("ERASURE_QUEUE__URL", urls.redis.clone()),
        ("ERASURE_QUEUE__NAMESPACE", namespace.clone()),
        ("ERASURE_MAIL__URL", format!("smtp://127.0.0.1:{port}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let resources = ServerResources {
        admin_url: urls.database,
        database,
        redis_url: urls.redis,
        namespace,
        smtp,
        mail_dir,
    };
    (resources, vars)
}

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

/// The environment a test's server (and any CLI run against it) is configured with.
pub fn test_vars(data: &std::path::Path) -> HashMap<String, String> {
    let dir = data.display().to_string();
    [
        ("ERASURE_ENV", "test".to_owned()),
        ("ERASURE_STORAGE__DATA_DIR", dir.clone()),
        (
            "ERASURE_DATABASE__URL",
            format!("sqlite://{dir}/erasure.db?mode=rwc"),
        ),
        ("ERASURE_MAIL__URL", format!("file://{dir}/outbox")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
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

/// One browser or API client: its own cookie jar.
pub struct Device {
    pub client: Client,
    base: String,
}

impl TestApp {
    pub fn device(&self) -> Device {
        Device {
            client: Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: self.address.clone(),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data.path().to_path_buf()
    }

    pub fn outbox(&self) -> PathBuf {
        self.data.path().join("outbox")
    }

    /// Signs up a free account through the API and returns a device logged in to it.
    pub async fn signed_up_and_logged_in(&self, vsee_id: &str, email: &str) -> Device {
        let device = self.device();
        let r = device.sign_up(vsee_id, email).await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap_or_default()
        );
        let r = device.log_in(vsee_id, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::OK);
        device
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
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let body: Value = device.deletion_status(receipt).await.json().await.unwrap();
            if body["status"] == status {
                return body;
            }
            assert!(tokio::time::Instant::now() < deadline, "deletion stuck at {body}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
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

    /// Where this test's emails end up: the mail folder, or what the SMTP server received.
    pub fn mail_dir(&self) -> PathBuf {
        match &self.server {
            Some(server) => server.mail_dir.clone(),
            None => self.outbox(),
        }
    }

    pub fn outbox_files(&self) -> Vec<(String, String)> {
        let Ok(dir) = std::fs::read_dir(self.mail_dir()) else {
            return Vec::new();
        };
        let mut files: Vec<_> = dir
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"))
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    decode_quoted_printable(&std::fs::read_to_string(e.path()).unwrap()),
                )
            })
            .collect();
        files.sort();
        files
    }
}

impl Device {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn sign_up(&self, vsee_id: &str, email: &str) -> Response {
        self.client
            .post(self.url("/api/v1/accounts"))
            .json(&json!({ "vsee_id": vsee_id, "email": email, "password": PASSWORD,
                           "first_name": "Zebediah", "last_name": "Quillfeather" }))
            .send()
            .await
            .unwrap()
    }

    pub async fn log_in(&self, vsee_id: &str, password: &str) -> Response {
        self.client
            .post(self.url("/api/v1/sessions"))
            .json(&json!({ "vsee_id": vsee_id, "password": password }))
            .send()
            .await
            .unwrap()
    }

    pub async fn me(&self) -> Response {
        self.client.get(self.url("/api/v1/me")).send().await.unwrap()
    }

    pub async fn patch_me(&self, body: Value) -> Response {
        self.client
            .patch(self.url("/api/v1/me"))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn confirm_deletion(&self, typed_email: &str) -> Response {
        self.client
            .post(self.url("/api/v1/me/deletion"))
            .json(&json!({ "confirm_email": typed_email }))
            .send()
            .await
            .unwrap()
    }

    pub async fn reauthenticate(&self, password: &str) -> Response {
        self.client
            .post(self.url("/api/v1/me/reauthentication"))
            .json(&json!({ "password": password }))
            .send()
            .await
            .unwrap()
    }

    /// Confirms the deletion of this device's account and returns the receipt id.
    pub async fn request_deletion(&self, typed_email: &str) -> String {
        let r = self.confirm_deletion(typed_email).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let body: Value = r.json().await.unwrap();
        body["receipt_id"].as_str().unwrap().to_owned()
    }

    pub async fn get_json(&self, path: &str) -> Value {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn deletion_status(&self, receipt: &str) -> Response {
        self.client
            .get(self.url(&format!("/api/v1/deletions/{receipt}")))
            .send()
            .await
            .unwrap()
    }

    pub async fn get_page(&self, path: &str) -> (StatusCode, String) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    }

    /// Loads `form_page`, then posts `fields` plus the page's CSRF token to `action`.
    pub async fn submit_form(&self, form_page: &str, action: &str, fields: &[(&str, &str)]) -> Response {
        let (_, html) = self.get_page(form_page).await;
        let token = csrf_token(&html);
        let mut form: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
        form.extend_from_slice(fields);
        self.client
            .post(self.url(action))
            .form(&form)
            .send()
            .await
            .unwrap()
    }
}

pub fn csrf_token(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("the page has a CSRF token") + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

pub async fn error_code(r: Response) -> (StatusCode, String) {
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

impl TestApp {
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

/// What a mail client shows: soft line breaks joined and `=XX` escapes decoded (lettre sends
/// quoted-printable when a line is long, e.g. a link with a token).
pub fn decode_quoted_printable(eml: &str) -> String {
    let joined = eml.replace("=\r\n", "");
    let mut out = Vec::with_capacity(joined.len());
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A real `erasure` process (serve, worker, …) with JSON logs captured.
pub struct Process {
    pub child: std::process::Child,
    pub log: Arc<std::sync::Mutex<String>>,
    pub port: Option<u16>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Process {
    /// Starts `erasure <args>`; when `http` waits for it to report its port.
    pub fn start(args: &[&str], vars: &HashMap<String, String>, http: bool) -> Process {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_erasure"));
        command
            .args(args)
            .env_clear()
            .envs(vars)
            .env("ERASURE_LOG__LEVEL", "info");
        if vars.get("ERASURE_ENV").map(String::as_str) != Some("production") {
            // Production logs JSON by itself; elsewhere ask for it, to read the port.
            command.env("ERASURE_LOG__FORMAT", "json");
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("erasure starts");
        let log = Arc::new(std::sync::Mutex::new(String::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        let reader = {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Ok(v) = serde_json::from_str::<Value>(&line)
                        && v["fields"]["message"] == "listening"
                    {
                        let _ = port_tx.send(v["fields"]["port"].as_u64().unwrap_or(0));
                    }
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            })
        };
        let port = http.then(|| {
            let port = port_rx.recv_timeout(Duration::from_secs(30));
            let port = port.unwrap_or_else(|_| panic!("no port reported: {}", log.lock().unwrap()));
            u16::try_from(port).unwrap()
        });
        Process {
            child,
            log,
            port,
            reader: Some(reader),
        }
    }

    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port.expect("an HTTP process"))
    }

    fn signal(&self, signal: &str) {
        let sent = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
    }

    /// SIGTERM, then waits (at most `within`) for the exit status.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        self.signal("-TERM");
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still running {within:?} after SIGTERM: {}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill_hard(&mut self) {
        self.signal("-KILL");
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl TestApp {
    /// Polls until `sql` (a COUNT) reaches `target`, failing after `within`.
    pub async fn wait_for_count(&self, sql: &str, target: i64, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let n = self.count(sql).await;
            if n == target {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{sql} is {n}, not {target}, after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Polls `probe` until it gives a value, failing the test with `what` after `within`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

impl TestApp {
    /// The first email (decoded) that `matches`, once it has arrived.
    pub async fn wait_for_mail(&self, matches: impl Fn(&str) -> bool) -> String {
        eventually("the expected email", Duration::from_secs(15), || async {
            self.outbox_files()
                .into_iter()
                .map(|(_, eml)| eml)
                .find(|eml| matches(eml))
        })
        .await
    }

    /// Waits until every notice has been handled by its job (sent, or found to need none).
    pub async fn wait_for_notices(&self) {
        self.wait_for_count(
            "SELECT COUNT(*) FROM notifications WHERE sent_at IS NULL",
            0,
            Duration::from_secs(15),
        )
        .await;
    }
}

/// The reset token in an email's link.
pub fn reset_token_in(eml: &str) -> String {
    eml.split("/reset-password?token=")
        .nth(1)
        .expect("a reset link")
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}
