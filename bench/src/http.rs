//! (m) HTTP on loopback, driven by the bench's own load generator (reqwest on the same
//! tokio runtime, so generator and server share the 2 cores alike for ours and the baseline):
//!
//! - `GET /api/v1/me` (session cookie) and `GET /deletions/{receipt}` (the status page)
//!   against a bare poem handler on its own port doing the same single indexed SELECT on
//!   the same database pool and answering its row: at saturation (closed loop, `CONNS`
//!   connections) and at a fixed offered rate (open loop, half the slower side's saturated
//!   rate, latency from each request's scheduled start, so a stall is not hidden). Targets:
//!   throughput ≥ 0.6x, p99 within 2x. Each load alternates between the baseline and ours in
//!   `SLICES` slices, so this shared machine's slow spells fall on both.
//! - Log-in (`POST /api/v1/sessions`, right password) at saturation against raw argon2id
//!   verifications of the same hash on the blocking pool, one per core. Target ≥ 0.9x.
//!
//! The application runs as an API process (HTTP role only, no workers).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use erasure::startup::Roles;
use futures::future::join_all;
use poem::{
    EndpointExt, Route, get, handler,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
    web::{Data, Path},
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use sha2::{Digest, Sha256};

use crate::{
    app::{App, request_deletion, seed_one},
    baseline::percentiles,
    cli::SMALL,
    results::{Latency, Row, StackResults},
    stack::StackCtx,
    table::ms,
};

const CONNS: usize = 8;
/// Alternating slices of each load: ours and the baseline, a fifth of the time each in turn.
const SLICES: usize = 5;
/// Requests in flight at most in the open loop.
const IN_FLIGHT: usize = 64;
const PASSWORD: &str = "correct horse battery";

#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub requests: usize,
    pub secs: f64,
    pub latency: Latency,
}

impl Load {
    pub fn per_sec(&self) -> f64 {
        self.requests as f64 / self.secs
    }
}

#[derive(Debug)]
pub struct PathLoad {
    pub name: &'static str,
    pub offered: f64,
    pub ours_fixed: Load,
    pub bare_fixed: Load,
    pub ours_saturated: Load,
    pub bare_saturated: Load,
}

#[derive(Debug)]
pub struct HttpRun {
    pub paths: Vec<PathLoad>,
    pub log_in: Load,
    pub argon2: Load,
}

/// One kind of request, sent again and again.
#[derive(Clone)]
struct Target {
    method: reqwest::Method,
    url: String,
    cookie: Option<String>,
    body: Option<serde_json::Value>,
}

impl Target {
    fn get(url: String, cookie: Option<String>) -> Self {
        Self {
            method: reqwest::Method::GET,
            url,
            cookie,
            body: None,
        }
    }

    async fn send(&self, client: &reqwest::Client) -> anyhow::Result<Duration> {
        let t = Instant::now();
        let mut request = client.request(self.method.clone(), &self.url);
        if let Some(cookie) = &self.cookie {
            request = request.header(reqwest::header::COOKIE, cookie);
        }
        if let Some(body) = &self.body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        response.bytes().await?;
        if !status.is_success() {
            bail!("{} {} answered {status}", self.method, self.url);
        }
        Ok(t.elapsed())
    }
}

/// What a load phase saw: each request's latency, and how long the phase took.
#[derive(Default)]
struct Samples {
    latencies: Vec<Duration>,
    secs: f64,
}

impl Samples {
    fn add(&mut self, more: Samples) {
        self.latencies.extend(more.latencies);
        self.secs += more.secs;
    }

    fn load(self) -> anyhow::Result<Load> {
        Ok(Load {
            requests: self.latencies.len(),
            secs: self.secs,
            latency: percentiles(self.latencies)?,
        })
    }
}

/// How a load is sent: closed loop with `conns` senders, or open loop at `rate`.
#[derive(Clone, Copy)]
enum Drive {
    Saturate { conns: usize },
    Fixed { rate: f64 },
}

