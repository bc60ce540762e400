//! The application run in-process, as `erasure serve` runs it, with what the sections need
//! around it: statement statistics, seeding, waiting for deletions to complete.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use erasure::{
    clock::SystemClock,
    config::Settings,
    db::Database,
    domain::{Email, Password, PersonName, Plan, VseeId},
    error::AppError,
    models::{account, deletion_request},
    services::seed::{self, SeedSpec},
    startup::{Application, Roles},
    state::AppState,
};
use erasure_testkit::try_eventually;
use futures::StreamExt;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use tokio_util::sync::CancellationToken;

use crate::{cli::Shape, stack::StackCtx, table::ms};

/// Counts the statements seen while recording, and keeps the longest.
#[derive(Debug, Default)]
pub struct StatementStats {
    pub recording: AtomicBool,
    pub count: AtomicU64,
    pub longest: Mutex<(Duration, String)>,
    /// Count and total time per statement text.
    pub by_sql: Mutex<HashMap<String, (u64, Duration)>>,
}

impl StatementStats {
    pub fn observe(&self, elapsed: Duration, sql: &str) {
        if !self.recording.load(Ordering::Relaxed) {
            return;
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        {
            let mut by = self.by_sql.lock().unwrap_or_else(|p| p.into_inner());
            let e = by.entry(sql.chars().take(72).collect()).or_default();
            e.0 += 1;
            e.1 += elapsed;
        }
        let mut longest = self.longest.lock().unwrap_or_else(|p| p.into_inner());
        if elapsed > longest.0 {
            *longest = (elapsed, sql.chars().take(160).collect());
        }
    }

    pub fn start(&self) {
        *self.longest.lock().unwrap_or_else(|p| p.into_inner()) = (Duration::ZERO, String::new());
        self.by_sql.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.count.store(0, Ordering::Relaxed);
        self.recording.store(true, Ordering::Relaxed);
    }

    /// The `n` statements with the most total time, per `per` runs.
    pub fn top(&self, n: usize, per: usize) -> String {
        let by = self.by_sql.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = by.iter().collect();
        v.sort_by_key(|(_, (_, d))| std::cmp::Reverse(*d));
        let per = per.max(1) as f64;
        v.iter()
            .take(n)
            .map(|(sql, (count, d))| format!("{:.2} ms ({:.0}x) `{sql}…`", ms(*d) / per, *count as f64 / per))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn stop(&self) -> (Duration, String, u64) {
        self.recording.store(false, Ordering::Relaxed);
        let longest = self.longest.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (longest.0, longest.1, self.count.load(Ordering::Relaxed))
    }
}

pub struct App {
    pub state: AppState,
    /// `http://127.0.0.1:<port>` when it serves HTTP.
    pub address: Option<String>,
    /// A second pool on the same database for the bench's own polling, so its statements
    /// neither wait behind the application's nor show in the statement statistics.
    pub probe: Database,
    pub stop: CancellationToken,
    pub task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl App {
    /// The application as `erasure serve` runs it (workers and relay in-process) when
    /// `workers`, or only its state (nothing running in the background) otherwise.
    pub async fn start(
        ctx: &StackCtx,
        workers: bool,
        stats: Option<Arc<StatementStats>>,
    ) -> anyhow::Result<Self> {
        let roles = if workers {
            Roles::ALL
        } else {
            Roles {
                http: false,
                workers: false,
            }
        };
        Self::start_with(ctx, roles, stats).await
    }

    /// The application with these roles; it runs in the background unless it has none.
    pub async fn start_with(
        ctx: &StackCtx,
        roles: Roles,
        stats: Option<Arc<StatementStats>>,
    ) -> anyhow::Result<Self> {
        let settings = Settings::load_from(&ctx.vars)?;
        let mut db = Database::connect(&settings).await?;
        if let Some(stats) = stats {
            db.observe_statements(move |elapsed, sql| stats.observe(elapsed, sql));
        }
        let runs = roles.http || roles.workers;
        let probe_settings = settings.clone();
        let app = Application::build_with_database(settings, Arc::new(SystemClock), roles, db).await?;
        let probe = Database::connect(&probe_settings).await?;
        let state = app.state().clone();
        let address = app.port().map(|p| format!("http://127.0.0.1:{p}"));
        let stop = CancellationToken::new();
        let task = runs.then(|| tokio::spawn(app.run_until_stopped(stop.clone())));
        Ok(Self {
            state,
            address,
            probe,
            stop,
            task,
        })
    }

    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            match tokio::time::timeout(Duration::from_secs(60), task).await {
                Ok(joined) => joined??,
                Err(_) => bail!("the application did not stop within 60 s"),
            }
        }
        let _ = self.probe.conn.close().await;
        Ok(())
    }
}

pub fn app_err(e: AppError) -> anyhow::Error {
    anyhow::Error::from(e)
}

/// The account holder asks for the account's deletion (through the API, no grace period).
pub async fn request_deletion(
    state: &AppState,
    account: &account::Model,
) -> anyhow::Result<erasure::services::deletion::Receipt> {
    erasure::services::deletion::open_request(
        state.env(),
        &state.keys,
        account,
        erasure::domain::Actor::AccountHolder,
        erasure::domain::Channel::Api,
    )
    .await
    .map_err(app_err)
}

pub static ACCOUNT_SEQ: AtomicU64 = AtomicU64::new(1);

pub async fn seed_one(state: &AppState, shape: Shape) -> anyhow::Result<account::Model> {
    let n = ACCOUNT_SEQ.fetch_add(1, Ordering::Relaxed);
    let report = seed::seed_account(
        state.env(),
        &state.settings.storage.data_dir,
        SeedSpec {
            vsee_id: VseeId::parse(&format!("bench{n}"))?,
            email: Email::parse(&format!("bench{n}@bench.example"))?,
            password: Password::parse("correct horse battery")?,
            first_name: PersonName::parse("Bench")?,
            last_name: PersonName::parse(&format!("Account{n}"))?,
            plan: Plan::Free,
            messages: shape.messages,
            contacts: shape.contacts,
            calls: shape.calls,
            devices: shape.devices,
        },
        &|_| {},
    )
    .await
    .map_err(app_err)?;
    erasure::services::accounts::find(state.env(), report.account_id)
        .await
        .map_err(app_err)?
        .context("the seeded account is missing")
}

/// Seeds `n` accounts, two at a time (password hashing runs on the blocking pool, so both
/// cores work). Untimed.
pub async fn seed_accounts(state: &AppState, shape: Shape, n: usize) -> anyhow::Result<Vec<account::Model>> {
    let t = Instant::now();
    let seeded: Vec<anyhow::Result<account::Model>> = futures::stream::iter(0..n)
        .map(|_| seed_one(state, shape))
        .buffer_unordered(2)
        .collect()
        .await;
    let accounts = seeded.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    eprintln!(
        "    seeded {n} account(s) of {} in {:.1} s",
        shape.describe(),
        t.elapsed().as_secs_f64()
    );
    Ok(accounts)
}

pub async fn count_status(db: &Database, status: &str) -> anyhow::Result<u64> {
    Ok(deletion_request::Entity::find()
        .filter(deletion_request::Column::Status.eq(status))
        .count(&db.conn)
        .await?)
}

/// Polls every 20 ms until `target` requests are completed.
pub async fn wait_completed(db: &Database, target: u64, timeout: Duration) -> anyhow::Result<()> {
    let failed_before = count_status(db, "failed").await?;
    try_eventually(timeout, Duration::from_millis(20), || async {
        let done = count_status(db, "completed").await?;
        if done >= target {
            return Ok(Ok(()));
        }
        let failed = count_status(db, "failed").await?;
        if failed > failed_before {
            let sample = deletion_request::Entity::find()
                .filter(deletion_request::Column::Status.eq("failed"))
                .one(&db.conn)
                .await?
                .and_then(|r| r.last_error);
            bail!("{} request(s) failed: {sample:?}", failed - failed_before);
        }
        Ok(Err(format!(
            "timed out after {timeout:?}: {done} of {target} completed"
        )))
    })
    .await
}
