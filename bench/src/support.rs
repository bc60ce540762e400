//! The paid path's two sections:
//!
//! - (g) intake messages/s: the signed webhook over HTTP (4 at a time) and `erasure
//!   ingest-email` (a process per message, as an MTA's pipe runs it), against mail-parser's
//!   parse-only rate of the same messages, in the same run. DNS is not measured: sender checks
//!   run with `support.mail_auth.resolver = none` (every lookup answers at once).
//! - (h) the staff queue page's p95 with 100,000 tickets, beside the bare indexed SELECT of
//!   the rows it shows (same order, same page size), in the same run. Target (issue 13): the
//!   page's p95 under 50 ms.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use erasure::{
    domain::{Email, IntakeDoor, Password, PersonName, StaffRole, TicketStatus},
    models::ticket,
    services::{intake, staff},
};
use futures::StreamExt;
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait, Set, Statement};

use crate::{
    app::{App, app_err},
    results::{IntakeRun, QueuePageRun, Row, StackResults},
    stack::StackCtx,
    table::{ms, yes_no},
};

const SECRET: &str = "bench-inbound-secret";

/// What (g) and (h) add to the application's settings.
pub fn settings() -> [(&'static str, &'static str); 2] {
    [
        ("ERASURE_SUPPORT__INBOUND_SECRET", SECRET),
        ("ERASURE_SUPPORT__MAIL_AUTH__RESOLVER", "none"),
    ]
}

fn message(n: usize) -> String {
    format!(
        "Received: from mx.example.net (mx.example.net [192.0.2.{}]) by mx.vsee.com; Sun, 29 Nov 2026 09:00:00 +0000\r\n\
         From: Requester {n} <requester{n}@example.net>\r\nTo: help@vsee.com\r\n\
         Subject: Please terminate my subscription ({n})\r\nMessage-ID: <bench-{n}-{}@example.net>\r\n\
         Date: Sun, 29 Nov 2026 09:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Hello,\r\n\r\nI would like to end my paid plan and have my account and all its data deleted.\r\n\
         My VSee ID is requester{n}. Thank you.\r\n",
        n % 250 + 1,
        uuid::Uuid::new_v4().simple()
    )
}