impl Drive {
    async fn run(self, client: &reqwest::Client, target: &Target, secs: f64) -> anyhow::Result<Samples> {
        match self {
            Drive::Saturate { conns } => saturate(client, target, conns, secs).await,
            Drive::Fixed { rate } => fixed_rate(client, target, rate, secs).await,
        }
    }
}

/// Ours and the baseline under the same drive for `secs` each, in `SLICES` alternating
/// slices (baseline first), so a slow spell of this shared machine falls on both alike
/// instead of on whichever ran during it. Returns (ours, baseline).
async fn interleaved(
    client: &reqwest::Client,
    ours: &Target,
    base: &Target,
    drive: Drive,
    secs: f64,
) -> anyhow::Result<(Load, Load)> {
    let slice = secs / SLICES as f64;
    let (mut ours_seen, mut base_seen) = (Samples::default(), Samples::default());
    for _ in 0..SLICES {
        base_seen.add(drive.run(client, base, slice).await?);
        ours_seen.add(drive.run(client, ours, slice).await?);
    }
    Ok((ours_seen.load()?, base_seen.load()?))
}

/// Closed loop: `conns` senders, each sending its next request when the last one is
/// answered, for `secs`.
async fn saturate(
    client: &reqwest::Client,
    target: &Target,
    conns: usize,
    secs: f64,
) -> anyhow::Result<Samples> {
    let t = Instant::now();
    let end = t + Duration::from_secs_f64(secs);
    let senders = (0..conns).map(|_| async {
        let mut seen = Vec::new();
        while Instant::now() < end {
            seen.push(target.send(client).await?);
        }
        anyhow::Ok(seen)
    });
    let mut latencies = Vec::new();
    for seen in join_all(senders).await {
        latencies.extend(seen?);
    }
    Ok(Samples {
        latencies,
        secs: t.elapsed().as_secs_f64(),
    })
}

/// Open loop: a request every 1/`rate` s whatever the answers, each timed from its
/// scheduled start (so a request that waits for a free connection counts its wait). At most
/// `IN_FLIGHT` at once, so a server that falls behind is measured, not drowned in sockets.
async fn fixed_rate(
    client: &reqwest::Client,
    target: &Target,
    rate: f64,
    secs: f64,
) -> anyhow::Result<Samples> {
    let n = (rate * secs).round().max(1.0) as u32;
    let every = Duration::from_secs_f64(1.0 / rate);
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let t = Instant::now();
    let mut sent = Vec::new();
    for i in 0..n {
        let due = t + every * i;
        tokio::time::sleep_until(due.into()).await;
        let (client, target, slots) = (client.clone(), target.clone(), slots.clone());
        sent.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await?;
            target.send(&client).await?;
            anyhow::Ok(due.elapsed())
        }));
    }
    let mut latencies = Vec::new();
    for done in join_all(sent).await {
        latencies.push(done??);
    }
    Ok(Samples {
        latencies,
        secs: t.elapsed().as_secs_f64(),
    })
}

/// The baseline server: one indexed SELECT by the SHA-256 of what the request carries,
/// its row answered as JSON.
#[derive(Clone)]
struct Bare {
    conn: DatabaseConnection,
}

impl Bare {
    async fn row(&self, sql: &str, key: &str) -> poem::Result<String> {
        let backend = self.conn.get_database_backend();
        let sql = if backend == DbBackend::Postgres {
            sql.replace('?', "$1")
        } else {
            sql.to_owned()
        };
        let hash = hex::encode(Sha256::digest(key.as_bytes()));
        let row = self
            .conn
            .query_one_raw(Statement::from_sql_and_values(backend, sql, [hash.into()]))
            .await
            .map_err(|e| poem::Error::from_string(e.to_string(), StatusCode::INTERNAL_SERVER_ERROR))?
            .ok_or_else(|| poem::Error::from_status(StatusCode::NOT_FOUND))?;
        let first: String = row
            .try_get_by_index(0)
            .map_err(|e| poem::Error::from_string(e.to_string(), StatusCode::INTERNAL_SERVER_ERROR))?;
        Ok(serde_json::json!({ "row": first }).to_string())
    }
}

