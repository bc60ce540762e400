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
//! - (g) intake messages/s (webhook, ingest-email) against mail-parser's parse-only rate.
//! - (h) the staff queue page's p95 at 100,000 tickets against the bare SELECT of its rows.
//! - (i) the audit ledger at 1,000,000 entries: `audit verify` against raw HMAC-SHA256, the
//!   export's RSS, an inclusion proof, and the auditor's ledger page.
//! - (j) takeout of the (e)-sized account (RSS, rows/s against a paged SELECT to a file) and
//!   bulk deletion of 100,000 dormant accounts (requests/s against `open_request` in a loop,
//!   the queue's largest backlog while the workers drain).
//! - (k) crypto-shredding: profile reads and log-ins against the same reads without the vault,
//!   seeding and purging the (e)-sized account sealed against in clear, a rotation's keys/s.
//! - (l) complete deletions/s through the whole pipeline against a hand-written loop doing
//!   the same work with no queue (same rows, one email, one ledger entry); and one typical
//!   deletion's steps called directly, timed, beside one deletion at a time through the queue.
//! - (m) HTTP on loopback with the bench's own load generator: `GET /api/v1/me` and the
//!   deletion status page against a bare poem handler doing the same indexed SELECT, at a
//!   fixed offered rate and at saturation; log-in against raw argon2id verifications.
//! - (n) a backlog of 100,000 deletions opened while no worker runs, drained against the
//!   steady rate; this process's RSS and the queue's backlog sampled as it drains.
//! - (o) server stack only: 2 API + 3 worker processes against 1 + 1, deletions asked for
//!   over HTTP; the CPU time by process kind and the database's waits name the bottleneck.
//!
//! It reports; it does not assert: a missed target still exits 0 (a measurement that could
//! not run exits 1). With BENCH_DEBUG set, (b) and (d) also print each request's timeline.
//!
//! Modules: `cli` (arguments, sizes), `stack` (one stack's set-up, its PostgreSQL database and
//! Redis prefix from erasure-testkit), `sections` (running (a)–(f)), `app` (the application
//! in-process), `baseline` (raw apalis), `deletions`, `purge`, `latency`, `big`, `support`,
//! `pipeline` ((l)), `http` ((m), with its load generator), `backlog` ((n)), `layouts` ((o))
//! (the sections),
//! `results` and `table` (the report).

mod app;
mod audit;
mod backlog;
mod baseline;
mod big;
mod cli;
mod deletions;
mod http;
mod latency;
mod layouts;
mod pipeline;
mod purge;
mod requests;
mod results;
mod sections;
mod shredding;
mod stack;
mod support;
mod table;

use std::{process::ExitCode, time::Instant};

use anyhow::bail;
use clap::Parser;
use erasure_testkit::ServerUrls;

use crate::{
    big::seed_child,
    cli::{Args, Section, Sizes, StackArg},
    results::StackKind,
    stack::run_stack,
    table::{render_table, table_rows},
};

/// As the first argument: run the `erasure` command line with the arguments after it (the
/// same code as the binary). (o) starts its API and worker processes this way.
pub const AS_ERASURE: &str = "--as-erasure";

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some(AS_ERASURE) {
        let rest = std::env::args().skip(2);
        let cli = erasure::cli::Cli::parse_from(std::iter::once("erasure".to_owned()).chain(rest));
        return erasure::cli::run(cli).await;
    }
    let args = Args::parse();
    if args.ingest_child {
        return erasure::cli::run(erasure::cli::Cli::parse_from(["erasure", "ingest-email"])).await;
    }
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
        (Some(db), Some(redis)) if !db.is_empty() && !redis.is_empty() => Some(ServerUrls {
            database: db.clone(),
            redis: redis.clone(),
        }),
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
            Section::G,
            Section::H,
            Section::I,
            Section::J,
            Section::K,
            Section::L,
            Section::M,
            Section::N,
            Section::O,
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
         account row; accounts alternate between purge::run and the baseline, and the WAL is \
         checkpointed (untimed, on SQLite) before each, for both."
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
