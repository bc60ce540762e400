//! What auditors ask of the ledger: filtered pages (newest first, keyset on `seq`), one entry
//! with the entries around it, and "was this person deleted?" by an identifier turned into its
//! pseudonym here and forgotten. Every answer is recorded as a read (`StaffRead`) before it is
//! given, so no read goes unrecorded.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::{
    events::{AuditEvent, OUTCOMES, ReadAction, StaffRead, timestamp},
    log, tree,
};
use crate::{
    db::Database,
    domain::{Email, VseeId},
    error::{AppError, AppResult},
    keys::Keys,
    models::{ledger_entry, ledger_subject},
    throttle::Throttle,
};

/// Every event the ledger records, for the filter.
pub const EVENTS: [&str; 19] = [
    "account_deleted",
    "deletion_cancelled",
    "reuse_block_lifted",
    "processor_acknowledged",
    "ticket_verified",
    "ticket_approval_recorded",
    "ticket_approved",
    "ticket_rejected",
    "ticket_extended",
    "ticket_linked",
    "ticket_closed",
    "ticket_merged",
    "ticket_assigned",
    "ticket_noted",
    "ticket_asked",
    "ledger_searched",
    "ledger_looked_up",
    "ledger_exported",
    "ledger_entry_viewed",
];
pub const CHANNELS: [&str; 5] = ["web", "api", "support", "bulk", "restore-guard"];
pub const ACTOR_KINDS: [&str; 6] = ["account_holder", "agent", "admin", "system", "staff", "processor"];
/// A lookup returns at most this many entries (a person has a handful).
const LOOKUP_LIMIT: u64 = 500;

/// An auditor's filter over the ledger. Unset fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub event: Option<String>,
    pub channel: Option<String>,
    pub actor_kind: Option<String>,
    pub outcome: Option<String>,
}

fn one_of(name: &str, value: Option<&String>, allowed: &[&str]) -> AppResult<()> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => Err(AppError::InvalidInput(format!(
            "{name} must be one of: {}",
            allowed.join(", ")
        ))),
        _ => Ok(()),
    }
}

impl Filter {
    /// Refuses values no entry can have, and an empty date range.
    pub fn checked(self) -> AppResult<Self> {
        one_of("event", self.event.as_ref(), &EVENTS)?;
        one_of("channel", self.channel.as_ref(), &CHANNELS)?;
        one_of("actor_kind", self.actor_kind.as_ref(), &ACTOR_KINDS)?;
        one_of("outcome", self.outcome.as_ref(), &OUTCOMES)?;
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from > to
        {
            return Err(AppError::InvalidInput("from must not be after to".into()));
        }
        Ok(self)
    }

    /// The filter as a read records it.
    pub fn described(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                out.insert(k.to_owned(), v);
            }
        };
        put("from", self.from.map(timestamp));
        put("to", self.to.map(timestamp));
        put("event", self.event.clone());
        put("channel", self.channel.clone());
        put("actor_kind", self.actor_kind.clone());
        put("outcome", self.outcome.clone());
        out
    }

    fn apply(&self, mut q: sea_orm::Select<ledger_entry::Entity>) -> sea_orm::Select<ledger_entry::Entity> {
        use ledger_entry::Column as C;
        if let Some(from) = self.from {
            q = q.filter(C::RecordedAt.gte(from));
        }
        if let Some(to) = self.to {
            q = q.filter(C::RecordedAt.lte(to));
        }
        for (column, value) in [
            (C::Event, &self.event),
            (C::Channel, &self.channel),
            (C::ActorKind, &self.actor_kind),
            (C::Outcome, &self.outcome),
        ] {
            if let Some(v) = value {
                q = q.filter(column.eq(v.as_str()));
            }
        }
        q
    }
}

/// A page of entries, newest first, and where the next one starts.
#[derive(Debug, Clone)]
pub struct Page {
    pub entries: Vec<ledger_entry::Model>,
    /// Pass as `before` for the next (older) page; `None` on the last.
    pub next_before: Option<i64>,
}

/// An entry as the entry page shows it.
#[derive(Debug, Clone)]
pub struct EntryRead {
    pub entry: ledger_entry::Model,
    /// Its Merkle leaf hash (kept when the body was pruned).
    pub leaf: tree::Hash,
    /// The entries about the same subject or key, oldest first (its timeline).
    pub related: Vec<ledger_entry::Model>,
}

/// Who reads, for the record.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    pub staff_id: i64,
    pub db: &'a Database,
    pub keys: &'a Keys,
    pub now: DateTime<Utc>,
}