#[handler]
async fn bare_me(bare: Data<&Bare>, headers: &poem::http::HeaderMap) -> poem::Result<String> {
    let token = headers
        .get_all(poem::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("erasure_session="))
        .ok_or_else(|| poem::Error::from_status(StatusCode::UNAUTHORIZED))?;
    bare.row(
        "SELECT a.vsee_id FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.id = ?",
        token,
    )
    .await
}

#[handler]
async fn bare_status(bare: Data<&Bare>, Path(receipt): Path<String>) -> poem::Result<String> {
    bare.row(
        "SELECT status FROM deletion_requests WHERE receipt_hash = ?",
        &receipt,
    )
    .await
}

async fn serve_bare(conn: DatabaseConnection) -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
    let port = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().map(|s| s.port()))
        .context("the bare server has no port")?;
    let app = Route::new()
        .at("/me", get(bare_me))
        .at("/deletions/:receipt", get(bare_status))
        .data(Bare { conn });
    let task = tokio::spawn(async move {
        let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
    });
    Ok((format!("http://127.0.0.1:{port}"), task))
}

pub async fn http(ctx: &StackCtx, secs: f64) -> anyhow::Result<HttpRun> {
    let roles = Roles {
        http: true,
        workers: false,
    };
    let app = App::start_with(ctx, roles, None).await?;
    let outcome = async {
        let ours = app.address.clone().context("the application serves no HTTP")?;
        let (bare, server) = serve_bare(app.state.db.conn.clone()).await?;
        let client = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
        let holder = seed_one(&app.state, SMALL).await?;
        let leaving = seed_one(&app.state, SMALL).await?;
        let log_in = Target {
            method: reqwest::Method::POST,
            url: format!("{ours}/api/v1/sessions"),
            cookie: None,
            body: Some(serde_json::json!({ "vsee_id": holder.vsee_id, "password": PASSWORD })),
        };
        let cookie = session_cookie(&client, &log_in).await?;
        let receipt = request_deletion(&app.state, &leaving).await?.receipt;
        let receipt = receipt.expose();
        let mut paths = Vec::new();
        for (name, path, bare_path) in [
            ("GET /api/v1/me", "/api/v1/me".to_owned(), "/me".to_owned()),
            (
                "GET /deletions/{receipt}",
                format!("/deletions/{receipt}"),
                format!("/deletions/{receipt}"),
            ),
        ] {
            let ours = Target::get(format!("{ours}{path}"), Some(cookie.clone()));
            let base = Target::get(format!("{bare}{bare_path}"), Some(cookie.clone()));
            // Warm both (connections, caches, prepared statements).
            saturate(&client, &ours, CONNS, 0.5).await?;
            saturate(&client, &base, CONNS, 0.5).await?;
            let saturated = Drive::Saturate { conns: CONNS };
            let (ours_saturated, bare_saturated) =
                interleaved(&client, &ours, &base, saturated, secs).await?;
            // Half the slower side's saturated rate: a load both can carry.
            let offered = (ours_saturated.per_sec().min(bare_saturated.per_sec()) / 2.0).max(1.0);
            let fixed = Drive::Fixed { rate: offered };
            let (ours_fixed, bare_fixed) = interleaved(&client, &ours, &base, fixed, secs).await?;
            paths.push(PathLoad {
                name,
                offered,
                ours_fixed,
                bare_fixed,
                ours_saturated,
                bare_saturated,
            });
        }
        server.abort();
        // Interleaved like the loads above: the hash alone, then the log-in, in turn.
        let (mut argon2, mut logged_in) = (Samples::default(), Samples::default());
        for _ in 0..SLICES {
            argon2.add(raw_argon2(&holder.password_hash, secs / SLICES as f64).await?);
            logged_in.add(saturate(&client, &log_in, CONNS, secs / SLICES as f64).await?);
        }
        let (argon2, log_in) = (argon2.load()?, logged_in.load()?);
        Ok(HttpRun {
            paths,
            log_in,
            argon2,
        })
    }
    .await;
    app.shutdown().await?;
    outcome
}

