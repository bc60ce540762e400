//! The auditor's pages (auditors and admins): the ledger with its filters and keyset pages,
//! one entry with its timeline, and "was this person deleted?". Every page is the same
//! recorded read as its API call (`services::ledger::search::Reader`).

use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use poem::{
    Response, handler,
    web::{CsrfToken, Data, Path, Query},
};
use serde::Deserialize;

use super::{
    super::{error_page, failed, ok},
    ledger_views::{LedgerEntryPage, LedgerPage, LedgerRow, LookupAnswer, LookupPage, TimelineRow},
    views::{Choice, Nav},
};
use crate::{
    error::{AppError, AppResult},
    http::{
        api::auth::Auditor,
        extract::{CsrfForm, StaffPage},
    },
    services::{
        ledger::{
            events::OUTCOMES,
            search::{ACTOR_KINDS, CHANNELS, EVENTS, Filter, Reader},
            timeline,
        },
        staff::StaffSession,
    },
    state::AppState,
};

const PAGE_SIZE: u64 = 50;

fn reader<'a>(state: &'a AppState, me: &StaffSession) -> Reader<'a> {
    Reader {
        staff_id: me.staff.id,
        db: &state.db,
        keys: &state.keys,
        now: state.clock.now(),
    }
}

/// `("", "any")` and each value as its own label.
fn options(values: &[&'static str], current: &str) -> Vec<Choice> {
    let pairs: Vec<(&'static str, &'static str)> = std::iter::once(("", "any"))
        .chain(values.iter().map(|v| (*v, *v)))
        .collect();
    Choice::list(&pairs, current)
}

#[derive(Deserialize, Default)]
pub(super) struct LedgerQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    actor_kind: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    before: String,
}

fn day(text: &str, end: bool) -> AppResult<Option<chrono::DateTime<Utc>>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| AppError::InvalidInput("dates are YYYY-MM-DD".into()))?;
    let time = if end {
        NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999)
    } else {
        Some(NaiveTime::MIN)
    };
    Ok(time.map(|t| Utc.from_utc_datetime(&date.and_time(t))))
}

fn chosen(v: &str) -> Option<String> {
    Some(v.trim().to_owned()).filter(|v| !v.is_empty())
}

impl LedgerQuery {
    fn filter(&self) -> AppResult<(Filter, Option<i64>)> {
        let before = match self.before.trim() {
            "" => None,
            b => Some(
                b.parse::<i64>()
                    .ok()
                    .filter(|b| *b > 0)
                    .ok_or_else(|| AppError::InvalidInput("before is an entry number".into()))?,
            ),
        };
        let filter = Filter {
            from: day(&self.from, false)?,
            to: day(&self.to, true)?,
            event: chosen(&self.event),
            channel: chosen(&self.channel),
            actor_kind: chosen(&self.actor_kind),
            outcome: chosen(&self.outcome),
        }
        .checked()?;
        Ok((filter, before))
    }

    /// This query, from entry `before` down.
    fn before(&self, before: i64) -> String {
        let enc = |v: &str| utf8_percent_encode(v, NON_ALPHANUMERIC).to_string();
        format!(
            "from={}&to={}&event={}&channel={}&actor_kind={}&outcome={}&before={before}",
            enc(&self.from),
            enc(&self.to),
            enc(&self.event),
            enc(&self.channel),
            enc(&self.actor_kind),
            enc(&self.outcome)
        )
    }
}

#[handler]
pub(super) async fn list(
    state: Data<&AppState>,
    StaffPage(me, ..): StaffPage<Auditor>,
    token: &CsrfToken,
    query: Option<Query<LedgerQuery>>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let mut page = LedgerPage {
        csrf_token: token.0.clone(),
        staff_name: me.staff.name.clone(),
        nav: Nav::of(me.staff.role),
        from: query.from.clone(),
        to: query.to.clone(),
        event_options: options(&EVENTS, query.event.trim()),
        channel_options: options(&CHANNELS, query.channel.trim()),
        actor_options: options(&ACTOR_KINDS, query.actor_kind.trim()),
        outcome_options: options(&OUTCOMES, query.outcome.trim()),
        rows: Vec::new(),
        next: None,
        error: None,
    };
    let result = async {
        let (filter, before) = query.filter()?;
        reader(&state, &me).search(&filter, before, PAGE_SIZE).await
    }
    .await;
    match result {
        Ok(found) => {
            page.rows = found.entries.iter().map(LedgerRow::of).collect();
            page.next = found.next_before.map(|b| query.before(b));
            ok(&page)
        }
        Err(e) => {
            page.error = Some(e.to_string());
            failed(&e, &page)
        }
    }
}

#[handler]
pub(super) async fn entry(
    state: Data<&AppState>,
    StaffPage(me, ..): StaffPage<Auditor>,
    token: &CsrfToken,
    Path(seq): Path<i64>,
) -> Response {
    match reader(&state, &me).entry(seq).await {
        Ok(read) => {
            let (entry, related) = (read.entry, read.related);
            let body = serde_json::from_str::<serde_json::Value>(&entry.body)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or_else(|_| entry.body.clone());
            ok(&LedgerEntryPage {
                csrf_token: token.0.clone(),
                staff_name: me.staff.name.clone(),
                nav: Nav::of(me.staff.role),
                row: LedgerRow::of(&entry),
                subject: entry.subject.clone(),
                prev_hash: entry.prev_hash.clone(),
                hash: entry.hash.clone(),
                leaf_hash: hex::encode(read.leaf),
                pruned_at: entry
                    .pruned_at
                    .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
                body,
                timeline: timeline::of(&related)
                    .into_iter()
                    .map(|s| TimelineRow {
                        at: s.at,
                        what: s.what,
                        seq: s.seq,
                    })
                    .collect(),
            })
        }
        Err(e) => error_page(&e),
    }
}

fn lookup_page(token: &CsrfToken, me: &StaffSession) -> LookupPage {
    LookupPage {
        csrf_token: token.0.clone(),
        staff_name: me.staff.name.clone(),
        nav: Nav::of(me.staff.role),
        answer: None,
        error: None,
    }
}

#[handler]
pub(super) fn lookup_form(StaffPage(me, ..): StaffPage<Auditor>, token: &CsrfToken) -> Response {
    ok(&lookup_page(token, &me))
}

#[derive(Deserialize)]
pub(super) struct LookupForm {
    #[serde(default)]
    identifier: String,
}

#[handler]
pub(super) async fn lookup(
    state: Data<&AppState>,
    StaffPage(me, ..): StaffPage<Auditor>,
    token: &CsrfToken,
    CsrfForm(form): CsrfForm<LookupForm>,
) -> Response {
    let mut page = lookup_page(token, &me);
    match reader(&state, &me)
        .lookup(&state.throttle, &form.identifier)
        .await
    {
        Ok((kind, entries)) => {
            page.answer = Some(LookupAnswer {
                kind: if kind == "email" {
                    "email address"
                } else {
                    "VSee ID"
                },
                deleted: entries.iter().any(|e| e.event == "account_deleted"),
                rows: entries.iter().map(LedgerRow::of).collect(),
            });
            ok(&page)
        }
        Err(e) => {
            page.error = Some(e.to_string());
            failed(&e, &page)
        }
    }
}
