//! Outages, measured: real `erasure` processes (production environment) against servers of
//! the test's own (`servers`), which the tests kill, cut off and bring back. Each test prints
//! its figures. Server stack only: the embedded stack has no dependency to lose.

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use erasure::{
    domain::{Actor, Channel},
    services::deletion,
};
use futures::StreamExt;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::{helpers::*, servers::*};

/// The longest a client waits for an answer in these tests: anything slower is a hang.
const PATIENCE: Duration = Duration::from_secs(5);

const COMPLETED: &str = "SELECT COUNT(*) FROM deletion_requests WHERE status = 'completed'";

/// The server key the test's state generated, shared with the production processes.
/// The test's variables for `erasure` processes of the production environment, with crash
/// redelivery quick enough for a test (a silent worker is presumed dead after 2 s).
fn production_vars(app: &TestApp, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut vars = app.vars.clone();
    vars.extend(app.production_key_vars());
    for (k, v) in [
        ("ERASURE_ENV", "production"),
        ("ERASURE_SERVER__ADDR", "127.0.0.1:0"),
        ("ERASURE_QUEUE__HEARTBEAT_INTERVAL_SECS", "1"),
        ("ERASURE_QUEUE__MISSED_HEARTBEATS", "2"),
    ]
    .iter()
    .chain(extra)
    {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    vars
}

/// Seeds `n` small accounts `{prefix}{i:03}` / `{prefix}{i:03}@example.org`.
async fn seed_accounts(app: &TestApp, prefix: &str, n: usize) {
    futures::stream::iter(0..n)
        .for_each_concurrent(4, |i| async move {
            app.seed_small(&format!("{prefix}{i:03}"), &format!("{prefix}{i:03}@example.org"))
                .await;
        })
        .await;
}

async fn account_model(app: &TestApp, vsee_id: &str) -> erasure::models::account::Model {
    let id = erasure::domain::VseeId::parse(vsee_id).unwrap();
    erasure::services::accounts::find_by_vsee_id(app.state.env(), &id)
        .await
        .unwrap()
        .unwrap()
}

/// Opens the deletions of `{prefix}{i:03}` for `i` in `range` as the API would, for the
/// processes' relays to pick up.
async fn open_deletions(app: &TestApp, prefix: &str, range: std::ops::Range<usize>) {
    futures::stream::iter(range)
        .for_each_concurrent(8, |i| async move {
            let account = account_model(app, &format!("{prefix}{i:03}")).await;
            deletion::open_request(
                app.state.env(),
                &app.state.keys,
                &account,
                Actor::AccountHolder,
                Channel::Api,
            )
            .await
            .unwrap();
        })
        .await;
}

/// A client with a cookie jar that gives up after `timeout`. It reuses a connection only
/// while the server surely keeps it: the server closes one idle for its header-read timeout
/// (10 s), and a request sent on it just then fails for reasons no outage has a part in.
fn client(timeout: Duration) -> Client {
    Client::builder()
        .cookie_store(true)
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(4))
        .build()
        .unwrap()
}