async fn session_cookie(client: &reqwest::Client, log_in: &Target) -> anyhow::Result<String> {
    let response = client
        .post(&log_in.url)
        .json(&log_in.body)
        .send()
        .await?
        .error_for_status()?;
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("erasure_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
        .context("the log-in set no session cookie")
}

/// argon2id verifications of the account's hash on the blocking pool (as the log-in runs
/// them), one per core at a time (more only thrash its memory), for `secs`.
async fn raw_argon2(hash: &str, secs: f64) -> anyhow::Result<Samples> {
    let hash: Arc<str> = hash.into();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let t = Instant::now();
    let end = t + Duration::from_secs_f64(secs);
    let workers = (0..cores).map(|_| {
        let hash = hash.clone();
        async move {
            let mut seen = Vec::new();
            while Instant::now() < end {
                let hash = hash.clone();
                let started = Instant::now();
                let ok = tokio::task::spawn_blocking(move || {
                    password_auth::verify_password(PASSWORD, &hash).is_ok()
                })
                .await?;
                if !ok {
                    bail!("the password does not verify against its hash");
                }
                seen.push(started.elapsed());
            }
            anyhow::Ok(seen)
        }
    });
    let mut latencies = Vec::new();
    for seen in join_all(workers).await {
        latencies.extend(seen?);
    }
    Ok(Samples {
        latencies,
        secs: t.elapsed().as_secs_f64(),
    })
}

pub fn rows(stack: &str, r: &StackResults, out: &mut Vec<Row>) {
    let Some(x) = &r.http else { return };
    let mut row = |measure: String, value: String, baseline: String, ratio: f64, target: &str, met: bool| {
        out.push(Row::ratio(stack, measure, value, baseline, ratio, target, met));
    };
    let lat = |l: &Load| format!("p50 {:.2} ms, p99 {:.2} ms", ms(l.latency.p50), ms(l.latency.p99));
    for p in &x.paths {
        let ratio = p.ours_saturated.per_sec() / p.bare_saturated.per_sec();
        row(
            format!("(m) {} at saturation ({CONNS} connections): req/s", p.name),
            format!("{:.0}/s ({})", p.ours_saturated.per_sec(), lat(&p.ours_saturated)),
            format!(
                "{:.0}/s ({}) bare poem + same SELECT",
                p.bare_saturated.per_sec(),
                lat(&p.bare_saturated)
            ),
            ratio,
            "≥ 0.6x",
            ratio >= 0.6,
        );
        let p99 = ms(p.ours_fixed.latency.p99) / ms(p.bare_fixed.latency.p99).max(0.001);
        row(
            format!("(m) {} at {:.0} req/s offered: p99", p.name, p.offered),
            format!(
                "{:.2} ms (p50 {:.2} ms)",
                ms(p.ours_fixed.latency.p99),
                ms(p.ours_fixed.latency.p50)
            ),
            format!(
                "{:.2} ms (p50 {:.2} ms) bare",
                ms(p.bare_fixed.latency.p99),
                ms(p.bare_fixed.latency.p50)
            ),
            p99,
            "p99 ≤ 2x",
            p99 <= 2.0,
        );
    }
    let ratio = x.log_in.per_sec() / x.argon2.per_sec();
    row(
        format!("(m) log-in POST /api/v1/sessions ({CONNS} connections): req/s"),
        format!("{:.1}/s ({})", x.log_in.per_sec(), lat(&x.log_in)),
        format!(
            "{:.1}/s raw argon2id verifications, one per core at once",
            x.argon2.per_sec()
        ),
        ratio,
        "≥ 0.9x",
        ratio >= 0.9,
    );
}
