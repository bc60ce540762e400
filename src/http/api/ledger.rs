//! The auditor's API over the ledger: filtered pages, one entry with its timeline, streamed
//! exports and "was this person deleted?". Auditors and admins only; every call is itself a
//! ledger entry (`services::ledger::search::Reader`), written before the answer is sent.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use poem::{Body, web::Data};
use poem_openapi::{
    ApiResponse, Enum, Object, OpenApi,
    param::{Path, Query},
    payload::{Binary, Json},
};

use super::{
    ApiTags,
    auth::{Auditor, Staff},
    fields::IdentifierText,
};
use crate::{
    http::error::ApiResult,
    models::ledger_entry,
    services::ledger::{
        export,
        search::{Filter, Reader},
        timeline,
    },
    state::AppState,
};

pub struct LedgerApi;

/// A ledger entry's indexed columns.
#[derive(Object)]
pub struct EntryView {
    pub seq: i64,
    pub recorded_at: DateTime<Utc>,
    pub event: String,
    /// What it is about: a deletion's request id, a ticket's reference, a read's id.
    pub key: String,
    /// web | api | support | bulk | restore-guard (deletions only).
    #[oai(nullable)]
    pub channel: Option<String>,
    /// account_holder | agent | admin | system | staff | processor
    #[oai(nullable)]
    pub actor_kind: Option<String>,
    /// completed | completed_without_email | cancelled | approved | rejected | closed | merged
    #[oai(nullable)]
    pub outcome: Option<String>,
    /// The subject's VSee ID pseudonym; empty when it names none.
    pub subject: String,
    /// The chain MAC.
    pub hash: String,
}

impl EntryView {
    pub fn of(e: &ledger_entry::Model) -> Self {
        Self {
            seq: e.seq,
            recorded_at: e.recorded_at,
            event: e.event.clone(),
            key: e.request_id.clone(),
            channel: e.channel.clone(),
            actor_kind: e.actor_kind.clone(),
            outcome: e.outcome.clone(),
            subject: e.subject.clone(),
            hash: e.hash.clone(),
        }
    }
}

#[derive(Object)]
pub struct LedgerPage {
    pub entries: Vec<EntryView>,
    /// Pass as `before` for the next, older page; `null` on the last.
    #[oai(nullable)]
    pub next_before: Option<i64>,
}

#[derive(Object)]
pub struct TimelineStep {
    pub at: String,
    pub what: String,
    /// The entry that records it.
    pub seq: i64,
}

#[derive(Object)]
pub struct EntryDetail {
    pub entry: EntryView,
    /// The signed body, as JSON; `null` once pruned (past `audit.retention_days`).
    pub body: serde_json::Value,
    /// When the body was pruned, if it was.
    #[oai(nullable)]
    pub pruned_at: Option<DateTime<Utc>>,
    pub prev_hash: String,
    /// The entry's Merkle leaf hash (SHA-256 of 0x00 and the body), hex.
    pub leaf_hash: String,
    pub timeline: Vec<TimelineStep>,
}

#[derive(Object)]
pub struct LookupRequest {
    /// An email address or a VSee ID. Never stored or logged: only its pseudonym is used.
    pub identifier: IdentifierText,
}

#[derive(Object)]
pub struct LookupResult {
    /// email | vsee_id: how the identifier was read.
    pub kind: String,
    /// Whether an `account_deleted` entry names it.
    pub deleted: bool,
    pub entries: Vec<EntryView>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Ndjson,
}

#[derive(ApiResponse)]
enum PageResponse {
    #[oai(status = 200)]
    Ok(Json<LedgerPage>),
}

#[derive(ApiResponse)]
enum EntryResponse {
    #[oai(status = 200)]
    Ok(Json<EntryDetail>),
}

#[derive(ApiResponse)]
enum LookupResponse {
    #[oai(status = 200)]
    Ok(Json<LookupResult>),
}

#[derive(ApiResponse)]
enum ExportResponse {
    /// RFC 4180 CSV with a header line.
    #[oai(status = 200, content_type = "text/csv; charset=utf-8")]
    Csv(Binary<Body>, #[oai(header = "Content-Disposition")] String),
    /// One JSON object a line: the signed body with its chain links.
    #[oai(status = 200, content_type = "application/x-ndjson")]
    Ndjson(Binary<Body>, #[oai(header = "Content-Disposition")] String),
}

fn reader<'a>(state: &'a AppState, staff: &Staff<Auditor>) -> Reader<'a> {
    Reader {
        staff_id: staff.0.staff.id,
        db: &state.db,
        keys: &state.keys,
        now: state.clock.now(),
    }
}

