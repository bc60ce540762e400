//! Takeout (GDPR Art. 20): the holder's data as a ZIP before they leave. Asking writes an
//! export row and its job in one transaction; the job streams the archive to a file
//! (`archive`), page by page, so its memory does not grow with the account, sealed in chunks
//! under the account's data key (`vault::sealed_file`: the purge's key destruction reaches
//! every copy of the file too); the holder is mailed a link that needs their log-in, the
//! download opens it as it streams, and the file is removed after `export.ttl_hours`.
//!
//! Invariant: no archive outlives its account. Archives are in the data map (the
//! `data_exports` rows and the `exports` file store), so the purge removes them; and an
//! archive is only made ready in a transaction that finds its account active under a row
//! lock, so one finished while a deletion runs is discarded instead of left behind.

mod archive;

use chrono::{DateTime, Utc};
use erasure_jobs::JobKind;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, sea_query::Expr,
};
use std::path::Path;
use uuid::Uuid;

use crate::{
    db::Database,
    domain::AccountStatus,
    env::Env,
    error::{AppError, AppResult},
    models::{account, data_export},
    services::{
        notifications::{self, NoticeKind},
        outbox,
    },
    vault::{KeyOwner, sealed_file::SealedFileReader},
};

pub use archive::ENTRIES;

/// Where archives are written, under the storage data directory.
pub const EXPORTS_DIR: &str = "exports";

/// Where an export stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportStatus {
    Queued,
    Running,
    Ready,
    Failed,
}

impl ExportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    fn parse(raw: &str) -> Self {
        match raw {
            "running" => Self::Running,
            "ready" => Self::Ready,
            "failed" => Self::Failed,
            _ => Self::Queued,
        }
    }
}

/// An export as its holder sees it.
#[derive(Debug, Clone)]
pub struct Export {
    pub id: Uuid,
    pub status: ExportStatus,
    pub items_done: i64,
    pub items_total: i64,
    pub bytes: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Export {
    fn of(m: &data_export::Model) -> AppResult<Self> {
        Ok(Self {
            id: Uuid::parse_str(&m.id).map_err(AppError::internal)?,
            status: ExportStatus::parse(&m.status),
            items_done: m.items_done,
            items_total: m.items_total,
            bytes: m.bytes,
            created_at: m.created_at,
            expires_at: m.expires_at,
        })
    }

    /// Whether it can be downloaded at `now`.
    pub fn downloadable(&self, now: DateTime<Utc>) -> bool {
        self.status == ExportStatus::Ready && self.expires_at.is_some_and(|at| at > now)
    }
}

/// A finished archive younger than this is handed out again instead of building another: an
/// archive of a large account is real work, and asking must not be a way to make us do it
/// over and over.
const REUSE_WITHIN: chrono::Duration = chrono::Duration::hours(1);

/// Starts an export of `account_id`, or returns the one still being built or finished within
/// the hour (asking twice builds once). True when it started one.
pub async fn request(env: Env<'_>, account_id: i64) -> AppResult<(Export, bool)> {
    let now = env.now();
    let tx = env.db.begin_write().await?;
    let building = data_export::Entity::find()
        .filter(data_export::Column::AccountId.eq(account_id))
        .filter(
            sea_orm::Condition::any()
                .add(data_export::Column::Status.is_in(["queued", "running"]))
                .add(
                    sea_orm::Condition::all()
                        .add(data_export::Column::Status.eq("ready"))
                        .add(data_export::Column::FinishedAt.gt(now - REUSE_WITHIN))
                        .add(data_export::Column::ExpiresAt.gt(now)),
                ),
        )
        .order_by_desc(data_export::Column::CreatedAt)
        .one(&tx)
        .await?;
    if let Some(building) = building {
        tx.rollback().await?;
        return Ok((Export::of(&building)?, false));
    }
    let id = Uuid::new_v4();
    let row = data_export::ActiveModel {
        id: Set(id.to_string()),
        account_id: Set(account_id),
        status: Set(ExportStatus::Queued.as_str().to_owned()),
        items_done: Set(0),
        items_total: Set(0),
        file_name: Set(None),
        bytes: Set(None),
        created_at: Set(now),
        finished_at: Set(None),
        expires_at: Set(None),
        last_error: Set(None),
    }
    .insert(&tx)
    .await?;
    outbox::add(&tx, JobKind::Export, id, now).await?;
    tx.commit().await?;
    env.wake_relay();
    tracing::info!(account_id, export_id = %id, "takeout requested");
    Ok((Export::of(&row)?, true))
}

/// The account's newest export, if any.
pub async fn newest(db: &Database, account_id: i64) -> AppResult<Option<Export>> {
    data_export::Entity::find()
        .filter(data_export::Column::AccountId.eq(account_id))
        .order_by_desc(data_export::Column::CreatedAt)
        .limit(1)
        .one(&db.conn)
        .await?
        .as_ref()
        .map(Export::of)
        .transpose()
}

/// An archive's name in the `exports` store; also what its chunks are sealed for.
fn file_name(account_id: i64, export_id: &str) -> String {
    format!("{account_id}.{export_id}.zip")
}

fn place(file_name: &str) -> String {
    format!("{EXPORTS_DIR}/{file_name}")
}

/// The archive, opened for its own holder only while it can be downloaded: its clear bytes
/// come chunk by chunk as the download streams.
pub async fn open_for(
    env: Env<'_>,
    data_dir: &Path,
    account_id: i64,
    id: Uuid,
) -> AppResult<SealedFileReader> {
    let found = data_export::Entity::find_by_id(id.to_string())
        .filter(data_export::Column::AccountId.eq(account_id))
        .one(&env.db.conn)
        .await?
        .ok_or(AppError::NotFound)?;
    let export = Export::of(&found)?;
    match (&found.file_name, export.downloadable(env.now())) {
        (Some(name), true) => {
            let key = env
                .vault
                .key(&env.db.conn, &KeyOwner::Account(account_id))
                .await?
                .ok_or(AppError::NotFound)?;
            let file = tokio::fs::File::open(data_dir.join(EXPORTS_DIR).join(name))
                .await
                .map_err(AppError::internal)?;
            let expected = u64::try_from(found.bytes.unwrap_or(0)).unwrap_or(0);
            SealedFileReader::new(file, key, &place(name), expected)
                .await
                .map_err(AppError::internal)
        }
        _ if export.status == ExportStatus::Ready => Err(AppError::Conflict(
            "this archive has expired and was removed; ask for a new one".into(),
        )),
        _ => Err(AppError::Conflict("this archive is not ready yet".into())),
    }
}

/// What building an archive needs besides the environment.
#[derive(Debug, Clone, Copy)]
pub struct Builder<'a> {
    pub data_dir: &'a Path,
    pub ttl: chrono::Duration,
}

