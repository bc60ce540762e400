//! Writing one archive: each kind of data is a JSON file streamed into a ZIP on disk from
//! pages of rows (keyset by id), so a million messages take the memory of one page. The
//! writing runs on a blocking thread (file IO, compression); each page is read from the
//! database from there.

use std::{collections::HashMap, io::Write, path::Path};

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, EntityTrait, QueryResult,
    sea_query::{Alias, Cond, Expr, ExprTrait, Func, Order, Query, SelectStatement},
};
use serde_json::{Value, json};
use zip::{CompressionMethod, ZipWriter, write::SimpleFileOptions};

use crate::{
    db::Database,
    error::{AppError, AppResult},
    models::account,
    services::accounts::sealed,
    vault::{
        DataKey, Vault,
        columns::{AVATAR, CONTACT_NICKNAME, DEVICE_NAME, MESSAGE_BODY},
        sealed_file::SealedFileWriter,
    },
};

/// The files every archive holds (plus `avatar.<ext>` when the account has one).
pub const ENTRIES: [&str; 6] = [
    "README.txt",
    "profile.json",
    "messages.json",
    "contacts.json",
    "calls.json",
    "devices.json",
];

/// Rows read at once: what the archive's memory is bounded by.
const PAGE: u64 = 2000;

const README: &str = "Your VSee Messenger data, as we held it when this archive was made.\n\n\
profile.json   your account: VSee ID, email, names, plan, notification settings, dates\n\
messages.json  the messages you sent, with their conversation and time\n\
contacts.json  your contacts: their VSee ID, your nickname for them, when added\n\
calls.json     calls you made or received: the other party, when, how long\n\
devices.json   the devices you used: name, platform, last seen (not their push tokens,\n\
               which are credentials of the push service)\n\
avatar.*       your picture, if you had one\n";

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::internal(anyhow::anyhow!("writing the archive: {e}"))
}

/// One kind of data: the rows of an account (`select`, whose rows have an `id` from table
/// alias `table`), and how a row reads in the archive.
struct Section {
    file: &'static str,
    table: &'static str,
    select: fn(i64) -> SelectStatement,
    row: fn(&QueryResult, &mut Reader) -> RowResult,
}

/// Opens what the rows hold: the holder's fields with the holder's key, the VSee IDs of the
/// people they talked to with theirs (each looked up once).
struct Reader<'a> {
    handle: &'a tokio::runtime::Handle,
    db: &'a Database,
    vault: &'a Vault,
    account: i64,
    key: Option<DataKey>,
    peers: HashMap<i64, Option<String>>,
}

impl Reader<'_> {
    fn open(&self, column: &str, stored: &str) -> Result<String, sea_orm::DbErr> {
        match &self.key {
            Some(key) => key.open(column, stored).map_err(opening),
            None => Ok(stored.to_owned()),
        }
    }

    fn open_some(&self, column: &str, stored: Option<String>) -> Result<Option<String>, sea_orm::DbErr> {
        stored.map(|s| self.open(column, &s)).transpose()
    }

    /// The VSee ID of account `id`, `None` once it is gone.
    fn peer(&mut self, id: Option<i64>) -> Result<Option<String>, sea_orm::DbErr> {
        let Some(id) = id else { return Ok(None) };
        if let Some(known) = self.peers.get(&id) {
            return Ok(known.clone());
        }
        let row = self
            .handle
            .block_on(account::Entity::find_by_id(id).one(&self.db.conn))?;
        let opened = self
            .handle
            .block_on(sealed::open_some(self.vault, &self.db.conn, row))
            .map_err(opening)?
            .map(|a| a.vsee_id);
        self.peers.insert(id, opened.clone());
        Ok(opened)
    }
}

fn opening(e: impl std::fmt::Display) -> sea_orm::DbErr {
    sea_orm::DbErr::Custom(e.to_string())
}

/// A row's id (the next page's cursor) and how it reads in the archive.
type RowResult = Result<(i64, Value), sea_orm::DbErr>;

fn col(name: &str) -> Alias {
    Alias::new(name)
}

