//! `cargo run --release --bin bench -- [--stack sqlite|server|both] [--scale N] [--quick] ...`
//!
//! Measures the deletion pipeline in-process on the embedded stack (SQLite + apalis-sqlite)
//! and, when `--database-url` / `--redis-url` (or ERASURE_BENCH_DATABASE_URL /
//! ERASURE_BENCH_REDIS_URL) name them, on the server stack (PostgreSQL + apalis-redis). Mail
//! goes to a folder on both: SMTP is not what is measured. Every figure is printed beside a
//! baseline measured in the same run:
//!
//! - (a) raw apalis: N no-op jobs pushed onto the backend and run by one worker (same batch
//!   size and poll interval as ours); jobs/s. A deletion is three jobs, so (a)/3 is the no-op
//!   cost of a deletion and the baseline of (b).
//! - (b) complete deletions/s of typical accounts, request to ledger entry.
//! - (c) rows/s of `purge::run` against a hand-written chunked DELETE of the same rows.
//! - (d) p50/p99 request→completed latency at a steady rate, against a chain of three no-op
//!   apalis jobs pushed at the same rate.
//! - (e) one account with 1,000,000 messages: time, peak RSS growth, longest SQL statement;
//!   against the hand-written DELETE loop on an identical account.
//! - (f) (b) and (c) at 10x the rows per account: how the cost per account grows.
//!
//! It reports; it does not assert: a missed target still exits 0 (a measurement that could
//! not run exits 1). With BENCH_DEBUG set, (b) and (d) also print each request's timeline.

use std::{
    collections::HashMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use apalis::prelude::*;
use apalis_core::backend::ext::poll_strategy::IntervalStrategy;
use apalis_redis::{ConnectionManager, RedisStorage};
use apalis_sqlite::{SqlitePool, SqliteStorage};
use clap::{Parser, ValueEnum};
use erasure::{
    clock::SystemClock,
    config::Settings,
    datamap::Action,
    db::Database,
    domain::{Actor, Channel, Email, Password, PersonName, Plan, VseeId},
    error::AppError,
    models::{account, deletion_request},
    services::{
        deletion,
        purge::{self, PurgeOutcome},
        seed::{self, SeedSpec},
    },
    startup::{Application, Roles},
    state::AppState,
    workers::PollEvery,
};
use futures::StreamExt;
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, Statement};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------------------------------------
// Command line and sizes

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StackArg {
    Sqlite,
    Server,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Section {
    A,
    B,
    C,
    D,
    E,
    F,
}

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    about = "Benchmarks the deletion pipeline on SQLite and (with URLs) on PostgreSQL + Redis"
)]
struct Args {
    /// Which stacks: sqlite, server (needs the URLs) or both (server only when URLs are given).
    #[arg(long, value_enum, default_value_t = StackArg::Both)]
    stack: StackArg,
    /// Multiplies the number of jobs and accounts of (a), (b), (c) and (f).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// A small smoke run (about a tenth of the work).
    #[arg(long)]
    quick: bool,
    /// Admin URL of a PostgreSQL server; a fresh database is created on it and dropped after.
    #[arg(long, env = "ERASURE_BENCH_DATABASE_URL")]
    database_url: Option<String>,
    /// URL of a Redis server; keys go under a unique prefix and are deleted after.
    #[arg(long, env = "ERASURE_BENCH_REDIS_URL")]
    redis_url: Option<String>,
    /// queue.batch_size for our workers and the raw apalis baselines alike.
    #[arg(long, default_value_t = 50)]
    batch_size: usize,
    /// queue.poll_interval_ms for our workers and the raw apalis baselines alike.
    #[arg(long, default_value_t = 25)]
    poll_interval_ms: u64,
    /// Messages of the big account of (e) (default 1,000,000; 100,000 with --quick).
    #[arg(long)]
    big_messages: Option<u64>,
    /// Extra ERASURE_<SECTION>__<KEY>=VALUE settings for the application (repeatable), e.g.
    /// --set ERASURE_PURGE__CHUNK_SIZE=1000.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
    /// Internal: seed one account with this many messages (configured by the ERASURE_*
    /// environment), print its id and exit. (e) seeds this way, in a child process, so the
    /// measuring process's heap is not inflated by the seeding beforehand.
    #[arg(long, hide = true)]
    seed_child: Option<u64>,
    /// Run only these sections (comma-separated: a,b,c,d,e,f).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Section>,
}

#[derive(Debug, Clone, Copy)]
struct Shape {
    messages: u64,
    contacts: u64,
    calls: u64,
    devices: u64,
}

impl Shape {
    fn describe(&self) -> String {
        format!(
            "{} messages, {} contacts, {} calls, {} devices",
            self.messages, self.contacts, self.calls, self.devices
        )
    }
}

const TYPICAL: Shape = Shape {
    messages: 1_000,
    contacts: 200,
    calls: 50,
    devices: 3,
};
const TYPICAL_10X: Shape = Shape {
    messages: 10_000,
    contacts: 2_000,
    calls: 500,
    devices: 3,
};
const SMALL: Shape = Shape {
    messages: 50,
    contacts: 10,
    calls: 5,
    devices: 1,
};

#[derive(Debug, Clone)]
struct Sizes {
    noop_jobs: u64,
    /// Jobs for the stock-poll-strategy variant of (a) (informational).
    noop_jobs_stock: u64,
    /// apalis-redis 1.0 fails every fetch at 8,000 due jobs: never more than this waiting.
    redis_window: u64,
    deletions: usize,
    purge_accounts: usize,
    latency_rate: f64,
    latency_secs: u64,
    big_messages: u64,
    deletions_10x: usize,
    purge_accounts_10x: usize,
}