pub async fn intake_rate(
    ctx: &StackCtx,
    webhook_messages: usize,
    piped_messages: usize,
) -> anyhow::Result<IntakeRun> {
    let mut vars = ctx.vars.clone();
    vars.extend(settings().map(|(k, v)| (k.to_owned(), v.to_owned())));
    let ctx = StackCtx { vars, ..ctx.clone() };
    let app = App::start(&ctx, true, None).await?;
    let address = app.address.clone().context("the application serves no HTTP")?;

    // Baseline: mail-parser alone over the same kind of messages.
    let samples: Vec<String> = (0..webhook_messages).map(message).collect();
    let t = Instant::now();
    let mut parsed = 0usize;
    for raw in &samples {
        if mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .is_some()
        {
            parsed += 1;
        }
    }
    let parse_secs = t.elapsed().as_secs_f64();
    if parsed != samples.len() {
        bail!("mail-parser read {parsed} of {} messages", samples.len());
    }

    let client = reqwest::Client::new();
    let url = format!("{address}/api/v1/inbound/email");
    let t = Instant::now();
    let answers: Vec<anyhow::Result<u16>> = futures::stream::iter(samples.iter())
        .map(|raw| {
            let (client, url) = (client.clone(), url.clone());
            let signature = intake::sign(SECRET, raw.as_bytes());
            async move {
                let signature = signature.map_err(app_err)?;
                let r = client
                    .post(url)
                    .header(intake::SIGNATURE_HEADER, signature)
                    .header("content-type", "message/rfc822")
                    .body(raw.clone())
                    .send()
                    .await?;
                Ok(r.status().as_u16())
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let webhook_secs = t.elapsed().as_secs_f64();
    let created = answers.into_iter().filter(|a| matches!(a, Ok(201))).count();
    if created != samples.len() {
        bail!("the webhook opened {created} tickets of {}", samples.len());
    }

    let t = Instant::now();
    for n in 0..piped_messages {
        let raw = message(webhook_messages + n);
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .arg("--ingest-child")
            .env_clear()
            .envs(&ctx.vars)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()?;
        let mut stdin = child.stdin.take().context("the child's stdin")?;
        tokio::io::AsyncWriteExt::write_all(&mut stdin, raw.as_bytes()).await?;
        drop(stdin);
        let status = child.wait().await?;
        if !status.success() {
            bail!("ingest-email exited {status}");
        }
    }
    let piped_secs = t.elapsed().as_secs_f64();
    let tickets = ticket::Entity::find().count(&app.probe.conn).await?;
    app.shutdown().await?;
    if tickets != (webhook_messages + piped_messages) as u64 {
        bail!(
            "{tickets} tickets for {} messages",
            webhook_messages + piped_messages
        );
    }
    Ok(IntakeRun {
        messages: webhook_messages,
        parse_secs,
        webhook_secs,
        piped: piped_messages,
        piped_secs,
    })
}

/// Inserts `n` tickets (a fifth of them open, due over the next 40 days), 1,000 a statement.
async fn seed_tickets(app: &App, n: usize) -> anyhow::Result<()> {
    let t = Instant::now();
    let now = chrono::Utc::now();
    for start in (0..n).step_by(1_000) {
        let rows = (start..(start + 1_000).min(n)).map(|i| {
            let received = now - chrono::Duration::minutes((i % 50_000) as i64);
            let open = i % 5 == 0;
            ticket::ActiveModel {
                reference: Set(format!("T-B{:07}", i)),
                message_id: Set(format!("seed-{i}@bench.example")),
                door: Set(IntakeDoor::Webhook),
                sender: Set(format!("requester{i}@example.net")),
                subject: Set(format!("Please terminate my subscription ({i})")),
                body: Set("I would like my account deleted.".into()),
                status: Set(if open {
                    TicketStatus::Open
                } else {
                    TicketStatus::Closed
                }),
                received_at: Set(received),
                due_at: Set(received + chrono::Duration::days(10 + (i % 30) as i64)),
                ..Default::default()
            }
        });
        ticket::Entity::insert_many(rows).exec(&app.state.db.conn).await?;
    }
    eprintln!("    seeded {n} tickets in {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// Creates a staff member with `role` and logs them in over HTTP: their session cookie.
pub async fn staff_cookie(app: &App, address: &str, role: StaffRole, name: &str) -> anyhow::Result<String> {
    let email = format!("{}@bench.example", role.as_str());
    let password = format!("bench {} password", role.as_str());
    staff::create(
        app.state.env(),
        staff::NewStaff {
            email: Email::parse(&email)?,
            name: PersonName::parse(name)?,
            role,
            password: Password::parse(&password)?,
        },
    )
    .await
    .map_err(app_err)?;
    let login = reqwest::Client::new()
        .post(format!("{address}/api/v1/staff/sessions"))
        .json(&serde_json::json!({ "email": email, "password": password }))
        .send()
        .await?;
    Ok(login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("the staff log-in set no cookie")?
        .to_owned())
}

pub async fn queue_page(ctx: &StackCtx, tickets: usize, requests: usize) -> anyhow::Result<QueuePageRun> {
    let app = App::start(ctx, true, None).await?;
    let address = app.address.clone().context("the application serves no HTTP")?;
    seed_tickets(&app, tickets).await?;
    let cookie = staff_cookie(&app, &address, StaffRole::Agent, "Bench Agent").await?;
    let client = reqwest::Client::new();

    let timed = |path: &'static str| {
        let (client, cookie, address) = (client.clone(), cookie.clone(), address.clone());
        async move {
            let mut samples = Vec::with_capacity(requests);
            for _ in 0..requests {
                let t = Instant::now();
                let r = client
                    .get(format!("{address}{path}"))
                    .header("cookie", &cookie)
                    .send()
                    .await?;
                let status = r.status();
                let body = r.bytes().await?;
                samples.push(t.elapsed());
                if !status.is_success() || body.len() < 1_000 {
                    bail!("GET {path}: {status}");
                }
            }
            percentiles_p95(samples)
        }
    };
    // Warm both paths once.
    timed("/staff/tickets").await?;
    let page = timed("/staff/tickets").await?;
    let api = timed("/api/v1/tickets").await?;
    // The bare SELECT of the rows the page shows: the first page, soonest due.
    let backend = app.probe.conn.get_database_backend();
    let sql = "SELECT * FROM tickets ORDER BY due_at, id LIMIT 51";
    let mut samples = Vec::with_capacity(requests);
    for _ in 0..requests {
        let t = Instant::now();
        let rows = app
            .probe
            .conn
            .query_all_raw(Statement::from_string(backend, sql))
            .await?;
        samples.push(t.elapsed());
        if rows.len() != 51 {
            bail!("the bare SELECT read {} rows", rows.len());
        }
    }
    let select = percentiles_p95(samples)?;
    app.shutdown().await?;
    Ok(QueuePageRun {
        tickets,
        requests,
        page,
        api,
        select,
    })
}

fn percentiles_p95(mut samples: Vec<Duration>) -> anyhow::Result<Duration> {
    if samples.is_empty() {
        bail!("no samples");
    }
    samples.sort();
    // Nearest rank.
    let rank = (0.95 * samples.len() as f64).ceil() as usize;
    Ok(samples[rank.clamp(1, samples.len()) - 1])
}

/// (h)'s target: a staff page's p95 at 100,000 tickets.
const PAGE_P95: Duration = Duration::from_millis(50);

/// The rows of (g) and (h).
pub fn rows(stack: &str, r: &StackResults, out: &mut Vec<Row>) {
    let mut push =
        |measure: String, value: String, baseline: String, ratio: String, target: &str, met: String| {
            out.push(Row {
                stack: stack.to_owned(),
                measure,
                value,
                baseline,
                ratio,
                target: target.to_owned(),
                met,
            });
        };
    if let Some(g) = &r.intake {
        let parse = g.messages as f64 / g.parse_secs;
        let webhook = g.messages as f64 / g.webhook_secs;
        let piped = g.piped as f64 / g.piped_secs;
        for (measure, value) in [
            (
                format!(
                    "(g) intake msgs/s, signed webhook ({} msgs, 4 at once)",
                    g.messages
                ),
                webhook,
            ),
            (
                format!("(g) intake msgs/s, ingest-email ({} processes)", g.piped),
                piped,
            ),
        ] {
            let x = value / parse;
            push(
                measure,
                format!("{value:.1} /s"),
                format!("{parse:.0} /s (mail-parser parse only)"),
                format!("{x:.4}x"),
                ">= 0.3x",
                yes_no(x >= 0.3),
            );
        }
    }
    if let Some(h) = &r.queue_page {
        for (what, p95) in [("/staff/tickets page", h.page), ("GET /api/v1/tickets", h.api)] {
            let x = h.select.as_secs_f64() / p95.as_secs_f64();
            push(
                format!("(h) p95 {what}, {} tickets ({} requests)", h.tickets, h.requests),
                format!("{:.2} ms", ms(p95)),
                format!("{:.2} ms (bare indexed SELECT)", ms(h.select)),
                format!("{x:.3}x"),
                "p95 < 50 ms",
                yes_no(p95 < PAGE_P95),
            );
        }
    }
}
