//! One stack: its data directory, settings and (server stack) a fresh PostgreSQL database and
//! Redis key prefix from erasure-testkit, the queue the raw apalis baselines push to, and the
//! sections run against them.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use apalis_redis::ConnectionManager;
use apalis_sqlite::SqlitePool;
use erasure::{config::Settings, db::Database};
use erasure_testkit::{ServerSpace, ServerUrls};

use crate::{
    cli::{Args, Section, Sizes},
    results::{StackKind, StackResults},
    sections::run_sections,
};

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("erasure-bench-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the raw apalis baselines push.
#[derive(Clone)]
pub enum QueueTarget {
    Sqlite(SqlitePool),
    Redis {
        conn: ConnectionManager,
        namespace: String,
    },
}

#[derive(Clone)]
pub struct StackCtx {
    pub kind: StackKind,
    pub vars: HashMap<String, String>,
    pub batch_size: usize,
    pub poll: Duration,
    pub sizes: Sizes,
}

pub async fn run_stack(
    kind: StackKind,
    args: &Args,
    sizes: &Sizes,
    sections: &[Section],
    server: Option<&ServerUrls>,
) -> StackResults {
    let mut results = StackResults::default();
    let tmp = match TempDir::new() {
        Ok(t) => t,
        Err(e) => {
            results.errors.push(format!("temp dir: {e:#}"));
            return results;
        }
    };
    let data_dir = tmp.0.join("data");
    let mut vars: HashMap<String, String> = [
        ("ERASURE_STORAGE__DATA_DIR", data_dir.display().to_string()),
        ("ERASURE_MAIL__URL", format!("file://{}/outbox", tmp.0.display())),
        ("ERASURE_SERVER__ADDR", "127.0.0.1:0".to_owned()),
        (
            "ERASURE_QUEUE__POLL_INTERVAL_MS",
            args.poll_interval_ms.to_string(),
        ),
        ("ERASURE_QUEUE__BATCH_SIZE", args.batch_size.to_string()),
        ("ERASURE_LOG__LEVEL", "warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();

    for pair in &args.settings {
        match pair.split_once('=') {
            Some((k, v)) if k.starts_with("ERASURE_") => {
                vars.insert(k.to_owned(), v.to_owned());
            }
            _ => {
                results
                    .errors
                    .push(format!("--set {pair:?}: expected ERASURE_<SECTION>__<KEY>=VALUE"));
                return results;
            }
        }
    }
    // Server resources, removed at the end whatever happens in between.
    let mut provisioned: Option<ServerSpace> = None;
    let baseline_queue = match kind {
        StackKind::Sqlite => {
            vars.insert(
                "ERASURE_DATABASE__URL".into(),
                format!("sqlite://{}/erasure.db?mode=rwc", tmp.0.display()),
            );
            vars.insert("ERASURE_QUEUE__URL".into(), String::new());
            sqlite_baseline_queue(&vars, &tmp.0).await
        }
        StackKind::Server => {
            let Some(urls) = server else {
                results.errors.push("server URLs missing".into());
                return results;
            };
            match ServerSpace::provision(urls, "bench").await {
                Ok(space) => {
                    vars.extend(space.vars().map(|(k, v)| (k.to_owned(), v)));
                    let setup = server_setup(&vars, &space.redis_url, space.namespace.clone()).await;
                    provisioned = Some(space);
                    setup
                }
                Err(e) => Err(e),
            }
        }
    };
    let settings = Settings::load_from(&vars);
    if let Ok(s) = &settings {
        erasure::telemetry::init(&s.log);
    }
    let ctx = StackCtx {
        kind,
        vars,
        batch_size: args.batch_size,
        poll: Duration::from_millis(args.poll_interval_ms),
        sizes: sizes.clone(),
    };
    match (baseline_queue, settings) {
        (Ok(queue), Ok(_)) => run_sections(&ctx, &queue, sections, &mut results).await,
        (Err(e), _) => results.errors.push(format!("setup: {e:#}")),
        (_, Err(e)) => results.errors.push(format!("settings: {e:#}")),
    }
    if let Some(space) = provisioned {
        // "dropping database …: …", "deleting Redis keys …*: …"
        for e in space.release().await {
            results.errors.push(format!("{e:#}"));
        }
    }
    drop(tmp);
    results
}

async fn sqlite_baseline_queue(vars: &HashMap<String, String>, dir: &Path) -> anyhow::Result<QueueTarget> {
    // Its own file, opened exactly as ours is (WAL, synchronous=NORMAL, secure_delete, pool).
    let mut vars = vars.clone();
    vars.insert(
        "ERASURE_DATABASE__URL".into(),
        format!("sqlite://{}/apalis-baseline.db?mode=rwc", dir.display()),
    );
    let settings = Settings::load_from(&vars)?;
    let db = Database::connect(&settings).await?;
    let pool = db
        .sqlite_pool()
        .context("the baseline database is not SQLite")?
        .clone();
    // The queue's schema exactly as ours is set up (Database::migrate).
    db.migrate().await?;
    Ok(QueueTarget::Sqlite(pool))
}

/// Applies our migrations to the fresh database (as `erasure migrate` does) and connects the
/// baseline's Redis storage.
async fn server_setup(
    vars: &HashMap<String, String>,
    redis_url: &str,
    namespace: String,
) -> anyhow::Result<QueueTarget> {
    let settings = Settings::load_from(vars)?;
    Database::connect(&settings).await?.migrate().await?;
    let conn = apalis_redis::connect(redis_url)
        .await
        .map_err(|e| anyhow::anyhow!("Redis: {e}"))?;
    Ok(QueueTarget::Redis { conn, namespace })
}
