//! The ledger as files an auditor takes away: NDJSON (each signed body with its chain links)
//! and CSV (the indexed columns, and the body). Both stream in keyset pages, so a million
//! entries take the memory of one page.

use futures::{Stream, StreamExt, stream};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::events::timestamp;
use crate::{
    db::Database,
    error::{AppError, AppResult},
    models::ledger_entry,
};

const PAGE: u64 = 1000;

/// One exported line: the signed body plus the chain links, as NDJSON.
/// A pruned entry's line has no body: `"entry":null` and when it was pruned.
pub fn export_line(e: &ledger_entry::Model) -> String {
    if let Some(pruned) = e.pruned_at {
        return format!(
            "{{\"seq\":{},\"prev_hash\":\"{}\",\"hash\":\"{}\",\"entry\":null,\"pruned_at\":\"{}\"}}",
            e.seq,
            e.prev_hash,
            e.hash,
            timestamp(pruned)
        );
    }
    format!(
        "{{\"seq\":{},\"prev_hash\":\"{}\",\"hash\":\"{}\",\"entry\":{}}}",
        e.seq, e.prev_hash, e.hash, e.body
    )
}

pub const CSV_HEADER: &str =
    "seq,recorded_at,event,key,channel,actor_kind,outcome,subject,prev_hash,hash,body";

/// One CSV record (RFC 4180: fields quoted when they hold a comma, quote or line break).
pub fn csv_line(e: &ledger_entry::Model) -> String {
    let fields = [
        e.seq.to_string(),
        timestamp(e.recorded_at),
        e.event.clone(),
        e.request_id.clone(),
        e.channel.clone().unwrap_or_default(),
        e.actor_kind.clone().unwrap_or_default(),
        e.outcome.clone().unwrap_or_default(),
        e.subject.clone(),
        e.prev_hash.clone(),
        e.hash.clone(),
        e.body.clone(),
    ];
    fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",")
}

fn csv_field(f: &str) -> String {
    // A leading =, +, - or @ would be a formula to a spreadsheet: quote it as text.
    let formula = f.starts_with(['=', '+', '-', '@']);
    if formula || f.contains([',', '"', '\n', '\r']) {
        format!("\"{}{}\"", if formula { "'" } else { "" }, f.replace('"', "\"\""))
    } else {
        f.to_owned()
    }
}

/// Every entry in order, a page at a time.
pub fn pages(db: &Database) -> impl Stream<Item = AppResult<Vec<ledger_entry::Model>>> + Send + 'static {
    let conn = db.conn.clone();
    stream::unfold(Some(0i64), move |after| {
        let conn = conn.clone();
        async move {
            let after = after?;
            let page = ledger_entry::Entity::find()
                .filter(ledger_entry::Column::Seq.gt(after))
                .order_by_asc(ledger_entry::Column::Seq)
                .limit(PAGE)
                .all(&conn)
                .await;
            match page {
                Ok(page) if page.is_empty() => None,
                Ok(page) => {
                    let next = page.last().map(|e| e.seq);
                    Some((Ok(page), next))
                }
                Err(e) => Some((Err(AppError::from(e)), None)),
            }
        }
    })
}

/// Streams every entry in order to `out` as NDJSON.
pub async fn export(db: &Database, out: &mut dyn std::io::Write) -> AppResult<u64> {
    let mut count = 0;
    let mut pages = std::pin::pin!(pages(db));
    while let Some(page) = pages.next().await {
        for e in &page? {
            writeln!(out, "{}", export_line(e)).map_err(AppError::internal)?;
            count += 1;
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_when_they_must_be_and_formulas_are_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("{\"k\":1}"), "\"{\"\"k\"\":1}\"");
        assert_eq!(csv_field("=cmd()"), "\"'=cmd()\"");
    }
}