#[OpenApi(tag = "ApiTags::Ledger")]
impl LedgerApi {
    /// Ledger entries, newest first, filtered; keyset pages (`before` = the previous page's
    /// `next_before`). Auditors and admins; recorded as a `ledger_searched` entry.
    /// `422 invalid_input`: an unknown event, channel, actor kind or outcome, or `from` after `to`.
    #[oai(path = "/v1/ledger", method = "get", operation_id = "listLedger")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        state: Data<&AppState>,
        staff: Staff<Auditor>,
        /// Recorded at or after.
        from: Query<Option<DateTime<Utc>>>,
        /// Recorded at or before.
        to: Query<Option<DateTime<Utc>>>,
        event: Query<Option<String>>,
        /// web | api | support | bulk | restore-guard
        channel: Query<Option<String>>,
        /// account_holder | agent | admin | system | staff | processor
        actor_kind: Query<Option<String>>,
        /// completed | completed_without_email | cancelled | approved | rejected | closed | merged
        outcome: Query<Option<String>>,
        /// Entries with a smaller sequence number than this.
        #[oai(validator(minimum(value = "1")))]
        before: Query<Option<i64>>,
        /// At most this many (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u64>>,
    ) -> ApiResult<PageResponse> {
        let filter = Filter {
            from: from.0,
            to: to.0,
            event: event.0,
            channel: channel.0,
            actor_kind: actor_kind.0,
            outcome: outcome.0,
        }
        .checked()?;
        let page = reader(&state, &staff)
            .search(&filter, before.0, limit.0.unwrap_or(50))
            .await?;
        Ok(PageResponse::Ok(Json(LedgerPage {
            entries: page.entries.iter().map(EntryView::of).collect(),
            next_before: page.next_before,
        })))
    }

    /// The whole ledger as a download, oldest first, streamed (any size, flat memory).
    /// Auditors and admins; recorded as a `ledger_exported` entry.
    #[oai(path = "/v1/ledger/export", method = "get", operation_id = "exportLedger")]
    async fn export(
        &self,
        state: Data<&AppState>,
        staff: Staff<Auditor>,
        format: Query<ExportFormat>,
    ) -> ApiResult<ExportResponse> {
        let name = match format.0 {
            ExportFormat::Csv => "csv",
            ExportFormat::Ndjson => "ndjson",
        };
        reader(&state, &staff).exporting(name).await?;
        let csv = format.0 == ExportFormat::Csv;
        let header =
            futures::stream::iter(csv.then(|| Ok(format!("{}\r\n", export::CSV_HEADER).into_bytes())));
        let lines = export::pages(&state.db).map(move |page| {
            let page = page.map_err(|e| std::io::Error::other(e.detail()))?;
            let mut out = String::with_capacity(page.len() * 512);
            for e in &page {
                if csv {
                    out.push_str(&export::csv_line(e));
                    out.push_str("\r\n");
                } else {
                    out.push_str(&export::export_line(e));
                    out.push('\n');
                }
            }
            Ok::<_, std::io::Error>(out.into_bytes())
        });
        let body = Binary(Body::from_bytes_stream(header.chain(lines)));
        let disposition = format!(
            "attachment; filename=\"erasure-ledger-{}.{name}\"",
            state.clock.now().format("%Y%m%dT%H%M%SZ")
        );
        Ok(if csv {
            ExportResponse::Csv(body, disposition)
        } else {
            ExportResponse::Ndjson(body, disposition)
        })
    }

    /// One entry: its columns, signed body, leaf hash, and the timeline of its subject.
    /// Auditors and admins; recorded as a `ledger_entry_viewed` entry. `404 not_found`.
    #[oai(path = "/v1/ledger/:seq", method = "get", operation_id = "getLedgerEntry")]
    async fn entry(
        &self,
        state: Data<&AppState>,
        staff: Staff<Auditor>,
        seq: Path<i64>,
    ) -> ApiResult<EntryResponse> {
        let read = reader(&state, &staff).entry(seq.0).await?;
        let (entry, related, leaf) = (read.entry, read.related, read.leaf);
        let body = serde_json::from_str(&entry.body).unwrap_or(serde_json::Value::Null);
        Ok(EntryResponse::Ok(Json(EntryDetail {
            entry: EntryView::of(&entry),
            body,
            pruned_at: entry.pruned_at,
            prev_hash: entry.prev_hash.clone(),
            leaf_hash: hex::encode(leaf),
            timeline: timeline::of(&related)
                .into_iter()
                .map(|s| TimelineStep {
                    at: s.at,
                    what: s.what,
                    seq: s.seq,
                })
                .collect(),
        })))
    }

    /// "Was this person deleted?": the entries that name an email address or a VSee ID. The
    /// identifier is turned into its pseudonym and never stored or logged; lookups are
    /// throttled per staff member (`429 rate_limited`). Auditors and admins; recorded as a
    /// `ledger_looked_up` entry (with the pseudonym).
    #[oai(path = "/v1/ledger/lookup", method = "post", operation_id = "lookupLedger")]
    async fn lookup(
        &self,
        state: Data<&AppState>,
        staff: Staff<Auditor>,
        body: Json<LookupRequest>,
    ) -> ApiResult<LookupResponse> {
        let (kind, entries) = reader(&state, &staff)
            .lookup(&state.throttle, body.identifier.as_str())
            .await?;
        Ok(LookupResponse::Ok(Json(LookupResult {
            kind: kind.to_owned(),
            deleted: entries.iter().any(|e| e.event == "account_deleted"),
            entries: entries.iter().map(EntryView::of).collect(),
        })))
    }
}
