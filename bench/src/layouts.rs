//! (o) = issue 13's scale item, second half: the server stack as separate processes, 2 API +
//! 3 worker processes against 1 + 1, on the same PostgreSQL and Redis: complete deletions/s.
//!
//! Each deletion is asked for over HTTP (`POST /api/v1/me/deletion`, the account holder's own
//! button, round-robin over the API processes) by `CONNS` clients at once, each with a session
//! opened beforehand; timed from the first request to the last completion. The layouts
//! alternate over two rounds. What names the bottleneck, measured over each run: the CPU
//! time of the API processes, of the worker processes and of everything else (PostgreSQL,
//! Redis, this load generator) against the machine's, and what the database's active backends
//! wait on, sampled every 100 ms.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use erasure::{models::account, services::sessions};
use erasure_testkit::Process;
use futures::StreamExt;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Statement};

use crate::{
    app::{App, count_status, wait_completed},
    backlog::quiet_ctx,
    requests::insert_accounts,
    results::{Row, StackResults},
    stack::StackCtx,
};

/// HTTP clients asking at once.
const CONNS: usize = 16;
/// (API processes, worker processes).
const LAYOUTS: [(usize, usize); 2] = [(1, 1), (2, 3)];
/// Linux reports process CPU time in ticks of 1/100 s (USER_HZ) whatever the kernel's HZ.
const TICKS_PER_SEC: f64 = 100.0;

#[derive(Debug, Clone, Default)]
pub struct LayoutRun {
    pub apis: usize,
    pub workers: usize,
    pub deletions: u64,
    pub secs: f64,
    /// CPU seconds over the runs: the machine's busy time, the API and worker processes'.
    pub machine_cpu: f64,
    pub api_cpu: f64,
    pub worker_cpu: f64,
    /// Samples of the database's active backends, by what they waited on.
    pub waits: BTreeMap<String, u64>,
    pub samples: u64,
}

