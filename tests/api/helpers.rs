//! A real server per test: its own data directory and SQLite database, bound to port 0, with a
//! clock the test can move. Typed request helpers keep the tests readable.

use std::{collections::HashMap, path::PathBuf, sync::Arc, time::Duration};

use erasure::{
    clock::ManualClock,
    config::Settings,
    services::seed::{self, SeedReport, SeedSpec},
    startup::{Application, Roles},
    state::AppState,
};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub address: String,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub data: TempDir,
    pub vars: HashMap<String, String>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
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
    spawn_app_with(Roles::ALL, &[]).await
}

/// A server without workers: the test drives the pipeline itself.
pub async fn spawn_app_without_workers() -> TestApp {
    spawn_app_with(
        Roles {
            http: true,
            workers: false,
        },
        &[],
    )
    .await
}

pub async fn spawn_app_with(roles: Roles, extra: &[(&str, &str)]) -> TestApp {
    let data = tempfile::tempdir().expect("temp dir");
    let mut vars = test_vars(data.path());
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    let settings = Settings::load_from(&vars).expect("test settings");
    let clock = Arc::new(ManualClock::starting_now());
    let app = Application::build(settings, clock.clone(), roles)
        .await
        .expect("application builds");
    let port = app.port().expect("http port");
    let state = app.state().clone();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        state,
        clock,
        data,
        vars,
        shutdown,
        task: Some(task),
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

    pub async fn seed(&self, vsee_id: &str, email: &str, plan: &str, messages: u64) -> SeedReport {
        seed::seed_account(
            &self.state,
            SeedSpec {
                vsee_id: erasure::domain::VseeId::parse(vsee_id).unwrap(),
                email: erasure::domain::Email::parse(email).unwrap(),
                password: erasure::domain::Password::parse(PASSWORD).unwrap(),
                first_name: erasure::domain::PersonName::parse("Zebediah").unwrap(),
                last_name: erasure::domain::PersonName::parse("Quillfeather").unwrap(),
                plan: erasure::domain::Plan::parse(plan).unwrap(),
                messages,
                contacts: 7,
                calls: 5,
                devices: 3,
            },
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

    pub fn outbox_files(&self) -> Vec<(String, String)> {
        let Ok(dir) = std::fs::read_dir(self.outbox()) else {
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
        erasure::services::deletion::find(&self.state, self.only_request_id().await)
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