impl Sizes {
    fn new(args: &Args) -> Self {
        let scale = if args.scale.is_finite() && args.scale > 0.0 {
            args.scale
        } else {
            1.0
        };
        let q = if args.quick { 0.2 } else { 1.0 };
        let n = |base: f64, min: f64| (base * scale * q).round().max(min);
        Self {
            noop_jobs: n(20_000.0, 500.0) as u64,
            noop_jobs_stock: n(5_000.0, 500.0) as u64,
            redis_window: 5_000,
            deletions: n(100.0, 5.0) as usize,
            purge_accounts: n(50.0, 3.0) as usize,
            latency_rate: 10.0,
            latency_secs: if args.quick { 5 } else { 20 },
            big_messages: args
                .big_messages
                .unwrap_or(if args.quick { 100_000 } else { 1_000_000 }),
            deletions_10x: n(25.0, 3.0) as usize,
            purge_accounts_10x: n(10.0, 2.0) as usize,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Results

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StackKind {
    Sqlite,
    Server,
}

impl StackKind {
    fn label(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Server => "postgres+redis",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct NoopRate {
    jobs: u64,
    secs: f64,
}

impl NoopRate {
    fn per_sec(&self) -> f64 {
        self.jobs as f64 / self.secs
    }
}

#[derive(Debug, Clone, Copy)]
struct DeletionRun {
    accounts: usize,
    secs: f64,
}

impl DeletionRun {
    fn per_sec(&self) -> f64 {
        self.accounts as f64 / self.secs
    }
    fn secs_per_account(&self) -> f64 {
        self.secs / self.accounts as f64
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct PurgeSide {
    accounts: usize,
    rows: u64,
    secs: f64,
}

impl PurgeSide {
    fn rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.secs
    }
    fn secs_per_account(&self) -> f64 {
        self.secs / self.accounts as f64
    }
}

#[derive(Debug, Clone)]
struct PurgeCompare {
    ours: PurgeSide,
    raw: PurgeSide,
    /// Where purge::run's statement time went, per account.
    top: String,
}

#[derive(Debug, Clone, Copy)]
struct Latency {
    samples: usize,
    p50: Duration,
    p99: Duration,
}

#[derive(Debug, Clone)]
struct LatencyCompare {
    ours: Latency,
    chain: Latency,
    /// Median of each step, for the notes.
    stages: String,
}

#[derive(Debug, Clone)]
struct BigRun {
    secs: f64,
    rows: u64,
    rss_growth: Option<u64>,
    longest: Duration,
    longest_sql: String,
    statements: u64,
}

#[derive(Debug, Clone)]
struct BigCompare {
    messages: u64,
    ours: BigRun,
    raw: BigRun,
}

#[derive(Debug, Default)]
struct StackResults {
    noop: Option<NoopRate>,
    noop_stock: Option<NoopRate>,
    deletions: Option<DeletionRun>,
    purge: Option<PurgeCompare>,
    latency: Option<LatencyCompare>,
    big: Option<BigCompare>,
    deletions_10x: Option<DeletionRun>,
    purge_10x: Option<PurgeCompare>,
    errors: Vec<String>,
}

struct Row {
    stack: String,
    measure: String,
    value: String,
    baseline: String,
    ratio: String,
    target: String,
    met: String,
}

// ---------------------------------------------------------------------------------------------
// Entry point

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(messages) = args.seed_child {
        return match seed_child(messages).await {
            Ok(id) => {
                println!("{id}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("bench seed: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Ok(false) when a measurement could not run (its error is printed with the table).
async fn run(args: Args) -> anyhow::Result<bool> {
    let sizes = Sizes::new(&args);
    let server = match (&args.database_url, &args.redis_url) {
        (Some(db), Some(redis)) if !db.is_empty() && !redis.is_empty() => Some((db.clone(), redis.clone())),
        _ => None,
    };
    let stacks: Vec<StackKind> = match (args.stack, &server) {
        (StackArg::Sqlite, _) => vec![StackKind::Sqlite],
        (StackArg::Server, None) => {
            bail!(
                "--stack server needs --database-url and --redis-url (or ERASURE_BENCH_DATABASE_URL / ERASURE_BENCH_REDIS_URL)"
            )
        }
        (StackArg::Server, Some(_)) => vec![StackKind::Server],
        (StackArg::Both, Some(_)) => vec![StackKind::Sqlite, StackKind::Server],
        (StackArg::Both, None) => {
            eprintln!(
                "note: the server stack is not measured: give --database-url and --redis-url \
                 (or ERASURE_BENCH_DATABASE_URL / ERASURE_BENCH_REDIS_URL)"
            );
            vec![StackKind::Sqlite]
        }
    };
    let sections: Vec<Section> = if args.only.is_empty() {
        vec![
            Section::A,
            Section::B,
            Section::C,
            Section::D,
            Section::E,
            Section::F,
        ]
    } else {
        args.only.clone()
    };
    eprintln!(
        "bench: stacks {:?}, sections {:?}, batch_size {}, poll_interval {} ms, {sizes:?}",
        stacks.iter().map(|s| s.label()).collect::<Vec<_>>(),
        sections,
        args.batch_size,
        args.poll_interval_ms
    );

    let started = Instant::now();
    let mut all = Vec::new();
    for kind in stacks {
        let t = Instant::now();
        let results = run_stack(kind, &args, &sizes, &sections, server.as_ref()).await;
        eprintln!("[{}] done in {:.0} s", kind.label(), t.elapsed().as_secs_f64());
        all.push((kind, results));
    }

    let mut ok = true;
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for (kind, results) in &all {
        table_rows(*kind, results, &sizes, &mut rows, &mut notes);
        for e in &results.errors {
            ok = false;
            notes.push(format!("[{}] ERROR: {e}", kind.label()));
        }
    }
    println!();
    println!("{}", render_table(&rows));
    println!();
    println!("Notes:");
    println!(
        "- ratio = value / baseline. (b) is compared with (a)/3: a deletion is three jobs (purge, \
         confirmation email, ledger entry), so (a)/3 is the rate of deletions whose three jobs do \
         nothing; target (b) >= 0.5 x (a)/3."
    );
    println!(
        "- (a) is timed from the first push to the last job done (pushes run while the worker runs, \
         as the relay's do in (b)); on Redis never more than {} jobs wait at once.",
        sizes.redis_window
    );
    println!(
        "- (c) baseline: per data-map rule, `DELETE FROM t WHERE id IN (SELECT id FROM t WHERE col = ? \
         LIMIT chunk)` (nullify rules: UPDATE ... SET col = NULL), one transaction per chunk, then the \
         account row; accounts alternate between purge::run and the baseline."
    );
    println!(
        "- (d) baseline: a chain of three no-op apalis jobs (each handler pushes the next) started at \
         the same rate; ours is completed_at - requested_at of the deletion request."
    );
    println!(
        "- (a) and the (d) chain run raw apalis workers with the poll strategy ours use \
         (erasure::workers::PollEvery, every poll_interval); (a') is the same with apalis' own \
         poll_with_interval, for information."
    );
    println!(
        "- (e) RSS is this process's (application, workers, SQLite when embedded): on the server \
         stack PostgreSQL's and Redis' memory is in their own processes. Statements are timed by \
         sea-orm's metric callback (Database::observe_statements), the WAL checkpoint included."
    );
    for n in &notes {
        println!("- {n}");
    }
    println!("- total run time {:.0} s", started.elapsed().as_secs_f64());
    Ok(ok)
}

// ---------------------------------------------------------------------------------------------
// One stack

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
enum QueueTarget {
    Sqlite(SqlitePool),
    Redis {
        conn: ConnectionManager,
        namespace: String,
    },
}

struct StackCtx {
    kind: StackKind,
    vars: HashMap<String, String>,
    batch_size: usize,
    poll: Duration,
    sizes: Sizes,
}

async fn run_stack(
    kind: StackKind,
    args: &Args,
    sizes: &Sizes,
    sections: &[Section],
    server: Option<&(String, String)>,
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
    let mut provisioned: Option<(String, String, String, String)> = None;
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
            let Some((admin, redis_url)) = server else {
                results.errors.push("server URLs missing".into());
                return results;
            };
            let namespace = format!("erasure-bench-{}:", uuid::Uuid::new_v4().simple());
            match create_database(admin).await {
                Ok((name, url)) => {
                    provisioned = Some((admin.clone(), name, redis_url.clone(), namespace.clone()));
                    vars.insert("ERASURE_DATABASE__URL".into(), url);
                    vars.insert("ERASURE_QUEUE__URL".into(), redis_url.clone());
                    vars.insert("ERASURE_QUEUE__NAMESPACE".into(), namespace.clone());
                    server_setup(&vars, redis_url, namespace).await
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
    if let Some((admin, name, redis_url, namespace)) = provisioned {
        if let Err(e) = drop_database(&admin, &name).await {
            results.errors.push(format!("dropping database {name}: {e:#}"));
        }
        if let Err(e) = delete_redis_keys(&redis_url, &namespace).await {
            results
                .errors
                .push(format!("deleting Redis keys {namespace}*: {e:#}"));
        }
    }
    drop(tmp);
    results
}

/// The value of a section that ran, or its error kept for the report.
fn kept<T>(errors: &mut Vec<String>, section: &str, result: anyhow::Result<T>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(e) => {
            errors.push(format!("{section}: {e:#}"));
            None
        }
    }
}

async fn run_sections(ctx: &StackCtx, queue: &QueueTarget, sections: &[Section], r: &mut StackResults) {
    let label = ctx.kind.label();
    let s = &ctx.sizes;
    if sections.contains(&Section::A) {
        eprintln!("[{label}] (a) {} no-op apalis jobs", s.noop_jobs);
        if let Some(x) = kept(
            &mut r.errors,
            "(a)",
            noop_rate(ctx, queue, s.noop_jobs, false).await,
        ) {
            eprintln!(
                "[{label}] (a) {:.0} jobs/s ({:.2} s) = {:.0} deletion-equivalents/s",
                x.per_sec(),
                x.secs,
                x.per_sec() / 3.0
            );
            r.noop = Some(x);
        }
        eprintln!(
            "[{label}] (a) {} no-op apalis jobs, stock poll_with_interval",
            s.noop_jobs_stock
        );
        if let Some(x) = kept(
            &mut r.errors,
            "(a) stock",
            noop_rate(ctx, queue, s.noop_jobs_stock, true).await,
        ) {
            eprintln!("[{label}] (a) stock: {:.0} jobs/s ({:.2} s)", x.per_sec(), x.secs);
            r.noop_stock = Some(x);
        }
    }
    if sections.contains(&Section::B) {
        eprintln!(
            "[{label}] (b) {} deletions of {}",
            s.deletions,
            TYPICAL.describe()
        );
        if let Some(x) = kept(&mut r.errors, "(b)", deletions(ctx, TYPICAL, s.deletions).await) {
            eprintln!("[{label}] (b) {:.1} deletions/s ({:.2} s)", x.per_sec(), x.secs);
            r.deletions = Some(x);
        }
    }
    if sections.contains(&Section::C) {
        eprintln!(
            "[{label}] (c) purge vs raw DELETE, {} + {} accounts",
            s.purge_accounts, s.purge_accounts
        );
        if let Some(x) = kept(
            &mut r.errors,
            "(c)",
            purge_compare(ctx, TYPICAL, s.purge_accounts).await,
        ) {
            eprintln!(
                "[{label}] (c) purge {:.0} rows/s, raw {:.0} rows/s",
                x.ours.rows_per_sec(),
                x.raw.rows_per_sec()
            );
            r.purge = Some(x);
        }
    }
    if sections.contains(&Section::D) {
        eprintln!(
            "[{label}] (d) latency at {}/s for {} s",
            s.latency_rate, s.latency_secs
        );
        if let Some(x) = kept(&mut r.errors, "(d)", latency(ctx, queue).await) {
            eprintln!(
                "[{label}] (d) p50 {:.1} ms p99 {:.1} ms (chain p50 {:.1} ms p99 {:.1} ms); {}",
                ms(x.ours.p50),
                ms(x.ours.p99),
                ms(x.chain.p50),
                ms(x.chain.p99),
                x.stages
            );
            r.latency = Some(x);
        }
    }
    if sections.contains(&Section::E) {
        eprintln!("[{label}] (e) one account with {} messages", s.big_messages);
        if let Some(x) = kept(&mut r.errors, "(e)", big_account(ctx).await) {
            eprintln!(
                "[{label}] (e) purge {:.1} s, RSS +{}, longest {:.1} ms; raw {:.1} s",
                x.ours.secs,
                x.ours.rss_growth.map_or("n/a".into(), mib),
                ms(x.ours.longest),
                x.raw.secs
            );
            r.big = Some(x);
        }
    }
    if sections.contains(&Section::F) {
        eprintln!(
            "[{label}] (f) {} deletions of {}",
            s.deletions_10x,
            TYPICAL_10X.describe()
        );
        if let Some(x) = kept(
            &mut r.errors,
            "(f) deletions",
            deletions(ctx, TYPICAL_10X, s.deletions_10x).await,
        ) {
            eprintln!("[{label}] (f) {:.2} deletions/s ({:.2} s)", x.per_sec(), x.secs);
            r.deletions_10x = Some(x);
        }
        eprintln!(
            "[{label}] (f) purge vs raw DELETE, {} + {} accounts",
            s.purge_accounts_10x, s.purge_accounts_10x
        );
        if let Some(x) = kept(
            &mut r.errors,
            "(f) purge",
            purge_compare(ctx, TYPICAL_10X, s.purge_accounts_10x).await,
        ) {
            eprintln!(
                "[{label}] (f) purge {:.0} rows/s, raw {:.0} rows/s",
                x.ours.rows_per_sec(),
                x.raw.rows_per_sec()
            );
            r.purge_10x = Some(x);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Provisioning

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

async fn create_database(admin_url: &str) -> anyhow::Result<(String, String)> {
    let name = format!("erasure_bench_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(admin_url)
        .await
        .context("connecting to the PostgreSQL admin URL")?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&pool)
        .await?;
    pool.close().await;
    let mut url = url::Url::parse(admin_url)?;
    url.set_path(&name);
    Ok((name, url.to_string()))
}

async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let pool = sqlx::PgPool::connect(admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&pool)
    .await?;
    pool.close().await;
    Ok(())
}

async fn delete_redis_keys(redis_url: &str, namespace: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(redis_url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{namespace}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            let () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

// ---------------------------------------------------------------------------------------------
// Running the application in-process

/// Counts the statements seen while recording, and keeps the longest.
#[derive(Debug, Default)]
struct StatementStats {
    recording: AtomicBool,
    count: AtomicU64,
    longest: Mutex<(Duration, String)>,
    /// Count and total time per statement text.
    by_sql: Mutex<HashMap<String, (u64, Duration)>>,
}

impl StatementStats {
    fn observe(&self, elapsed: Duration, sql: &str) {
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

    fn start(&self) {
        *self.longest.lock().unwrap_or_else(|p| p.into_inner()) = (Duration::ZERO, String::new());
        self.by_sql.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.count.store(0, Ordering::Relaxed);
        self.recording.store(true, Ordering::Relaxed);
    }

    /// The `n` statements with the most total time, per `per` runs.
    fn top(&self, n: usize, per: usize) -> String {
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

    fn stop(&self) -> (Duration, String, u64) {
        self.recording.store(false, Ordering::Relaxed);
        let longest = self.longest.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (longest.0, longest.1, self.count.load(Ordering::Relaxed))
    }
}

struct App {
    state: AppState,
    /// A second pool on the same database for the bench's own polling, so its statements
    /// neither wait behind the application's nor show in the statement statistics.
    probe: Database,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl App {
    /// The application as `erasure serve` runs it (workers and relay in-process) when
    /// `workers`, or only its state (nothing running in the background) otherwise.
    async fn start(
        ctx: &StackCtx,
        workers: bool,
        stats: Option<Arc<StatementStats>>,
    ) -> anyhow::Result<Self> {
        let settings = Settings::load_from(&ctx.vars)?;
        let mut db = Database::connect(&settings).await?;
        if let Some(stats) = stats {
            db.observe_statements(move |elapsed, sql| stats.observe(elapsed, sql));
        }
        let roles = if workers {
            Roles::ALL
        } else {
            Roles {
                http: false,
                workers: false,
            }
        };
        let probe_settings = settings.clone();
        let app = Application::build_with_database(settings, Arc::new(SystemClock), roles, db).await?;
        let probe = Database::connect(&probe_settings).await?;
        let state = app.state().clone();
        let stop = CancellationToken::new();
        let task = workers.then(|| tokio::spawn(app.run_until_stopped(stop.clone())));
        Ok(Self {
            state,
            probe,
            stop,
            task,
        })
    }

    async fn shutdown(mut self) -> anyhow::Result<()> {
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

fn app_err(e: AppError) -> anyhow::Error {
    anyhow::Error::from(e)
}

static ACCOUNT_SEQ: AtomicU64 = AtomicU64::new(1);

async fn seed_one(state: &AppState, shape: Shape) -> anyhow::Result<account::Model> {
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
    account::Entity::find_by_id(report.account_id)
        .one(&state.db.conn)
        .await?
        .context("the seeded account is missing")
}

/// Seeds `n` accounts, two at a time (password hashing runs on the blocking pool, so both
/// cores work). Untimed.
async fn seed_accounts(state: &AppState, shape: Shape, n: usize) -> anyhow::Result<Vec<account::Model>> {
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

async fn count_status(db: &Database, status: &str) -> anyhow::Result<u64> {
    Ok(deletion_request::Entity::find()
        .filter(deletion_request::Column::Status.eq(status))
        .count(&db.conn)
        .await?)
}

/// Polls every 20 ms until `target` requests are completed.
async fn wait_completed(db: &Database, target: u64, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let failed_before = count_status(db, "failed").await?;
    loop {
        let done = count_status(db, "completed").await?;
        if done >= target {
            return Ok(());
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
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?}: {done} of {target} completed");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// (a) and the (d) baseline: raw apalis

#[derive(Debug, Clone, Serialize, Deserialize)]
struct NoopJob {
    n: u64,
}

async fn noop(_job: NoopJob, seen: Data<Arc<AtomicU64>>) -> Result<(), BoxDynError> {
    seen.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChainJob {
    id: u64,
    started_us: i64,
}

enum ChainNext {
    Sqlite(SqliteStorage<ChainJob>),
    Redis(RedisStorage<ChainJob>),
    Done(Mutex<Vec<Duration>>),
}

async fn chain_step(job: ChainJob, next: Data<Arc<ChainNext>>) -> Result<(), BoxDynError> {
    match next.as_ref() {
        ChainNext::Sqlite(s) => s
            .clone()
            .push(job)
            .await
            .map_err(|e| BoxDynError::from(e.to_string()))?,
        ChainNext::Redis(s) => s
            .clone()
            .push(job)
            .await
            .map_err(|e| BoxDynError::from(e.to_string()))?,
        ChainNext::Done(latencies) => {
            let micros = chrono::Utc::now().timestamp_micros() - job.started_us;
            latencies
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Duration::from_micros(u64::try_from(micros).unwrap_or(0)));
        }
    }
    Ok(())
}

/// Registers one worker per (storage, data, handler) on a monitor that runs until `stop`.
macro_rules! spawn_monitor {
    ($strategy:expr, $stop:expr, $(($storage:expr, $data:expr, $handler:expr)),+ $(,)?) => {{
        let base_strategy = $strategy;
        let stop: CancellationToken = $stop;
        let mut monitor = Monitor::new();
        $(
            let (storage, data, strategy) = ($storage, $data, base_strategy.clone());
            let name = format!("bench-{}", uuid::Uuid::new_v4().simple());
            monitor = monitor.register(move |_| {
                WorkerBuilder::new(name.clone())
                    .backend(storage.clone().poll_with_strategy(strategy.clone()))
                    .data(data.clone())
                    .build($handler)
            });
        )+
        tokio::spawn(async move {
            monitor
                .shutdown_timeout(Duration::from_secs(5))
                .run_with_signal(async move {
                    stop.cancelled().await;
                    Ok(())
                })
                .await
        })
    }};
}

fn sqlite_config(ctx: &StackCtx, queue: &str) -> apalis_sqlite::Config {
    let q = &Settings::load_from(&ctx.vars).map(|s| s.queue).ok();
    let (hb, missed) = q
        .as_ref()
        .map_or((5, 3), |q| (q.heartbeat_interval_secs, q.missed_heartbeats));
    apalis_sqlite::Config::default()
        .queue(queue)
        .batch_size(ctx.batch_size)
        .heartbeat_interval(Duration::from_secs(hb))
        .missed_heartbeats(missed)
}

fn redis_config(ctx: &StackCtx, queue: &str) -> apalis_redis::Config {
    let q = &Settings::load_from(&ctx.vars).map(|s| s.queue).ok();
    let (hb, missed) = q
        .as_ref()
        .map_or((5, 3), |q| (q.heartbeat_interval_secs, q.missed_heartbeats));
    apalis_redis::Config::default()
        .queue(queue)
        .batch_size(ctx.batch_size)
        .heartbeat_interval(Duration::from_secs(hb))
        .missed_heartbeats(missed)
        .idempotency_ttl(Some(Duration::from_secs(24 * 3600)))
}

async fn stop_monitor(
    stop: &CancellationToken,
    handle: tokio::task::JoinHandle<Result<(), MonitorError>>,
) -> anyhow::Result<()> {
    stop.cancel();
    match tokio::time::timeout(Duration::from_secs(30), handle).await {
        Ok(joined) => joined?.map_err(|e| anyhow::anyhow!("apalis monitor: {e}")),
        Err(_) => bail!("the apalis monitor did not stop within 30 s"),
    }
}

/// `stock`: apalis' own `poll_with_interval` instead of the `PollEvery` our workers use.
async fn noop_rate(ctx: &StackCtx, target: &QueueTarget, n: u64, stock: bool) -> anyhow::Result<NoopRate> {
    let seen = Arc::new(AtomicU64::new(0));
    let stop = CancellationToken::new();
    let queue = format!("bench.noop.{}", uuid::Uuid::new_v4().simple());
    match target {
        QueueTarget::Sqlite(pool) => {
            let storage = SqliteStorage::<NoopJob>::new(pool).with_config(sqlite_config(ctx, &queue));
            let handle = if stock {
                spawn_monitor!(
                    IntervalStrategy::new(ctx.poll),
                    stop.clone(),
                    (storage.clone(), seen.clone(), noop)
                )
            } else {
                spawn_monitor!(
                    PollEvery::new(ctx.poll),
                    stop.clone(),
                    (storage.clone(), seen.clone(), noop)
                )
            };
            let t0 = Instant::now();
            let mut sink = storage.clone();
            for i in 0..n {
                sink.push(NoopJob { n: i })
                    .await
                    .map_err(|e| anyhow::anyhow!("push: {e}"))?;
            }
            let done = || async {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM Jobs WHERE job_type = ? AND status = 'Done'",
                )
                .bind(&queue)
                .fetch_one(pool)
                .await
                .map(|c| u64::try_from(c).unwrap_or(0))
                .map_err(anyhow::Error::from)
            };
            wait_until(n, Duration::from_secs(600), done).await?;
            let secs = t0.elapsed().as_secs_f64();
            stop_monitor(&stop, handle).await?;
            Ok(NoopRate { jobs: n, secs })
        }
        QueueTarget::Redis { conn, namespace } => {
            let config = redis_config(ctx, &format!("{namespace}{queue}"));
            let done_set = config.done_jobs_set();
            let storage = RedisStorage::<NoopJob>::new(conn.clone()).with_config(config);
            let handle = if stock {
                spawn_monitor!(
                    IntervalStrategy::new(ctx.poll),
                    stop.clone(),
                    (storage.clone(), seen.clone(), noop)
                )
            } else {
                spawn_monitor!(
                    PollEvery::new(ctx.poll),
                    stop.clone(),
                    (storage.clone(), seen.clone(), noop)
                )
            };
            let t0 = Instant::now();
            let mut sink = storage.clone();
            let window = ctx.sizes.redis_window;
            for i in 0..n {
                // Backpressure: apalis-redis 1.0 breaks at 8,000 due jobs.
                while i.saturating_sub(seen.load(Ordering::Relaxed)) >= window {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                sink.push(NoopJob { n: i })
                    .await
                    .map_err(|e| anyhow::anyhow!("push: {e}"))?;
            }
            let done = || async {
                let mut c = conn.clone();
                redis::cmd("SCARD")
                    .arg(&done_set)
                    .query_async::<u64>(&mut c)
                    .await
                    .map_err(anyhow::Error::from)
            };
            wait_until(n, Duration::from_secs(600), done).await?;
            let secs = t0.elapsed().as_secs_f64();
            stop_monitor(&stop, handle).await?;
            Ok(NoopRate { jobs: n, secs })
        }
    }
}

/// Polls `count` every 20 ms until it reaches `target`.
async fn wait_until<F, Fut>(target: u64, timeout: Duration, count: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<u64>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let done = count().await?;
        if done >= target {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?}: {done} of {target} done");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Three no-op jobs in a row (each handler pushes the next), started at the latency run's rate.
async fn chain_latency(
    ctx: &StackCtx,
    target: &QueueTarget,
    count: u64,
    interval: Duration,
) -> anyhow::Result<Latency> {
    let stop = CancellationToken::new();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let names: Vec<String> = (1..=3).map(|i| format!("bench.chain{i}.{tag}")).collect();
    let last = Arc::new(ChainNext::Done(Mutex::new(Vec::new())));
    let (handle, first): (_, ChainFirst) = match target {
        QueueTarget::Sqlite(pool) => {
            let s: Vec<SqliteStorage<ChainJob>> = names
                .iter()
                .map(|n| SqliteStorage::new(pool).with_config(sqlite_config(ctx, n)))
                .collect();
            let (s1, s2, s3) = (s[0].clone(), s[1].clone(), s[2].clone());
            let handle = spawn_monitor!(
                PollEvery::new(ctx.poll),
                stop.clone(),
                (s1.clone(), Arc::new(ChainNext::Sqlite(s2.clone())), chain_step),
                (s2.clone(), Arc::new(ChainNext::Sqlite(s3.clone())), chain_step),
                (s3.clone(), last.clone(), chain_step),
            );
            (handle, ChainFirst::Sqlite(s1))
        }
        QueueTarget::Redis { conn, namespace } => {
            let s: Vec<RedisStorage<ChainJob>> = names
                .iter()
                .map(|n| {
                    RedisStorage::new(conn.clone()).with_config(redis_config(ctx, &format!("{namespace}{n}")))
                })
                .collect();
            let (s1, s2, s3) = (s[0].clone(), s[1].clone(), s[2].clone());
            let handle = spawn_monitor!(
                PollEvery::new(ctx.poll),
                stop.clone(),
                (s1.clone(), Arc::new(ChainNext::Redis(s2.clone())), chain_step),
                (s2.clone(), Arc::new(ChainNext::Redis(s3.clone())), chain_step),
                (s3.clone(), last.clone(), chain_step),
            );
            (handle, ChainFirst::Redis(s1))
        }
    };
    // Let the workers register before the clock starts, as the application's have.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = tokio::time::Instant::now();
    for id in 0..count {
        tokio::time::sleep_until(start + interval.mul_f64(id as f64)).await;
        let job = ChainJob {
            id,
            started_us: chrono::Utc::now().timestamp_micros(),
        };
        match &first {
            ChainFirst::Sqlite(s) => s
                .clone()
                .push(job)
                .await
                .map_err(|e| anyhow::anyhow!("push: {e}"))?,
            ChainFirst::Redis(s) => s
                .clone()
                .push(job)
                .await
                .map_err(|e| anyhow::anyhow!("push: {e}"))?,
        }
    }
    let done_count = || async {
        match last.as_ref() {
            ChainNext::Done(l) => Ok(l.lock().unwrap_or_else(|p| p.into_inner()).len() as u64),
            _ => Ok(0),
        }
    };
    wait_until(count, Duration::from_secs(120), done_count).await?;
    stop_monitor(&stop, handle).await?;
    let samples = match last.as_ref() {
        ChainNext::Done(l) => l.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        _ => Vec::new(),
    };
    percentiles(samples)
}

enum ChainFirst {
    Sqlite(SqliteStorage<ChainJob>),
    Redis(RedisStorage<ChainJob>),
}

fn percentiles(mut samples: Vec<Duration>) -> anyhow::Result<Latency> {
    if samples.is_empty() {
        bail!("no latency samples");
    }
    samples.sort();
    // Nearest rank.
    let at = |p: f64| {
        let rank = (p * samples.len() as f64).ceil() as usize;
        samples[rank.clamp(1, samples.len()) - 1]
    };
    Ok(Latency {
        samples: samples.len(),
        p50: at(0.50),
        p99: at(0.99),
    })
}

// ---------------------------------------------------------------------------------------------
// (b), (f): complete deletions

async fn deletions(ctx: &StackCtx, shape: Shape, k: usize) -> anyhow::Result<DeletionRun> {
    let app = App::start(ctx, true, None).await?;
    let outcome = async {
        let accounts = seed_accounts(&app.state, shape, k).await?;
        let before = count_status(&app.probe, "completed").await?;
        let t0 = Instant::now();
        for account in &accounts {
            deletion::open_request(
                app.state.env(),
                &app.state.keys,
                account,
                Actor::AccountHolder,
                Channel::Api,
            )
            .await
            .map_err(app_err)?;
        }
        wait_completed(&app.probe, before + k as u64, Duration::from_secs(1200)).await?;
        if std::env::var("BENCH_DEBUG").is_ok() {
            let rows = deletion_request::Entity::find().all(&app.probe.conn).await?;
            debug_rows(&rows);
        }
        Ok(DeletionRun {
            accounts: k,
            secs: t0.elapsed().as_secs_f64(),
        })
    }
    .await;
    app.shutdown().await?;
    outcome
}

// ---------------------------------------------------------------------------------------------
// (c), (f): purge::run against a hand-written chunked DELETE

/// config/datamap.toml, written out by hand: (table, column, nullify).
const RAW_RULES: [(&str, &str, bool); 10] = [
    ("sessions", "account_id", false),
    ("password_resets", "account_id", false),
    ("devices", "account_id", false),
    ("contacts", "owner_id", false),
    ("contacts", "contact_id", false),
    ("messages", "sender_id", false),
    ("conversation_members", "account_id", false),
    ("conversations", "created_by", true),
    ("calls", "caller_id", true),
    ("calls", "callee_id", true),
];

fn check_raw_rules(state: &AppState) -> anyhow::Result<()> {
    let map: Vec<(String, String, bool)> = state
        .purge_plan
        .map
        .stores
        .iter()
        .map(|r| (r.table.clone(), r.column.clone(), r.action == Action::Nullify))
        .collect();
    let raw: Vec<(String, String, bool)> = RAW_RULES
        .iter()
        .map(|(t, c, n)| ((*t).to_owned(), (*c).to_owned(), *n))
        .collect();
    if map != raw {
        bail!("the baseline's rules no longer match config/datamap.toml: {map:?}");
    }
    Ok(())
}

/// The baseline: each rule's rows in chunks of `purge.chunk_size`, one transaction a chunk,
/// then the account row and the avatar file. Returns the rows changed.
async fn raw_delete(state: &AppState, account: &account::Model) -> anyhow::Result<u64> {
    let chunk = state.settings.purge.chunk_size;
    let backend = state.db.backend();
    let p = if backend == DbBackend::Postgres { "$1" } else { "?" };
    let mut rows = 0;
    for (table, column, nullify) in RAW_RULES {
        let sql = if nullify {
            format!(
                "UPDATE {table} SET {column} = NULL WHERE id IN (SELECT id FROM {table} WHERE {column} = {p} LIMIT {chunk})"
            )
        } else {
            format!(
                "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {column} = {p} LIMIT {chunk})"
            )
        };
        loop {
            let tx = state.db.begin_write().await?;
            let n = tx
                .execute_raw(Statement::from_sql_and_values(backend, &sql, [account.id.into()]))
                .await?
                .rows_affected();
            tx.commit().await?;
            rows += n;
            if n < chunk {
                break;
            }
        }
    }
    let tx = state.db.begin_write().await?;
    rows += tx
        .execute_raw(Statement::from_sql_and_values(
            backend,
            format!("DELETE FROM accounts WHERE id = {p}"),
            [account.id.into()],
        ))
        .await?
        .rows_affected();
    tx.commit().await?;
    if let Some(file) = &account.avatar_file {
        match std::fs::remove_file(state.settings.storage.data_dir.join("avatars").join(file)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(rows)
}

/// Rows (not files) the purge reports.
fn purged_rows(state: &AppState, outcome: PurgeOutcome) -> anyhow::Result<u64> {
    let PurgeOutcome::Purged(counts) = outcome else {
        bail!("the purge had already run");
    };
    let files: Vec<&str> = state
        .purge_plan
        .map
        .files
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    Ok(counts
        .iter()
        .filter(|(store, _)| !files.contains(&store.as_str()))
        .map(|(_, n)| u64::try_from(*n).unwrap_or(0))
        .sum())
}

async fn purge_compare(ctx: &StackCtx, shape: Shape, per_side: usize) -> anyhow::Result<PurgeCompare> {
    // No workers, no relay: purge::run is called directly and nothing competes with it.
    let stats = Arc::new(StatementStats::default());
    let app = App::start(ctx, false, Some(stats.clone())).await?;
    let outcome = async {
        check_raw_rules(&app.state)?;
        let accounts = seed_accounts(&app.state, shape, per_side * 2).await?;
        // Requests for the purge half, opened before the clock starts.
        let mut requests = HashMap::new();
        for account in accounts.iter().step_by(2) {
            let receipt = deletion::open_request(
                app.state.env(),
                &app.state.keys,
                account,
                Actor::AccountHolder,
                Channel::Api,
            )
            .await
            .map_err(app_err)?;
            requests.insert(account.id, receipt.request_id);
        }
        let (mut ours, mut raw) = (PurgeSide::default(), PurgeSide::default());
        // Alternating, so both halves see the database at the same sizes.
        for account in &accounts {
            if let Some(request_id) = requests.get(&account.id) {
                stats.recording.store(true, Ordering::Relaxed);
                let t = Instant::now();
                let outcome = purge::run(app.state.env(), &app.state.purge_plan, *request_id)
                    .await
                    .map_err(app_err)?;
                stats.recording.store(false, Ordering::Relaxed);
                ours.secs += t.elapsed().as_secs_f64();
                ours.rows += purged_rows(&app.state, outcome)?;
                ours.accounts += 1;
            } else {
                let t = Instant::now();
                let n = raw_delete(&app.state, account).await?;
                raw.secs += t.elapsed().as_secs_f64();
                raw.rows += n;
                raw.accounts += 1;
            }
        }
        let top = stats.top(6, ours.accounts);
        if ours.rows != raw.rows {
            eprintln!(
                "    note: purge removed {} rows, the baseline {} (they should match)",
                ours.rows, raw.rows
            );
        }
        Ok(PurgeCompare { ours, raw, top })
    }
    .await;
    app.shutdown().await?;
    outcome
}

// ---------------------------------------------------------------------------------------------
// (d): latency at a steady rate

async fn latency(ctx: &StackCtx, queue: &QueueTarget) -> anyhow::Result<LatencyCompare> {
    let count = (ctx.sizes.latency_rate * ctx.sizes.latency_secs as f64)
        .round()
        .max(1.0) as u64;
    let interval = Duration::from_secs_f64(1.0 / ctx.sizes.latency_rate);
    let chain = chain_latency(ctx, queue, count, interval).await?;

    let app = App::start(ctx, true, None).await?;
    let outcome = async {
        let accounts = seed_accounts(&app.state, SMALL, usize::try_from(count)?).await?;
        let before = count_status(&app.probe, "completed").await?;
        let mut ids = Vec::new();
        let start = tokio::time::Instant::now();
        for (i, account) in accounts.iter().enumerate() {
            tokio::time::sleep_until(start + interval.mul_f64(i as f64)).await;
            let receipt = deletion::open_request(
                app.state.env(),
                &app.state.keys,
                account,
                Actor::AccountHolder,
                Channel::Api,
            )
            .await
            .map_err(app_err)?;
            ids.push(receipt.request_id.to_string());
        }
        wait_completed(&app.probe, before + count, Duration::from_secs(300)).await?;
        let rows = deletion_request::Entity::find()
            .filter(deletion_request::Column::Id.is_in(ids))
            .all(&app.probe.conn)
            .await?;
        let samples = rows
            .iter()
            .filter_map(|r| {
                r.completed_at
                    .map(|c| (c - r.requested_at).to_std().unwrap_or_default())
            })
            .collect();
        let stages = stage_medians(&rows);
        if std::env::var("BENCH_DEBUG").is_ok() {
            debug_rows(&rows);
        }
        percentiles(samples).map(|l| (l, stages))
    }
    .await;
    app.shutdown().await?;
    let (ours, stages) = outcome?;
    Ok(LatencyCompare { ours, chain, stages })
}

/// Median time of each step of the pipeline, from the request's own timestamps.
fn stage_medians(rows: &[deletion_request::Model]) -> String {
    type Stamp = fn(&deletion_request::Model) -> Option<chrono::DateTime<chrono::Utc>>;
    let steps: [(&str, Stamp, Stamp); 4] = [
        (
            "request→purge start",
            |r| Some(r.requested_at),
            |r| r.purge_started_at,
        ),
        ("purge", |r| r.purge_started_at, |r| r.purged_at),
        ("purged→email sent", |r| r.purged_at, |r| r.email_sent_at),
        ("email sent→ledger entry", |r| r.email_sent_at, |r| r.completed_at),
    ];
    let mut out = Vec::new();
    for (name, from, to) in steps {
        let mut d: Vec<Duration> = rows
            .iter()
            .filter_map(|r| Some((to(r)? - from(r)?).to_std().unwrap_or_default()))
            .collect();
        d.sort();
        if let Some(m) = d.get(d.len() / 2) {
            out.push(format!("{name} {:.1} ms", ms(*m)));
        }
    }
    out.join(", ")
}

// ---------------------------------------------------------------------------------------------
// (e): one big account

/// The child side of `seed_in_child`.
async fn seed_child(messages: u64) -> anyhow::Result<i64> {
    let settings = Settings::load()?;
    let state = erasure::startup::build_state(settings, Arc::new(SystemClock)).await?;
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..12];
    seed::seed_account(
        state.env(),
        &state.settings.storage.data_dir,
        SeedSpec {
            vsee_id: VseeId::parse(&format!("big{tag}"))?,
            email: Email::parse(&format!("big{tag}@bench.example"))?,
            password: Password::parse("correct horse battery")?,
            first_name: PersonName::parse("Big")?,
            last_name: PersonName::parse("Account")?,
            plan: Plan::Free,
            messages,
            contacts: TYPICAL.contacts,
            calls: TYPICAL.calls,
            devices: TYPICAL.devices,
        },
        &|_| {},
    )
    .await
    .map(|r| r.account_id)
    .map_err(app_err)
}

/// Seeds one big account from a child process (this binary again) on the same database.
async fn seed_in_child(ctx: &StackCtx, app: &App, messages: u64) -> anyhow::Result<account::Model> {
    let t = Instant::now();
    let output = tokio::process::Command::new(std::env::current_exe()?)
        .arg("--seed-child")
        .arg(messages.to_string())
        .env_clear()
        .envs(&ctx.vars)
        .stderr(std::process::Stdio::inherit())
        .output()
        .await?;
    if !output.status.success() {
        bail!("the seeding child failed ({})", output.status);
    }
    let id: i64 = String::from_utf8_lossy(&output.stdout).trim().parse()?;
    eprintln!(
        "    seeded 1 account of {messages} messages in a child process in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    account::Entity::find_by_id(id)
        .one(&app.state.db.conn)
        .await?
        .context("the seeded account is missing")
}

fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Resets VmHWM to the current RSS; returns that RSS in bytes.
fn reset_peak_rss() -> Option<u64> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    proc_status_kib("VmRSS:").map(|k| k * 1024)
}

fn peak_growth(rss_before: Option<u64>) -> Option<u64> {
    let peak = proc_status_kib("VmHWM:")? * 1024;
    Some(peak.saturating_sub(rss_before?))
}

async fn big_account(ctx: &StackCtx) -> anyhow::Result<BigCompare> {
    let shape = Shape {
        messages: ctx.sizes.big_messages,
        ..TYPICAL
    };
    let stats = Arc::new(StatementStats::default());
    let app = App::start(ctx, true, Some(stats.clone())).await?;
    let outcome = async {
        check_raw_rules(&app.state)?;
        // Ours: request to completed, with the workers.
        let account = seed_in_child(ctx, &app, shape.messages).await?;
        let before = count_status(&app.probe, "completed").await?;
        let rss_before = reset_peak_rss();
        stats.start();
        let t0 = Instant::now();
        let receipt = deletion::open_request(
            app.state.env(),
            &app.state.keys,
            &account,
            Actor::AccountHolder,
            Channel::Api,
        )
        .await
        .map_err(app_err)?;
        wait_completed(&app.probe, before + 1, Duration::from_secs(1800)).await?;
        let secs = t0.elapsed().as_secs_f64();
        let (longest, longest_sql, statements) = stats.stop();
        let rss_growth = peak_growth(rss_before);
        let request = deletion::find(&app.state.db, receipt.request_id)
            .await
            .map_err(app_err)?;
        let counts: HashMap<String, i64> = request
            .store_counts
            .as_deref()
            .map(serde_json::from_str)
            .transpose()?
            .unwrap_or_default();
        let files: Vec<&str> = app
            .state
            .purge_plan
            .map
            .files
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        let rows = counts
            .iter()
            .filter(|(k, _)| !files.contains(&k.as_str()))
            .map(|(_, v)| u64::try_from(*v).unwrap_or(0))
            .sum();
        let ours = BigRun {
            secs,
            rows,
            rss_growth,
            longest,
            longest_sql,
            statements,
        };

        // Baseline: an identical account, seeded after the first is gone, removed by hand.
        let account = seed_in_child(ctx, &app, shape.messages).await?;
        let rss_before = reset_peak_rss();
        stats.start();
        let t0 = Instant::now();
        let rows = raw_delete(&app.state, &account).await?;
        let secs = t0.elapsed().as_secs_f64();
        let (longest, longest_sql, statements) = stats.stop();
        let raw = BigRun {
            secs,
            rows,
            rss_growth: peak_growth(rss_before),
            longest,
            longest_sql,
            statements,
        };
        Ok(BigCompare {
            messages: shape.messages,
            ours,
            raw,
        })
    }
    .await;
    app.shutdown().await?;
    outcome
}

// ---------------------------------------------------------------------------------------------
// The table

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn yes_no(met: bool) -> String {
    if met { "yes" } else { "NO" }.to_owned()
}

fn table_rows(
    kind: StackKind,
    r: &StackResults,
    sizes: &Sizes,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) {
    let stack = kind.label().to_owned();
    let mut push =
        |measure: String, value: String, baseline: String, ratio: String, target: &str, met: String| {
            rows.push(Row {
                stack: stack.clone(),
                measure,
                value,
                baseline,
                ratio,
                target: target.to_owned(),
                met,
            });
        };
    let dash = || "—".to_owned();
    let deletion_equiv = r.noop.map(|a| a.per_sec() / 3.0);
    if let Some(a) = r.noop {
        push(
            format!("(a) raw apalis no-op jobs/s ({} jobs, 1 worker)", a.jobs),
            format!("{:.0} jobs/s", a.per_sec()),
            dash(),
            dash(),
            "— (baseline of b)",
            dash(),
        );
        push(
            "(a)/3 no-op deletion-equivalents/s".into(),
            format!("{:.0} /s", a.per_sec() / 3.0),
            dash(),
            dash(),
            "— (baseline of b)",
            dash(),
        );
    }
    if let Some(a) = r.noop_stock {
        let ratio = r
            .noop
            .map_or(dash(), |ours| format!("{:.2}x", a.per_sec() / ours.per_sec()));
        push(
            format!(
                "(a') raw apalis no-op jobs/s, stock poll_with_interval ({} jobs)",
                a.jobs
            ),
            format!("{:.0} jobs/s", a.per_sec()),
            r.noop
                .map_or(dash(), |ours| format!("{:.0} jobs/s ((a))", ours.per_sec())),
            ratio,
            "— (information)",
            dash(),
        );
    }
    let vs_equiv = |per_sec: f64| match deletion_equiv {
        Some(eq) => (
            format!("{eq:.0} /s ((a)/3)"),
            format!("{:.3}x", per_sec / eq),
            Some(per_sec / eq),
        ),
        None => ("not measured".into(), dash(), None),
    };
    if let Some(b) = r.deletions {
        let (baseline, ratio, x) = vs_equiv(b.per_sec());
        push(
            format!("(b) deletions/s, typical account ({} accounts)", b.accounts),
            format!("{:.1} /s", b.per_sec()),
            baseline,
            ratio,
            ">= 0.5x (a)/3",
            x.map_or(dash(), |x| yes_no(x >= 0.5)),
        );
    }
    if let Some(c) = &r.purge {
        notes.push(format!(
            "[{}] (c) statement time of purge::run per typical account (top 6): {}",
            kind.label(),
            c.top
        ));
        let x = c.ours.rows_per_sec() / c.raw.rows_per_sec();
        push(
            format!(
                "(c) purge rows/s ({} + {} typical accounts)",
                c.ours.accounts, c.raw.accounts
            ),
            format!("{:.0} rows/s", c.ours.rows_per_sec()),
            format!("{:.0} rows/s (raw DELETE)", c.raw.rows_per_sec()),
            format!("{x:.3}x"),
            ">= 0.7x",
            yes_no(x >= 0.7),
        );
    }
    if let Some(d) = &r.latency {
        notes.push(format!("[{}] (d) median per step: {}", kind.label(), d.stages));
        for (name, ours, chain) in [("p50", d.ours.p50, d.chain.p50), ("p99", d.ours.p99, d.chain.p99)] {
            push(
                format!(
                    "(d) {name} request→completed, {}/s × {} s ({} samples)",
                    sizes.latency_rate, sizes.latency_secs, d.ours.samples
                ),
                format!("{:.1} ms", ms(ours)),
                format!("{:.1} ms (3 no-op jobs)", ms(chain)),
                format!("{:.2}x", ms(ours) / ms(chain).max(0.001)),
                "— (none set)",
                dash(),
            );
        }
    }
    if let Some(e) = &r.big {
        push(
            format!("(e) {} messages: request→completed", e.messages),
            format!("{:.1} s ({} rows)", e.ours.secs, e.ours.rows),
            format!("{:.1} s (raw DELETE, {} rows)", e.raw.secs, e.raw.rows),
            format!("{:.2}x", e.ours.secs / e.raw.secs),
            "— (none set)",
            dash(),
        );
        let rss_ratio = match (e.ours.rss_growth, e.raw.rss_growth) {
            (Some(o), Some(b)) if b > 0 => format!("{:.2}x", o as f64 / b as f64),
            _ => dash(),
        };
        push(
            format!("(e) {} messages: peak RSS growth", e.messages),
            e.ours.rss_growth.map_or("n/a".into(), mib),
            e.raw
                .rss_growth
                .map_or("n/a".into(), |b| format!("{} (raw DELETE)", mib(b))),
            rss_ratio,
            "< 64 MiB",
            e.ours.rss_growth.map_or(dash(), |g| yes_no(g < 64 * 1024 * 1024)),
        );
        push(
            format!("(e) {} messages: longest SQL statement", e.messages),
            format!("{:.1} ms", ms(e.ours.longest)),
            format!("{:.1} ms (raw DELETE)", ms(e.raw.longest)),
            format!("{:.2}x", ms(e.ours.longest) / ms(e.raw.longest).max(0.001)),
            "< 250 ms",
            yes_no(e.ours.longest < Duration::from_millis(250)),
        );
        notes.push(format!(
            "[{}] (e) longest statement of the purge ({} statements observed): {:.1} ms `{}`; of the raw \
             DELETE ({} statements): {:.1} ms `{}`",
            kind.label(),
            e.ours.statements,
            ms(e.ours.longest),
            e.ours.longest_sql,
            e.raw.statements,
            ms(e.raw.longest),
            e.raw.longest_sql
        ));
    }
    if let Some(f) = r.deletions_10x {
        let (baseline, ratio, _) = vs_equiv(f.per_sec());
        push(
            format!("(f) deletions/s, 10x account ({} accounts)", f.accounts),
            format!("{:.2} /s", f.per_sec()),
            baseline,
            ratio,
            "— (see growth)",
            dash(),
        );
        if let Some(b) = r.deletions {
            let x = f.secs_per_account() / b.secs_per_account();
            push(
                "(f) pipeline time per account, 10x vs 1x rows".into(),
                format!("{:.3} s", f.secs_per_account()),
                format!("{:.3} s (1x)", b.secs_per_account()),
                format!("{x:.2}x"),
                "<= 11x",
                yes_no(x <= 11.0),
            );
        }
    }
    if let Some(f) = &r.purge_10x {
        let x = f.ours.rows_per_sec() / f.raw.rows_per_sec();
        push(
            format!(
                "(f) purge rows/s, 10x account ({} + {} accounts)",
                f.ours.accounts, f.raw.accounts
            ),
            format!("{:.0} rows/s", f.ours.rows_per_sec()),
            format!("{:.0} rows/s (raw DELETE)", f.raw.rows_per_sec()),
            format!("{x:.3}x"),
            ">= 0.7x",
            yes_no(x >= 0.7),
        );
        if let Some(c) = &r.purge {
            let x = f.ours.secs_per_account() / c.ours.secs_per_account();
            push(
                "(f) purge time per account, 10x vs 1x rows".into(),
                format!("{:.3} s", f.ours.secs_per_account()),
                format!("{:.3} s (1x)", c.ours.secs_per_account()),
                format!("{x:.2}x"),
                "<= 11x",
                yes_no(x <= 11.0),
            );
            let y = f.raw.secs_per_account() / c.raw.secs_per_account();
            push(
                "(f) raw DELETE time per account, 10x vs 1x rows".into(),
                format!("{:.3} s", f.raw.secs_per_account()),
                format!("{:.3} s (1x)", c.raw.secs_per_account()),
                format!("{y:.2}x"),
                "— (reference)",
                dash(),
            );
        }
    }
}

fn render_table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| stack | measure | value | baseline | ratio | target | met? |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.stack, r.measure, r.value, r.baseline, r.ratio, r.target, r.met
        );
    }
    out
}

fn debug_rows(rows: &[deletion_request::Model]) {
    let mut sorted = rows.to_vec();
    sorted.sort_by_key(|r| r.requested_at);
    let t0 = sorted.first().map(|r| r.requested_at);
    for r in &sorted {
        let d = |a: Option<chrono::DateTime<chrono::Utc>>| {
            a.zip(t0).map_or(-1, |(a, t)| (a - t).num_milliseconds())
        };
        eprintln!(
            "DBG req {} start {} purged {} email {} done {} attempts {}",
            d(Some(r.requested_at)),
            d(r.purge_started_at),
            d(r.purged_at),
            d(r.email_sent_at),
            d(r.completed_at),
            r.attempts
        );
    }
}
