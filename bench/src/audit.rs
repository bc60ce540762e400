//! (i) The audit ledger at 1,000,000 entries (real bodies, MACs and tree, written straight
//! into the tables), each figure against a raw baseline in the same run:
//!
//! - `audit verify` (MACs, links, the Merkle tree rebuilt from the bodies, the signed head)
//!   against raw HMAC-SHA256 over the same bodies in memory: target >= 0.5x;
//! - the NDJSON export's peak RSS growth: target < 32 MiB (baseline: the RSS before);
//! - an inclusion proof at 1,000,000 leaves: target < 5 ms, beside a single-node SELECT;
//! - the auditor's `/staff/ledger` page p95: target < 50 ms, beside the bare SELECT of its rows.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use erasure::{
    domain::{Actor, Channel, StaffRole},
    models::{ledger_entry, log_node},
    services::ledger::{
        self, GENESIS_HASH,
        events::{AccountDeleted, AuditEvent, Subjects},
        log,
        tree::{self, Frontier},
    },
};
use sea_orm::{ConnectionTrait, EntityTrait, Set, Statement, TransactionTrait};

use crate::{
    app::{App, app_err},
    big::{peak_growth, reset_peak_rss},
    results::{AuditRun, Row, StackResults},
    stack::StackCtx,
    support::staff_cookie,
    table::{mib, ms, yes_no},
};

const BATCH: usize = 500;

fn event(i: usize, at: chrono::DateTime<chrono::Utc>) -> AuditEvent {
    AuditEvent::AccountDeleted(AccountDeleted {
        request_id: uuid::Uuid::new_v4().to_string(),
        subjects: Subjects {
            vsee_id: format!("{:064x}", i as u128 * 7919),
            email: Some(format!("{:064x}", i as u128 * 104_729)),
        },
        actor: Actor::AccountHolder,
        channel: [Channel::Web, Channel::Api, Channel::Support][i % 3],
        requested_at: at,
        purge_started_at: Some(at),
        purged_at: Some(at),
        confirmation_sent_at: Some(at),
        confirmation_not_sent: None,
        rows_removed: BTreeMap::from([
            ("accounts".to_owned(), 1),
            ("messages".to_owned(), (i % 500) as i64),
            ("contacts".to_owned(), (i % 40) as i64),
            ("sessions".to_owned(), 2),
        ]),
        retained: Vec::new(),
    })
}