/// Builds export `id`'s archive once (a retry starts the file over).
pub async fn build(env: Env<'_>, builder: Builder<'_>, id: Uuid) -> AppResult<()> {
    let Some(export) = data_export::Entity::find_by_id(id.to_string())
        .one(&env.db.conn)
        .await?
    else {
        return Ok(());
    };
    if !matches!(
        ExportStatus::parse(&export.status),
        ExportStatus::Queued | ExportStatus::Running
    ) {
        return Ok(());
    }
    let Some(holder) = crate::services::accounts::find(env, export.account_id)
        .await?
        .filter(|a| a.status == AccountStatus::Active)
    else {
        return fail(env, &export.id, "the account is being deleted").await;
    };
    let dir = builder.data_dir.join(EXPORTS_DIR);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(AppError::internal)?;
    let name = file_name(holder.id, &export.id);
    // Its own part file per run: a job redelivered while the first still writes cannot
    // interleave with it.
    let part = dir.join(format!("{name}.{}.part", Uuid::new_v4().simple()));
    let key = env
        .vault
        .create_key(&env.db.conn, &KeyOwner::Account(holder.id), env.now())
        .await?;
    let target = archive::Target {
        part: &part,
        key,
        place: place(&name),
    };
    let written = archive::write(env.db, env.vault, &holder, builder.data_dir, &export.id, target).await;
    let bytes = match written {
        Ok(bytes) => bytes,
        Err(e) => {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(e);
        }
    };
    finish(env, builder, &export.id, &holder, &part, &dir.join(&name), bytes).await
}

