//! The table of results, and the debug timelines.

use std::{fmt::Write as _, time::Duration};

use erasure::models::deletion_request;

use crate::{
    cli::Sizes,
    results::{Row, StackKind, StackResults},
};

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub fn yes_no(met: bool) -> String {
    if met { "yes" } else { "NO" }.to_owned()
}

pub fn table_rows(
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
            ">= 0.8x",
            yes_no(x >= 0.8),
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
            ">= 0.9x",
            yes_no(x >= 0.9),
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
    crate::support::rows(&stack, r, rows);
    crate::audit::rows(&stack, r, rows);
    crate::requests::rows(&stack, r, rows);
    crate::shredding::rows(&stack, r, rows);
    crate::pipeline::rows(&stack, r, rows, notes);
    crate::http::rows(&stack, r, rows);
    crate::layouts::rows(&stack, r, rows, notes);
    crate::backlog::rows(&stack, r, rows, notes);
}

pub fn render_table(rows: &[Row]) -> String {
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

pub fn debug_rows(rows: &[deletion_request::Model]) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::NoopRate;

    #[test]
    fn a_no_op_rate_makes_two_rows_of_a_markdown_table() {
        let results = StackResults {
            noop: Some(NoopRate { jobs: 600, secs: 2.0 }),
            ..StackResults::default()
        };
        let sizes = Sizes::new(&<crate::cli::Args as clap::Parser>::parse_from(["bench"]));
        let (mut rows, mut notes) = (Vec::new(), Vec::new());
        table_rows(StackKind::Sqlite, &results, &sizes, &mut rows, &mut notes);
        let table = render_table(&rows);
        assert_eq!(
            table.lines().collect::<Vec<_>>(),
            [
                "| stack | measure | value | baseline | ratio | target | met? |",
                "|---|---|---|---|---|---|---|",
                "| sqlite | (a) raw apalis no-op jobs/s (600 jobs, 1 worker) | 300 jobs/s | — | — | — (baseline of b) | — |",
                "| sqlite | (a)/3 no-op deletion-equivalents/s | 100 /s | — | — | — (baseline of b) | — |",
            ]
        );
        assert!(notes.is_empty());
    }
}