/// Writes `n` chained entries and their tree. Keeps nothing: the export's RSS is measured
/// next, and freed memory still resident would hide its growth.
async fn seed(app: &App, n: usize) -> anyhow::Result<()> {
    let t = Instant::now();
    let keys = &app.state.keys;
    let db = &app.state.db.conn;
    let start = chrono::Utc::now() - chrono::Duration::days(300);
    let mut prev = GENESIS_HASH.to_owned();
    let mut frontier = Frontier::default();
    let mut done = 0;
    while done < n {
        let count = BATCH.min(n - done);
        let mut rows = Vec::with_capacity(count);
        let mut nodes = Vec::with_capacity(count * 2);
        for k in 0..count {
            let i = done + k;
            let at = start + chrono::Duration::seconds(i as i64 * 25);
            let event = event(i, at);
            let seq = i as i64 + 1;
            let body = event.body(seq, &prev, at);
            let text = serde_json::to_string(&body)?;
            let hash = keys.ledger_mac(&prev, &text);
            let facets = body.facets();
            nodes.extend(frontier.push(tree::leaf_hash(text.as_bytes())));
            rows.push(ledger_entry::ActiveModel {
                seq: Set(seq),
                request_id: Set(event.key().to_owned()),
                event: Set("account_deleted".into()),
                subject: Set(event.subjects().vsee_id.clone()),
                recorded_at: Set(at),
                body: Set(text.clone()),
                prev_hash: Set(prev.clone()),
                hash: Set(hash.clone()),
                channel: Set(facets.channel),
                actor_kind: Set(facets.actor_kind),
                outcome: Set(facets.outcome),
                pruned_at: Set(None),
            });
            prev = hash;
        }
        let tx = db.begin().await?;
        ledger_entry::Entity::insert_many(rows)
            .exec_without_returning(&tx)
            .await?;
        for chunk in nodes.chunks(BATCH) {
            log_node::Entity::insert_many(chunk.iter().map(|(s, h)| log_node::ActiveModel {
                id: Set(s.id()),
                hash: Set(hex::encode(h)),
            }))
            .exec_without_returning(&tx)
            .await?;
        }
        tx.commit().await?;
        done += count;
        if done % 100_000 == 0 {
            eprintln!("    {done} entries written");
        }
    }
    log::sign_head(&app.state.db, &app.state.log_signer, chrono::Utc::now())
        .await
        .map_err(app_err)?;
    eprintln!(
        "    seeded {n} ledger entries and their tree in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Every body, read back into one buffer (one allocation, returned to the system when
/// dropped), with each body's end.
async fn bodies(app: &App) -> anyhow::Result<(String, Vec<usize>)> {
    let rows = app
        .probe
        .conn
        .query_all_raw(Statement::from_string(
            app.state.db.backend(),
            "SELECT body FROM ledger_entries ORDER BY seq",
        ))
        .await?;
    let mut all = String::new();
    let mut ends = Vec::with_capacity(rows.len());
    for row in rows {
        let body: String = row.try_get("", "body")?;
        all.push_str(&body);
        ends.push(all.len());
    }
    Ok((all, ends))
}

fn p95(mut samples: Vec<Duration>) -> anyhow::Result<Duration> {
    if samples.is_empty() {
        bail!("no samples");
    }
    samples.sort();
    let rank = (0.95 * samples.len() as f64).ceil() as usize;
    Ok(samples[rank.clamp(1, samples.len()) - 1])
}

pub async fn audit_ledger(ctx: &StackCtx, entries: usize, requests: usize) -> anyhow::Result<AuditRun> {
    let app = App::start(ctx, true, None).await?;
    let address = app.address.clone().context("the application serves no HTTP")?;
    seed(&app, entries).await?;

    let rss_before = reset_peak_rss();
    let t = Instant::now();
    let exported = ledger::export(&app.state.db, &mut std::io::sink())
        .await
        .map_err(app_err)?;
    let export_secs = t.elapsed().as_secs_f64();
    let export_rss = peak_growth(rss_before);
    if exported != entries as u64 {
        bail!("the export wrote {exported} entries of {entries}");
    }

    let t = Instant::now();
    let verified = ledger::verify(
        &app.state.db,
        &app.state.keys,
        &app.state.log_signer.public(),
        None,
        &|_| {},
    )
    .await
    .map_err(app_err)?
    .map_err(|b| anyhow::anyhow!("the seeded ledger does not verify: {b}"))?;
    let verify_secs = t.elapsed().as_secs_f64();
    if verified.entries != entries as u64 {
        bail!("verify walked {} entries of {entries}", verified.entries);
    }

    // The raw baseline: the same MAC chain over the same bytes, in memory.
    let (all, ends) = bodies(&app).await?;
    let t = Instant::now();
    let mut prev = GENESIS_HASH.to_owned();
    let mut start = 0;
    for &end in &ends {
        prev = app.state.keys.ledger_mac(&prev, &all[start..end]);
        start = end;
    }
    let raw_secs = t.elapsed().as_secs_f64();
    let body_bytes = all.len();
    drop((all, ends));

    let size = log::size(&app.state.db.conn).await.map_err(app_err)?;
    let mut proof = Vec::with_capacity(requests);
    let mut select = Vec::with_capacity(requests);
    let backend = app.state.db.backend();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..requests {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let index = x % size;
        let t = Instant::now();
        let path = log::inclusion(&app.state.db.conn, index, size)
            .await
            .map_err(app_err)?;
        proof.push(t.elapsed());
        if path.is_empty() && size > 1 {
            bail!("an empty inclusion proof at {size} leaves");
        }
        let t = Instant::now();
        let row = app
            .state
            .db
            .conn
            .query_one_raw(Statement::from_string(
                backend,
                format!("SELECT hash FROM log_nodes WHERE id = {index}"),
            ))
            .await?;
        select.push(t.elapsed());
        row.context("a leaf is missing")?;
    }

    let cookie = staff_cookie(&app, &address, StaffRole::Auditor, "Bench Auditor").await?;
    let client = reqwest::Client::new();
    let mut page = Vec::with_capacity(requests);
    for i in 0..=requests {
        let t = Instant::now();
        let r = client
            .get(format!("{address}/staff/ledger"))
            .header("cookie", &cookie)
            .send()
            .await?;
        let status = r.status();
        let body = r.bytes().await?;
        if i > 0 {
            // The first request warms the path.
            page.push(t.elapsed());
        }
        if !status.is_success() || body.len() < 1_000 {
            bail!("GET /staff/ledger: {status}");
        }
    }
    let mut bare = Vec::with_capacity(requests);
    for _ in 0..requests {
        let t = Instant::now();
        let rows = app
            .probe
            .conn
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT * FROM ledger_entries ORDER BY seq DESC LIMIT 51",
            ))
            .await?;
        bare.push(t.elapsed());
        if rows.len() != 51 {
            bail!("the bare SELECT read {} rows", rows.len());
        }
    }
    app.shutdown().await?;
    Ok(AuditRun {
        entries,
        body_bytes,
        raw_secs,
        verify_secs,
        export_secs,
        export_rss,
        requests,
        proof: p95(proof)?,
        node_select: p95(select)?,
        page: p95(page)?,
        page_select: p95(bare)?,
    })
}

