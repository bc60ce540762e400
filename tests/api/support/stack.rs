//! Which backends a test runs on, and what the server stack needs for one test: a fresh
//! PostgreSQL database, a Redis key prefix of its own and an SMTP server, provisioned by
//! erasure-testkit (which the bench shares) and removed when the test ends.

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    sync::OnceLock,
};

pub use erasure_testkit::ServerUrls;
use erasure_testkit::{ServerSpace, SmtpSink};

/// Which backends a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// SQLite + apalis-sqlite + mail to a folder: the embedded default.
    Sqlite,
    /// PostgreSQL + apalis-redis + SMTP: production.
    Server,
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
    // Held to be dropped, in this order: the SMTP server stops, then the database and the keys
    // go.
    _smtp: SmtpSink,
    _space: ServerSpace,
    pub mail_dir: PathBuf,
}

/// Provisions the server stack for one test and returns the variables that point at it.
pub async fn provision_server(data: &Path) -> (ServerResources, HashMap<String, String>) {
    let urls = server_urls().expect("server stack configured");
    let space = ServerSpace::provision(&urls, "test")
        .await
        .expect("a test database and Redis key prefix");
    let mail_dir = data.join("smtp-received");
    let smtp = SmtpSink::start(&mail_dir).expect("the SMTP sink starts");
    let vars = space
        .vars()
        .into_iter()
        .chain([("ERASURE_MAIL__URL", smtp.url())])
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let resources = ServerResources {
        _smtp: smtp,
        _space: space,
        mail_dir,
    };
    (resources, vars)
}

/// The environment a test's server (and any CLI run against it) is configured with.
pub fn test_vars(data: &Path) -> HashMap<String, String> {
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
