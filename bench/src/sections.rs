//! Runs the chosen sections (a)–(o) on one stack, printing progress, and keeps their results
//! (or their errors) for the table.

use crate::{
    audit::audit_ledger,
    baseline::noop_rate,
    big::big_account,
    cli::{Section, TYPICAL, TYPICAL_10X},
    deletions::deletions,
    latency::latency,
    purge::purge_compare,
    results::StackResults,
    stack::{QueueTarget, StackCtx},
    support::{intake_rate, queue_page},
    table::{mib, ms},
};

/// The value of a section that ran, or its error kept for the report.
pub fn kept<T>(errors: &mut Vec<String>, section: &str, result: anyhow::Result<T>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(e) => {
            errors.push(format!("{section}: {e:#}"));
            None
        }
    }
}

pub async fn run_sections(ctx: &StackCtx, queue: &QueueTarget, sections: &[Section], r: &mut StackResults) {
    let label = ctx.kind.label();
    let s = &ctx.sizes;
    // (i) seeds its ledger from the genesis entry: it runs first, while the ledger is empty.
    if sections.contains(&Section::I) {
        eprintln!("[{label}] (i) audit ledger with {} entries", s.ledger_entries);
        if let Some(x) = kept(
            &mut r.errors,
            "(i)",
            audit_ledger(ctx, s.ledger_entries, s.ledger_requests).await,
        ) {
            eprintln!(
                "[{label}] (i) verify {:.1} s (raw HMAC {:.1} s), export RSS +{}, p95 proof {:.2} ms, page {:.2} ms",
                x.verify_secs,
                x.raw_secs,
                x.export_rss.map_or("n/a".into(), mib),
                ms(x.proof),
                ms(x.page)
            );
            r.audit = Some(x);
        }
    }
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
    if sections.contains(&Section::G) {
        eprintln!(
            "[{label}] (g) intake: {} messages by webhook, {} by ingest-email",
            s.intake_messages, s.piped_messages
        );
        if let Some(x) = kept(
            &mut r.errors,
            "(g)",
            intake_rate(ctx, s.intake_messages, s.piped_messages).await,
        ) {
            eprintln!(
                "[{label}] (g) webhook {:.1}/s, ingest-email {:.1}/s, parse only {:.0}/s",
                x.messages as f64 / x.webhook_secs,
                x.piped as f64 / x.piped_secs,
                x.messages as f64 / x.parse_secs
            );
            r.intake = Some(x);
        }
    }
    if sections.contains(&Section::K) {
        eprintln!(
            "[{label}] (k) crypto-shredding: reads, log-ins, {} messages sealed and purged, rotation of {} keys",
            s.big_messages, s.rotation_keys
        );
        if let Some(x) = kept(
            &mut r.errors,
            "(k)",
            crate::shredding::shredding(ctx, s.rotation_keys).await,
        ) {
            eprintln!(
                "[{label}] (k) reads {:.0}/s (raw {:.0}/s); seed {:.1} s (clear {:.1} s); purge {:.1} s (clear {:.1} s); rotation {:.0} keys/s",
                f64::from(x.reads) / x.read_secs,
                f64::from(x.reads) / x.read_raw_secs,
                x.seed_secs,
                x.seed_raw_secs,
                x.purge_secs,
                x.purge_raw_secs,
                x.keys as f64 / x.rotation_secs
            );
            r.shredding = Some(x);
        }
    }
    if sections.contains(&Section::L) {
        eprintln!(
            "[{label}] (l) {} + {} deletions of {}: pipeline against the loop by hand",
            s.deletions,
            s.deletions,
            TYPICAL.describe()
        );
        if let Some(x) = kept(
            &mut r.errors,
            "(l)",
            crate::pipeline::pipeline(ctx, s.deletions).await,
        ) {
            eprintln!(
                "[{label}] (l) pipeline {:.1}/s, by hand {:.1}/s",
                x.accounts as f64 / x.ours_secs,
                x.accounts as f64 / x.loop_secs
            );
            r.pipeline = Some(x);
        }
    }
    if sections.contains(&Section::M) {
        eprintln!(
            "[{label}] (m) HTTP: /api/v1/me, the status page, log-in, {} s a load",
            s.http_secs
        );
        if let Some(x) = kept(&mut r.errors, "(m)", crate::http::http(ctx, s.http_secs).await) {
            for p in &x.paths {
                eprintln!(
                    "[{label}] (m) {}: {:.0}/s against bare {:.0}/s; p99 at {:.0}/s {:.2} ms against {:.2} ms",
                    p.name,
                    p.ours_saturated.per_sec(),
                    p.bare_saturated.per_sec(),
                    p.offered,
                    ms(p.ours_fixed.latency.p99),
                    ms(p.bare_fixed.latency.p99)
                );
            }
            eprintln!(
                "[{label}] (m) log-in {:.1}/s against argon2id {:.1}/s",
                x.log_in.per_sec(),
                x.argon2.per_sec()
            );
            r.http = Some(x);
        }
    }
    if sections.contains(&Section::O) {
        if ctx.kind == crate::results::StackKind::Server {
            eprintln!(
                "[{label}] (o) 1 API + 1 worker against 2 API + 3 workers, {} deletions each",
                s.layout_deletions
            );
            if let Some(x) = kept(
                &mut r.errors,
                "(o)",
                crate::layouts::layouts(ctx, s.layout_deletions).await,
            ) {
                for run in &x {
                    eprintln!(
                        "[{label}] (o) {} API + {} workers: {:.1} deletions/s",
                        run.apis,
                        run.workers,
                        run.rate()
                    );
                }
                r.layouts = Some(x);
            }
        } else {
            eprintln!("[{label}] (o) is measured on the server stack only");
        }
    }
    if sections.contains(&Section::N) {
        eprintln!(
            "[{label}] (n) a backlog of {} deletions against the steady rate over {}",
            s.backlog, s.steady_deletions
        );
        if let Some(x) = kept(
            &mut r.errors,
            "(n)",
            crate::backlog::backlog(ctx, s.steady_deletions, s.backlog).await,
        ) {
            eprintln!(
                "[{label}] (n) drained {:.1}/s against steady {:.1}/s; queue at most {}",
                x.drain_rate(),
                x.steady_rate(),
                x.max_queue
            );
            r.backlog = Some(x);
        }
    }
    if sections.contains(&Section::H) {
        eprintln!("[{label}] (h) queue page with {} tickets", s.tickets);
        if let Some(x) = kept(
            &mut r.errors,
            "(h)",
            queue_page(ctx, s.tickets, s.page_requests).await,
        ) {
            eprintln!(
                "[{label}] (h) p95 page {:.2} ms, API {:.2} ms, bare SELECT {:.2} ms",
                ms(x.page),
                ms(x.api),
                ms(x.select)
            );
            r.queue_page = Some(x);
        }
    }
    // (j) leaves most of its 100,000 requests waiting in the outbox (it samples the drain for
    // 30 s, it does not wait for it): it runs last, so no other section's workers drain them.
    if sections.contains(&Section::J) {
        eprintln!(
            "[{label}] (j) takeout of {} messages; bulk deletion of {} dormant accounts",
            s.big_messages, s.bulk_accounts
        );
        if let Some(x) = kept(
            &mut r.errors,
            "(j)",
            crate::requests::users_requests(ctx, s.bulk_accounts).await,
        ) {
            eprintln!(
                "[{label}] (j) takeout {:.1} s RSS +{}; bulk {:.0}/s, backlog at most {}",
                x.takeout_secs,
                x.takeout_rss.map_or("n/a".into(), mib),
                x.bulk_accounts as f64 / x.bulk_secs,
                x.max_backlog_seen
            );
            r.requests = Some(x);
        }
    }
}