impl LayoutRun {
    pub fn rate(&self) -> f64 {
        self.deletions as f64 / self.secs
    }
    /// The database's active backends at once on average, by wait, most first.
    pub fn top_waits(&self, n: usize) -> String {
        let mut waits: Vec<_> = self.waits.iter().collect();
        waits.sort_by_key(|(_, count)| std::cmp::Reverse(**count));
        waits
            .iter()
            .take(n)
            .map(|(what, count)| format!("{what} {:.2}", **count as f64 / self.samples.max(1) as f64))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub async fn layouts(ctx: &StackCtx, deletions: u64) -> anyhow::Result<Vec<LayoutRun>> {
    let ctx = quiet_ctx(ctx);
    let app = App::start(&ctx, false, None).await?;
    let outcome = rounds(&ctx, &app, deletions).await;
    app.shutdown().await?;
    outcome
}

async fn rounds(ctx: &StackCtx, app: &App, deletions: u64) -> anyhow::Result<Vec<LayoutRun>> {
    let exe = std::env::current_exe()?;
    let half = deletions.div_ceil(2);
    let mut runs: Vec<LayoutRun> = LAYOUTS
        .iter()
        .map(|&(apis, workers)| LayoutRun {
            apis,
            workers,
            ..LayoutRun::default()
        })
        .collect();
    for round in 0..2 {
        for run in &mut runs {
            let prefix = format!("layout{round}a{}w{}n", run.apis, run.workers);
            one_run(ctx, app, &exe, &prefix, half, run).await?;
            eprintln!(
                "    {} API + {} workers, round {}: {:.1} deletions/s so far",
                run.apis,
                run.workers,
                round + 1,
                run.rate()
            );
        }
    }
    Ok(runs)
}

/// `n` deletions through `run`'s layout, added to its totals.
async fn one_run(
    ctx: &StackCtx,
    app: &App,
    exe: &std::path::Path,
    prefix: &str,
    n: u64,
    run: &mut LayoutRun,
) -> anyhow::Result<()> {
    insert_accounts(app, prefix, n, Some(1)).await?;
    let holders = sessions_for(app, prefix).await?;
    let apis = (0..run.apis)
        .map(|_| start(exe, &["serve", "--no-workers"], ctx, true))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let workers = (0..run.workers)
        .map(|_| start(exe, &["worker"], ctx, false))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // The workers' start-up (their first polls, the tree head) is not what is measured.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let addresses: Vec<String> = apis.iter().filter_map(Process::address).collect();
    let before = count_status(&app.probe, "completed").await?;
    let cpu_before = (machine_busy()?, cpu_of(&apis), cpu_of(&workers));
    let waits = Waits::default();
    let sampling = tokio::spawn(sample_waits(app.probe.clone(), waits.clone()));
    let t = Instant::now();
    ask(&addresses, &holders).await?;
    wait_completed(&app.probe, before + n, Duration::from_secs(1800)).await?;
    run.secs += t.elapsed().as_secs_f64();
    run.deletions += n;
    run.machine_cpu += machine_busy()? - cpu_before.0;
    run.api_cpu += cpu_of(&apis) - cpu_before.1;
    run.worker_cpu += cpu_of(&workers) - cpu_before.2;
    sampling.abort();
    {
        let (counts, samples) = &*waits.lock().unwrap_or_else(|p| p.into_inner());
        for (what, count) in counts {
            *run.waits.entry(what.clone()).or_default() += count;
        }
        run.samples += samples;
    }
    for mut process in apis.into_iter().chain(workers) {
        let status = process.terminate(Duration::from_secs(40))?;
        if !status.success() {
            bail!("a process exited {status}: {}", process.log());
        }
    }
    Ok(())
}

fn start(exe: &std::path::Path, args: &[&str], ctx: &StackCtx, http: bool) -> anyhow::Result<Process> {
    let mut full = vec![crate::AS_ERASURE];
    full.extend_from_slice(args);
    let mut vars: HashMap<String, String> = ctx.vars.clone();
    vars.insert("ERASURE_LOG__LEVEL".into(), "warn".into());
    Process::start(exe, &full, &vars, http)
}

/// A session and the email to type for each account whose vsee_id starts with `prefix`.
async fn sessions_for(app: &App, prefix: &str) -> anyhow::Result<Vec<(String, String)>> {
    let state = &app.state;
    let accounts = account::Entity::find()
        .filter(account::Column::VseeId.starts_with(prefix))
        .all(&state.db.conn)
        .await?;
    futures::stream::iter(accounts)
        .map(|a| async move {
            let token = sessions::start(&state.db, &*state.clock, a.id, chrono::Duration::hours(2))
                .await
                .map_err(crate::app::app_err)?;
            Ok::<_, anyhow::Error>((format!("{}={}", sessions::COOKIE, token.expose()), a.email))
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Every holder asks for their deletion, `CONNS` at a time, round-robin over `apis`.
async fn ask(apis: &[String], holders: &[(String, String)]) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONNS).build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let clients = (0..CONNS).map(|_| {
        let (client, next) = (client.clone(), next.clone());
        async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((cookie, email)) = holders.get(i) else {
                    return Ok::<_, anyhow::Error>(());
                };
                let api = &apis[i % apis.len()];
                let response = client
                    .post(format!("{api}/api/v1/me/deletion"))
                    .header(reqwest::header::COOKIE, cookie)
                    .json(&serde_json::json!({ "confirm_email": email }))
                    .send()
                    .await?;
                if !response.status().is_success() {
                    bail!(
                        "{}: {}",
                        response.status(),
                        response.text().await.unwrap_or_default()
                    );
                }
            }
        }
    });
    futures::future::try_join_all(clients).await?;
    Ok(())
}

/// Samples of the database's active backends by wait event, and the number of samples.
type Waits = Arc<std::sync::Mutex<(BTreeMap<String, u64>, u64)>>;

/// Counts the database's active backends by wait event into `waits`, every 100 ms until
/// aborted.
async fn sample_waits(probe: erasure::db::Database, waits: Waits) -> anyhow::Result<()> {
    let sql = "SELECT COALESCE(wait_event_type || ':' || wait_event, 'on CPU') AS what, COUNT(*) AS n \
               FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' \
               AND pid <> pg_backend_pid() GROUP BY 1";
    loop {
        let rows = probe
            .conn
            .query_all_raw(Statement::from_string(probe.conn.get_database_backend(), sql))
            .await?;
        let mut counted = Vec::with_capacity(rows.len());
        for row in rows {
            let n: i64 = row.try_get("", "n")?;
            counted.push((row.try_get::<String>("", "what")?, u64::try_from(n).unwrap_or(0)));
        }
        {
            let mut w = waits.lock().unwrap_or_else(|p| p.into_inner());
            for (what, n) in counted {
                *w.0.entry(what).or_insert(0) += n;
            }
            w.1 += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Busy CPU seconds of the whole machine since boot (every state but idle and iowait).
fn machine_busy() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().context("/proc/stat is empty")?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let busy: f64 = ticks
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    Ok(busy / TICKS_PER_SEC)
}

/// CPU seconds the processes have used so far (user and system).
fn cpu_of(processes: &[Process]) -> f64 {
    processes
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{}/stat", p.child.id())).ok())
        .filter_map(|stat| {
            // Fields after the command's closing parenthesis: utime and stime are 12th and 13th.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            Some((user + system) / TICKS_PER_SEC)
        })
        .sum()
}

pub fn rows(stack: &str, r: &StackResults, out: &mut Vec<Row>, notes: &mut Vec<String>) {
    let Some(runs) = &r.layouts else { return };
    let (Some(one), Some(many)) = (runs.first(), runs.last()) else {
        return;
    };
    out.push(Row {
        stack: stack.to_owned(),
        measure: format!(
            "(o) {} API + {} workers against {} + {}: deletions/s ({} each, over HTTP)",
            many.apis, many.workers, one.apis, one.workers, many.deletions
        ),
        value: format!("{:.1} /s", many.rate()),
        baseline: format!("{:.1} /s", one.rate()),
        ratio: format!("{:.3}x", many.rate() / one.rate()),
        target: "— (reported)".into(),
        met: "—".into(),
    });
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    for run in runs {
        let rest = run.machine_cpu - run.api_cpu - run.worker_cpu;
        notes.push(format!(
            "[{stack}] (o) {} API + {} workers: machine busy {:.0}% of {cores} cores; CPU s per 100 deletions: API {:.2}, workers {:.2}, the rest (PostgreSQL, Redis, load generator) {:.2}; database backends at once: {}",
            run.apis,
            run.workers,
            100.0 * run.machine_cpu / (cores * run.secs),
            100.0 * run.api_cpu / run.deletions as f64,
            100.0 * run.worker_cpu / run.deletions as f64,
            100.0 * rest / run.deletions as f64,
            run.top_waits(5)
        ));
    }
}