fn time(row: &QueryResult, name: &str) -> Result<String, sea_orm::DbErr> {
    Ok(row
        .try_get::<DateTime<Utc>>("", name)?
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The page of `section` after row `after`, in id order.
fn page(section: &Section, account: i64, after: i64) -> SelectStatement {
    let id = (col(section.table), col("id"));
    (section.select)(account)
        .and_where(Expr::col(id.clone()).gt(after))
        .order_by(id, Order::Asc)
        .limit(PAGE)
        .to_owned()
}

const SECTIONS: [Section; 4] = [
    Section {
        file: "messages.json",
        table: "messages",
        select: |account| {
            Query::select()
                .columns([col("id"), col("conversation_id"), col("body"), col("sent_at")])
                .from(col("messages"))
                .and_where(Expr::col(col("sender_id")).eq(account))
                .to_owned()
        },
        row: |r, reader| {
            Ok((
                r.try_get("", "id")?,
                json!({
                    "conversation": r.try_get::<i64>("", "conversation_id")?,
                    "body": reader.open(MESSAGE_BODY, &r.try_get::<String>("", "body")?)?,
                    "sent_at": time(r, "sent_at")?,
                }),
            ))
        },
    },
    Section {
        file: "contacts.json",
        table: "c",
        select: |account| {
            Query::select()
                .expr_as(Expr::col((col("c"), col("id"))), col("id"))
                .expr_as(Expr::col((col("c"), col("contact_id"))), col("contact_id"))
                .expr_as(Expr::col((col("c"), col("nickname"))), col("nickname"))
                .expr_as(Expr::col((col("c"), col("created_at"))), col("created_at"))
                .from_as(col("contacts"), col("c"))
                .and_where(Expr::col((col("c"), col("owner_id"))).eq(account))
                .to_owned()
        },
        row: |r, reader| {
            Ok((
                r.try_get("", "id")?,
                json!({
                    "vsee_id": reader.peer(r.try_get::<Option<i64>>("", "contact_id")?)?,
                    "nickname": reader.open_some(CONTACT_NICKNAME, r.try_get::<Option<String>>("", "nickname")?)?,
                    "added_at": time(r, "created_at")?,
                }),
            ))
        },
    },
    Section {
        file: "calls.json",
        table: "k",
        select: |account| {
            Query::select()
                .expr_as(Expr::col((col("k"), col("id"))), col("id"))
                .expr_as(Expr::col((col("k"), col("caller_id"))), col("caller_id"))
                .expr_as(Expr::col((col("k"), col("callee_id"))), col("callee_id"))
                .expr_as(Expr::col((col("k"), col("started_at"))), col("started_at"))
                .expr_as(
                    Expr::col((col("k"), col("duration_seconds"))),
                    col("duration_seconds"),
                )
                .from_as(col("calls"), col("k"))
                .cond_where(
                    Cond::any()
                        .add(Expr::col((col("k"), col("caller_id"))).eq(account))
                        .add(Expr::col((col("k"), col("callee_id"))).eq(account)),
                )
                .to_owned()
        },
        row: |r, reader| {
            let outgoing = r.try_get::<Option<i64>>("", "caller_id")? == Some(reader.account);
            let other = reader
                .peer(r.try_get::<Option<i64>>("", if outgoing { "callee_id" } else { "caller_id" })?)?;
            Ok((
                r.try_get("", "id")?,
                json!({
                    "direction": if outgoing { "outgoing" } else { "incoming" },
                    "with": other,
                    "started_at": time(r, "started_at")?,
                    "duration_seconds": r.try_get::<i32>("", "duration_seconds")?,
                }),
            ))
        },
    },
    Section {
        file: "devices.json",
        table: "devices",
        select: |account| {
            Query::select()
                .columns([col("id"), col("name"), col("platform"), col("last_seen_at")])
                .from(col("devices"))
                .and_where(Expr::col(col("account_id")).eq(account))
                .to_owned()
        },
        row: |r, reader| {
            Ok((
                r.try_get("", "id")?,
                json!({
                    "name": reader.open(DEVICE_NAME, &r.try_get::<String>("", "name")?)?,
                    "platform": r.try_get::<String>("", "platform")?,
                    "last_seen_at": time(r, "last_seen_at")?,
                }),
            ))
        },
    },
];

/// How many rows the sections hold, for the progress shown while the archive is written.
async fn count(db: &Database, account: i64) -> AppResult<i64> {
    let mut total = 0;
    for section in &SECTIONS {
        let counted = Query::select()
            .expr_as(Func::count(Expr::col((col("s"), col("id")))), col("n"))
            .from_subquery((section.select)(account), col("s"))
            .to_owned();
        if let Some(row) = db.conn.query_one(&counted).await? {
            total += row.try_get::<i64>("", "n")?;
        }
    }
    Ok(total)
}

fn profile(holder: &account::Model) -> Value {
    json!({
        "vsee_id": holder.vsee_id,
        "email": holder.email,
        "first_name": holder.first_name,
        "last_name": holder.last_name,
        "plan": holder.plan.as_str(),
        "offline_notification": {
            "email": holder.offline_notification_email,
            "enabled": holder.offline_notification_enabled,
        },
        "created_at": holder.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

/// Where an archive is written: the file, and the key and place its chunks are sealed for.
pub(super) struct Target<'a> {
    pub part: &'a Path,
    pub key: DataKey,
    pub place: String,
}

/// Writes the archive of `holder` to `target`, sealed; returns its size in clear bytes.
pub(super) async fn write(
    db: &Database,
    vault: &Vault,
    holder: &account::Model,
    data_dir: &Path,
    export_id: &str,
    target: Target<'_>,
) -> AppResult<u64> {
    let db = db.clone();
    let vault = vault.clone();
    let total = count(&db, holder.id).await?;
    super::progress(&db, export_id, 0, Some(total)).await?;
    let (holder, data_dir, id) = (holder.clone(), data_dir.to_path_buf(), export_id.to_owned());
    let Target { part, key, place } = target;
    let part = part.to_path_buf();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let sealed = SealedFileWriter::create(&part, key.clone(), &place).map_err(internal)?;
        let key = Some(key);
        let mut reader = Reader {
            handle: &handle,
            db: &db,
            vault: &vault,
            account: holder.id,
            key,
            peers: HashMap::new(),
        };
        write_blocking(&mut reader, &holder, &data_dir, &id, sealed)
    })
    .await
    .map_err(AppError::internal)?
}

fn write_blocking(
    reader: &mut Reader<'_>,
    holder: &account::Model,
    data_dir: &Path,
    export_id: &str,
    sealed: SealedFileWriter,
) -> AppResult<u64> {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .large_file(true);
    let mut zip = ZipWriter::new(sealed);
    zip.start_file("README.txt", options).map_err(internal)?;
    zip.write_all(README.as_bytes()).map_err(internal)?;
    zip.start_file("profile.json", options).map_err(internal)?;
    serde_json::to_writer_pretty(&mut zip, &profile(holder)).map_err(internal)?;
    let mut done = 0i64;
    for section in &SECTIONS {
        zip.start_file(section.file, options).map_err(internal)?;
        zip.write_all(b"[").map_err(internal)?;
        let (mut after, mut first) = (0i64, true);
        loop {
            let rows = reader
                .handle
                .block_on(reader.db.conn.query_all(&page(section, holder.id, after)))?;
            for row in &rows {
                let (id, value) = (section.row)(row, reader)?;
                zip.write_all(if first { b"\n" } else { b",\n" })
                    .map_err(internal)?;
                serde_json::to_writer(&mut zip, &value).map_err(internal)?;
                (after, first) = (id, false);
            }
            done += i64::try_from(rows.len()).unwrap_or(0);
            reader
                .handle
                .block_on(super::progress(reader.db, export_id, done, None))?;
            if (rows.len() as u64) < PAGE {
                break;
            }
        }
        zip.write_all(b"\n]\n").map_err(internal)?;
    }
    add_avatar(&mut zip, options, data_dir, holder.id, reader.key.as_ref())?;
    zip.finish().map_err(internal)?.finish().map_err(internal)
}

/// The avatar, `avatars/<account id>.<ext>`, as `avatar.<ext>`.
fn add_avatar(
    zip: &mut ZipWriter<SealedFileWriter>,
    options: SimpleFileOptions,
    data_dir: &Path,
    account_id: i64,
    key: Option<&DataKey>,
) -> AppResult<()> {
    let prefix = format!("{account_id}.");
    let entries = match std::fs::read_dir(data_dir.join("avatars")) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(internal(e)),
    };
    for entry in entries {
        let entry = entry.map_err(internal)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(ext) = name.strip_prefix(&prefix) {
            zip.start_file(
                format!("avatar.{ext}"),
                options.compression_method(CompressionMethod::Stored),
            )
            .map_err(internal)?;
            let stored = std::fs::read(entry.path()).map_err(internal)?;
            let picture = match key {
                Some(key) => key.open_file(AVATAR, &stored)?,
                None => stored,
            };
            zip.write_all(&picture).map_err(internal)?;
        }
    }
    Ok(())
}