/// The rows of (i).
pub fn rows(stack: &str, r: &StackResults, out: &mut Vec<Row>) {
    let Some(a) = &r.audit else { return };
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
    let x = a.raw_secs / a.verify_secs;
    push(
        format!(
            "(i) audit verify, {} entries ({} MiB of bodies)",
            a.entries,
            a.body_bytes >> 20
        ),
        format!(
            "{:.0} entries/s ({:.1} s)",
            a.entries as f64 / a.verify_secs,
            a.verify_secs
        ),
        format!(
            "{:.0} entries/s (raw HMAC-SHA256 chain in memory)",
            a.entries as f64 / a.raw_secs
        ),
        format!("{x:.3}x"),
        ">= 0.5x",
        yes_no(x >= 0.5),
    );
    push(
        format!("(i) NDJSON export, {} entries: peak RSS growth", a.entries),
        a.export_rss.map_or("n/a".into(), mib),
        format!("{:.1} s to export", a.export_secs),
        "—".into(),
        "< 32 MiB",
        yes_no(a.export_rss.is_some_and(|b| b < 32 << 20)),
    );
    push(
        format!(
            "(i) p95 inclusion proof at {} leaves ({} proofs)",
            a.entries, a.requests
        ),
        format!("{:.2} ms", ms(a.proof)),
        format!("{:.2} ms (one node by primary key)", ms(a.node_select)),
        format!("{:.3}x", a.node_select.as_secs_f64() / a.proof.as_secs_f64()),
        "< 5 ms",
        yes_no(a.proof < Duration::from_millis(5)),
    );
    push(
        format!(
            "(i) p95 /staff/ledger page at {} entries ({} requests)",
            a.entries, a.requests
        ),
        format!("{:.2} ms", ms(a.page)),
        format!("{:.2} ms (bare SELECT of its 51 rows)", ms(a.page_select)),
        format!("{:.3}x", a.page_select.as_secs_f64() / a.page.as_secs_f64()),
        "< 50 ms",
        yes_no(a.page < Duration::from_millis(50)),
    );
}