impl Reader<'_> {
    async fn record(
        &self,
        action: ReadAction,
        query: BTreeMap<String, String>,
        results: Option<u64>,
    ) -> AppResult<()> {
        let event = AuditEvent::StaffRead(StaffRead {
            id: Uuid::new_v4().to_string(),
            action,
            staff_id: self.staff_id,
            query,
            results,
        });
        super::record(self.db, self.keys, &event, self.now).await
    }

    /// Entries matching `filter` with `seq < before`, newest first, at most `limit`.
    pub async fn search(&self, filter: &Filter, before: Option<i64>, limit: u64) -> AppResult<Page> {
        let mut q = filter.apply(ledger_entry::Entity::find());
        if let Some(before) = before {
            q = q.filter(ledger_entry::Column::Seq.lt(before));
        }
        let mut entries = q
            .order_by_desc(ledger_entry::Column::Seq)
            .limit(limit + 1)
            .all(&self.db.conn)
            .await?;
        let next_before = if entries.len() as u64 > limit {
            entries.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            entries.last().map(|e| e.seq)
        } else {
            None
        };
        let mut query = filter.described();
        if let Some(before) = before {
            query.insert("before".into(), before.to_string());
        }
        self.record(ReadAction::Searched, query, Some(entries.len() as u64))
            .await?;
        Ok(Page { entries, next_before })
    }

    /// One entry, its leaf hash, and the other entries about the same subject or key (its
    /// timeline), oldest first.
    pub async fn entry(&self, seq: i64) -> AppResult<EntryRead> {
        let entry = ledger_entry::Entity::find_by_id(seq)
            .one(&self.db.conn)
            .await?
            .ok_or(AppError::NotFound)?;
        let related = related(self.db, &entry).await?;
        let index = u64::try_from(seq.saturating_sub(1)).map_err(AppError::internal)?;
        let leaf = match entry.pruned_at {
            Some(_) => log::leaves(&self.db.conn, &[index])
                .await?
                .remove(&index)
                .unwrap_or_default(),
            None => tree::leaf_hash(entry.body.as_bytes()),
        };
        self.record(
            ReadAction::Viewed,
            BTreeMap::from([("seq".to_owned(), seq.to_string())]),
            Some(1),
        )
        .await?;
        Ok(EntryRead { entry, leaf, related })
    }

    /// "Was this person deleted?": the entries naming `identifier` (an email or a VSee ID),
    /// newest first. The identifier is turned into its pseudonym and dropped.
    /// Throttled per staff member; a malformed identifier is refused before it counts.
    pub async fn lookup(
        &self,
        throttle: &Throttle,
        identifier: &str,
    ) -> AppResult<(&'static str, Vec<ledger_entry::Model>)> {
        let (kind, pseudonym) = pseudonym_of(self.keys, identifier)?;
        throttle.lookup(self.db, self.staff_id, self.now).await?;
        let seqs: Vec<i64> = ledger_subject::Entity::find()
            .select_only()
            .column(ledger_subject::Column::Seq)
            .filter(ledger_subject::Column::Pseudonym.eq(&pseudonym))
            .order_by_desc(ledger_subject::Column::Seq)
            .limit(LOOKUP_LIMIT)
            .into_tuple()
            .all(&self.db.conn)
            .await?;
        let entries = ledger_entry::Entity::find()
            .filter(ledger_entry::Column::Seq.is_in(seqs))
            .order_by_desc(ledger_entry::Column::Seq)
            .all(&self.db.conn)
            .await?;
        self.record(
            ReadAction::LookedUp,
            BTreeMap::from([
                ("kind".to_owned(), kind.to_owned()),
                ("pseudonym".to_owned(), pseudonym),
            ]),
            Some(entries.len() as u64),
        )
        .await?;
        Ok((kind, entries))
    }

    /// Records an export about to stream.
    pub async fn exporting(&self, format: &str) -> AppResult<()> {
        self.record(
            ReadAction::Exported,
            BTreeMap::from([("format".to_owned(), format.to_owned())]),
            None,
        )
        .await
    }
}

/// An email (it has an @) or a VSee ID, as its pseudonym: the kind and the keyed hash.
fn pseudonym_of(keys: &Keys, identifier: &str) -> AppResult<(&'static str, String)> {
    let refuse = |_| AppError::InvalidInput("identifier must be an email address or a VSee ID".into());
    if identifier.contains('@') {
        let email = Email::parse(identifier).map_err(refuse)?;
        Ok(("email", keys.pseudonym("email", email.as_str())))
    } else {
        let id = VseeId::parse(identifier).map_err(refuse)?;
        Ok(("vsee_id", keys.pseudonym("vsee_id", id.as_str())))
    }
}

/// The entries about the same subject (by pseudonym) or with the same key, oldest first.
async fn related(db: &Database, entry: &ledger_entry::Model) -> AppResult<Vec<ledger_entry::Model>> {
    let mut seqs: Vec<i64> = Vec::new();
    if !entry.subject.is_empty() {
        seqs = ledger_subject::Entity::find()
            .select_only()
            .column(ledger_subject::Column::Seq)
            .filter(ledger_subject::Column::Pseudonym.eq(&entry.subject))
            .limit(LOOKUP_LIMIT)
            .into_tuple()
            .all(&db.conn)
            .await?;
    }
    let about = Condition::any()
        .add(ledger_entry::Column::Seq.is_in(seqs))
        .add(ledger_entry::Column::RequestId.eq(&entry.request_id));
    Ok(ledger_entry::Entity::find()
        .filter(about)
        .order_by_asc(ledger_entry::Column::Seq)
        .limit(LOOKUP_LIMIT)
        .all(&db.conn)
        .await?)
}