/// Makes the archive ready, in a transaction that finds its account still active (locked
/// against a deletion starting meanwhile); otherwise discards it.
async fn finish(
    env: Env<'_>,
    builder: Builder<'_>,
    id: &str,
    holder: &account::Model,
    part: &Path,
    file: &Path,
    bytes: u64,
) -> AppResult<()> {
    let now = env.now();
    let tx = env.db.begin_write().await?;
    let still_active = account::Entity::find_by_id(holder.id)
        .lock_exclusive()
        .one(&tx)
        .await?
        .is_some_and(|a| a.status == AccountStatus::Active);
    if !still_active {
        tx.rollback().await?;
        let _ = tokio::fs::remove_file(part).await;
        return fail(env, id, "the account is being deleted").await;
    }
    let file_name = file.file_name().map(|n| n.to_string_lossy().into_owned());
    let made_ready = data_export::Entity::update_many()
        .col_expr(
            data_export::Column::Status,
            Expr::value(ExportStatus::Ready.as_str()),
        )
        .col_expr(data_export::Column::FileName, Expr::value(file_name))
        .col_expr(
            data_export::Column::Bytes,
            Expr::value(i64::try_from(bytes).unwrap_or(i64::MAX)),
        )
        .col_expr(data_export::Column::FinishedAt, Expr::value(now))
        .col_expr(data_export::Column::ExpiresAt, Expr::value(now + builder.ttl))
        .filter(data_export::Column::Id.eq(id))
        .filter(data_export::Column::Status.is_in(["queued", "running"]))
        .exec(&tx)
        .await?
        .rows_affected;
    if made_ready != 1 {
        // Another run of the same job finished first: its archive stands.
        tx.rollback().await?;
        let _ = tokio::fs::remove_file(part).await;
        return Ok(());
    }
    // Renamed before the commit: a ready row always has its file.
    if let Err(e) = tokio::fs::rename(part, file).await {
        tx.rollback().await?;
        let _ = tokio::fs::remove_file(part).await;
        return Err(AppError::internal(e));
    }
    notifications::add(&tx, NoticeKind::ExportReady, Some(holder.id), None, now).await?;
    tx.commit().await?;
    env.wake_relay();
    tracing::info!(account_id = holder.id, export_id = %id, bytes, "takeout ready");
    Ok(())
}

/// A dead export job run again by hand (`erasure jobs retry`): building again.
pub async fn revived<C: sea_orm::ConnectionTrait>(conn: &C, id: Uuid) -> AppResult<()> {
    data_export::Entity::update_many()
        .col_expr(
            data_export::Column::Status,
            Expr::value(ExportStatus::Queued.as_str()),
        )
        .col_expr(
            data_export::Column::FinishedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(data_export::Column::Id.eq(id.to_string()))
        .filter(data_export::Column::Status.eq(ExportStatus::Failed.as_str()))
        .exec(conn)
        .await?;
    Ok(())
}

/// The export's job died after its last attempt: it shows as failed, and can be asked again.
pub async fn died(db: &Database, id: Uuid, now: DateTime<Utc>) -> AppResult<()> {
    data_export::Entity::update_many()
        .col_expr(
            data_export::Column::Status,
            Expr::value(ExportStatus::Failed.as_str()),
        )
        .col_expr(data_export::Column::FinishedAt, Expr::value(now))
        .filter(data_export::Column::Id.eq(id.to_string()))
        .filter(data_export::Column::Status.is_in(["queued", "running"]))
        .exec(&db.conn)
        .await?;
    Ok(())
}

async fn fail(env: Env<'_>, id: &str, why: &str) -> AppResult<()> {
    data_export::Entity::update_many()
        .col_expr(
            data_export::Column::Status,
            Expr::value(ExportStatus::Failed.as_str()),
        )
        .col_expr(data_export::Column::LastError, Expr::value(why))
        .col_expr(data_export::Column::FinishedAt, Expr::value(env.now()))
        .filter(data_export::Column::Id.eq(id))
        .exec(&env.db.conn)
        .await?;
    Ok(())
}

/// Records how far the archive got (its holder's page shows it).
async fn progress(db: &Database, id: &str, done: i64, total: Option<i64>) -> AppResult<()> {
    let mut update = data_export::Entity::update_many()
        .col_expr(
            data_export::Column::Status,
            Expr::value(ExportStatus::Running.as_str()),
        )
        .col_expr(data_export::Column::ItemsDone, Expr::value(done));
    if let Some(total) = total {
        update = update.col_expr(data_export::Column::ItemsTotal, Expr::value(total));
    }
    update
        .filter(data_export::Column::Id.eq(id))
        .exec(&db.conn)
        .await?;
    Ok(())
}

/// Removes archives past their expiry, files first: their rows go with them.
pub async fn vacuum(db: &Database, data_dir: &Path, now: DateTime<Utc>) -> AppResult<u64> {
    let expired = data_export::Entity::find()
        .filter(data_export::Column::ExpiresAt.lte(now))
        .limit(500)
        .all(&db.conn)
        .await?;
    let mut removed = 0;
    for export in expired {
        if let Some(name) = &export.file_name {
            match std::fs::remove_file(data_dir.join(EXPORTS_DIR).join(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(AppError::internal(e)),
            }
        }
        removed += data_export::Entity::delete_by_id(export.id)
            .exec(&db.conn)
            .await?
            .rows_affected;
    }
    Ok(removed)
}