/// A client logged in to `vsee_id` on `base`.
async fn logged_in(base: &str, vsee_id: &str) -> Client {
    let client = client(Duration::from_secs(30));
    let r = client
        .post(format!("{base}/api/v1/sessions"))
        .json(&json!({ "vsee_id": vsee_id, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "log-in of {vsee_id}");
    client
}

/// Clients logged in to `{prefix}000` … `{prefix}{n-1}`, in that order.
async fn log_in_all(base: &str, prefix: &str, n: usize) -> Vec<Client> {
    futures::stream::iter(0..n)
        .map(|i| async move { logged_in(base, &format!("{prefix}{i:03}")).await })
        .buffered(8)
        .collect()
        .await
}

/// Sends `request` (giving up after `PATIENCE`) and measures how long the answer took.
async fn timed(request: reqwest::RequestBuilder) -> (Result<reqwest::Response, reqwest::Error>, Duration) {
    let started = Instant::now();
    let outcome = request.timeout(PATIENCE).send().await;
    (outcome, started.elapsed())
}

/// One answer of the API: to what, its status ("timeout" when there was none within
/// `PATIENCE`), whether it said Retry-After, and how long it took.
#[derive(Debug, Clone)]
struct Answer {
    what: String,
    status: String,
    retry_after: bool,
    elapsed: Duration,
}

/// Every answer the API gave while a dependency was away.
#[derive(Debug, Default)]
struct Tally {
    answers: Vec<Answer>,
}

impl Tally {
    fn record(&mut self, what: &str, outcome: &Result<reqwest::Response, reqwest::Error>, elapsed: Duration) {
        let (status, retry_after) = match outcome {
            Ok(r) => (
                r.status().as_u16().to_string(),
                r.headers().contains_key("retry-after"),
            ),
            Err(e) if e.is_timeout() => ("timeout".to_owned(), false),
            Err(e) => (
                format!("no answer ({e}: {:?})", std::error::Error::source(e)),
                false,
            ),
        };
        self.answers.push(Answer {
            what: what.to_owned(),
            status,
            retry_after,
            elapsed,
        });
    }

    fn to(&self, what: &str) -> impl Iterator<Item = &Answer> {
        self.answers.iter().filter(move |a| a.what == what)
    }

    fn count(&self, status: &str) -> usize {
        self.answers.iter().filter(|a| a.status == status).count()
    }

    fn slowest(&self) -> Duration {
        self.answers.iter().map(|a| a.elapsed).max().unwrap_or_default()
    }

    /// "what: 200 x3, 503 x2 (max 12 ms)" for each endpoint.
    fn summary(&self) -> String {
        let mut by_what: BTreeMap<&str, (BTreeMap<&str, usize>, Duration)> = BTreeMap::new();
        for a in &self.answers {
            let entry = by_what.entry(&a.what).or_default();
            *entry.0.entry(&a.status).or_default() += 1;
            entry.1 = entry.1.max(a.elapsed);
        }
        by_what
            .iter()
            .map(|(what, (statuses, max))| {
                let statuses: Vec<String> = statuses.iter().map(|(s, n)| format!("{s} x{n}")).collect();
                format!("{what}: {} (max {} ms)", statuses.join(", "), max.as_millis())
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Never a 500 (nor any server error but 503), never a hang or a dropped connection; every
    /// 503 of the API says when to retry.
    fn assert_no_500_no_hang(&self) {
        for a in &self.answers {
            let is_status = a.status.parse::<u16>().is_ok();
            assert!(
                is_status && (!a.status.starts_with('5') || a.status == "503"),
                "{} answered {} after {:?}\n{}",
                a.what,
                a.status,
                a.elapsed,
                self.summary()
            );
            if a.status == "503" && a.what.starts_with("/api/") {
                assert!(a.retry_after, "{} answered 503 without Retry-After", a.what);
            }
        }
    }
}

/// Asks the API, round after round until `stop`, what clients and probes ask: readiness,
/// health, metrics, the profile, a log-in and a deletion's status. A round's requests go out
/// together, so a slow answer hides no other.
async fn probe_until(
    base: String,
    watcher: (String, Client),
    receipt: String,
    stop: tokio_util::sync::CancellationToken,
) -> Tally {
    let mut tally = Tally::default();
    let (watcher_id, me) = watcher;
    let anonymous = client(PATIENCE);
    while !stop.is_cancelled() {
        let log_in = json!({ "vsee_id": watcher_id, "password": PASSWORD });
        let requests = [
            ("/readyz", anonymous.get(format!("{base}/readyz"))),
            ("/healthz", anonymous.get(format!("{base}/healthz"))),
            ("/metrics", anonymous.get(format!("{base}/metrics"))),
            ("/api/v1/me", me.get(format!("{base}/api/v1/me"))),
            (
                "/api/v1/sessions",
                anonymous.post(format!("{base}/api/v1/sessions")).json(&log_in),
            ),
            (
                "/api/v1/deletions/{receipt}",
                anonymous.get(format!("{base}/api/v1/deletions/{receipt}")),
            ),
        ];
        let answers = futures::future::join_all(
            requests
                .into_iter()
                .map(|(what, request)| async move { (what, timed(request).await) }),
        )
        .await;
        for (what, (outcome, elapsed)) in answers {
            tally.record(what, &outcome, elapsed);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tally
}

/// Deletions asked through the API: every answer, and the receipt of each accepted one by
/// account number.
struct Asked {
    tally: Tally,
    receipts: BTreeMap<usize, Option<String>>,
}

/// Asks for the deletions of `{prefix}{i:03}` for `i` in `range`, each through its logged-in
/// client.
async fn ask_deletions(clients: &[Client], base: &str, prefix: &str, range: std::ops::Range<usize>) -> Asked {
    let answers: Vec<(usize, Tally, Option<String>)> = futures::stream::iter(range)
        .map(|i| async move {
            let request = clients[i]
                .post(format!("{base}/api/v1/me/deletion"))
                .json(&json!({ "confirm_email": format!("{prefix}{i:03}@example.org") }));
            let (outcome, elapsed) = timed(request).await;
            let mut tally = Tally::default();
            tally.record("/api/v1/me/deletion", &outcome, elapsed);
            let receipt = match outcome {
                Ok(r) if r.status() == StatusCode::ACCEPTED => {
                    let body: Value = r.json().await.unwrap();
                    Some(body["receipt_id"].as_str().unwrap().to_owned())
                }
                _ => None,
            };
            (i, tally, receipt)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut asked = Asked {
        tally: Tally::default(),
        receipts: BTreeMap::new(),
    };
    for (i, tally, receipt) in answers {
        asked.tally.answers.extend(tally.answers);
        asked.receipts.insert(i, receipt);
    }
    asked
}

/// Waits until `base` says it is ready; returns how long that took.
async fn ready_again(base: &str, within: Duration) -> Duration {
    let started = Instant::now();
    let probe = client(PATIENCE);
    eventually("/readyz 200 again", within, || async {
        let r = probe.get(format!("{base}/readyz")).send().await.ok()?;
        (r.status() == StatusCode::OK).then_some(())
    })
    .await;
    started.elapsed()
}

/// Waits until at least `n` deletions have completed.
async fn completed_at_least(app: &TestApp, n: i64) {
    eventually(
        &format!("{n} deletions completed"),
        Duration::from_secs(60),
        || async { (app.count(COMPLETED).await >= n).then_some(()) },
    )
    .await;
}

/// Polls until `sql` (a COUNT) reaches `target`; returns how long that took.
async fn time_until(app: &TestApp, sql: &str, target: i64, within: Duration) -> Duration {
    let started = Instant::now();
    app.wait_for_count(sql, target, within).await;
    started.elapsed()
}

/// For each deletion request whose `column` (a timestamp) is set, how many seconds after `t0`
/// it lies, sorted.
async fn seconds_after(app: &TestApp, t0: chrono::DateTime<chrono::Utc>, column: &str) -> Vec<f64> {
    let mut after: Vec<f64> = app
        .strings(&format!(
            "SELECT (EXTRACT(EPOCH FROM {column}) * 1000)::bigint::text FROM deletion_requests \
             WHERE {column} IS NOT NULL"
        ))
        .await
        .iter()
        .map(|ms| (ms.parse::<i64>().unwrap() - t0.timestamp_millis()) as f64 / 1000.0)
        .collect();
    after.sort_by(f64::total_cmp);
    after
}

/// The recipient (`To:`) of every email the test's SMTP server received.
fn received(app: &TestApp) -> Vec<String> {
    app.outbox_files()
        .iter()
        .filter_map(|(_, eml)| {
            eml.lines()
                .find_map(|l| l.strip_prefix("To: "))
                .map(str::to_owned)
        })
        .collect()
}

/// (recipients with exactly one email, recipients with more than one)
fn emails_per_recipient(recipients: &[String]) -> (usize, usize) {
    let mut per: BTreeMap<&str, usize> = BTreeMap::new();
    for r in recipients {
        *per.entry(r.as_str()).or_default() += 1;
    }
    (
        per.values().filter(|n| **n == 1).count(),
        per.values().filter(|n| **n > 1).count(),
    )
}

/// Exact counts (nothing purged twice, nothing left), one ledger entry each, nothing dead, and
/// a chain that verifies.
async fn assert_every_deletion_done_once(app: &TestApp, prefix: &str, n: i64) {
    assert_eq!(app.count(COMPLETED).await, n);
    assert_eq!(app.count("SELECT COUNT(*) FROM deletion_requests").await, n);
    assert_eq!(
        app.count("SELECT COUNT(DISTINCT request_id) FROM ledger_entries")
            .await,
        n,
        "a ledger entry for every deletion"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM ledger_entries").await,
        n,
        "exactly one ledger entry each"
    );
    assert_eq!(app.accounts_named(prefix).await.len(), 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM dead_jobs WHERE retried_at IS NULL")
            .await,
        0
    );
    for counts in app.strings("SELECT store_counts FROM deletion_requests").await {
        let counts: Value = serde_json::from_str(&counts).unwrap();
        assert_eq!(counts["messages"], 20, "every message counted once: {counts}");
        assert_eq!(counts["accounts"], 1, "{counts}");
    }
    let out = app.cli(&["audit", "verify"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{n} entries")));
}

/// The `fields` of each JSON log line whose message is `message`.
fn log_events(log: &str, message: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["message"] == message)
        .map(|v| v["fields"].clone())
        .collect()
}

fn count_events(processes: &[Process], message: &str) -> usize {
    processes
        .iter()
        .map(|p| log_events(&p.log(), message).len())
        .sum()
}

/// Every error a process logged names its cause: never a bare "internal error", as the relay
/// logged during a Redis outage before (responses hide causes; logs must not).
fn assert_causes_logged(processes: &[Process]) {
    for process in processes {
        for line in process.log().lines() {
            let Ok(event) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let Some(error) = event["fields"]["error"].as_str() else {
                continue;
            };
            let cause = error
                .trim()
                .trim_start_matches("internal error")
                .trim_start_matches("a dependency is unavailable")
                .trim_start_matches(':')
                .trim();
            assert!(!cause.is_empty(), "an error logged without its cause: {line}");
        }
    }
}

/// None of `processes` died of the outage, and each stops cleanly on SIGTERM.
fn assert_alive_then_stop(processes: &mut [Process]) {
    for process in processes.iter_mut() {
        assert!(
            process.child.try_wait().unwrap().is_none(),
            "a process died: {}",
            process.log()
        );
    }
    for process in processes {
        let status = process.terminate(Duration::from_secs(40));
        assert!(
            status.success(),
            "exit after SIGTERM: {status:?}\n{}",
            process.log()
        );
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Redis killed (SIGKILL) for 30 s while 200 deletions are in flight, then started again on
/// its append-only file. The API keeps taking deletions (the outbox holds them) and answers
/// everything that needs no queue as usual; what needs the queue (`/readyz`, `/metrics`)
/// answers 503 within a second; never a 500 or a hang. Once Redis is back, every deletion
/// completes exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_for_30_s_under_200_deletions_loses_and_duplicates_nothing() {
    if server_urls().is_none() {
        return;
    }
    const ACCOUNTS: usize = 200;
    const BEFORE: usize = 150;
    const OUTAGE: Duration = Duration::from_secs(30);
    let test_started = Instant::now();
    let mut redis = RedisServer::start(Persistence::Aof);
    let app = spawn_state_only(Stack::Server, &[("ERASURE_QUEUE__URL", &redis.url())]).await;
    seed_accounts(&app, "rds", ACCOUNTS).await;
    app.seed_small("watcher1", "watcher1@example.org").await;
    let vars = production_vars(&app, &[]);
    let mut processes = vec![Process::start(&["serve", "--no-workers"], &vars, true)];
    processes.extend((0..2).map(|_| Process::start(&["worker"], &vars, false)));
    let base = processes[0].address();
    let clients = log_in_all(&base, "rds", ACCOUNTS).await;
    let watcher = ("watcher1".to_owned(), logged_in(&base, "watcher1").await);

    let before = ask_deletions(&clients, &base, "rds", 0..BEFORE).await;
    assert_eq!(before.tally.count("202"), BEFORE, "{}", before.tally.summary());
    let receipt = before.receipts[&0].clone().unwrap();
    // Killed with deletions at every step: some done, some purging, some mailing, most waiting.
    completed_at_least(&app, 20).await;
    let completed_at_kill = app.count(COMPLETED).await;
    let kill_time = chrono::Utc::now().to_rfc3339();
    redis.kill();
    let killed = Instant::now();
    let stop = tokio_util::sync::CancellationToken::new();
    let prober = tokio::spawn(probe_until(base.clone(), watcher, receipt, stop.clone()));
    let during = ask_deletions(&clients, &base, "rds", BEFORE..ACCOUNTS)
        .await
        .tally;
    tokio::time::sleep(OUTAGE.saturating_sub(killed.elapsed())).await;
    stop.cancel();
    let probes = prober.await.unwrap();
    let waiting_at_return = ACCOUNTS as i64 - app.count(COMPLETED).await;
    redis.restart();
    let outage = killed.elapsed();

    // Deletions are accepted whatever the queue does: the outbox holds them.
    during.assert_no_500_no_hang();
    assert_eq!(during.count("202"), ACCOUNTS - BEFORE, "{}", during.summary());
    probes.assert_no_500_no_hang();
    for a in &probes.answers {
        match a.what.as_str() {
            "/readyz" => {
                assert_eq!(a.status, "503", "{a:?}");
                assert!(a.elapsed < Duration::from_secs(1), "{a:?}");
            }
            "/metrics" => assert_eq!(a.status, "503", "{a:?}"),
            _ => assert!(a.status.starts_with('2'), "needs no queue, yet: {a:?}"),
        }
    }

    let asked_during = format!("{COMPLETED} AND requested_at >= '{kill_time}'");
    let during_done = time_until(
        &app,
        &asked_during,
        (ACCOUNTS - BEFORE) as i64,
        Duration::from_secs(120),
    )
    .await;
    let all_done = during_done + time_until(&app, COMPLETED, ACCOUNTS as i64, Duration::from_secs(120)).await;
    ready_again(&base, Duration::from_secs(10)).await;
    assert_every_deletion_done_once(&app, "rds", ACCOUNTS as i64).await;
    let (once, more) = emails_per_recipient(&received(&app));
    assert_eq!((once, more), (ACCOUNTS, 0), "one confirmation email each");

    // The relay noticed, and said why.
    let relay_failures = log_events(&processes[0].log(), "outbox relay pass failed");
    assert!(!relay_failures.is_empty(), "the relay never noticed the outage");
    assert_causes_logged(&processes);
    let restarts = count_events(&processes, "worker failed; restarting it");
    assert_alive_then_stop(&mut processes);
    figure!(
        "redis outage (kill -9, AOF): {ACCOUNTS} deletions, {BEFORE} asked before the kill \
         ({completed_at_kill} completed by then), {} asked during the {} outage (all 202); \
         {waiting_at_return} not completed when Redis returned; 0 lost, 0 duplicated (one \
         ledger entry and one email each); those asked during the outage completed {} after \
         Redis returned, all {ACCOUNTS} {} after; API during the outage: {} x 500, {} hangs, \
         slowest answer {} ms [{}]; relay failures logged: {} (e.g. {}); worker restarts: \
         {restarts}; test took {}",
        ACCOUNTS - BEFORE,
        secs(outage),
        secs(during_done),
        secs(all_done),
        probes.count("500") + during.count("500"),
        probes.count("timeout") + during.count("timeout"),
        probes.slowest().max(during.slowest()).as_millis(),
        probes.summary(),
        relay_failures.len(),
        relay_failures[0]["error"],
        secs(test_started.elapsed()),
    );
}

/// Redis killed and started again empty (no persistence): every job it held is gone, and so
/// are the idempotency keys. The outbox still knows which step was sent when; the watchdog
/// sends again each step not done `queue.stall_after_secs` after it was sent, and every
/// deletion completes exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_the_watchdog_sends_the_lost_steps_again() {
    if server_urls().is_none() {
        return;
    }
    const ACCOUNTS: usize = 60;
    const STALL_AFTER_SECS: &str = "5";
    let test_started = Instant::now();
    let mut redis = RedisServer::start(Persistence::None);
    let app = spawn_state_only(Stack::Server, &[("ERASURE_QUEUE__URL", &redis.url())]).await;
    seed_accounts(&app, "lost", ACCOUNTS).await;
    let vars = production_vars(
        &app,
        &[
            ("ERASURE_QUEUE__STALL_AFTER_SECS", STALL_AFTER_SECS),
            ("ERASURE_QUEUE__VACUUM_INTERVAL_SECS", "1"),
        ],
    );
    let mut processes: Vec<Process> = (0..2)
        .map(|_| Process::start(&["worker"], &vars, false))
        .collect();
    open_deletions(&app, "lost", 0..ACCOUNTS).await;
    completed_at_least(&app, 10).await;
    let completed_at_kill = app.count(COMPLETED).await;
    redis.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.restart();
    let all_done = time_until(&app, COMPLETED, ACCOUNTS as i64, Duration::from_secs(120)).await;

    assert_every_deletion_done_once(&app, "lost", ACCOUNTS as i64).await;
    let (once, more) = emails_per_recipient(&received(&app));
    assert_eq!((once, more), (ACCOUNTS, 0), "one confirmation email each");
    let resent = count_events(&processes, "step sent long ago and not done: sending it again");
    assert!(resent > 0, "nothing was sent again, yet Redis lost its jobs");
    assert_causes_logged(&processes);
    assert_alive_then_stop(&mut processes);
    figure!(
        "redis restarted empty (3 s down, no persistence): {ACCOUNTS} deletions \
         ({completed_at_kill} completed before the kill), 0 lost, 0 duplicated; {resent} steps \
         sent again by the watchdogs of 2 workers (stall_after {STALL_AFTER_SECS} s, checked \
         every 1 s); all completed {} after Redis returned; test took {}",
        secs(all_done),
        secs(test_started.elapsed()),
    );
}

/// SMTP down: the purge does not wait for it and is not rolled back; the confirmation is
/// retried on its backoff and sent once when the server is back. An outage longer than the
/// retry budget leaves the email step dead (the purge still stands) until `erasure jobs retry`,
/// which then sends it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_mail_goes_once_after_it_returns_and_the_purge_stands() {
    if server_urls().is_none() {
        return;
    }
    const FIRST: usize = 10;
    const SECOND: usize = 5;
    let test_started = Instant::now();
    let mail = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(mail.path());
    let smtp = Forwarder::start(([127, 0, 0, 1], sink.port).into()).await;
    let mail_url = format!("smtp://127.0.0.1:{}", smtp.port);
    let app = spawn_state_only(Stack::Server, &[("ERASURE_MAIL__URL", &mail_url)]).await;
    seed_accounts(&app, "smtp", FIRST + SECOND).await;
    let purged_not_sent = "SELECT COUNT(*) FROM deletion_requests WHERE purged_at IS NOT NULL \
                           AND store_counts IS NOT NULL AND email_sent_at IS NULL";

    // Within the retry budget (the default backoff: 1 s doubling, 5 attempts, about 15 s).
    let mut worker = Process::start(&["worker"], &production_vars(&app, &[]), false);
    smtp.set(Link::Refused);
    let down = Instant::now();
    open_deletions(&app, "smtp", 0..FIRST).await;
    app.wait_for_count(purged_not_sent, FIRST as i64, Duration::from_secs(30))
        .await;
    let purge_took = down.elapsed();
    // The purge stands while mail cannot go: the accounts and their data are gone.
    assert_eq!(app.accounts_named("smtp").await.len(), SECOND);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM deletion_requests WHERE status = 'purged'")
            .await,
        FIRST as i64
    );
    tokio::time::sleep(Duration::from_secs(4).saturating_sub(down.elapsed())).await;
    let errors = app
        .strings("SELECT last_error FROM deletion_requests WHERE last_error IS NOT NULL")
        .await;
    assert!(!errors.is_empty(), "no failed attempt recorded: {}", worker.log());
    assert!(
        errors.iter().all(|e| e.to_lowercase().contains("connect")),
        "the cause is kept: {errors:?}"
    );
    assert!(sink.recipients().is_empty());
    let outage = down.elapsed();
    smtp.set(Link::Up);
    let first_sent = time_until(&app, COMPLETED, FIRST as i64, Duration::from_secs(30)).await;
    let (once, more) = emails_per_recipient(&sink.recipients());
    assert_eq!((once, more), (FIRST, 0), "one email each, after the outage");
    assert_eq!(app.count("SELECT COUNT(*) FROM dead_jobs").await, 0);
    assert_causes_logged(std::slice::from_ref(&worker));
    assert_alive_then_stop(std::slice::from_mut(&mut worker));

    // Longer than the retry budget (3 attempts 0.2 s apart here): the step dies, the request
    // shows `failed`, and the purge still stands.
    let vars = production_vars(
        &app,
        &[
            ("ERASURE_QUEUE__MAX_ATTEMPTS", "3"),
            ("ERASURE_QUEUE__RETRY_BACKOFF_MS", "200"),
        ],
    );
    let mut worker = Process::start(&["worker"], &vars, false);
    smtp.set(Link::Refused);
    open_deletions(&app, "smtp", FIRST..FIRST + SECOND).await;
    app.wait_for_count(
        "SELECT COUNT(*) FROM deletion_requests WHERE status = 'failed'",
        SECOND as i64,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        app.accounts_named("smtp").await.len(),
        0,
        "the purge is not rolled back"
    );
    assert_eq!(app.count(purged_not_sent).await, SECOND as i64);
    let out = app.cli(&["jobs", "dead"]);
    let dead = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(dead.lines().count(), SECOND, "{dead}");
    for line in dead.lines() {
        assert!(line.contains("confirmation_email"), "{line}");
        // The cause is kept where the operator looks.
        assert!(line.to_lowercase().contains("connect"), "{line}");
    }
    smtp.set(Link::Up);
    let retried = Instant::now();
    for line in dead.lines() {
        let id = line.split('\t').next().unwrap();
        let out = app.cli(&["jobs", "retry", id]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    app.wait_for_count(COMPLETED, (FIRST + SECOND) as i64, Duration::from_secs(30))
        .await;
    let second_sent = retried.elapsed();
    let (once, more) = emails_per_recipient(&sink.recipients());
    assert_eq!((once, more), (FIRST + SECOND, 0), "one email each");
    assert_every_deletion_done_once(&app, "smtp", (FIRST + SECOND) as i64).await;
    assert_causes_logged(std::slice::from_ref(&worker));
    assert_alive_then_stop(std::slice::from_mut(&mut worker));
    figure!(
        "smtp outage: {FIRST} deletions purged in {} while SMTP refused connections (not rolled \
         back); SMTP back after {}: all {FIRST} emails sent once, {} after it returned (the next \
         attempt of the 1 s doubling backoff); an outage past the retry budget: {SECOND} email \
         steps dead, requests `failed` with the purge standing, each sent once {} after `erasure \
         jobs retry`; 0 duplicated; test took {}",
        secs(purge_took),
        secs(outage),
        secs(first_sent),
        secs(second_sent),
        secs(test_started.elapsed()),
    );
}

/// PostgreSQL crashes (`pg_ctl stop -m immediate`) with deletions in flight and stays down for
/// 10 s: `/readyz` says 503 within a second, requests get 503 with Retry-After (never 500,
/// never a hang), nothing is half-written (a refused deletion leaves the account as it was),
/// and once it is back the relay and the workers resume by themselves: every deletion
/// completes exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_answers_503_writes_nothing_by_halves_and_the_relay_resumes() {
    if server_urls().is_none() {
        return;
    }
    const ACCOUNTS: usize = 40;
    const BEFORE: usize = 20;
    const OUTAGE: Duration = Duration::from_secs(10);
    let test_started = Instant::now();
    let mut pg = PostgresServer::start();
    let app = spawn_state_only(Stack::Server, &[("ERASURE_DATABASE__URL", &pg.url())]).await;
    seed_accounts(&app, "pgd", ACCOUNTS).await;
    app.seed_small("watcher1", "watcher1@example.org").await;
    // The watchdog looks every second, with its default patience (15 min): whatever it sends
    // again within this test, the queue really lost.
    let vars = production_vars(&app, &[("ERASURE_QUEUE__VACUUM_INTERVAL_SECS", "1")]);
    let mut processes = vec![
        Process::start(&["serve", "--no-workers"], &vars, true),
        Process::start(&["worker"], &vars, false),
    ];
    let base = processes[0].address();
    let clients = log_in_all(&base, "pgd", ACCOUNTS).await;
    let watcher = ("watcher1".to_owned(), logged_in(&base, "watcher1").await);

    let before = ask_deletions(&clients, &base, "pgd", 0..BEFORE).await;
    assert_eq!(before.tally.count("202"), BEFORE, "{}", before.tally.summary());
    let receipt = before.receipts[&0].clone().unwrap();
    completed_at_least(&app, 5).await;
    let completed_at_crash = app.count(COMPLETED).await;
    pg.crash();
    let crashed = Instant::now();
    let stop = tokio_util::sync::CancellationToken::new();
    let prober = tokio::spawn(probe_until(base.clone(), watcher, receipt, stop.clone()));
    let during = ask_deletions(&clients, &base, "pgd", BEFORE..ACCOUNTS).await;
    tokio::time::sleep(OUTAGE.saturating_sub(crashed.elapsed())).await;
    stop.cancel();
    let probes = prober.await.unwrap();
    pg.restart();
    let outage = crashed.elapsed();
    let restarted_at = chrono::Utc::now();
    let ready = ready_again(&base, Duration::from_secs(30)).await;

    during.tally.assert_no_500_no_hang();
    probes.assert_no_500_no_hang();
    assert_eq!(
        during.tally.count("503"),
        ACCOUNTS - BEFORE,
        "{}",
        during.tally.summary()
    );
    for a in &probes.answers {
        match a.what.as_str() {
            "/healthz" => assert_eq!(a.status, "200"),
            "/readyz" => {
                assert_eq!(a.status, "503", "{a:?}");
                assert!(a.elapsed < Duration::from_secs(1), "{a:?}");
            }
            _ => assert_eq!(a.status, "503", "{a:?}"),
        }
    }

    // Nothing by halves: each deletion is all there (request, locked account, outbox row) or
    // not at all (the account untouched, its session still valid).
    assert_eq!(
        app.count("SELECT COUNT(*) FROM deletion_requests").await,
        BEFORE as i64
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM deletion_requests r WHERE NOT EXISTS \
             (SELECT 1 FROM outbox o WHERE o.request_id = r.id AND o.job_kind = 'purge')"
        )
        .await,
        0
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM accounts a WHERE a.status <> 'active' AND NOT EXISTS \
             (SELECT 1 FROM deletion_requests r WHERE r.account_id = a.id)"
        )
        .await,
        0
    );
    for (i, receipt) in &during.receipts {
        assert!(receipt.is_none());
        let r = clients[*i].get(format!("{base}/api/v1/me")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "the session of pgd{i:03} survives");
    }
    let again = ask_deletions(&clients, &base, "pgd", BEFORE..ACCOUNTS).await;
    assert_eq!(again.tally.count("202"), ACCOUNTS - BEFORE);
    // A confirmation being sent when the database went away may have reached the mail server:
    // it is not sent again, and its deletion completes once the send's lease (60 s) runs out.
    app.wait_for_count(COMPLETED, ACCOUNTS as i64, Duration::from_secs(120))
        .await;
    let after = seconds_after(&app, restarted_at, "completed_at").await;
    let cut_off = app
        .count("SELECT COUNT(*) FROM deletion_requests WHERE email_sent_at IS NULL")
        .await;
    assert_every_deletion_done_once(&app, "pgd", ACCOUNTS as i64).await;
    let (once, more) = emails_per_recipient(&received(&app));
    assert_eq!(more, 0, "at most one confirmation email each");

    // The logs say why requests were refused and why the relay paused.
    let mut causes = Vec::new();
    for process in &processes {
        for message in ["outbox relay pass failed", "dependency unavailable"] {
            causes.extend(
                log_events(&process.log(), message)
                    .iter()
                    .map(|e| e["error"].as_str().unwrap_or_default().to_owned()),
            );
        }
    }
    assert!(!causes.is_empty(), "nothing logged the outage");
    assert_causes_logged(&processes);
    let resent = count_events(&processes, "step sent long ago and not done: sending it again");
    assert_alive_then_stop(&mut processes);
    figure!(
        "postgres outage (immediate stop, {}): {BEFORE} deletions in flight ({completed_at_crash} \
         completed before), {} asked during it: {} x 503 with Retry-After, none half-written; \
         API: {} x 500, {} hangs, slowest answer {} ms [{}]; /readyz 200 again {} after the \
         restart; all {ACCOUNTS} completed exactly once, half within {:.1} s of the restart, the \
         last after {:.1} s ({cut_off} confirmations cut off mid-send and not sent again; {once} \
         emails received, none twice); {resent} steps sent again by the watchdog; causes logged: \
         {} (e.g. {:?}); test took {}",
        secs(outage),
        ACCOUNTS - BEFORE,
        during.tally.count("503"),
        probes.count("500") + during.tally.count("500"),
        probes.count("timeout") + during.tally.count("timeout"),
        probes.slowest().max(during.tally.slowest()).as_millis(),
        probes.summary(),
        secs(ready),
        after[after.len() / 2],
        after[after.len() - 1],
        causes.len(),
        causes[0],
        secs(test_started.elapsed()),
    );
}

/// `url` with its host and port replaced by a forwarder's.
fn through(url: &str, forwarder: &Forwarder) -> String {
    let mut url = url::Url::parse(url).unwrap();
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(forwarder.port)).unwrap();
    url.to_string()
}

/// The loopback address a server URL names.
fn socket_of(url: &str, default_port: u16) -> std::net::SocketAddr {
    let url = url::Url::parse(url).unwrap();
    let host = match url.host_str() {
        None | Some("localhost") => "127.0.0.1",
        Some(host) => host,
    };
    format!("{host}:{}", url.port().unwrap_or(default_port))
        .parse()
        .unwrap()
}

/// `/readyz` answers within a second whatever a dependency does: refuses connections, or
/// accepts them and never answers (a network partition), Redis and PostgreSQL alike. The rest
/// of the API never answers 500 nor hangs meanwhile, and all is ready again once the network
/// is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_within_a_second_whatever_a_dependency_does() {
    if server_urls().is_none() {
        return;
    }
    let test_started = Instant::now();
    let app = spawn_state_only(Stack::Server, &[]).await;
    app.seed_small("watcher1", "watcher1@example.org").await;
    let redis_url = app.vars["ERASURE_QUEUE__URL"].clone();
    let database_url = app.vars["ERASURE_DATABASE__URL"].clone();
    let redis = Forwarder::start(socket_of(&redis_url, 6379)).await;
    let postgres = Forwarder::start(socket_of(&database_url, 5432)).await;
    let vars = production_vars(
        &app,
        &[
            ("ERASURE_QUEUE__URL", &through(&redis_url, &redis)),
            ("ERASURE_DATABASE__URL", &through(&database_url, &postgres)),
        ],
    );
    let mut api = Process::start(&["serve", "--no-workers"], &vars, true);
    let base = api.address();
    let me = logged_in(&base, "watcher1").await;
    let anonymous = client(PATIENCE);
    ready_again(&base, Duration::from_secs(10)).await;

    let mut figures = Vec::new();
    for (dependency, forwarder) in [("redis", &redis), ("postgres", &postgres)] {
        for link in [Link::Refused, Link::Blackhole] {
            forwarder.set(link);
            // A round of probes every 300 ms, each round on its own: a slow answer delays none.
            let mut rounds = Vec::new();
            for _ in 0..6 {
                let (base, anonymous, me) = (base.clone(), anonymous.clone(), me.clone());
                rounds.push(tokio::spawn(async move {
                    tokio::join!(
                        timed(anonymous.get(format!("{base}/readyz"))),
                        timed(anonymous.get(format!("{base}/metrics"))),
                        timed(me.get(format!("{base}/api/v1/me"))),
                    )
                }));
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let mut tally = Tally::default();
            for round in rounds {
                let (ready, metrics, profile) = round.await.unwrap();
                for (what, (outcome, elapsed)) in
                    [("/readyz", ready), ("/metrics", metrics), ("/api/v1/me", profile)]
                {
                    tally.record(what, &outcome, elapsed);
                }
            }
            forwarder.set(Link::Up);
            let recovered = ready_again(&base, Duration::from_secs(30)).await;

            tally.assert_no_500_no_hang();
            let context = format!("{dependency} {link:?}: {}", tally.summary());
            for a in tally.to("/readyz") {
                assert_eq!(a.status, "503", "{context}");
                assert!(a.elapsed < Duration::from_secs(1), "{context}");
            }
            let profile = if dependency == "redis" { "200" } else { "503" };
            assert!(tally.to("/api/v1/me").all(|a| a.status == profile), "{context}");
            let slowest_readyz = tally.to("/readyz").map(|a| a.elapsed).max().unwrap();
            figures.push(format!(
                "{dependency} {link:?}: /readyz at most {} ms, ready again {} after the link \
                 came back [{}]",
                slowest_readyz.as_millis(),
                secs(recovered),
                tally.summary()
            ));
        }
    }
    assert_causes_logged(std::slice::from_ref(&api));
    assert_alive_then_stop(std::slice::from_mut(&mut api));
    figure!(
        "readiness under faults: {}; test took {}",
        figures.join("; "),
        secs(test_started.elapsed())
    );
}

/// Worker processes SIGKILLed at 50 random moments while 500 deletions go through them (each
/// replaced at once, as a supervisor would): nothing is lost, every purge counts its rows
/// once, each deletion gets exactly one ledger entry and at most one email (one whose sending
/// was cut off is not sent again: it may have reached the server), and the chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_workers_at_50_random_points_over_500_deletions_loses_and_duplicates_nothing() {
    use rand::{Rng, SeedableRng};
    if server_urls().is_none() {
        return;
    }
    const ACCOUNTS: usize = 500;
    const KILLS: usize = 50;
    const WORKERS: usize = 3;
    let test_started = Instant::now();
    let app = spawn_state_only(Stack::Server, &[]).await;
    seed_accounts(&app, "kil", ACCOUNTS).await;
    let seeded = test_started.elapsed();
    let vars = production_vars(&app, &[]);
    let mut workers: Vec<Process> = (0..WORKERS)
        .map(|_| Process::start(&["worker"], &vars, false))
        .collect();
    let mut killed: Vec<Process> = Vec::new();
    let seed = u64::from(chrono::Utc::now().timestamp_subsec_nanos());
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let started = Instant::now();
    open_deletions(&app, "kil", 0..ACCOUNTS).await;
    let deadline = started + Duration::from_secs(240);
    for kill in 0..KILLS {
        // Spread over the run: kill n once n/50 of the deletions are done, at a random moment
        // after that, in a random worker.
        let due = i64::try_from(kill * ACCOUNTS / KILLS).unwrap();
        try_eventually(
            deadline.saturating_duration_since(Instant::now()),
            Duration::from_millis(20),
            || async {
                let completed = app.count(COMPLETED).await;
                Ok(if completed >= due {
                    Ok(())
                } else {
                    Err(format!(
                        "{completed} of {ACCOUNTS} completed after {kill} kills (seed {seed})"
                    ))
                })
            },
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..400))).await;
        let victim = rng.random_range(0..WORKERS);
        workers[victim].kill_hard();
        let replacement = Process::start(&["worker"], &vars, false);
        killed.push(std::mem::replace(&mut workers[victim], replacement));
    }
    let last_kill = started.elapsed();
    app.wait_for_count(
        COMPLETED,
        ACCOUNTS as i64,
        deadline.saturating_duration_since(Instant::now()),
    )
    .await;
    let all_done = started.elapsed();

    assert_every_deletion_done_once(&app, "kil", ACCOUNTS as i64).await;
    // Each confirmation was sent, or found cut off mid-send and not sent again.
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM deletion_requests \
             WHERE email_sent_at IS NULL AND email_failed_at IS NULL"
        )
        .await,
        0
    );
    let cut_off = app
        .count("SELECT COUNT(*) FROM deletion_requests WHERE email_sent_at IS NULL")
        .await;
    let (once, more) = emails_per_recipient(&received(&app));
    assert_eq!(more, 0, "at most one email each (seed {seed})");
    let cut_off_but_delivered = once as i64 - (ACCOUNTS as i64 - cut_off);
    let purge_runs = count_events(&workers, "purge finished") + count_events(&killed, "purge finished");
    assert_causes_logged(&killed);
    assert_causes_logged(&workers);
    assert_alive_then_stop(&mut workers);
    figure!(
        "worker SIGKILLs: {KILLS} kills over {ACCOUNTS} deletions (seed {seed}, {WORKERS} \
         workers, heartbeat 1 s x 2): 0 lost, one ledger entry each, exact purge counts, chain \
         verifies; {once} recipients got one email, none got two ({cut_off} confirmations cut off \
         mid-send and not sent again, {cut_off_but_delivered} of which had reached the server: \
         sending those again would have sent them twice); last kill {} after the requests, all \
         completed after {} ({:.1} deletions/s); purges ran to their end {purge_runs} times; \
         seeding took {}; test took {}",
        secs(last_kill),
        secs(all_done),
        ACCOUNTS as f64 / all_done.as_secs_f64(),
        secs(seeded),
        secs(test_started.elapsed()),
    );
}
