//! `GET /staff/reports` (auditors and admins): the service's deletions over time, drawn on the
//! server from `services::reports`.

use poem::{
    Response, handler,
    web::{CsrfToken, Data},
};

use super::{
    super::{error_page, ok},
    charts::{SERIES_BLUE, SERIES_GREEN, SERIES_ORANGE, SERIES_RED, Series, chart},
    ledger_views::{ProcessorRow, ReportsPage},
    views::Nav,
};
use crate::{
    http::{api::auth::Auditor, extract::StaffPage},
    services::{processors, reports},
    state::AppState,
};

fn count(v: f64) -> String {
    format!("{v:.0}")
}

fn seconds(v: f64) -> String {
    if v < 120.0 {
        format!("{v:.1} s")
    } else {
        format!("{:.1} min", v / 60.0)
    }
}

fn counts(values: &[u64]) -> Vec<Option<f64>> {
    values.iter().map(|v| Some(*v as f64)).collect()
}

#[handler]
pub(super) async fn show(
    state: Data<&AppState>,
    StaffPage(me, ..): StaffPage<Auditor>,
    token: &CsrfToken,
) -> Response {
    let r = match reports::build(&state.db, state.clock.now()).await {
        Ok(r) => r,
        Err(e) => return error_page(&e),
    };
    let configured: Vec<String> = state.processors.iter().map(|p| p.name.clone()).collect();
    let processors = match processors::standing(&state.db, &configured).await {
        Ok(found) => found
            .into_iter()
            .map(|s| ProcessorRow {
                never_acknowledged: s.never_acknowledged(),
                name: s.processor,
                configured: s.configured,
                offered: s.offered,
                acknowledged: s.acknowledged,
                dead: s.dead,
                waiting_since: s
                    .waiting_since
                    .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
            })
            .collect(),
        Err(e) => return error_page(&e),
    };
    let days: Vec<String> = r.days.iter().map(|d| d.format("%m-%d").to_string()).collect();
    let weeks: Vec<String> = r.weeks.iter().map(|d| d.format("%Y-%m-%d").to_string()).collect();
    let palette = [SERIES_BLUE, SERIES_ORANGE, SERIES_GREEN];
    let by_channel = r
        .deletions
        .iter()
        .zip(palette)
        .map(|((channel, values), color)| Series {
            name: (*channel).to_owned(),
            color,
            values: counts(values),
        })
        .collect();
    let open = |values: &[Option<u64>]| values.iter().map(|v| v.map(|v| v as f64)).collect();
    let charts = vec![
        chart(
            "Deletions completed per day, by channel",
            "deletions",
            &days,
            by_channel,
            count,
        ),
        chart(
            "Request to completion per week (p50, p95)",
            "seconds",
            &weeks,
            vec![
                Series {
                    name: "p50".into(),
                    color: SERIES_BLUE,
                    values: r.p50.clone(),
                },
                Series {
                    name: "p95".into(),
                    color: SERIES_RED,
                    values: r.p95.clone(),
                },
            ],
            seconds,
        ),
        chart(
            "Tickets open, due within 7 days, and overdue (daily reading)",
            "tickets",
            &days,
            vec![
                Series {
                    name: "open".into(),
                    color: SERIES_BLUE,
                    values: open(&r.open),
                },
                Series {
                    name: "due soon".into(),
                    color: SERIES_ORANGE,
                    values: open(&r.due_soon),
                },
                Series {
                    name: "overdue".into(),
                    color: SERIES_RED,
                    values: open(&r.overdue),
                },
            ],
            count,
        ),
        chart(
            "Failed deletions and dead jobs per day",
            "count",
            &days,
            vec![
                Series {
                    name: "failed deletions".into(),
                    color: SERIES_RED,
                    values: counts(&r.failed),
                },
                Series {
                    name: "dead jobs".into(),
                    color: SERIES_ORANGE,
                    values: counts(&r.dead),
                },
            ],
            count,
        ),
    ];
    ok(&ReportsPage {
        csrf_token: token.0.clone(),
        staff_name: me.staff.name.clone(),
        nav: Nav::of(me.staff.role),
        charts,
        processors,
    })
}
